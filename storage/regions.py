"""Regions: campaigns/regions.yaml, read and checked once at start.

Levels of review: an official reviews at the level of their region, from its code's digits
(`conversations.identity.region_level`), except a region that reports to another one directly
(`reports_to` in campaigns/regions.yaml) reviews one level below it: 梅河口市 (a county-level
city) and 长白山管委会 report to the province, so their offices are city-level offices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from conversations.identity import LEVEL_ORDER, Level, region_contains, region_level


class RegionError(ValueError):
    """The regions file is wrong, or a region code is not in it; one line naming the file."""


@dataclass(frozen=True, slots=True)
class Region:
    """One region of campaigns/regions.yaml, with what its place in the table implies."""

    code: str
    name: str
    full_name: str  # what people read: 长春市朝阳区 (a county under its city), 梅河口市
    level: Level  # by the code's digits
    review_level: Level  # the level its officials review at (see the module docstring)
    parent: str | None  # the region its nominations go to next; None for the top
    reports_to: str | None  # as written in the file
    gbt2260: bool  # False: a local code, not a GB/T 2260 one


class Regions:
    """The regions the bot knows, by code, in file order."""

    def __init__(self, regions: Iterable[Region], source: str) -> None:
        self.source = source
        self._by_code = {r.code: r for r in regions}

    def __iter__(self) -> Iterator[Region]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Region:
        """The region with this code; RegionError (one line, naming the file) if unknown."""
        region = self._by_code.get(code)
        if region is None:
            raise RegionError(
                f"未知地区代码 '{code}' (unknown region code '{code}', see {self.source})"
            )
        return region

    def full_name(self, code: str) -> str:
        """The region's full name, or the code itself when the file no longer has it."""
        region = self._by_code.get(code)
        return code if region is None else region.full_name

    def contains(self, outer: str, inner: str) -> bool:
        """Whether `inner`'s nominations reach `outer` (a region contains itself).

        Follows `parent`, so 通化市 does not contain 梅河口市 although its code lies in 2205.
        An `inner` code missing from the file falls back to the digits (`region_contains`).
        """
        if inner not in self._by_code:
            return region_contains(outer, inner)
        code: str | None = inner
        while code is not None:
            if code == outer:
                return True
            code = self._by_code[code].parent
        return False


_REGION_KEYS = {"code", "name", "reports_to", "gbt2260"}


def parse_regions(text: str, source: str) -> Regions:
    """Parse the regions file (YAML text); `source` names it in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegionError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("regions"), list):
        raise RegionError(f"{source}: expected a mapping with a list 'regions'")
    raw: dict[str, tuple[str, str | None, bool]] = {}  # code: name, reports_to, gbt2260
    for i, item in enumerate(data["regions"]):
        where = f"{source}: regions[{i}]"
        if not isinstance(item, dict):
            raise RegionError(f"{where}: expected a mapping with code and name")
        unknown = sorted(str(k) for k in item if k not in _REGION_KEYS)
        if unknown:
            raise RegionError(f"{where}: unknown key '{unknown[0]}'")
        code = _region_code(item.get("code"), f"{where}.code")
        reports_to = item.get("reports_to")
        if reports_to is not None:
            reports_to = _region_code(reports_to, f"{where}.reports_to")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RegionError(f"{where}.name: expected the region's name")
        gbt2260 = item.get("gbt2260", True)
        if not isinstance(gbt2260, bool):
            raise RegionError(f"{where}.gbt2260: expected true or false")
        if code in raw:
            raise RegionError(f"{where}.code: '{code}' is listed twice")
        if reports_to == code:
            raise RegionError(f"{where}.reports_to: a region cannot report to itself")
        raw[code] = (name.strip(), reports_to, gbt2260)
    if not raw:
        raise RegionError(f"{source}: 'regions' is empty")
    for code, (_, reports_to, _) in raw.items():
        if reports_to is not None and reports_to not in raw:
            raise RegionError(f"{source}: {code}.reports_to: unknown region '{reports_to}'")

    def parent(code: str) -> str | None:
        reports_to = raw[code][1]
        if reports_to is not None:
            return reports_to
        level = region_level(code)
        candidates = []
        if level is Level.COUNTY:
            candidates.append(code[:4] + "00")
        if level is not Level.PROVINCE:
            candidates.append(code[:2] + "0000")
        return next((c for c in candidates if c in raw), None)

    review: dict[str, Level] = {}

    def review_level(code: str, seen: tuple[str, ...] = ()) -> Level:
        if code in seen:
            chain = " -> ".join((*seen, code))
            raise RegionError(f"{source}: reports_to goes round in a circle: {chain}")
        if code not in review:
            reports_to = raw[code][1]
            if reports_to is None:
                review[code] = region_level(code)
            else:
                above = LEVEL_ORDER.index(review_level(reports_to, (*seen, code)))
                if above == 0:
                    raise RegionError(
                        f"{source}: {code}.reports_to: {reports_to} is county level; "
                        "nothing reviews below a county"
                    )
                review[code] = LEVEL_ORDER[above - 1]
        return review[code]

    regions = []
    for code, (name, reports_to, gbt2260) in raw.items():
        up = parent(code)
        full_name = name
        if reports_to is None and up is not None and region_level(code) is Level.COUNTY:
            full_name = (raw[up][0] if region_level(up) is Level.CITY else "") + name
        regions.append(
            Region(
                code=code,
                name=name,
                full_name=full_name,
                level=region_level(code),
                review_level=review_level(code),
                parent=up,
                reports_to=reports_to,
                gbt2260=gbt2260,
            )
        )
    return Regions(regions, source)


def load_regions(path: Path) -> Regions:
    """Read and parse the regions file (campaigns/regions.yaml)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RegionError(f"{path}: not UTF-8 text") from None
    return parse_regions(text, str(path))


def _region_code(value: object, where: str) -> str:
    # YAML reads an unquoted 220000 as an int: take it, it has no leading zero to lose.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or len(text) != 6 or not text.isdigit():
        raise RegionError(f'{where}: expected a 6-digit code such as "220100", got {value!r}')
    return text
