"""Nomination forms as data: the fields a clerk fills in and the attachments a nomination needs.

A campaign YAML declares its forms under `forms:` (one form per category; see README, "Campaign
YAML"). This module holds the schema and the pure functions that use it: parsing a typed value,
collecting a list item by item, deriving 出生年月 and 性别 from the ID number, masking for display,
checking an upload by its magic bytes, and saying what is still to be filled in or attached.

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
          - {key: declassified_note, type: text, label: 脱密声明, question: …,
             relevant: {fact: has_classified_material, eq: true},
             must_equal: 材料已脱密，可公开, must_equal_message: …}
        materials:
          - {key: secrecy_review, name: 保密审核意见, accept: [pdf, jpg, png], max_mb: 20,
             required_when: {fact: has_classified_material, eq: true}}
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conversations import answers
from conversations.conditions import (
    Condition,
    Ordinal,
    evaluate,
)
from conversations.facts import Choice
from conversations.idnumber import IdNumberError, mask_id_number, parse_id_number
from conversations.validators import ValidationError, mask_mobile, parse_mobile, parse_uscc


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


_T = TypeVar("_T")
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
        return self

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
# Parsing what the clerk types
# --------------------------------------------------------------------------------------------

SKIP = frozenset({"无", "跳过", "/skip", "skip"})
"""What skips an optional field. For bool fields only 跳过 and /skip: 无 there means 否."""
DONE_WORDS = frozenset({"完成", "/done", "done"})


class Done(enum.Enum):
    """The end of a list: the clerk typed 完成 (or /done)."""

    DONE = "done"


DONE = Done.DONE


def parse_field(
    field: FormField,
    text: str,
    *,
    today: dt.date,
    values: Mapping[str, Any] | None = None,
) -> Any:
    """Parse one typed answer for `field` and return the JSON-ready value to store.

    Values: text/id_number/mobile/uscc/enum → str, int → int, date → ISO string, bool → bool,
    list → list of str (one item per line; in chat, use `parse_list_item` item by item).
    An optional field answered 无 / 跳过 gives None ([] for a list).

    `today` is the caller's date (the core reads no clock): `not_future` dates after it are
    refused, as are ID numbers born after it. With `values` (the form so far), `le_field` is
    checked too; `cross_field_errors` checks it again on the whole form.

    Raises `AnswerError` saying what is wrong and what is expected, in Chinese. Asking a derived
    field is a programming error (TypeError).
    """
    if field.type is FieldType.DERIVED:
        raise TypeError(f"field '{field.key}' is derived: it is computed, never asked")
    if field.type is FieldType.TEXT:
        raw = _clean_text(text, limit=max(answers.MAX_INPUT, field.text_max * 2))
    elif field.type is FieldType.LIST:
        raw = _clean_text(text, limit=max(answers.MAX_INPUT, field.item_max * field.list_max))
    else:
        raw = answers.clean_input(text)
    word = answers.normalise(raw)
    # 无 is a yes/no answer for bool fields, and may be a real answer for required text (职务：无)
    skip_words = SKIP - {"无"} if field.type is FieldType.BOOL else SKIP
    if word.lower() in skip_words:
        if not field.required:
            return [] if field.type is FieldType.LIST else None
        if field.type is not FieldType.TEXT:
            raise answers.AnswerError(f"{field.label}是必填项，不能跳过。{_expected(field)}")
    value: Any
    match field.type:
        case FieldType.TEXT:
            value = _parse_text(field, raw)
        case FieldType.INT:
            number = _with_diagnosis(answers.parse_int, raw, word)
            _check_bounds(field, number, str(number))
            value = number
            _check_le(field, value, values)
        case FieldType.DATE:
            day = _with_diagnosis(answers.parse_date, raw, word)
            _check_bounds(field, day, day.isoformat())
            if field.not_future and day > today:
                raise answers.AnswerError(
                    f"{field.label}不能晚于今天（{today.isoformat()}），您填写的是"
                    f" {day.isoformat()}。请填写今天或以前的日期。"
                )
            value = day.isoformat()
        case FieldType.ENUM:
            value = _parse_choice(field, word)
        case FieldType.BOOL:
            value = _with_diagnosis(answers.parse_bool, raw, word)
        case FieldType.ID_NUMBER:
            try:
                value = parse_id_number(word, today=today).value
            except IdNumberError as exc:
                raise answers.AnswerError(f"{field.label}有误：{exc}") from None
        case FieldType.MOBILE | FieldType.USCC:
            parser = parse_mobile if field.type is FieldType.MOBILE else parse_uscc
            try:
                value = parser(raw)
            except ValidationError as exc:
                raise answers.AnswerError(str(exc)) from None
        case FieldType.LIST:
            items: list[str] = []
            for line in raw.splitlines():
                if not line.strip():
                    continue
                item = parse_list_item(field, line, count=len(items))
                if item is DONE:
                    break
                items.append(item)
            if _too_few(field, len(items)):
                raise answers.AnswerError(
                    f"{field.label}至少填写 {field.list_min} 项，您填写了 {len(items)} 项。"
                )
            value = items
    return value


def parse_list_item(field: FormField, text: str, *, count: int = 0) -> str | Done:
    """One message while collecting a list: an item, or DONE for 完成 / /done.

    `count` is how many items are already collected. 完成 (also 无 / 跳过, which are never items)
    is refused before `list_min` items, except that an optional list may end empty; an item
    after `list_max` is refused with the advice to reply 完成.
    """
    raw = _clean_text(text, limit=max(answers.MAX_INPUT, field.item_max * 2))
    word = answers.normalise(raw).lower()
    if word in DONE_WORDS or word in SKIP:  # 无 is never an item: it ends the list too
        if _too_few(field, count):
            raise answers.AnswerError(
                f"{field.label}至少需要 {field.list_min} 项，目前有 {count} 项。"
                "请继续发送，每条消息一项。"
            )
        return DONE
    if count >= field.list_max:
        raise answers.AnswerError(
            f"{field.label}最多 {field.list_max} 项，已经填满。请回复“完成”结束。"
        )
    item = raw.strip()
    if "\n" in item:
        raise answers.AnswerError("每条消息只填写一项：请把这几项分开发送，全部发完后回复“完成”。")
    if len(item) > field.item_max:
        raise answers.AnswerError(
            f"每一项不能超过 {field.item_max} 个字，这一项有 {len(item)} 个字。请精简后重新发送。"
        )
    return item


def _too_few(field: FormField, count: int) -> bool:
    """An optional list may end empty; otherwise it needs `list_min` items."""
    return count < field.list_min and not (count == 0 and not field.required)


def cross_field_errors(form: Form, values: Mapping[str, Any]) -> dict[str, str]:
    """Rules between fields (`le_field`) on the whole form: field key → the message to show.

    Run it before submission: a later change to the other field can break a rule that held when
    this field was answered.
    """
    errors: dict[str, str] = {}
    for f in form.fields:
        value = values.get(f.key)
        if f.le_field is None or value is None:
            continue
        try:
            _check_le(f, value, values)
        except answers.AnswerError as exc:
            errors[f.key] = str(exc)
    return errors


def _clean_text(text: str, *, limit: int) -> str:
    """Free text keeps its punctuation and line breaks (no NFKC: ，stays ，); other control
    characters go."""
    if len(text) > limit:
        raise answers.AnswerError(f"输入太长了（{len(text)} 个字符），请不超过 {limit} 个字符。")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(
        ch for ch in text if ch in "\n\t" or not unicodedata.category(ch).startswith("C")
    )
    if not kept.strip():
        raise answers.AnswerError("没有收到内容，请输入您的回答。")
    return kept.strip()


def _parse_text(field: FormField, raw: str) -> str:
    if field.must_equal is not None:
        if _declaration(raw) != _declaration(field.must_equal):
            raise answers.AnswerError(
                field.must_equal_message
                or f"{field.label}须原样填写“{field.must_equal}”，您填写的是“{_short(raw)}”。"
            )
        return field.must_equal  # the words as declared, whatever the width of the comma
    n = len(raw)
    if field.min_length is not None and n < field.min_length:
        raise answers.AnswerError(
            f"{field.label}至少 {field.min_length} 个字，您填写了 {n} 个字。请补充后重新发送。"
        )
    if n > field.text_max:
        raise answers.AnswerError(
            f"{field.label}不能超过 {field.text_max} 个字，您填写了 {n} 个字。"
            f"请精简到 {field.text_max} 个字以内。"
        )
    return raw


_QUOTES = "\"'“”‘’「」『』《》"


def _declaration(text: str) -> str:
    """The words of a declaration as compared: width-folded, without spaces or outer quotes."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).strip(_QUOTES + "。.")


