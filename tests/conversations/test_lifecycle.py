"""The nomination lifecycle: every move of both campaigns, by the right and the wrong people.

Cases are derived from the campaign YAML (registry-driven, STYLE.md): a move added to a campaign
gets its cases without a test change, and the count check below fails if one has none.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from conversations.campaign import Campaign, CampaignError
from conversations.identity import LEVEL_ORDER, Actor, Level, Role
from conversations.lifecycle import (
    Action,
    Lifecycle,
    Mover,
    NominationRef,
    Refusal,
    StatusKind,
    Transition,
    actions_for,
    decide,
    missing_opinions,
    opinion_departments,
)
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_IDS = ("jl-skills-2022", "jl-employment-2022")
SOURCE = "campaigns/bad.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

TODAY = dt.date(2022, 10, 10)
UNIT, OTHER_UNIT = 7, 8
UNIT_REGION = "220102"  # 长春市南关区: the nominating unit
# An office of each level whose region holds the unit, and one whose region does not.
HOME = {Level.COUNTY: "220102", Level.CITY: "220100", Level.PROVINCE: "220000"}
AWAY = {Level.COUNTY: "220203", Level.CITY: "220200", Level.PROVINCE: "210000"}
REASON = "推荐材料缺少公示截图"

Data = dict[str, Any]


@cache
def _text(campaign_id: str) -> str:
    return (ROOT / "campaigns" / f"{campaign_id}.yaml").read_text(encoding="utf-8")


@cache
def campaign(campaign_id: str) -> Campaign:
    return parse_campaign(_text(campaign_id), f"campaigns/{campaign_id}.yaml")


def lifecycle(campaign_id: str) -> Lifecycle:
    lc = campaign(campaign_id).lifecycle
    assert lc is not None, f"{campaign_id} has no lifecycle"
    return lc


class Case(NamedTuple):
    campaign: str
    transition: str
    source: str  # the `from` status

    def __str__(self) -> str:
        return f"{self.campaign}:{self.transition}:{self.source}"

    @property
    def t(self) -> Transition:
        return next(t for t in lifecycle(self.campaign).transitions if t.id == self.transition)

    @property
    def lc(self) -> Lifecycle:
        return lifecycle(self.campaign)

    def ref(self, **change: Any) -> NominationRef:
        """A nomination in the source status that passes every date and opinion check."""
        values: dict[str, Any] = {
            "status": self.source,
            "unit_id": UNIT,
            "region": UNIT_REGION,
            "publicity_ends": TODAY,
            "opinions_done": True,
            "entry_level": self.t.entry_level or Level.COUNTY,
        }
        return NominationRef(**{**values, **change})

    def decide(self, actor: Actor, **kw: Any) -> Any:
        reason = kw.pop("reason", REASON)
        return decide(self.lc, self.ref(**kw), actor, self.t.action, today=TODAY, reason=reason)


def _cases() -> list[Case]:
    return [
        Case(cid, t.id, source)
        for cid in CAMPAIGN_IDS
        for t in lifecycle(cid).transitions
        for source in t.from_
    ]


CASES = _cases()
OFFICIAL_CASES = [c for c in CASES if all(m.role is Role.OFFICIAL for m in c.t.by)]
CLERK_CASES = [c for c in CASES if all(m.role is Role.CLERK for m in c.t.by)]


def actor_for(mover: Mover, *, region: dict[Level, str] = HOME, unit: int = UNIT) -> Actor:
    if mover.role is Role.CLERK:
        return Actor(role=Role.CLERK, region=UNIT_REGION, unit_id=unit)
    if mover.role is Role.OFFICIAL:
        level = mover.level or Level.COUNTY
        return Actor(role=Role.OFFICIAL, level=level, region=region[level])
    return Actor(role=mover.role)


# --- completeness ---


def test_every_move_of_every_campaign_has_a_case() -> None:
    expected = sum(len(t.from_) for cid in CAMPAIGN_IDS for t in lifecycle(cid).transitions)
    assert len(CASES) == expected
    covered = {(c.campaign, c.transition) for c in CASES}
    assert covered == {(cid, t.id) for cid in CAMPAIGN_IDS for t in lifecycle(cid).transitions}
    # Each move is made by clerks or by officials, so one of the actor tables below covers it.
    assert len(OFFICIAL_CASES) + len(CLERK_CASES) == len(CASES)


def test_every_action_is_used_by_a_shipped_campaign() -> None:
    used = {t.action for cid in CAMPAIGN_IDS for t in lifecycle(cid).transitions}
    assert used == set(Action)


# --- who may make each move ---


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_right_actor_makes_the_move(case: Case) -> None:
    for mover in case.t.by:
        actor = actor_for(mover)
        decision = case.decide(actor)
        assert (decision.allowed, decision.to, decision.refusal) == (True, case.t.to, None)
        assert decision.transition == case.t
        assert case.t.label in decision.why
        assert case.t in actions_for(case.lc, case.ref(), actor, today=TODAY)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_wrong_role_is_refused(case: Case) -> None:
    allowed = {m.role for m in case.t.by}
    wrong = [role for role in Role if role not in allowed]
    assert wrong
    for role in wrong:
        actor = actor_for(Mover(role=role))
        decision = case.decide(actor)
        assert (decision.allowed, decision.refusal) == (False, Refusal.WRONG_ROLE), role
        assert decision.why.startswith(f"“{case.t.label}”只能由")
        assert case.t not in actions_for(case.lc, case.ref(), actor, today=TODAY)


@pytest.mark.parametrize("case", OFFICIAL_CASES, ids=str)
def test_an_official_of_a_wrong_level_is_refused(case: Case) -> None:
    allowed = {m.level for m in case.t.by}
    wrong = [level for level in LEVEL_ORDER if level not in allowed]
    assert wrong  # every official move in the shipped campaigns belongs to one level
    for level in wrong:
        actor = actor_for(Mover(role=Role.OFFICIAL, level=level))
        decision = case.decide(actor)
        assert (decision.allowed, decision.refusal) == (False, Refusal.WRONG_LEVEL), level
        assert "须由" in decision.why
        assert case.t not in actions_for(case.lc, case.ref(), actor, today=TODAY)


@pytest.mark.parametrize("case", OFFICIAL_CASES, ids=str)
def test_an_official_of_another_region_is_refused(case: Case) -> None:
    for mover in case.t.by:
        actor = actor_for(mover, region=AWAY)
        decision = case.decide(actor)
        assert (decision.allowed, decision.refusal) == (False, Refusal.OUTSIDE_REGION)
        assert f"推荐单位所在地区（{UNIT_REGION}）不在您的管辖范围" in decision.why
        assert case.t not in actions_for(case.lc, case.ref(), actor, today=TODAY)


@pytest.mark.parametrize("case", CLERK_CASES, ids=str)
def test_a_clerk_of_another_unit_is_refused(case: Case) -> None:
    actor = actor_for(Mover(role=Role.CLERK), unit=OTHER_UNIT)
    decision = case.decide(actor)
    assert (decision.allowed, decision.refusal) == (False, Refusal.NOT_YOUR_UNIT)
    assert decision.why == "这份推荐不是您所在单位的，不能办理。"
    assert case.t not in actions_for(case.lc, case.ref(), actor, today=TODAY)


def test_an_official_without_a_region_is_refused() -> None:
    case = next(c for c in OFFICIAL_CASES if c.transition == "county_approve")
    actor = Actor(role=Role.OFFICIAL, level=Level.COUNTY)
    assert case.decide(actor).refusal is Refusal.OUTSIDE_REGION


# --- reasons, publicity dates, opinions ---


@pytest.mark.parametrize("case", [c for c in CASES if c.t.reason_required], ids=str)
def test_a_move_that_needs_a_reason_is_refused_without_one(case: Case) -> None:
    actor = actor_for(case.t.by[0])
    # A reason is a sentence (issue 11): 👍, digits or a word of three letters are refused.
    for reason in (None, "", "  ", "👍", "👍👍👍👍👍", "1234", "……！！", "不同意", "ok!"):
        decision = case.decide(actor, reason=reason)
        assert (decision.allowed, decision.refusal) == (False, Refusal.REASON_REQUIRED)
        assert decision.why == f"“{case.t.label}”须填写理由（一句话，至少 4 个字）。"
    for reason in ("材料不全", "photo is blurred", "身份证复印件不清晰，请重新上传👍"):
        assert case.decide(actor, reason=reason).allowed, reason
    # the menu offers it: the reason is asked for after the choice
    assert case.t in actions_for(case.lc, case.ref(), actor, today=TODAY)


def test_returns_rejections_revocations_and_withdrawals_all_need_a_reason() -> None:
    for case in CASES:
        if case.t.action in (Action.RETURN, Action.REJECT, Action.REVOKE, Action.WITHDRAW):
            assert case.t.reason_required, case


FINISH_CASES = [c for c in CASES if c.t.action is Action.FINISH_PUBLICITY]


@pytest.mark.parametrize("case", FINISH_CASES, ids=str)
def test_a_publicity_is_finished_on_or_after_its_end_date(case: Case) -> None:
    actor = actor_for(case.t.by[0])
    day = dt.timedelta(days=1)
    for ends in (TODAY, TODAY - day):
        assert case.decide(actor, publicity_ends=ends).allowed
    early = case.decide(actor, publicity_ends=TODAY + day)
    assert (early.allowed, early.refusal) == (False, Refusal.PUBLICITY_RUNNING)
    assert "公示至2022年10月11日" in early.why
    assert case.t not in actions_for(
        case.lc, case.ref(publicity_ends=TODAY + day), actor, today=TODAY
    )
    undated = case.decide(actor, publicity_ends=None)
    assert (undated.allowed, undated.refusal) == (False, Refusal.PUBLICITY_UNDATED)


def test_every_publicity_lasts_at_least_five_working_days() -> None:
    for cid in CAMPAIGN_IDS:
        lc = lifecycle(cid)
        days = {s.key: s.publicity_workdays for s in lc.statuses if s.publicity_workdays}
        assert days == {"unit_publicity": 5, "city_publicity": 5, "provincial_publicity": 5}


SUBMIT_CASES = [c for c in CASES if c.t.action in (Action.SUBMIT, Action.RESUBMIT)]


@pytest.mark.parametrize("case", SUBMIT_CASES, ids=str)
def test_a_nomination_leaves_the_unit_only_with_every_opinion(case: Case) -> None:
    actor = actor_for(case.t.by[0])
    decision = case.decide(actor, opinions_done=False)
    assert (decision.allowed, decision.refusal) == (False, Refusal.OPINIONS_MISSING)
    assert decision.why == "征求意见尚未全部登记，登记齐全后才能上报。"


# --- routes and statuses ---


@pytest.mark.parametrize("cid", CAMPAIGN_IDS)
@pytest.mark.parametrize(
    ("entry", "path"),
    [
        (
            Level.COUNTY,
            ["county_review", "city_review", "city_publicity", "provincial_review"],
        ),
        (Level.CITY, ["city_review", "city_publicity", "provincial_review"]),
        (Level.PROVINCE, ["provincial_review"]),
    ],
)
def test_the_way_from_draft_to_award(cid: str, entry: Level, path: list[str]) -> None:
    """Take the forward move each step (whoever may make it) and see every stage of the notice."""
    lc = lifecycle(cid)
    start = ["draft", "unit_publicity", "opinions"]
    end = ["assessment", "provincial_publicity", "award_decision", "awarded"]
    actors = [actor_for(Mover(role=Role.CLERK))] + [
        actor_for(Mover(role=Role.OFFICIAL, level=level)) for level in LEVEL_ORDER
    ]
    ref = NominationRef(
        "draft", UNIT, UNIT_REGION, publicity_ends=TODAY, opinions_done=True, entry_level=entry
    )
    seen = [ref.status]
    while lc.status(ref.status).kind is not StatusKind.FINAL:
        forward = [
            t
            for a in actors
            for t in actions_for(lc, ref, a, today=TODAY)
            if lc.status(t.to).kind is StatusKind.NORMAL or t.to == "awarded"
        ]
        assert len(forward) == 1, (ref.status, forward)
        ref = dataclasses.replace(ref, status=forward[0].to)
        seen.append(ref.status)
    assert seen == start + path + end


def test_submit_follows_the_units_route() -> None:
    lc = lifecycle("jl-employment-2022")
    clerk = actor_for(Mover(role=Role.CLERK))
    for entry, to in [
        (Level.COUNTY, "county_review"),
        (Level.CITY, "city_review"),
        (Level.PROVINCE, "provincial_review"),
    ]:
        ref = NominationRef("opinions", UNIT, UNIT_REGION, opinions_done=True, entry_level=entry)
        assert decide(lc, ref, clerk, Action.SUBMIT, today=TODAY).to == to
        assert [t.to for t in actions_for(lc, ref, clerk, today=TODAY)] == [to, "withdrawn"]


def test_a_route_the_campaign_lacks_is_refused() -> None:
    data = _data("jl-employment-2022")
    moves = data["lifecycle"]["transitions"]
    moves[:] = [t for t in moves if t.get("entry_level") != "province"]
    lc = parse_campaign(_dump(data), SOURCE).lifecycle
    assert lc is not None
    ref = NominationRef(
        "opinions", UNIT, UNIT_REGION, opinions_done=True, entry_level=Level.PROVINCE
    )
    clerk = actor_for(Mover(role=Role.CLERK))
    decision = decide(lc, ref, clerk, Action.SUBMIT, today=TODAY)
    assert (decision.allowed, decision.refusal) == (False, Refusal.NOT_AVAILABLE)
    assert (
        decision.why == "本单位的推荐报送省级评选表彰工作领导小组办公室，本活动没有这一报送途径。"
    )
    assert actions_for(lc, ref, clerk, today=TODAY)[0].action is Action.WITHDRAW


def test_a_move_not_offered_in_this_status_is_refused() -> None:
    lc = lifecycle("jl-skills-2022")
    official = actor_for(Mover(role=Role.OFFICIAL, level=Level.COUNTY))
    decision = decide(
        lc, NominationRef("draft", UNIT, UNIT_REGION), official, Action.APPROVE, today=TODAY
    )
    assert (decision.allowed, decision.refusal) == (False, Refusal.NOT_AVAILABLE)
    assert decision.why == "推荐对象处于“草稿”，不能进行此操作。"


def test_a_status_the_campaign_no_longer_has_is_refused() -> None:
    lc = lifecycle("jl-skills-2022")
    ref = NominationRef("gone", UNIT, UNIT_REGION)
    clerk = actor_for(Mover(role=Role.CLERK))
    assert decide(lc, ref, clerk, Action.WITHDRAW, today=TODAY).refusal is Refusal.NOT_AVAILABLE
    assert actions_for(lc, ref, clerk, today=TODAY) == []


def test_nothing_leaves_a_final_status_but_revoke() -> None:
    for cid in CAMPAIGN_IDS:
        lc = lifecycle(cid)
        for s in lc.statuses:
            if s.kind is StatusKind.FINAL:
                assert {t.action for t in lc.transitions_from(s.key)} <= {Action.REVOKE}


# --- opinions (征求意见) ---

POLICE = "公安部门"
PERSONNEL = ["组织人事部门", "纪检监察机关"]
REGULATORS = ["生态环境部门", "人力资源社会保障部门", "税务部门", "市场监管部门", "应急管理部门"]
UNITED_FRONT = ["企业注册地统战部门", "企业注册地工商联"]
CIVIL_AFFAIRS = ["注册地民政部门"]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            {"nominee_kind": "collective", "unit_type": "government_agency"},
            [POLICE, *PERSONNEL],
            id="agency",
        ),
        pytest.param(
            {"nominee_kind": "collective", "unit_type": "public_institution"},
            [POLICE, *PERSONNEL],
            id="public institution",
        ),
        pytest.param(
            {"nominee_kind": "individual", "unit_type": "public_institution"},
            [POLICE, *PERSONNEL],
            id="staff of a public institution",
        ),
        pytest.param(
            {"nominee_kind": "collective", "unit_type": "enterprise", "is_non_public": False},
            [POLICE, *REGULATORS],
            id="state-owned enterprise",
        ),
        pytest.param(
            {"nominee_kind": "collective", "unit_type": "enterprise", "is_non_public": True},
            [POLICE, *REGULATORS, *UNITED_FRONT],
            id="non-public enterprise",
        ),
        pytest.param(
            {
                "nominee_kind": "individual",
                "unit_type": "enterprise",
                "is_non_public": True,
                "is_unit_head": True,
            },
            [POLICE, *REGULATORS, *UNITED_FRONT],
            id="head of a non-public enterprise",
        ),
        pytest.param(
            {
                "nominee_kind": "individual",
                "unit_type": "enterprise",
                "is_non_public": False,
                "is_unit_head": True,
            },
            [POLICE, *REGULATORS],
            id="head of a state-owned enterprise",
        ),
        pytest.param(
            {
                "nominee_kind": "individual",
                "unit_type": "enterprise",
                "is_non_public": True,
                "is_unit_head": False,
            },
            [POLICE],
            id="worker of an enterprise",
        ),
        pytest.param(
            {"nominee_kind": "collective", "unit_type": "social_organization"},
            [POLICE, *CIVIL_AFFAIRS],
            id="social organisation",
        ),
        pytest.param(
            {"nominee_kind": "individual", "unit_type": "social_organization"},
            [POLICE],
            id="staff of a social organisation",
        ),
        pytest.param(
            {},
            [POLICE, *PERSONNEL, *REGULATORS, *UNITED_FRONT, *CIVIL_AFFAIRS],
            id="nothing known yet: every department that may apply",
        ),
    ],
)
def test_employment_opinion_departments(facts: dict[str, Any], expected: list[str]) -> None:
    assert opinion_departments(lifecycle("jl-employment-2022"), facts) == expected


def test_skills_opinion_departments_are_the_same_for_everyone() -> None:
    lc = lifecycle("jl-skills-2022")
    expected = [*PERSONNEL, POLICE]
    assert opinion_departments(lc, {}) == expected
    assert opinion_departments(lc, {"nominee_kind": "individual", "unit_type": "enterprise"}) == (
        expected
    )


def test_opinion_departments_are_listed_once() -> None:
    data = _data("jl-employment-2022")
    data["lifecycle"]["opinions"].append({"departments": [POLICE, "组织人事部门", "审计部门"]})
    lc = parse_campaign(_dump(data), SOURCE).lifecycle
    assert lc is not None
    facts = {"nominee_kind": "collective", "unit_type": "government_agency"}
    assert opinion_departments(lc, facts) == [POLICE, *PERSONNEL, "审计部门"]


def test_missing_opinions() -> None:
    lc = lifecycle("jl-employment-2022")
    facts = {"nominee_kind": "collective", "unit_type": "social_organization"}
    assert missing_opinions(lc, facts, [POLICE]) == CIVIL_AFFAIRS
    assert missing_opinions(lc, facts, [POLICE, *CIVIL_AFFAIRS, "税务部门"]) == []


# --- loader errors ---


@cache
def _loaded(campaign_id: str) -> Data:
    data = yaml.load(_text(campaign_id), Loader=_Loader)  # noqa: S506 - a safe loader
    assert isinstance(data, dict)
    return data


def _data(campaign_id: str = "jl-skills-2022") -> Data:
    return copy.deepcopy(_loaded(campaign_id))


def _dump(data: Data) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True)


def _error(data: Data) -> str:
    with pytest.raises(CampaignError) as info:
        parse_campaign(_dump(data), SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: "), message
    return message.removeprefix(f"{SOURCE}: ")


def _at(section: str, key: str, value: str) -> int:
    """The position in the skills lifecycle of the item whose `key` is `value`."""
    items = _loaded("jl-skills-2022")["lifecycle"][section]
    return next(i for i, item in enumerate(items) if item[key] == value)


def _status(key: str) -> int:
    return _at("statuses", "key", key)


def _move(move_id: str) -> int:
    return _at("transitions", "id", move_id)


def _set(section: str, index: int, field: str, value: Any) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data["lifecycle"][section][index][field] = value

    return change


def _append(section: str, item: Data) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data["lifecycle"][section].append(item)

    return change


def _from_also(move_id: str, status: str) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data["lifecycle"]["transitions"][_move(move_id)]["from"].append(status)

    return change


def _no_workdays(data: Data) -> None:
    del data["lifecycle"]["statuses"][_status("city_publicity")]["publicity_workdays"]


def _duplicate_status(data: Data) -> None:
    data["lifecycle"]["statuses"].append({"key": "opinions", "label": "又一个征求意见"})


def _duplicate_move(data: Data) -> None:
    moves = data["lifecycle"]["transitions"]
    moves.append(copy.deepcopy(moves[_move("revoke")]))


N_STATUSES = len(_loaded("jl-skills-2022")["lifecycle"]["statuses"])
N_MOVES = len(_loaded("jl-skills-2022")["lifecycle"]["transitions"])
LIMBO = {"key": "limbo", "label": "搁置", "kind": "final", "counts": []}
START = f"lifecycle.transitions[{_move('start_unit_publicity')}]"

# (test id, change to the skills campaign, the message after the file name)
LOADER_CASES: list[tuple[str, Callable[[Data], None], str]] = [
    (
        "unknown status in to",
        _set("transitions", _move("county_approve"), "to", "nope"),
        f"lifecycle.transitions[{_move('county_approve')}] (county_approve).to:"
        " unknown status 'nope'",
    ),
    (
        "unknown status in from",
        _from_also("start_unit_publicity", "nope"),
        f"{START} (start_unit_publicity).from[2]: unknown status 'nope'",
    ),
    (
        "unknown initial status",
        lambda data: data["lifecycle"].update(initial="nope"),
        "lifecycle.initial: unknown status 'nope'",
    ),
    (
        "duplicate status key",
        _duplicate_status,
        f"lifecycle.statuses[{N_STATUSES}] (opinions): key appears twice",
    ),
    (
        "duplicate transition id",
        _duplicate_move,
        f"lifecycle.transitions[{N_MOVES}] (revoke): id appears twice",
    ),
    (
        "publicity status without publicity_workdays",
        _no_workdays,
        f"lifecycle.statuses[{_status('city_publicity')}] (city_publicity):"
        " a publicity status needs publicity_workdays (at least 5)",
    ),
    (
        "publicity shorter than 5 working days",
        _set("statuses", _status("unit_publicity"), "publicity_workdays", 3),
        f"lifecycle.statuses[{_status('unit_publicity')}].publicity_workdays:"
        " a publicity lasts at least 5 working days, not 3",
    ),
    (
        "publicity entered by another action",
        _set("transitions", _move("city_start_publicity"), "action", "approve"),
        f"lifecycle.transitions[{_move('city_start_publicity')}] (city_start_publicity).action:"
        " publicity 'city_publicity' is entered by start_publicity, not approve",
    ),
    (
        "unreachable status",
        _append("statuses", LIMBO),
        f"lifecycle.statuses[{N_STATUSES}] (limbo): unreachable from 'draft'",
    ),
    (
        "status with no way out that is not final",
        _append("statuses", {**LIMBO, "kind": "side"}),
        f"lifecycle.statuses[{N_STATUSES}] (limbo): no transition leaves it; a dead end is final",
    ),
    (
        "final status left by something else than revoke",
        _from_also("withdraw", "rejected"),
        f"lifecycle.transitions[{_move('withdraw')}] (withdraw):"
        " final status 'rejected' can only be left by revoke, not withdraw",
    ),
    (
        "transition with no actor",
        _set("transitions", _move("award"), "by", []),
        f"lifecycle.transitions[{_move('award')}].by: a transition needs at least one actor (by)",
    ),
    (
        "transition with no by at all",
        lambda data: data["lifecycle"]["transitions"][_move("award")].pop("by"),
        f"lifecycle.transitions[{_move('award')}].by: Field required",
    ),
    (
        "a level for a clerk",
        _set("transitions", _move("withdraw"), "by", [{"role": "clerk", "level": "county"}]),
        f"lifecycle.transitions[{_move('withdraw')}].by[0]: only officials have a level,"
        " not clerk",
    ),
    (
        "an office of another level moves a queued nomination",
        _set(
            "transitions", _move("county_approve"), "by", [{"role": "official", "level": "city"}]
        ),
        f"lifecycle.transitions[{_move('county_approve')}] (county_approve).by[0]:"
        " 'county_review' is in the county office's queue; only county officials may move it,"
        " not official (city)",
    ),
    (
        "a clerk moves a queued nomination",
        _from_also("withdraw", "county_review"),
        f"lifecycle.transitions[{_move('withdraw')}] (withdraw).by[0]:"
        " 'county_review' is in the county office's queue; only county officials may move it,"
        " not clerk",
    ),
    (
        "a return without a required reason",
        _set("transitions", _move("city_return"), "reason_required", False),
        f"lifecycle.transitions[{_move('city_return')}] (city_return).reason_required:"
        " a return needs a reason",
    ),
    (
        "two submissions for the same nominations",
        lambda data: data["lifecycle"]["transitions"][_move("submit_to_city")].pop("entry_level"),
        f"lifecycle.transitions[{_move('submit_to_city')}] (submit_to_city): another submit"
        " from 'opinions' applies to the same nominations (set distinct entry_level)",
    ),
    (
        "opinion rule on a fact neither the form nor the self-check produces",
        _set("opinions", 0, "when", {"fact": "nope", "eq": True}),
        "lifecycle.opinions[0].when: fact 'nope' is produced neither by form 'skills_nominee'"
        " nor by the self-check of category 'skills_grand_award' (individual): the departments"
        " to consult about its nominees cannot be decided",
    ),
    (
        "opinion rule on a value the fact does not take",
        _set("opinions", 0, "when", {"fact": "skill_level", "in": ["senior", "master"]}),
        "lifecycle.opinions[0].when: 'master' is not a choice of 'skill_level'",
    ),
    (
        "opinion rule with a string for a yes/no fact",
        _set("opinions", 0, "when", {"not": {"fact": "is_unit_head", "eq": "yes"}}),
        "lifecycle.opinions[0].when: 'is_unit_head' is bool, compared with 'yes'",
    ),
    (
        "opinion rule on a kind of nominee that does not exist",
        _set("opinions", 0, "when", {"fact": "nominee_kind", "in": ["individual", "unit"]}),
        "lifecycle.opinions[0].when: 'unit' is not a value of 'nominee_kind'"
        " (individual, collective)",
    ),
    (
        "opinion rule without departments",
        _set("opinions", 0, "departments", []),
        "lifecycle.opinions[0].departments: List should have at least 1 item after validation,"
        " not 0",
    ),
    (
        "unknown field",
        _set("statuses", 0, "colour", "red"),
        "lifecycle.statuses[0].colour: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in LOADER_CASES], ids=[c[0] for c in LOADER_CASES]
)
def test_loader_error(change: Callable[[Data], None], expected: str) -> None:
    data = _data()
    change(data)
    assert _error(data) == expected


def test_an_unknown_action_names_its_path() -> None:
    data = _data()
    _set("transitions", 0, "action", "promote")(data)
    assert _error(data).startswith("lifecycle.transitions[0].action: Input should be ")


def test_both_campaigns_load_unchanged_through_a_dump() -> None:
    for cid in CAMPAIGN_IDS:
        reloaded = parse_campaign(_dump(_data(cid)), SOURCE)
        assert reloaded.lifecycle == lifecycle(cid)


def test_a_campaign_without_a_lifecycle_still_loads() -> None:
    data = _data()
    del data["lifecycle"]
    assert parse_campaign(_dump(data), SOURCE).lifecycle is None


def test_offices_from_the_regions_table_win_over_the_code_digits() -> None:
    # 梅河口市 (220581) lies in 通化市's digits (2205) but reports to the province.
    lc = lifecycle("jl-skills-2022")
    tonghua = Actor(role=Role.OFFICIAL, region="220500", level=Level.CITY)
    meihekou = Actor(role=Role.OFFICIAL, region="220581", level=Level.CITY)
    by_digits = NominationRef(status="city_review", unit_id=UNIT, region="220581")
    by_table = dataclasses.replace(by_digits, offices=frozenset({"220581", "220000"}))
    today = dt.date(2022, 10, 20)
    assert decide(lc, by_digits, tonghua, Action.START_PUBLICITY, today=today).allowed
    refused = decide(lc, by_table, tonghua, Action.START_PUBLICITY, today=today)
    assert (refused.allowed, refused.refusal) == (False, Refusal.OUTSIDE_REGION)
    assert decide(lc, by_table, meihekou, Action.START_PUBLICITY, today=today).allowed
