"""The official documents, as data: who receives which, what they show, what is masked.

The notices (seed 001 三（三）, seed 000 三) ask each unit and each office for a set of
documents; this module decides that set per role, the audience a set is made for, and turns
one nomination as stored into an `Entry`: its values as that audience may read them, in the
form's order. Rendering (DOCX, XLSX, PDF, PNG) is `documents/`; reading the snapshot is
`storage.exports`; this module does neither (it is pure, like the rest of conversations/).

Masking per audience (DESIGN §6, issue 12): full ID numbers and phones only for the province,
and in a clerk's own 推荐审批表 (the unit stamps it); everything else — a clerk's summary, the
county and city sets, the 公示名单 — shows 220104********0024 and 139****5678. The public list
names the nominee, the unit and the category and nothing more.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conversations.campaign import Campaign
from conversations.crossrules import NominationFacts, limits_for, quota_band
from conversations.form_display import display
from conversations.forms import FieldType, Form, FormKind, derive_fields
from conversations.identity import Actor, Level, Role
from conversations.lifecycle import Counts, opinion_departments, opinion_facts


class Audience(enum.StrEnum):
    """Whom a document set is made for; it decides the masking."""

    PROVINCE = "province"  # the provincial office: everything in full
    CITY = "city"
    COUNTY = "county"
    UNIT = "unit"  # the clerk's own set
    PUBLIC = "public"  # the 公示名单 as posted


class DocKind(enum.StrEnum):
    FORM = "forms"  # 推荐审批表 (附件6), one per nomination: DOCX and PDF
    SUMMARY = "summary"  # 汇总表 (附件5), ranked: XLSX
    COVER = "cover"  # 档案袋封面 (附件4): DOCX
    OPINIONS = "opinions"  # 征求意见表 (附件2): DOCX, the departments per nominee
    BOOK = "book"  # 材料目录 and the attached files merged behind it: PDF
    REPORT = "report"  # 推荐报告, a draft to complete and stamp: DOCX
    PUBLICITY = "publicity"  # 公示名单: DOCX and PDF, masked
    QUOTA = "quota"  # 名额对照图: PNG and its text twin (/quota)


DOC_TITLES: dict[DocKind, str] = {
    DocKind.FORM: "推荐审批表",
    DocKind.SUMMARY: "推荐汇总表",
    DocKind.COVER: "档案袋封面",
    DocKind.OPINIONS: "征求意见表",
    DocKind.BOOK: "申报材料目录",
    DocKind.REPORT: "推荐报告",
    DocKind.PUBLICITY: "公示名单",
    DocKind.QUOTA: "推荐名额对照",
}

# What `/documents` sends, in this order: a clerk's unit set; an office's region set.
CLERK_SET: tuple[DocKind, ...] = (
    DocKind.FORM,
    DocKind.SUMMARY,
    DocKind.COVER,
    DocKind.OPINIONS,
    DocKind.BOOK,
    DocKind.REPORT,
)
OFFICIAL_SET: tuple[DocKind, ...] = (
    DocKind.SUMMARY,
    DocKind.PUBLICITY,
    DocKind.FORM,
    DocKind.COVER,
    DocKind.OPINIONS,
    DocKind.BOOK,
    DocKind.REPORT,
)


def audience_for(actor: Actor | None) -> Audience | None:
    """The audience of the documents `actor` may ask for; None: none (an applicant)."""
    if actor is None or actor.role is Role.APPLICANT:
        return None
    if actor.role is Role.CLERK:
        return Audience.UNIT
    return {
        Level.PROVINCE: Audience.PROVINCE,
        Level.CITY: Audience.CITY,
        Level.COUNTY: Audience.COUNTY,
    }.get(actor.level or Level.COUNTY, Audience.COUNTY)


def documents_for(actor: Actor | None) -> tuple[DocKind, ...]:
    """The documents `/documents` produces for `actor` (empty: none)."""
    audience = audience_for(actor)
    if audience is None:
        return ()
    return CLERK_SET if audience is Audience.UNIT else OFFICIAL_SET


def in_documents(campaign: Campaign, status: str) -> bool:
    """Whether a nomination at `status` belongs in the documents: filed (not the draft) and still
    holding its nominee (not withdrawn, rejected or revoked: lifecycle `counts:`). A returned
    one stays: it is still the unit's nomination, being corrected."""
    lifecycle = campaign.lifecycle
    if lifecycle is None:
        return False
    return status != lifecycle.initial and status not in lifecycle.not_counting(Counts.NOMINEE)


def shows_in_full(audience: Audience, kind: DocKind) -> bool:
    """Whether ID numbers and phones appear in full in document `kind` for `audience`."""
    if kind is DocKind.PUBLICITY or audience is Audience.PUBLIC:
        return False
    if audience is Audience.PROVINCE:
        return True
    return audience is Audience.UNIT and kind is DocKind.FORM


@dataclass(frozen=True, slots=True)
class Value:
    """One form value as a document prints it."""

    key: str
    label: str
    text: str  # display text, already masked for the audience ("" when not filled)
    type: str  # the FieldType value (text, id_number, mobile, enum, list, …)


