"""Settings from the environment (and an optional `.env` file), with embedded defaults.

Every setting is listed in `.env.example`. The defaults run the bot with no server and no token:
a SQLite file under `data/` and the campaigns shipped in `campaigns/`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.config import (
    TELEGRAM_PUBLIC_API,
    WECHAT_PUBLIC_API,
    WECOM_PUBLIC_API,
    TelegramLibrary,
    TelegramMode,
    TelegramSettings,
    WechatSettings,
    WecomSettings,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A setting has a value the bot cannot use; the message names it (one line)."""


class Environment(StrEnum):
    DEVELOPMENT = "development"  # a missing encryption key is generated into data/
    PRODUCTION = "production"  # a missing encryption key refuses start


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    campaigns_dir: Path
    calendar_file: Path
    timezone: ZoneInfo
    log_level: str
    environment: Environment
    secret_key: str | None  # Fernet keys, comma-separated, newest first
    secret_key_file: Path  # where development keeps a generated key
    attachments_dir: Path  # attachment files, sealed, by content hash
    telegram: TelegramSettings | None = None  # None: AWARDBOT_TELEGRAM_TOKEN is not set
    wechat: WechatSettings | None = None  # None: AWARDBOT_WECHAT_APP_ID is not set
    wecom: WecomSettings | None = None  # None: AWARDBOT_WECOM_CORP_ID is not set
    off: tuple[str, ...] = ()  # one line per channel that is off, saying why
    max_request_bytes: int = 256 * 1024  # largest webhook body `serve` reads
    public_url: str | None = None  # where `serve` is reached from outside (WeChat's file links)
    file_link_minutes: int = 30  # how long a file link works
    file_link_max_bytes: int = 20 * 1024 * 1024  # larger attachments get no link
    downloads_dir: Path = Path("data/downloads")  # where the console saves opened attachments
    now: dt.datetime | None = None  # AWARDBOT_NOW: the demo clock starts here (never production)
    alert_waiting_workdays: int = 5  # officials are alerted past this many working days waiting
    reminder_tick_seconds: int = 10  # how often the ticker hands due reminders to the outbox


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; surrounding quotes removed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {line[:40]!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(env: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build settings from `env` (default: os.environ) over the values of the `.env` file."""
    merged = read_dotenv(dotenv if dotenv is not None else Path.cwd() / ".env")
    merged.update(os.environ if env is None else env)

    def get(name: str, default: str) -> str:
        return merged.get(name) or default

    campaigns_dir = Path(get("AWARDBOT_CAMPAIGNS_DIR", str(REPO_ROOT / "campaigns")))
    calendar_file = Path(get("AWARDBOT_CALENDAR_FILE", str(campaigns_dir / "calendar.yaml")))
    tz_name = get("AWARDBOT_TIMEZONE", "Asia/Shanghai")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"AWARDBOT_TIMEZONE: unknown time zone {tz_name!r}") from None
    level = get("AWARDBOT_LOG_LEVEL", "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"AWARDBOT_LOG_LEVEL: {level!r} is not DEBUG, INFO, WARNING or ERROR")
    env_name = get("AWARDBOT_ENV", Environment.DEVELOPMENT.value).lower()
    try:
        environment = Environment(env_name)
    except ValueError:
        raise SettingsError(
            f"AWARDBOT_ENV: {env_name!r} is not development or production"
        ) from None
    max_body = get("AWARDBOT_MAX_REQUEST_BYTES", str(256 * 1024))
    if not max_body.isdigit() or not 1024 <= int(max_body) <= 64 * 1024 * 1024:
        raise SettingsError(
            f"AWARDBOT_MAX_REQUEST_BYTES: {max_body!r} is not a byte count from 1024 to 67108864"
        )
    minutes = get("AWARDBOT_FILE_LINK_MINUTES", "30")
    if not minutes.isdigit() or not 1 <= int(minutes) <= 24 * 60:
        raise SettingsError(
            f"AWARDBOT_FILE_LINK_MINUTES: {minutes!r} is not a number of minutes from 1 to 1440"
        )
    link_mb = get("AWARDBOT_FILE_LINK_MAX_MB", "20")
    if not link_mb.isdigit() or not 1 <= int(link_mb) <= 20:
        raise SettingsError(
            f"AWARDBOT_FILE_LINK_MAX_MB: {link_mb!r} is not a number of MB from 1 to 20"
            " (attachments are at most 20 MB)"
        )
    public_url = (
        _base_url(get, "AWARDBOT_PUBLIC_URL", "") if get("AWARDBOT_PUBLIC_URL", "") else None
    )
    now = _demo_now(get("AWARDBOT_NOW", ""), timezone, environment)
    waiting = _whole(get, "AWARDBOT_ALERT_WAITING_WORKDAYS", "5", 1, 60, "working days")
    tick = _whole(get, "AWARDBOT_REMINDER_TICK_SECONDS", "10", 1, 3600, "seconds")
    telegram, telegram_off = _telegram(get)
    wechat, wechat_off = _wechat(get)
    wecom, wecom_off = _wecom(get, public_url)
    return Settings(
        telegram=telegram,
        wechat=wechat,
        wecom=wecom,
        off=tuple(line for line in (telegram_off, wechat_off, wecom_off) if line),
        max_request_bytes=int(max_body),
        database_url=get("AWARDBOT_DATABASE_URL", "sqlite:///data/awardbot.db"),
        campaigns_dir=campaigns_dir,
        calendar_file=calendar_file,
        timezone=timezone,
        log_level=level,
        environment=environment,
        secret_key=merged.get("AWARDBOT_SECRET_KEY") or None,
        secret_key_file=Path(get("AWARDBOT_SECRET_KEY_FILE", "data/secret.key")),
        attachments_dir=Path(get("AWARDBOT_ATTACHMENTS_DIR", "data/attachments")),
        downloads_dir=Path(get("AWARDBOT_DOWNLOADS_DIR", "data/downloads")),
        public_url=public_url,
        file_link_minutes=int(minutes),
        file_link_max_bytes=int(link_mb) * 1024 * 1024,
        now=now,
        alert_waiting_workdays=waiting,
        reminder_tick_seconds=tick,
    )


def _whole(
    get: Callable[[str, str], str], name: str, default: str, low: int, high: int, unit: str
) -> int:
    value = get(name, default)
    if not value.isdigit() or not low <= int(value) <= high:
        raise SettingsError(f"{name}: {value!r} is not a number of {unit} from {low} to {high}")
    return int(value)


DEMO_CLOCK_FORMAT = "YYYY-MM-DD HH:MM"


def _demo_now(value: str, timezone: ZoneInfo, environment: Environment) -> dt.datetime | None:
    """AWARDBOT_NOW: the local time the bot's clock starts at (it runs on from there)."""
    if not value:
        return None
    if environment is Environment.PRODUCTION:
        raise SettingsError(
            "AWARDBOT_NOW: 演示时钟不能用于生产环境，请删除该设置 "
            "(the demo clock is refused in production; unset it)"
        )
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(
            f"AWARDBOT_NOW: {value!r} 不是本地时间 {DEMO_CLOCK_FORMAT}，例如 2022-11-02 08:00"
            f" (not a local time {DEMO_CLOCK_FORMAT}, e.g. 2022-11-02 08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    return moment


Get = Callable[[str, str], str]
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


def _base_url(get: Get, name: str, default: str) -> str:
    value = get(name, default).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", value):
        raise SettingsError(f"{name}: {value!r} is not an http(s) URL")
    return value


def _aes_key(get: Get, name: str) -> str | None:
    value = get(name, "")
    if value and not _AES_KEY.fullmatch(value):
        raise SettingsError(f"{name}: an EncodingAESKey is 43 letters and digits")
    return value or None


def _telegram(get: Get) -> tuple[TelegramSettings | None, str]:
    token = get("AWARDBOT_TELEGRAM_TOKEN", "")
    if not token:
        return None, "telegram: off (AWARDBOT_TELEGRAM_TOKEN is not set)"
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
        raise SettingsError(
            "AWARDBOT_TELEGRAM_TOKEN: expected <digits>:<letters>, from @BotFather"
        )
    library_name = get("AWARDBOT_TELEGRAM_LIBRARY", TelegramLibrary.PTB.value).lower()
    mode_name = get("AWARDBOT_TELEGRAM_MODE", TelegramMode.WEBHOOK.value).lower()
    try:
        library = TelegramLibrary(library_name)
    except ValueError:
        raise SettingsError(
            f"AWARDBOT_TELEGRAM_LIBRARY: {library_name!r} is not ptb or aiogram"
        ) from None
    try:
        mode = TelegramMode(mode_name)
    except ValueError:
        raise SettingsError(
            f"AWARDBOT_TELEGRAM_MODE: {mode_name!r} is not webhook or polling"
        ) from None
    secret = get("AWARDBOT_TELEGRAM_WEBHOOK_SECRET", "") or None
    if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
        raise SettingsError(
            "AWARDBOT_TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -"
        )
    if mode is TelegramMode.WEBHOOK and secret is None:
        raise SettingsError(
            "AWARDBOT_TELEGRAM_WEBHOOK_SECRET: required in webhook mode"
            " (generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    api_base = _base_url(get, "AWARDBOT_TELEGRAM_API_BASE", TELEGRAM_PUBLIC_API)
    return TelegramSettings(token, library, mode, api_base, secret), ""


def push_max_age(get: Get) -> int:
    """AWARDBOT_PUSH_MAX_AGE_SECONDS: how far a WeChat/WeCom push's signed timestamp may be
    from our clock (either way) before it is refused as a replay."""
    value = get("AWARDBOT_PUSH_MAX_AGE_SECONDS", "300")
    if not value.isdigit() or not 30 <= int(value) <= 3600:
        raise SettingsError(
            f"AWARDBOT_PUSH_MAX_AGE_SECONDS: {value!r} is not a number of seconds from 30 to 3600"
        )
    return int(value)


def _wechat(get: Get) -> tuple[WechatSettings | None, str]:
    app_id = get("AWARDBOT_WECHAT_APP_ID", "")
    if not app_id:
        return None, "wechat: off (AWARDBOT_WECHAT_APP_ID is not set)"
    missing = [
        name
        for name in ("AWARDBOT_WECHAT_APP_SECRET", "AWARDBOT_WECHAT_TOKEN")
        if not get(name, "")
    ]
    if missing:
        raise SettingsError(f"{missing[0]}: required when AWARDBOT_WECHAT_APP_ID is set")
    return (
        WechatSettings(
            app_id=app_id,
            app_secret=get("AWARDBOT_WECHAT_APP_SECRET", ""),
            token=get("AWARDBOT_WECHAT_TOKEN", ""),
            aes_key=_aes_key(get, "AWARDBOT_WECHAT_AES_KEY"),
            api_base=_base_url(get, "AWARDBOT_WECHAT_API_BASE", WECHAT_PUBLIC_API),
            template_status=get("AWARDBOT_WECHAT_TEMPLATE_STATUS", "") or None,
            template_deadline=get("AWARDBOT_WECHAT_TEMPLATE_DEADLINE", "") or None,
            push_max_age=push_max_age(get),
            subscribe_status=get("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_STATUS", "") or None,
            subscribe_window=get("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_WINDOW", "") or None,
            subscribe_deadline=get("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_DEADLINE", "") or None,
            subscribe_digest=get("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_DIGEST", "") or None,
            notice_link_days=_notice_link_days(get),
        ),
        "",
    )


def _notice_link_days(get: Get) -> int:
    value = get("AWARDBOT_WECHAT_NOTICE_LINK_DAYS", "7")
    if not value.isdigit() or not 1 <= int(value) <= 90:
        raise SettingsError(
            f"AWARDBOT_WECHAT_NOTICE_LINK_DAYS: {value!r} is not a number of days from 1 to 90"
        )
    return int(value)


def _wecom(get: Get, public_url: str | None) -> tuple[WecomSettings | None, str]:
    corp_id = get("AWARDBOT_WECOM_CORP_ID", "")
    if not corp_id:
        return None, "wecom: off (AWARDBOT_WECOM_CORP_ID is not set)"
    names = ("AWARDBOT_WECOM_SECRET", "AWARDBOT_WECOM_AGENT_ID", "AWARDBOT_WECOM_TOKEN")
    missing = [name for name in (*names, "AWARDBOT_WECOM_AES_KEY") if not get(name, "")]
    if missing:
        raise SettingsError(f"{missing[0]}: required when AWARDBOT_WECOM_CORP_ID is set")
    agent = get("AWARDBOT_WECOM_AGENT_ID", "")
    if not agent.isdigit():
        raise SettingsError(f"AWARDBOT_WECOM_AGENT_ID: {agent!r} is not a number")
    aes_key = _aes_key(get, "AWARDBOT_WECOM_AES_KEY")
    assert aes_key is not None  # checked as present above
    return (
        WecomSettings(
            corp_id=corp_id,
            secret=get("AWARDBOT_WECOM_SECRET", ""),
            agent_id=int(agent),
            token=get("AWARDBOT_WECOM_TOKEN", ""),
            aes_key=aes_key,
            api_base=_base_url(get, "AWARDBOT_WECOM_API_BASE", WECOM_PUBLIC_API),
            push_max_age=push_max_age(get),
            notice_url=(
                _base_url(get, "AWARDBOT_WECOM_NOTICE_URL", "")
                if get("AWARDBOT_WECOM_NOTICE_URL", "")
                else public_url
            ),
        ),
        "",
    )
