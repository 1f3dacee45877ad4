"""campaigns/regions.yaml: every county-level division of 吉林省, under its city, by its code.

The counts below are those of 民政部's 行政区划代码 (list of 2020-12; 国家统计局's 2023 codes have
the same), the source the file's header cites: a county added to, dropped from or moved between
cities in the file without the list changing fails here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
from support.keys import TEST_SEALER
from support.process import awardbot_env, run_awardbot

from conversations.identity import Actor, Level, Role
from conversations.keys import ConversationKey
from conversations.validators import uscc_check_char
from storage.invites import UnitSpec, UnitType, bind, create_invite
from storage.regions import load_regions
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
REGIONS = load_regions(ROOT / "campaigns" / "regions.yaml")
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
PROVINCE = "220000"

# County-level divisions (市辖区, 县, 自治县, 县级市) per city, by the code's first four digits.
COUNTIES_PER_CITY = {
    "220100": ("长春市", 11),
    "220200": ("吉林市", 9),
    "220300": ("四平市", 5),
    "220400": ("辽源市", 4),
    "220500": ("通化市", 7),  # with 梅河口市 220581, which reports to the province
    "220600": ("白山市", 6),
    "220700": ("松原市", 5),
    "220800": ("白城市", 5),
    "222400": ("延边朝鲜族自治州", 8),
}
DIRECT = {"220581": "梅河口市", "229900": "长白山管委会"}  # report to the province


def _gbt2260(level: Level) -> list[str]:
    return [r.code for r in REGIONS if r.gbt2260 and r.level is level]


def test_the_province_and_its_nine_cities() -> None:
    assert _gbt2260(Level.PROVINCE) == [PROVINCE]
    cities = {r.code: r.name for r in REGIONS if r.gbt2260 and r.level is Level.CITY}
    assert cities == {code: name for code, (name, _) in COUNTIES_PER_CITY.items()}
    for code in cities:
        assert code[:2] == PROVINCE[:2]
        assert REGIONS.get(code).parent == PROVINCE


def test_every_county_lies_in_a_listed_city_and_the_counts_match_the_list() -> None:
    counties = _gbt2260(Level.COUNTY)
    per_city = Counter(code[:4] + "00" for code in counties)
    assert per_city == {code: count for code, (_, count) in COUNTIES_PER_CITY.items()}
    assert len(counties) == 60
    for code in counties:
        region = REGIONS.get(code)
        city = code[:4] + "00"
        if code in DIRECT:
            assert (region.parent, region.review_level) == (PROVINCE, Level.CITY)
            assert region.full_name == DIRECT[code]
        else:
            assert (region.parent, region.review_level) == (city, Level.COUNTY), code
            assert region.full_name == REGIONS.get(city).name + region.name


def test_the_direct_reporters_are_as_before() -> None:
    meihekou, changbaishan = REGIONS.get("220581"), REGIONS.get("229900")
    assert (meihekou.name, meihekou.reports_to, meihekou.gbt2260) == ("梅河口市", PROVINCE, True)
    assert (changbaishan.name, changbaishan.reports_to, changbaishan.gbt2260) == (
        "长白山管委会",
        PROVINCE,
        False,
    )
    assert [r.code for r in REGIONS if not r.gbt2260] == ["229900"]
    assert not REGIONS.contains("220500", "220581")


def test_names_are_unique_within_a_city_and_name_a_county_level_division() -> None:
    by_city: dict[str, list[str]] = {}
    for code in _gbt2260(Level.COUNTY):
        by_city.setdefault(code[:4], []).append(REGIONS.get(code).name)
    for names in by_city.values():
        assert len(names) == len(set(names)), names
        for name in names:
            assert re.fullmatch(r"\w+(区|县|市)", name), name


@pytest.mark.parametrize(
    ("code", "full_name"),
    [
        ("220184", "长春市公主岭市"),  # moved from 四平市 (220381) in 2020
        ("220113", "长春市九台区"),
        ("220605", "白山市江源区"),
        ("220623", "白山市长白朝鲜族自治县"),
        ("220721", "松原市前郭尔罗斯蒙古族自治县"),
        ("220781", "松原市扶余市"),
        ("222401", "延边朝鲜族自治州延吉市"),
        ("222426", "延边朝鲜族自治州安图县"),
    ],
)
def test_current_codes_and_names(code: str, full_name: str) -> None:
    assert REGIONS.full_name(code) == full_name


@pytest.mark.parametrize("old", ["220381", "220181", "220625", "220724"])
def test_codes_retired_before_the_list_are_not_listed(old: str) -> None:
    assert old not in REGIONS  # 公主岭市, 九台市, 江源县, 扶余县 under their old codes


def _uscc(region: str) -> str:
    body = f"91{region}MA14ABCDE"  # 17 characters: enterprise, the region, a body
    return body + uscc_check_char(body)


def test_an_official_of_a_yanbian_county_can_be_invited_and_bound(store: Store) -> None:
    with store.transaction() as conn:
        issued = create_invite(
            conn,
            role=Role.OFFICIAL,
            region=REGIONS.get("222403"),  # 敦化市
            level=Level.COUNTY,
            now=NOW,
            ttl=dt.timedelta(days=7),
        )
        clerk = create_invite(
            conn,
            role=Role.CLERK,
            region=REGIONS.get("222403"),
            unit=UnitSpec("敦化市示例有限公司", _uscc("222403"), UnitType.ENTERPRISE),
            now=NOW,
            ttl=dt.timedelta(days=7),
        )
    with store.conversation(ConversationKey("telegram", "dunhua")) as tx:
        official_user = tx.user_id
    with store.conversation(ConversationKey("telegram", "dunhua-clerk")) as tx:
        clerk_user = tx.user_id
    with store.transaction() as conn:
        official = bind(conn, official_user, issued.code, now=NOW)
        bound = bind(conn, clerk_user, clerk.code, now=NOW)
    assert official == Actor(role=Role.OFFICIAL, region="222403", level=Level.COUNTY)
    assert (bound.role, bound.region) == (Role.CLERK, "222403")
    assert REGIONS.contains("222400", "222403")
    assert REGIONS.contains(PROVINCE, "222403")


def test_the_invite_cli_invites_a_clerk_in_yanji(tmp_path: Path) -> None:
    db = tmp_path / "yanji.db"
    name = "延吉市示例有限公司"
    args = [
        "invite", "create", "--role", "clerk", "--region", "222401",
        "--unit-name", name, "--unit-code", _uscc("222401"), "--unit-type", "enterprise",
    ]  # fmt: skip
    done = run_awardbot(args, cwd=tmp_path, env=awardbot_env(db))
    assert (done.returncode, done.stderr) == (0, "")
    match = re.fullmatch(
        r"邀请码 (?P<code>\S{4}-\S{4})"
        r"（clerk，延边朝鲜族自治州延吉市，(?P<unit>[^，]+)，有效至 .+）\n",
        done.stdout,
    )
    assert match is not None, done.stdout
    assert match["unit"] == name
    with Store(f"sqlite:///{db}", sealer=TEST_SEALER) as store:
        with store.conversation(ConversationKey("wecom", "kim")) as tx:
            user = tx.user_id
        with store.transaction() as conn:
            actor = bind(conn, user, match["code"], now=dt.datetime.now(dt.UTC))
    assert (actor.role, actor.region) == (Role.CLERK, "222401")