@dataclass(frozen=True, slots=True)
class FileLine:
    """One stored file of a material (the bytes stay in the file store)."""

    attachment_id: int
    filename: str
    kind: str  # jpg | png | pdf | docx


@dataclass(frozen=True, slots=True)
class MaterialLine:
    """One material of the form, in the notice's order, with the files the clerk attached."""

    key: str
    name: str
    required: bool
    files: tuple[FileLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One nomination as the documents show it, for one audience."""

    id: int
    code: str  # tracking code
    campaign: str
    category: str
    category_label: str
    kind: str  # person | unit (the form's kind)
    form_title: str
    status: str
    unit: str  # the nominating unit's registered name
    region: str  # the unit's region name (长春市朝阳区)
    region_code: str
    rank: int | None  # 1-based place in the ranking of the set's scope; None: not ranked
    values: tuple[Value, ...]  # the form's fields in form order (derived fields included)
    materials: tuple[MaterialLine, ...]
    opinions: tuple[str, ...]  # the departments to consult about this nominee
    opinions_recorded: tuple[str, ...]
    publicity: tuple[dt.date, dt.date] | None
    nominee: str = ""  # the person's name, or the unit's name (the form's `names:` field)

    def value(self, key: str) -> str:
        """The display text of field `key` ("" when the form has no such field or it is empty)."""
        for v in self.values:
            if v.key == key:
                return v.text
        return ""

    @property
    def name(self) -> str:
        """The nominee as the documents name them: the person's name or the unit's name."""
        return self.nominee or self.unit


@dataclass(frozen=True, slots=True)
class Header:
    """What a document set is about: the campaign, the scope, the audience, when."""

    campaign: str
    campaign_title: str  # 第八届吉林技能大奖和吉林省技术能手评选表彰
    scope: str  # the unit's name, or the region's name (with its level)
    audience: Audience
    generated_at: dt.datetime


def entry_of(
    campaign: Campaign,
    form: Form,
    *,
    id: int,
    code: str,
    category: str,
    status: str,
    unit: str,
    region: str,
    region_code: str,
    fields: Mapping[str, Any],
    attachments: Sequence[tuple[str, FileLine]],
    opinions_recorded: Sequence[str],
    publicity: tuple[dt.date, dt.date] | None,
    rank: int | None,
    audience: Audience,
    doc: DocKind,
) -> Entry:
    """A stored nomination as document `doc` for `audience` shows it.

    `fields` are the decrypted form values; `attachments` pairs each stored file with its
    material key. Sensitive values are masked unless `shows_in_full(audience, doc)`.
    """
    full = shows_in_full(audience, doc)
    stored = {**fields, **derive_fields(form, fields)}  # 性别, 出生年月 from the ID number
    values = []
    for f in form.fields:
        raw = stored.get(f.key)
        if raw is None or raw == "" or raw == []:
            text = ""
        elif f.sensitive and not full and f.type not in (FieldType.ID_NUMBER, FieldType.MOBILE):
            text = "（已隐藏）"
        else:
            text = display(f, raw, full=full)
        values.append(Value(f.key, f.label, text, f.type.value))
    materials = tuple(
        MaterialLine(
            m.key,
            m.name,
            m.required,
            tuple(file for key, file in attachments if key == m.key),
        )
        for m in form.materials
    )
    category_label = next((c.name for c in campaign.categories if c.id == category), category)
    lifecycle = campaign.lifecycle
    nominee_kind = "collective" if form.kind is FormKind.UNIT else "individual"
    consulted = (
        tuple(opinion_departments(lifecycle, opinion_facts(nominee_kind, fields, {})))
        if lifecycle is not None
        else ()
    )
    return Entry(
        id=id,
        code=code,
        campaign=campaign.id,
        category=category,
        category_label=category_label,
        kind=form.kind.value,
        form_title=form.title or "推荐审批表",
        status=status,
        unit=unit,
        region=region,
        region_code=region_code,
        rank=rank,
        values=tuple(values),
        materials=materials,
        opinions=consulted,
        opinions_recorded=tuple(opinions_recorded),
        publicity=publicity,
        nominee=next((str(fields.get(f.key) or "") for f in form.fields if f.names), ""),
    )


def ranked(entries: Sequence[Entry]) -> list[Entry]:
    """Entries in ranking order: ranked ones by rank, then the unranked in the order given."""
    return sorted(entries, key=lambda e: (e.rank is None, e.rank or 0))  # sorted() is stable


def apply_order(current: Sequence[int], typed: str) -> list[int] | str:
    """A new ranking from what a person typed: the list's numbers in the new order
    (`3 1 2`, `3，1，2`, `3、1、2`). Numbers left out keep their relative order after those
    given. Returns the ids in the new order, or an error text (Chinese) to re-ask with."""
    cleaned = typed
    for sep in ("，", ",", "、", ";", "；", "　"):
        cleaned = cleaned.replace(sep, " ")
    words = cleaned.split()
    if not words:
        return "请按新的顺序输入序号，例如：3 1 2"
    picked: list[int] = []
    for word in words:
        digits = word.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        if not digits.isdigit():
            return f"「{word[:10]}」不是序号：请输入列表里的序号，用空格隔开，例如：3 1 2"
        n = int(digits)
        if not 1 <= n <= len(current):
            return f"没有第 {n} 项：序号是 1 到 {len(current)}"
        if n in picked:
            return f"第 {n} 项写了两次：每个序号只写一次"
        picked.append(n)
    rest = [i for i in range(1, len(current) + 1) if i not in picked]
    return [current[i - 1] for i in [*picked, *rest]]


# ----- the quota chart's figures (/quota) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuotaRow:
    """One bar of the quota chart: a region's nominations of one category against its places."""

    region: str  # the quota holder's region code
    region_name: str
    category: str
    category_label: str
    nominated: int  # nominations that use a place (lifecycle counts: places)
    places: int
    low: int  # the 150 %–200 % band (quota_band); both = places when the campaign has none
    high: int
    band: bool = True  # False: the campaign sets no band (seed 001): at most the places

    @property
    def verdict(self) -> str:
        """不足 below the band, 超出 above it, "" inside it (without a band: 超出 above the
        places)."""
        if not self.band:
            return "超出" if self.nominated > self.places else ""
        if self.nominated < self.low:
            return "不足"
        if self.nominated > self.high:
            return "超出"
        return ""


@dataclass(frozen=True, slots=True)
class QuotaFigures:
    """What the chart and its text twin show for one scope of one campaign."""

    campaign_title: str
    scope: str  # the region the reader looks at (长春市)
    rows: tuple[QuotaRow, ...]
    cap_label: str = ""  # 县处级干部 (the 20 % cap of seed 000); "" when the campaign has none
    cap_share: float | None = None
    capped: int = 0  # nominations in the scope the cap covers
    total_places: int = 0  # the campaign's awards, which the cap is a share of


def quota_figures(
    campaign: Campaign,
    scope: str,
    facts: Iterable[NominationFacts],
    quotas: Mapping[str, Sequence[tuple[str, int]]],
    *,
    region_name: Callable[[str], str],
    contains: Callable[[str, str], bool],
) -> QuotaFigures:
    """The figures of `/quota`: per quota region and category (`quotas`: category → (region
    code, places) of the reader's region and those under it), the nominations of `facts` whose
    region lies in it and that use a place; the cap over all of them."""
    limits = limits_for(campaign)
    counting = [f for f in facts if f.status not in limits.not_places]
    ratio = limits.quota_ratio or (1.0, 1.0)
    labels = {c.id: c.name for c in campaign.categories}
    rows = []
    for category in (c.id for c in campaign.categories):
        for region, places in quotas.get(category, ()):
            low, high = quota_band(places, ratio)
            mine = (f for f in counting if f.category == category)
            used = sum(1 for f in mine if contains(region, f.region))
            rows.append(
                QuotaRow(
                    region,
                    region_name(region),
                    category,
                    labels[category],
                    used,
                    places,
                    low,
                    high,
                    limits.quota_ratio is not None,
                )  # fmt: skip
            )
    return QuotaFigures(
        campaign_title=campaign.title,
        scope=scope,
        rows=tuple(rows),
        cap_label=limits.cap_label,
        cap_share=limits.cap_share,
        capped=sum(1 for f in counting if f.capped),
        total_places=sum(limits.places.values()),
    )


def quota_text(figures: QuotaFigures) -> str:
    """The chart's figures as text, line by line (the chat shows it beside the PNG)."""
    lines = [f"{figures.scope} 推荐名额对照（{figures.campaign_title}）"]
    if not figures.rows:
        lines.append("本地区没有分配名额。")
    for r in figures.rows:
        mark = f"（{r.verdict}）" if r.verdict else ""
        band = f"，应推荐 {r.low}–{r.high} 名" if r.band else ""
        lines.append(
            f"{r.region_name}·{r.category_label}：已推荐 {r.nominated} 名，名额 {r.places} 名"
            f"{band}{mark}"
        )
    if figures.cap_share is not None and figures.cap_label:
        limit = int(figures.total_places * figures.cap_share)
        over = "（超出）" if figures.capped > limit else ""
        lines.append(
            f"{figures.cap_label}：{figures.capped} 名，应控制在评选总数 {figures.total_places} 的"
            f" {figures.cap_share:.0%}（{limit} 名）以内{over}"
        )
    return "\n".join(lines)


__all__ = [
    "CLERK_SET",
    "DOC_TITLES",
    "OFFICIAL_SET",
    "QuotaFigures",
    "QuotaRow",
    "Audience",
    "DocKind",
    "Entry",
    "FileLine",
    "Header",
    "MaterialLine",
    "Value",
    "apply_order",
    "audience_for",
    "documents_for",
    "entry_of",
    "in_documents",
    "quota_figures",
    "quota_text",
    "ranked",
    "shows_in_full",
]
