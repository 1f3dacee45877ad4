"""`awardbot reminders plan|run-due|list` and `awardbot campaign window set|list` (issue 10, CLI).

The state is made the way the bot makes it: a clerk binds with an invitation and an applicant
sends `/subscribe 2` in the console (tests/support/review_rig.py, the console harness over the
same SQLite file); then `bot.cli.main` runs the commands in process with the environment set, as
tests/bot/test_admin_cli.py does. The last test walks the README's demo as real processes.

Seed 001's skills campaign delivers its materials only on 2022-11-03/04 (strict): window
reminders 7, 3 and 1 days before and on each day, at 08:30.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import CAMPAIGNS, ConsoleHarness, catalog
from support.keys import TEST_KEY, TEST_SEALER
from support.process import awardbot_env, run_awardbot
from support.review_rig import clerk, official
from support.timeline import local

from bot.cli import main
from conversations.identity import Level
from conversations.keys import ConversationKey
from conversations.lifecycle import opinion_departments, opinion_facts
from storage import nominations as noms
from storage import outbox
from storage import reminders as rows
from storage.store import Store
from storage.tables import memberships, units
from storage.tables import outbox as outbox_table
from storage.tables import reminders as reminders_table

SKILLS = "jl-skills-2022"
BOUND_AT = local(2022, 10, 20, 9, 0)
WINDOW_DAYS = ["2022-10-27", "2022-10-31", "2022-11-02", "2022-11-03", "2022-11-04"]
WINDOW_TITLES = [
    "报送推荐材料7天后开始",
    "报送推荐材料3天后开始",
    "报送推荐材料1天后开始",
    "报送推荐材料今天开始",
    "报送推荐材料今天截止",
]
PLAN_LINE = re.compile(
    r"(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d)  (?P<who>\w+:\w+)  (?P<kind>\S+)  "
    r"【(?P<title>[^】]+)】(?P<body>.+)"
)
LIST_LINE = re.compile(
    r"(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d)  (?P<status>\w+) +(?P<who>\w+:\w+)  (?P<kind>\S+)  "
    r"【(?P<title>[^】]+)】(?:  \((?P<reason>.+)\))?"
)
HAN = re.compile(r"[\u4e00-\u9fff]")


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test key, no stray AWARDBOT_ settings, no .env of the checkout."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A SQLite file `main` uses, and the same file as a Store for setting up and reading."""
    _clean_env(monkeypatch, tmp_path)
    url = f"sqlite:///{tmp_path / 'reminders.db'}"
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", url)
    with Store(url, sealer=TEST_SEALER) as store:
        yield store


@pytest.fixture
def any_db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """As `db`, over SQLite and PostgreSQL (the ticker's lock and claims differ)."""
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", store_url)
    with Store(store_url, sealer=TEST_SEALER) as store:
        yield store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def people(store: Store, at: dt.datetime = BOUND_AT) -> None:
    """A clerk bound (clerks get window reminders by default) and an applicant, ann, who sent
    `/subscribe 2` for the skills campaign; both on the console."""
    clerk(store, clock=lambda: at)
    ann = ConsoleHarness(store, user="ann", clock=lambda: at)
    ann.open()
    assert "已开启" in ann.send("/subscribe 2")


def table(store: Store, which: sa.Table) -> list[tuple[object, ...]]:
    with store.reading() as conn:
        return [tuple(r) for r in conn.execute(sa.select(which).order_by(which.c.id))]


def plan_lines(out: str) -> list[re.Match[str]]:
    found = [PLAN_LINE.fullmatch(line) for line in out.splitlines()]
    assert all(found), out
    return [m for m in found if m is not None]


def list_lines(out: str) -> list[re.Match[str]]:
    found = [LIST_LINE.fullmatch(line) for line in out.splitlines()]
    assert all(found), out
    return [m for m in found if m is not None]


