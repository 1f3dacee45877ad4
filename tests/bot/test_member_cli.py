"""`awardbot member list|remove` (issue 11, users and their roles), on SQLite and PostgreSQL.

People are bound the way the bot binds them: an invitation sent as /bind in the console
(tests/support/review_rig.py), or `storage.invites.bind` for a Telegram identity; then
`bot.cli.main` runs the commands in process, as tests/bot/test_admin_cli.py does.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.columns import table
from support.console_harness import CAMPAIGNS, catalog, regions
from support.keys import TEST_KEY, TEST_SEALER
from support.process import awardbot_env, run_awardbot
from support.review_rig import UNIT, bound, clerk, official
from support.timeline import local

from bot.admin import INVITE_HEADINGS
from bot.cli import main
from bot.members_cli import LIST_HEADINGS
from bot.wiring import CalendarWorkdays
from conversations.identity import Level, Role
from conversations.keys import ConversationKey
from notifications.calendar import WorkdayCalendar
from storage import invites, outbox
from storage import nominations as noms
from storage.members import CANCELLED, REMOVE_ACTION
from storage.planning import Planning
from storage.reminders import UNBOUND, hand_off_due
from storage.store import Store
from storage.tables import memberships, reminder_prefs, reminders, users
from storage.tables import outbox as outbox_table

BOUND_AT = local(2022, 10, 20, 9, 0)  # before the skills campaign's window (11-03/04)
TELEGRAM_ID = "123456789"


@pytest.fixture
def db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A database `main` uses (SQLite or PostgreSQL), open as a Store for setting up."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", store_url)
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    with Store(store_url, sealer=TEST_SEALER) as store:
        yield store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def user_id(store: Store, channel: str, external: str) -> int:
    with store.reading() as conn:
        return int(
            conn.execute(
                sa.select(users.c.id).where(
                    users.c.channel == channel, users.c.external_id == external
                )
            ).scalar_one()
        )


def telegram_official(store: Store) -> int:
    """A Telegram identity bound as 长春市's official (its id is personal: shown masked)."""
    with store.conversation(ConversationKey("telegram", TELEGRAM_ID)) as tx:
        user = tx.user_id
    with store.transaction() as conn:
        code = invites.create_invite(
            conn, role=Role.OFFICIAL, region=regions().get("220100"), level=Level.CITY,
            now=BOUND_AT, ttl=dt.timedelta(days=30),
        ).code  # fmt: skip
        invites.bind(conn, user, code, now=BOUND_AT + dt.timedelta(hours=1))
    return user


def people(store: Store) -> dict[str, int]:
    """A clerk of 朝阳区, its county official, 长春市's official on Telegram, 梅河口市's clerk,
    and an applicant who never bound."""
    clerk(store, clock=lambda: BOUND_AT)
    official(store, "county", "220104", Level.COUNTY, clock=lambda: BOUND_AT)
    city = telegram_official(store)
    clerk(store, "mhk", region="220581", clock=lambda: BOUND_AT)
    with store.conversation(ConversationKey("console", "ann")):
        pass
    return {
        "clerk": user_id(store, "console", "clerk"),
        "county": user_id(store, "console", "county"),
        "city": city,
        "mhk": user_id(store, "console", "mhk"),
    }


# ----- member list ------------------------------------------------------------------------------