def _parse_choice(field: FormField, word: str) -> str:
    if word.isdigit():
        index = int(word)
        if 1 <= index <= len(field.choices):
            return field.choices[index - 1].value
    for choice in field.choices:
        if answers.matches_label(word, choice.value, choice.label):
            return choice.value
    raise answers.AnswerError(f"无法识别“{_short(word)}”。{_expected(field)}")


def _expected(field: FormField) -> str:
    """What a field expects, as said after a refusal."""
    if field.type is FieldType.ENUM:
        options = "；".join(f"{i}. {c.label}" for i, c in enumerate(field.choices, 1))
        return f"请回复序号（1–{len(field.choices)}）或选项文字：{options}。"
    return {
        FieldType.INT: "请输入一个整数，例如 8。",
        FieldType.DATE: "请按“2010-03-15”或“2010年3月15日”的格式输入日期。",
        FieldType.BOOL: "请回答“是”或“否”。",
        FieldType.ID_NUMBER: "请输入 18 位公民身份号码。",
        FieldType.MOBILE: "请输入 11 位手机号码，例如 13912345678。",
        FieldType.USCC: "请输入 18 位统一社会信用代码。",
        FieldType.LIST: "请每条消息发送一项，全部发完后回复“完成”。",
    }.get(field.type, "请输入内容。")


