"""Regions by administrative code."""

from __future__ import annotations

import pytest

from conversations.identity import Level, region_contains, region_level, region_prefix


@pytest.mark.parametrize(
    ("code", "level", "prefix"),
    [
        ("220000", Level.PROVINCE, "22"),
        ("220100", Level.CITY, "2201"),
        ("222400", Level.CITY, "2224"),
        ("220104", Level.COUNTY, "220104"),
        ("220581", Level.COUNTY, "220581"),
    ],
)
def test_level_and_prefix(code: str, level: Level, prefix: str) -> None:
    assert region_level(code) == level
    assert region_prefix(code) == prefix


@pytest.mark.parametrize(
    ("outer", "inner", "inside"),
    [
        ("220000", "220104", True),
        ("220100", "220104", True),
        ("220100", "220100", True),
        ("220200", "220104", False),
        ("220104", "220100", False),
        ("210000", "220104", False),
    ],
)
def test_containment(outer: str, inner: str, inside: bool) -> None:
    assert region_contains(outer, inner) is inside


@pytest.mark.parametrize("code", ["2201", "22010x", "2201040", ""])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="6-digit"):
        region_level(code)
