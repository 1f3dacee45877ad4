"""`awardbot serve` in-process for tests: the real Server over a real store, on a free port.

    async with serving(store, {"AWARDBOT_TELEGRAM_TOKEN": ...}, clock=...) as server:
        server.url      # http://127.0.0.1:<port>
        server.gateway  # steps in flight, metrics
        server.runtime

Channel settings come from the `env` mapping exactly as `awardbot serve` reads them from `.env`
(nothing else of the process environment is read), so a test configures a channel the way a
user does, pointing its API base at a fake server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.server import Server
from bot.settings import Settings, load_settings
from bot.wiring import build_runtime
from storage.store import Store
from support.console_harness import CAMPAIGNS, FIXED_NOW, SHARED_FILES, catalog


def settings_for(env: Mapping[str, str], *, files_dir: Path | None = None) -> Settings:
    values = {
        "AWARDBOT_CAMPAIGNS_DIR": str(CAMPAIGNS),
        "AWARDBOT_ATTACHMENTS_DIR": str(files_dir or SHARED_FILES),
        "AWARDBOT_DATABASE_URL": "sqlite://",  # unused: the test's store is passed in
        **env,
    }
    return load_settings(values, dotenv=Path("/nonexistent/.env"))


@asynccontextmanager
async def serving(
    store: Store,
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    files_dir: Path | None = None,
    dispatch_every: float = 0.2,
    **options: object,
) -> AsyncIterator[Server]:
    settings = settings_for(env or {}, files_dir=files_dir)
    now = clock or (lambda: FIXED_NOW)
    runtime = build_runtime(settings, catalog(), store, clock=now)
    server = Server(
        settings,
        store,
        runtime,
        clock=now,
        dispatch_every=dispatch_every,
        **options,  # type: ignore[arg-type]
    )
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()
