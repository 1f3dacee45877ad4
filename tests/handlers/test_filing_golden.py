"""Golden transcripts of whole filing conversations, one per category.

Each shows a clerk binding, filing with a bad value re-asked at several fields, a required
attachment missing at the first submit, one field changed from the summary, and the submit.
Replayed with a fixed clock and seeded tracking codes; `pytest --update-golden` rewrites them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.console_harness import CAMPAIGNS
from support.filing_golden import clerk_console, fill, seeded_tracking_codes
from support.keys import TEST_SEALER

from bot.catalog import load_catalog
from storage.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "filing"
FILES = sorted(GOLDEN.glob("filing_*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_filing_golden(
    path: Path, tmp_path: Path, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = path.read_text(encoding="utf-8")
    inputs = [line[2:] for line in expected.splitlines() if line.startswith("> ")]
    store = Store(f"sqlite:///{tmp_path / 'golden.db'}", sealer=TEST_SEALER)
    try:
        with seeded_tracking_codes(monkeypatch):
            console, placeholders = clerk_console(store, tmp_path)
            parts = [console.open() + console.effect_lines()]
            for line in inputs:
                out = console.send(fill(line, placeholders))
                parts.append(f"> {line}\n{out}{console.effect_lines()}")
    finally:
        store.close()
    actual = "\n\n".join(parts) + "\n"
    for value in placeholders.values():
        assert value not in actual  # no invitation code or local path in a transcript
    if update_golden:
        path.write_text(actual, encoding="utf-8")
        return
    assert actual == expected


def test_every_category_has_a_filing_transcript_that_submits() -> None:
    names = {c.name for campaign in load_catalog(CAMPAIGNS) for c in campaign.categories}
    covered = set()
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        if "已提交，当前状态：" in text and "还不能提交：缺少必需的附件" in text:
            covered |= {name for name in names if f"类别：{name}\n" in text}
    assert covered == names
