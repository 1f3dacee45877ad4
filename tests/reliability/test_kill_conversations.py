"""kill -9 of `awardbot serve` while users talk to it through the fake Bot API (issue 8).

The real `awardbot serve` runs as a child process, Telegram in polling mode against the fake Bot
API; bounded simulated users go through a self-check one message at a time while the serve is
SIGKILLed at seeded random moments and restarted. After the run the fake's chat histories, the
store and a replay of the committed updates through the engine are compared
(`support.killing.conversation_report`), and the counts printed (`pytest -s` shows them).

What must hold after any kill: no reply twice, no bot message that no committed update explains,
no answer applied twice or lost (an update Telegram was told is done but whose step never
committed), and every conversation's stored state is what its committed updates make it.

Replies are effects of the step (issue 9): stored with it, one outbox row per reply, taken by
the adapter just before each is sent, delivered by the dispatcher when no one took them. So a
reply is lost only if the kill hit while that very reply was being sent (its row `sending` with
its send begun: of unknown outcome, since the Bot API has no idempotency key to resend it
safely). The test asserts exactly that: replies lost <= such rows; on the main before, 27 of 500
replies were lost over 19 kills, every one of them a step that had committed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.killing import (
    DATABASES,
    LIBRARIES,
    ConversationPlan,
    RecordingTelegram,
    conversation_report,
    database_url,
    killable_serve,
    new_key,
    open_store,
    talk_while_killing,
    uncertain_replies,
)

FAST = ConversationPlan(users=3, messages=8, kills=2, seed=3, uptime=(1.5, 3.0), budget=60)
LONG = ConversationPlan(users=8, messages=12, kills=6, seed=8, uptime=(0.8, 2.0), budget=300)
AT_CONFIRM = ConversationPlan(
    users=4, messages=10, kills=4, seed=5, uptime=(0.5, 1.5), on_confirm=True, budget=240
)


async def _run(tmp_path: Path, database: str, library: str, plan: ConversationPlan) -> None:
    key = new_key()
    with database_url(database, tmp_path) as url:
        async with RecordingTelegram() as fake:
            async with killable_serve(
                fake, database=url, key=key, library=library, workdir=tmp_path
            ) as serve:
                run = await talk_while_killing(serve, fake, plan, database=database)
            store = open_store(url, key)
            try:
                report = conversation_report(run, store, fake)
                uncertain = uncertain_replies(store)
            finally:
                store.close()
    print()
    print(report.details())
    counts, problems = report.counts(), report.details()
    assert counts["kills"] >= 1, f"the users were done before the first kill\n{problems}"
    for name in (
        "crashes",
        "replies duplicated",
        "replies unexplained",
        "answers applied twice",
        "states diverged",
        "answers lost",
        "updates never taken",
    ):
        assert counts[name] == 0, f"{name}\n{problems}"
    # A reply is lost only when the kill hit its own send (see the module docstring).
    print(f"replies of unknown outcome (killed mid-send): {uncertain}")
    assert counts["replies lost"] <= uncertain, f"replies lost\n{problems}"


async def test_kill_serve_while_three_users_talk_sqlite(tmp_path: Path) -> None:
    """The fast case `make test` runs: 3 users, 2 kills, SQLite, python-telegram-bot."""
    await _run(tmp_path, "sqlite", "ptb", FAST)


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("database", DATABASES)
async def test_kill_serve_while_eight_users_talk(
    tmp_path: Path, database: str, library: str
) -> None:
    """8 users x 12 messages, 6 kills, on both databases and both libraries."""
    await _run(tmp_path, database, library, LONG)


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("database", DATABASES)
async def test_kill_serve_the_moment_telegram_is_told_an_update_is_done(
    tmp_path: Path, database: str, library: str
) -> None:
    """Killed inside the getUpdates whose offset confirms an update: Telegram never sends that
    update again, so its step must have committed by then, or the answer is lost."""
    await _run(tmp_path, database, library, AT_CONFIRM)