def test_member_list_shows_each_binding_with_its_channel_and_since_when(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = people(db)
    code, out, err = run(capsys, "member", "list")
    assert (code, err) == (0, "# 4 名 (members)\n")
    rows = table(out, LIST_HEADINGS)
    # By region code, then role: 长春市 (220100), 朝阳区 (220104) clerk then official, 梅河口市.
    assert [r[:6] for r in rows] == [
        [str(ids["city"]), "telegram", "12*****89", "official", "长春市", "city"],
        [str(ids["clerk"]), "console", "clerk", "clerk", "长春市朝阳区", UNIT.name],
        [str(ids["county"]), "console", "county", "official", "长春市朝阳区", "county"],
        [str(ids["mhk"]), "console", "mhk", "clerk", "梅河口市", "单位220581"],
    ]
    assert [r[6] for r in rows] == ["2022-10-20 10:00"] + ["2022-10-20 09:00"] * 3
    assert all(len(r[7]) == 9 and r[7].endswith("-****") for r in rows)  # the invitation's hint
    assert TELEGRAM_ID not in out
    assert "ann" not in out  # an applicant has no binding


FILTERS = [
    (["--region", "220100"], ["city", "clerk", "county"]),  # 长春市 and the regions in it
    (["--region", "220104"], ["clerk", "county"]),
    (["--region", "220500"], []),  # 通化市 does not contain 梅河口市 (reports to the province)
    (["--region", "220000"], ["city", "clerk", "county", "mhk"]),
    (["--unit", UNIT.uscc], ["clerk"]),
    (["--unit", UNIT.uscc.lower()], ["clerk"]),
    (["--unit", "示例有限"], ["clerk"]),
    (["--unit", "单位"], ["mhk"]),
    (["--role", "official"], ["city", "county"]),
    (["--role", "clerk", "--region", "220104"], ["clerk"]),
]


def test_member_list_filters(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ids = people(db)
    for args, who in FILTERS:
        code, out, err = run(capsys, "member", "list", *args)
        assert (code, err) == (0, f"# {len(who)} 名 (members)\n"), args
        rows = table(out, LIST_HEADINGS) if out else []
        assert [r[0] for r in rows] == [str(ids[w]) for w in who], args


def test_member_list_by_unit_number(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ids = people(db)
    with db.reading() as conn:
        unit = conn.execute(
            sa.select(memberships.c.unit_id).where(memberships.c.user_id == ids["mhk"])
        ).scalar_one()
    code, out, _ = run(capsys, "member", "list", "--unit", str(unit))
    assert code == 0
    assert [r[0] for r in table(out, LIST_HEADINGS)] == [str(ids["mhk"])]


# ----- member remove ----------------------------------------------------------------------------


def pending_for(store: Store, user: int) -> list[str]:
    with store.reading() as conn:
        return list(
            conn.execute(
                sa.select(reminders.c.key).where(
                    reminders.c.user_id == user, reminders.c.status == "pending"
                )
            ).scalars()
        )


def outbox_rows(store: Store, recipient: str) -> list[tuple[str, str, str | None]]:
    with store.reading() as conn:
        return [
            (r.kind, r.status, r.last_error)
            for r in conn.execute(
                sa.select(outbox_table)
                .where(outbox_table.c.recipient_id == recipient)
                .order_by(outbox_table.c.id)
            )
        ]


def test_member_remove_unbinds_cancels_what_waits_and_audits_it(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = people(db)
    clerk_id = ids["clerk"]
    planned = pending_for(db, clerk_id)
    assert len(planned) == 5  # the skills window: 7, 3, 1 days before and each of its 2 days
    with db.transaction() as conn:
        outbox.enqueue(
            conn, db.sealer,
            [
                outbox.OutboxMessage("n1", "console", "clerk", "推荐状态有变化", kind="deadline"),
                outbox.OutboxMessage("n2", "console", "clerk", "已退回修改"),
                outbox.OutboxMessage("r1", "console", "clerk", "[]", kind="reply"),
                outbox.OutboxMessage("c1", "console", "county", "待审核"),
            ],
            now=BOUND_AT,
        )  # fmt: skip
        # The clerk had said /subscribe for the window reminders: their settings go with the
        # binding (else the next re-plan would plan them again for the applicant they are now).
        conn.execute(
            sa.insert(reminder_prefs).values(
                user_id=clerk_id, campaign="*", kind="window", enabled=True, updated_at=BOUND_AT
            )
        )

    code, out, err = run(
        capsys, "member", "remove", "--id", str(clerk_id), "--reason", "调离经办岗位",
        "--by", "省人社厅 王五",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == (
        f"已解除 编号{clerk_id} console:clerk 的绑定（clerk，长春市朝阳区，{UNIT.name}）；"
        "已取消待发通知 2 条、提醒 5 条\n"
    )
    with db.reading() as conn:
        assert invites.actor_of(conn, clerk_id) is None  # an applicant now
        assert (
            conn.execute(
                sa.select(reminder_prefs).where(reminder_prefs.c.user_id == clerk_id)
            ).all()
            == []
        )
        [audit] = [a for a in noms.audit_trail(conn, db.sealer) if a.action == REMOVE_ACTION]
    # The notices are kept, cancelled where an operator sees them; the step's reply still goes;
    # another user's notice is untouched.
    assert outbox_rows(db, "clerk") == [
        ("deadline", "failed", CANCELLED),
        ("notice", "failed", CANCELLED),
        ("reply", "pending", None),
    ]
    assert outbox_rows(db, "county") == [("notice", "pending", None)]
    assert pending_for(db, clerk_id) == []
    with db.reading() as conn:
        reasons = set(
            conn.execute(
                sa.select(reminders.c.reason).where(reminders.c.key.in_(planned))
            ).scalars()
        )
    assert reasons == {UNBOUND}
    assert (audit.user_id, audit.role, audit.allowed) == (None, "admin", True)
    assert audit.detail is not None
    assert audit.detail["subject"] == clerk_id
    assert audit.detail["reason"] == "调离经办岗位"
    assert audit.detail["operator"] == "省人社厅 王五"
    assert audit.detail["binding"]["unit"] == UNIT.name
    assert audit.detail["cancelled"] == {"notices": 2, "reminders": 5, "in_flight": 0}

    # Not sent later: neither the ticker on the window's first reminder day nor a re-plan of
    # every campaign (the bot's start) brings them back.
    planning = Planning(catalog(), regions(), CalendarWorkdays(WorkdayCalendar(
        CAMPAIGNS / "calendar.yaml")))  # fmt: skip
    with db.transaction() as conn:
        planning.replan_all(conn, db.sealer, now=BOUND_AT)
    assert pending_for(db, clerk_id) == []
    handed = hand_off_due(db, now=local(2022, 11, 3, 8, 30), digest=lambda *_: None)
    assert handed.sent == 1  # 梅河口市's clerk's reminder of the day: not ours
    assert [row[0] for row in outbox_rows(db, "clerk")] == ["deadline", "notice", "reply"]

    # invite list says the binding was removed; member list no longer has it.
    code, listed, _ = run(capsys, "invite", "list")
    assert f"编号{clerk_id} console:clerk（已解除）" in [
        r[7] for r in table(listed, INVITE_HEADINGS)
    ]
    code, out, _ = run(capsys, "member", "list")
    assert str(clerk_id) not in [r[0] for r in table(out, LIST_HEADINGS)]

    # A new binding plans the reminders again.
    bound(
        db, "clerk", role=Role.CLERK, region=regions().get("220104"), unit=UNIT,
        clock=lambda: BOUND_AT,
    )  # fmt: skip
    assert sorted(pending_for(db, clerk_id)) == sorted(planned)


def test_member_remove_by_user_and_by_a_telegram_id(
    db: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = people(db)
    monkeypatch.setenv("USER", "ops")
    code, out, err = run(capsys, "member", "remove", "--user", "console:county", "--reason", "x")
    assert (code, err) == (0, "")
    assert out.startswith(f"已解除 编号{ids['county']} console:county 的绑定（official，")
    code, out, err = run(capsys, "member", "remove", "--user", TELEGRAM_ID, "--reason", "离职")
    assert (code, err) == (0, "")
    assert out.startswith(
        f"已解除 编号{ids['city']} telegram:12*****89 的绑定（official，长春市，"
    )
    assert TELEGRAM_ID not in out
    with db.reading() as conn:
        operators = [
            a.detail["operator"]
            for a in noms.audit_trail(conn, db.sealer)
            if a.action == REMOVE_ACTION and a.detail is not None
        ]
    assert len(operators) == 2
    assert all(operators)  # the OS user, without --by


def test_member_remove_of_someone_unbound_or_twice_is_refused(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = people(db)
    assert run(capsys, "member", "remove", "--id", str(ids["mhk"]), "--reason", "x")[0] == 0
    for who in (["--id", str(ids["mhk"])], ["--user", "console:ann"]):
        code, out, err = run(capsys, "member", "remove", *who, "--reason", "x")
        assert (code, out) == (2, "")
        assert "has no binding" in err
        assert err.count("\n") == 1
    with db.reading() as conn:
        removals = [a for a in noms.audit_trail(conn, db.sealer) if a.action == REMOVE_ACTION]
    assert len(removals) == 1  # a refused removal writes nothing


BAD = [
    (["member"], "required: {list,remove}"),
    (["member", "list", "--region", "999999"], "unknown region code '999999'"),
    (["member", "list", "--unit", "没有这家"], "--unit: 没有单位"),
    (["member", "list", "--unit", "  "], "--unit: 没有单位"),
    (["member", "list", "--unit", "99999999999999"], "--unit: 没有单位"),
    (["member", "list", "--role", "admin"], "invalid choice: 'admin'"),
    (["member", "remove", "--id", "1"], "required: --reason"),
    (["member", "remove", "--reason", "x"], "one of the arguments --id --user is required"),
    (["member", "remove", "--id", "1", "--user", "console:clerk", "--reason", "x"], "not allowed"),
    (["member", "remove", "--id", "x", "--reason", "x"], "invalid int value: 'x'"),
    (["member", "remove", "--id", "9999", "--reason", "x"], "no user number 9999"),
    (["member", "remove", "--id", "99999999999", "--reason", "x"], "no user number"),
    (["member", "remove", "--user", "console:nobody", "--reason", "x"], "nobody 'console:nobody'"),
    (["member", "remove", "--user", "clerk", "--reason", "x"], "known on 2 channels"),
    (["member", "remove", "--user", "console:clerk", "--reason", "  "], "--reason: 请写明原因"),
    (["member", "remove", "--user", "console:clerk", "--reason", "长" * 201], "1 to 200"),
    (["member", "remove", "--user", "console:clerk", "--reason", "x", "--by", " "], "--by"),
]  # fmt: skip


def test_bad_input_is_one_line_and_exit_2(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    people(db)
    with db.conversation(ConversationKey("wecom", "clerk")):
        pass  # `clerk` on two channels: a bare ID is ambiguous
    for args, message in BAD:
        code, out, err = run(capsys, *args)
        assert (code, out) == (2, ""), args
        assert err.count("\n") == 1, err
        assert err.startswith("awardbot: "), err
        assert message in err, err
        assert "Traceback" not in err
    assert run(capsys, "member", "list")[2] == "# 4 名 (members)\n"  # nothing was removed


def test_as_a_process(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "p.db")
    with Store(env["AWARDBOT_DATABASE_URL"], sealer=TEST_SEALER) as store:
        telegram_official(store)
    done = run_awardbot(["member", "list"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert table(done.stdout, LIST_HEADINGS)[0][1:5] == [
        "telegram",
        "12*****89",
        "official",
        "长春市",
    ]
    done = run_awardbot(["member", "remove", "--id", "77", "--reason", "x"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
