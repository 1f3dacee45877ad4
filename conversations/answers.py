"""Typed answer parsing: what people actually type, turned into values, or a reason to re-ask.

Every parser returns the JSON-ready value that is stored (bool, int, ISO date string, enum value,
text) or raises `AnswerError` whose message (Chinese) tells the user what is expected.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from conversations.facts import Choice, Fact, FactType
from conversations.idnumber import IdNumberError, parse_id_number
from conversations.vocab import notes_of, without_notes

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


_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "兩": 2, "三": 3, "叁": 3,
    "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}  # fmt: skip
_CN_ZEROS = frozenset("零〇")
_CN_TWO = frozenset("两兩")  # 两 before a unit (两百) or alone (两年), never before 十
_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_WAN = frozenset("万萬")
_CN_CHARS = "".join((*_CN_DIGITS, *_CN_UNITS, *_CN_WAN))


def chinese_int(text: str) -> int | None:
    """The integer `text` writes in Chinese numerals, or None when it is not one.

    Accepts the standard reading (三十五, 一百零五, 两千零二十二, 十二万三千), a leading 十
    (十五, 十万), 两 before a unit or alone (两百, 两), financial numerals (壹贰…拾佰仟) and digit
    by digit with a zero (二〇二二, 一〇五). Refuses what is not an integer (八点五, 负三) and the
    spoken shortenings whose value a clerk should say in full (一百五 for 150, 一万二 for 12000).
    Written here (issue 11) rather than taken from cn2an: importing cn2an costs about 0.4 s (its
    dependency proces loads conversion dictionaries), its lenient mode returns floats (1５ → 15.0)
    and its strict one refuses 两, and it ships no type information.
    """
    if not text or any(ch not in _CN_CHARS for ch in text):
        return None
    if all(ch in _CN_DIGITS for ch in text):  # 八, 两, 二〇二二
        if len(text) == 1:
            return _CN_DIGITS[text]
        by_digit = any(ch in _CN_ZEROS for ch in text) and text[0] not in _CN_ZEROS
        if not by_digit or any(ch in _CN_TWO for ch in text):
            return None
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = section = 0
    digit: str | None = None
    last_unit: int | None = None  # the last unit read; 10000 after 万
    zero = started = False
    for ch in text:
        if ch in _CN_ZEROS:  # 零 stands between two parts: 一百零五
            if digit is not None or zero or not started:
                return None
            zero = True
        elif ch in _CN_DIGITS:
            if digit is not None:
                return None
            digit = ch
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if last_unit is not None and unit >= last_unit:
                return None
            if digit is None:  # 十五, 十万: a bare 十 only opens the number
                if unit != 10 or started:
                    return None
                section += 10
            elif digit in _CN_TWO and unit == 10:
                return None
            else:
                section += _CN_DIGITS[digit] * unit
            digit, last_unit, zero, started = None, unit, False, True
        else:  # 万: once, after something
            if total or (section == 0 and digit is None) or (zero and digit is None):
                return None
            if digit is not None:
                if last_unit not in (None, 10) and not zero:  # 一百零一万, not 一百一万
                    return None
                section += _CN_DIGITS[digit]
            total, section, digit, last_unit = section * 10000, 0, None, 10000
            zero, started = False, True
    if digit is not None:
        if (last_unit not in (None, 10) and not zero) or (digit in _CN_TWO and started):
            return None  # 一百五, 一万二 (spoken for 150, 12000), 十两
        section += _CN_DIGITS[digit]
    elif zero:
        return None
    return total + section


_INT = re.compile(rf"^([+-]?\d+|[{_CN_CHARS}]+)\s*(年|岁|周岁|个|人|名)?(以上|多)?$")


def parse_int(text: str) -> int:
    """An integer in digits (full or half width) or Chinese numerals, maybe with a unit:
    8, ８人, 十五年, 三十五岁, 两年; 8年以上 and 8年多 are 8 (whole years)."""
    word = normalise(text)
    match = _INT.match(word)
    number = None
    if match:
        digits = match.group(1)
        number = int(digits) if digits[-1].isdigit() else chinese_int(digits)
    if number is None:
        raise AnswerError("请输入一个整数，例如 8（可以带“年”或“岁”）。")
    return number


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


_BOUNDS = (("及以下", "以下"), ("及以上", "以上"))


def loose_keys(label: str) -> set[str]:
    """The shorter ways to say a choice label: without its bracketed notes (中专 for
    中专（含技工学校、职业高中）), a note alone (五级 for 初级工（五级）), without a trailing
    及以下/及以上 (乡科级 and 乡科级以下 for 乡科级及以下)."""
    full = normalise(label).lower()
    base = without_notes(full)
    keys = {base, *notes_of(full)}
    for suffix, short in _BOUNDS:
        stem = base.removesuffix(suffix)
        if stem and stem != base:
            keys |= {stem, stem + short}
    keys.discard("")
    keys.discard(full)
    return keys


def match_choice(word: str, choices: Sequence[Choice]) -> str | None:
    """The value of the choice typed `word` names, or None.

    The value or the whole label wins; otherwise a shorter way to say one label (`loose_keys`).
    Raises `AnswerError` listing the choices when the shorter way fits several.
    """
    lowered = normalise(word).lower()
    for choice in choices:
        if lowered in (choice.value.lower(), normalise(choice.label).lower()):
            return choice.value
    hits = [(i, c) for i, c in enumerate(choices, 1) if lowered in loose_keys(c.label)]
    if len(hits) > 1:
        listed = "；".join(f"{i}. {c.label}" for i, c in hits)
        raise AnswerError(f"“{normalise(word)}”可能指：{listed}。请回复其中一项的序号。")
    return hits[0][1].value if hits else None


def parse_enum(text: str, fact: Fact) -> str:
    word = normalise(text)
    if word.isdigit():
        index = int(word)
        if 1 <= index <= len(fact.choices):
            return fact.choices[index - 1].value
    value = match_choice(word, fact.choices)
    if value is not None:
        return value
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