def one_line_error(code: int, out: str, err: str, option: str) -> None:
    """Exit 2, nothing on stdout, one line naming the option, Chinese before the English."""
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"awardbot: {option}: "), err
    assert "Traceback" not in err
    chinese, _, english = err.partition(" (")
    assert HAN.search(chinese), err
    assert english, err


# ----- reminders plan --------------------------------------------------------------------------


def test_plan_prints_each_reminder_with_local_time_recipient_kind_and_text(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    people(db)
    stored, queued = table(db, reminders_table), table(db, outbox_table)

    code, out, err = run(capsys, "reminders", "plan", "--campaign", SKILLS, "--from", "2022-10-12")
    assert code == 0, err
    lines = plan_lines(out)
    assert [(m["when"], m["who"]) for m in lines] == [
        (f"{day} 08:30", who) for day in WINDOW_DAYS for who in ("console:clerk", "console:ann")
    ]
    assert {m["kind"] for m in lines} == {"报送时间提醒"}
    assert [m["title"] for m in lines[::2]] == WINDOW_TITLES
    first = lines[0]["body"]
    assert "将于 2022-11-03 开始（还有 7 天），2022-11-04 截止" in first
    assert "提前或逾期报送均不予受理" in first
    assert "0431-88690627" in first
    assert err == f"# 10 条提醒 (reminders) · {SKILLS} · 自 2022-10-12 00:00 起 (from)\n"
    # Printing the plan stores nothing and sends nothing.
    assert table(db, reminders_table) == stored
    assert table(db, outbox_table) == queued


def test_plan_to_cuts_and_user_filters(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    people(db)
    base = ["reminders", "plan", "--campaign", SKILLS, "--from", "2022-10-12"]

    code, out, _ = run(capsys, *base, "--to", "2022-11-02")
    assert code == 0
    assert [m["when"][:10] for m in plan_lines(out)] == [d for d in WINDOW_DAYS[:3] for _ in "ab"]

    code, out, _ = run(capsys, *base, "--user", "console:ann")
    assert code == 0
    assert [(m["when"][:10], m["who"]) for m in plan_lines(out)] == [
        (day, "console:ann") for day in WINDOW_DAYS
    ]
    code, bare, _ = run(capsys, *base, "--user", "clerk")  # an ID without its channel
    assert code == 0
    assert {m["who"] for m in plan_lines(bare)} == {"console:clerk"}


def test_plan_from_later_leaves_out_what_is_over(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    people(db)
    code, out, _ = run(capsys, "reminders", "plan", "--campaign", SKILLS, "--from", "2022-11-03")
    assert code == 0
    assert [m["when"][:10] for m in plan_lines(out)] == [d for d in WINDOW_DAYS[3:] for _ in "ab"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--campaign", "jl-nope-2099"], "--campaign"),
        (["--campaign", SKILLS, "--from", "2022-13-01"], "--from"),
        (["--campaign", SKILLS, "--from", "12/10/2022"], "--from"),
        (["--campaign", SKILLS, "--from", "2022-11-05", "--to", "2022-11-01"], "--to"),
        (["--campaign", SKILLS, "--from", "2022-10-12", "--to", "soon"], "--to"),
        (["--campaign", SKILLS, "--user", "console:nobody"], "--user"),
        (["--campaign", SKILLS, "--to", "2022-11-01"], "--to"),  # before now (2026): say so
    ],
)
def test_plan_bad_input_is_one_line_and_exit_2(
    db: Store, capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    people(db)
    one_line_error(*run(capsys, "reminders", "plan", *args), option)


# ----- a year the calendar lacks ---------------------------------------------------------------


def returned_on(store: Store, when: dt.datetime) -> int:
    """A nomination of the clerk's unit, returned to it at `when`."""
    fields = {"name": "张小三"}
    lifecycle = catalog().get(SKILLS).lifecycle
    assert lifecycle is not None
    with store.transaction() as conn:
        record = noms.create_draft(
            conn, store.sealer, campaign=SKILLS, category="technical_expert", kind="individual",
            unit_id=conn.execute(sa.select(sa.func.min(units.c.id))).scalar_one(),
            region="220104",
            created_by=conn.execute(sa.select(sa.func.min(memberships.c.user_id))).scalar_one(),
            payload={"fields": fields, "facts": {},
                     "opinions": opinion_departments(lifecycle, opinion_facts("individual",
                                                                               fields, {}))},
            now=when, initial_status="returned",
        )  # fmt: skip
    return record.id


def test_a_reminder_in_a_year_the_calendar_lacks_is_a_loud_error_never_a_guess(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clerk(db, clock=lambda: BOUND_AT)
    # Returned on 2026-12-30: "2 and 5 working days after" fall in 2027, which the shipped
    # calendar (chinese_calendar, to 2026, and campaigns/calendar.yaml) does not know.
    returned_on(db, local(2026, 12, 30, 10, 0))

    code, out, err = run(capsys, "reminders", "plan", "--campaign", SKILLS, "--from", "2026-12-30")
    assert code == 1
    assert out == "", "no guessed date is printed"
    lines = err.splitlines()
    assert lines[0].startswith("# 0 条提醒")
    assert len(lines) == 2, err
    assert lines[1].startswith("awardbot: 无法计划 1 条提醒（截止与待办提醒），没有猜测日期")
    assert "2027" in lines[1]
    assert str(CAMPAIGNS / "calendar.yaml") in lines[1], "the file to add the year to"
    assert "Traceback" not in err


def test_a_window_moved_into_a_year_the_calendar_lacks_says_so_on_set_and_plan(
    db: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A provincial official gets the daily digest on working days until the window closes.
    official(db, "prov", "220000", Level.PROVINCE, clock=lambda: BOUND_AT)
    monkeypatch.setenv("AWARDBOT_NOW", "2026-12-20 09:00")
    move = ["campaign", "window", "set", "--campaign", SKILLS, "--window", "submission"]

    code, out, err = run(capsys, *move, "--start", "2027-01-12", "--end", "2027-01-13")
    assert code == 1, "the move is kept, but the gap is loud"
    assert out.startswith(f"已调整 {SKILLS} 的 submission：2027-01-12 至 2027-01-13（第 1 次）")
    assert len(err.splitlines()) == 1, err
    assert "无法计划 1 条提醒（每日汇总）" in err
    assert "2027" in err
    assert "calendar.yaml" in err

    code, out, err = run(capsys, "reminders", "plan", "--campaign", SKILLS)
    assert code == 1
    digests = plan_lines(out)
    assert digests, "the digests of 2026's working days are planned"
    assert all(m["when"] < "2027" for m in digests), "none guessed in 2027"
    assert "2027" in err.splitlines()[-1]
    _, listed, _ = run(capsys, "campaign", "window", "list", "--campaign", SKILLS)
    assert "2027-01-12 至 2027-01-13" in listed


# ----- reminders run-due -----------------------------------------------------------------------


def reminder_rows(store: Store) -> list[tuple[str, str]]:
    with store.reading() as conn:
        return [(e.recipient_id, e.status) for e in rows.entries(conn, store.sealer)]


def test_run_due_hands_due_reminders_to_the_outbox_once_and_prints_the_consoles(
    any_db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    people(any_db)
    code, out, err = run(capsys, "reminders", "run-due", "--now", "2022-11-02 08:30")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "2022-11-02 08:30：交给发件箱 2 条，跳过 0 条，推迟到 08:00 0 条"
        " (handed to the outbox 2, skipped 0, deferred 0)"
    )
    # Nobody ran since 10-20: "7 days" and "3 days to go" are about their own days, over now.
    assert lines[1] == (
        "  错过 4 条：截止前机器人未运行，未发送"
        " (missed 4: nobody ran before their deadline; not sent)"
    )
    for who in ("clerk", "ann"):
        printed = out.split(f"[console:{who}]\n")[1].split("[console:")[0]
        assert printed.startswith(f"【通知】【{WINDOW_TITLES[2]}】")
        assert [t for t in WINDOW_TITLES if t in printed] == WINDOW_TITLES[2:3]
    assert sorted(reminder_rows(any_db)) == sorted(
        [(who, "skipped") for who in ("clerk", "ann") for _ in "ab"]
        + [(who, "sent") for who in ("clerk", "ann")]
        + [(who, "pending") for who in ("clerk", "ann") for _ in "ab"]
    )
    queued = table(any_db, outbox_table)
    assert len(queued) == 2

    code, again, _ = run(capsys, "reminders", "run-due", "--now", "2022-11-02 08:30")
    assert code == 0
    assert again == (
        "2022-11-02 08:30：交给发件箱 0 条，跳过 0 条，推迟到 08:00 0 条"
        " (handed to the outbox 0, skipped 0, deferred 0)\n"
    )
    assert table(any_db, outbox_table) == queued


def test_run_due_sends_nothing_at_night(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    people(db)
    code, out, _ = run(capsys, "reminders", "run-due", "--now", "2022-10-27 22:00")
    assert code == 0
    assert out.startswith("2022-10-27 22:00：交给发件箱 0 条")
    assert "错过 2 条" in out, "10-27's reminder is about 10-27: not sent the next morning"
    assert "【通知】" not in out
    assert table(db, outbox_table) == []


@pytest.mark.parametrize("now", ["garbage", "2022-11-02 25:00", "11/02 08:30"])
def test_run_due_garbage_now_is_exit_2(
    db: Store, capsys: pytest.CaptureFixture[str], now: str
) -> None:
    code, out, err = run(capsys, "reminders", "run-due", "--now", now)
    one_line_error(code, out, err, "--now")
    assert "YYYY-MM-DD HH:MM" in err


def test_run_due_refuses_a_future_now_in_production(
    db: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    people(db)
    monkeypatch.setenv("AWARDBOT_ENV", "production")  # AWARDBOT_SECRET_KEY is set (db)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).astimezone(local(2022, 1, 1).tzinfo)
    code, out, err = run(
        capsys, "reminders", "run-due", "--now", future.strftime("%Y-%m-%d %H:%M")
    )
    one_line_error(code, out, err, "--now")
    assert "生产环境" in err
    assert "production" in err
    assert set(reminder_rows(db)) == {("clerk", "pending"), ("ann", "pending")}, "nothing handed"
    # A time already past is no early send: allowed (catching up by hand).
    code, out, _ = run(capsys, "reminders", "run-due", "--now", "2022-10-27 08:30")
    assert code == 0
    assert "交给发件箱 2 条" in out


# ----- reminders list --------------------------------------------------------------------------


def test_list_by_status_pending_sent_skipped_failed(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    people(db)
    # ann also on WeCom (the same ID on another channel), subscribed there too: `run-due` only
    # hands her WeCom reminders to the outbox, which `serve` would deliver.
    with db.conversation(ConversationKey("wecom", "ann")) as tx:
        wecom_ann = tx.user_id
    with db.transaction() as conn:
        rows.set_pref(conn, wecom_ann, SKILLS, "window", True, now=BOUND_AT)
    assert run(capsys, "reminders", "run-due", "--now", "2022-10-27 08:30")[0] == 0
    # WeCom gives up on the first one: the outbox marks it failed.
    claimed = outbox.claim(
        db, "test", now=local(2022, 10, 27, 8, 31), lease=dt.timedelta(minutes=1), limit=10,
        channels=["wecom"],
    )  # fmt: skip
    assert len(claimed) == 1
    assert outbox.mark_failed(db, claimed.messages[0], error="企业微信拒收 (WeCom refused)")
    # The console ann turns window reminders off: the re-plan supersedes her pending ones.
    ann = ConsoleHarness(db, user="ann", clock=lambda: local(2022, 10, 28, 9, 0))
    ann.open()
    assert "已关闭" in ann.send("/unsubscribe 报送 2")

    def listed(*args: str) -> list[tuple[str, str, str, str | None]]:
        code, out, err = run(capsys, "reminders", "list", *args)
        assert code == 0, err
        found = list_lines(out)
        assert err == f"# {len(found)} 条 (reminders)\n"
        return [(m["when"][:10], m["status"], m["who"], m["reason"]) for m in found]

    day = WINDOW_DAYS[0]
    assert listed("--status", "sent") == [
        (day, "sent", "console:clerk", None),
        (day, "sent", "console:ann", None),
    ]
    assert listed("--status", "failed") == [
        (day, "failed", "wecom:ann", "企业微信拒收 (WeCom refused)")
    ]
    assert listed("--status", "pending") == [
        (d, "pending", who, None)
        for d in WINDOW_DAYS[1:]
        for who in ("console:clerk", "wecom:ann")
    ]
    assert listed("--status", "skipped") == [
        (d, "skipped", "console:ann", rows.TURNED_OFF) for d in WINDOW_DAYS[1:]
    ]
    assert len(listed("--user", "console:ann")) == 5
    assert len(listed("--user", "ann")) == 10, "a bare ID: every channel's"
    assert len(listed("--campaign", SKILLS, "--limit", "3")) == 3
    assert listed("--campaign", "jl-employment-2022") == []


def test_list_bad_input_is_exit_2(db: Store, capsys: pytest.CaptureFixture[str]) -> None:
    people(db)
    one_line_error(*run(capsys, "reminders", "list", "--campaign", "nope"), "--campaign")
    one_line_error(*run(capsys, "reminders", "list", "--user", "wecom:nobody"), "--user")
    one_line_error(*run(capsys, "reminders", "list", "--limit", "0"), "--limit")
    code, out, err = run(capsys, "reminders", "list", "--status", "lost")
    assert (code, out, len(err.splitlines())) == (2, "", 1)


# ----- campaign window set|list ----------------------------------------------------------------


def test_window_set_replans_and_list_shows_the_moved_dates(
    db: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    people(db)
    assert run(capsys, "reminders", "run-due", "--now", "2022-10-27 08:30")[0] == 0
    code, out, _ = run(capsys, "campaign", "window", "list", "--campaign", SKILLS)
    assert (code, out) == (0, "submission  报送推荐材料  2022-11-03 至 2022-11-04，严格\n")

    monkeypatch.setenv("AWARDBOT_NOW", "2022-10-28 09:00")  # the bot's clock: the demo's
    code, out, err = run(
        capsys, "campaign", "window", "set", "--campaign", SKILLS, "--window", "submission",
        "--start", "2022-11-10", "--end", "2022-11-11",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == (
        f"已调整 {SKILLS} 的 submission：2022-11-10 至 2022-11-11（第 1 次）；"
        "提醒已重新计划：新增 10，作废 8，已过期 0（按 2022-10-28 09:00 计）"
        " (window moved; reminders re-planned: 10 new, 8 superseded, 0 past)\n"
    )
    code, out, _ = run(capsys, "campaign", "window", "list", "--campaign", SKILLS)
    assert out == "submission  报送推荐材料  2022-11-10 至 2022-11-11，严格（已调整 1 次）\n"

    _, out, _ = run(capsys, "reminders", "list", "--status", "skipped")
    skipped = list_lines(out)
    assert [m["when"][:10] for m in skipped] == [d for d in WINDOW_DAYS[1:] for _ in "ab"]
    assert {m["reason"] for m in skipped} == {rows.SUPERSEDED}
    _, out, _ = run(capsys, "reminders", "list", "--status", "pending")
    moved = ["2022-11-03", "2022-11-07", "2022-11-09", "2022-11-10", "2022-11-11"]
    assert [m["when"][:10] for m in list_lines(out)] == [d for d in moved for _ in "ab"]
    _, out, _ = run(capsys, "reminders", "plan", "--campaign", SKILLS, "--user", "console:ann")
    assert "将于 2022-11-10 开始（还有 7 天），2022-11-11 截止" in plan_lines(out)[0]["body"]
    assert "[" not in out


def test_window_set_bad_input_is_exit_2_and_moves_nothing(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    people(db)
    stored = table(db, reminders_table)
    move = ["campaign", "window", "set", "--campaign", SKILLS]
    code, out, err = run(capsys, *move, "--window", "publicity", "--start", "2022-11-10",
                         "--end", "2022-11-11")  # fmt: skip
    one_line_error(code, out, err, "--window")
    assert "submission" in err, "the windows it has"
    end_first = ["--window", "submission", "--start", "2022-11-11", "--end", "2022-11-10"]
    one_line_error(*run(capsys, *move, *end_first), "--end")
    bad_day = ["--window", "submission", "--start", "2022-11-31", "--end", "2022-12-01"]
    one_line_error(*run(capsys, *move, *bad_day), "--start")
    one_line_error(
        *run(capsys, "campaign", "window", "list", "--campaign", "jl-nope"), "--campaign"
    )
    _, out, _ = run(capsys, "campaign", "window", "list", "--campaign", SKILLS)
    assert "2022-11-03 至 2022-11-04" in out
    assert table(db, reminders_table) == stored


def test_window_list_of_a_campaign_without_windows_says_so(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "campaign", "window", "list", "--campaign", "jl-employment-2022")
    assert (code, out) == (0, "")
    assert err == "# jl-employment-2022 没有报送时间窗口 (no windows)\n"


# ----- as a new user runs it ------------------------------------------------------------------


def test_the_readme_walk_as_real_processes(tmp_path: Path) -> None:
    """A fresh folder, `python -m bot.cli …`: invite a clerk, bind in the console at the demo
    time 2022-10-20, see the plan, run what is due on 2022-10-27 08:30."""
    env = awardbot_env(tmp_path / "bot.db", AWARDBOT_NOW="2022-10-20 09:00")
    invite = run_awardbot(
        ["invite", "create", "--role", "clerk", "--region", "220104",
         "--unit-name", "长春市朝阳区示例有限公司", "--unit-code", "91220104MA14ABCD3K",
         "--unit-type", "enterprise"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert invite.returncode == 0, invite.stderr
    code = re.search(r"邀请码 (\S{4}-\S{4})", invite.stdout)
    assert code is not None, invite.stdout
    bound = run_awardbot(
        ["console", "--user", "li"], cwd=tmp_path, env=env, stdin=f"/bind {code[1]}\n"
    )
    assert "绑定成功" in bound.stdout, bound.stdout + bound.stderr

    planned = run_awardbot(["reminders", "plan", "--campaign", SKILLS], cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    assert [m["when"] for m in plan_lines(planned.stdout)] == [f"{d} 08:30" for d in WINDOW_DAYS]
    assert {m["who"] for m in plan_lines(planned.stdout)} == {"console:li"}
    assert planned.stderr.endswith(
        "# 5 条提醒 (reminders) · jl-skills-2022 · 自 2022-10-20 09:00 起 (from)\n"
    )

    due = ["reminders", "run-due", "--now", "2022-10-27 08:30"]
    first = run_awardbot(due, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "交给发件箱 1 条" in first.stdout
    assert "[console:li]\n【通知】【报送推荐材料7天后开始】" in first.stdout
    second = run_awardbot(due, cwd=tmp_path, env=env)
    assert "交给发件箱 0 条" in second.stdout
    assert "【通知】" not in second.stdout
    listed = run_awardbot(["reminders", "list", "--status", "sent"], cwd=tmp_path, env=env)
    assert [m["who"] for m in list_lines(listed.stdout)] == ["console:li"]
    for done in (invite, bound, planned, first, second, listed):
        assert "Traceback" not in done.stderr
