"""Answers that must agree with each other (issue 11): a birth date that can be one, the ID
number's birth date against the one answered, years of work against the age, a founding date
against the years since founding, a unified social credit code against where the unit is and
which unit already holds it.

What is compared is found from the campaign, never from key names here: the birth dates are the
sources of a derived `age_at_as_of` fact (a date fact, or an ID number's digits 7–14), the ID
numbers and codes are the form fields of those types, the unit's name is the form's `names`
field; what a campaign adds is declared in its YAML:

    consistency:
      working_years: [years_in_occupation]            # int facts or form fields: ≤ age − 16
      founding: [{date: founded_on, years: years_since_founding}]   # form date, self-check int

Pure: the callers pass today, and for the codes the unit filing and `Reads` (the registered
units and the other nominations that hold a code). A `Disagreement` names every value it is
about (facts and form fields by key) and says, in Chinese, both values and what to check;
`REFUSE` ones stop a submission, `WARN` ones are said and never block.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from conversations.facts import Fact, FactType
from conversations.forms import FieldType, Form, FormKind
from conversations.identity import region_contains, region_level
from conversations.idnumber import IdNumberError, age_at, parse_id_number

if TYPE_CHECKING:
    from conversations.campaign import Campaign
    from conversations.reads import CodeHolder, Reads

# 《中华人民共和国劳动法》第十五条：禁止用人单位招用未满十六周岁的未成年人。Years of work can
# therefore not exceed the age less 16. (Its second paragraph lets 文艺、体育和特种工艺单位 hire
# younger people under state rules: such a nominee's years are refused here and must be checked
# by hand — rare enough, and the refusal says which law it applies.)
MIN_WORKING_AGE = 16
LABOUR_LAW = "《中华人民共和国劳动法》第十五条"
EARLIEST_BIRTH = dt.date(1900, 1, 1)  # as parse_id_number: no one living was born earlier


class Severity(StrEnum):
    REFUSE = "refuse"  # cannot both be right: the value is refused / the submission blocked
    WARN = "warn"  # unusual but possible (a unit registered elsewhere): said, never blocks


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Values that do not agree. `facts` and `fields` name them (self-check answers, form
    fields); `message` is Chinese for the user, `english` a short gloss for the command line."""

    severity: Severity
    message: str
    english: str
    facts: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# The campaign's declarations
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Founding(_Model):
    """A form's founding date and the self-check's years since founding (依法成立年限)."""

    date: str  # a date field of a form
    years: str  # an int fact


class ConsistencySpec(_Model):
    """The `consistency:` section of a campaign YAML (see the module docstring)."""

    working_years: list[str] = Field(default_factory=list)
    founding: list[Founding] = Field(default_factory=list)


def check_spec(campaign: Campaign) -> None:
    """Load-time checks: every key names a fact or form field of the right type (ValueError
    naming the YAML path)."""
    spec = campaign.consistency
    if spec is None:
        return
    fields = {f.key: f for form in campaign.forms for f in form.fields}
    for i, key in enumerate(spec.working_years):
        where = f"consistency.working_years[{i}]"
        fact = _fact(campaign, key)
        field = fields.get(key)
        if fact is None and field is None:
            raise ValueError(f"{where}: '{key}' is no fact and no form field")
        if fact is not None and fact.type is not FactType.INT:
            raise ValueError(f"{where}: fact '{key}' is {fact.type.value}, not int")
        if field is not None and field.type is not FieldType.INT:
            raise ValueError(f"{where}: form field '{key}' is {field.type.value}, not int")
    for i, pair in enumerate(spec.founding):
        where = f"consistency.founding[{i}]"
        field = fields.get(pair.date)
        if field is None or field.type is not FieldType.DATE:
            raise ValueError(f"{where}.date: '{pair.date}' is not a date field of a form")
        fact = _fact(campaign, pair.years)
        if fact is None or fact.type is not FactType.INT:
            raise ValueError(f"{where}.years: '{pair.years}' is not an int fact")


