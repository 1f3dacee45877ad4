"""One conversation, every channel: the same questions in the same order and the same verdict.

The script is a self-check that ends in a verdict (tests/golden/console_employment_individual.txt),
then a whole filing with attachments (tests/golden/filing/filing_technical_expert.txt): bind,
consent, eligibility, every field (some re-asked), the attachments, a field changed from the
summary, submit. It is replayed on the console and, through `awardbot serve` and the real SDKs,
on Telegram (python-telegram-bot and aiogram; choices pressed as inline buttons) and on a WeChat
Official Account (plaintext and safe mode; choices as numbered lines). What each channel shows
is rendered as text, whitespace-normalised, and compared with the console, step by step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import pytest
from support import filing_golden
from support.console_harness import FIXED_NOW, ConsoleHarness
from support.filing_golden import seeded_tracking_codes
from support.keys import TEST_SEALER

from storage.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SELF_CHECK = GOLDEN / "console_employment_individual.txt"
FILING = GOLDEN / "filing" / "filing_technical_expert.txt"
PDF = b"%PDF-1.7\n% scanned copy\n%%EOF"


class Driver(Protocol):
    async def send(self, text: str) -> str: ...

    async def upload(self, filename: str, data: bytes) -> str: ...


def inputs(path: Path) -> list[str]:
    return [line[2:] for line in path.read_text(encoding="utf-8").splitlines() if line[:2] == "> "]


SCRIPT = ["/start", *inputs(SELF_CHECK), "/restart", *inputs(FILING)]


class ConsoleDriver:
    """The console, with notifications left to the outbox like on the other channels."""

    def __init__(self, store: Store, files: Path) -> None:
        self.harness = ConsoleHarness(store, user="golden", show_keys=False, files_dir=files)
        self.harness.channel._notifications = None
        self.files = files

    async def send(self, text: str) -> str:
        return self.harness.channel.send(text)

    async def upload(self, filename: str, data: bytes) -> str:
        path = self.files / filename
        path.write_bytes(data)
        return self.harness.channel.send(f"/file {path}")


@asynccontextmanager
async def console(store: Store, tmp_path: Path) -> AsyncIterator[Driver]:
    yield ConsoleDriver(store, tmp_path)


Opener = Callable[[Store, Path], AbstractAsyncContextManager[Driver]]


def _telegram(library: str, mode: str) -> Opener:
    @asynccontextmanager
    async def driver(store: Store, tmp_path: Path) -> AsyncIterator[Driver]:
        from support.drivers.telegram import telegram_driver

        async with telegram_driver(store, library=library, mode=mode, files_dir=tmp_path) as d:
            yield d

    return driver


def _wechat(mode: str) -> Opener:
    @asynccontextmanager
    async def driver(store: Store, tmp_path: Path) -> AsyncIterator[Driver]:
        from support.drivers.wechat import wechat_driver

        async with wechat_driver(store, mode=mode, files_dir=tmp_path) as d:
            yield d

    return driver


CHANNELS: dict[str, Opener] = {
    "console": console,
    "telegram-ptb-webhook": _telegram("ptb", "webhook"),
    "telegram-aiogram-polling": _telegram("aiogram", "polling"),
    "wechat-plaintext": _wechat("plaintext"),
    "wechat-safe": _wechat("safe"),
}


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def replay(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str]]:
    """(input, what the channel showed) for every line of the script, on a fresh database."""
    folder = tmp_path / name
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'golden.db'}", sealer=TEST_SEALER)
    try:
        _, placeholders = filing_golden.clerk_console(store, folder)
        with seeded_tracking_codes(monkeypatch):
            async with CHANNELS[name](store, folder) as driver:
                shown = []
                for line in SCRIPT:
                    if line == "/file {PDF}":
                        answer = await driver.upload("扫描件.pdf", PDF)
                    else:
                        answer = await driver.send(filing_golden.fill(line, placeholders))
                    shown.append((line, normalise(answer)))
    finally:
        store.close()
    return shown


@pytest.fixture(scope="module")
def console_transcript(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    import asyncio

    monkeypatch = pytest.MonkeyPatch()
    try:
        tmp = tmp_path_factory.mktemp("console")
        return asyncio.run(replay("console", tmp, monkeypatch))
    finally:
        monkeypatch.undo()


def test_the_console_transcript_covers_a_verdict_and_a_submitted_filing_with_attachments(
    console_transcript: list[tuple[str, str]],
) -> None:
    shown = " ".join(text for _, text in console_transcript)
    assert "自检结论：符合条件" in shown
    assert "已提交，当前状态：" in shown
    assert sum(1 for line, _ in console_transcript if line == "/file {PDF}") >= 5
    assert FIXED_NOW.year == 2022  # the script's dates are relative to the fixed clock


@pytest.mark.parametrize("name", [n for n in CHANNELS if n != "console"])
async def test_every_channel_shows_what_the_console_shows(
    name: str,
    console_transcript: list[tuple[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transcript = await replay(name, tmp_path, monkeypatch)
    assert len(transcript) == len(console_transcript)
    for (line, expected), (_, actual) in zip(console_transcript, transcript, strict=True):
        assert actual == expected, f"after {line!r}"