def _with_diagnosis(parse: Callable[[str], _T], raw: str, word: str) -> _T:
    """Run an answers parser; say which input was not understood before what it expects."""
    try:
        return parse(raw)
    except answers.AnswerError as exc:
        message = str(exc)
        if "不是一个真实的日期" in message:  # already names the input
            raise
        raise answers.AnswerError(f"无法识别“{_short(word)}”：{message}") from None


def _short(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _check_bounds(field: FormField, value: int | dt.date, shown: str) -> None:
    if field.min is not None and value < field.min:  # type: ignore[operator]
        raise answers.AnswerError(
            field.min_message
            or f"{field.label}不能小于 {field.min}，您填写的是 {shown}。"
            f"请填写 {field.min} 或以上。"
        )
    if field.max is not None and value > field.max:  # type: ignore[operator]
        raise answers.AnswerError(
            field.max_message
            or f"{field.label}不能大于 {field.max}，您填写的是 {shown}。请核对后重新填写。"
        )


def _check_le(field: FormField, value: Any, values: Mapping[str, Any] | None) -> None:
    if field.le_field is None or values is None:
        return
    other = values.get(field.le_field)
    if isinstance(other, int) and isinstance(value, int) and value > other:
        # le_message may quote both numbers: {value} (this field) and {other}
        message = (field.le_message or "").format(value=value, other=other)
        raise answers.AnswerError(message)


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


# --------------------------------------------------------------------------------------------
# Display and attachments
# --------------------------------------------------------------------------------------------


def display(field: FormField, value: Any, *, full: bool = False) -> str:
    """A stored value as the clerk reads it. ID numbers (220104********0024), mobiles
    (139****5678) and other sensitive fields are masked unless `full` (officials, the printed
    form)."""
    if value is None:
        return "（未填写）" if field.required else "无"
    if field.type is FieldType.ID_NUMBER:
        return str(value) if full else mask_id_number(str(value))
    if field.type is FieldType.MOBILE:
        return str(value) if full else mask_mobile(str(value))
    if field.sensitive and not full:
        return "（已隐藏）"
    if field.type is FieldType.BOOL:
        return "是" if value else "否"
    if field.type is FieldType.ENUM:
        for c in field.choices:
            if c.value == value:
                return c.label
        return str(value)
    if field.type is FieldType.LIST:
        items = list(value)
        if not items:
            return "无"
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))
    return str(value)


