"""Drive the console channel in-process: the real engine, runtime and a real SQLite store."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot.catalog import load_catalog
from bot.edges import StoreAttachments
from bot.exports import document_worker
from bot.runtime import Runtime
from bot.wiring import CalendarWorkdays, console_notifier, workday_end_from
from conversations.assistant import Assistant
from conversations.campaign import Catalog
from conversations.effects import describe
from conversations.engine import Engine
from conversations.keys import Channel, ConversationKey
from handlers.console import ConsoleChannel
from notifications.calendar import WorkdayCalendar
from storage.files import FileStore
from storage.planning import Planning
from storage.regions import Regions, load_regions
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
# Content-addressed and sealed with the test key: tests may share one folder safely.
SHARED_FILES = Path(tempfile.gettempdir()) / "awardbot-test-attachments"
FIXED_NOW = dt.datetime(2022, 10, 20, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@functools.cache
def catalog() -> Catalog:
    return load_catalog(CAMPAIGNS)


@functools.cache
def regions() -> Regions:
    return load_regions(CAMPAIGNS / "regions.yaml")


class ConsoleHarness:
    """One console user over a store; `transcript` records the conversation like a terminal."""

    def __init__(
        self,
        store: Store,
        *,
        user: str = "tester",
        show_keys: bool = True,
        files_dir: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        workday_end: Callable[[dt.date, int], dt.date] | None = None,
        downloads: Path | None = None,
    ) -> None:
        """With `downloads`, files the bot hands over are saved there (as `awardbot console`
        does) and document jobs run after each step (bot.exports), their files saved too."""
        engine = Engine(catalog(), clock=clock or (lambda: FIXED_NOW))
        runtime = Runtime(
            Assistant(catalog(), engine),
            store,
            regions(),
            files=FileStore(files_dir or SHARED_FILES, store.sealer),
            workday_end=workday_end
            or workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
            planning=Planning(
                catalog(),
                regions(),
                CalendarWorkdays(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
            ),
        )
        self.runtime = runtime
        self.effects: list[str] = []  # of the last step, as the golden transcripts show them
        runtime.effects_seen = lambda effects: self.effects.extend(describe(effects))
        key = ConversationKey(Channel.CONSOLE.value, user)
        documents = None
        if downloads is not None:
            documents = document_worker(runtime, f"console-test-{user}").run_due
        self.channel = ConsoleChannel(
            lambda: runtime.open(key),
            lambda text, upload=None: runtime.handle(key, text, upload),
            show_keys=show_keys,
            notifications=console_notifier(
                store,
                user,
                engine.clock,
                documents=documents,
                replies=lambda payload: self.channel.render_stored(payload),
            ),
            attachments=(
                StoreAttachments(store, runtime.files) if downloads is not None else None
            ),
            downloads=downloads,
        )
        self.parts: list[str] = []
        self.last = ""

    def open(self) -> str:
        self.effects = []
        self.last = self.channel.open()
        self.parts.append(self.last + self.effect_lines())
        return self.last

    def send(self, line: str) -> str:
        self.effects = []
        self.last = self.channel.send(line)
        self.parts.append(f"> {line}\n{self.last}" + self.effect_lines())
        return self.last

    def effect_lines(self) -> str:
        """The last step's effects, one `= Effect(…)` line each, after its text."""
        return "".join(f"\n= {e}" for e in self.effects)

    @property
    def transcript(self) -> str:
        return "\n\n".join(self.parts) + "\n"

    def asking(self) -> str | None:
        """The key of the question the last output ends with (needs show_keys)."""
        for line in reversed(self.last.splitlines()):
            if line.startswith("[") and "] " in line and not line.startswith("[verdict]"):
                return line[1 : line.index("]")]
        return None

    def options(self) -> list[tuple[str, str]]:
        """(number, value) of the choices of the last question."""
        out = []
        block = self.last.split("\n\n")[-1]
        for line in block.splitlines():
            head, sep, rest = line.partition(". ")
            if sep and head.isdigit() and rest.endswith("]") and " [" in rest:
                out.append((head, rest[rest.rindex(" [") + 2 : -1]))
        return out

    def verdict(self) -> str | None:
        for line in self.last.splitlines():
            if line.startswith("[verdict] "):
                return line.removeprefix("[verdict] ")
        return None
