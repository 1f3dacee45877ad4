"""A whole filing over Telegram, attachments sent as documents, answers like the console's.

Replays a console golden transcript (tests/golden/filing): every `/file` line becomes a document
the user sends; buttons are pressed where the input is a choice's value or number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.drivers.telegram import telegram_bot
from support.filing_golden import clerk_console, fill, seeded_tracking_codes

from storage.store import Store

GOLDEN = (
    Path(__file__).resolve().parents[2] / "golden" / "filing" / "filing_migrant_collective.txt"
)
KEY = re.compile(r"^\[[a-z0-9_:.-]+\] ", re.MULTILINE)
VALUE = re.compile(r" \[[^\]\n]+\]$", re.MULTILINE)
VERDICT = re.compile(r"^\[verdict\] .*\n", re.MULTILINE)


def plain(console_text: str) -> str:
    """A show-keys console answer as any channel shows it, whitespace normalised."""
    shown = "\n".join(line for line in console_text.splitlines() if not line.startswith("= "))
    text = VALUE.sub("", KEY.sub("", VERDICT.sub("", shown)))
    return " ".join(text.split())


def exchanges(transcript: str) -> list[tuple[str, str]]:
    """(input, expected answer) pairs of a console transcript."""
    blocks = transcript.split("\n> ")[1:]
    pairs = []
    for block in blocks:
        line, _, answer = block.partition("\n")
        pairs.append((line, answer))
    return pairs


def golden_setup(store: Store, tmp_path: Path) -> tuple[dict[str, str], tuple[str, bytes]]:
    """The invitation code and the PDF the console transcript used."""
    _, placeholders = clerk_console(store, tmp_path)
    pdf = Path(placeholders["{PDF}"])
    return placeholders, (pdf.name, pdf.read_bytes())


@pytest.mark.parametrize(("library", "mode"), [("ptb", "webhook"), ("aiogram", "polling")])
async def test_filing_with_attachments_matches_the_console(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library: str, mode: str
) -> None:
    pairs = exchanges(GOLDEN.read_text(encoding="utf-8"))
    with seeded_tracking_codes(monkeypatch):
        placeholders, (pdf_name, pdf_bytes) = golden_setup(store, tmp_path)
        async with telegram_bot(
            store, library=library, mode=mode, files_dir=tmp_path / "attachments"
        ) as tg:
            user = tg.driver()
            first, _ = pairs[0]
            assert "绑定成功" in await user.send(fill(first, placeholders))
            uploads = 0
            for line, expected in pairs[1:]:
                if line.startswith("/file "):
                    uploads += 1
                    answer = await user.upload(pdf_name, pdf_bytes)
                else:
                    answer = await user.send(fill(line, placeholders))
                assert " ".join(answer.split()) == plain(expected), line
            downloads = tg.fake.calls_of("download")
    assert uploads >= 1
    assert len(downloads) == uploads
