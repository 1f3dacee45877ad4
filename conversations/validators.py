"""Identifiers people type on nomination forms: unified social credit codes and mobile numbers.

Each parser returns the normalised value or raises `ValidationError` whose message (Chinese) says
what is wrong and what is expected, ready to show before re-asking.
"""

from __future__ import annotations

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
