"""Replaying a filing golden transcript: a bound clerk, placeholders, seeded tracking codes.

Inputs in the files use `{INVITE}` (the clerk's invitation code, made fresh for each replay)
and `{PDF}` (a small PDF file); tracking codes come from a seeded sequence so the transcript is
the same on every run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conversations.identity import Role
from storage import invites
from storage import nominations as noms
from storage.store import Store
from support.console_harness import FIXED_NOW, ConsoleHarness, regions

UNITS = {
    "person": invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K"),
    "unit": invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K"),
}


@contextmanager
def seeded_tracking_codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    counter = itertools.count(1)
    monkeypatch.setattr(noms, "new_tracking_code", lambda: f"GOLDEN{next(counter):04d}")
    yield


def clerk_console(
    store: Store, tmp_path: Path, *, clock: Callable[[], datetime] | None = None
) -> tuple[ConsoleHarness, dict[str, str]]:
    """A console whose user will bind with `{INVITE}`; returns it and the placeholders."""
    with store.transaction() as conn:
        code = invites.create_invite(
            conn,
            role=Role.CLERK,
            region=regions().get("220104"),
            unit=UNITS["person"],
            now=FIXED_NOW,
            ttl=timedelta(days=7),
        ).code
    pdf = tmp_path / "扫描件.pdf"
    pdf.write_bytes(b"%PDF-1.7\n% scanned copy\n%%EOF")
    console = ConsoleHarness(store, user="clerk", files_dir=tmp_path / "attachments", clock=clock)
    return console, {"{INVITE}": code, "{PDF}": str(pdf)}


def fill(line: str, placeholders: dict[str, str]) -> str:
    for key, value in placeholders.items():
        line = line.replace(key, value)
    return line
