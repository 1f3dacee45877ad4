"""Parsing what the clerk types into a form field: a typed value, a list item by item, and the
checks across fields (a value ≤ another field's). Errors are `answers.AnswerError` in Chinese."""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from conversations import answers, vocab
from conversations.forms import FieldType, Form, FormField
from conversations.idnumber import IdNumberError, parse_id_number
from conversations.validators import ValidationError, parse_mobile, parse_uscc

_T = TypeVar("_T")


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
    if word.lower() in skip_words and not _names_a_choice(field, word):  # 技能等级：无
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
    if field.vocabulary is not None:  # 汉 → 汉族; 阿依古丽・买买提 → 阿依古丽·买买提
        try:
            raw = vocab.vocabulary(field.vocabulary).parse(raw, label=field.label)
        except ValidationError as exc:
            raise answers.AnswerError(str(exc)) from None
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


def _names_a_choice(field: FormField, word: str) -> bool:
    """Whether `word` is the value or whole label of one of an enum field's choices."""
    lowered = word.lower()
    return field.type is FieldType.ENUM and any(
        lowered in (c.value.lower(), answers.normalise(c.label).lower()) for c in field.choices
    )


def _parse_choice(field: FormField, word: str) -> str:
    """A choice by its number, label, a shorter way to say its label (answers.match_choice), or
    — with a vocabulary — a code or short form of a term it covers (民盟 → 民主党派)."""
    if word.isdigit():
        return _choice_by_number(field, word)
    value = answers.match_choice(word, field.choices)
    if value is not None:
        return value
    if field.vocabulary is not None:
        found = vocab.vocabulary(field.vocabulary)
        assert isinstance(found, vocab.Vocabulary)  # the field checked it at load
        term = found.lookup(word)
        if term is not None:
            return _choice_of_term(field, found, term, word)
    raise answers.AnswerError(f"无法识别“{_short(word)}”。{_expected(field)}")


def _choice_by_number(field: FormField, word: str) -> str:
    """A number is the choice's position as listed (1 … n). With a vocabulary a code written as
    the standard writes it (05), or a number past the list (13), is a code; a number that could
    be both and means two choices is asked again."""
    n = len(field.choices)
    index = int(word) if 1 <= int(word) <= n else None
    found = vocab.vocabulary(field.vocabulary) if field.vocabulary is not None else None
    if isinstance(found, vocab.Vocabulary) and (word.startswith("0") or index is None):
        term = found.by_code(word)
        if term is not None:
            value = _choice_of_term(field, found, term, word)
            if index is None or field.choices[index - 1].value == value:
                return value
            coded = next(c.label for c in field.choices if c.value == value)
            raise answers.AnswerError(
                f"“{word}”可能是序号 {index}（{field.choices[index - 1].label}），也可能是"
                f"{found.title}代码 {word}（{term.label}，即“{coded}”）。请回复选项文字。"
            )
    if index is None:
        raise answers.AnswerError(f"没有序号 {word}。{_expected(field)}")
    return field.choices[index - 1].value


def _choice_of_term(field: FormField, found: vocab.Vocabulary, term: vocab.Term, word: str) -> str:
    labels = [c.label for c in field.choices]
    index = vocab.choice_of(found.name, labels, term)
    if index is None:
        raise answers.AnswerError(
            f"“{_short(word)}”（{term.label}）不在本题的选项中。{_expected(field)}"
        )
    return field.choices[index].value


def _expected(field: FormField) -> str:
    """What a field expects, as said after a refusal."""
    found = vocab.vocabulary(field.vocabulary) if field.vocabulary is not None else None
    if field.type is FieldType.ENUM:
        options = "；".join(f"{i}. {c.label}" for i, c in enumerate(field.choices, 1))
        hint = f"{found.hint}。" if isinstance(found, vocab.Vocabulary) else ""
        return f"请回复序号（1–{len(field.choices)}）或选项文字：{options}。{hint}"
    if isinstance(found, vocab.Vocabulary):
        return found.accepted()
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


__all__ = [
    "DONE",
    "DONE_WORDS",
    "SKIP",
    "Done",
    "cross_field_errors",
    "parse_field",
    "parse_list_item",
]
