"""The self-check's consent question and what declining it skips (issue 11), and the answers
the self-check refuses because they cannot be true together: a birth date that is none, years
of work beyond the age."""

from __future__ import annotations

import pytest
from support.engine_chat import NOW, Chat

ENTERPRISE = [
    "jl-employment-2022", "employment_collective", "企业", "否", "否", "否", "否", "10",
    "是", "是", "是", "是",
]  # fmt: skip


def to_consent(chat: Chat) -> None:
    for answer in ENTERPRISE:
        chat.send(answer)
    assert chat.asking == "consent"  # before major_labor_dispute, the first sensitive question


@pytest.mark.parametrize("word", ["是", "好", "可以", "行", "嗯", "同意", "1", "好的。", "ＯＫ"])
def test_yes_words_give_consent(word: str) -> None:
    chat = Chat()
    to_consent(chat)
    chat.send(word)
    assert chat.asking == "major_labor_dispute"
    assert chat.state["consented"] is True


@pytest.mark.parametrize("word", ["不同意", "否", "不", "不行", "2"])
def test_no_words_decline(word: str) -> None:
    chat = Chat()
    to_consent(chat)
    chat.send(word)
    assert chat.state["declined"] is True
    assert chat.asking == "achv_unit_employment_contribution"


def test_an_unclear_answer_to_consent_is_asked_again() -> None:
    chat = Chat()
    to_consent(chat)
    chat.send("也许")
    assert chat.asking == "consent"
    assert "1–2" in chat.text()


def test_declining_skips_only_the_sensitive_questions_and_the_verdict_names_them() -> None:
    chat = Chat()
    to_consent(chat)
    chat.send("不同意")
    assert "其余问题继续" in chat.text()
    # The merit question after the sensitive ones is still asked (it used to end the check).
    assert chat.asking == "achv_unit_employment_contribution"
    chat.send("是")
    assert chat.asking == "summary"
    chat.send("1")
    [verdict] = [r for r in chat.last.replies if r.verdict]
    assert verdict.verdict == "incomplete"
    assert (
        "以下各项未回答，须由所在单位核实：发生过重大劳动争议或群体性事件；近三年发生重大工伤事故"
        in verdict.text
    )
    assert "尚未回答" not in verdict.text  # nothing else is open
    assert chat.state["answers"]["achv_unit_employment_contribution"] is True
    assert "major_labor_dispute" not in chat.state["answers"]


def test_back_onto_a_declined_question_asks_for_consent_again() -> None:
    chat = Chat()
    to_consent(chat)
    chat.send("不同意")
    chat.send("是")  # the merit
    assert chat.asking == "summary"
    chat.send("/back")  # the last question: the merit
    assert chat.asking == "achv_unit_employment_contribution"
    chat.send("/back")  # before it: a sensitive question, declined — consent first
    assert chat.asking == "consent"
    chat.send("同意")
    assert chat.asking == "major_labor_dispute"


def test_the_skills_check_declined_goes_to_the_summary_with_every_other_answer() -> None:
    chat = Chat()
    answers = [
        "jl-skills-2022", "technical_expert", "是", "是", "否", "否", "否", "否", "高级工", "6",
        "是", "否", "否", "否",
    ]  # fmt: skip
    for answer in answers:
        chat.send(answer)
    assert chat.asking == "consent"
    chat.send("否")
    assert chat.asking == "summary"
    chat.send("1")
    [verdict] = [r for r in chat.last.replies if r.verdict]
    assert "须由所在单位核实：2017年以来有违法违纪行为；" in verdict.text


def to_birth_date(chat: Chat) -> None:
    for answer in ("jl-employment-2022", "employment_individual", "1"):
        chat.send(answer)
    assert chat.asking == "birth_date"


@pytest.mark.parametrize(
    ("typed", "said"),
    [("2030-01-01", "晚于今天（2022-10-20）"), ("1899-12-31", "早于 1900-01-01")],
)
def test_a_birth_date_that_cannot_be_one_is_refused_and_asked_again(typed: str, said: str) -> None:
    chat = Chat()
    to_birth_date(chat)
    chat.send(typed)
    assert said in chat.text()
    assert chat.asking == "birth_date"
    assert "birth_date" not in chat.state["answers"]


def test_a_birth_date_after_the_campaigns_as_of_is_refused() -> None:
    chat = Chat(now=NOW.replace(year=2023, month=6, day=1))
    to_birth_date(chat)
    chat.send("2023-03-01")  # before today (2023-06-01), after as_of: an age of −1 then
    assert "晚于本次评选计算年龄的日期 2022-12-01" in chat.text()
    assert chat.asking == "birth_date"


def test_years_in_role_beyond_the_age_less_16_are_refused_naming_the_law() -> None:
    chat = Chat()
    to_birth_date(chat)
    chat.send("2003-06-01")  # 19 on 2022-12-01: at most 3 years of work
    chat.send("无")  # admin_rank
    chat.send("否")  # already_awarded
    assert chat.asking == "years_in_role_consecutive"
    chat.send("8")
    text = chat.text()
    assert "连续从事本职工作年限（8 年）与年龄不符" in text
    assert "按出生日期，到 2022-12-01 年满 19 周岁" in text
    assert "《中华人民共和国劳动法》第十五条" in text
    assert "最多 3 年" in text
    assert chat.asking == "years_in_role_consecutive"
    chat.send("3")
    assert chat.asking == "achv_employment_work_contribution"


def test_a_changed_birth_date_clears_the_years_it_disagrees_with_and_asks_them_again() -> None:
    chat = Chat()
    to_birth_date(chat)
    for answer in ("1980-05-06", "无", "否", "2", "10"):
        chat.send(answer)
    assert chat.asking == "achv_employment_work_contribution"
    for _ in range(5):
        chat.send("/back")
    assert chat.asking == "birth_date"
    chat.send("2000-01-01")  # 22: at most 6 years; the 10 years kept disagree
    text = chat.text()
    assert "累计从事本职工作年限（10 年）与年龄不符" in text
    assert "原来的回答（10）已清除" in text
    assert "years_in_role_total" not in chat.state["answers"]
    assert chat.asking == "years_in_role_total"
