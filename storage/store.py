"""The conversation store: one locked transaction per conversation step, SQLite or PostgreSQL.

`Store(url)` connects and migrates. `with store.conversation(key) as tx:` locks that user's
conversation, loads its state, and commits whatever the block saved in one transaction; two blocks
for the same key never interleave, whether they run in threads of one process or in several
processes (STYLE.md, "One conversation at a time").

How the lock is taken (DESIGN §5):
- SQLite: every writing transaction starts with `BEGIN IMMEDIATE`, which takes the database's
  write lock up front (the pysqlite driver's own BEGIN handling is switched off so we can).
  Writers queue on the busy timeout; WAL lets readers carry on meanwhile.
- PostgreSQL: get-or-create the user row, then `SELECT ... FOR UPDATE` it, before the session is
  read; the row lock is held until commit. Other users are not blocked.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from conversations.keys import ConversationKey
from storage import migrations
from storage.crypto import Sealer, SealError
from storage.prepared import Statements
from storage.tables import (
    conversation_sessions,
    dumps_json,
    selfcheck_results,
    store_meta,
    users,
    utcnow,
)

SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 3  # WeChat waits 5 s: an outage must be a fast 503, not a hang
# Execution option read by the SQLite `begin` hook: how the transaction starts.
_SQLITE_BEGIN = "awardbot_sqlite_begin"

# Write connections kept open between transactions (the pool holds 5 + 10 overflow).
_KEEP_AT_MOST = 4
_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE")}
_session = conversation_sessions.c
# The statements every step runs (storage.prepared: compiled once, run on the driver's cursor).
HOT = Statements(
    {
        # PostgreSQL: the user's row lock (SQLite holds the database's write lock already).
        "lock_user": lambda _: (
            sa.select(users.c.id)
            .where(users.c.channel == sa.bindparam("channel"))
            .where(users.c.external_id == sa.bindparam("external_id"))
            .with_for_update()
        ),
        # SQLite: the user and the session at once (no other writer can run meanwhile).
        "user_and_session": lambda _: (
            sa.select(users.c.id, _session.state, _session.version, _session.last_sequence)
            .select_from(users.outerjoin(conversation_sessions))
            .where(users.c.channel == sa.bindparam("channel"))
            .where(users.c.external_id == sa.bindparam("external_id"))
        ),
        # PostgreSQL, a user with a session: both rows locked by one statement. A statement
        # that waited for the locks re-reads every locked row at its newest version (READ
        # COMMITTED's recheck), so the session is never the one from before the wait.
        "lock_user_and_session": lambda _: (
            sa.select(users.c.id, _session.state, _session.version, _session.last_sequence)
            .select_from(users.join(conversation_sessions))
            .where(users.c.channel == sa.bindparam("channel"))
            .where(users.c.external_id == sa.bindparam("external_id"))
            .with_for_update()
        ),
        "session": lambda _: sa.select(
            _session.state, _session.version, _session.last_sequence
        ).where(_session.user_id == sa.bindparam("user_id")),
        # A save without a sequence keeps the stored one (COALESCE): one statement for both.
        "update": lambda _: (
            sa.update(conversation_sessions)
            .where(_session.user_id == sa.bindparam("user_id"))
            .values(
                state=sa.bindparam("state"),
                updated_at=sa.bindparam("updated_at", type_=_session.updated_at.type),
                version=_session.version + 1,
                last_sequence=sa.func.coalesce(
                    sa.bindparam("last_sequence", type_=_session.last_sequence.type),
                    _session.last_sequence,
                ),
            )
        ),
        "insert": lambda _: sa.insert(conversation_sessions).values(
            user_id=sa.bindparam("user_id"),
            state=sa.bindparam("state"),
            updated_at=sa.bindparam("updated_at", type_=_session.updated_at.type),
            version=1,
            last_sequence=sa.bindparam("last_sequence", type_=_session.last_sequence.type),
        ),
    }
)


class StoreError(Exception):
    """The store cannot work: bad URL, database unreachable, schema problem. One-line message."""


class StoreUnavailable(StoreError):
    """The database could not be reached or was busy: the same request may succeed later.

    Webhooks answer such a failure with 503 so the platform retries it (issue 8); every other
    StoreError is a fault a retry cannot fix.
    """


class WrongKey(StoreError):
    """AWARDBOT_SECRET_KEY cannot open what this database was sealed with."""


SENTINEL_NAME = "key_sentinel"
SENTINEL_TEXT = "awardbot sealed sentinel"
# SQLite errors that pass: another process holds the lock, the file is briefly unreadable.
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


@dataclass(frozen=True, slots=True)
class StoredSelfCheck:
    """One completed self-check as stored: the verdict and the assessment it came from."""

    id: int
    user_id: int
    campaign: str
    category: str
    verdict: str
    result: dict[str, Any]
    completed_at: datetime


class ConversationTx:
    """One conversation's locked transaction; `state` is what was loaded (None: no session)."""

    def __init__(
        self,
        conn: Connection,
        user_id: int,
        state: dict[str, Any] | None,
        version: int,
        db_error: Callable[[SQLAlchemyError], StoreError],
        sealer: Sealer,
    ) -> None:
        self._conn = conn
        self._sealer = sealer
        self._db_error = db_error
        self._user_id = user_id
        self._saved: str | None = None  # the text last saved, parsed when `state` is read
        self.state = state
        self.version = version  # 0 when there is no session row
        self.user_id = user_id
        self.last_sequence: int | None = None  # the platform order of the last update applied

    @property
    def connection(self) -> Connection:
        """The locked transaction itself, for writes that must commit with the state."""
        return self._conn

    def save(self, state: dict[str, Any] | None, *, sequence: int | None = None) -> None:
        """Store the new state (committed when the block ends); None deletes the session.

        `sequence` is the platform's order of the update this state answers (kept with it).

        The dict is serialized now, so later changes to it are not saved, and `self.state`
        becomes what a later load will return (JSON: tuples come back as lists).
        """
        if state is None:
            if self.version:
                self._execute(
                    sa.delete(conversation_sessions).where(
                        conversation_sessions.c.user_id == self._user_id
                    )
                )
            self.state, self.version = None, 0
            return
        text = dumps_json(state)  # now: a state that is not JSON fails here, as a TypeError
        values: dict[str, Any] = {
            "user_id": self._user_id,
            "state": self._sealer.seal(text),
            "updated_at": utcnow(),
            "last_sequence": sequence,
        }
        if sequence is not None:
            self.last_sequence = sequence
        conn = self._conn
        try:
            if self.version:
                HOT(conn, "update").run(conn, **values)
            else:
                HOT(conn, "insert").run(conn, **values)
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc
        self._saved, self.version = text, self.version + 1

    @property
    def state(self) -> dict[str, Any] | None:
        """The loaded state; after `save`, what a later load will return (JSON's own types)."""
        if self._saved is not None:
            self._state, self._saved = json.loads(self._saved), None
        return self._state

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state, self._saved = value, None

    def add_result(
        self,
        *,
        campaign: str,
        category: str,
        verdict: str,
        result: dict[str, Any],
        completed_at: datetime,
    ) -> None:
        """Record a completed self-check (committed with the state when the block ends)."""
        if completed_at.tzinfo is None or completed_at.utcoffset() is None:
            raise ValueError("completed_at must be timezone-aware")
        text = dumps_json(result)  # now: a result that is not JSON fails here, as a TypeError
        self._execute(
            sa.insert(selfcheck_results).values(
                user_id=self._user_id,
                campaign=campaign,
                category=category,
                verdict=verdict,
                result=self._sealer.seal(text),
                completed_at=completed_at,
            )
        )

    def _execute(self, statement: sa.Executable) -> None:
        try:
            self._conn.execute(statement)
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc


