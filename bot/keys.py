"""Where the encryption key comes from: the setting, or in development a generated key file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bot.settings import Environment, Settings, SettingsError
from storage.crypto import Sealer, SealError

log = logging.getLogger(__name__)


def sealer_for(settings: Settings) -> Sealer:
    """The sealer for the store; in production a missing AWARDBOT_SECRET_KEY refuses start."""
    if settings.secret_key:
        try:
            return Sealer.from_setting(settings.secret_key)
        except SealError as exc:
            raise SettingsError(f"AWARDBOT_SECRET_KEY: {exc}") from None
    if settings.environment is Environment.PRODUCTION:
        raise SettingsError(
            "AWARDBOT_SECRET_KEY 未设置：生产环境必须提供加密密钥 "
            "(AWARDBOT_SECRET_KEY is required when AWARDBOT_ENV=production; "
            "make one with: awardbot keygen)"
        )
    return Sealer([_development_key(settings.secret_key_file)])


def _development_key(path: Path) -> str:
    """Read the development key file, creating it (owner-only) with a warning on first use."""
    try:
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Sealer.new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"AWARDBOT_SECRET_KEY_FILE {path}: cannot use it: {exc}") from None
    log.warning(
        "未设置 AWARDBOT_SECRET_KEY，已生成开发用密钥 %s；丢失它将无法读取已保存的数据 "
        "(no AWARDBOT_SECRET_KEY: generated a development key in %s; keep it, or saved "
        "conversations cannot be read; set AWARDBOT_SECRET_KEY in production)",
        path,
        path,
    )
    return key
