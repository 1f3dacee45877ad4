"""Unified social credit codes (GB 32100) and mainland mobile numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.validators import (
    USCC_ALPHABET,
    ValidationError,
    mask_mobile,
    parse_mobile,
    parse_uscc,
    uscc_check_char,
)

bodies = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


def test_known_code_validates_in_any_case() -> None:
    assert parse_uscc(" 91110000600037341l ") == "91110000600037341L"


@given(bodies)
def test_every_body_with_its_check_char_validates(body: str) -> None:
    assert parse_uscc(body + uscc_check_char(body)) == body + uscc_check_char(body)


def test_letter_in_the_registration_authority_position_is_allowed() -> None:
    # GB 32100 allows e.g. N (农业) first; stdnum.cn.uscc wrongly demands 8 leading digits.
    body = "N2110108MA0000001"
    assert parse_uscc(body + uscc_check_char(body)).startswith("N")


@given(bodies, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=30))
def test_any_single_character_change_is_caught(body: str, position: int, shift: int) -> None:
    code = body + uscc_check_char(body)
    changed_char = USCC_ALPHABET[(USCC_ALPHABET.index(code[position]) + shift) % 31]
    changed = code[:position] + changed_char + code[position + 1 :]
    with pytest.raises(ValidationError, match="校验位"):
        parse_uscc(changed)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("9111000060003734", "18 位"),
        ("91110000600037341O", "不能有 O"),
        ("9111000060003734IL", "I"),
    ],
)
def test_malformed_codes_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        parse_uscc(text)


@pytest.mark.parametrize(
    "text", ["13912345678", "+86 139 1234 5678", "139-1234-5678", "１３９１２３４５６７８"]
)
def test_mobile_numbers_in_common_forms(text: str) -> None:
    assert parse_mobile(text) == "13912345678"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0431-88690627", "不是手机号码"),
        ("12345678901", "不是有效的手机号码"),
        ("1391234567", "不是有效的手机号码"),
        ("+1 415 555 2671", "中国大陆"),
        ("电话", "11 位手机号码"),
    ],
)
def test_non_mobile_numbers_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        parse_mobile(text)


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_masking_keeps_first_three_and_last_four(number: str) -> None:
    assert mask_mobile(number) == number[:3] + "****" + number[-4:]
