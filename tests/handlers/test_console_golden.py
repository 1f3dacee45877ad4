"""Golden transcripts: whole console conversations replayed with a fixed clock.

A golden file holds the conversation as a terminal shows it with --show-keys; lines starting
with "> " are what the user typed. Replaying feeds those lines and compares everything.
`pytest --update-golden` rewrites the files from the current behaviour (review the diff!).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.console_harness import CAMPAIGNS, ConsoleHarness
from support.keys import TEST_SEALER

from bot.catalog import load_catalog
from storage.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FILES = sorted(GOLDEN.glob("console_*.txt"))


def inputs_of(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("> ")]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_transcript(path: Path, tmp_path: Path, update_golden: bool) -> None:
    expected = path.read_text(encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path / 'golden.db'}", sealer=TEST_SEALER)
    try:
        console = ConsoleHarness(store)
        console.open()
        for line in inputs_of(expected):
            console.send(line)
        actual = console.transcript
    finally:
        store.close()
    if update_golden:
        path.write_text(actual, encoding="utf-8")
        return
    assert actual == expected


def test_every_category_has_a_golden_transcript_ending_in_a_verdict() -> None:
    names = {c.name for campaign in load_catalog(CAMPAIGNS) for c in campaign.categories}
    covered = set()
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        if "[verdict] " in text:
            covered |= {name for name in names if f"类别：{name}\n" in text}
    assert covered == names
