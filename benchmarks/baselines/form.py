"""The form both baselines run, and what ours answers: campaign, category, four yes/no questions.

Each user sends 7 texts: the campaign, the category, then 是, one invalid answer (也许: an error
reply and the same question again), 是, 否, 否. Ours gets the same texts for the real self-check
(jl-skills-2022 / technical_expert), where 也许 is not a yes/no answer either.
"""

from __future__ import annotations

from typing import Any

CAMPAIGN, CATEGORY = "jl-skills-2022", "technical_expert"
CAMPAIGNS = (CAMPAIGN, "jl-skills-2023")
CATEGORIES = (CATEGORY, "skill_master", "young_talent")
YES, NO = "是", "否"
INVALID = "也许"
TEXTS = (CAMPAIGN, CATEGORY, YES, INVALID, YES, NO, NO)
# The yes/no questions, by the key a baseline stores the answer under (our engine's fact ids).
QUESTIONS = (
    ("works_in_jilin", "您目前是否在吉林省内工作？"),
    ("frontline_skill_position", "您是否在生产、服务一线的技能岗位工作？"),
    ("is_unit_head", "您是否担任单位主要负责人？"),
    ("is_retired", "您是否已经退休？"),
)
# Ours sends two messages for the campaign, the category and the invalid answer (a greeting, a
# confirmation, the error, each before the next question); so do the baselines: 10 per user.
GREETING = "您好！这里是评选表彰申报助手。我会一次问一个问题，帮您判断是否符合评选条件。"
STARTING = "好的：下面开始逐项提问，共 4 题。"
ASK_CATEGORY = "请选择申报类别："
NOT_YES_NO = "请回答“是”或“否”。"
DONE = "自检问卷已完成，感谢您的填写。"
# What a baseline user's data holds after the 7 texts.
EXPECTED = {
    "campaign": CAMPAIGN,
    "category": CATEGORY,
    "works_in_jilin": True,
    "frontline_skill_position": True,
    "is_unit_head": False,
    "is_retired": False,
}
REPLIES_PER_USER = 10  # sendMessage calls per user: 2, 2, 1, 2, 1, 1, 1


def raw_update(
    update_id: int, user_id: int, text: str, date: int = 1_666_229_400
) -> dict[str, Any]:
    """A Bot API update as a webhook receives it (private chat: chat id = user id)."""
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": date,
            "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
        },
    }
