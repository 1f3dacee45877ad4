"""What differs between the 推荐审批表 of one campaign and form kind: the heading of its values
and the approval blocks of the notice's procedure, bottom up.

The PDF (`documents.pdf`) reads them here at run time, and `documents/templates/draw.py` draws
the Word templates from the same texts, so the two documents cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FormLayout:
    heading: str  # the values table's heading
    levels: tuple[str, ...]  # the approval blocks, bottom up, as the notice's procedure runs


FORMS: dict[tuple[str, str], FormLayout] = {
    # Seed 001 三、（一）: 单位领导集体研究确定推荐对象 → 县级以上人社部门逐级审核 → 市（州）级
    # 人社部门综合评审 → 领导小组办公室（省人社厅职业能力建设处）综合评审.
    ("jl-skills-2022", "person"): FormLayout(
        "被推荐人基本情况",
        (
            "推荐单位意见",
            "县级人力资源和社会保障部门审核意见",
            "市（州）级人力资源和社会保障部门意见",
            "吉林技能大奖和吉林省技术能手评选表彰工作领导小组办公室意见",
        ),
    ),
    # Seed 000 三、（一）–（四）: 集体研究和民主推荐 → 县（市、区）评选表彰工作领导小组办公室 →
    # 市（州）评选表彰工作领导小组 → 省评选表彰工作领导小组（复评、审定）.
    ("jl-employment-2022", "person"): FormLayout(
        "先进个人基本情况",
        (
            "推荐单位意见",
            "县（市、区）评选表彰工作领导小组办公室意见",
            "市（州）评选表彰工作领导小组意见",
            "省评选表彰工作领导小组意见",
        ),
    ),
    ("jl-employment-2022", "unit"): FormLayout(
        "先进集体基本情况",
        (
            "推荐单位（主管部门）意见",
            "县（市、区）评选表彰工作领导小组办公室意见",
            "市（州）评选表彰工作领导小组意见",
            "省评选表彰工作领导小组意见",
        ),
    ),
}

# A campaign added without its own layout still gets a form with the four levels of both notices.
DEFAULT = FormLayout(
    "基本情况", ("推荐单位意见", "县级审核意见", "市（州）级审核意见", "省级审核意见")
)


def layout_for(campaign: str, kind: str) -> FormLayout:
    """The layout of the 推荐审批表 of `campaign` for form kind `kind` (person | unit)."""
    return FORMS.get((campaign, kind), DEFAULT)


__all__ = ["DEFAULT", "FORMS", "FormLayout", "layout_for"]
