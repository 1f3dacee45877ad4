"""A small aiogram FSM storage over SQLite (aiogram ships none): one row per FSM key.

Every `set_state` and `set_data` is its own committed transaction, so what a handler stored is
on disk when it returns, as in our store: WAL and `synchronous=NORMAL`, our SQLite pragmas. The
calls run on the event loop (sqlite3 is synchronous; a commit in WAL mode takes microseconds).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)


class SQLiteStorage(BaseStorage):
    def __init__(self, path: Path | str, key_builder: KeyBuilder | None = None) -> None:
        self.path = str(path)
        self.key_builder = key_builder or DefaultKeyBuilder()
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one statement
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS fsm (key TEXT PRIMARY KEY, state TEXT, data TEXT)"
        )

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        self.db.execute(
            "INSERT INTO fsm (key, state) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
            (self.key_builder.build(key), value),
        )

    async def get_state(self, key: StorageKey) -> str | None:
        row = self.db.execute(
            "SELECT state FROM fsm WHERE key = ?", (self.key_builder.build(key),)
        ).fetchone()
        return None if row is None else row[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO fsm (key, data) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
            (self.key_builder.build(key), json.dumps(dict(data), ensure_ascii=False)),
        )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT data FROM fsm WHERE key = ?", (self.key_builder.build(key),)
        ).fetchone()
        return {} if row is None or row[0] is None else json.loads(row[0])

    async def close(self) -> None:
        self.db.close()