def _fact(campaign: Campaign, key: str) -> Fact | None:
    return campaign.fact(key) if campaign.has_fact(key) else None


def _spec(campaign: Campaign) -> ConsistencySpec:
    return campaign.consistency or ConsistencySpec()


def age_day(campaign: Campaign, today: dt.date) -> dt.date:
    """The day an age is counted on for years of work: the campaign's as_of, or today when
    later (years are answered "so far"; the later day never refuses a true answer)."""
    return max(campaign.as_of, today)


def birth_sources(campaign: Campaign) -> list[Fact]:
    """The facts an age is derived from (`derived: age_at_as_of`), in the order they are tried:
    these are the nominee's birth date, as a date or as an ID number."""
    out: list[Fact] = []
    for fact in campaign.facts:
        if fact.derived is not None and fact.derived.kind == "age_at_as_of":
            out.extend(campaign.fact(k) for k in fact.derived.sources if campaign.has_fact(k))
    return out


def is_birth_date(campaign: Campaign, key: str) -> bool:
    return any(f.key == key for f in birth_sources(campaign))


def _birth_of(fact_type: FactType | FieldType, value: Any) -> dt.date | None:
    """The birth date a stored date or ID number gives; None if it gives none."""
    if not isinstance(value, str):
        return None
    if fact_type in (FactType.DATE, FieldType.DATE):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    try:
        return parse_id_number(value, today=dt.date.max).birth_date
    except IdNumberError:
        return None


# --------------------------------------------------------------------------------------------
# One answer on its own: a birth date that can be one
# --------------------------------------------------------------------------------------------


def birth_date_problem(
    campaign: Campaign, key: str, value: Any, *, today: dt.date
) -> Disagreement | None:
    """Why an answer to a birth-date fact (a source of the age) cannot be a birth date: before
    1900, after today, or after the campaign's as_of (an age below zero on the day the age rule
    counts it). None when it can be, or `key` is not a birth date."""
    fact = next((f for f in birth_sources(campaign) if f.key == key), None)
    if fact is None:
        return None
    born = _birth_of(fact.type, value)
    if born is None:
        return None
    what = fact.label if fact.type is FactType.DATE else f"{fact.label}中的出生日期"
    shown = born.isoformat()
    if born < EARLIEST_BIRTH:
        return _refuse(
            f"{what} {shown} 早于 {EARLIEST_BIRTH.isoformat()}，请核对后重新填写。",
            "birth date before 1900-01-01",
            facts=(key,),
        )
    if born > today:
        return _refuse(
            f"{what} {shown} 晚于今天（{today.isoformat()}），请核对后重新填写。",
            f"birth date after today, {today.isoformat()}",
            facts=(key,),
        )
    if born > campaign.as_of:
        return _refuse(
            f"{what} {shown} 晚于本次评选计算年龄的日期 {campaign.as_of.isoformat()}"
            f"（按这一天算，年龄为 {age_at(born, campaign.as_of)} 周岁），请核对后重新填写。",
            f"birth date after the campaign's as_of, {campaign.as_of.isoformat()}",
            facts=(key,),
        )
    return None


# --------------------------------------------------------------------------------------------
# The self-check's answers among themselves
# --------------------------------------------------------------------------------------------


def answer_disagreements(
    campaign: Campaign, answers: Mapping[str, Any], *, today: dt.date
) -> list[Disagreement]:
    """The self-check answers that disagree: two birth dates (a date and an ID number), and
    years of work against the age they give."""
    out: list[Disagreement] = []
    births = [(f, _birth_of(f.type, answers.get(f.key))) for f in birth_sources(campaign)]
    known = [(f, b) for f, b in births if b is not None]
    for (first, one), (second, other) in zip(known, known[1:], strict=False):
        if one != other:
            out.append(_two_births(first, one, second, other))
    if known:
        fact, born = known[0]
        source = fact.label if fact.type is FactType.DATE else f"{fact.label}中的出生日期"
        for key in _spec(campaign).working_years:
            years = answers.get(key)
            work = _fact(campaign, key)
            if work is None or not isinstance(years, int) or isinstance(years, bool):
                continue
            found = _too_many_years(
                campaign, work.label, years, born, source, today=today,
            )  # fmt: skip
            if found is not None:
                out.append(_with(found, facts=(fact.key, key)))
    return out


