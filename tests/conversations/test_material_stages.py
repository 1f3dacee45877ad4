"""Materials by the stage that produces them (issue 11): the publicity proof and the opinions are
required by the moves out of the unit, not by the draft's entry into its unit publicity; what
`required_by` may name is checked when a campaign loads."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from conversations.campaign import Campaign, CampaignError
from conversations.forms import Form, Material, form_for
from conversations.identity import Level
from conversations.lifecycle import Lifecycle, Transition
from conversations.loader import parse_campaign
from conversations.material_stages import (
    attachable_later,
    later_materials,
    missing_for,
    stage_moves,
    stage_note,
)
from conversations.moves import unmet
from conversations.reads import AttachmentView, NominationDetail, NominationView

ROOT = Path(__file__).resolve().parents[2] / "campaigns"
SKILLS, EMPLOYMENT = ROOT / "jl-skills-2022.yaml", ROOT / "jl-employment-2022.yaml"
SOURCE = "campaigns/bad.yaml"
SUBMITS = [
    "submit_to_county", "submit_to_city", "submit_to_province",
    "resubmit_to_county", "resubmit_to_city", "resubmit_to_province",
]  # fmt: skip
Data = dict[str, Any]


@functools.cache
def loaded(path: Path) -> Campaign:
    return parse_campaign(path.read_text(encoding="utf-8"), str(path))


@functools.cache
def _data(path: Path) -> Data:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def lifecycle(path: Path = SKILLS) -> Lifecycle:
    found = loaded(path).lifecycle
    assert found is not None
    return found


def form(path: Path, category: str) -> Form:
    found = form_for(loaded(path), category)
    assert found is not None
    return found


def move(lc: Lifecycle, transition: str) -> Transition:
    return next(t for t in lc.transitions if t.id == transition)


def detail(
    status: str, uploaded: list[str], *, category: str = "technical_expert",
    campaign: str = "jl-skills-2022", fields: dict[str, Any] | None = None,
) -> NominationDetail:  # fmt: skip
    view = NominationView(1, campaign, category, status, "CODE", "张*三", "220104", 1)
    files = [AttachmentView(i, key, f"{key}.pdf", "pdf", 10) for i, key in enumerate(uploaded)]
    return NominationDetail(view, "individual", fields or {}, {}, files, None, [], None)


# ----- which moves a stage's materials are due by ---------------------------------------------


def test_the_opinions_stage_is_every_move_that_sends_the_nomination_to_an_office() -> None:
    # 报送 from 征求意见 to whichever office the unit reports to, and 重新报送 after a return;
    # not the start of the unit publicity (from a draft or a return), nor a withdrawal.
    assert [t.id for t in stage_moves(lifecycle(), "opinions")] == SUBMITS
    assert [t.id for t in stage_moves(lifecycle(EMPLOYMENT), "opinions")] == SUBMITS


def test_a_stage_named_by_a_move_is_that_move_only() -> None:
    assert [t.id for t in stage_moves(lifecycle(), "submit_to_county")] == ["submit_to_county"]
    assert stage_moves(lifecycle(), "no_such_thing") == ()


def test_the_shipped_forms_put_the_publicity_proof_and_the_opinions_in_that_stage() -> None:
    staged = {
        (f.id, m.key)
        for path in (SKILLS, EMPLOYMENT)
        for f in loaded(path).forms
        for m in f.materials
        if m.required_by == "opinions"
    }
    assert staged >= {
        ("skills_nominee", "opinions"),
        ("employment_nominee", "publicity"),
        ("employment_nominee", "police_opinion"),
        ("employment_nominee", "other_opinions"),
        ("employment_unit", "publicity"),
        ("employment_unit", "police_opinion"),
        ("employment_unit", "agency_opinions"),
        ("employment_unit", "enterprise_opinions"),
        ("employment_unit", "civil_affairs_opinion"),
    }


def test_the_checklist_says_when_a_later_material_is_due_on_the_units_route() -> None:
    opinions = next(m for m in form(SKILLS, "technical_expert").materials if m.key == "opinions")
    lc = lifecycle()
    assert stage_note(lc, opinions, Level.COUNTY) == "单位公示结束后、报送县级前提交"
    assert stage_note(lc, opinions, Level.CITY) == "单位公示结束后、报送市（州）级前提交"
    assert stage_note(lc, opinions, None) == "单位公示结束后、报送县级前提交"
    by_move = opinions.model_copy(update={"required_by": "submit_to_province"})
    assert stage_note(lc, by_move, Level.COUNTY) == "单位公示结束后、报送省级前提交"
    in_publicity = opinions.model_copy(update={"required_by": "unit_publicity"})
    assert stage_note(lc, in_publicity, Level.COUNTY) == "单位公示阶段、公示期满无异议前提交"
    filing = next(m for m in form(SKILLS, "technical_expert").materials if m.key == "id_card")
    assert stage_note(lc, filing, Level.COUNTY) is None


# ----- what each move requires ----------------------------------------------------------------


FILING = ["approval_form", "id_card", "qualification_certificate", "diploma", "skill_achievements"]


def test_the_draft_enters_its_publicity_without_the_later_materials() -> None:
    campaign, lc = loaded(SKILLS), lifecycle()
    draft = detail("draft", FILING)
    assert missing_for(campaign, draft, move(lc, "start_unit_publicity")) == []
    assert unmet(campaign, draft, move(lc, "start_unit_publicity")) == []


def test_the_move_out_of_the_unit_is_refused_naming_what_is_missing() -> None:
    campaign, lc = loaded(SKILLS), lifecycle()
    signed = [*FILING, "nominee_consent"]  # the nominee's consent, which these moves need too
    waiting = detail("opinions", signed)
    for transition in ("submit_to_county", "submit_to_city", "resubmit_to_county"):
        assert [m.key for m in missing_for(campaign, waiting, move(lc, transition))] == [
            "opinions"
        ]
    assert unmet(campaign, waiting, move(lc, "submit_to_county")) == [
        (
            "materials",
            "还不能“报送县级人社部门”：缺少这一步须提交的附件：推荐对象征求意见表。"
            "请在这项推荐中选择“补充附件”上传后再办理。",
        )
    ]
    done = detail("opinions", [*signed, "opinions"])
    assert unmet(campaign, done, move(lc, "submit_to_county")) == []
    assert unmet(campaign, waiting, move(lc, "withdraw")) == []  # giving up needs no opinions


def test_a_conditional_later_material_is_due_when_its_condition_holds_or_is_unknown() -> None:
    campaign, lc = loaded(EMPLOYMENT), lifecycle(EMPLOYMENT)
    submit = move(lc, "submit_to_county")
    base = ["publicity", "police_opinion"]

    def due(fields: dict[str, Any]) -> list[str]:
        found = detail(
            "opinions", base, category="employment_collective", campaign="jl-employment-2022",
            fields=fields,
        )  # fmt: skip
        return [m.key for m in missing_for(campaign, found, submit)]

    assert due({"unit_type": "enterprise"}) == ["enterprise_opinions"]
    assert due({"unit_type": "social_organization"}) == ["civil_affairs_opinion"]
    assert due({}) == ["agency_opinions", "enterprise_opinions", "civil_affairs_opinion"]


# ----- when a later material may be attached -------------------------------------------------


def test_later_materials_are_attached_while_the_nomination_is_in_the_units_hands() -> None:
    lc, skills = lifecycle(), form(SKILLS, "technical_expert")
    opinions = next(m for m in skills.materials if m.key == "opinions")
    id_card = next(m for m in skills.materials if m.key == "id_card")
    for status in ("unit_publicity", "opinions"):
        assert attachable_later(lc, status, opinions)
        assert not attachable_later(lc, status, id_card)  # the filing's is fixed by now
    for status in ("draft", "returned", "county_review", "awarded", "withdrawn"):
        assert not attachable_later(lc, status, opinions)  # a draft takes any; then too late
    # The nominee's signed consent form too (issue 11: until the nomination leaves the unit).
    assert [m.key for m in later_materials(lc, skills, "opinions")] == [
        "opinions", "nominee_consent",
    ]  # fmt: skip
    assert later_materials(lc, skills, "county_review") == []


# ----- load errors name the YAML path ----------------------------------------------------------


def _with_stage(stage: str, lifecycle_change: Any = None) -> str:
    data = copy.deepcopy(_data(SKILLS))
    materials = data["forms"][0]["materials"]
    index = next(i for i, m in enumerate(materials) if m["key"] == "opinions")
    materials[index]["required_by"] = stage
    if lifecycle_change is not None:
        lifecycle_change(data)
    return yaml.safe_dump(data, allow_unicode=True)


def _index() -> int:
    materials = _data(SKILLS)["forms"][0]["materials"]
    return next(i for i, m in enumerate(materials) if m["key"] == "opinions")


def _rename_move(data: Data) -> None:
    for t in data["lifecycle"]["transitions"]:
        if t["id"] == "submit_to_county":
            t["id"] = "unit_publicity"


def _no_lifecycle(data: Data) -> None:
    del data["lifecycle"]


@pytest.mark.parametrize(
    ("stage", "change", "why"),
    [
        ("no_such_stage", None, "'no_such_stage' is neither a status nor a move of the lifecycle"),
        ("county_review", None, "status 'county_review' is not in the unit's hands"),
        ("returned", None, "status 'returned' is not in the unit's hands"),
        ("awarded", None, "status 'awarded' is not in the unit's hands"),
        ("county_approve", None, "move 'county_approve' is not the unit's"),
        ("withdraw", None, "move 'withdraw' does not take the nomination on"),
        ("unit_publicity", _rename_move, "'unit_publicity' is both a status and a move"),
    ],
)
def test_required_by_must_name_a_stage_the_unit_attaches_in(
    stage: str, change: Any, why: str
) -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(_with_stage(stage, change), SOURCE)
    where = f"{SOURCE}: forms[0] (skills_nominee).materials[{_index()}] (opinions).required_by: "
    assert str(info.value).startswith(where + why), str(info.value)


def test_a_campaign_without_a_lifecycle_loads_its_stages_unchecked() -> None:
    # A self-check only: nothing is filed, so no stage is ever due (the lifecycle tests load
    # the skills campaign so).
    assert parse_campaign(_with_stage("no_such_stage", _no_lifecycle), SOURCE).lifecycle is None


def test_required_by_is_a_key() -> None:
    with pytest.raises(ValueError, match="String should match pattern"):
        Material(key="m", name="表", required_by="报送")
