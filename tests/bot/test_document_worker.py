"""The document worker (bot.exports.DocumentWorker, issue 12): a job answered once even when a
worker outlives its lease and another takes the job over; a render that keeps failing (no CJK
font) is retried, then the user is told once, and nothing half-made reaches them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import CAMPAIGNS, FIXED_NOW, catalog, regions
from support.review_rig import clerk, place, write

from bot.exports import DocumentWorker
from bot.wiring import workday_end_from
from conversations.effects import RequestDocuments
from handlers.base import load_replies
from notifications.calendar import WorkdayCalendar
from storage import exports, outbox
from storage.files import FileStore
from storage.store import Store
from storage.tables import generated_files
from storage.tables import outbox as outbox_table

SKILLS = "jl-skills-2022"
LEASE = dt.timedelta(minutes=10)


def worker(store: Store, files: Path, name: str, now: dt.datetime) -> DocumentWorker:
    return DocumentWorker(
        store, FileStore(files, store.sealer), catalog(), regions(),
        workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        clock=lambda: now, worker_id=name, lease=LEASE,
    )  # fmt: skip


def replies(store: Store) -> list[str]:
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(outbox_table.c.idempotency_key).where(
                outbox_table.c.idempotency_key.like("documents:%")
            )
        ).scalars()
        return list(rows)


def generated(store: Store) -> int:
    with store.reading() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(generated_files)).scalar())


def test_a_job_taken_over_is_answered_once_by_the_worker_that_holds_it(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    place(store, fields={"name": "张小三"}, materials=False)
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary",))], tmp_path)
    late = exports.claim(store, "a", now=FIXED_NOW, lease=LEASE)  # a stalls past its lease
    assert late is not None
    later = FIXED_NOW + LEASE + dt.timedelta(minutes=1)
    b = worker(store, tmp_path / "files", "b", later)
    assert b.run_due() == 1  # b takes it over and answers
    worker(store, tmp_path / "files", "a", FIXED_NOW).run(late)  # a wakes up and finishes
    assert replies(store) == [f"documents:{late.id}"]
    assert generated(store) == 2  # b's XLSX and PDF; a's were dropped
    assert exports.job_status(store, late.id)[0] == exports.JobStatus.DONE


def test_a_render_that_keeps_failing_is_retried_then_the_user_is_told_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk(store)
    place(store, fields={"name": "张小三"}, materials=False)
    monkeypatch.setenv("AWARDBOT_CJK_FONT", str(tmp_path / "no-such-font.otf"))
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary",))], tmp_path)
    for attempt in range(1, exports.MAX_ATTEMPTS + 1):
        at = FIXED_NOW + attempt * (exports.RETRY_AFTER + dt.timedelta(seconds=1))
        w = worker(store, tmp_path / "files", "w", at)
        assert w.run_due() == 1  # one try a round: a failed job pauses before the next
        assert w.run_due() == 0
        assert len(replies(store)) == (1 if attempt == exports.MAX_ATTEMPTS else 0)
    assert worker(store, tmp_path / "files", "w", FIXED_NOW + dt.timedelta(hours=1)).run_due() == 0
    status, attempts, error = exports.job_status(store, 1)
    assert (status, attempts) == (exports.JobStatus.FAILED, exports.MAX_ATTEMPTS)
    assert error is not None
    assert "找不到中文字体文件" in error
    (key,) = replies(store)
    found = outbox.find(store, key)
    assert found is not None
    with store.reading() as conn:
        sealed = conn.execute(
            sa.select(outbox_table.c.text).where(outbox_table.c.idempotency_key == key)
        ).scalar_one()
    (told,) = load_replies(store.sealer.open(sealed))
    assert told.text.startswith("文件生成失败（找不到中文字体文件")
    assert told.files == ()
    assert generated(store) == 0