def _two_births(first: Fact, one: dt.date, second: Fact, other: dt.date) -> Disagreement:
    def name(fact: Fact, born: dt.date) -> str:
        if fact.type is FactType.DATE:
            return f"{fact.label}（{born.isoformat()}）"
        return f"{fact.label}第 7–14 位的出生日期（{born.isoformat()}）"

    return _refuse(
        f"{name(first, one)}与{name(second, other)}不一致，请核对。",
        f"{first.key} and {second.key} give different birth dates",
        facts=(first.key, second.key),
    )


def _too_many_years(
    campaign: Campaign,
    label: str,
    years: int,
    born: dt.date,
    source: str,
    *,
    today: dt.date,
) -> Disagreement | None:
    day = age_day(campaign, today)
    age = age_at(born, day)
    most = max(age - MIN_WORKING_AGE, 0)
    if years <= most:
        return None
    return _refuse(
        f"{label}（{years} 年）与年龄不符：按{source}，到 {day.isoformat()} 年满 {age} 周岁；"
        f"{LABOUR_LAW}禁止招用未满十六周岁的未成年人，从事工作的年限最多 {most} 年。请核对。",
        f"{years} years of work at the age of {age}: more than the age less {MIN_WORKING_AGE},"
        " the minimum working age of the Labour Law, art. 15",
    )


# --------------------------------------------------------------------------------------------
# The form against the self-check and itself; the unit's code against the world
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filer:
    """The unit filing the nomination, and the nomination itself (not "another" one)."""

    unit_id: int
    region: str  # the unit's region code (a clerk's region is their unit's)
    tracking_code: str | None = None


def form_disagreements(
    campaign: Campaign,
    form: Form,
    values: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    today: dt.date,
    filer: Filer | None = None,
    reads: Reads | None = None,
) -> list[Disagreement]:
    """What in the form disagrees with the self-check answers (`facts`), with itself, and —
    given the filer and `reads` — with the registered units and the other nominations."""
    out: list[Disagreement] = []
    out += _id_against_answers(campaign, form, values, facts)
    out += _years_against_age(campaign, form, values, facts, today=today)
    out += _founding(campaign, values, facts, today=today)
    if filer is not None and reads is not None:
        out += _codes(campaign, form, values, filer, reads)
    return out


def _id_numbers(form: Form, values: Mapping[str, Any]) -> list[tuple[str, str, dt.date]]:
    """(field key, label, birth date) of every answered ID number field of the form."""
    out = []
    for f in form.fields:
        if f.type is FieldType.ID_NUMBER:
            born = _birth_of(FieldType.ID_NUMBER, values.get(f.key))
            if born is not None:
                out.append((f.key, f.label, born))
    return out


def _answered_birth(campaign: Campaign, facts: Mapping[str, Any]) -> tuple[Fact, dt.date] | None:
    for fact in birth_sources(campaign):
        born = _birth_of(fact.type, facts.get(fact.key))
        if born is not None:
            return fact, born
    return None


def _id_against_answers(
    campaign: Campaign, form: Form, values: Mapping[str, Any], facts: Mapping[str, Any]
) -> list[Disagreement]:
    answered = _answered_birth(campaign, facts)
    if answered is None:
        return []
    fact, born = answered
    out = []
    for key, label, from_id in _id_numbers(form, values):
        if from_id != born:
            what = fact.label if fact.type is FactType.DATE else f"{fact.label}中的出生日期"
            out.append(
                _refuse(
                    f"{label}第 7–14 位的出生日期（{from_id.isoformat()}）与资格自检时回答的"
                    f"{what}（{born.isoformat()}）不一致，请核对。",
                    "the ID number's birth date is not the one of the self-check",
                    facts=(fact.key,),
                    fields=(key,),
                )
            )
    return out


