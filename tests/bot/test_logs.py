"""Logs: a library's traceback is one line, and no credential reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import OneLine, mask

Captured = tuple[logging.Logger, io.StringIO]


@pytest.fixture
def captured() -> Iterator[Captured]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OneLine())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("telegram.ext.Updater")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_library_traceback_becomes_one_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = captured
    try:
        raise ConnectionError("All connection attempts failed")
    except ConnectionError:
        logger.exception("Error while calling `get_updates` one more time")
    assert out.getvalue() == (
        "ERROR telegram.ext.Updater: Error while calling `get_updates` one more time"
        " (ConnectionError: All connection attempts failed)\n"
    )


def test_our_own_tracebacks_are_kept() -> None:
    record = logging.LogRecord("bot.server", logging.ERROR, "f", 1, "boom", (), None)
    try:
        raise ValueError("x")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert OneLine().filter(record)
    assert record.exc_info is not None


def test_tokens_are_masked() -> None:
    url = "https://api.telegram.org/bot123456:AAbc-def_9/getUpdates"
    assert mask(url) == "https://api.telegram.org/bot<token>/getUpdates"
    assert mask("GET /cgi-bin/message/custom/send?access_token=T0K3N&x=1") == (
        "GET /cgi-bin/message/custom/send?access_token=<hidden>&x=1"
    )
    assert (
        mask("gettoken?corpid=ww1&corpsecret=S3CR3T") == "gettoken?corpid=ww1&corpsecret=<hidden>"
    )
