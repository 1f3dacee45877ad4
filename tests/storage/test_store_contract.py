"""The store contract, run against every backend (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import importlib
import json
import multiprocessing
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel
from support.keys import TEST_KEY, TEST_SEALER

from conversations.keys import ConversationKey
from storage import migrations
from storage.crypto import Sealer, SealError
from storage.store import Store, StoreError, WrongKey
from storage.tables import conversation_sessions

ROOT = Path(__file__).resolve().parents[2]
KEY = ConversationKey("telegram", "10001")
CST = timezone(timedelta(hours=8))
STATE = {
    "step": "q3",
    "answers": {"姓名": "张三", "单位": "吉林省长春市第一中学", "years": 12, "党员": True},
    "history": [["q1", "是"], ["q2", 3], []],
    "flags": [True, False, None],
    "score": 87.5,
}


@pytest.fixture
def raw(store_url: str) -> Iterator[sa.Engine]:
    """Direct access to the store's database, to look behind the API."""
    engine = sa.create_engine(store_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def _session_row(raw: sa.Engine, key: ConversationKey) -> tuple[str, int] | None:
    with raw.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT s.state, s.version FROM conversation_sessions s"
                " JOIN users u ON u.id = s.user_id"
                " WHERE u.channel = :channel AND u.external_id = :user"
            ),
            {"channel": key.channel, "user": key.user_id},
        ).one_or_none()
    return None if row is None else (row.state, row.version)


def _opened_row(raw: sa.Engine, key: ConversationKey) -> tuple[str, int] | None:
    """The session row as stored, its state opened with the test key."""
    row = _session_row(raw, key)
    return None if row is None else (TEST_SEALER.open(row[0]), row[1])


def _bump(store: Store, key: ConversationKey) -> None:
    """Read-modify-write with a pause in between: loses updates unless the store locks."""
    with store.conversation(key) as tx:
        count = (tx.state or {"count": 0})["count"]
        time.sleep(random.uniform(0, 0.001))
        tx.save({"count": count + 1})


def _bump_in_process(url: str, barrier: multiprocessing.synchronize.Barrier, rounds: int) -> None:
    barrier.wait()  # all start (and migrate the fresh database) at once
    try:
        store = Store(url, sealer=TEST_SEALER)
    except BaseException:
        barrier.abort()  # the others fail now instead of waiting out the barrier's timeout
        raise
    try:
        barrier.wait()
        for _ in range(rounds):
            _bump(store, KEY)
    finally:
        store.close()


def test_new_key_has_no_state(store: Store) -> None:
    with store.conversation(KEY) as tx:
        assert tx.state is None
        assert tx.version == 0
    assert store.load_state(KEY) is None
    assert store.results(KEY) == []


def test_saved_state_round_trips_with_chinese_text(store: Store, raw: sa.Engine) -> None:
    with store.conversation(KEY) as tx:
        tx.save(STATE)

    with store.conversation(KEY) as tx:
        assert tx.state == STATE
    assert store.load_state(KEY) == STATE
    sealed, _ = _session_row(raw, KEY) or ("", 0)
    assert sealed.startswith("fernet:")  # encrypted at rest ...
    assert "吉林省" not in sealed
    assert "长春" not in sealed
    assert "吉林省长春市第一中学" in TEST_SEALER.open(sealed)  # ... as UTF-8 JSON, not \\u escapes


def test_save_snapshots_the_state(store: Store) -> None:
    state = {"items": ["一"]}
    with store.conversation(KEY) as tx:
        tx.save(state)
        state["items"].append("二")  # after save: not part of what was saved
        assert tx.state == {"items": ["一"]}
    assert store.load_state(KEY) == {"items": ["一"]}


def test_version_goes_up_by_one_per_save(store: Store, raw: sa.Engine) -> None:
    versions = []
    for i in range(3):
        with store.conversation(KEY) as tx:
            tx.save({"i": i})
            versions.append(tx.version)
    with store.conversation(KEY) as tx:
        assert tx.version == 3
    assert versions == [1, 2, 3]
    assert _opened_row(raw, KEY) == ('{"i":2}', 3)


def test_save_none_deletes_the_session(store: Store, raw: sa.Engine) -> None:
    with store.conversation(KEY) as tx:
        tx.save(STATE)
    with store.conversation(KEY) as tx:
        tx.save(None)
        assert tx.state is None

    assert _opened_row(raw, KEY) is None
    assert store.load_state(KEY) is None
    with store.conversation(KEY) as tx:
        assert tx.state is None
        tx.save({"again": True})  # a new session starts over at version 1
    assert _opened_row(raw, KEY) == ('{"again":true}', 1)