def _years_against_age(
    campaign: Campaign,
    form: Form,
    values: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    today: dt.date,
) -> list[Disagreement]:
    ids = _id_numbers(form, values)
    answered = _answered_birth(campaign, facts)
    age_facts: tuple[str, ...] = ()
    age_fields: tuple[str, ...] = ()
    if ids:
        id_key, id_label, born = ids[0]
        source, age_fields = f"{id_label}中的出生日期", (id_key,)
    elif answered is not None:
        birth_fact, born = answered
        source, age_facts = f"资格自检时回答的{birth_fact.label}", (birth_fact.key,)
    else:
        return []
    asked = {f.key: f for f in form.fields}
    out = []
    for key in _spec(campaign).working_years:
        in_form = key in asked and key in values
        years = values.get(key) if in_form else facts.get(key)
        if not isinstance(years, int) or isinstance(years, bool):
            continue
        fact = _fact(campaign, key)
        label = asked[key].label if in_form else (fact.label if fact else key)
        found = _too_many_years(campaign, label, years, born, source, today=today)
        if found is None:
            continue
        year_facts: tuple[str, ...] = () if in_form else (key,)
        year_fields: tuple[str, ...] = (key,) if in_form else ()
        facts_of, fields_of = (*age_facts, *year_facts), (*age_fields, *year_fields)
        out.append(_with(found, facts=facts_of, fields=fields_of))
    return out


def _founding(
    campaign: Campaign, values: Mapping[str, Any], facts: Mapping[str, Any], *, today: dt.date
) -> list[Disagreement]:
    out = []
    labels = {f.key: f.label for form in campaign.forms for f in form.fields}
    for pair in _spec(campaign).founding:
        founded = _birth_of(FieldType.DATE, values.get(pair.date))
        years = facts.get(pair.years)
        fact = _fact(campaign, pair.years)
        if founded is None or fact is None or not isinstance(years, int) or founded > today:
            continue
        # The answer was given some day between the campaign's as_of and today (a self-check
        # reused from earlier): any count of whole years in that span agrees.
        low = age_at(founded, min(campaign.as_of, today))
        high = age_at(founded, max(campaign.as_of, today))
        date_label = labels.get(pair.date, pair.date)
        shown = f"{date_label}（{founded.isoformat()}）"
        if years > high:
            out.append(
                _refuse(
                    f"按{shown}，到今天（{today.isoformat()}）满 {age_at(founded, today)} 年，"
                    f"少于资格自检时回答的{fact.label}（{years} 年），两者不一致。"
                    f"请核对{date_label}。",
                    f"{pair.date} gives fewer years than {pair.years} answered",
                    facts=(pair.years,),
                    fields=(pair.date,),
                )
            )
        elif years < low:
            out.append(
                Disagreement(
                    Severity.WARN,
                    f"请注意：按{shown}，到今天满 {age_at(founded, today)} 年，资格自检时回答的"
                    f"{fact.label}是 {years} 年，两者不一致，请核对（不影响提交）。",
                    f"{pair.date} gives more years than {pair.years} answered",
                    facts=(pair.years,),
                    fields=(pair.date,),
                )
            )
    return out


def registration_division(code: str) -> str:
    """Characters 3–8 of a unified social credit code: the 登记管理机关行政区划码 (GB 32100)."""
    return code[2:8]


def _codes(
    campaign: Campaign, form: Form, values: Mapping[str, Any], filer: Filer, reads: Reads
) -> list[Disagreement]:
    if form.kind is not FormKind.UNIT:
        return []
    name_field = form.name_field()
    name = values.get(name_field.key) if name_field is not None else None
    name_key = (name_field.key,) if name_field is not None and name else ()
    name_label = name_field.label if name_field is not None else "单位名称"
    out: list[Disagreement] = []
    for f in form.fields:
        code = values.get(f.key)
        if f.type is not FieldType.USCC or not isinstance(code, str):
            continue
        out += _where_registered(code, f.key, filer, reads)
        out += _held_by(
            campaign, code, (f.key, *name_key), name if name else None, name_label,
            filer, reads.code_holders(code),
        )  # fmt: skip
    return out


