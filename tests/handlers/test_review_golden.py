"""The review chain as one golden transcript: a clerk files, the nominee follows, a county office
returns, the clerk corrects and resubmits, two officials of one city act on it at once.

Each step is recorded with its effects (`= Move(…)`, `= Notify(…)`, `= Audit(…)`) beside its
text, so a double audit, a wrong recipient or a move the core did not decide is a diff. Lines
`[who] > text` are what each person typed; `[clock] > YYYY-MM-DD` moves the shared clock.
`pytest --update-golden` rewrites the file (review the diff!).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.console_harness import FIXED_NOW, ConsoleHarness, regions
from support.filing_golden import clerk_console, fill, seeded_tracking_codes
from support.keys import TEST_SEALER

from conversations.identity import Level, Role
from storage import invites
from storage.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "review" / "review_chain.txt"
FILING = Path(__file__).resolve().parents[1] / "golden" / "filing" / "filing_technical_expert.txt"
OFFICES = {  # who -> (region, level)
    "县级": ("220104", Level.COUNTY),
    "市级A": ("220100", Level.CITY),
    "市级B": ("220100", Level.CITY),
}


def script(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith("[") and "] > " in line:
            who, _, typed = line[1:].partition("] > ")
            out.append((who, typed))
    return out


def test_review_chain_golden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool
) -> None:
    expected = GOLDEN.read_text(encoding="utf-8")
    now = [FIXED_NOW]
    store = Store(f"sqlite:///{tmp_path / 'golden.db'}", sealer=TEST_SEALER)
    parts: list[str] = []
    try:
        with seeded_tracking_codes(monkeypatch):
            clerk, placeholders = clerk_console(store, tmp_path, clock=lambda: now[0])
            clerk.open()
            # The clerk files the technical-expert nomination of the filing golden, unrecorded.
            for line in [line[2:] for line in FILING.read_text("utf-8").splitlines()
                         if line.startswith("> ")]:  # fmt: skip
                clerk.send(fill(line, placeholders))
            people = {"经办人": clerk, "被推荐人": ConsoleHarness(store, user="nominee",
                                                             clock=lambda: now[0])}  # fmt: skip
            people["被推荐人"].open()
            for who, (region, level) in OFFICES.items():
                with store.transaction() as conn:
                    code = invites.create_invite(
                        conn, role=Role.OFFICIAL, region=regions().get(region), level=level,
                        now=FIXED_NOW, ttl=dt.timedelta(days=30),
                    ).code  # fmt: skip
                people[who] = ConsoleHarness(store, user=f"office{len(people)}",
                                             clock=lambda: now[0])  # fmt: skip
                people[who].open()
                people[who].send(f"/bind {code}")
            for who, typed in script(expected):
                if who == "clock":
                    now[0] = dt.datetime.combine(dt.date.fromisoformat(typed), FIXED_NOW.timetz())
                    parts.append(f"[clock] > {typed}")
                    continue
                person = people[who]
                out = person.send(fill(typed, placeholders))
                parts.append(f"[{who}] > {typed}\n{out}{person.effect_lines()}")
    finally:
        store.close()
    actual = "\n\n".join(parts) + "\n"
    if update_golden:
        GOLDEN.write_text(actual, encoding="utf-8")
        return
    assert actual == expected