MB = 1024 * 1024
_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"\xff\xd8\xff", FileKind.JPG),
    (b"\x89PNG\r\n\x1a\n", FileKind.PNG),
    (b"%PDF-", FileKind.PDF),
)
_ZIP = b"PK\x03\x04"
_KIND_NAMES = {
    FileKind.JPG: "JPG 图片",
    FileKind.PNG: "PNG 图片",
    FileKind.PDF: "PDF 文件",
    FileKind.DOCX: "Word 文档（.docx）",
}
HEAD_BYTES = 8  # callers hand in at least this many first bytes of the file


class AttachmentError(ValidationError):
    """An upload cannot be accepted; str() says why and what is accepted, in Chinese."""


def check_attachment(material: Material, *, filename: str, size: int, head: bytes) -> FileKind:
    """Check an upload for `material`; return its type, detected from the first bytes.

    The type comes from the content, never from the name alone: a .pdf that is a PNG is a PNG.
    A docx is a zip (PK\\x03\\x04) *and* a name ending in .docx; any other zip is refused.
    Raises AttachmentError naming the problem: too large (naming the limit), empty, unknown
    type, or a type this material does not accept.
    """
    accepted = "、".join(k.value for k in material.accept)
    if size > material.max_mb * MB:
        raise AttachmentError(
            f"文件太大：{size / MB:.2f} MB，{material.name}每个文件不能超过 {material.max_mb} MB。"
            "请压缩或拆分后重新上传。"
        )
    if size <= 0 or not head:
        raise AttachmentError(f"文件是空的，请重新上传{material.name}（{accepted}）。")
    kind = _detect(filename, head)
    if kind not in material.accept:
        raise AttachmentError(
            f"{material.name}只接受 {accepted} 格式，您上传的是{_KIND_NAMES[kind]}。"
        )
    return kind


def _detect(filename: str, head: bytes) -> FileKind:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    is_docx_name = filename.lower().endswith(".docx")
    if head.startswith(_ZIP):
        if is_docx_name:
            return FileKind.DOCX
        raise AttachmentError(
            "不接受压缩包：请直接上传 jpg、png、pdf 图片或文件，Word 文档请用 .docx 格式。"
        )
    if is_docx_name:
        raise AttachmentError(
            f"“{_short(filename, 40)}”的文件名是 .docx，但内容不是 Word 文档，文件可能已损坏。"
            "请重新保存为 .docx 或导出为 pdf 后上传。"
        )
    raise AttachmentError(
        f"无法识别“{_short(filename, 40)}”的文件类型：只接受 jpg、png、pdf 或 docx 文件。"
    )


__all__ = [
    "DONE",
    "DONE_WORDS",
    "MB",
    "SKIP",
    "AttachmentError",
    "Choice",
    "FieldDerivation",
    "Done",
    "FieldType",
    "FileKind",
    "Form",
    "FormField",
    "FormKind",
    "Material",
    "check_attachment",
    "cross_field_errors",
    "derive_fields",
    "display",
    "form_for",
    "form_ordinal",
    "missing_materials",
    "parse_field",
    "parse_list_item",
    "pending_fields",
    "prefill",
]
