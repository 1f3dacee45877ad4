"""`awardbot invite …` and `awardbot quota …`: output, and one-line errors with exit 2."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from support.columns import table
from support.console_harness import ConsoleHarness
from support.keys import TEST_KEY, TEST_SEALER
from support.process import awardbot_env, run_awardbot
from support.review_rig import clerk, place

from bot.admin import INVITE_HEADINGS, QUOTA_HEADINGS
from bot.cli import main
from conversations.identity import Actor, Role
from conversations.keys import ConversationKey
from storage.invites import bind
from storage.store import Store
from storage.tables import users

SHANGHAI = ZoneInfo("Asia/Shanghai")
EMPLOYMENT = "jl-employment-2022"
UNIT_NAME = "长春市朝阳区示例有限公司"
USCC = "91220104MA14ABCD3K"
CLERK = [
    "invite", "create", "--role", "clerk", "--region", "220104",
    "--unit-name", UNIT_NAME, "--unit-code", USCC, "--unit-type", "enterprise",
]  # fmt: skip
CREATED = re.compile(
    r"邀请码 (?P<code>[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4})"
    r"（(?P<detail>[^（）]+)，有效至 (?P<expires>\d{4}-\d\d-\d\d \d\d:\d\d)）"
)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite file for `main`, the test key, and no stray settings or .env."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "admin.db"
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def created(out: str) -> re.Match[str]:
    lines = out.splitlines()
    assert len(lines) == 1, out
    match = CREATED.fullmatch(lines[0])
    assert match is not None, out
    return match


def test_invite_create_prints_the_code_once_and_it_binds(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dt.datetime.now(SHANGHAI)
    code, out, err = run(capsys, *CLERK)
    assert (code, err) == (0, "")
    match = created(out)
    assert match["detail"] == f"clerk，长春市朝阳区，{UNIT_NAME}"
    expires = dt.datetime.strptime(match["expires"], "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    week = before.replace(second=0, microsecond=0) + dt.timedelta(days=7)
    assert week <= expires <= week + dt.timedelta(minutes=1)

    with Store(f"sqlite:///{db}", sealer=TEST_SEALER) as store:
        with store.conversation(ConversationKey("wecom", "zhang")) as tx:
            user = tx.user_id
        with store.transaction() as conn:
            actor = bind(conn, user, match["code"].lower(), now=dt.datetime.now(dt.UTC))
    assert (actor.role, actor.region, actor.level) == (Role.CLERK, "220104", None)
    assert actor.unit_id is not None

    code, listed, _ = run(capsys, "invite", "list")
    assert code == 0
    assert match["code"] not in listed
    assert match["code"].replace("-", "") not in listed
    [row] = table(listed, INVITE_HEADINGS)
    assert row[:5] == [f"{match['code'][:4]}-****", "clerk", "长春市朝阳区", UNIT_NAME, "used"]
    assert row[6][:10] == dt.datetime.now(SHANGHAI).date().isoformat()
    # Who used it: the member number and the chat identity, masked (a WeCom userid is often
    # the person's name); the binding is still theirs.
    assert row[7] == f"编号{user} wecom:z***g（绑定中）"
    assert "zhang" not in listed


@pytest.mark.parametrize(
    ("region", "level", "name"),
    [
        ("220581", "city", "梅河口市"),
        ("229900", "city", "长白山管委会"),
        ("220000", "province", "吉林省"),
        ("220102", "county", "长春市南关区"),
    ],
)
def test_invite_create_for_an_official(
    db: Path, capsys: pytest.CaptureFixture[str], region: str, level: str, name: str
) -> None:
    args = ["--role", "official", "--region", region, "--level", level, "--days", "14"]
    code, out, err = run(capsys, "invite", "create", *args)
    assert (code, err) == (0, "")
    match = created(out)
    assert match["detail"] == f"official，{name}，{level}"
    expires = dt.datetime.strptime(match["expires"], "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    assert dt.timedelta(days=13, hours=23) < expires - dt.datetime.now(SHANGHAI)


def test_invite_list_and_revoke_by_hint_or_code(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = created(run(capsys, *CLERK)[1])["code"]
    official = ["invite", "create", "--role", "official", "--region", "220100"]
    second = created(run(capsys, *official, "--level", "city")[1])["code"]
    third = created(run(capsys, *official, "--level", "city")[1])["code"]

    code, out, err = run(capsys, "invite", "revoke", first[:4].lower())
    assert (code, err) == (0, "")
    assert out == f"已作废 {first[:4]}-****（clerk，长春市朝阳区，{UNIT_NAME}）\n"
    code, out, _ = run(capsys, "invite", "revoke", second)
    assert (code, out) == (0, f"已作废 {second[:4]}-****（official，长春市，city）\n")

    code, out, _ = run(capsys, "invite", "list")
    assert code == 0
    rows = table(out, INVITE_HEADINGS)
    assert [r[:5] for r in rows] == [
        [f"{first[:4]}-****", "clerk", "长春市朝阳区", UNIT_NAME, "revoked"],
        [f"{second[:4]}-****", "official", "长春市", "city", "revoked"],
        [f"{third[:4]}-****", "official", "长春市", "city", "active"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r[5]) for r in rows)
    assert [r[6] != "-" for r in rows] == [True, True, False]  # when revoked
    assert [r[7] for r in rows] == ["-", "-", "-"]  # nobody used them


def test_invite_list_names_who_used_each_code_and_what_became_of_the_binding(
    any_db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real bind path (a console user sends /bind) on both databases: the first code's
    binding replaced by a second one, the second still held; a Telegram user's id masked."""
    official = ["invite", "create", "--role", "official", "--region", "220100"]
    first = created(run(capsys, *CLERK)[1])["code"]
    second = created(run(capsys, *official, "--level", "city")[1])["code"]
    third = created(run(capsys, *official, "--level", "city")[1])["code"]
    ann = ConsoleHarness(any_db, user="ann")
    ann.open()
    assert "绑定成功" in ann.send(f"/bind {first}")
    assert "绑定成功" in ann.send(f"/bind {second}")
    with any_db.conversation(ConversationKey("telegram", "123456789")) as tx:
        telegram_user = tx.user_id
    with any_db.transaction() as conn:
        bind(conn, telegram_user, third, now=dt.datetime.now(dt.UTC))
    with any_db.reading() as conn:
        ann_id = conn.execute(
            sa.select(users.c.id).where(users.c.external_id == "ann")
        ).scalar_one()

    code, out, err = run(capsys, "invite", "list")
    assert (code, err) == (0, "")
    rows = table(out, INVITE_HEADINGS)
    assert [r[4] for r in rows] == ["used", "used", "used"]
    assert [r[7] for r in rows] == [
        f"编号{ann_id} console:ann（已被新邀请码替换）",
        f"编号{ann_id} console:ann（绑定中）",
        f"编号{telegram_user} telegram:12*****89（绑定中）",
    ]
    assert "123456789" not in out


