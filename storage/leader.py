"""One leader among the workers on one database: who runs the reminder ticker.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a connection of its
own. The lock lives as long as that session: a worker killed with kill -9 loses its connection
and PostgreSQL releases the lock at once, so another worker's next try (every tick, a few
seconds) takes over. APScheduler's own SQLAlchemy job store is not safe to share between
processes (its FAQ says so), which is why the leader is decided here and not by the scheduler.

SQLite serves one process (DESIGN §5): that process always leads.
"""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from storage.store import Store, StoreError

log = logging.getLogger(__name__)

# The advisory lock's key: any constant the other users of the database do not use.
TICKER_LOCK = 0x4157_4152_4442  # "AWARDB"


class Leadership:
    """`held()` answers whether this worker leads now, trying to become leader if not."""

    def __init__(self, store: Store, key: int = TICKER_LOCK) -> None:
        self._store = store
        self._key = key
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


__all__ = ["TICKER_LOCK", "Leadership"]
