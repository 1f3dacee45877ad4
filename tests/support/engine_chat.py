"""The self-check engine driven as the runtime drives it, with no store and no channel: the
state between messages is kept here (tests/conversations/test_engine.py has its own Driver)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from bot import catalog as bot_catalog
from conversations.engine import Engine, Inbound, Reply, Step

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2022, 10, 20, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Chat:
    """One user's self-check: send a message, read the replies and what is asked next."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.engine = Engine(bot_catalog.load_catalog(ROOT / "campaigns"), clock=lambda: now)
        self.last: Step = self.engine.start(None)
        self.state: dict[str, Any] = self.last.state

    def send(self, text: str) -> list[Reply]:
        self.last = self.engine.resume(self.state, Inbound(text))
        self.state = self.last.state
        return self.last.replies

    @property
    def asking(self) -> str | None:
        return self.last.replies[-1].key

    def text(self) -> str:
        return "\n".join(r.text for r in self.last.replies)
