"""`awardbot privacy purge --campaign ID [--dry-run]` and serve's nightly purge (issue 11).

The state is made as the bot makes it (a clerk bound in the console, nominations placed by
tests/support/review_rig.py); `bot.cli.main` runs in process with the environment set, as
tests/bot/test_reminders_cli.py does. The real clock is long past the 2022 campaigns' retention
(2022-11-04 + 180 days), so the purge is due; AWARDBOT_RETENTION_DAYS moves the due day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.cli import cli_store, run
from support.console_harness import FIXED_NOW
from support.review_rig import audit_rows, clerk, place
from support.serving import serving

from storage import tables
from storage.store import Store

KINDS = ["drafts", "attachments", "selfchecks", "sessions", "reminder_settings",
         "subscriptions", "reminders"]  # fmt: skip


@pytest.fixture
def db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    yield from cli_store(store_url, tmp_path, monkeypatch)


def counts(out: str) -> dict[str, int]:
    found = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] in KINDS:
            found[words[1]] = int(words[2])
    return found


def nominations(store: Store) -> set[int]:
    with store.reading() as conn:
        return set(conn.execute(sa.select(tables.nominations.c.id)).scalars())


def test_a_dry_run_prints_the_counts_the_purge_then_deletes(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clerk(db)
    draft = place(db, status="draft")
    submitted = place(db, status="county_review")

    code, out, err = run(capsys, "privacy", "purge", "--campaign", "jl-skills-2022", "--dry-run")
    assert (code, err) == (0, "")
    assert "评选 jl-skills-2022：最后阶段 2022-11-04 结束，保留 180 天，2023-05-03 起删除。" in out
    assert "试运行，未删除任何数据" in out
    dry = counts(out)
    assert list(dry) == KINDS
    assert dry["drafts"] == 1
    assert nominations(db) == {draft, submitted}

    code, out, err = run(capsys, "privacy", "purge", "--campaign", "jl-skills-2022")
    assert (code, err) == (0, "")
    assert "已删除 (deleted)：" in out
    assert counts(out) == dry
    assert nominations(db) == {submitted}
    assert ("privacy_purge", True) in audit_rows(db)

    # Run again: nothing left to delete, and it says so.
    code, out, _ = run(capsys, "privacy", "purge", "--campaign", "jl-skills-2022")
    assert code == 0
    assert "没有需要删除的数据" in out
    assert set(counts(out).values()) == {0}


def test_before_the_due_day_nothing_is_deleted(
    db: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk(db)
    draft = place(db, status="draft")
    monkeypatch.setenv("AWARDBOT_RETENTION_DAYS", "3650")
    code, out, _ = run(capsys, "privacy", "purge", "--campaign", "jl-skills-2022")
    assert code == 0
    assert "2032-11-01 起删除" in out
    assert "尚未到期，未删除任何数据" in out
    assert counts(out)["drafts"] == 1
    assert nominations(db) == {draft}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--campaign", "nope"], {}, "--campaign: 没有评选 'nope'"),
        (["--campaign", "jl-skills-2022"], {"AWARDBOT_RETENTION_DAYS": "half a year"},
         "AWARDBOT_RETENTION_DAYS: 'half a year' is not a number of days from 0 to 3650"),
        (["--campaign", "jl-skills-2022"], {"AWARDBOT_RETENTION_DAYS": "4000"},
         "is not a number of days from 0 to 3650"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    db: Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, "privacy", "purge", *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_purge_without_a_campaign_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "privacy", "purge")
    assert (code, out) == (2, "")
    assert "--campaign" in err
    assert len(err.strip().splitlines()) == 1


async def test_serve_purges_every_night_on_the_leader_only(store: Store) -> None:
    clerk(store)
    draft = place(store, status="draft")
    submitted = place(store, status="county_review")
    late = dt.datetime(2023, 6, 1, 3, 30, tzinfo=FIXED_NOW.tzinfo)
    async with serving(store, clock=lambda: late) as server:
        assert "privacy-purge" in [job.id for job in server.scheduler.get_jobs()]
        trigger = str(server.scheduler.get_job("privacy-purge").trigger)
        assert "hour='3'" in trigger
        assert "minute='30'" in trigger
        assert server.ticker is not None
        for _ in range(100):  # its first tick, at start, makes it the leader
            if server.ticker.leading:
                break
            await asyncio.sleep(0.05)
        server.ticker.leading = False  # a standby worker leaves it to the leader
        await server._purge()
        assert nominations(store) == {draft, submitted}
        server.ticker.leading = True
        await server._purge()
        assert nominations(store) == {submitted}


async def test_the_consent_notice_says_the_configured_retention(store: Store) -> None:
    async with serving(store, {"AWARDBOT_RETENTION_DAYS": "30"}) as server:
        assert server.runtime.assistant.consent.retention_days == 30
