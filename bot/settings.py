"""Settings from the environment (and an optional `.env` file), with embedded defaults.

Every setting is listed in `.env.example`. The defaults run the bot with no server and no token:
a SQLite file under `data/` and the campaigns shipped in `campaigns/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    return Settings(
        database_url=get("AWARDBOT_DATABASE_URL", "sqlite:///data/awardbot.db"),
        campaigns_dir=campaigns_dir,
        calendar_file=calendar_file,
        timezone=timezone,
        log_level=level,
        environment=environment,
        secret_key=merged.get("AWARDBOT_SECRET_KEY") or None,
        secret_key_file=Path(get("AWARDBOT_SECRET_KEY_FILE", "data/secret.key")),
        attachments_dir=Path(get("AWARDBOT_ATTACHMENTS_DIR", "data/attachments")),
    )
