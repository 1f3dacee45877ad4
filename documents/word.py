"""The Word documents of issue 12, filled from Word templates with docxtpl.

- `form_docx`: 附件6 推荐审批表 of one nomination: every form value in form order, the tracking
  code, unit and category, and the approval blocks of the campaign's procedure.
- `cover_docx`: 附件4 档案袋封面, one page per nominee, the material list with the file counts.
- `opinions_docx`: 附件2 推荐对象征求意见表, per nominee a row per department to consult.
- `report_docx`: a draft 推荐报告 (seed 001 三（三）1) to complete and stamp.
- `publicity_docx`: the 公示名单 as posted: 序号、姓名、单位、申报类别 and nothing else.

The templates are .docx files under `documents/templates/` (drawn by `draw.py` there), looked up
per campaign first and then in `common/`; the 推荐审批表 is per campaign and form kind (person |
unit: an `Entry` carries no form id, and each campaign has one form per kind). Entries come
already masked for the audience (`conversations.documents.entry_of`); the form masks once more
what the audience may not read in full, so an entry made for another document cannot leak.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from docxtpl import DocxTemplate

from conversations.documents import DOC_TITLES, DocKind, Entry, Header, ranked, shows_in_full
from conversations.idnumber import mask_id_number
from conversations.validators import mask_mobile
from documents.sheet import TEMPLATES, TemplateError

COMMON = "common"
TO_FILL = "【请填写】"
# XML 1.0 allows no other control characters; \t and \n are a tab and a line break in Word.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


_STEMS = {  # the template's file name per document
    DocKind.FORM: "form",
    DocKind.COVER: "cover",
    DocKind.OPINIONS: "opinions",
    DocKind.REPORT: "report",
    DocKind.PUBLICITY: "publicity",
}


def template_path(campaign: str, doc: DocKind, kind: str | None = None) -> Path:
    """The template of document `doc` for `campaign` (and form kind `kind`): the campaign's own
    (`<campaign>/<doc>_<kind>.docx`, then `<campaign>/<doc>.docx`), else the common one."""
    stem = _STEMS[doc]
    names = [f"{stem}_{kind}.docx", f"{stem}.docx"] if kind else [f"{stem}.docx"]
    for folder in (campaign, COMMON):
        for name in names:
            path = TEMPLATES / folder / name
            if path.is_file():
                return path
    wanted = f"{campaign}/{names[0]}"
    raise TemplateError(
        f"没有{DOC_TITLES[doc]}模板：{TEMPLATES / wanted} (no {stem} template for {campaign})"
    )


def date_text(day: dt.date) -> str:
    """2022年10月10日."""
    return f"{day.year}年{day.month}月{day.day}日"


def period_text(period: tuple[dt.date, dt.date]) -> str:
    """2022年10月10日至10月14日 (the year once when both days share it)."""
    start, end = period
    tail = f"{end.month}月{end.day}日" if end.year == start.year else date_text(end)
    return f"{date_text(start)}至{tail}"


def clean(text: str) -> str:
    """Text safe for a Word run (control characters dropped; docxtpl escapes &, <, >)."""
    return _CONTROL.sub("", text)


def shown(header: Header, doc: DocKind, type_: str, text: str) -> str:
    """`text` of a value of type `type_` as `header.audience` may read it in document `doc`."""
    if not text or "*" in text or shows_in_full(header.audience, doc):
        return clean(text)
    if type_ == "id_number":
        return mask_id_number(text)
    if type_ == "mobile":
        return mask_mobile(text)
    return clean(text)


def name_label(entries: Sequence[Entry]) -> str:
    """What the name column is called: 姓名 for people, 单位名称 for collectives."""
    kinds = {e.kind for e in entries}
    if kinds == {"unit"}:
        return "单位名称"
    return "姓名" if kinds <= {"person"} else "姓名（单位名称）"


def _render(path: Path, context: dict[str, Any], out: str | Path | IO[bytes]) -> None:
    template = DocxTemplate(path)
    template.render(context, autoescape=True)
    template.save(out)


def _common(header: Header) -> dict[str, Any]:
    return {
        "campaign_title": clean(header.campaign_title),
        "scope": clean(header.scope),
        "generated": header.generated_at.strftime("%Y-%m-%d %H:%M"),
    }


def _who(entry: Entry) -> dict[str, Any]:
    return {
        "name": clean(entry.name),
        "name_label": name_label([entry]),
        "unit": clean(entry.unit),
        "region": clean(entry.region),
        "category": clean(entry.category_label),
        "code": clean(entry.code),
    }


def form_docx(header: Header, entry: Entry, out: str | Path | IO[bytes]) -> None:
    """Write the 推荐审批表 (附件6) of `entry` to `out`, from the template of its campaign and
    form kind."""
    path = template_path(entry.campaign, DocKind.FORM, entry.kind)
    values = [
        {"label": clean(v.label), "text": shown(header, DocKind.FORM, v.type, v.text)}
        for v in entry.values
    ]
    context = {**_common(header), **_who(entry), "form_title": clean(entry.form_title)}
    _render(path, {**context, "values": values}, out)


def cover_docx(header: Header, entries: Iterable[Entry], out: str | Path | IO[bytes]) -> None:
    """Write the 档案袋封面 (附件4) of `entries`, one page each, to `out`."""
    pages = [
        {
            **_who(e),
            "materials": [
                {"seq": i, "name": clean(m.name), "count": len(m.files)}
                for i, m in enumerate(e.materials, 1)
            ],
        }
        for e in entries
    ]
    context = {**_common(header), "entries": pages}
    _render(template_path(header.campaign, DocKind.COVER), context, out)


def opinions_docx(header: Header, entries: Iterable[Entry], out: str | Path | IO[bytes]) -> None:
    """Write the 推荐对象征求意见表 (附件2) of `entries`, one page each, to `out`: a row per
    department to consult, with room for its opinion, stamp and date, and whether its written
    opinion is already recorded."""
    pages = [
        {
            **_who(e),
            "departments": [
                {"name": clean(d), "state": "已取得" if d in e.opinions_recorded else "待征求"}
                for d in e.opinions
            ],
        }
        for e in entries
    ]
    context = {**_common(header), "entries": pages}
    _render(template_path(header.campaign, DocKind.OPINIONS), context, out)


def _rows(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    return [{"seq": i, **_who(e)} for i, e in enumerate(ranked(list(entries)), 1)]


def report_docx(
    header: Header,
    entries: Iterable[Entry],
    out: str | Path | IO[bytes],
    *,
    contact: str = "",
    publicity: tuple[dt.date, dt.date] | None = None,
) -> None:
    """Write a draft 推荐报告 of `entries` (in ranking order) to `out`: what the bot does not
    know (the experts' review, the publicity's outcome, the addressee) is marked 【请填写】."""
    rows = _rows(entries)
    if publicity is not None:
        said = (
            f"推荐人选已于{period_text(publicity)}在{clean(header.scope)}进行公示，"
            f"公示期间{TO_FILL}（有无异议及核查情况）。公示截图作为本报告附件附后。"
        )
    else:
        said = f"{TO_FILL}公示的时间、范围和结果。公示截图作为本报告附件附后。"
    context = {
        **_common(header),
        "addressee": f"{TO_FILL}（主送单位）",
        "rows": rows,
        "count": len(rows),
        "experts": f"{TO_FILL}专家评议的时间、方式、参加人员和评议结果。"
        "专家评审意见书作为本报告附件附后。",
        "publicity": said,
        "contact": clean(contact) if contact.strip() else f"{TO_FILL}（姓名、联系电话）",
    }
    _render(template_path(header.campaign, DocKind.REPORT), context, out)


def publicity_docx(
    header: Header,
    entries: Iterable[Entry],
    out: str | Path | IO[bytes],
    *,
    period: tuple[dt.date, dt.date],
    workdays: int,
    contact: str = "",
) -> None:
    """Write the 公示名单 of `entries` (in ranking order) to `out`: 序号、姓名、单位、申报类别
    only, never an ID number or a phone, and the period in working days."""
    listed = list(entries)
    rows = _rows(listed)
    context = {
        **_common(header),
        "rows": rows,
        "count": len(rows),
        "name_label": name_label(listed),
        "period": period_text(period),
        "workdays": workdays,
        "contact": clean(contact) if contact.strip() else TO_FILL,
        "date": date_text(period[0]),
    }
    _render(template_path(header.campaign, DocKind.PUBLICITY), context, out)


__all__ = [
    "cover_docx",
    "date_text",
    "form_docx",
    "opinions_docx",
    "period_text",
    "publicity_docx",
    "report_docx",
    "template_path",
]
