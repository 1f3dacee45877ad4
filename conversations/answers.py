"""Typed answer parsing: what people actually type, turned into values, or a reason to re-ask.

Every parser returns the JSON-ready value that is stored (bool, int, ISO date string, enum value,
text) or raises `AnswerError` whose message (Chinese) tells the user what is expected.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from conversations.facts import Fact, FactType
from conversations.idnumber import IdNumberError, parse_id_number

MAX_INPUT = 500  # characters; longer input is refused before any parsing


class AnswerError(ValueError):
    """The answer cannot be used; str() is the reason, in Chinese, shown before re-asking."""


YES = frozenset({"是", "是的", "对", "对的", "有", "y", "yes", "true", "t", "ok", "好", "嗯", "1"})
NO = frozenset(
    {"否", "不是", "不", "不对", "没有", "无", "没", "n", "no", "false", "f", "2", "未", "不曾"}
)


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC), surrounding whitespace and punctuation removed."""
    text = unicodedata.normalize("NFKC", text)
    return text.strip().strip("。.!！？?，,、；;").strip()


def clean_input(text: str) -> str:
    """Refuse input no question can use: empty, too long, or control characters only."""
    if len(text) > MAX_INPUT:
        raise AnswerError(f"输入太长了（{len(text)} 个字符），请不超过 {MAX_INPUT} 个字符。")
    visible = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch == " ")
    if not visible.strip():
        raise AnswerError("没有收到内容，请输入您的回答。")
    return visible


def parse_bool(text: str) -> bool:
    word = normalise(text).lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise AnswerError("请回答“是”或“否”（也可以回复序号 1 或 2）。")


_INT = re.compile(r"^([+-]?\d+)\s*(年|岁|周岁|个|人|名)?(以上|多)?$")


def parse_int(text: str) -> int:
    word = normalise(text)
    match = _INT.match(word)
    if not match:
        raise AnswerError("请输入一个整数，例如 8（可以带“年”或“岁”）。")
    return int(match.group(1))


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(text: str) -> dt.date:
    word = normalise(text).replace(" ", "")
    for pattern in _DATE_PATTERNS:
        match = pattern.match(word)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                raise AnswerError(f"{word} 不是一个真实的日期，请检查年月日。") from None
    raise AnswerError("请按“1990-03-15”或“1990年3月15日”的格式输入日期。")


def matches_label(word: str, value: str, label: str) -> bool:
    """Whether typed `word` names an option: its value, its label, or the label without its
    parenthesised note (高级工 for 高级工（三级）)."""
    lowered = word.lower()
    full = normalise(label).lower()
    return lowered in (value.lower(), full, full.split("(")[0].strip())


def parse_enum(text: str, fact: Fact) -> str:
    word = normalise(text)
    if word.isdigit():
        index = int(word)
        if 1 <= index <= len(fact.choices):
            return fact.choices[index - 1].value
    for choice in fact.choices:
        if matches_label(word, choice.value, choice.label):
            return choice.value
    numbers = f"1–{len(fact.choices)}"
    raise AnswerError(f"请从下列选项中选择，回复序号（{numbers}）或选项文字。")


def parse_answer(fact: Fact, text: str, *, today: dt.date) -> Any:
    """Parse one typed answer for `fact`, check its bounds, and return the value to store."""
    text = clean_input(text)
    value: Any
    match fact.type:
        case FactType.BOOL:
            value = parse_bool(text)
        case FactType.INT:
            value = parse_int(text)
            _check_bounds(fact, value, str(value))
        case FactType.DATE:
            day = parse_date(text)
            _check_bounds(fact, day, day.isoformat())
            value = day.isoformat()
        case FactType.ENUM:
            value = parse_enum(text, fact)
        case FactType.ID_NUMBER:
            try:
                value = parse_id_number(normalise(text), today=today).value
            except IdNumberError as exc:
                raise AnswerError(str(exc)) from None
        case FactType.TEXT:
            value = normalise(text)
            if len(value) > fact.max_length:
                raise AnswerError(f"请不超过 {fact.max_length} 个字。")
    return value


def _check_bounds(fact: Fact, value: int | dt.date, shown: str) -> None:
    if fact.min is not None and value < fact.min:  # type: ignore[operator]
        raise AnswerError(fact.min_message or f"{shown} 太小了，最小是 {fact.min}。")
    if fact.max is not None and value > fact.max:  # type: ignore[operator]
        raise AnswerError(fact.max_message or f"{shown} 太大了，最大是 {fact.max}。")


def coerce_value(fact: Fact, value: Any, *, today: dt.date) -> Any:
    """Check a machine-given value (from an answers file) and return it in stored form.

    Raises `AnswerError` naming the fact and what is expected; used by `awardbot check`.
    """
    expected = {
        FactType.BOOL: "true 或 false",
        FactType.INT: "整数",
        FactType.DATE: "ISO 日期 YYYY-MM-DD",
        FactType.ENUM: "之一：" + ", ".join(fact.choice_values()),
        FactType.ID_NUMBER: "18 位身份证号码",
        FactType.TEXT: "文本",
    }[fact.type]

    def wrong(why: str = "") -> AnswerError:
        return AnswerError(f"{fact.key}: {value!r} 不是有效值，应为{expected}{why}")

    match fact.type:
        case FactType.BOOL:
            if not isinstance(value, bool):
                raise wrong()
            return value
        case FactType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong()
            _bounded(fact, value, wrong)
            return value
        case FactType.DATE:
            if isinstance(value, dt.date):
                day = value
            elif isinstance(value, str):
                try:
                    day = dt.date.fromisoformat(value)
                except ValueError:
                    raise wrong("（日期不存在或格式不对）") from None
            else:
                raise wrong()
            _bounded(fact, day, wrong)
            return day.isoformat()
        case FactType.ENUM:
            if value not in fact.choice_values():
                raise wrong()
            return value
        case FactType.ID_NUMBER:
            if not isinstance(value, str):
                raise wrong()
            try:
                return parse_id_number(value, today=today).value
            except IdNumberError as exc:
                raise AnswerError(f"{fact.key}: {exc}") from None
        case _:
            if not isinstance(value, str):
                raise wrong()
            return value


def _bounded(fact: Fact, value: int | dt.date, wrong: Any) -> None:
    low_bad = fact.min is not None and value < fact.min  # type: ignore[operator]
    high_bad = fact.max is not None and value > fact.max  # type: ignore[operator]
    if low_bad or high_bad:
        raise wrong(f"（范围 {fact.min} – {fact.max}）")
