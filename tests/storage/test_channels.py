"""Channel state in the store: delivery dedupe, one shared token refresher, WeChat windows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from conversations.keys import ConversationKey
from storage.channels import (
    Slot,
    WindowOpener,
    cached_token,
    close_window,
    first_delivery,
    open_window,
    platform_tokens,
    prune_deliveries,
    refresh_token,
    reserve_sends,
    take_window_slot,
)
from storage.store import Store

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_a_delivery_is_first_once_and_only_when_its_step_commits(store: Store) -> None:
    key = ConversationKey("telegram", "42")
    with store.conversation(key) as tx:
        assert first_delivery(tx.connection, "telegram", "1001", now=NOW)
        assert not first_delivery(tx.connection, "telegram", "1001", now=NOW)
        assert first_delivery(tx.connection, "wechat", "1001", now=NOW)  # per channel

    def failing_step() -> None:
        with store.conversation(key) as tx:
            assert first_delivery(tx.connection, "telegram", "1002", now=NOW)
            raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError):
        failing_step()
    with store.conversation(key) as tx:  # rolled back with the step: a retry runs again
        assert first_delivery(tx.connection, "telegram", "1002", now=NOW)
        assert not first_delivery(tx.connection, "telegram", "1001", now=NOW)


def test_old_deliveries_are_pruned(store: Store) -> None:
    with store.conversation(ConversationKey("telegram", "42")) as tx:
        first_delivery(tx.connection, "telegram", "old", now=NOW - timedelta(days=3))
        first_delivery(tx.connection, "telegram", "new", now=NOW)
    assert prune_deliveries(store, before=NOW - timedelta(days=1)) == 1
    with store.conversation(ConversationKey("telegram", "42")) as tx:
        assert first_delivery(tx.connection, "telegram", "old", now=NOW)
        assert not first_delivery(tx.connection, "telegram", "new", now=NOW)


def test_concurrent_refreshes_fetch_once_and_share_the_token(store: Store) -> None:
    fetches: list[int] = []
    lock = threading.Lock()

    def fetch() -> tuple[str, int]:
        with lock:
            fetches.append(1)
        time.sleep(0.2)  # a slow platform: the others must wait, not fetch
        return f"token-{len(fetches)}", 7200

    def worker() -> str:
        return refresh_token(
            store, "wechat:app", fetch, now=lambda: NOW, margin=timedelta(minutes=5)
        ).value

    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: worker(), range(4)))
    assert fetches == [1]
    assert tokens == ["token-1"] * 4
    cached = cached_token(store, "wechat:app", now=NOW, margin=timedelta(minutes=5))
    assert cached is not None
    assert cached.value == "token-1"
    assert "token-1" not in repr(cached)
    with store.reading() as conn:  # sealed at rest
        stored = conn.execute(sa.select(platform_tokens.c.token)).scalar_one()
    assert "token-1" not in stored


def test_a_token_near_expiry_or_refused_is_fetched_again(store: Store) -> None:
    values = iter(["a", "b", "c"])

    def fetch() -> tuple[str, int]:
        return next(values), 7200

    margin = timedelta(minutes=5)
    assert refresh_token(store, "t", fetch, now=lambda: NOW, margin=margin).value == "a"
    assert refresh_token(store, "t", fetch, now=lambda: NOW, margin=margin).value == "a"
    later = NOW + timedelta(seconds=7200) - margin
    assert cached_token(store, "t", now=later, margin=margin) is None
    assert refresh_token(store, "t", fetch, now=lambda: later, margin=margin).value == "b"
    refused = refresh_token(store, "t", fetch, now=lambda: later, margin=margin, stale="b")
    assert refused.value == "c"
    # Another worker that saw "b" refused after "c" was fetched does not fetch a fourth.
    again = refresh_token(store, "t", fetch, now=lambda: later, margin=margin, stale="b")
    assert again.value == "c"


def test_a_failed_fetch_keeps_the_old_token(store: Store) -> None:
    refresh_token(store, "t", lambda: ("a", 7200), now=lambda: NOW, margin=timedelta(0))

    def broken() -> tuple[str, int]:
        raise ConnectionError("platform down")

    with pytest.raises(ConnectionError):
        refresh_token(store, "t", broken, now=lambda: NOW, margin=timedelta(0), stale="a")
    assert cached_token(store, "t", now=NOW, margin=timedelta(0)) is not None


def test_a_message_opens_five_sends_for_48_hours(store: Store) -> None:
    assert take_window_slot(store, "wechat", "u", now=NOW) is Slot.CLOSED
    open_window(store, "wechat", "u", WindowOpener.MESSAGE, now=NOW)
    later = NOW + timedelta(hours=47)
    assert [take_window_slot(store, "wechat", "u", now=later) for _ in range(6)] == [
        *[Slot.TAKEN] * 5,
        Slot.USED_UP,
    ]
    assert take_window_slot(store, "wechat", "u", now=NOW + timedelta(hours=48)) is Slot.CLOSED


def test_a_click_opens_three_sends_for_a_minute_but_never_shrinks_a_message_window(
    store: Store,
) -> None:
    open_window(store, "wechat", "u", WindowOpener.EVENT, now=NOW)
    slots = [take_window_slot(store, "wechat", "u", now=NOW) for _ in range(4)]
    assert slots == [Slot.TAKEN, Slot.TAKEN, Slot.TAKEN, Slot.USED_UP]
    assert take_window_slot(store, "wechat", "u", now=NOW + timedelta(minutes=1)) is Slot.CLOSED

    open_window(store, "wechat", "v", WindowOpener.MESSAGE, now=NOW)
    open_window(store, "wechat", "v", WindowOpener.EVENT, now=NOW + timedelta(minutes=5))
    in_a_day = NOW + timedelta(days=1)
    assert take_window_slot(store, "wechat", "v", now=in_a_day) is Slot.TAKEN


def test_the_platform_closing_a_window_is_believed(store: Store) -> None:
    open_window(store, "wechat", "u", WindowOpener.MESSAGE, now=NOW)
    close_window(store, "wechat", "u", used_up=True)
    assert take_window_slot(store, "wechat", "u", now=NOW) is Slot.USED_UP
    open_window(store, "wechat", "u", WindowOpener.MESSAGE, now=NOW)
    close_window(store, "wechat", "u", used_up=False)
    assert take_window_slot(store, "wechat", "u", now=NOW) is Slot.CLOSED


def test_sends_to_one_recipient_are_limited_per_window_across_workers(store: Store) -> None:
    window = timedelta(minutes=1)

    def reserve(now: datetime, count: int = 1) -> timedelta | None:
        return reserve_sends(store, "wecom", "lisi", count=count, limit=30, window=window, now=now)

    with ThreadPoolExecutor(4) as pool:  # four workers racing for one member's minute
        waits = list(pool.map(lambda i: reserve(NOW + timedelta(seconds=i / 100)), range(40)))
    assert sum(1 for wait in waits if wait is None) == 30
    refused = [wait for wait in waits if wait is not None]
    # The racers' clocks are up to 0.39 s apart: one refused with an earlier `now` than the
    # oldest send it counts waits up to that much longer than the window.
    skew = timedelta(seconds=0.39)
    assert all(timedelta(0) < wait <= window + skew for wait in refused)
    later = NOW + timedelta(seconds=59)
    assert reserve(later) is not None
    assert reserve(NOW + window + timedelta(seconds=1)) is None  # the first ones left
    assert (
        reserve_sends(store, "wecom", "wangwu", count=30, limit=30, window=window, now=NOW) is None
    )  # another member has their own 30
    with pytest.raises(ValueError, match="count must be"):
        reserve(NOW, count=31)


def test_a_batch_that_does_not_fit_takes_no_slot(store: Store) -> None:
    window = timedelta(minutes=1)
    for second in range(28):
        assert (
            reserve_sends(
                store,
                "wecom",
                "u",
                count=1,
                limit=30,
                window=window,
                now=NOW + timedelta(seconds=second),
            )
            is None
        )
    # 3 pieces need 1 more slot than the 2 left: wait for the oldest to leave, record nothing.
    wait = reserve_sends(
        store, "wecom", "u", count=3, limit=30, window=window, now=NOW + timedelta(seconds=30)
    )
    assert wait == timedelta(seconds=30)
    fits = reserve_sends(
        store, "wecom", "u", count=2, limit=30, window=window, now=NOW + timedelta(seconds=30)
    )
    assert fits is None
