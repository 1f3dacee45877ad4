"""Resident ID numbers (GB 11643-1999): format, birth date and ISO 7064 MOD 11-2 check digit.

The county code (positions 1–6) is deliberately *not* checked against a list of counties: codes are
those of the place of registration when the number was issued, so a list by birth year (as
`stdnum.cn.ric.validate` uses) rejects genuine numbers coded after a district change (DESIGN §6).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"


class IdNumberError(ValueError):
    """Why a number is not a valid ID number; the message is Chinese, for the user."""


@dataclass(frozen=True, slots=True)
class IdNumber:
    value: str  # normalised: 18 characters, upper-case X

    @property
    def birth_date(self) -> dt.date:
        return dt.date(int(self.value[6:10]), int(self.value[10:12]), int(self.value[12:14]))

    @property
    def is_male(self) -> bool:
        return int(self.value[16]) % 2 == 1

    @property
    def region_code(self) -> str:
        return self.value[:6]

    def masked(self) -> str:
        """First 6 and last 4 characters: 220104********0024 (hides the birth date)."""
        return mask_id_number(self.value)


def check_digit(body17: str) -> str:
    """The 18th character for a 17-digit body."""
    total = sum(int(d) * w for d, w in zip(body17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def parse_id_number(text: str, *, today: dt.date) -> IdNumber:
    """Validate an 18-character ID number; raise IdNumberError saying what is wrong."""
    value = text.strip().replace(" ", "").upper()
    if len(value) != 18:
        raise IdNumberError(f"身份证号码应为 18 位，您输入了 {len(value)} 位。")
    if not value[:17].isascii() or not value[:17].isdigit():
        raise IdNumberError("身份证号码前 17 位应全部是数字。")
    if not (value[17].isascii() and (value[17].isdigit() or value[17] == "X")):
        raise IdNumberError("身份证号码最后一位应是数字或 X。")
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdNumberError(
            f"身份证号码第 7–14 位的出生日期 {value[6:14]} 不是一个真实的日期。"
        ) from None
    if born > today or born.year < 1900:
        raise IdNumberError(f"身份证号码中的出生日期 {born.isoformat()} 不合理。")
    if check_digit(value[:17]) != value[17]:
        raise IdNumberError("身份证号码校验位不符，请核对是否有数字输错。")
    return IdNumber(value)


def age_at(born: dt.date, day: dt.date) -> int:
    """Completed years (周岁) on `day`; below zero for a day before the birth."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def mask_id_number(value: str) -> str:
    """Mask all but the first 6 and last 4 characters."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
