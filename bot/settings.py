"""Settings from the environment (and an optional `.env` file), with embedded defaults.

Every setting is listed in `.env.example`. The defaults run the bot with no server and no token:
a SQLite file under `data/` and the campaigns shipped in `campaigns/`.

pydantic-settings reads and validates them (`_Env`): the environment over the `.env` file, an
empty value meaning the default, each value parsed by its type, secrets kept as `SecretStr`.
Every bad value is reported, not only the first: `SettingsError` is one line naming each
variable and what is wrong with it ("; " between them). `load_settings` then derives what the
rest of the bot reads (`Settings`): the channels that are on, with the settings they need.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv.parser import parse_stream
from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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
PREFIX = "AWARDBOT_"
DEFAULT_DATABASE = "sqlite:///data/awardbot.db"


class SettingsError(Exception):
    """A setting has a value the bot cannot use; the message names it (one line)."""


class Environment(StrEnum):
    DEVELOPMENT = "development"  # a missing encryption key is generated into data/
    PRODUCTION = "production"  # a missing encryption key refuses start


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(repr=False)  # may hold a password
    campaigns_dir: Path
    calendar_file: Path
    timezone: ZoneInfo
    log_level: str
    environment: Environment
    secret_key: str | None = field(repr=False)  # Fernet keys, comma-separated, newest first
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
    document_tick_seconds: int = 2  # how often `serve` looks for /documents jobs (bot.exports)
    retention_days: int = 180  # drafts, self-checks, subscriptions go this long after a campaign
    worker_name: str | None = None  # the `worker` label on /metrics; None: hostname:pid


# --- one value each: parsed from the text of the environment or .env ------------------------


def _bad(message: str) -> PydanticCustomError:
    # The message is the whole error: `_problems` prefixes the variable's name.
    return PydanticCustomError("awardbot_setting", "{message}", {"message": message})


def _parsed(parse: Callable[[str], Any]) -> BeforeValidator:
    """A value as written (text) goes through `parse`; one already typed is taken as it is."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _whole(low: int, high: int, what: str, note: str = "") -> BeforeValidator:
    def parse(value: str) -> int:
        if not value.isdigit() or not low <= int(value) <= high:
            raise _bad(f"{value!r} is not {what} from {low} to {high}{note}")
        return int(value)

    return _parsed(parse)


def _one_of(kind: type[StrEnum], words: str, case: Callable[[str], str] = str.lower) -> Any:
    def parse(value: str) -> StrEnum:
        try:
            return kind(case(value))
        except ValueError:
            raise _bad(f"{case(value)!r} is not {words}") from None

    return _parsed(parse)


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"unknown time zone {value!r}") from None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise _bad(f"{level!r} is not DEBUG, INFO, WARNING or ERROR")
    return level


def _base_url(value: str) -> str:
    url = value.rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", url):
        raise _bad(f"{url!r} is not an http(s) URL")
    return url


DEMO_CLOCK_FORMAT = "YYYY-MM-DD HH:MM"


