"""Nomination forms as data: the fields a clerk fills in and the attachments a nomination needs.

A campaign YAML declares its forms under `forms:` (one form per category; see README, "Campaign
YAML"). This module holds the schema and what follows from it: deriving 出生年月 and 性别 from
the ID number and saying what is still to be filled in or attached. Beside it:
conversations.form_parse (parsing a typed value, a list item by item), form_display (masking
for display), form_files (checking an upload by its magic bytes); conversations.loader checks
forms against a campaign.

Nothing here reads a file or the clock: callers hand in the first bytes of an upload and `today`.

Conditions (`relevant`, `required_when`) are evaluated over the eligibility facts of the
self-check *overlaid* by the form's values and derived values: a form field named like a fact
(it must then `reuse` that fact, see `conversations.loader.check_forms`) wins over the
self-check answer.

    forms:
      - id: skills_nominee
        categories: [skills_grand_award, technical_expert]
        kind: person                       # person → individual categories, unit → collective
        fields:                            # in the order they are asked
          - {key: gender, type: derived, label: 性别, derived: {kind: gender, source: id_number}}
          - {key: id_number, type: id_number, label: 身份证号, question: …}
          - {key: skill_level, type: enum, label: 技能等级, question: …, reuse: skill_level,
             choices: [...]}               # reuse: the fact's values first, in its order
          - {key: achievements, type: text, label: 主要事迹, question: …,
             min_length: 100, max_length: 1500}
          - {key: ethnicity, type: text, label: 民族, question: …,
             vocabulary: ethnic_groups}        # see conversations.vocab
          - {key: declassified_note, type: text, label: 脱密声明, question: …,
             relevant: {fact: has_classified_material, eq: true},
             must_equal: 材料已脱密，可公开, must_equal_message: …}
        materials:
          - {key: secrecy_review, name: 保密审核意见, accept: [pdf, jpg, png], max_mb: 20,
             required_when: {fact: has_classified_material, eq: true}}
          - {key: opinions, name: 推荐对象征求意见表, accept: [pdf, jpg, png],
             required_by: opinions}   # 征求意见 produces it; see conversations.material_stages
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conversations import vocab
from conversations.conditions import (
    Condition,
    Ordinal,
    evaluate,
)
from conversations.facts import Choice
from conversations.idnumber import IdNumberError, parse_id_number


class _HasForms(Protocol):
    """What `form_for` needs of a campaign (a Campaign; no import of the campaign model)."""

    @property
    def forms(self) -> Sequence[Form]: ...


# conversations.answers imports conversations.campaign, which imports this module for `Form`:
# the answer parsers are therefore imported inside the functions that use them, never at the top.


class FieldType(enum.StrEnum):
    """How a form field is typed, parsed and shown."""

    TEXT = "text"  # free text, bounded by min_length/max_length (主要事迹 100–1500 字)
    INT = "int"  # an integer, bounded by min/max, optionally ≤ another field (le_field)
    DATE = "date"  # a date, stored as ISO; not_future refuses dates after the caller's today
    ENUM = "enum"  # one of `choices`, by number, label or value
    BOOL = "bool"  # 是/否
    ID_NUMBER = "id_number"  # 18-character resident ID (GB 11643), masked in display
    MOBILE = "mobile"  # mainland mobile number, masked in display
    USCC = "uscc"  # unified social credit code (GB 32100)
    LIST = "list"  # short text items, one per message, ended by 完成 or /done
    DERIVED = "derived"  # computed from another field, never asked


class FileKind(enum.StrEnum):
    """Attachment types, detected by magic bytes (never by the file name alone)."""

    JPG = "jpg"
    PNG = "png"
    PDF = "pdf"
    DOCX = "docx"


class FormKind(enum.StrEnum):
    """A person form serves individual categories; a unit form serves collective ones."""

    PERSON = "person"
    UNIT = "unit"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldDerivation(_Model):
    """A value computed from an id_number field of the same form."""

    kind: Literal["birth_month", "gender"]  # 出生年月 "YYYY-MM"; 性别 男/女
    source: str  # the key of an id_number field


_KEY = r"^[a-z][a-z0-9_]*$"
# Per type, the options that make sense; any other option set on a field is a load error.
_OPTIONS: dict[str, frozenset[FieldType]] = {
    "min": frozenset({FieldType.INT, FieldType.DATE}),
    "max": frozenset({FieldType.INT, FieldType.DATE}),
    "min_message": frozenset({FieldType.INT, FieldType.DATE}),
    "max_message": frozenset({FieldType.INT, FieldType.DATE}),
    "min_length": frozenset({FieldType.TEXT}),
    "max_length": frozenset({FieldType.TEXT}),
    "must_equal": frozenset({FieldType.TEXT}),
    "must_equal_message": frozenset({FieldType.TEXT}),
    "choices": frozenset({FieldType.ENUM}),
    "not_future": frozenset({FieldType.DATE}),
    "le_field": frozenset({FieldType.INT}),
    "le_message": frozenset({FieldType.INT}),
    "min_items": frozenset({FieldType.LIST}),
    "max_items": frozenset({FieldType.LIST}),
    "item_max_length": frozenset({FieldType.LIST}),
    "derived": frozenset({FieldType.DERIVED}),
    "vocabulary": frozenset({FieldType.TEXT, FieldType.ENUM}),
}
_ALWAYS_SENSITIVE = frozenset({FieldType.ID_NUMBER, FieldType.MOBILE})
TEXT_MAX_LENGTH = 200  # a text field without max_length


class FormField(_Model):
    """One field of a nomination form, in the order it is asked."""

    key: str = Field(pattern=_KEY)
    type: FieldType
    label: str  # as printed on the form, e.g. 政治面貌
    question: str | None = None  # to the clerk: 被推荐人的政治面貌是？
    help: str | None = None
    required: bool = True  # an optional field accepts 无 / 跳过 (see SKIP)
    relevant: Condition | None = None  # asked only when this holds (form values and facts)
    sensitive: bool = False  # always true for id_number and mobile
    reuse: str | None = None  # an eligibility fact whose self-check answer pre-fills the field
    # The contracts other modules rely on (one field of each per form; Form checks it):
    identifies: bool = False  # its value tells one nominee from another (ID number, USCC)
    names: bool = False  # its value names the nominee in lists (姓名, masked; 单位名称)
    # int and date
    min: int | dt.date | None = None
    max: int | dt.date | None = None
    min_message: str | None = None
    max_message: str | None = None
    not_future: bool = False  # date: refuse a date after the `today` the caller passes
    le_field: str | None = None  # int: not more than this other int field of the form
    le_message: str | None = None
    # text
    min_length: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=1)
    must_equal: str | None = None  # a fixed declaration, e.g. 材料已脱密，可公开
    must_equal_message: str | None = None
    # enum
    choices: list[Choice] = Field(default_factory=list)
    # text and enum: a vocabulary of conversations.vocab. On a text field a closed list (民族)
    # stores its canonical label, a format (姓名, 证书编号) checks and normalises the text; on an
    # enum field a closed list's codes and short forms name the choices (党员 → 中共党员).
    vocabulary: str | None = None
    # list
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=1)
    item_max_length: int | None = Field(default=None, ge=1)
    # derived
    derived: FieldDerivation | None = None

    @model_validator(mode="before")
    @classmethod
    def _sensitive_by_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") in {t.value for t in _ALWAYS_SENSITIVE}:
            if data.get("sensitive") is False:
                raise ValueError(f"a {data['type']} field is always sensitive")
            return {**data, "sensitive": True}
        return data

    @model_validator(mode="after")
    def _check(self) -> FormField:
        for option, types in _OPTIONS.items():
            value = getattr(self, option)
            unset = value is None or value is False or value == []
            if not unset and self.type not in types:
                allowed = " and ".join(sorted(t.value for t in types))
                raise ValueError(f"{option} is only for {allowed} fields, not {self.type.value}")
        if self.type is FieldType.DERIVED:
            if self.derived is None:
                raise ValueError("a derived field needs `derived: {kind, source}`")
            if self.question is not None or self.reuse is not None:
                raise ValueError("a derived field is never asked: no question and no reuse")
        elif not self.question:
            raise ValueError("a field that is not derived needs a question")
        if self.type is FieldType.ENUM:
            if not self.choices:
                raise ValueError("an enum field needs choices")
            _unique("choices", (c.value for c in self.choices))
        for bound in (self.min, self.max):
            if bound is None:
                continue
            want_int = self.type is FieldType.INT
            is_int = isinstance(bound, int) and not isinstance(bound, bool)
            if want_int != is_int:
                kind = "integers" if want_int else "dates"
                raise ValueError(f"min/max of a {self.type.value} field must be {kind}")
        if self.min is not None and self.max is not None and self.max < self.min:  # type: ignore[operator]
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        if self.min_length and self.max_length and self.max_length < self.min_length:
            raise ValueError(f"max_length ({self.max_length}) is below min_length")
        items = (self.min_items, self.max_items)
        if items[0] is not None and items[1] is not None and items[1] < items[0]:
            raise ValueError(f"max_items ({self.max_items}) is below min_items")
        if self.le_field == self.key:
            raise ValueError("le_field names the field itself")
        if self.le_field is not None and not self.le_message:
            raise ValueError("le_field needs le_message, the Chinese message shown when it fails")
        if self.vocabulary is not None:
            self._check_vocabulary(self.vocabulary)
        return self

    def _check_vocabulary(self, name: str) -> None:
        found = vocab.vocabulary(name)  # an unknown name is a load error
        if self.type is FieldType.ENUM:
            vocab.choice_index(name, tuple(c.label for c in self.choices))
            return
        if self.must_equal is not None:
            raise ValueError("must_equal and vocabulary exclude each other")
        if isinstance(found, vocab.Vocabulary) and (self.min_length or self.max_length):
            raise ValueError(
                f"vocabulary '{name}' is a closed list: its terms decide the length, so the"
                " field takes no min_length or max_length"
            )

    # --- effective limits (defaults for options a field leaves out) ---

    @property
    def text_max(self) -> int:
        return self.max_length or TEXT_MAX_LENGTH

    @property
    def list_min(self) -> int:
        """Items needed before 完成 is accepted: min_items, else 1 if required, else 0 (an
        optional list may always end empty)."""
        if self.min_items is not None:
            return self.min_items
        return 1 if self.required else 0

    @property
    def list_max(self) -> int:
        return self.max_items or 20

    @property
    def item_max(self) -> int:
        return self.item_max_length or 100

    def choice_values(self) -> list[str]:
        return [c.value for c in self.choices]


class Material(_Model):
    """One attachment of a nomination (an item of the notice's material list)."""

    key: str = Field(pattern=_KEY)
    name: str  # as the notice names it, e.g. 身份证复印件
    note: str | None = None  # what it must contain, from the notice
    required: bool = True
    required_when: Condition | None = None  # required exactly when this holds
    accept: list[FileKind] = Field(default_factory=lambda: list(FileKind), min_length=1)
    max_mb: int = Field(default=20, ge=1, le=20)  # Telegram bots download files ≤ 20 MB
    # The stage that produces it, when that is after the filing: a lifecycle status (the moves
    # that take the nomination on out of it) or a move (transition id). The filing does not ask
    # for it; the clerk attaches it while the nomination is in the unit's hands, and those
    # moves are refused without it. See conversations.material_stages.
    required_by: str | None = Field(default=None, pattern=_KEY)
    # The nominee's signed consent form (PIPL): asked for by the move out of the unit only when
    # the nominee has not consented in chat (conversations.consent), so never `required`.
    consent: bool = False

    @model_validator(mode="before")
    @classmethod
    def _conditional(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("required_when") is not None:
            if data.get("required") is True:
                raise ValueError("required: true contradicts required_when; keep one")
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _check(self) -> Material:
        _unique("accept", (k.value for k in self.accept))
        if self.consent and (self.required or self.required_when is not None):
            raise ValueError(
                "consent: the signed consent form replaces the nominee's consent in chat;"
                " it is never required (required: false)"
            )
        return self


class Form(_Model):
    """A nomination form (推荐审批表): ordered fields and the attachment checklist."""

    id: str = Field(pattern=_KEY)
    title: str | None = None  # e.g. 吉林技能大奖（吉林省技术能手）推荐审批表
    categories: list[str] = Field(min_length=1)
    kind: FormKind
    fields: list[FormField] = Field(min_length=1)
    materials: list[Material] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Form:
        _unique("fields", (f.key for f in self.fields))
        _unique("materials", (m.key for m in self.materials))
        if sum(m.consent for m in self.materials) > 1:
            raise ValueError("materials: only one may be the consent form (consent: true)")
        by_key = {f.key: f for f in self.fields}
        for i, f in enumerate(self.fields):
            where = f"fields[{i}] ({f.key})"
            if f.derived is not None:
                source = by_key.get(f.derived.source)
                if source is None or source.type is not FieldType.ID_NUMBER:
                    raise ValueError(
                        f"{where}.derived.source: '{f.derived.source}' is not an id_number"
                        " field of this form"
                    )
            if f.le_field is not None:
                other = by_key.get(f.le_field)
                if other is None or other.type is not FieldType.INT:
                    raise ValueError(
                        f"{where}.le_field: '{f.le_field}' is not an int field of this form"
                    )
        return self

    def identity_field(self) -> FormField | None:
        """The field whose value tells one nominee from another (`identifies: true`; a campaign's
        forms have exactly one, see conversations.loader.check_forms)."""
        return next((f for f in self.fields if f.identifies), None)

    def consent_material(self) -> Material | None:
        """The nominee's signed consent form (`consent: true`), if the form takes one."""
        return next((m for m in self.materials if m.consent), None)

    def name_field(self) -> FormField | None:
        """The field that names the nominee (`names: true`; one per form of a campaign)."""
        return next((f for f in self.fields if f.names), None)

    def field(self, key: str) -> FormField:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)


def _unique(what: str, items: Iterable[str]) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{what}: '{item}' appears twice")
        seen.add(item)


def form_for(campaign: _HasForms, category_id: str) -> Form | None:
    """The form that serves a category, or None when the campaign declares no forms."""
    for form in campaign.forms:
        if category_id in form.categories:
            return form
    return None


# --------------------------------------------------------------------------------------------
# Derived values, conditions, what is left
# --------------------------------------------------------------------------------------------


def derive_fields(form: Form, values: Mapping[str, Any]) -> dict[str, str]:
    """The derived fields whose source is answered: 出生年月 "YYYY-MM" and 性别 男/女.

    The source is the stored ID number; a field whose source is unanswered (or not a valid ID
    number) is left out.
    """
    out: dict[str, str] = {}
    for f in form.fields:
        if f.derived is None:
            continue
        source = values.get(f.derived.source)
        if not isinstance(source, str):
            continue
        try:  # stored values were validated when typed; anything else derives nothing
            number = parse_id_number(source, today=dt.date.max)
        except IdNumberError:
            continue
        if f.derived.kind == "birth_month":
            born = number.birth_date
            out[f.key] = f"{born.year:04d}-{born.month:02d}"
        else:
            out[f.key] = "男" if number.is_male else "女"
    return out


def prefill(form: Form, facts: Mapping[str, Any]) -> dict[str, Any]:
    """Values for fields that `reuse` an answered eligibility fact (to confirm, not to trust)."""
    return {
        f.key: facts[f.reuse]
        for f in form.fields
        if f.reuse is not None and facts.get(f.reuse) is not None
    }


def form_ordinal(form: Form, facts_ordinal: Ordinal | None = None) -> Ordinal:
    """Comparable values for conditions: form enums by their order of choices, dates as dates;
    names that are not form fields go to `facts_ordinal` (pass `campaign.ordinal`)."""
    fields = {f.key: f for f in form.fields}

    def ordinal(key: str, value: Any) -> Any:
        field = fields.get(key)
        if field is None:
            return facts_ordinal(key, value) if facts_ordinal is not None else value
        if field.type is FieldType.ENUM and isinstance(value, str):
            order = field.choice_values()
            return order.index(value) if value in order else value
        if field.type is FieldType.DATE and isinstance(value, str):
            return dt.date.fromisoformat(value)
        return value

    return ordinal


def _context(form: Form, values: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    return {**facts, **values, **derive_fields(form, values)}


def _holds(
    cond: Condition | None, context: Mapping[str, Any], ordinal: Ordinal, *, unknown: bool
) -> bool:
    if cond is None:
        return True
    value = evaluate(cond, context, ordinal).value
    return unknown if value is None else value


def pending_fields(
    form: Form,
    values: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    ordinal: Ordinal | None = None,
    optional: bool = False,
) -> list[FormField]:
    """Fields still to fill in, in form order: required (all with `optional=True`), relevant and
    not yet answered (no key in `values`; a skipped optional field is stored as None).

    A field whose relevance is *unknown* (it depends on something unanswered) is pending: a
    required field is dropped only when it is known to be irrelevant. Pass `campaign.ordinal`
    as `ordinal` when a condition orders enum facts of the self-check.
    """
    context = _context(form, values, facts)
    order = form_ordinal(form, ordinal)
    return [
        f
        for f in form.fields
        if f.type is not FieldType.DERIVED
        and (f.required or optional)
        and f.key not in values
        and _holds(f.relevant, context, order, unknown=True)
    ]


def missing_materials(
    form: Form,
    uploaded: set[str],
    values: Mapping[str, Any],
    *,
    facts: Mapping[str, Any] | None = None,
    ordinal: Ordinal | None = None,
) -> list[Material]:
    """Required materials (`required`, or `required_when` not known to be false) whose key is
    not in `uploaded`, in checklist order."""
    context = _context(form, values, facts or {})
    order = form_ordinal(form, ordinal)

    def needed(m: Material) -> bool:
        if m.required_when is None:
            return m.required
        return _holds(m.required_when, context, order, unknown=True)

    return [m for m in form.materials if m.key not in uploaded and needed(m)]


__all__ = [
    "Choice",
    "FieldDerivation",
    "FieldType",
    "FileKind",
    "Form",
    "FormField",
    "FormKind",
    "Material",
    "derive_fields",
    "form_for",
    "form_ordinal",
    "missing_materials",
    "pending_fields",
    "prefill",
]