def test_exception_in_block_rolls_everything_back(store: Store, raw: sa.Engine) -> None:
    with store.conversation(KEY) as tx:
        tx.save({"step": "before"})

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.conversation(KEY) as tx:  # noqa: PT012
        tx.save({"step": "after"})
        tx.add_result(
            campaign="c",
            category="k",
            verdict="eligible",
            result={},
            completed_at=datetime.now(UTC),
        )
        raise Boom

    assert store.load_state(KEY) == {"step": "before"}
    assert _opened_row(raw, KEY) == ('{"step":"before"}', 1)
    assert store.results(KEY) == []


def test_results_oldest_first_with_content(store: Store) -> None:
    t0 = datetime(2022, 9, 29, 9, 30, tzinfo=CST)
    with store.conversation(KEY) as tx:
        tx.add_result(
            campaign="jl-skills-2022",
            category="technical_expert",
            verdict="ineligible",
            result={"reasons": ["不满 5 年"], "clause": "二、（一）"},
            completed_at=t0 + timedelta(minutes=5),
        )
        tx.add_result(
            campaign="jl-skills-2022",
            category="skilled_worker",
            verdict="eligible",
            result={"reasons": []},
            completed_at=t0,
        )
    with store.conversation(KEY) as tx:
        tx.add_result(
            campaign="jl-employment-2022",
            category="advanced_unit",
            verdict="needs_review",
            result={"n": 1},
            completed_at=t0 + timedelta(days=1),
        )

    results = store.results(KEY)

    assert [(r.category, r.verdict, r.completed_at) for r in results] == [
        ("skilled_worker", "eligible", t0),
        ("technical_expert", "ineligible", t0 + timedelta(minutes=5)),
        ("advanced_unit", "needs_review", t0 + timedelta(days=1)),
    ]
    assert results[1].campaign == "jl-skills-2022"
    assert results[1].result == {"reasons": ["不满 5 年"], "clause": "二、（一）"}
    assert results[0].completed_at.utcoffset() == timedelta(0)  # handed back as aware UTC


def test_naive_completed_at_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"), store.conversation(KEY) as tx:
        tx.add_result(
            campaign="c",
            category="k",
            verdict="eligible",
            result={},
            completed_at=datetime(2022, 9, 29, 9, 30),  # noqa: DTZ001 (the point of the test)
        )
    assert store.results(KEY) == []


def test_same_user_id_on_two_channels_is_two_conversations(store: Store) -> None:
    telegram, wechat = ConversationKey("telegram", "u1"), ConversationKey("wechat", "u1")
    with store.conversation(telegram) as tx:
        tx.save({"on": "telegram"})
        tx.add_result(
            campaign="c",
            category="k",
            verdict="eligible",
            result={},
            completed_at=datetime.now(UTC),
        )
    with store.conversation(wechat) as tx:
        assert tx.state is None
        tx.save({"on": "wechat"})

    assert store.load_state(telegram) == {"on": "telegram"}
    assert store.load_state(wechat) == {"on": "wechat"}
    assert store.results(wechat) == []
    assert len(store.results(telegram)) == 1


def test_load_state_is_a_peek_that_does_not_wait_for_the_lock(store: Store) -> None:
    with store.conversation(KEY) as tx:
        tx.save({"n": 1})
    seen: list[object] = []
    with store.conversation(KEY) as tx:
        tx.save({"n": 2})
        peek = threading.Thread(target=lambda: seen.append(store.load_state(KEY)))
        peek.start()
        peek.join(timeout=5)
        assert seen == [{"n": 1}]  # the committed state, read while the block holds the lock
    assert store.load_state(KEY) == {"n": 2}


def test_starting_twice_migrates_once(store: Store, store_url: str, raw: sa.Engine) -> None:
    with store.conversation(KEY) as tx:
        tx.save({"kept": True})
    store.close()

    with Store(store_url, sealer=TEST_SEALER) as again:
        assert again.load_state(KEY) == {"kept": True}
    with raw.connect() as conn:
        versions = conn.execute(sa.text("SELECT id, version FROM schema_version")).all()
    assert versions == [(1, migrations.LATEST)]


def test_stores_starting_at_once_migrate_once(store_url: str, raw: sa.Engine) -> None:
    starters = 8
    barrier = threading.Barrier(starters, timeout=30)

    def start() -> None:
        barrier.wait()
        Store(store_url, sealer=TEST_SEALER).close()

    with ThreadPoolExecutor(max_workers=starters) as pool:
        for future in [pool.submit(start) for _ in range(starters)]:
            future.result()

    with raw.connect() as conn:
        versions = conn.execute(sa.text("SELECT id, version FROM schema_version")).all()
    assert versions == [(1, migrations.LATEST)]


