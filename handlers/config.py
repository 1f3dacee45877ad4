"""Channel settings as the adapters take them; `bot.settings` reads them from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

TELEGRAM_PUBLIC_API = "https://api.telegram.org"
WECHAT_PUBLIC_API = "https://api.weixin.qq.com"
WECOM_PUBLIC_API = "https://qyapi.weixin.qq.com"


class TelegramLibrary(StrEnum):
    PTB = "ptb"  # python-telegram-bot
    AIOGRAM = "aiogram"


class TelegramMode(StrEnum):
    WEBHOOK = "webhook"  # Telegram POSTs updates to /telegram
    POLLING = "polling"  # the bot asks getUpdates


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str = field(repr=False)
    library: TelegramLibrary
    mode: TelegramMode
    api_base: str  # scheme://host[:port], no trailing slash; /bot<token>/<method> is appended
    webhook_secret: str | None = field(repr=False)  # required in webhook mode


@dataclass(frozen=True, slots=True)
class WechatSettings:
    app_id: str
    app_secret: str = field(repr=False)
    token: str = field(repr=False)  # the 令牌 registered for the server URL
    aes_key: str | None = field(repr=False)  # EncodingAESKey (43 chars); None: plaintext mode
    api_base: str  # scheme://host[:port]; /cgi-bin/... is appended
    template_status: str | None  # template id for status changes, if the account has one
    template_deadline: str | None  # template id for reminders, deadline alerts and digests
    push_max_age: int = 300  # seconds a signed push's timestamp may differ from our clock
    # Subscription-notice (订阅通知) template ids, by notice kind; None: that kind has none
    subscribe_status: str | None = None
    subscribe_window: str | None = None
    subscribe_deadline: str | None = None
    subscribe_digest: str | None = None
    notice_link_days: int = 7  # how long a notice's detail link (template/subscription) works


@dataclass(frozen=True, slots=True)
class WecomSettings:
    corp_id: str
    secret: str = field(repr=False)
    agent_id: int
    token: str = field(repr=False)
    aes_key: str = field(repr=False)  # WeCom callbacks are always encrypted
    api_base: str  # scheme://host[:port]; /cgi-bin/... is appended
    push_max_age: int = 300  # seconds a signed callback's timestamp may differ from our clock
    # Where a notice's text card leads (AWARDBOT_WECOM_NOTICE_URL, else AWARDBOT_PUBLIC_URL);
    # None: notices go as text messages (a card must have a link).
    notice_url: str | None = None
