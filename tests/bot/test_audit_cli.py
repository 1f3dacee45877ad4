"""`awardbot audit --nomination CODE | --user … | --id N` (issue 11): the audit trail for an
official's question — who saw this ID number — on SQLite and PostgreSQL.

What is audited is made the way the bot makes it: a county official opens a nomination in the
console (a read of the full ID number) and passes it on (a move), is bound again as the city's
official and opens it again, an applicant tries /queue (refused); an admin removes a binding
with `awardbot member remove`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.cli import cli_store, run
from support.columns import table
from support.console_harness import ConsoleHarness, catalog, regions
from support.filing import choose
from support.keys import TEST_SEALER
from support.process import awardbot_env, run_awardbot
from support.review_rig import bound, clerk, official, place
from support.timeline import local

from bot.audit_cli import HEADINGS
from conversations.identity import Level, Role
from storage.store import Store
from storage.tables import nominations, users

T1 = local(2022, 10, 21, 10, 0)  # the county official reads and passes it on
T2 = local(2022, 10, 24, 15, 0)  # the same person, now 长春市's official, reads it again
ID_NUMBER = "220104199003070028"
SKILLS = "jl-skills-2022"


@pytest.fixture
def db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    yield from cli_store(store_url, tmp_path, monkeypatch)


def label(status: str) -> str:
    lifecycle = catalog().get(SKILLS).lifecycle
    assert lifecycle is not None
    return lifecycle.status(status).label


def move_label(transition: str) -> str:
    lifecycle = catalog().get(SKILLS).lifecycle
    assert lifecycle is not None
    return next(t.label for t in lifecycle.transitions if t.id == transition)


def history(store: Store) -> tuple[str, int]:
    """The nomination's tracking code and the official's member number, after: a read and a
    move as 朝阳区's county official (T1), a read as 长春市's city official (T2)."""
    clerk(store)
    nomination = place(
        store, status="county_review",
        fields={"name": "张小三", "id_number": ID_NUMBER, "mobile": "13912345678"},
    )  # fmt: skip
    county = official(store, "wang", "220104", Level.COUNTY, clock=lambda: T1)
    county.send("/queue")
    assert ID_NUMBER in county.send("1")  # in full, for an official: audited
    choose(county, "move:county_approve")
    city = bound(
        store, "wang", clock=lambda: T2, role=Role.OFFICIAL, region=regions().get("220100"),
        level=Level.CITY,
    )  # fmt: skip
    city.send("/queue")
    assert ID_NUMBER in city.send("1")
    with store.reading() as conn:
        code = conn.execute(
            sa.select(nominations.c.tracking_code).where(nominations.c.id == nomination)
        ).scalar_one()
        wang = conn.execute(
            sa.select(users.c.id).where(users.c.external_id == "wang")
        ).scalar_one()
    return str(code), int(wang)


def test_audit_of_a_nomination_says_who_saw_and_moved_it_as_what(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, wang = history(db)
    status, out, err = run(capsys, "audit", "--nomination", code.lower())
    assert (status, err) == (0, "# 3 条记录 (audit rows)\n")
    who = f"编号{wang} console:wang"
    # The role, unit or level and region each row's actor held at the time: the county office
    # before the new binding, the city office after.
    assert table(out, HEADINGS) == [
        ["2022-10-21 10:00", who, "official", "county", "长春市朝阳区",
         "查看完整个人信息（身份证号、手机号）", "允许", code, "-"],
        ["2022-10-21 10:00", who, "official", "county", "长春市朝阳区",
         move_label("county_approve"), "允许", code,
         f"{label('county_review')}→{label('city_review')}"],
        ["2022-10-24 15:00", who, "official", "city", "长春市",
         "查看完整个人信息（身份证号、手机号）", "允许", code, "-"],
    ]  # fmt: skip

    # "Who saw this ID number": the reads only.
    status, out, err = run(capsys, "audit", "--nomination", code, "--action", "read_personal_data")
    assert (status, err) == (0, "# 2 条记录 (audit rows)\n")
    assert [(r[0], r[4]) for r in table(out, HEADINGS)] == [
        ("2022-10-21 10:00", "长春市朝阳区"),
        ("2022-10-24 15:00", "长春市"),
    ]
    assert ID_NUMBER not in out


def test_audit_of_a_user_lists_what_they_did_and_the_removal_of_their_binding(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, wang = history(db)
    ann = ConsoleHarness(db, user="ann")
    ann.open()
    ann.send("/queue")  # an applicant: refused, and audited
    status, out, err = run(
        capsys, "member", "remove", "--id", str(wang), "--reason", "调离  审核岗位",
        "--by", "省人社厅",
    )  # fmt: skip
    assert (status, err) == (0, "")

    status, out, err = run(capsys, "audit", "--id", str(wang))
    assert (status, err) == (0, "# 4 条记录 (audit rows)\n")
    rows = table(out, HEADINGS)
    assert [r[5] for r in rows[:3]] == [
        "查看完整个人信息（身份证号、手机号）", move_label("county_approve"),
        "查看完整个人信息（身份证号、手机号）",
    ]  # fmt: skip
    removal = rows[3]
    assert removal[1:8] == ["命令行 省人社厅", "admin", "-", "-", "解除绑定", "允许", "-"]
    assert re.fullmatch(
        f"解除 编号{wang} console:wang 的绑定（official，长春市，city）；"
        r"取消通知 0 条、提醒 \d+ 条；原因：调离 审核岗位",  # digests and alerts planned
        removal[8],
    ), removal[8]
    # The same by chat identity; someone else's trail has neither.
    assert run(capsys, "audit", "--user", "console:wang")[1] == out
    status, out, err = run(capsys, "audit", "--user", "ann")
    assert (status, err) == (0, "# 1 条记录 (audit rows)\n")
    [refused] = table(out, HEADINGS)
    ann_id = refused[1].removeprefix("编号").split()[0]
    assert refused[1:] == [
        f"编号{ann_id} console:ann", "applicant", "-", "-", "查看待审列表", "拒绝", "-",
        "拒绝原因：not an official",
    ]  # fmt: skip


def test_audit_of_nothing_yet(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    clerk(db)
    place(db, status="county_review", fields={"name": "张小三"})
    with db.reading() as conn:
        code = conn.execute(sa.select(nominations.c.tracking_code)).scalar_one()
    assert run(capsys, "audit", "--nomination", code) == (0, "", "# 0 条记录 (audit rows)\n")


BAD = [
    (["audit"], "one of the arguments --nomination --user --id is required"),
    (["audit", "--nomination", "X", "--id", "1"], "not allowed with argument"),
    (["audit", "--nomination", "ZZZZZZZZZZ"], "no nomination 'ZZZZZZZZZZ'"),
    (["audit", "--nomination", "99999999999"], "no nomination"),
    (["audit", "--id", "9999"], "no user number 9999"),
    (["audit", "--id", "-1"], "no user number -1"),
    (["audit", "--id", "one"], "invalid int value: 'one'"),
    (["audit", "--user", "wechat:nobody"], "nobody 'wechat:nobody'"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    db: Store, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("awardbot: ")
    assert message in err
    assert "Traceback" not in err


def test_as_a_process(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "p.db")
    with Store(env["AWARDBOT_DATABASE_URL"], sealer=TEST_SEALER) as store:
        code, _ = history(store)
    done = run_awardbot(["audit", "--nomination", code], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert len(table(done.stdout, HEADINGS)) == 3
    done = run_awardbot(["audit", "--nomination", "nope"], cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
