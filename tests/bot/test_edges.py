"""`bot.edges`: the channels' protocols on a real store (SQLite and PostgreSQL), and the
store's errors as the edge's own, so no adapter ever has to catch a storage exception."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from support.outage import blinking_store

from bot.edges import StoreReplyLedger, StoreReplyWindow, StoreSendBudget, StoreTokenCache
from bot.runtime import REPLY_GRACE
from handlers import ports
from handlers.base import Unavailable
from handlers.ports import EdgeError, Slot, Token, WindowOpener
from storage import channels, outbox
from storage.store import Store, StoreError

T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)
MARGIN = timedelta(minutes=5)
NAME = "wechat:wx-app"


def _fetch(value: str = "tok-1", expires_in: int = 7200) -> Callable[[], tuple[str, int]]:
    return lambda: (value, expires_in)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(ports.Slot, channels.Slot), (ports.WindowOpener, channels.WindowOpener)],
)
def test_every_storage_value_has_its_edge_value(ours: Any, theirs: Any) -> None:
    # The edges translate by value: a member added on one side only would fail at run time.
    assert {member.value for member in ours} == {member.value for member in theirs}


def test_the_token_cache_keeps_and_refreshes(store: Store) -> None:
    tokens = StoreTokenCache(store)
    assert tokens.cached(NAME, now=T0, margin=MARGIN) is None

    fetched = tokens.refresh(NAME, _fetch(), now=lambda: T0, margin=MARGIN)

    assert fetched == Token("tok-1", T0 + timedelta(seconds=7200))
    assert isinstance(fetched, ports.Token)  # the handlers' type, not storage's
    assert tokens.cached(NAME, now=T0, margin=MARGIN) == fetched
    again = tokens.refresh(NAME, _fetch("tok-2"), now=lambda: T0, margin=MARGIN, stale="tok-1")
    assert again.value == "tok-2"
    assert "tok-2" not in repr(again)  # a credential


def test_what_the_fetch_raises_passes_as_it_is(store: Store) -> None:
    class Refused(Exception):
        pass

    def refused() -> tuple[str, int]:
        raise Refused("gettoken errcode 40013")

    with pytest.raises(Refused):
        StoreTokenCache(store).refresh(NAME, refused, now=lambda: T0, margin=MARGIN)


def test_the_reply_window_opens_counts_and_closes(store: Store) -> None:
    windows = StoreReplyWindow(store)
    assert windows.take("wechat", "o-1", now=T0) is Slot.CLOSED

    windows.open("wechat", "o-1", WindowOpener.EVENT, now=T0)
    taken = [windows.take("wechat", "o-1", now=T0) for _ in range(4)]

    assert taken == [Slot.TAKEN, Slot.TAKEN, Slot.TAKEN, Slot.USED_UP]
    assert all(isinstance(slot, ports.Slot) for slot in taken)
    windows.open("wechat", "o-1", WindowOpener.MESSAGE, now=T0)
    windows.close("wechat", "o-1", used_up=False)
    assert windows.take("wechat", "o-1", now=T0) is Slot.CLOSED


def test_the_send_budget_counts_per_recipient(store: Store) -> None:
    sends = StoreSendBudget(store)
    window = timedelta(minutes=1)

    assert sends.reserve("wecom", "lisi", count=2, limit=3, window=window, now=T0) is None
    wait = sends.reserve("wecom", "lisi", count=2, limit=3, window=window, now=T0)

    assert wait == window
    assert sends.reserve("wecom", "zhangsan", count=3, limit=3, window=window, now=T0) is None
    with pytest.raises(ValueError, match="count must be"):
        sends.reserve("wecom", "lisi", count=4, limit=3, window=window, now=T0)


def _calls(store: Store) -> dict[str, Callable[[], object]]:
    tokens, windows = StoreTokenCache(store), StoreReplyWindow(store)
    sends = StoreSendBudget(store)
    window = timedelta(minutes=1)
    return {
        "cached": lambda: tokens.cached(NAME, now=T0, margin=MARGIN),
        "refresh": lambda: tokens.refresh(NAME, _fetch(), now=lambda: T0, margin=MARGIN),
        "open": lambda: windows.open("wechat", "o-1", WindowOpener.MESSAGE, now=T0),
        "take": lambda: windows.take("wechat", "o-1", now=T0),
        "close": lambda: windows.close("wechat", "o-1", used_up=True),
        "reserve": lambda: sends.reserve(
            "wecom", "lisi", count=1, limit=30, window=window, now=T0
        ),
    }


CALLS = ["cached", "refresh", "open", "take", "close", "reserve"]


@pytest.mark.parametrize("call", CALLS)
def test_the_store_unreachable_is_unavailable_not_a_storage_error(call: str) -> None:
    # A webhook answers Unavailable with a 503 and the platform retries; the adapter catches
    # no storage exception (DESIGN §5).
    with blinking_store() as (store, proxy):
        proxy.cut()
        with pytest.raises(Unavailable) as caught:
            _calls(store)[call]()
        proxy.restore()
        _calls(store)[call]()  # back: the same call works

    assert not isinstance(caught.value, StoreError)
    assert "database unavailable" in str(caught.value)  # the store's one line, kept


@pytest.mark.parametrize("call", CALLS)
def test_another_store_failure_is_an_edge_error(store: Store, call: str) -> None:
    # Not a retry's business (here: the tables are gone): EdgeError, not StoreError.
    with store.transaction() as conn:
        for table in ("platform_tokens", "reply_windows", "send_log", "send_keys"):
            conn.execute(sa.text(f"DROP TABLE {table}"))

    with pytest.raises(EdgeError) as caught:
        _calls(store)[call]()

    assert not isinstance(caught.value, StoreError | Unavailable)
    assert "database error" in str(caught.value)


def test_taking_a_stored_reply_claims_and_marks_it_in_flight_at_once(store: Store) -> None:
    """A worker killed right after it took a reply leaves a row of known state (its send may
    have begun: settled as unknown outcome, never sent twice), not a row claimed and not
    started that nobody sends until the lease ends (the kill suite caught such a reply
    arriving after its user had moved on)."""
    key = "reply:telegram:1013:000"
    with store.transaction() as conn:
        reply = outbox.OutboxMessage(
            key, "telegram", "810001", "[]", kind="reply", delay=REPLY_GRACE
        )
        outbox.enqueue(conn, store.sealer, [reply], now=T0)
    ticket = StoreReplyLedger(store, "serve-2", clock=lambda: T0).take("telegram", "1013:000")
    assert ticket is not None
    found = outbox.find(store, key)
    assert found is not None
    assert found.status == outbox.OutboxStatus.SENDING
    assert found.started_at is not None  # in the same transaction as the claim
