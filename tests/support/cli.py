"""`bot.cli.main` in process, as an operator's shell would run it: only the test's database,
key and attachments folder in the environment, the test's folder as the working directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from storage.store import Store
from support.keys import TEST_KEY, TEST_SEALER


def cli_store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """For a `db` fixture: the database `main` uses (SQLite or PostgreSQL), also open as a
    Store for the test."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", store_url)
    monkeypatch.setenv("AWARDBOT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    with Store(store_url, sealer=TEST_SEALER) as store:
        yield store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`awardbot ARGS…`: the exit code, stdout and stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