def test_invite_list_of_nothing_prints_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "invite", "list") == (0, "", "")


def test_quota_set_updates_and_lists(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["quota", "set", "--campaign", "jl-employment-2022"]
    code, out, err = run(
        capsys, *base, "--category", "employment_collective", "--region", "220100", "--places", "8"
    )
    assert (code, err) == (0, "")
    assert out == "名额 jl-employment-2022 employment_collective 长春市（220100）：8\n"
    run(capsys, *base, "--category", "migrant_collective", "--region", "220581", "--places", "3")
    run(
        capsys, *base, "--category", "employment_collective", "--region", "220100", "--places", "9"
    )

    code, out, _ = run(capsys, "quota", "list", "--campaign", "jl-employment-2022")
    assert code == 0
    assert table(out, QUOTA_HEADINGS) == [
        ["employment_collective", "220100", "长春市", "9", "0", "14-18", "不足"],
        ["migrant_collective", "220581", "梅河口市", "3", "0", "5-6", "不足"],
    ]
    code, out, _ = run(
        capsys, "quota", "list", "--campaign", "jl-employment-2022",
        "--category", "migrant_collective",
    )  # fmt: skip
    assert code == 0
    assert table(out, QUOTA_HEADINGS) == [
        ["migrant_collective", "220581", "梅河口市", "3", "0", "5-6", "不足"]
    ]
    assert run(capsys, "quota", "list", "--campaign", "jl-skills-2022") == (0, "", "")


def test_quota_set_may_give_a_region_every_place_of_a_category_not_more(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 吉林省农民工工作先进集体: 35 places (附件3's total for the category).
    args = [*QUOTA, "--region", "220100", "--places"]
    assert run(capsys, *args, "35")[0] == 0
    code, out, err = run(capsys, *args, "36")
    assert (code, out) == (2, "")
    assert err == (
        "awardbot: --places: 36 超过「吉林省农民工工作先进集体」的评选总数 35 名 "
        "(places 36 exceed the category's total of 35)\n"
    )
    code, out, _ = run(capsys, "quota", "list", "--campaign", "jl-employment-2022")
    assert table(out, QUOTA_HEADINGS)[0][3] == "35"  # the refused value was not stored


@pytest.fixture
def any_db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """As `db`, over SQLite and PostgreSQL, with the same database open as a Store."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", store_url)
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    with Store(store_url, sealer=TEST_SEALER) as store:
        yield store


def test_quota_list_counts_what_each_region_put_forward_against_the_band(
    any_db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """四、（五）申报数量按省厅分配名额的150%-200%执行: a quota of 2 asks for 3 to 4 nominations.

    A nomination counts against the most specific region with a quota that contains its own
    (朝阳区's against 长春市's), and only when it uses a place: drafts, withdrawn and rejected
    nominations do not."""
    clerk(any_db)  # 朝阳区 (220104)
    clerk(any_db, "mhk", region="220581")
    clerk(any_db, "prov", region="220000")
    base = ["quota", "set", "--campaign", EMPLOYMENT, "--category", "employment_collective"]
    assert run(capsys, *base, "--region", "220100", "--places", "2")[0] == 0
    assert run(capsys, *base, "--region", "220581", "--places", "1")[0] == 0
    run(capsys, *QUOTA, "--region", "220581", "--places", "2")

    def nominate(region: str, status: str, category: str = "employment_collective") -> None:
        place(
            any_db, campaign=EMPLOYMENT, category=category, status=status, kind="collective",
            region=region, fields={"unit_name": f"单位{region}{status}"}, materials=False,
        )  # fmt: skip

    for status in ("county_review", "city_review", "awarded", "draft", "withdrawn", "rejected"):
        nominate("220104", status)  # 3 use a place
    for status in ("city_review", "provincial_review", "provincial_review"):
        nominate("220581", status)  # 3 against a band of 2-2
    nominate("220000", "provincial_review")  # 省直: no quota of its own
    nominate("220581", "city_review", "migrant_collective")  # 1 against 3-4

    code, out, err = run(capsys, "quota", "list", "--campaign", EMPLOYMENT)
    assert (code, err) == (0, "")
    assert table(out, QUOTA_HEADINGS) == [
        ["employment_collective", "220100", "长春市", "2", "3", "3-4", "符合"],
        ["employment_collective", "220581", "梅河口市", "1", "3", "2-2", "超出"],
        ["migrant_collective", "220581", "梅河口市", "2", "1", "3-4", "不足"],
        ["employment_collective", "220000", "吉林省", "-", "1", "-", "未分配名额"],
    ]
    # A quota for 朝阳区 itself takes its nominations from 长春市's.
    assert run(capsys, *base, "--region", "220104", "--places", "2")[0] == 0
    code, out, _ = run(
        capsys, "quota", "list", "--campaign", EMPLOYMENT, "--category", "employment_collective"
    )
    assert [row[:5] for row in table(out, QUOTA_HEADINGS)] == [
        ["employment_collective", "220100", "长春市", "2", "0"],
        ["employment_collective", "220104", "长春市朝阳区", "2", "3"],
        ["employment_collective", "220581", "梅河口市", "1", "3"],
        ["employment_collective", "220000", "吉林省", "-", "1"],
    ]


OFFICIAL = ["invite", "create", "--role", "official"]
QUOTA = ["quota", "set", "--campaign", "jl-employment-2022", "--category", "migrant_collective"]
BAD = [
    ([*CLERK[:5], "999999", *CLERK[6:]], "unknown region code '999999'"),
    ([*CLERK[:5], "2201", *CLERK[6:]], "unknown region code '2201'"),
    ([*CLERK[:8], "--unit-code", "91220104MA14ABCD3L"], "校验位"),
    ([*CLERK[:8], "--unit-code", "9122"], "18 位"),
    (CLERK[:8], "--role clerk needs --unit-name and --unit-code"),
    ([*CLERK, "--level", "county"], "--level is for --role official only"),
    ([*OFFICIAL, "--region", "220581", "--level", "county"], "220581 reviews at city, not county"),
    ([*OFFICIAL, "--region", "220100", "--level", "county"], "220100 reviews at city, not county"),
    ([*OFFICIAL, "--region", "220100"], "--role official needs --level"),
    ([*OFFICIAL, "--region", "220100", "--level", "city", "--unit-code", USCC], "clerk only"),
    ([*OFFICIAL, "--region", "220100", "--level", "town"], "argument --level: invalid choice"),
    ([*OFFICIAL, "--region", "220100", "--level", "city", "--days", "0"], "--days: give 1 to"),
    ([*OFFICIAL, "--region", "220100", "--level", "city", "--days", "x"], "invalid int value"),
    (["invite", "create", "--role", "admin", "--region", "220100"], "invalid choice: 'admin'"),
    (["invite", "create", "--role", "clerk"], "required: --region"),
    (["invite"], "required: {create,list,revoke}"),
    (["invite", "revoke", "ZZZZ"], "no such invite"),
    (["invite", "revoke", "ZZZZ-2345"], "no such invite"),
    (["invite", "revoke", "x"], "first 4 characters"),
    ([*QUOTA, "--region", "220100", "--places", "-1"], "--places: must be 0 or more, got -1"),
    ([*QUOTA, "--region", "220100", "--places", "many"], "invalid int value: 'many'"),
    ([*QUOTA, "--region", "999999", "--places", "1"], "unknown region code '999999'"),
    (
        ["quota", "set", "--campaign", "nope", "--category", "x", "--region", "220100",
         "--places", "1"],
        "unknown campaign 'nope' (known: jl-employment-2022, jl-skills-2022)",
    ),
    (
        ["quota", "set", "--campaign", "jl-skills-2022", "--category", "migrant_collective",
         "--region", "220100", "--places", "1"],
        "unknown category 'migrant_collective' of jl-skills-2022",
    ),
    (["quota", "list", "--campaign", "nope"], "unknown campaign 'nope'"),
    (["quota", "list"], "required: --campaign"),
    ([*QUOTA, "--region", "220100", "--places", "36"], "exceed the category's total of 35"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("awardbot: ")
    assert message in err
    assert "Traceback" not in err


def test_a_known_unit_code_under_another_name_names_both(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, *CLERK)[0] == 0
    code, out, err = run(capsys, *CLERK[:7], "另一家公司", *CLERK[8:])
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert UNIT_NAME in err
    assert "另一家公司" in err


def test_revoking_a_used_invite_is_refused(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    invite = created(run(capsys, *CLERK)[1])["code"]
    with Store(f"sqlite:///{db}", sealer=TEST_SEALER) as store:
        with store.conversation(ConversationKey("wecom", "li")) as tx:
            user = tx.user_id
        with store.transaction() as conn:
            assert bind(conn, user, invite, now=dt.datetime.now(dt.UTC)) == Actor(
                Role.CLERK, "220104", None, 1
            )
    code, out, err = run(capsys, "invite", "revoke", invite)
    assert (code, out) == (2, "")
    assert "already used" in err
    assert err.count("\n") == 1


def test_a_broken_regions_file_is_one_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "regions.yaml").write_text("regions: [{code: 12}]\n", encoding="utf-8")
    monkeypatch.setenv("AWARDBOT_CAMPAIGNS_DIR", str(campaigns))
    code, out, err = run(capsys, *CLERK)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"{campaigns / 'regions.yaml'}: regions[0].code" in err


def test_as_a_process(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "p.db")
    done = run_awardbot(CLERK, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert created(done.stdout)["detail"] == f"clerk，长春市朝阳区，{UNIT_NAME}"
    done = run_awardbot(["invite", "revoke", "ZZZZ"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("awardbot: ")
    assert "Traceback" not in done.stderr
