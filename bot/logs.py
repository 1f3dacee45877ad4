"""Logging for the `awardbot` commands: one line per record, and no credential in any line.

Platform libraries (python-telegram-bot, aiogram, httpx, wechatpy, aiohttp, APScheduler) log
full tracebacks for network trouble they retry anyway, e.g. PTB's updater when the Bot API goes
away at shutdown. Those become one line naming the exception. Bot tokens (`bot123:AA…` in
Bot API URLs) and WeChat access tokens (`access_token=…`) are masked in every record.
"""

from __future__ import annotations

import logging
import re

LIBRARIES = frozenset({"telegram", "aiogram", "httpx", "httpcore", "wechatpy", "aiohttp",
                       "apscheduler", "urllib3", "requests"})  # fmt: skip
SECRETS = (
    (re.compile(r"bot\d+:[A-Za-z0-9_-]+"), "bot<token>"),
    (re.compile(r"(access_token|secret|corpsecret)=[^&\s\"']+"), r"\1=<hidden>"),
)


def mask(text: str) -> str:
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


class OneLine(logging.Filter):
    """Library tracebacks as one line; credentials masked everywhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.name.split(".")[0] in LIBRARIES:
            error = record.exc_info[1]
            if error is not None:
                detail = " ".join(str(error).split())
                message = f"{message} ({type(error).__name__}: {detail})"
            record.exc_info = None
            record.exc_text = None
        record.msg = mask(message)
        record.args = ()
        return True


def configure(level: str) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLine())
