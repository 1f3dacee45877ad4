"""`awardbot telegram set-webhook --url URL` and `awardbot telegram delete-webhook`.

Uses AWARDBOT_TELEGRAM_TOKEN, _WEBHOOK_SECRET (sent as `secret_token`: Telegram then puts it in
the `X-Telegram-Bot-Api-Secret-Token` header the `/telegram` route checks) and _API_BASE, through
the library chosen by AWARDBOT_TELEGRAM_LIBRARY. One line out; exit 2 after one line on error.
Telegram delivers webhooks only to https URLs, so any other --url is refused before it is sent.
An error never shows the bot token whole: `1234…abcd` (and `bot<token>` in a Bot API URL).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any
from urllib.parse import urlsplit

from bot.logs import mask
from bot.settings import Settings

COMMANDS = frozenset({"telegram"})
EXIT_ERROR = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `telegram set-webhook` and `telegram delete-webhook` to the command line."""
    telegram = subparsers.add_parser("telegram", help="Telegram bot set-up")
    sub = telegram.add_subparsers(
        dest="telegram_command", required=True, metavar="{set-webhook,delete-webhook}"
    )
    set_ = sub.add_parser(
        "set-webhook", help="tell Telegram to POST updates to URL (ending in /telegram)"
    )
    set_.add_argument("--url", required=True, help="public https URL of this server's /telegram")
    sub.add_parser("delete-webhook", help="stop webhook delivery (for polling mode)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a `telegram` command; 0, or 2 after one line on stderr."""
    from handlers.config import TelegramLibrary
    from notifications.senders import DeliveryError

    telegram = settings.telegram
    if telegram is None:
        return _fail("telegram is off: set AWARDBOT_TELEGRAM_TOKEN")
    if telegram.library is TelegramLibrary.AIOGRAM:
        from handlers.telegram import aiogram_adapter as library
    else:
        from handlers.telegram import ptb as library  # type: ignore[no-redef]
    try:
        if args.telegram_command == "set-webhook":
            url = args.url.strip()
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                return _fail(
                    f"--url: expected https://host/telegram (Telegram sends webhooks to https"
                    f" URLs only), got {url!r}"
                )
            if not telegram.webhook_secret:
                return _fail("AWARDBOT_TELEGRAM_WEBHOOK_SECRET: required for set-webhook")
            asyncio.run(library.set_webhook(telegram, url))
            print(f"Telegram webhook 已设置：{url}（message, callback_query；带密钥头）")
        else:
            asyncio.run(library.delete_webhook(telegram))
            print("Telegram webhook 已删除 (webhook deleted)")
    except DeliveryError as exc:
        reason = exc.reason
    except Exception as exc:  # a library's own error: one line, not a traceback
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    else:
        return 0
    return _fail(f"telegram {args.telegram_command} failed: {hide_token(reason, telegram.token)}")


def masked_token(token: str) -> str:
    """`1234…abcd`: enough of a bot token to tell which one it is (`…` alone if short)."""
    return f"{token[:4]}…{token[-4:]}" if len(token) >= 16 else "…"


def hide_token(text: str, token: str) -> str:
    """`text` with `token` masked wherever it appears, in any case (python-telegram-bot
    capitalizes an error's text, lowering the rest), and any other Bot API URL's token too."""
    if token:
        text = re.sub(re.escape(token), masked_token(token), text, flags=re.IGNORECASE)
    return mask(text)


def _fail(message: str) -> int:
    print(f"awardbot: {message}", file=sys.stderr)
    return EXIT_ERROR
