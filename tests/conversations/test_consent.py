"""The nominee's consent and the retention period, as the core decides them (issue 11):
who must consent, what counts as consent, who may give or take it back, when a nomination is
still in the unit's hands, when a campaign's last stage ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError
from support.console_harness import catalog

from conversations.consent import (
    at_unit,
    consent_given,
    consent_missing,
    consent_refusal,
    last_stage,
    retention_ends,
    unsubmitted_statuses,
)
from conversations.forms import Form, Material
from conversations.identity import Actor, Level, Role
from conversations.reads import AttachmentView, NominationDetail, NominationView

SKILLS = catalog().get("jl-skills-2022")
EMPLOYMENT = catalog().get("jl-employment-2022")
AT = dt.datetime(2022, 10, 20, 1, 30, tzinfo=dt.UTC)
MISSING = (
    "被推荐人尚未确认同意（/track 跟踪码 后回复“同意”），或上传签字的个人信息处理同意书"
    "（附件“被推荐人个人信息处理同意书”：在这项推荐中选择“补充附件”上传）。"
)
CLERK = Actor(role=Role.CLERK, region="220104", unit_id=1)


def detail(
    *,
    category: str = "technical_expert",
    status: str = "opinions",
    kind: str = "individual",
    files: tuple[str, ...] = (),
    consent_at: dt.datetime | None = None,
) -> NominationDetail:
    view = NominationView(
        1, "jl-skills-2022", category, status, "ABCDEFGH23", "张*三", "220104", 1
    )
    if category.startswith(("employment", "migrant")):
        view = replace(view, campaign="jl-employment-2022")
    return NominationDetail(
        view=view,
        kind=kind,
        fields={},
        facts={},
        attachments=[AttachmentView(i, m, "a.pdf", "pdf", 1) for i, m in enumerate(files)],
        verdict=None,
        opinions=[],
        publicity=None,
        consent_at=consent_at,
    )


def test_a_person_without_consent_may_not_leave_the_unit_and_is_told_what_is_missing() -> None:
    assert consent_missing(SKILLS, detail()) == MISSING
    assert not consent_given(SKILLS, detail())


def test_consent_in_chat_or_the_signed_form_is_enough() -> None:
    assert consent_missing(SKILLS, detail(consent_at=AT)) is None
    assert consent_missing(SKILLS, detail(files=("nominee_consent",))) is None
    # Another file is not the consent form.
    assert consent_missing(SKILLS, detail(files=("id_card",))) == MISSING


def test_a_collective_has_no_person_to_consent() -> None:
    collective = detail(category="employment_collective", kind="collective")
    assert consent_given(EMPLOYMENT, collective)
    assert consent_refusal(EMPLOYMENT, collective, None, True, given=True) == "collective"


@pytest.mark.parametrize(
    ("actor", "follows", "status", "given", "why"),
    [
        (None, True, "opinions", True, None),
        (None, True, "opinions", False, None),
        (None, True, "county_review", True, None),  # consenting late is recorded
        (None, True, "county_review", False, "left the unit"),
        (None, True, "returned", False, None),  # back in the unit's hands
        (None, True, "awarded", True, "over"),
        (None, False, "opinions", True, "not following"),
        (CLERK, True, "opinions", True, "clerk"),
        (Actor(role=Role.OFFICIAL, region="220104", level=Level.COUNTY), True, "opinions", True,
         "bound"),
    ],
)  # fmt: skip
def test_who_may_give_or_take_back_the_consent(
    actor: Actor | None, follows: bool, status: str, given: bool, why: str | None
) -> None:
    assert consent_refusal(SKILLS, detail(status=status), actor, follows, given=given) == why


def test_the_units_hands_and_the_statuses_of_a_nomination_never_submitted() -> None:
    lifecycle = SKILLS.lifecycle
    assert lifecycle is not None
    held = {s.key for s in lifecycle.statuses if at_unit(lifecycle, s.key)}
    assert held == {"draft", "unit_publicity", "opinions", "returned"}
    assert unsubmitted_statuses(lifecycle) == held | {"withdrawn"}
    assert not at_unit(lifecycle, "no_such_status")


def test_the_last_stage_is_the_last_window_or_the_as_of_date() -> None:
    assert last_stage(SKILLS, SKILLS.windows) == dt.date(2022, 11, 4)  # 报送 11-03..04
    assert last_stage(EMPLOYMENT, EMPLOYMENT.windows) == dt.date(2022, 12, 1)  # as_of
    moved = [w.model_copy(update={"end": dt.date(2023, 1, 6)}) for w in SKILLS.windows]
    assert last_stage(SKILLS, moved) == dt.date(2023, 1, 6)
    assert retention_ends(SKILLS, SKILLS.windows, 180) == dt.date(2023, 5, 3)
    assert retention_ends(SKILLS, SKILLS.windows, 0) == dt.date(2022, 11, 4)


FORM: dict[str, Any] = {
    "id": "f",
    "categories": ["c"],
    "kind": "person",
    "fields": [{"key": "name", "type": "text", "label": "姓名", "question": "？"}],
}


def test_the_consent_form_is_never_required_and_there_is_one() -> None:
    with pytest.raises(ValidationError, match="never required"):
        Material(key="consent_form", name="同意书", consent=True)
    two = [{"key": k, "name": "同意书", "required": False, "consent": True} for k in ("a", "b")]
    with pytest.raises(ValidationError, match="only one"):
        Form.model_validate({**FORM, "materials": two})
    one = Form.model_validate({**FORM, "materials": two[:1]})
    assert one.consent_material() is not None
