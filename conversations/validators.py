"""Identifiers and names people type on nomination forms: unified social credit codes, mobile
numbers, names of people and work units, certificate numbers.

Each parser returns the normalised value or raises `ValidationError` whose message (Chinese) says
what is wrong and what is expected, ready to show before re-asking.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

# GB 32100-2015: 18 characters from this alphabet (no I O Z S V); the 18th checks the first 17.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class ValidationError(ValueError):
    """Why a value is not valid; the message is Chinese, for the user."""


def uscc_check_char(body17: str) -> str:
    """The 18th character of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def parse_uscc(text: str) -> str:
    """Validate a unified social credit code (统一社会信用代码).

    Letters are allowed anywhere the standard allows them, including the registration-authority
    character in position 1 (A/N/Y…), which `stdnum.cn.uscc` wrongly rejects (DESIGN §6).
    """
    value = unicodedata.normalize("NFKC", text).strip().replace(" ", "").upper()
    if len(value) != 18:
        raise ValidationError(f"统一社会信用代码应为 18 位，您输入了 {len(value)} 位。")
    bad = sorted({c for c in value if c not in USCC_ALPHABET})
    if bad:
        raise ValidationError(
            f"统一社会信用代码中不能有 {'、'.join(bad)}"
            "（只用数字和除 I、O、Z、S、V 以外的大写字母）。"
        )
    if uscc_check_char(value[:17]) != value[17]:
        raise ValidationError("统一社会信用代码校验位不符，请核对是否有字符输错。")
    return value


def parse_mobile(text: str) -> str:
    """Validate a mainland China mobile number; return it as 11 digits."""
    raw = unicodedata.normalize("NFKC", text).strip()
    digits = "".join(c for c in raw if c.isdigit() or c == "+")
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError("请输入 11 位手机号码，例如 13912345678。") from None
    if number.country_code != 86:
        raise ValidationError("请填写中国大陆的手机号码（+86）。")
    national = str(number.national_number)
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{raw} 不是有效的手机号码，请核对。")
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValidationError(f"{raw} 不是手机号码：请填写 11 位手机号码。")
    return national


def mask_mobile(value: str) -> str:
    """139****5678: first 3 and last 4 digits."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


# --- names, work units, certificate numbers (issue 11) ---------------------------------------

NAME_DOT = "·"  # U+00B7, the 间隔号 between the parts of a minority name (阿依古丽·买买提)
# What people type for it: katakana middle dot (Japanese IME), bullet, hyphenation point, the
# half-width katakana one, bullet and dot operators. All look alike on a phone.
NAME_DOT_VARIANTS = "·・•‧･∙⋅"
PERSON_NAME_MIN = 2  # Han characters: a full name, not a surname alone
UNIT_NAME_MIN = 4  # characters: 灵活就业 is the shortest answer the employment form asks for
CERTIFICATE_MIN, CERTIFICATE_MAX = 6, 40
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−ー", "-"))
_CERTIFICATE = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


def is_han(ch: str) -> bool:
    """A Chinese character (CJK unified or compatibility ideograph, any extension block)."""
    return unicodedata.name(ch, "").startswith(
        ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")
    )


def _is_symbol(ch: str) -> bool:
    """Emoji and other pictographs, their joiners and variation selectors."""
    return unicodedata.category(ch) in ("So", "Sk", "Cs", "Co") or ch in "\u200d\ufe0f\ufe0e"


def parse_person_name(text: str, *, label: str = "姓名") -> str:
    """A person's name in Chinese characters, the parts of a minority name joined by "·".

    Spaces go, a look-alike dot becomes "·"; digits, Latin letters, emoji and other symbols are
    refused with what is wrong. Returns the name as stored (阿依古丽·买买提).
    """
    name = "".join(text.split()).strip("。.!！？?，,、；;")
    name = "".join(NAME_DOT if ch in NAME_DOT_VARIANTS else ch for ch in name)
    how = f"请用汉字填写{label}，少数民族姓名的各部分之间用“·”隔开，例如 阿依古丽·买买提。"
    if not name:
        raise ValidationError(f"没有收到{label}。{how}")
    if any(ch.isdigit() for ch in name):
        raise ValidationError(f"{label}中不能有数字。{how}")
    if any(unicodedata.normalize("NFKC", ch).isascii() and ch.isalpha() for ch in name):
        raise ValidationError(f"{label}中不能有拉丁字母（拼音或英文）。{how}")
    if any(_is_symbol(ch) for ch in name):
        raise ValidationError(f"{label}中不能有表情符号或其他符号。{how}")
    parts = name.split(NAME_DOT)
    if "" in parts:
        raise ValidationError(f"{label}中的“·”只能用在两个字之间。{how}")
    bad = sorted({ch for ch in name if ch != NAME_DOT and not is_han(ch)})
    if bad:
        raise ValidationError(f"{label}中不能有“{'”“'.join(bad)}”。{how}")
    han = len(name) - name.count(NAME_DOT)
    if han < PERSON_NAME_MIN:
        raise ValidationError(f"{label}至少 {PERSON_NAME_MIN} 个字，请填写完整的姓名。")
    return name


def parse_unit_name(text: str, *, label: str = "工作单位") -> str:
    """The full name of a work unit: at least `UNIT_NAME_MIN` characters, not only digits or
    punctuation, no emoji. Full-width brackets and commas stay as typed."""
    name = " ".join(text.split())
    how = f"请填写{label}全称，与单位公章上的名称一致，例如 长春市朝阳区示例有限公司。"
    if any(_is_symbol(ch) for ch in name):
        raise ValidationError(f"{label}中不能有表情符号或其他符号。{how}")
    if not any(ch.isalpha() for ch in name):
        raise ValidationError(f"{label}不能只有数字或符号。{how}")
    if len(name.replace(" ", "")) < UNIT_NAME_MIN:
        raise ValidationError(f"{label}至少 {UNIT_NAME_MIN} 个字，您填写的是“{name}”。{how}")
    return name


def parse_certificate_number(text: str, *, label: str = "证书编号") -> str:
    """A certificate number: letters and digits, maybe parts joined by "-", 6–40 characters.

    Full width becomes half width, spaces go, dashes of any kind become "-", letters upper case.
    Chinese words (a description instead of the number) are refused.
    """
    value = unicodedata.normalize("NFKC", text).translate(_DASHES)
    value = "".join(value.split()).upper()
    how = (
        f"请按证书上的编号原样填写：只用字母、数字和“-”，{CERTIFICATE_MIN}–{CERTIFICATE_MAX}"
        " 位，例如 S000022010001235000123。"
    )
    if any(is_han(ch) for ch in value):
        raise ValidationError(f"{label}中不能有汉字。{how}")
    if not _CERTIFICATE.match(value):
        raise ValidationError(f"{label}中只能有字母、数字和“-”（不能以“-”开头或结尾）。{how}")
    if not any(ch.isdigit() for ch in value):
        raise ValidationError(f"{label}中应当有数字。{how}")
    if not CERTIFICATE_MIN <= len(value) <= CERTIFICATE_MAX:
        raise ValidationError(
            f"{label}应为 {CERTIFICATE_MIN}–{CERTIFICATE_MAX} 位，您输入了 {len(value)} 位。{how}"
        )
    return value