def test_migrated_schema_matches_the_models(store: Store, raw: sa.Engine) -> None:
    assert [step.number for step in migrations.STEPS] == list(range(1, len(migrations.STEPS) + 1))
    inspector = sa.inspect(raw)
    # The one module that declares tables: the models are the whole current schema.
    importlib.import_module("storage.tables")
    expected = {
        name: {(c.name, c.nullable, c.primary_key) for c in table.columns}
        for name, table in SQLModel.metadata.tables.items()
    }
    actual = {
        name: {
            (
                c["name"],
                c["nullable"],
                c["name"] in inspector.get_pk_constraint(name)["constrained_columns"],
            )
            for c in inspector.get_columns(name)
        }
        for name in inspector.get_table_names()
    }
    assert actual == expected
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("users")}
    assert ("channel", "external_id") in uniques


def test_threads_on_one_key_never_interleave(store: Store) -> None:
    threads, rounds = 8, 25

    def work() -> None:
        for _ in range(rounds):
            _bump(store, KEY)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()

    with store.conversation(KEY) as tx:
        assert tx.state == {"count": threads * rounds}
        assert tx.version == threads * rounds


def test_processes_on_one_key_never_interleave(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes, rounds = 3, 20
    # Spawned children import this module by its pytest name (tests.storage....): they inherit
    # sys.path, which needs the project root even when pytest was not run as `python -m`.
    monkeypatch.syspath_prepend(str(ROOT))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes, timeout=60)
    workers = [
        ctx.Process(target=_bump_in_process, args=(store_url, barrier, rounds))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * processes

    with Store(store_url, sealer=TEST_SEALER) as store:
        assert store.load_state(KEY) == {"count": processes * rounds}


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://bot:s3cret@db.example/awards",
        "postgresql+psycopg2://bot:s3cret@127.0.0.1/awards",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url with s3cret",
    ],
)
def test_unsupported_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        Store(url, sealer=TEST_SEALER)
    message = str(caught.value)
    assert "\n" not in message
    assert "s3cret" not in message
    assert "sqlite:///" in message  # says what would work


def test_unreachable_postgres_is_a_one_line_store_error() -> None:
    url = "postgresql+psycopg://bot:s3cret@127.0.0.1:1/awards"
    with pytest.raises(StoreError) as caught:
        Store(url, sealer=TEST_SEALER)
    message = str(caught.value)
    assert "\n" not in message
    assert "s3cret" not in message
    assert message.startswith("无法连接数据库 postgresql+psycopg://bot:***@127.0.0.1:1/awards")
    assert "cannot connect to database" in message


def test_postgresql_url_without_driver_uses_psycopg(postgres_url: str) -> None:
    plain = make_url(postgres_url).set(drivername="postgresql")
    with Store(plain.render_as_string(hide_password=False), sealer=TEST_SEALER) as store:
        assert store.dialect == "postgresql"
        with store.conversation(KEY) as tx:
            tx.save({"ok": True})
        assert store.load_state(KEY) == {"ok": True}


@pytest.mark.parametrize("relative", [False, True])
def test_sqlite_file_is_created_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    path = Path("not", "yet", "there", "awardbot.db")
    if relative:
        monkeypatch.chdir(tmp_path)
    else:
        path = tmp_path / path
    with Store(f"sqlite:///{path}", sealer=TEST_SEALER) as store:
        assert store.dialect == "sqlite"
    with sqlite3.connect(tmp_path / "not" / "yet" / "there" / "awardbot.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_a_different_key_is_refused_at_start_in_one_line(store_url: str, store: Store) -> None:
    # Issue 8: a wrong but well-formed key used to start and then fail every existing user.
    with store.conversation(KEY) as tx:
        tx.save(STATE)
    with pytest.raises(WrongKey, match="AWARDBOT_SECRET_KEY does not open") as caught:
        Store(store_url, sealer=Sealer([Sealer.new_key()]))
    assert "\n" not in str(caught.value)
    assert store.load_state(KEY) == STATE  # the refused start changed nothing


def test_a_value_sealed_with_another_key_says_so(store_url: str, store: Store) -> None:
    with store.conversation(KEY) as tx:
        tx.save(STATE)
    other = Sealer([Sealer.new_key()])
    with store.transaction() as conn:  # a row sealed with a key this store no longer has
        conn.execute(sa.update(conversation_sessions).values(state=other.seal(json.dumps(STATE))))
    with pytest.raises(StoreError, match="wrong AWARDBOT_SECRET_KEY") as caught:
        store.load_state(KEY)
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreError), store.conversation(KEY):
        pass


