"""The timestamp window and the nonce ledger of signed pushes (`handlers.pushes`, issue 8):
the in-process ledger follows the store's rule, the guard refuses what it must."""

from __future__ import annotations

import datetime as dt

import pytest
from support.console_harness import FIXED_NOW

from bot.channels import StorePushLedger
from handlers.base import PushLedger, PushSeen
from handlers.pushes import LocalPushLedger, PushGuard, PushRefused
from storage.store import Store

SECOND = dt.timedelta(seconds=1)


def ledgers(store: Store) -> list[PushLedger]:
    return [LocalPushLedger(), StorePushLedger(store)]


def test_the_local_ledger_tells_retries_from_replays_as_the_stores_does(store: Store) -> None:
    for ledger in ledgers(store):
        seen = ledger.seen
        assert seen("wechat", "n1", "sig-a", now=FIXED_NOW) is PushSeen.NEW
        assert seen("wechat", "n1", "sig-a", now=FIXED_NOW + 5 * SECOND) is PushSeen.RETRY
        assert seen("wechat", "n1", "sig-b", now=FIXED_NOW + 6 * SECOND) is PushSeen.REPLAY
        assert seen("wechat", "n1", "sig-a", now=FIXED_NOW + 61 * SECOND) is PushSeen.REPLAY
        assert seen("wecom", "n1", "sig-b", now=FIXED_NOW) is PushSeen.NEW  # per channel
        assert seen("wechat", "n2", "sig-a", now=FIXED_NOW) is PushSeen.NEW


def test_the_local_ledger_forgets_old_nonces_and_stays_bounded() -> None:
    ledger = LocalPushLedger(kept=dt.timedelta(hours=2), limit=3)
    for n in range(5):
        assert ledger.seen("wechat", f"n{n}", "s", now=FIXED_NOW) is PushSeen.NEW
    assert len(ledger._seen) == 3  # noqa: SLF001 - the bound is the point
    later = FIXED_NOW + dt.timedelta(hours=3)
    assert ledger.seen("wechat", "n4", "s", now=later) is PushSeen.NEW  # long refused by age
    assert len(ledger._seen) == 1  # noqa: SLF001


@pytest.mark.parametrize(
    ("timestamp", "refused"),
    [
        (str(int(FIXED_NOW.timestamp())), False),
        (str(int(FIXED_NOW.timestamp()) - 300), False),
        (str(int(FIXED_NOW.timestamp()) + 300), False),
        (str(int(FIXED_NOW.timestamp()) - 301), True),
        (str(int(FIXED_NOW.timestamp()) + 301), True),
        ("", True),
        ("1666229400.0", True),
        ("-1666229400", True),
        ("١٦٦٦٢٢٩٤٠٠", True),  # digits, but not ASCII ones
        ("9" * 40, True),
    ],
)
def test_the_guard_takes_only_timestamps_within_the_window(timestamp: str, refused: bool) -> None:
    guard = PushGuard("wechat", None, max_age=300, clock=lambda: FIXED_NOW)
    if refused:
        with pytest.raises(PushRefused) as caught:
            guard.check_time(timestamp)
        assert caught.value.reason == "stale"
    else:
        guard.check_time(timestamp)
