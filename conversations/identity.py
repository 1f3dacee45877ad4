"""Who is acting: roles, review levels, regions by administrative code (DESIGN §1, §3).

Names things once (STYLE.md): every module that speaks of a role, a level or a region uses these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    APPLICANT = "applicant"  # 申报人: self-checks, follows a nomination by tracking code
    CLERK = "clerk"  # 单位经办人: files nominations for one unit
    OFFICIAL = "official"  # 评选表彰工作领导小组办公室: reviews at one level, in one region
    ADMIN = "admin"  # command line only: campaigns, quotas, invitation codes


class Level(StrEnum):
    """Review levels, lowest first."""

    COUNTY = "county"
    CITY = "city"
    PROVINCE = "province"


LEVEL_ORDER = (Level.COUNTY, Level.CITY, Level.PROVINCE)
# Two views of one level: the office's name in review messages (县级, 市（州）级, 省级) and the
# short one of /whoami (县, 市, 省).
LEVEL_NAMES: Mapping[Level, str] = {
    Level.COUNTY: "县级",
    Level.CITY: "市（州）级",
    Level.PROVINCE: "省级",
}
LEVEL_SHORT_NAMES: Mapping[Level, str] = {
    Level.COUNTY: "县",
    Level.CITY: "市",
    Level.PROVINCE: "省",
}


def region_level(code: str) -> Level:
    """The level of an administrative code: 220000 province, 220100 city, 220104 county.

    GB/T 2260 codes: two digits province, two city (prefecture), two county; zeros where a
    level is absent. A county-level city directly under the province (梅河口市 220581) is a
    county code by its digits; how it reports is configuration, not this function's business.
    """
    if len(code) != 6 or not code.isdigit():
        raise ValueError(f"not a 6-digit administrative code: {code!r}")
    if code[2:] == "0000":
        return Level.PROVINCE
    if code[4:] == "00":
        return Level.CITY
    return Level.COUNTY


def region_prefix(code: str) -> str:
    """The digits a code shares with every region inside it (22 for 220000, 2201 for 220100)."""
    level = region_level(code)
    if level is Level.PROVINCE:
        return code[:2]
    if level is Level.CITY:
        return code[:4]
    return code


def region_contains(outer: str, inner: str) -> bool:
    """Whether region `inner` lies within region `outer` (a region contains itself)."""
    return inner.startswith(region_prefix(outer))


@dataclass(frozen=True, slots=True)
class Actor:
    """A person acting on a nomination, as their binding says.

    `unit_id` is set for clerks; `level` and `region` for officials (a clerk's region is their
    unit's). An applicant has neither.
    """

    role: Role
    region: str | None = None
    level: Level | None = None
    unit_id: int | None = None


# Why a code did not bind (storage.invites.BindRefusal, InviteView.state: invalid, expired,
# used, revoked) -> the text that answers it, `bind_<state>`. A code someone else used is
# answered exactly like an unknown one: the answer must not tell a guesser that the code
# exists (README, "Roles and invitation codes").
ANSWERED_AS: Mapping[str, str] = {"used": "invalid"}


def bind_refusal_text(state: str) -> str:
    """The text key (conversations.texts) answering a bind refused for `state`."""
    return "bind_" + ANSWERED_AS.get(state, state)