def _where_registered(code: str, key: str, filer: Filer, reads: Reads) -> list[Disagreement]:
    division = registration_division(code)
    try:
        region_level(division)
    except ValueError:
        return [
            Disagreement(
                Severity.WARN,
                f"请注意：统一社会信用代码第 3–8 位（登记管理机关行政区划码）“{division}”不是"
                "行政区划代码，请核对（如代码无误，可以继续）。",
                "characters 3-8 of the code are not an administrative division code",
                fields=(key,),
            )
        ]
    if region_contains(division, filer.region) or region_contains(filer.region, division):
        return []
    there = reads.region_name(division)
    there = f"{division}（{there}）" if there != division else division
    return [
        Disagreement(
            Severity.WARN,
            f"请注意：统一社会信用代码第 3–8 位（登记管理机关行政区划码）是 {there}，不在本单位"
            f"所在的{reads.region_name(filer.region)}。如该单位在外地登记，可以继续；否则请核对代码。",
            f"the code was registered in {division}, outside the unit's region {filer.region}",
            fields=(key,),
        )
    ]


def same_unit_name(one: str, other: str) -> bool:
    """Two spellings of one unit's name: full/half width, spaces and brackets aside."""

    def fold(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split())

    return fold(one) == fold(other)


def _held_by(
    campaign: Campaign,
    code: str,
    keys: tuple[str, ...],
    name: str | None,
    name_label: str,
    filer: Filer,
    holders: Iterable[CodeHolder],
) -> list[Disagreement]:
    """A code stands for one unit: refuse it when a registered unit or another nomination holds
    it under another name, or another unit already nominates it in this campaign."""
    clause = (campaign.cross_rules.clauses if campaign.cross_rules else {}).get(
        "duplicate_nominee", ""
    )
    for holder in holders:
        if holder.campaign is not None and (
            not holder.active or holder.tracking_code == filer.tracking_code
        ):
            continue
        if name is not None and not same_unit_name(holder.name, name):
            where = "已登记为" if holder.campaign is None else "已用于另一项推荐的"
            return [
                _refuse(
                    f"统一社会信用代码 {code} {where}「{holder.name}」，与本表填写的{name_label}"
                    f"「{name}」不是同一单位。请核对代码和{name_label}。",
                    "the code already stands for another unit",
                    fields=keys,
                )
            ]
        if holder.campaign == campaign.id and holder.unit_id != filer.unit_id:
            head = f"「{clause}」" if clause else ""
            return [
                _refuse(
                    f"{head}推荐对象不能重复申报：统一社会信用代码 {code} 的单位已由其他单位在"
                    "本次活动中推荐。",
                    "another unit already nominates this code in the campaign",
                    fields=keys[:1],
                )
            ]
    return []


# --------------------------------------------------------------------------------------------


def _refuse(
    message: str, english: str, *, facts: tuple[str, ...] = (), fields: tuple[str, ...] = ()
) -> Disagreement:
    return Disagreement(Severity.REFUSE, message, english, facts, fields)


def _with(
    found: Disagreement, *, facts: tuple[str, ...] = (), fields: tuple[str, ...] = ()
) -> Disagreement:
    return Disagreement(found.severity, found.message, found.english, facts, fields)


def involving(found: Iterable[Disagreement], *, fact: str | None = None,
              field: str | None = None) -> list[Disagreement]:  # fmt: skip
    """The disagreements about one fact or form field."""
    return [d for d in found if (fact is not None and fact in d.facts)
            or (field is not None and field in d.fields)]  # fmt: skip


__all__ = [
    "LABOUR_LAW",
    "MIN_WORKING_AGE",
    "ConsistencySpec",
    "Disagreement",
    "Filer",
    "Founding",
    "Severity",
    "age_day",
    "answer_disagreements",
    "birth_date_problem",
    "birth_sources",
    "check_spec",
    "form_disagreements",
    "involving",
    "is_birth_date",
    "registration_division",
    "same_unit_name",
]
