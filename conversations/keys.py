"""Identity of one conversation: which channel, which user on it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    """The channels a user can talk to the bot on."""

    CONSOLE = "console"  # the terminal, for development and scripted use
    TELEGRAM = "telegram"
    WECHAT = "wechat"  # WeChat Official Account
    WECOM = "wecom"  # WeCom (企业微信) application


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """One user on one channel; the unit of ordering and locking."""

    channel: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.user_id}"
