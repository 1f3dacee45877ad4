"""Regions, invitation codes, role bindings and quotas, on every store backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from conversations.identity import Actor, Level, Role
from conversations.keys import ConversationKey
from storage.invites import (
    CODE_ALPHABET,
    BindError,
    BindRefusal,
    InviteError,
    InviteStatus,
    UnitSpec,
    UnitType,
    actor_of,
    bind,
    code_hash,
    create_invite,
    list_invites,
    new_code,
    normalize_code,
    revoke_invite,
)
from storage.quotas import QuotaError, quotas, set_quota
from storage.regions import RegionError, Regions, load_regions, parse_regions
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
REGIONS = load_regions(ROOT / "campaigns" / "regions.yaml")
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
UNIT = UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K")
IDENTITY_TABLES = {"units", "invites", "memberships", "quotas"}


@pytest.fixture
def raw(store_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(store_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def _user(store: Store, name: str) -> int:
    with store.conversation(ConversationKey("telegram", name)) as tx:
        return tx.user_id


def _clerk_invite(store: Store, *, now: datetime = NOW, ttl: timedelta = WEEK) -> str:
    with store.transaction() as conn:
        issued = create_invite(
            conn, role=Role.CLERK, region=REGIONS.get("220104"), unit=UNIT, now=now, ttl=ttl
        )
    return issued.code


def _official_invite(store: Store, region: str, level: Level) -> str:
    with store.transaction() as conn:
        issued = create_invite(
            conn, role=Role.OFFICIAL, region=REGIONS.get(region), level=level, now=NOW, ttl=WEEK
        )
    return issued.code


def _bind(store: Store, user_id: int, code: str, *, now: datetime = NOW) -> Actor:
    with store.transaction() as conn:
        return bind(conn, user_id, code, now=now)


# --- regions ---------------------------------------------------------------------------------


def test_the_regions_file_knows_cities_and_direct_reporters() -> None:
    cities = {r.code for r in REGIONS if r.level is Level.CITY and r.gbt2260}
    assert cities == {f"22{n:02d}00" for n in range(1, 9)} | {"222400"}
    chaoyang = REGIONS.get("220104")
    assert (chaoyang.full_name, chaoyang.review_level, chaoyang.parent) == (
        "长春市朝阳区",
        Level.COUNTY,
        "220100",
    )
    meihekou = REGIONS.get("220581")
    assert (meihekou.full_name, meihekou.level, meihekou.review_level, meihekou.parent) == (
        "梅河口市",
        Level.COUNTY,
        Level.CITY,
        "220000",
    )
    changbaishan = REGIONS.get("229900")
    assert (changbaishan.gbt2260, changbaishan.review_level, changbaishan.parent) == (
        False,
        Level.CITY,
        "220000",
    )
    assert REGIONS.get("220000").review_level is Level.PROVINCE
    assert REGIONS.get("222400").full_name == "延边朝鲜族自治州"


@pytest.mark.parametrize(
    ("outer", "inner", "inside"),
    [
        ("220000", "220581", True),
        ("220500", "220581", False),  # in 通化市 by its digits, but reports to the province
        ("220000", "229900", True),
        ("220100", "220104", True),
        ("220104", "220104", True),
        ("220200", "220104", False),
        ("220100", "220199", True),  # not in the file: by the digits
    ],
)
def test_containment_follows_reporting(outer: str, inner: str, inside: bool) -> None:
    assert REGIONS.contains(outer, inner) is inside


def test_an_unknown_region_is_one_line_naming_the_file() -> None:
    with pytest.raises(RegionError, match=r"unknown region code.*regions\.yaml"):
        REGIONS.get("229800")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("regions: [", "not valid YAML"),
        ("- 1", "a list 'regions'"),
        ("regions: []", "'regions' is empty"),
        ("regions: [{code: '2201', name: x}]", "regions[0].code: expected a 6-digit code"),
        ("regions: [{code: '220100'}]", "regions[0].name"),
        ("regions: [{code: '220100', name: x, parent: y}]", "unknown key 'parent'"),
        ("regions: [{code: '220100', name: x, gbt2260: maybe}]", "gbt2260"),
        ("regions: [{code: '220100', name: x}, {code: 220100, name: y}]", "listed twice"),
        ("regions: [{code: '220100', name: x, reports_to: '220000'}]", "unknown region '220000'"),
        (
            "regions: [{code: '220101', name: a},"
            " {code: '220102', name: b, reports_to: '220101'}]",
            "220101 is county level",
        ),
        (
            "regions: [{code: '220100', name: a, reports_to: '220200'},"
            " {code: '220200', name: b, reports_to: '220100'}]",
            "goes round in a circle",
        ),
    ],
)
def test_bad_regions_files_are_one_line_naming_the_file(text: str, problem: str) -> None:
    with pytest.raises(RegionError) as caught:
        parse_regions(text, "campaigns/regions.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("campaigns/regions.yaml: ")
    assert problem in message


def test_a_missing_regions_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RegionError, match=r"regions\.yaml: cannot read"):
        load_regions(tmp_path / "regions.yaml")


# --- codes -----------------------------------------------------------------------------------


def test_codes_avoid_look_alikes_and_are_random() -> None:
    assert not set("01OIL") & set(CODE_ALPHABET)
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("ABCD-EFGH", "ABCDEFGH"),
        ("abcd-efgh", "ABCDEFGH"),
        ("abcdefgh", "ABCDEFGH"),
        (" ABCD EFGH ", "ABCDEFGH"),
        ("ＡＢＣＤ－ＥＦＧＨ", "ABCDEFGH"),  # typed with a full-width input method
        ("AB-CD EF-GH", "ABCDEFGH"),
        ("ABCD-EFG", None),
        ("ABCD-EFGHJ", None),
        ("ABCD-EFG0", None),  # 0 is not in the alphabet
        ("", None),
    ],
)
def test_codes_are_accepted_in_any_case_with_or_without_dash(
    text: str, normal: str | None
) -> None:
    assert normalize_code(text) == normal


# --- invites and binding ---------------------------------------------------------------------


def test_a_clerk_invite_binds_a_clerk_of_its_unit(store: Store) -> None:
    with store.transaction() as conn:
        issued = create_invite(
            conn,
            role=Role.CLERK,
            region=REGIONS.get("220104"),
            unit=UnitSpec(UNIT.name, UNIT.uscc.lower(), UnitType.ENTERPRISE),
            now=NOW,
            ttl=WEEK,
        )
    assert issued.expires_at == NOW + WEEK
    assert issued.code[4] == "-"
    assert issued.hint == issued.code[:4]
    user = _user(store, "clerk")

    actor = _bind(store, user, issued.code.lower().replace("-", " "))

    assert actor.role is Role.CLERK
    assert (actor.region, actor.level) == ("220104", None)
    assert actor.unit_id is not None
    with store.reading() as conn:
        assert actor_of(conn, user) == actor
        assert actor_of(conn, _user(store, "nobody")) is None


OFFICIAL_LEVELS = [
    ("220104", Level.COUNTY),
    ("220100", Level.CITY),
    ("222400", Level.CITY),
    ("220581", Level.CITY),  # 梅河口市 reports to the province: a city-level office
    ("229900", Level.CITY),  # 长白山管委会 likewise
    ("220000", Level.PROVINCE),
]


def test_an_official_invite_binds_an_official_at_its_level(store: Store) -> None:
    for region, level in OFFICIAL_LEVELS:
        code = _official_invite(store, region, level)
        actor = _bind(store, _user(store, f"official-{region}"), code)
        assert actor == Actor(role=Role.OFFICIAL, region=region, level=level)


def test_an_official_invite_at_the_wrong_level_is_refused(store: Store) -> None:
    for region, level in [
        ("220581", Level.COUNTY),
        ("220100", Level.PROVINCE),
        ("220000", Level.CITY),
    ]:
        with store.transaction() as conn, pytest.raises(InviteError, match="level mismatch"):
            create_invite(
                conn,
                role=Role.OFFICIAL,
                region=REGIONS.get(region),
                level=level,
                now=NOW,
                ttl=WEEK,
            )


BAD_INVITES: list[tuple[dict[str, object], str]] = [
    ({"role": Role.CLERK}, "needs a unit"),
    ({"role": Role.CLERK, "unit": UNIT, "level": Level.COUNTY}, "official invites only"),
    ({"role": Role.OFFICIAL}, "needs a level"),
    ({"role": Role.OFFICIAL, "level": Level.COUNTY, "unit": UNIT}, "clerk invites only"),
    ({"role": Role.APPLICANT}, "clerk or official"),
    ({"role": Role.CLERK, "unit": UnitSpec("x", "91220104MA14ABCD3L")}, "校验位"),
    ({"role": Role.CLERK, "unit": UnitSpec(" ", UNIT.uscc)}, "needs a name"),
    ({"role": Role.CLERK, "unit": UNIT, "ttl": timedelta(0)}, "must be positive"),
]


def test_bad_invites_are_refused_with_one_line(store: Store) -> None:
    args: dict[str, object] = {"region": REGIONS.get("220104"), "now": NOW, "ttl": WEEK}
    for kwargs, problem in BAD_INVITES:
        with store.transaction() as conn, pytest.raises(InviteError) as caught:
            create_invite(conn, **{**args, **kwargs})  # type: ignore[arg-type]
        assert problem in str(caught.value)
        assert "\n" not in str(caught.value)
    with store.reading() as conn:
        assert list_invites(conn, now=NOW) == []


def test_a_unit_is_found_by_its_code_and_its_name_must_agree(store: Store) -> None:
    first, second = _clerk_invite(store), _clerk_invite(store)
    a = _bind(store, _user(store, "a"), first)
    b = _bind(store, _user(store, "b"), second)
    assert a.unit_id == b.unit_id
    other = UnitSpec(name="另一家公司", uscc=UNIT.uscc)
    with store.transaction() as conn, pytest.raises(InviteError) as caught:
        create_invite(
            conn, role=Role.CLERK, region=REGIONS.get("220104"), unit=other, now=NOW, ttl=WEEK
        )
    assert UNIT.name in str(caught.value)
    assert "另一家公司" in str(caught.value)
    with store.transaction() as conn, pytest.raises(InviteError, match="registered in region"):
        create_invite(
            conn, role=Role.CLERK, region=REGIONS.get("220102"), unit=UNIT, now=NOW, ttl=WEEK
        )


def _refusal(store: Store, user: int, code: str, *, now: datetime = NOW) -> BindError:
    with pytest.raises(BindError) as caught:
        _bind(store, user, code, now=now)
    # Only the typed reason: the core words it for the user (texts bind_<reason>).
    assert caught.value.args == (caught.value.reason.value,)
    return caught.value


def test_expired_used_revoked_and_unknown_codes_are_refused(store: Store) -> None:
    user, other = _user(store, "u"), _user(store, "o")

    expired = _clerk_invite(store, now=NOW - WEEK, ttl=timedelta(days=7))
    assert _refusal(store, user, expired).reason is BindRefusal.EXPIRED

    used = _clerk_invite(store)
    _bind(store, other, used)
    assert _refusal(store, user, used).reason is BindRefusal.USED

    revoked = _clerk_invite(store)
    with store.transaction() as conn:
        revoke_invite(conn, revoked, now=NOW)
    assert _refusal(store, user, revoked).reason is BindRefusal.REVOKED

    unknown = {_refusal(store, user, text).reason for text in ("2345-6789", "nonsense", "")}
    assert unknown == {BindRefusal.INVALID}
    with store.reading() as conn:
        assert actor_of(conn, user) is None


def test_the_database_never_holds_a_code_in_clear(store: Store, raw: sa.Engine) -> None:
    codes = [_clerk_invite(store) for _ in range(3)] + [
        _official_invite(store, "220100", Level.CITY)
    ]
    _bind(store, _user(store, "u"), codes[0])
    with raw.connect() as conn:
        rows = [
            tuple(str(v) for v in row) for row in conn.execute(sa.text("SELECT * FROM invites"))
        ]
    assert len(rows) == 4
    for code in codes:
        for form in (code, code.replace("-", ""), code.lower()):
            assert not any(form in cell for row in rows for cell in row)
        assert any(code_hash(code.replace("-", "")) in row for row in rows)


def test_binding_again_replaces_the_membership_and_records_it(
    store: Store, raw: sa.Engine
) -> None:
    user = _user(store, "u")
    clerk = _clerk_invite(store)
    official = _official_invite(store, "220581", Level.CITY)
    _bind(store, user, clerk)

    actor = _bind(store, user, official)

    assert actor == Actor(role=Role.OFFICIAL, region="220581", level=Level.CITY)
    with store.reading() as conn:
        assert actor_of(conn, user) == actor
    with raw.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM memberships")).scalar_one() == 1
        used = conn.execute(
            sa.text(
                "SELECT id, used_by_user_id, replaced_invite_id FROM invites"
                " WHERE used_at IS NOT NULL ORDER BY used_at, id"
            )
        ).all()
    (first_id, first_user, first_replaced), (_, second_user, second_replaced) = used
    assert (first_user, second_user) == (user, user)
    assert (first_replaced, second_replaced) == (None, first_id)

    # The code of the current binding sent again (a retried message): the same binding.
    assert _bind(store, user, official, now=NOW + timedelta(minutes=1)) == actor
    # The earlier code is used up, even for the user it was for.
    assert _refusal(store, user, clerk).reason is BindRefusal.USED


def test_two_users_binding_one_code_at_once_one_wins(store: Store) -> None:
    code = _clerk_invite(store)
    users = [_user(store, f"u{i}") for i in range(2)]
    barrier = threading.Barrier(len(users), timeout=10)

    def attempt(user: int) -> str:
        barrier.wait()
        try:
            _bind(store, user, code)
        except BindError as exc:
            return exc.reason.value
        return "bound"

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        outcomes = sorted(pool.map(attempt, users))
    assert outcomes == ["bound", "used"]
    with store.reading() as conn:
        actors = [actor_of(conn, u) for u in users]
    assert sum(a is not None for a in actors) == 1


def test_list_shows_each_status_and_revoke_takes_a_code_or_hint(store: Store) -> None:
    user = _user(store, "u")
    expired = _clerk_invite(store, now=NOW - WEEK, ttl=timedelta(hours=1))
    used = _clerk_invite(store)
    by_hint = _official_invite(store, "220100", Level.CITY)
    by_code = _official_invite(store, "220000", Level.PROVINCE)
    active = _official_invite(store, "220104", Level.COUNTY)
    _bind(store, user, used)

    with store.transaction() as conn:
        revoked = revoke_invite(conn, by_hint[:4].lower(), now=NOW)
        revoke_invite(conn, by_code, now=NOW)
    assert (revoked.status, revoked.revoked_at) == (InviteStatus.REVOKED, NOW)

    with store.reading() as conn:
        records = list_invites(conn, now=NOW)
    assert [(r.hint, r.status) for r in records] == [
        (expired[:4], InviteStatus.EXPIRED),
        (used[:4], InviteStatus.USED),
        (by_hint[:4], InviteStatus.REVOKED),
        (by_code[:4], InviteStatus.REVOKED),
        (active[:4], InviteStatus.ACTIVE),
    ]
    assert records[1].used_by_user_id == user
    assert records[1].unit_name == UNIT.name
    assert records[4].level is Level.COUNTY


def test_revoking_a_used_revoked_or_unknown_invite_is_refused(store: Store) -> None:
    used, revoked = _clerk_invite(store), _clerk_invite(store)
    _bind(store, _user(store, "u"), used)
    with store.transaction() as conn:
        revoke_invite(conn, revoked, now=NOW)
    for code, problem in [
        (used, "already used"),
        (revoked, "already revoked"),
        ("2345-6789", "no such invite"),
    ]:
        for text in (code, code[:4]):
            with store.transaction() as conn, pytest.raises(InviteError, match=problem):
                revoke_invite(conn, text, now=NOW)
    with store.transaction() as conn, pytest.raises(InviteError, match="first 4 characters"):
        revoke_invite(conn, "ABC", now=NOW)


# --- quotas ----------------------------------------------------------------------------------


def test_quotas_are_set_updated_and_listed(store: Store) -> None:
    campaign = "jl-employment-2022"
    with store.transaction() as conn:
        set_quota(
            conn, campaign=campaign, category="migrant_collective", region=REGIONS.get("220581"),
            places=2, now=NOW,
        )  # fmt: skip
        set_quota(
            conn, campaign=campaign, category="employment_collective",
            region=REGIONS.get("220100"), places=8, now=NOW,
        )  # fmt: skip
        set_quota(
            conn, campaign="jl-skills-2022", category="technical_expert",
            region=REGIONS.get("220100"), places=5, now=NOW,
        )  # fmt: skip
    later = NOW + timedelta(days=1)
    with store.transaction() as conn:
        updated = set_quota(
            conn, campaign=campaign, category="employment_collective",
            region=REGIONS.get("220100"), places=0, now=later,
        )  # fmt: skip
    assert updated.places == 0

    with store.reading() as conn:
        listed = quotas(conn, campaign)
        only = quotas(conn, campaign, "migrant_collective")
    assert [(q.category, q.region_code, q.places, q.updated_at) for q in listed] == [
        ("employment_collective", "220100", 0, later),
        ("migrant_collective", "220581", 2, NOW),
    ]
    assert [(q.category, q.places) for q in only] == [("migrant_collective", 2)]

    with store.transaction() as conn, pytest.raises(QuotaError, match="0 or more"):
        set_quota(
            conn, campaign=campaign, category="migrant_collective", region=REGIONS.get("220100"),
            places=-1, now=NOW,
        )  # fmt: skip


# --- schema ----------------------------------------------------------------------------------


def test_migrated_identity_tables_match_the_models(store: Store, raw: sa.Engine) -> None:
    inspector = sa.inspect(raw)
    assert set(inspector.get_table_names()) >= IDENTITY_TABLES
    for name in sorted(IDENTITY_TABLES):
        table = SQLModel.metadata.tables[name]
        expected = {(c.name, c.nullable, c.primary_key) for c in table.columns}
        pk = inspector.get_pk_constraint(name)["constrained_columns"]
        actual = {(c["name"], c["nullable"], c["name"] in pk) for c in inspector.get_columns(name)}
        assert actual == expected, name
        model_uniques = {
            tuple(c.name for c in u.columns)
            for u in table.constraints
            if isinstance(u, sa.UniqueConstraint)
        }
        db_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)}
        assert db_uniques == model_uniques, name
        model_fks = {(fk.parent.name, fk.column.table.name) for fk in table.foreign_keys}
        db_fks = {
            (fk["constrained_columns"][0], fk["referred_table"])
            for fk in inspector.get_foreign_keys(name)
        }
        assert db_fks == model_fks, name


def test_regions_object_is_iterable_and_sized() -> None:
    assert isinstance(REGIONS, Regions)
    assert len(REGIONS) == len(list(REGIONS))
    assert "220104" in REGIONS
    assert "229800" not in REGIONS
