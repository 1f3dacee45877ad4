"""One leader among the workers on one database: who runs the reminder ticker.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a connection of its
own. The lock lives as long as that session: a worker killed with kill -9 loses its connection
and PostgreSQL releases the lock at once, so another worker's next try (every tick, a few
seconds) takes over. APScheduler's own SQLAlchemy job store is not safe to share between
processes (its FAQ says so), which is why the leader is decided here and not by the scheduler.

The lock is the database schema's (its key is made from the schema's name): two deployments in
two schemas of one database, or two test runs side by side, do not take each other's ticker.

SQLite serves one process (DESIGN §5): that process always leads.
"""

from __future__ import annotations

import contextlib
import logging
import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from storage.store import Store, StoreError

log = logging.getLogger(__name__)

# The advisory lock's key: this constant in the high 32 bits ("AWAR"), the schema's CRC-32 in
# the low ones (pg_locks shows them as classid and objid).
TICKER_LOCK = 0x4157_4152


def lock_key(schema: str) -> int:
    """The ticker's advisory-lock key in `schema` (a signed bigint, as PostgreSQL takes it)."""
    return (TICKER_LOCK << 32) | zlib.crc32(schema.encode("utf-8"))


class Leadership:
    """`held()` answers whether this worker leads now, trying to become leader if not."""

    def __init__(self, store: Store, key: int | None = None) -> None:
        self._store = store
        self._key = key  # None: the schema's (lock_key), found on the first connection
        self._conn: Connection | None = None

    def held(self) -> bool:
        if self._store.dialect != "postgresql":
            return True
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except SQLAlchemyError:
                log.warning("ticker: lost the leader's database session; trying again")
                self._drop()
        try:
            conn = self._store.dedicated_connection()
        except StoreError:
            return False
        try:
            if self._key is None:
                self._key = lock_key(
                    str(conn.execute(sa.text("SELECT current_schema()")).scalar())
                )
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            )
        except SQLAlchemyError:
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("ticker: this worker leads")
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):  # the session gone: so is the lock
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()


__all__ = ["TICKER_LOCK", "Leadership", "lock_key"]