def _demo_moment(value: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad(
            f"{value!r} 不是本地时间 {DEMO_CLOCK_FORMAT}，例如 2022-11-02 08:00"
            f" (not a local time {DEMO_CLOCK_FORMAT}, e.g. 2022-11-02 08:00)"
        ) from None


def _matching(pattern: str, message: str) -> BeforeValidator:
    """A secret's format: the message never repeats the value."""

    def parse(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise _bad(message)
        return value

    return _parsed(parse)


def _agent_id(value: str) -> int:
    if not value.isdigit():
        raise _bad(f"{value!r} is not a number")
    return int(value)


# The types of the settings, each with the parser of its text.
TimeZone = Annotated[ZoneInfo, _parsed(_timezone)]
LogLevel = Annotated[str, _parsed(_log_level)]
EnvironmentName = Annotated[Environment, _one_of(Environment, "development or production")]
DemoMoment = Annotated[dt.datetime, _parsed(_demo_moment)]
Workdays = Annotated[int, _whole(1, 60, "a number of working days")]
TickSeconds = Annotated[int, _whole(1, 3600, "a number of seconds")]
RequestBytes = Annotated[int, _whole(1024, 64 * 1024 * 1024, "a byte count")]
PushMaxAge = Annotated[int, _whole(30, 3600, "a number of seconds")]
LinkMinutes = Annotated[int, _whole(1, 24 * 60, "a number of minutes")]
LinkMegabytes = Annotated[int, _whole(1, 20, "a number of MB", " (attachments are at most 20 MB)")]
LinkDays = Annotated[int, _whole(1, 90, "a number of days")]
BaseUrl = Annotated[str, _parsed(_base_url)]
Library = Annotated[TelegramLibrary, _one_of(TelegramLibrary, "ptb or aiogram")]
Mode = Annotated[TelegramMode, _one_of(TelegramMode, "webhook or polling")]
TelegramToken = Annotated[
    SecretStr, _matching(r"\d+:[A-Za-z0-9_-]+", "expected <digits>:<letters>, from @BotFather")
]
WebhookSecret = Annotated[
    SecretStr, _matching(r"[A-Za-z0-9_-]{1,256}", "1-256 characters of A-Z a-z 0-9 _ -")
]
AesKey = Annotated[
    SecretStr, _matching(r"[A-Za-z0-9]{43}", "an EncodingAESKey is 43 letters and digits")
]
AgentId = Annotated[int, _parsed(_agent_id)]
RetentionDays = Annotated[int, _whole(0, 3650, "a number of days")]


def _setting(name: str, default: Any = None) -> Any:
    """The field of variable `name` (AWARDBOT_…); an empty or unset variable: `default`."""
    return Field(default=default, validation_alias=name)


class _Env(BaseSettings):
    """Every AWARDBOT_* variable, as pydantic-settings reads and checks it."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,  # AWARDBOT_X= (as in .env.example) means the default
        env_file_encoding="utf-8",
        extra="ignore",  # .env may hold other variables (AWARDBOT_TEST_POSTGRES_URL, …)
        validate_default=False,  # the defaults are typed values already
        arbitrary_types_allowed=True,  # ZoneInfo
        hide_input_in_errors=True,
    )

    database_url: SecretStr = _setting("AWARDBOT_DATABASE_URL", SecretStr(DEFAULT_DATABASE))
    campaigns_dir: Path | None = _setting("AWARDBOT_CAMPAIGNS_DIR")  # None: REPO_ROOT's
    calendar_file: Path | None = _setting("AWARDBOT_CALENDAR_FILE")  # None: in campaigns_dir
    timezone: TimeZone = _setting("AWARDBOT_TIMEZONE", ZoneInfo("Asia/Shanghai"))
    log_level: LogLevel = _setting("AWARDBOT_LOG_LEVEL", "WARNING")
    environment: EnvironmentName = _setting("AWARDBOT_ENV", Environment.DEVELOPMENT)
    now: DemoMoment | None = _setting("AWARDBOT_NOW")
    alert_waiting_workdays: Workdays = _setting("AWARDBOT_ALERT_WAITING_WORKDAYS", 5)
    reminder_tick_seconds: TickSeconds = _setting("AWARDBOT_REMINDER_TICK_SECONDS", 10)
    document_tick_seconds: TickSeconds = _setting("AWARDBOT_DOCUMENT_TICK_SECONDS", 2)
    secret_key: SecretStr | None = _setting("AWARDBOT_SECRET_KEY")
    secret_key_file: Path = _setting("AWARDBOT_SECRET_KEY_FILE", Path("data/secret.key"))
    attachments_dir: Path = _setting("AWARDBOT_ATTACHMENTS_DIR", Path("data/attachments"))
    downloads_dir: Path = _setting("AWARDBOT_DOWNLOADS_DIR", Path("data/downloads"))

    max_request_bytes: RequestBytes = _setting("AWARDBOT_MAX_REQUEST_BYTES", 256 * 1024)
    push_max_age: PushMaxAge = _setting("AWARDBOT_PUSH_MAX_AGE_SECONDS", 300)
    public_url: BaseUrl | None = _setting("AWARDBOT_PUBLIC_URL")
    file_link_minutes: LinkMinutes = _setting("AWARDBOT_FILE_LINK_MINUTES", 30)
    file_link_max_mb: LinkMegabytes = _setting("AWARDBOT_FILE_LINK_MAX_MB", 20)

    telegram_token: TelegramToken | None = _setting("AWARDBOT_TELEGRAM_TOKEN")
    telegram_library: Library = _setting("AWARDBOT_TELEGRAM_LIBRARY", TelegramLibrary.PTB)
    telegram_mode: Mode = _setting("AWARDBOT_TELEGRAM_MODE", TelegramMode.WEBHOOK)
    telegram_api_base: BaseUrl = _setting("AWARDBOT_TELEGRAM_API_BASE", TELEGRAM_PUBLIC_API)
    telegram_webhook_secret: WebhookSecret | None = _setting("AWARDBOT_TELEGRAM_WEBHOOK_SECRET")

    wechat_app_id: str | None = _setting("AWARDBOT_WECHAT_APP_ID")
    wechat_app_secret: SecretStr | None = _setting("AWARDBOT_WECHAT_APP_SECRET")
    wechat_token: SecretStr | None = _setting("AWARDBOT_WECHAT_TOKEN")
    wechat_aes_key: AesKey | None = _setting("AWARDBOT_WECHAT_AES_KEY")
    wechat_api_base: BaseUrl = _setting("AWARDBOT_WECHAT_API_BASE", WECHAT_PUBLIC_API)
    wechat_template_status: str | None = _setting("AWARDBOT_WECHAT_TEMPLATE_STATUS")
    wechat_template_deadline: str | None = _setting("AWARDBOT_WECHAT_TEMPLATE_DEADLINE")
    wechat_subscribe_status: str | None = _setting("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_STATUS")
    wechat_subscribe_window: str | None = _setting("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_WINDOW")
    wechat_subscribe_deadline: str | None = _setting("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_DEADLINE")
    wechat_subscribe_digest: str | None = _setting("AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_DIGEST")
    wechat_notice_link_days: LinkDays = _setting("AWARDBOT_WECHAT_NOTICE_LINK_DAYS", 7)

    wecom_corp_id: str | None = _setting("AWARDBOT_WECOM_CORP_ID")
    wecom_secret: SecretStr | None = _setting("AWARDBOT_WECOM_SECRET")
    wecom_agent_id: AgentId | None = _setting("AWARDBOT_WECOM_AGENT_ID")
    wecom_token: SecretStr | None = _setting("AWARDBOT_WECOM_TOKEN")
    wecom_aes_key: AesKey | None = _setting("AWARDBOT_WECOM_AES_KEY")
    wecom_api_base: BaseUrl = _setting("AWARDBOT_WECOM_API_BASE", WECOM_PUBLIC_API)
    wecom_notice_url: BaseUrl | None = _setting("AWARDBOT_WECOM_NOTICE_URL")  # None: public_url

    # Personal data (issue 11): days after a campaign's last stage before its drafts never
    # submitted, self-check answers and subscriptions are deleted (storage.privacy).
    retention_days: RetentionDays = _setting("AWARDBOT_RETENTION_DAYS", 180)
    # The `worker` label on every /metrics sample (bot.server); unset: hostname:pid.
    worker_name: str | None = _setting("AWARDBOT_WORKER_NAME")


class _GivenEnv(_Env):
    """`_Env` over a mapping handed to `load_settings` (passed as init values) instead of
    os.environ; the `.env` file still lies under it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings


def _variable(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else ""
    if name in _Env.model_fields:  # a field's own name: give the variable's
        alias = _Env.model_fields[name].validation_alias
        name = alias if isinstance(alias, str) else name
    return name


def _problems(error: ValidationError) -> list[str]:
    return [f"{_variable(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)]


def _check_dotenv(path: Path) -> None:
    """A line that is not KEY=VALUE is refused, not skipped (python-dotenv would warn only)."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                line = binding.original.string.strip()
                raise SettingsError(
                    f"{path}:{binding.original.line}: expected KEY=VALUE, got {line[:40]!r}"
                )


def _read(env: Mapping[str, str] | None, dotenv: Path) -> _Env:
    _check_dotenv(dotenv)
    try:
        if env is None:
            return _Env(_env_file=dotenv)
        given = {k: v for k, v in env.items() if k.startswith(PREFIX) and v}
        return _GivenEnv(_env_file=dotenv, **given)
    except ValidationError as exc:
        raise SettingsError("; ".join(_problems(exc))) from None


def load_settings(env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build settings from `env` (default: os.environ) over the values of the `.env` file
    (default: `.env` in the current directory). SettingsError names every bad value."""
    values = _read(env, dotenv if dotenv is not None else Path.cwd() / ".env")
    problems: list[str] = []
    now = _demo_now(values, problems)
    telegram, telegram_off = _telegram(values, problems)
    wechat, wechat_off = _wechat(values, problems)
    wecom, wecom_off = _wecom(values, problems)
    if problems:
        raise SettingsError("; ".join(problems))
    campaigns_dir = values.campaigns_dir or REPO_ROOT / "campaigns"
    return Settings(
        telegram=telegram,
        wechat=wechat,
        wecom=wecom,
        off=tuple(line for line in (telegram_off, wechat_off, wecom_off) if line),
        max_request_bytes=values.max_request_bytes,
        database_url=values.database_url.get_secret_value(),
        campaigns_dir=campaigns_dir,
        calendar_file=values.calendar_file or campaigns_dir / "calendar.yaml",
        timezone=values.timezone,
        log_level=values.log_level,
        environment=values.environment,
        secret_key=_plain(values.secret_key) or None,
        secret_key_file=values.secret_key_file,
        attachments_dir=values.attachments_dir,
        downloads_dir=values.downloads_dir,
        public_url=values.public_url,
        file_link_minutes=values.file_link_minutes,
        file_link_max_bytes=values.file_link_max_mb * 1024 * 1024,
        now=now,
        alert_waiting_workdays=values.alert_waiting_workdays,
        reminder_tick_seconds=values.reminder_tick_seconds,
        document_tick_seconds=values.document_tick_seconds,
        retention_days=values.retention_days,
        worker_name=values.worker_name,
    )


# --- what follows from several values ---------------------------------------------------------


def _plain(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


def _demo_now(values: _Env, problems: list[str]) -> dt.datetime | None:
    """AWARDBOT_NOW: the local time the bot's clock starts at (it runs on from there)."""
    if values.now is None:
        return None
    if values.environment is Environment.PRODUCTION:
        problems.append(
            "AWARDBOT_NOW: 演示时钟不能用于生产环境，请删除该设置 "
            "(the demo clock is refused in production; unset it)"
        )
        return None
    moment = values.now
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=values.timezone)


def _required(values: _Env, problems: list[str], when: str, names: tuple[str, ...]) -> bool:
    missing = [name for name in names if getattr(values, name) is None]
    for name in missing:
        problems.append(f"{_variable((name,))}: required when {_variable((when,))} is set")
    return not missing


def _telegram(values: _Env, problems: list[str]) -> tuple[TelegramSettings | None, str]:
    if values.telegram_token is None:
        return None, "telegram: off (AWARDBOT_TELEGRAM_TOKEN is not set)"
    secret = values.telegram_webhook_secret
    if values.telegram_mode is TelegramMode.WEBHOOK and secret is None:
        problems.append(
            "AWARDBOT_TELEGRAM_WEBHOOK_SECRET: required in webhook mode"
            " (generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
        return None, ""
    return (
        TelegramSettings(
            _plain(values.telegram_token),
            values.telegram_library,
            values.telegram_mode,
            values.telegram_api_base,
            None if secret is None else secret.get_secret_value(),
        ),
        "",
    )


def _wechat(values: _Env, problems: list[str]) -> tuple[WechatSettings | None, str]:
    if values.wechat_app_id is None:
        return None, "wechat: off (AWARDBOT_WECHAT_APP_ID is not set)"
    if not _required(values, problems, "wechat_app_id", ("wechat_app_secret", "wechat_token")):
        return None, ""
    aes_key = values.wechat_aes_key
    return (
        WechatSettings(
            app_id=values.wechat_app_id,
            app_secret=_plain(values.wechat_app_secret),
            token=_plain(values.wechat_token),
            aes_key=None if aes_key is None else aes_key.get_secret_value(),
            api_base=values.wechat_api_base,
            template_status=values.wechat_template_status,
            template_deadline=values.wechat_template_deadline,
            push_max_age=values.push_max_age,
            subscribe_status=values.wechat_subscribe_status,
            subscribe_window=values.wechat_subscribe_window,
            subscribe_deadline=values.wechat_subscribe_deadline,
            subscribe_digest=values.wechat_subscribe_digest,
            notice_link_days=values.wechat_notice_link_days,
        ),
        "",
    )


def _wecom(values: _Env, problems: list[str]) -> tuple[WecomSettings | None, str]:
    if values.wecom_corp_id is None:
        return None, "wecom: off (AWARDBOT_WECOM_CORP_ID is not set)"
    names = ("wecom_secret", "wecom_agent_id", "wecom_token", "wecom_aes_key")
    if not _required(values, problems, "wecom_corp_id", names) or values.wecom_agent_id is None:
        return None, ""
    return (
        WecomSettings(
            corp_id=values.wecom_corp_id,
            secret=_plain(values.wecom_secret),
            agent_id=values.wecom_agent_id,
            token=_plain(values.wecom_token),
            aes_key=_plain(values.wecom_aes_key),
            api_base=values.wecom_api_base,
            push_max_age=values.push_max_age,
            notice_url=values.wecom_notice_url or values.public_url,
        ),
        "",
    )