class Store:
    """Users' conversation state and self-check results in SQLite (default) or PostgreSQL."""

    def __init__(self, url: str, *, sealer: Sealer) -> None:
        """Connect and migrate: the schema is created or upgraded automatically at start.

        `sealer` encrypts what users told the bot; the same keys must be given on every start.
        """
        self._sealer = sealer
        parsed = _parse_url(url)
        self._safe_url = parsed.render_as_string(hide_password=True)
        self._password = parsed.password
        self._engine = _create_engine(parsed)
        # Same pool, but SQLite transactions begin IMMEDIATE: the write lock, taken up front.
        self._write_engine = self._engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        self._idle: list[Connection] = []  # write connections between transactions
        self._closed = False
        try:
            self._migrate()
            self._check_key()
        except BaseException:
            self._engine.dispose()
            raise

    def _check_key(self) -> None:
        """Open the sentinel sealed on the first start (seal it now if there is none).

        A well-formed but wrong key would otherwise start fine and fail every existing user's
        step; this way it is one line at start (issue 8). A sentinel opened with an older key
        of a rotated list is sealed again with the newest, so the list may drop the old key
        once everything else has been re-sealed.
        """
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        select = sa.select(store_meta.c.value).where(store_meta.c.name == SENTINEL_NAME)
        try:
            with self._write_engine.connect() as conn, conn.begin():
                conn.execute(
                    insert(store_meta)
                    .values(name=SENTINEL_NAME, value=self._sealer.seal(SENTINEL_TEXT))
                    .on_conflict_do_nothing(index_elements=["name"])  # workers starting at once
                )
                stored = conn.execute(select).scalar_one()
                try:
                    opened: str | None = self._sealer.open(stored)
                except SealError:
                    opened = None
                if opened != SENTINEL_TEXT:
                    raise WrongKey(
                        "AWARDBOT_SECRET_KEY 与数据库不符：无法解开启动校验值，"
                        "请使用写入这些数据时的密钥（轮换时把旧密钥留在列表后面）"
                        f" (AWARDBOT_SECRET_KEY does not open {self._safe_url}: use the key"
                        " that sealed it; when rotating, keep the old key after the new one)"
                    )
                if not self._sealer.sealed_with_primary(stored):
                    conn.execute(
                        sa.update(store_meta)
                        .where(store_meta.c.name == SENTINEL_NAME)
                        .values(value=self._sealer.seal(SENTINEL_TEXT))
                    )
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc

    def _migrate(self) -> None:
        try:
            conn = self._write_engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"无法连接数据库 {self._safe_url} "
                f"(cannot connect to database {self._safe_url}: {self._reason(exc)})"
            ) from exc
        with conn:
            try:
                with conn.begin():
                    migrations.migrate(conn)
            except migrations.SchemaTooNewError as exc:
                raise StoreError(str(exc)) from None
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"数据库结构升级失败 {self._safe_url} "
                    f"(schema migration failed on {self._safe_url}: {self._reason(exc)})"
                ) from exc

    @property
    def dialect(self) -> str:
        """The database kind: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @contextmanager
    def conversation(self, key: ConversationKey) -> Iterator[ConversationTx]:
        """Lock this user's conversation, load it, and commit what the block saved in ONE
        transaction.

        Two blocks for the same key never interleave — across threads and across processes.
        An exception inside the block rolls everything back and re-raises.
        """
        conn, tx = self._begin_conversation(key)
        try:
            yield tx
        except BaseException:
            try:
                conn.rollback()
            finally:
                conn.close()
            raise
        try:
            conn.commit()
        except SQLAlchemyError as exc:
            conn.close()
            raise self._db_error(exc) from exc
        self._keep(conn)

    def _begin_conversation(self, key: ConversationKey) -> tuple[Connection, ConversationTx]:
        """Begin and lock on a kept connection; one found dead (the server restarted while it
        was kept) is replaced by a new one once, before anything was done on it."""
        kept = True
        conn = self._take()
        while True:
            try:
                conn.begin()
                return conn, self._lock_and_load(conn, key)
            except SQLAlchemyError as exc:
                conn.close()
                lost = isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
                if not (kept and lost):
                    raise self._db_error(exc) from exc
            except BaseException:  # a state sealed with another key, say: never kept
                conn.close()
                raise
            kept, conn = False, self._connect()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction for repositories (identity, nominations, outbox, ...).

        SQLite begins it IMMEDIATE (the write lock, up front); committed when the block ends,
        rolled back if it raises. Database errors surface as StoreError.
        """
        with self._writing() as conn:
            try:
                conn.begin()
            except SQLAlchemyError as exc:
                raise self._db_error(exc) from exc
            try:
                yield conn
            except SQLAlchemyError as exc:
                conn.rollback()
                raise self._db_error(exc) from exc
            except BaseException:
                conn.rollback()
                raise
            try:
                conn.commit()
            except SQLAlchemyError as exc:
                raise self._db_error(exc) from exc

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write connection for one repository transaction: on SQLite a kept one (`_take`),
        on PostgreSQL one from the pool, checked (pre-ping) at checkout, since a server
        restart leaves pooled connections dead and these transactions are not retried."""
        if self._engine.dialect.name != "sqlite":
            with self._connect() as conn:
                yield conn
            return
        conn = self._take()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self._keep(conn)

    def _take(self) -> Connection:
        """A write connection kept from an earlier transaction, or a new one.

        Kept open between transactions, because the pool's checkout, reset and checkin (and
        PostgreSQL's pre-ping, a round trip) cost more than a conversation step's statements;
        one that saw an exception is closed, never kept."""
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _keep(self, conn: Connection) -> None:
        if (
            conn.in_transaction()
            or conn.invalidated
            or self._closed
            or len(self._idle) >= _KEEP_AT_MOST
        ):
            conn.close()
        else:
            self._idle.append(conn)

    def _connect(self) -> Connection:
        """A pooled write connection; the database unreachable is a StoreUnavailable."""
        try:
            return self._write_engine.connect()
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads that take no lock."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc

    @property
    def sealer(self) -> Sealer:
        """Seals and opens personal data stored by repositories."""
        return self._sealer

    def dedicated_connection(self) -> Connection:
        """A connection of its own, in autocommit, for a session-level lock (storage.leader);
        the caller closes it. The database unreachable is a StoreUnavailable."""
        try:
            return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc

    def load_state(self, key: ConversationKey) -> dict[str, Any] | None:
        """The saved state of this conversation, or None; a read-only peek that takes no lock."""
        query = (
            sa.select(conversation_sessions.c.state)
            .join_from(users, conversation_sessions)
            .where(users.c.channel == key.channel, users.c.external_id == key.user_id)
        )
        try:
            with self._engine.connect() as conn:
                stored = conn.execute(query).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc
        return None if stored is None else self._open(stored)

    def results(self, key: ConversationKey) -> list[StoredSelfCheck]:
        """This user's self-check results, oldest first."""
        query = (
            sa.select(selfcheck_results)
            .join_from(selfcheck_results, users)
            .where(users.c.channel == key.channel, users.c.external_id == key.user_id)
            .order_by(selfcheck_results.c.completed_at, selfcheck_results.c.id)
        )
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise self._db_error(exc) from exc
        return [StoredSelfCheck(**{**row, "result": self._open(row["result"])}) for row in rows]

    def close(self) -> None:
        """Close the pooled connections (call once, at shutdown)."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _lock_and_load(self, conn: Connection, key: ConversationKey) -> ConversationTx:
        # PostgreSQL: the user's row and the session's, both locked by one inner-joined
        # SELECT ... FOR UPDATE. Locking the session row too is what makes one statement
        # safe: with only the user's row locked, a statement that waited for it would return
        # the joined session from its old snapshot (a lost update). Without a session row yet:
        # lock the user's row, then read. SQLite already holds the database's write lock
        # (BEGIN IMMEDIATE), so one joined read sees the latest of both.
        who = {"channel": key.channel, "external_id": key.user_id}
        if conn.dialect.name == "sqlite":
            found = HOT(conn, "user_and_session").one(conn, **who)
            if found is None:
                self._insert_user(conn, key)
                row = HOT(conn, "lock_user").one(conn, **who)
                assert row is not None
                user_id, session = row[0], None
            else:
                user_id, session = found[0], (found[1:] if found[1] is not None else None)
        elif (both := HOT(conn, "lock_user_and_session").one(conn, **who)) is not None:
            user_id, session = both[0], both[1:]
        else:  # a new user, or one without a session yet
            lock = HOT(conn, "lock_user")
            row = lock.one(conn, **who)
            if row is None:
                self._insert_user(conn, key)
                # A concurrent first message of the same user may have inserted it: it then
                # holds the row lock, and this waits for its commit.
                row = lock.one(conn, **who)
                assert row is not None
            user_id = row[0]
            session = HOT(conn, "session").one(conn, user_id=user_id)
        if session is None:
            return ConversationTx(conn, user_id, None, 0, self._db_error, self._sealer)
        stored, version, last_sequence = session
        state = self._open(stored)
        tx = ConversationTx(conn, user_id, state, version, self._db_error, self._sealer)
        tx.last_sequence = last_sequence
        return tx

    def _insert_user(self, conn: Connection, key: ConversationKey) -> None:
        """Insert the user, unless a concurrent first message did (rare: once per user)."""
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(users)
            .values(channel=key.channel, external_id=key.user_id, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )

    def _open(self, stored: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = json.loads(self._sealer.open(stored))
        except SealError as exc:
            raise StoreError(str(exc)) from None
        return value

    def _reason(self, exc: BaseException) -> str:
        """The driver's message on one line, the password masked (in case it is echoed)."""
        orig = getattr(exc, "orig", None) or exc
        reason = " ".join(str(orig).split()) or type(orig).__name__
        if self._password:
            reason = reason.replace(str(self._password), "***")
        return reason

    def _db_error(self, exc: SQLAlchemyError) -> StoreError:
        if _transient(exc):
            return StoreUnavailable(
                f"数据库暂时不可用 (database unavailable: {self._safe_url}: {self._reason(exc)})"
            )
        return StoreError(
            f"数据库操作失败 (database error on {self._safe_url}: {self._reason(exc)})"
        )


