"""/back, then a changed answer: the answers kept further on are said again (issue 11).

Before the fix the engine jumped over the kept answers to the next unanswered question without a
word, and a hard failure among them, acknowledged once, was never said again — so a user who
went back and changed one answer could reach the verdict believing the kept answers were fine.
"""

from __future__ import annotations

from support.engine_chat import Chat


def grand_award_to_holds_award(chat: Chat) -> None:
    """Skills grand award: the unit head's answer fails a hard rule, acknowledged, and on."""
    for answer in ("jl-skills-2022", "skills_grand_award", "是", "是", "是"):
        chat.send(answer)
    assert chat.asking == "next"  # 现任企事业单位负责人: 是 fails 三、（二）2
    assert "现任企事业单位负责人不得参加此次评选" in chat.text()
    chat.send("继续回答其余问题")
    chat.send("否")  # is_retired
    chat.send("否")  # applying_both_awards
    assert chat.asking == "holds_jilin_skills_grand_award"


def test_a_changed_answer_shows_the_kept_answers_and_says_their_failure_again() -> None:
    chat = Chat()
    grand_award_to_holds_award(chat)
    for _ in range(4):
        chat.send("/back")
    assert chat.asking == "frontline_skill_position"
    chat.send("否")  # changed: 是 -> 否, itself a hard failure (一、（一）)
    text = chat.text()
    assert chat.asking == "next"
    assert "须为生产服务一线技能岗位人员" in text
    # The answers kept after it, and the failure one of them causes, said again:
    for kept in ("现任企事业单位负责人：是", "已退休：否", "同时申报两个奖项：否"):
        assert kept in text
    assert "现任企事业单位负责人不得参加此次评选" in text
    chat.send("继续回答其余问题")
    assert chat.asking == "holds_jilin_skills_grand_award"  # then on from where it was


def test_a_changed_answer_without_a_new_failure_still_shows_what_was_kept() -> None:
    chat = Chat()
    grand_award_to_holds_award(chat)
    for _ in range(3):
        chat.send("/back")
    assert chat.asking == "is_unit_head"
    chat.send("否")  # changed: the failure is gone
    text = chat.text()
    assert "已退休：否" in text
    assert "同时申报两个奖项：否" in text
    assert "不得参加此次评选" not in text
    assert chat.asking == "holds_jilin_skills_grand_award"


def test_a_failure_the_kept_answers_cause_is_said_again_when_another_answer_changes() -> None:
    chat = Chat()
    grand_award_to_holds_award(chat)
    for _ in range(2):
        chat.send("/back")
    assert chat.asking == "is_retired"
    chat.send("是")  # changed: 否 -> 是, a new failure; the kept one is not re-said (before it)
    text = chat.text()
    assert "退休人员不得参加此次评选" in text
    assert "同时申报两个奖项：否" in text
    chat.send("继续回答其余问题")
    assert chat.asking == "holds_jilin_skills_grand_award"


def test_the_same_answer_again_moves_on_as_before_with_the_kept_answers_named() -> None:
    chat = Chat()
    grand_award_to_holds_award(chat)
    chat.send("/back")
    assert chat.asking == "applying_both_awards"
    chat.send("否")  # unchanged, and nothing kept after it: straight on
    assert chat.asking == "holds_jilin_skills_grand_award"
    assert chat.last.replies[:-1] == []


def test_an_edit_from_the_summary_says_the_failures_again_but_does_not_list_the_answers() -> None:
    chat = Chat()
    grand_award_to_holds_award(chat)
    answers = {
        "holds_jilin_skills_grand_award": "否", "holds_jilin_technical_expert": "是",
        "skill_level": "高级技师", "years_in_occupation": "12",
        "achv_competition_bronze_plus": "否", "achv_labor_model_or_may1_medal": "是",
        "achv_technical_breakthrough": "否", "achv_unique_skill_mentoring": "否",
        "achv_advanced_tech_promotion": "否", "consent": "同意", "has_violation_record": "否",
        "has_disciplinary_sanction": "否", "has_accountability_action": "否",
        "on_credit_blacklist": "否", "under_investigation": "否",
    }  # fmt: skip
    while chat.asking in answers:
        chat.send(answers[chat.asking])
    assert chat.asking == "summary"
    options = [o.value for o in chat.last.replies[-1].options]
    chat.send(str(options.index("edit:is_retired") + 1))
    chat.send("是")
    text = chat.text()
    assert "退休人员不得参加此次评选" in text
    assert "现任企事业单位负责人不得参加此次评选" not in text  # before the edited answer
    assert "保留" not in text  # the summary lists every answer anyway
    chat.send("继续回答其余问题")
    assert chat.asking == "summary"
