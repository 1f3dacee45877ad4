"""Materials by the stage that produces them (issue 11): which moves require which attachments.

Most materials are the filing's: the draft does not leave the unit's desk (into its unit
publicity) without them (conversations.moves.gate). Some come out of a later stage: the proof of
the unit publicity (在本单位公示的情况) exists once the publicity has ended, the departments'
opinions (公安部门意见, 推荐对象征求意见表) are gathered in the 征求意见 stage after it. Such a
material names its stage with `required_by` (conversations.forms.Material):

- a lifecycle **status** S: the material is required by the moves that take the nomination on
  out of S (into a normal status: not a withdrawal or a return), and by the moves from a side
  status (a return) into those same statuses — resubmitting after a return leaves the unit
  again. `required_by: opinions` in both shipped campaigns is every 报送 and 重新报送, to
  whichever office the unit reports to;
- a **move** (transition id): that move only.

The filing checklist shows such a material with its stage (「单位公示结束后、报送县级前提交」)
and does not ask for it; the clerk may attach it at any time while the nomination is in
the unit's hands (`attachable_later`; the writer re-checks), and the stage's moves are refused,
naming what is missing, until it is there (`missing_for`, one of the move requirements of
conversations.moves). The loader checks every `required_by` (`check_stages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conversations.campaign import Campaign
from conversations.forms import Form, Material, form_for, missing_materials
from conversations.identity import LEVEL_NAMES, Level
from conversations.lifecycle import Action, Lifecycle, StatusKind, Transition
from conversations.reads import NominationDetail


def stage_moves(lifecycle: Lifecycle, stage: str) -> tuple[Transition, ...]:
    """The moves a material of `stage` (a status or a move, see the module doc) must be
    attached by, in the campaign's order; none when `stage` names neither."""
    for t in lifecycle.transitions:
        if t.id == stage:
            return (t,)
    if not lifecycle.has_status(stage):
        return ()
    onward = {
        t.to
        for t in lifecycle.transitions_from(stage)
        if lifecycle.status(t.to).kind is StatusKind.NORMAL
    }
    return tuple(
        t
        for t in lifecycle.transitions
        if t.to in onward
        and all(f == stage or lifecycle.status(f).kind is StatusKind.SIDE for f in t.from_)
    )


def requires(lifecycle: Lifecycle, material: Material, transition: Transition) -> bool:
    """Whether `transition` is one of the moves `material`'s stage must be attached by."""
    if material.required_by is None:
        return False
    return any(t.id == transition.id for t in stage_moves(lifecycle, material.required_by))


def filing_missing(
    campaign: Campaign, form: Form, uploaded: set[str], values: Mapping[str, Any],
    facts: Mapping[str, Any],
) -> list[Material]:  # fmt: skip
    """The required materials the filing itself lacks (those of no later stage)."""
    missing = missing_materials(form, uploaded, values, facts=facts, ordinal=campaign.ordinal)
    return [m for m in missing if m.required_by is None]


def later_missing(
    campaign: Campaign, form: Form, uploaded: set[str], values: Mapping[str, Any],
    facts: Mapping[str, Any],
) -> list[Material]:  # fmt: skip
    """The required materials of a later stage still to attach, in checklist order."""
    missing = missing_materials(form, uploaded, values, facts=facts, ordinal=campaign.ordinal)
    return [m for m in missing if m.required_by is not None]


def missing_for(
    campaign: Campaign, detail: NominationDetail, transition: Transition
) -> list[Material]:
    """The materials `transition` requires that the nomination lacks: those whose stage the
    move ends, when required (`required`, or `required_when` holds or is still unknown)."""
    lifecycle = campaign.lifecycle
    form = form_for(campaign, detail.view.category)
    if lifecycle is None or form is None:
        return []
    return [
        m
        for m in later_missing(campaign, form, set(detail.uploaded), detail.fields, detail.facts)
        if requires(lifecycle, m, transition)
    ]


def in_unit_after_filing(lifecycle: Lifecycle, status: str) -> bool:
    """Whether a nomination in `status` has left its draft but not yet the unit: no office's
    queue holds it, it is on its way (not returned, not over) and past the initial status."""
    if status == lifecycle.initial or not lifecycle.has_status(status):
        return False
    found = lifecycle.status(status)
    return found.queue_level is None and found.kind is StatusKind.NORMAL


def attachable_later(lifecycle: Lifecycle, status: str, material: Material) -> bool:
    """Whether the unit may attach `material` to a nomination in `status` after its filing:
    a material of a later stage, while the nomination is still in the unit's hands. (While it
    is a draft or returned, every material may be attached, as every field may be changed.)"""
    return material.required_by is not None and in_unit_after_filing(lifecycle, status)


