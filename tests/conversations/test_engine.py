"""The self-check engine on its own: no storage, no channel, a fixed clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import catalog as bot_catalog
from conversations.campaign import Catalog
from conversations.engine import Engine, Inbound, Reply, Step
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2022, 10, 20, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def load_catalog() -> Catalog:
    return bot_catalog.load_catalog(ROOT / "campaigns")


class Driver:
    """Holds the state between messages, like the runtime does with the store."""

    def __init__(self) -> None:
        self.engine = Engine(load_catalog(), clock=lambda: NOW)
        step = self.engine.start(None)
        self.state: dict[str, Any] = step.state
        self.last: Step = step

    def send(self, text: str) -> list[Reply]:
        self.last = self.engine.resume(self.state, Inbound(text))
        self.state = self.last.state
        return self.last.replies

    @property
    def asking(self) -> str | None:
        return self.last.replies[-1].key

    def texts(self) -> str:
        return "\n".join(r.text for r in self.last.replies)


GRAND_ELIGIBLE = {
    "works_in_jilin": "是", "frontline_skill_position": "是", "is_unit_head": "否",
    "is_retired": "否", "applying_both_awards": "否", "holds_jilin_skills_grand_award": "否",
    "holds_jilin_technical_expert": "是", "skill_level": "高级技师", "years_in_occupation": "12",
    "achv_competition_bronze_plus": "否", "achv_labor_model_or_may1_medal": "是",
    "achv_technical_breakthrough": "否", "achv_unique_skill_mentoring": "否",
    "achv_advanced_tech_promotion": "否", "consent": "同意", "has_violation_record": "否",
    "has_disciplinary_sanction": "否", "has_accountability_action": "否",
    "on_credit_blacklist": "否", "under_investigation": "否",
}  # fmt: skip


def to_grand_award(d: Driver) -> None:
    d.send("jl-skills-2022")
    d.send("skills_grand_award")
    assert d.asking == "works_in_jilin"


def answer_all(d: Driver, answers: dict[str, str]) -> None:
    while d.asking in answers:
        d.send(answers[d.asking])


def test_new_user_is_greeted_and_offered_both_campaigns() -> None:
    d = Driver()
    question = d.last.replies[-1]
    assert question.key == "campaign"
    assert [o.value for o in question.options] == ["jl-employment-2022", "jl-skills-2022"]


def test_whole_self_check_gives_a_verdict_and_an_event() -> None:
    d = Driver()
    to_grand_award(d)
    answer_all(d, GRAND_ELIGIBLE)
    assert d.asking == "summary"
    d.send("1")
    assert [r.verdict for r in d.last.replies if r.verdict] == ["eligible"]
    [event] = d.last.effects
    assert (event.campaign, event.category, event.verdict) == (
        "jl-skills-2022",
        "skills_grand_award",
        "eligible",
    )
    assert event.completed_at == NOW
    assert "推荐审批表" in d.last.replies[0].text


def test_bad_answer_is_re_asked_with_the_reason_and_nothing_stored() -> None:
    d = Driver()
    to_grand_award(d)
    before = dict(d.state["answers"])
    replies = d.send("也许吧")
    assert "请回答“是”或“否”" in replies[0].text
    assert d.asking == "works_in_jilin"
    assert d.state["answers"] == before


def test_hard_failure_stops_early_and_offers_continue_restart_finish() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("否")  # not working in Jilin
    assert d.asking == "next"
    assert "「一、（一）」" in d.texts()
    assert [o.value for o in d.last.replies[-1].options] == ["continue", "restart", "finish"]
    d.send("1")  # continue answering: the next question, and the failure is not repeated
    assert d.asking == "frontline_skill_position"
    d.send("是")
    assert d.asking == "is_unit_head"


def test_finish_after_hard_failure_gives_ineligible_with_the_clause() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("否")
    d.send("3")
    [verdict] = [r for r in d.last.replies if r.verdict]
    assert verdict.verdict == "ineligible"
    assert "评选范围为现在吉林省域内" in verdict.text
    assert "您的回答：否" in verdict.text


def test_restart_from_the_early_stop_starts_over() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("否")
    d.send("重新开始")
    assert d.asking == "campaign"
    assert d.state["answers"] == {}


def test_back_returns_to_the_previous_question_and_keeps_later_answers() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("是")
    d.send("是")
    assert d.asking == "is_unit_head"
    d.send("/back")
    assert d.asking == "frontline_skill_position"
    assert "当前回答：是" in (d.last.replies[-1].hint or "")
    d.send("/back")
    assert d.asking == "works_in_jilin"
    d.send("是")  # re-answered: go on from the first unanswered question
    assert d.asking == "is_unit_head"
    assert d.state["answers"]["frontline_skill_position"] is True


def test_back_from_the_first_question_returns_to_category_then_campaign() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("/back")
    assert d.asking == "category"
    d.send("/back")
    assert d.asking == "campaign"
    d.send("/back")
    assert d.asking == "campaign"
    assert "第一步" in d.texts()


def test_status_names_campaign_category_and_questions_left() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("是")
    d.send("/status")
    text = d.last.replies[0].text
    assert "第八届吉林技能大奖和吉林省技术能手" in text
    assert "吉林技能大奖" in text
    assert "已回答 1 题，还剩约 18 题" in text
    assert d.asking == "works_in_jilin" or d.asking == "frontline_skill_position"


def test_help_lists_commands_and_re_asks() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("/help")
    assert all(c in d.texts() for c in ("/back", "/restart", "/status", "/help"))
    assert d.asking == "works_in_jilin"


def test_unknown_command_is_answered_politely() -> None:
    d = Driver()
    d.send("/drop_table")
    assert "没有这个命令" in d.texts()
    assert d.asking == "campaign"


def test_summary_edit_changes_one_answer_without_redoing_the_rest() -> None:
    d = Driver()
    to_grand_award(d)
    answer_all(d, GRAND_ELIGIBLE)
    summary = d.last.replies[-1]
    number = [o.value for o in summary.options].index("edit:years_in_occupation") + 1
    d.send(str(number))
    assert d.asking == "years_in_occupation"
    d.send("6")  # < 8 and no medal: a hard failure
    assert d.asking == "next"
    d.send("继续回答其余问题")
    assert d.asking == "summary"  # nothing else to ask
    d.send("1")
    [verdict] = [r.verdict for r in d.last.replies if r.verdict]
    assert verdict == "ineligible"
    assert d.state["answers"]["achv_labor_model_or_may1_medal"] is True


def test_irrelevant_question_is_skipped() -> None:
    d = Driver()
    d.send("jl-skills-2022")
    d.send("technical_expert")
    answer_all(
        d,
        {k: v for k, v in GRAND_ELIGIBLE.items() if k != "skill_level"}
        | {"holds_jilin_technical_expert": "否"},
    )
    assert d.asking == "skill_level"
    d.send("高级工")
    assert d.asking == "years_in_occupation"  # rural_or_new_occupation_title not needed
    d.send("/back")
    d.send("中级工")
    assert d.asking == "rural_or_new_occupation_title"


def test_start_with_saved_state_re_asks_the_pending_question() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("是")
    step = d.engine.start(d.state)
    assert "欢迎回来" in step.replies[0].text
    assert step.replies[-1].key == "frontline_skill_position"


def test_message_after_the_verdict_repeats_it_and_points_to_restart() -> None:
    d = Driver()
    to_grand_award(d)
    answer_all(d, GRAND_ELIGIBLE)
    d.send("1")
    d.send("你好")
    assert "/restart" in d.texts()
    assert d.last.effects == []


def test_first_message_that_names_a_campaign_is_taken_as_the_choice() -> None:
    engine = Engine(load_catalog(), clock=lambda: NOW)
    step = engine.resume(None, Inbound("2"))
    assert step.replies[-1].key == "category"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07", "a" * 10_000])
def test_unusable_input_re_asks(text: str) -> None:
    d = Driver()
    to_grand_award(d)
    before = d.state["answers"]
    d.send(text)
    assert d.asking == "works_in_jilin"
    assert d.state["answers"] == before


@pytest.mark.parametrize(
    ("category", "offered"),
    [
        ("employment_individual", ["employment_staff", "employment_worker"]),
        ("migrant_individual", ["migrant_staff", "migrant_worker"]),
    ],
)
def test_person_type_offers_only_the_category_kinds(category: str, offered: list[str]) -> None:
    d = Driver()
    d.send("jl-employment-2022")
    d.send(category)
    question = d.last.replies[-1]
    assert question.key == "person_type"
    assert [o.value for o in question.options] == offered
    d.send("3")  # a third option exists in the fact, but not in this category
    assert d.asking == "person_type"
    assert "1–2" in d.texts()


def test_a_saved_session_survives_a_changed_campaign_file() -> None:
    d = Driver()
    to_grand_award(d)
    d.send("是")
    d.send("是")
    assert d.asking == "is_unit_head"
    path = ROOT / "campaigns" / "jl-skills-2022.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    grand = data["categories"][0]
    grand["questions"].remove("is_unit_head")  # the pending question is gone
    data["rules"] = [r for r in data["rules"] if r["id"] != "not_unit_head"]
    changed = parse_campaign(yaml.safe_dump(data, allow_unicode=True), "changed.yaml")
    others = [c for c in load_catalog() if c.id != changed.id]
    engine = Engine(Catalog([*others, changed]), clock=lambda: NOW)
    step = engine.start(d.state)
    assert step.replies[-1].key == "is_retired"  # the next question that still exists
    assert step.state["answers"] == {"works_in_jilin": True, "frontline_skill_position": True}

    # Rename the category everywhere the file names it (rules, forms, ...).
    text = yaml.safe_dump(data, allow_unicode=True).replace("skills_grand_award", "renamed")
    renamed = parse_campaign(text, "renamed.yaml")
    engine = Engine(Catalog([*others, renamed]), clock=lambda: NOW)
    assert engine.start(d.state).replies[-1].key == "category"
