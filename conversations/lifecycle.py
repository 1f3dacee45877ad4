"""The nomination lifecycle as data, and who may make each move (DESIGN §3).

A campaign's `lifecycle:` section lists the statuses a nomination passes through, the moves
between them (`transitions`, each with the roles and levels allowed to make it) and the
departments to consult before it leaves the unit (`opinions`, 征求意见). Campaigns rename or skip
stages in YAML; this module only knows the kinds of moves (`Action`) and the checks every
lifecycle must pass when the campaign is loaded.

`decide()` says whether one actor may make one move on one nomination now, and why not in
Chinese; `actions_for()` lists the moves to offer in a menu. Both are pure: the caller loads the
nomination, computes the end of a publicity with the working-day calendar, and applies the
move (audit record, notifications) itself.

Who acts on a status: a status with a `queue_level` sits in the review queue of the office of
that level, and only officials of that level in whose region the nominating unit lies may move
it. A status without one is in the unit's hands (its clerk acts) or is finished.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conversations.conditions import All, Any_, Compare, Condition, Not, evaluate
from conversations.identity import LEVEL_NAMES, Actor, Level, Role, region_contains

MIN_PUBLICITY_WORKDAYS = 5  # 公示不少于5个工作日 (both notices; DESIGN §4)


class StatusKind(StrEnum):
    NORMAL = "normal"  # on the way from draft to award
    SIDE = "side"  # off the way but not over: returned, the clerk may edit and resubmit
    FINAL = "final"  # over: awarded, rejected, withdrawn, revoked (only revoke leaves one)


class Counts(StrEnum):
    """What a nomination in a status still counts toward (a status's `counts:` list).

    A campaign names its statuses; the rules across nominations (conversations.crossrules) only
    read these flags, so a status renamed in YAML keeps the meaning declared beside it.
    """

    NOMINEE = "nominee"  # the nominee is taken: duplicates, both awards, one kind per unit
    PLACES = "places"  # it uses an award place: the region's quota and the share cap


ALL_COUNTS: tuple[Counts, ...] = (Counts.NOMINEE, Counts.PLACES)


class Action(StrEnum):
    """The kinds of move. The campaign names each move (`Transition.label`); code knows these."""

    START_PUBLICITY = "start_publicity"  # into a publicity; the caller computes its end
    FINISH_PUBLICITY = "finish_publicity"  # 公示期满无异议: only on or after the end date
    SUBMIT = "submit"  # 上报: the unit sends the nomination to an office
    RESUBMIT = "resubmit"  # 重新上报 after a return
    APPROVE = "approve"  # a review passes the nomination on
    RETURN = "return"  # 退回 to the clerk, with a reason
    REJECT = "reject"  # 不予推荐 / 取消评选资格, with a reason
    WITHDRAW = "withdraw"  # the unit withdraws its nomination
    AWARD = "award"  # 表彰决定 published
    REVOKE = "revoke"  # 撤销 an award, with a reason


# Moves that tell the clerk or the nominee something went wrong, or that the unit gives up: the
# reason is part of the move, and shown in its notification (issue 11: withdraw too).
REASON_ACTIONS = frozenset({Action.RETURN, Action.REJECT, Action.REVOKE, Action.WITHDRAW})
# Moves that end a nomination for good: never a menu's first choice (a stray "1" must not end
# one), and withdraw, which its own unit makes, asks to be confirmed as well.
DESTRUCTIVE_ACTIONS = frozenset({Action.WITHDRAW, Action.REJECT, Action.REVOKE})
CONFIRM_ACTIONS = frozenset({Action.WITHDRAW})
# A reason is a sentence: at least this many letters (汉字 count; emoji, punctuation and digits
# do not), so 👍 or "1" is not a reason a clerk can act on.
MIN_REASON_LETTERS = 4
# Moves that send a nomination out of the unit: every opinion must be recorded first.
SUBMIT_ACTIONS = frozenset({Action.SUBMIT, Action.RESUBMIT})

ROLE_NAMES: Mapping[Role, str] = {
    Role.APPLICANT: "申报人",
    Role.CLERK: "单位经办人",
    Role.OFFICIAL: "评选表彰工作领导小组办公室",
    Role.ADMIN: "管理员",
}

# The one nominee fact no question produces: which kind of nominee a nomination is about. The
# other facts an opinion rule tests are form fields or self-check facts of the campaign (the
# loader checks that every category's form or self-check produces them; `opinion_facts`).
NOMINEE_KIND = "nominee_kind"
NOMINEE_KINDS: tuple[str, ...] = ("individual", "collective")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Status(_Model):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str  # Chinese, as clerks and officials see it
    kind: StatusKind = StatusKind.NORMAL
    publicity_workdays: int | None = None  # set on a publicity: at least 5 working days
    queue_level: Level | None = None  # the office whose review queue holds it; None: the unit's
    opinions: bool = False  # the 征求意见 stage
    # What a nomination here counts toward; unset: everything (a status on the way). A final
    # status must say it: an award still holds its nominee, a withdrawal frees everything.
    counts: list[Counts] | None = None

    @field_validator("publicity_workdays")
    @classmethod
    def _long_enough(cls, days: int | None) -> int | None:
        if days is not None and days < MIN_PUBLICITY_WORKDAYS:
            raise ValueError(
                f"a publicity lasts at least {MIN_PUBLICITY_WORKDAYS} working days, not {days}"
            )
        return days

    @model_validator(mode="after")
    def _declared_counts(self) -> Status:
        if self.counts is None:
            if self.kind is StatusKind.FINAL:
                raise ValueError(
                    "a final status must declare what it still counts toward:"
                    " counts: [nominee, places], [nominee] or []"
                )
            return self
        if len(set(self.counts)) != len(self.counts):
            raise ValueError("counts: a value appears twice")
        if Counts.PLACES in self.counts and Counts.NOMINEE not in self.counts:
            raise ValueError("counts: a nomination that uses a place also holds its nominee")
        return self

    def counts_toward(self, what: Counts) -> bool:
        return what in (self.counts if self.counts is not None else ALL_COUNTS)


class Mover(_Model):
    """Who may make a move: a role, and for officials optionally the level of their office."""

    role: Role
    level: Level | None = None

    @model_validator(mode="after")
    def _level_for_officials(self) -> Mover:
        if self.level is not None and self.role is not Role.OFFICIAL:
            raise ValueError(f"only officials have a level, not {self.role.value}")
        return self

    def admits(self, actor: Actor) -> bool:
        return actor.role is self.role and (self.level is None or actor.level is self.level)


class Transition(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    from_: list[str] = Field(alias="from", min_length=1)
    to: str
    action: Action
    label: str  # the Chinese verb on the button
    by: list[Mover]
    reason_required: bool = False
    # Only for nominations whose unit reports to an office of this level (NominationRef's
    # entry_level): a unit that reports straight to a city or the province skips the levels below.
    entry_level: Level | None = None
    # The campaign window (its key) this move delivers materials in: a strict window refuses the
    # move outside it (seed 001 三、（三）: 提前或逾期报送均不予受理).
    window: str | None = None

    @field_validator("by")
    @classmethod
    def _someone(cls, by: list[Mover]) -> list[Mover]:
        if not by:
            raise ValueError("a transition needs at least one actor (by)")
        return by


class OpinionRule(_Model):
    """Departments to consult (征求意见) about nominees for whom `when` holds (always if unset)."""

    when: Condition | None = None
    departments: list[str] = Field(min_length=1)
    clause: str | None = None


class Lifecycle(_Model):
    initial: str  # the status a new nomination starts in (the unit's draft)
    statuses: list[Status] = Field(min_length=1)
    transitions: list[Transition] = Field(min_length=1)
    opinions: list[OpinionRule] = Field(default_factory=list)

    def status(self, key: str) -> Status:
        for s in self.statuses:
            if s.key == key:
                return s
        raise KeyError(key)

    def has_status(self, key: str) -> bool:
        return any(s.key == key for s in self.statuses)

    def transitions_from(self, key: str) -> list[Transition]:
        return [t for t in self.transitions if key in t.from_]

    def has_opinions_stage(self) -> bool:
        return any(s.opinions for s in self.statuses)

    def not_counting(self, what: Counts) -> frozenset[str]:
        """The statuses whose nominations do not count toward `what` (their `counts:`); a
        status no longer in the campaign counts, as the safer reading."""
        return frozenset(s.key for s in self.statuses if not s.counts_toward(what))


def check_lifecycle(lc: Lifecycle, where: str = "lifecycle") -> None:
    """Cross-reference checks, called by the campaign loader; errors name the YAML path."""
    index = _unique_keys(lc, where)
    if lc.initial not in index:
        raise ValueError(f"{where}.initial: unknown status '{lc.initial}'")
    for i, t in enumerate(lc.transitions):
        at = f"{where}.transitions[{i}] ({t.id})"
        for j, key in enumerate(t.from_):
            if key not in index:
                raise ValueError(f"{at}.from[{j}]: unknown status '{key}'")
        if t.to not in index:
            raise ValueError(f"{at}.to: unknown status '{t.to}'")
    _check_publicity(lc, where, index)
    for i, t in enumerate(lc.transitions):
        at = f"{where}.transitions[{i}] ({t.id})"
        if t.action in REASON_ACTIONS and not t.reason_required:
            raise ValueError(f"{at}.reason_required: a {t.action.value} needs a reason")
        _check_movers(lc, t, at)
        for key in t.from_:
            status = lc.status(key)
            if status.kind is StatusKind.FINAL and t.action is not Action.REVOKE:
                raise ValueError(
                    f"{at}: final status '{key}' can only be left by revoke, not {t.action.value}"
                )
    _check_ambiguous(lc, where)
    leaving = {key for t in lc.transitions for key in t.from_}
    for i, s in enumerate(lc.statuses):
        if s.kind is not StatusKind.FINAL and s.key not in leaving:
            raise ValueError(
                f"{where}.statuses[{i}] ({s.key}): no transition leaves it; a dead end is final"
            )
    reached = _reachable(lc)
    for i, s in enumerate(lc.statuses):
        if s.key not in reached:
            raise ValueError(f"{where}.statuses[{i}] ({s.key}): unreachable from '{lc.initial}'")
    for i, rule in enumerate(lc.opinions):
        if rule.when is not None:
            _check_nominee_condition(rule.when, f"{where}.opinions[{i}].when")


def _unique_keys(lc: Lifecycle, where: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, s in enumerate(lc.statuses):
        if s.key in index:
            raise ValueError(f"{where}.statuses[{i}] ({s.key}): key appears twice")
        index[s.key] = i
    ids: set[str] = set()
    for i, t in enumerate(lc.transitions):
        if t.id in ids:
            raise ValueError(f"{where}.transitions[{i}] ({t.id}): id appears twice")
        ids.add(t.id)
    return index


def _check_publicity(lc: Lifecycle, where: str, index: Mapping[str, int]) -> None:
    """A publicity is entered by start_publicity, left by finish_publicity, and lasts ≥ 5 days."""
    for i, t in enumerate(lc.transitions):
        at = f"{where}.transitions[{i}] ({t.id})"
        publicity = [t.to] if t.action is Action.START_PUBLICITY else []
        if t.action is Action.FINISH_PUBLICITY:
            publicity += t.from_
        for key in publicity:
            if lc.status(key).publicity_workdays is None:
                raise ValueError(
                    f"{where}.statuses[{index[key]}] ({key}): a publicity status needs"
                    f" publicity_workdays (at least {MIN_PUBLICITY_WORKDAYS})"
                )
        entering = lc.status(t.to).publicity_workdays is not None
        if entering and t.action is not Action.START_PUBLICITY:
            raise ValueError(
                f"{at}.action: publicity '{t.to}' is entered by start_publicity,"
                f" not {t.action.value}"
            )


def _check_movers(lc: Lifecycle, t: Transition, at: str) -> None:
    """Only the office whose queue holds a nomination may move it (DESIGN §3)."""
    for key in t.from_:
        level = lc.status(key).queue_level
        if level is None:
            continue
        for j, mover in enumerate(t.by):
            if mover.role is not Role.OFFICIAL or mover.level is not level:
                who = mover.role.value + (f" ({mover.level.value})" if mover.level else "")
                raise ValueError(
                    f"{at}.by[{j}]: '{key}' is in the {level.value} office's queue;"
                    f" only {level.value} officials may move it, not {who}"
                )


def _check_ambiguous(lc: Lifecycle, where: str) -> None:
    """From one status, one action leads to one place for any given entry level."""
    seen: dict[tuple[str, Action], list[Level | None]] = {}
    for i, t in enumerate(lc.transitions):
        for key in t.from_:
            levels = seen.setdefault((key, t.action), [])
            if t.entry_level in levels or None in levels or (levels and t.entry_level is None):
                raise ValueError(
                    f"{where}.transitions[{i}] ({t.id}): another {t.action.value} from '{key}'"
                    " applies to the same nominations (set distinct entry_level)"
                )
            levels.append(t.entry_level)


def _reachable(lc: Lifecycle) -> set[str]:
    reached = {lc.initial}
    todo = [lc.initial]
    while todo:
        key = todo.pop()
        for t in lc.transitions_from(key):
            if t.to not in reached:
                reached.add(t.to)
                todo.append(t.to)
    return reached


def _check_nominee_condition(cond: Condition, where: str) -> None:
    """`nominee_kind` takes its two values; every other fact is checked by the campaign loader,
    which knows the forms and the self-check (conversations/loader.py)."""
    if isinstance(cond, All):
        for part in cond.all_:
            _check_nominee_condition(part, where)
    elif isinstance(cond, Any_):
        for part in cond.any_:
            _check_nominee_condition(part, where)
    elif isinstance(cond, Not):
        _check_nominee_condition(cond.not_, where)
    elif isinstance(cond, Compare) and cond.fact == NOMINEE_KIND:
        values = cond.value if cond.op == "in" and isinstance(cond.value, list) else [cond.value]
        for v in values:
            if v not in NOMINEE_KINDS:
                known = ", ".join(NOMINEE_KINDS)
                raise ValueError(f"{where}: {v!r} is not a value of '{NOMINEE_KIND}' ({known})")


def facts_to_decide(cond: Condition, known: Mapping[str, Any]) -> list[str]:
    """The facts `cond` still needs once `known` is given, in order of appearance; none when
    `known` already decides it. The loader asks this per category with only `nominee_kind`
    known: `{any: [{nominee_kind: collective}, {is_unit_head: true}]}` needs nothing of a
    collective and `is_unit_head` of an individual."""
    if evaluate(cond, known, _identity).value is not None:
        return []
    if isinstance(cond, All | Any_):
        parts = cond.all_ if isinstance(cond, All) else cond.any_
        out: list[str] = []
        for part in parts:
            out.extend(k for k in facts_to_decide(part, known) if k not in out)
        return out
    if isinstance(cond, Not):
        return facts_to_decide(cond.not_, known)
    return [cond.fact]


def _identity(_key: str, value: Any) -> Any:
    return value


def opinion_departments(lifecycle: Lifecycle, nominee_facts: Mapping[str, Any]) -> list[str]:
    """The departments to consult about a nominee, each once, in the order the campaign lists them.

    A rule whose condition cannot be decided yet (a fact missing) counts: asking one department
    too many costs a letter, missing one gets the nomination refused at review.
    """
    found: list[str] = []
    for rule in lifecycle.opinions:
        if rule.when is not None and evaluate(rule.when, nominee_facts, _identity).value is False:
            continue
        found.extend(d for d in rule.departments if d not in found)
    return found


def opinion_facts(
    kind: str, fields: Mapping[str, Any], facts: Mapping[str, Any]
) -> dict[str, Any]:
    """What the `when` of an opinion rule reads about one nominee (pass it to
    `opinion_departments` and `missing_opinions`).

    `kind` is the category's kind ("individual" or "collective"), `fields` the form values of the
    nomination, `facts` its eligibility answers. A name is taken from the form first (the clerk
    confirmed or corrected it there) and from the self-check second; a value left empty (None)
    counts as unanswered. For an individual the form's `unit_type`, `is_non_public` and
    `is_unit_head` describe the employer and the nominee's place in it (三、（一）).
    """
    if kind not in NOMINEE_KINDS:
        raise ValueError(f"nominee kind is {' or '.join(NOMINEE_KINDS)}, not {kind!r}")
    out = {k: v for k, v in facts.items() if v is not None}
    out.update({k: v for k, v in fields.items() if v is not None})
    out[NOMINEE_KIND] = kind
    return out


def missing_opinions(
    lifecycle: Lifecycle, nominee_facts: Mapping[str, Any], recorded: Iterable[str]
) -> list[str]:
    """The departments still to be recorded; NominationRef.opinions_done is `not` this."""
    done = set(recorded)
    return [d for d in opinion_departments(lifecycle, nominee_facts) if d not in done]


@dataclass(frozen=True, slots=True)
class NominationRef:
    """What a decision needs to know about one nomination.

    `region` is the 6-digit code of the nominating unit. `publicity_ends` is the last working
    day of the current publicity, computed by the caller with the working-day calendar when the
    publicity started. `entry_level` is the level of the office the unit reports to (a member
    unit of a city's leading group reports to the city; most units to their county).
    """

    status: str
    unit_id: int
    region: str
    publicity_ends: dt.date | None = None
    opinions_done: bool = False
    entry_level: Level = Level.COUNTY
    # The regions whose offices this nomination reaches, from the regions table (梅河口市
    # reports to the province, not to 通化市 whose code it shares). None: by the code's digits.
    offices: frozenset[str] | None = None


class Refusal(StrEnum):
    """Why a move is refused, for callers and tests; `Decision.why` says it in Chinese."""

    NOT_AVAILABLE = "not_available"  # no such move from this status (for this unit's route)
    WRONG_ROLE = "wrong_role"
    WRONG_LEVEL = "wrong_level"
    OUTSIDE_REGION = "outside_region"
    NOT_YOUR_UNIT = "not_your_unit"
    REASON_REQUIRED = "reason_required"
    PUBLICITY_UNDATED = "publicity_undated"  # the publicity's end was never recorded
    PUBLICITY_RUNNING = "publicity_running"
    OPINIONS_MISSING = "opinions_missing"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    to: str | None  # the status after the move, when allowed
    why: str  # Chinese, shown to the actor
    refusal: Refusal | None = None
    transition: Transition | None = None  # the move (for the audit record), when one applies

    @classmethod
    def refuse(cls, refusal: Refusal, why: str, transition: Transition | None = None) -> Decision:
        return cls(allowed=False, to=None, why=why, refusal=refusal, transition=transition)


def decide(
    lifecycle: Lifecycle,
    ref: NominationRef,
    actor: Actor,
    action: Action,
    *,
    today: dt.date,
    reason: str | None = None,
) -> Decision:
    """Whether `actor` may make `action` on the nomination today, and where it leads."""
    if not lifecycle.has_status(ref.status):
        return Decision.refuse(
            Refusal.NOT_AVAILABLE, f"状态“{ref.status}”不在本活动的评选流程中，请联系管理员。"
        )
    status = lifecycle.status(ref.status)
    candidates = [t for t in lifecycle.transitions_from(ref.status) if t.action is action]
    if not candidates:
        return Decision.refuse(
            Refusal.NOT_AVAILABLE, f"推荐对象处于“{status.label}”，不能进行此操作。"
        )
    route = [t for t in candidates if t.entry_level in (None, ref.entry_level)]
    if not route:
        office = LEVEL_NAMES[ref.entry_level] + ROLE_NAMES[Role.OFFICIAL]
        return Decision.refuse(
            Refusal.NOT_AVAILABLE, f"本单位的推荐报送{office}，本活动没有这一报送途径。"
        )
    return _check(lifecycle, route[0], ref, actor, today=today, reason=reason, need_reason=True)


def actions_for(
    lifecycle: Lifecycle, ref: NominationRef, actor: Actor, *, today: dt.date
) -> list[Transition]:
    """The moves to offer `actor` on this nomination now, in the campaign's order.

    A move that needs a reason is offered; the reason is asked for after it is chosen.
    """
    if not lifecycle.has_status(ref.status):
        return []
    return [
        t
        for t in lifecycle.transitions_from(ref.status)
        if t.entry_level in (None, ref.entry_level)
        and _check(lifecycle, t, ref, actor, today=today, reason=None, need_reason=False).allowed
    ]


def _check(
    lifecycle: Lifecycle,
    t: Transition,
    ref: NominationRef,
    actor: Actor,
    *,
    today: dt.date,
    reason: str | None,
    need_reason: bool,
) -> Decision:
    if not any(m.role is actor.role for m in t.by):
        who = "、".join(_mover_names(t.by))
        return Decision.refuse(Refusal.WRONG_ROLE, f"“{t.label}”只能由{who}办理。", t)
    if not any(m.admits(actor) for m in t.by):
        who = "、".join(_mover_names(m for m in t.by if m.role is actor.role))
        yours = LEVEL_NAMES[actor.level] if actor.level is not None else "未设级别的"
        return Decision.refuse(
            Refusal.WRONG_LEVEL, f"“{t.label}”须由{who}办理，您是{yours}办公室。", t
        )
    if actor.role is Role.CLERK and actor.unit_id != ref.unit_id:
        return Decision.refuse(Refusal.NOT_YOUR_UNIT, "这份推荐不是您所在单位的，不能办理。", t)
    if actor.role is Role.OFFICIAL and (
        actor.region is None
        or (
            actor.region not in ref.offices
            if ref.offices is not None
            else not region_contains(actor.region, ref.region)
        )
    ):
        return Decision.refuse(
            Refusal.OUTSIDE_REGION,
            f"推荐单位所在地区（{ref.region}）不在您的管辖范围（{actor.region or '未设'}）内。",
            t,
        )
    if need_reason and t.reason_required and not is_sentence(reason):
        return Decision.refuse(
            Refusal.REASON_REQUIRED,
            f"“{t.label}”须填写理由（一句话，至少 {MIN_REASON_LETTERS} 个字）。",
            t,
        )
    status = lifecycle.status(ref.status)
    if t.action is Action.FINISH_PUBLICITY:
        if ref.publicity_ends is None:
            return Decision.refuse(
                Refusal.PUBLICITY_UNDATED, f"“{status.label}”的公示期未登记，不能确认期满。", t
            )
        if today < ref.publicity_ends:
            return Decision.refuse(
                Refusal.PUBLICITY_RUNNING,
                f"“{status.label}”公示至{_cn_date(ref.publicity_ends)}，"
                f"{_cn_date(ref.publicity_ends)}起才能确认公示期满。",
                t,
            )
    if t.action in SUBMIT_ACTIONS and lifecycle.has_opinions_stage() and not ref.opinions_done:
        return Decision.refuse(
            Refusal.OPINIONS_MISSING, "征求意见尚未全部登记，登记齐全后才能上报。", t
        )
    return Decision(
        allowed=True,
        to=t.to,
        why=f"{t.label}：{status.label} → {lifecycle.status(t.to).label}",
        transition=t,
    )


def reason_letters(text: str | None) -> int:
    """How many letters `text` has (汉字 and other scripts' letters; not emoji, punctuation,
    digits or spaces)."""
    return sum(1 for c in text or "" if unicodedata.category(c).startswith("L"))


def is_sentence(reason: str | None) -> bool:
    """Whether `reason` says something: at least MIN_REASON_LETTERS letters."""
    return reason_letters(reason) >= MIN_REASON_LETTERS


def _mover_names(movers: Iterable[Mover]) -> Sequence[str]:
    names: list[str] = []
    for m in movers:
        name = (LEVEL_NAMES[m.level] if m.level is not None else "") + ROLE_NAMES[m.role]
        if name not in names:
            names.append(name)
    return names


def _cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


__all__ = [
    "ALL_COUNTS",
    "CONFIRM_ACTIONS",
    "DESTRUCTIVE_ACTIONS",
    "MIN_REASON_LETTERS",
    "Action",
    "Counts",
    "Decision",
    "Lifecycle",
    "Mover",
    "NOMINEE_KIND",
    "NOMINEE_KINDS",
    "NominationRef",
    "OpinionRule",
    "Refusal",
    "Status",
    "StatusKind",
    "Transition",
    "actions_for",
    "check_lifecycle",
    "decide",
    "facts_to_decide",
    "is_sentence",
    "missing_opinions",
    "opinion_departments",
    "opinion_facts",
]
