"""Encryption at rest for what users tell the bot (answers, verdicts): Fernet tokens.

Conversation state and self-check results hold sensitive personal data — disciplinary answers,
birth dates, later ID numbers and phones (DESIGN §6) — so the store writes them sealed and reads
them back opened. Keys are Fernet keys (32 random bytes, URL-safe base64). Several keys may be
given, newest first: the first seals, every one can open, so a key can be rotated without losing
what was sealed with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "fernet:"  # marks a sealed value, so a plain one is never mistaken for it


class SealError(Exception):
    """A key is malformed, or a stored value cannot be opened with the keys given."""


class Sealer:
    """Seals and opens text with one or more Fernet keys (the first one seals)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise SealError("no encryption key given")
        try:
            fernets = [Fernet(k) for k in keys]
            self._fernet = MultiFernet(fernets)
            self._primary = fernets[0]
            self._raw = [base64.urlsafe_b64decode(k) for k in keys]
        except (ValueError, TypeError):
            raise SealError(
                "加密密钥格式不对：应为 Fernet 密钥（32 字节的 URL 安全 base64）"
                "(malformed key: expected a Fernet key, 32 url-safe base64-encoded bytes)"
            ) from None

    @classmethod
    def from_setting(cls, value: str) -> Sealer:
        """Keys from a setting: comma-separated, newest first."""
        return cls([k.strip() for k in value.split(",") if k.strip()])

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def seal_bytes(self, data: bytes) -> bytes:
        """Seal binary content (attachments): the Fernet token as bytes."""
        return self._fernet.encrypt(data)

    def open_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SealError(
                "无法解密已保存的文件：密钥不对或文件已损坏 (cannot decrypt stored file: wrong "
                "AWARDBOT_SECRET_KEY, or the file is damaged)"
            ) from None

    def keyed_names(self, data: bytes, purpose: str) -> list[str]:
        """HMAC-SHA256 of `data` (hex) under a key derived from each key, newest first.

        A name that only the key holder can compute: who holds the disk or a backup cannot
        confirm that a known document is stored by hashing it (issue 8). `purpose` separates
        the derived keys of different uses.
        """
        return [
            hmac.new(_derive(raw, purpose), data, hashlib.sha256).hexdigest() for raw in self._raw
        ]

    def sealed_with_primary(self, stored: str) -> bool:
        """Whether `stored` was sealed with the first (current) key, not an older one."""
        try:
            self._primary.decrypt(stored.removeprefix(PREFIX).encode("ascii"))
        except (InvalidToken, ValueError):
            return False
        return True

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise SealError("stored value is not sealed (was it written without encryption?)")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SealError(
                "无法解密已保存的数据：密钥不对 (cannot decrypt stored data: wrong "
                "AWARDBOT_SECRET_KEY? keep the key that sealed it in the list)"
            ) from None


def _derive(raw: bytes, purpose: str) -> bytes:
    """A 32-byte key for `purpose` from a Fernet key (HKDF-SHA256, RFC 5869)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"awardbot:{purpose}".encode()
    ).derive(raw)
