"""kill -9 of `awardbot serve` while its outbox dispatcher sends (issue 8).

N notifications for Telegram chats are in the outbox before the first start, each text with a
unique marker; the real `awardbot serve` (Telegram polling against the fake Bot API) sends them
while it is SIGKILLed at seeded random points of its progress and restarted. A last serve runs
until nothing is pending or left `sending` (a killed worker's claims settle after the
dispatcher's lease) and stops gracefully. Then each marker is counted in the fake's chats and
looked up in the outbox (`support.killing.dispatch_report`), and the counts printed.

What must hold: no notification reaches a chat twice, and a kill leaves at most ONE uncertain
row (failed "outcome unknown", or left `sending`): the one whose send may have happened when
the process died. Issue 8 item 4: today a whole claimed batch is uncertain after a kill, rows
whose send never began included, so this fails on the code before that fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.killing import (
    DATABASES,
    LIBRARIES,
    DispatchPlan,
    RecordingTelegram,
    database_url,
    dispatch_report,
    enqueue_notifications,
    killable_serve,
    new_key,
    open_store,
    send_while_killing,
)

PLAN = DispatchPlan(notifications=200, chats=40, kills=6, seed=4)


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("database", DATABASES)
async def test_kill_serve_while_the_dispatcher_sends(
    tmp_path: Path, database: str, library: str
) -> None:
    key = new_key()
    with database_url(database, tmp_path) as url:
        store = open_store(url, key)
        try:
            enqueue_notifications(store, PLAN)
            async with RecordingTelegram() as fake:
                async with killable_serve(
                    fake, database=url, key=key, library=library, workdir=tmp_path
                ) as serve:
                    run = await send_while_killing(serve, fake, store, PLAN, database=database)
                report = dispatch_report(run, store, fake)
        finally:
            store.close()
    print()
    print(report.details())
    counts, problems = report.counts(), report.details()
    assert counts["kills"] == PLAN.kills, f"fewer kills than planned\n{problems}"
    assert counts["crashes"] == 0, f"a serve exited by itself\n{problems}"
    assert counts["sent twice"] == 0, f"sent twice\n{problems}"
    assert counts["marked delivered, never sent"] == 0, f"delivered, never sent\n{problems}"
    uncertain = counts["failed unknown"] + counts["still sending"]
    assert uncertain <= counts["kills"], f"more uncertain rows than kills\n{problems}"