def test_a_rotated_key_list_reads_old_values_and_seals_with_the_new_key(
    store_url: str, store: Store
) -> None:
    with store.conversation(KEY) as tx:
        tx.save(STATE)
    new_key = Sealer.new_key()
    with (
        Store(store_url, sealer=Sealer([new_key, TEST_KEY])) as rotated,
        rotated.conversation(KEY) as tx,
    ):
        assert tx.state == STATE
        tx.save({"rotated": True})
    with Store(store_url, sealer=Sealer([new_key])) as new_only:
        assert new_only.load_state(KEY) == {"rotated": True}


def test_a_malformed_key_is_refused() -> None:
    with pytest.raises(SealError, match="Fernet"):
        Sealer(["not-a-key"])


def test_transaction_commits_or_rolls_back(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE probe (n INTEGER)"))
        conn.execute(sa.text("INSERT INTO probe VALUES (1)"))

    def insert_then_fail() -> None:
        with store.transaction() as conn:
            conn.execute(sa.text("INSERT INTO probe VALUES (2)"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    with store.reading() as conn:
        assert conn.execute(sa.text("SELECT n FROM probe")).scalars().all() == [1]


def test_a_conversation_step_and_other_writes_commit_together(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE side (n INTEGER)"))

    def step_then_crash() -> None:
        with store.conversation(KEY) as tx:
            tx.save({"step": 1})
            tx.connection.execute(sa.text("INSERT INTO side VALUES (1)"))
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        step_then_crash()
    assert store.load_state(KEY) is None
    with store.reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM side")).scalar_one() == 0


def test_step_6_keeps_a_row_sending_during_the_upgrade_uncertain(tmp_path: Path) -> None:
    # Issue 8: rows never started go back to pending after a crash, rows started are uncertain.
    # A row `sending` when the upgrade runs may have gone out, so it must count as started.
    url = f"sqlite:///{tmp_path / 'v5.db'}"
    engine = sa.create_engine(url)
    claimed_until = "2026-11-30 08:00:00.000000"  # as step 5 stored naive UTC
    with engine.begin() as conn:
        migrations.schema_version.create(conn)
        for step in migrations.STEPS[:5]:
            step.apply(conn)
        conn.execute(sa.insert(migrations.schema_version).values(id=1, version=5))
        for key, status in (("a", "sending"), ("b", "pending")):
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (idempotency_key, channel, recipient_id, text, status,"
                    " attempts, next_attempt_at, claimed_by, claimed_until, created_at)"
                    " VALUES (:key, 'telegram', '1', 'x', :status, 1, :at, 'w', :at, :at)"
                ),
                {"key": key, "status": status, "at": claimed_until},
            )
    engine.dispose()
    Store(url, sealer=TEST_SEALER).close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        started = dict(
            conn.execute(sa.text("SELECT idempotency_key, started_at FROM outbox")).all()
        )
    engine.dispose()
    assert started["a"] is not None
    assert started["b"] is None


def _backend_pid(store: Store, key: ConversationKey) -> int:
    with store.conversation(key) as tx:
        pid: int = tx.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        tx.save({"count": 1})
    return pid


def test_a_kept_connection_the_server_closed_is_replaced_not_answered_as_an_outage(
    postgres_url: str,
) -> None:
    """Steps keep their connection between transactions (no pool checkout, no pre-ping): when
    the server ended it meanwhile (a restart, an idle timeout), the next step notices at its
    first statement and runs on a new connection, instead of failing as if the database were
    down. Only this test's own connection is terminated."""
    with Store(postgres_url, sealer=TEST_SEALER) as store:
        first = _backend_pid(store, KEY)
        assert _backend_pid(store, KEY) == first  # the same connection, kept
        admin = sa.create_engine(make_url(postgres_url), poolclass=sa.NullPool)
        with admin.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})").scalar_one()
        admin.dispose()
        deadline = time.monotonic() + 10
        with sa.create_engine(make_url(postgres_url), poolclass=sa.NullPool).connect() as conn:
            while conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE pid = {first}"
            ).scalar_one():
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with store.conversation(KEY) as tx:  # raised StoreUnavailable before the retry
            assert tx.state == {"count": 1}
            tx.save({"count": 2})
        assert store.load_state(KEY) == {"count": 2}
        assert _backend_pid(store, KEY) != first