def _transient(exc: SQLAlchemyError) -> bool:
    """Whether a retry of the same work may succeed: connection lost or refused, pool timed
    out, SQLite busy. Not: a constraint, a type, a missing table (a bug or bad data)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError | sa.exc.InterfaceError):
        return True
    if isinstance(exc, sa.exc.OperationalError):
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            return any(word in str(orig).lower() for word in _SQLITE_TRANSIENT)
        return True  # PostgreSQL: connection refused, server closed it, admin shutdown, ...
    return False


def _parse_url(url: str) -> URL:
    """Accept sqlite:///path and postgresql[+psycopg]:// URLs; anything else is a StoreError."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # The text may hold a password: do not echo it.
        raise StoreError(
            "无法解析数据库地址 (cannot parse database URL: expected sqlite:///path/to/file.db "
            f"or postgresql+psycopg://user@host/db): {type(exc).__name__}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    in_memory = parsed.database in (None, "", ":memory:")
    if backend == "sqlite" and driver in ("", "pysqlite") and not in_memory:
        return parsed
    safe = parsed.render_as_string(hide_password=True)
    raise StoreError(
        f"不支持的数据库地址 {safe} (unsupported database URL {safe}: "
        "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)"
    )


def _enable_wal(cursor: Any) -> None:
    """Switch a SQLite file to WAL, waiting out other processes doing the same.

    Changing the journal mode needs the file to itself, and SQLite answers "database is locked"
    at once — without its busy handler — while another process is switching a new file too
    (several workers starting together; seen in CI). Once a file is in WAL it stays so.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    assert url.database is not None
    try:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"无法创建数据库目录 (cannot create the database directory for {url.database}: "
            f"{exc.strerror or exc})"
        ) from None
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Turn off pysqlite's own BEGIN handling so `_on_begin` decides how transactions start
        # (SQLAlchemy docs, "Transactions with SQLite and the sqlite3 driver").
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        # On the driver's connection: every step begins one, and Core's execute path costs
        # more than the BEGIN itself (storage.prepared).
        statement = _BEGIN[mode]
        try:
            conn.connection.driver_connection.execute(statement)
        except sqlite3.Error as exc:
            # As Core's execute would raise it (a busy database is then a StoreUnavailable,
            # and the connection is not kept).
            raise sa.exc.DBAPIError.instance(
                statement, None, exc, sqlite3.Error, dialect=conn.dialect
            ) from exc

    return engine