def later_materials(lifecycle: Lifecycle, form: Form, status: str) -> list[Material]:
    """The materials the unit may attach to a nomination of `form` in `status` now that it is
    filed (none while it is a draft or returned: the filing takes any then)."""
    return [m for m in form.materials if attachable_later(lifecycle, status, m)]


def stage_note(lifecycle: Lifecycle, material: Material, entry_level: Level | None) -> str | None:
    """When the clerk attaches `material`, in the words of the checklist:
    「单位公示结束后、报送县级前提交」; None for a material of the filing. `entry_level` is the
    level of the office the unit reports to: its move is the one named (any when None)."""
    if material.required_by is None:
        return None
    moves = stage_moves(lifecycle, material.required_by)
    if not moves:
        return None
    onward = [t for t in moves if any(_normal(lifecycle, f) for f in t.from_)] or list(moves)
    route = [t for t in onward if entry_level is None or t.entry_level in (None, entry_level)]
    move = (route or onward)[0]
    begins = (
        material.required_by
        if lifecycle.has_status(material.required_by)
        else next((f for f in move.from_ if _normal(lifecycle, f)), move.from_[0])
    )
    after = _after(lifecycle, begins)
    level = lifecycle.status(move.to).queue_level
    # Out of the unit, the office it goes to says it shortest (报送县级); else the move's name.
    by = f"报送{LEVEL_NAMES[level]}" if level is not None else move.label
    return f"{after}、{by}前提交" if after else f"{by}前提交"


def _after(lifecycle: Lifecycle, status: str) -> str | None:
    """「单位公示结束后」 for a stage entered by the end of a publicity, else 「征求意见阶段」;
    None for the initial status (nothing comes before it)."""
    if status == lifecycle.initial:
        return None
    entering = [
        t
        for t in lifecycle.transitions
        if t.to == status and any(_normal(lifecycle, f) for f in t.from_)
    ]
    if entering and all(t.action is Action.FINISH_PUBLICITY for t in entering):
        publicity = next(f for f in entering[0].from_ if _normal(lifecycle, f))
        return f"{lifecycle.status(publicity).label}结束后"
    return f"{lifecycle.status(status).label}阶段"


def _normal(lifecycle: Lifecycle, status: str) -> bool:
    return lifecycle.status(status).kind is StatusKind.NORMAL


def _in_unit(lifecycle: Lifecycle, status: str) -> bool:
    found = lifecycle.status(status)
    return found.queue_level is None and found.kind is not StatusKind.FINAL


def check_stages(form: Form, lifecycle: Lifecycle | None, where: str) -> None:
    """The loader's check of every `required_by` of `form` (at the YAML path `where`); raises
    ValueError naming the path.

    It names a status or a move of the lifecycle, not a name that is both; a status in the
    unit's hands (no office's queue, on the way) that a move takes the nomination on from; a
    move the unit makes (from statuses in its hands) that takes it on (into a normal status).
    A campaign without a lifecycle (a self-check only) files nothing, so it is not checked.
    """
    if lifecycle is None:
        return
    for j, m in enumerate(form.materials):
        if m.required_by is None:
            continue
        at = f"{where}.materials[{j}] ({m.key}).required_by"
        stage = m.required_by
        is_move = any(t.id == stage for t in lifecycle.transitions)
        is_status = lifecycle.has_status(stage)
        if is_move and is_status:
            raise ValueError(f"{at}: '{stage}' is both a status and a move of the lifecycle")
        if not is_move and not is_status:
            raise ValueError(f"{at}: '{stage}' is neither a status nor a move of the lifecycle")
        if is_status:
            status = lifecycle.status(stage)
            if status.queue_level is not None or status.kind is not StatusKind.NORMAL:
                raise ValueError(
                    f"{at}: status '{stage}' is not in the unit's hands (a clerk attaches"
                    " files while no office's queue holds the nomination and it is on its way)"
                )
            if not stage_moves(lifecycle, stage):
                raise ValueError(f"{at}: no move takes a nomination on from '{stage}'")
            continue
        (move,) = stage_moves(lifecycle, stage)
        if not all(_in_unit(lifecycle, f) for f in move.from_):
            raise ValueError(
                f"{at}: move '{stage}' is not the unit's (it leaves a status an office holds)"
            )
        if not _normal(lifecycle, move.to):
            raise ValueError(
                f"{at}: move '{stage}' does not take the nomination on (it ends in '{move.to}')"
            )


__all__ = [
    "attachable_later",
    "check_stages",
    "filing_missing",
    "in_unit_after_filing",
    "later_materials",
    "later_missing",
    "missing_for",
    "requires",
    "stage_moves",
    "stage_note",
]
