"""WeChat's push protocol: URL verification, signatures, plaintext and safe (AES) mode.

Plaintext mode: the query carries `signature = sha1(sorted(token, timestamp, nonce))`.
Compatible and safe mode (`encrypt_type=aes`): the body's `<Encrypt>` is AES-CBC ciphertext and
`msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt))` (platforms.md §1.1). Both the
envelope and the decrypted inner document pass the hostile-XML gate (`handlers.xmlgate`)
before wechatpy parses anything: the envelope goes to wechatpy's crypto as the gated dict, and
only the gated inner text reaches `wechatpy.parse_message`.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from handlers.xmlgate import MAX_BODY, XmlRefused, parse_flat


class SignatureRefused(Exception):
    """The request is not signed with our token (answer 403, do nothing)."""


@dataclass(frozen=True, slots=True)
class Push:
    """One decoded push: the wechatpy message, its gated fields, and how it came."""

    message: Any  # a wechatpy message or event
    fields: dict[str, str]
    encrypted: bool


class Codec:
    """Verifies and decodes WeChat pushes and encodes passive replies for one account."""

    def __init__(self, token: str, aes_key: str | None, app_id: str) -> None:
        self._token = token
        self._crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    def verify_url(self, query: Mapping[str, str]) -> str:
        """The `echostr` to echo for the server-URL check; raises SignatureRefused."""
        self._check_plain(query)
        return query.get("echostr", "")

    def decode(self, query: Mapping[str, str], body: bytes) -> Push:
        """The push in `body`; raises SignatureRefused (403) or XmlRefused (400)."""
        text, encrypted = self.unwrap(query, body)
        fields = parse_flat(text, limit=MAX_BODY)
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise XmlRefused("not a WeChat message (no MsgType or FromUserName)")
        try:
            message = parse_message(text)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise XmlRefused(f"unparsable message: {type(exc).__name__}") from None
        return Push(message, fields, encrypted)

    def unwrap(self, query: Mapping[str, str], body: bytes) -> tuple[str, bool]:
        """The signed inner text of a push and whether it was encrypted (not yet gated)."""
        if query.get("encrypt_type", "raw").lower() == "aes" and self._crypto is not None:
            envelope = parse_flat(body)
            if "Encrypt" not in envelope:
                raise XmlRefused("no Encrypt field in an encrypted push")
            try:
                inner = self._crypto.decrypt_message(
                    envelope,  # a dict: wechatpy's own XML parser never sees the envelope
                    query.get("msg_signature", ""),
                    query.get("timestamp", ""),
                    query.get("nonce", ""),
                )
            except (InvalidSignatureException, InvalidAppIdException):
                raise SignatureRefused("bad msg_signature or app id") from None
            except (ValueError, TypeError, IndexError, struct.error) as exc:
                raise XmlRefused(f"undecryptable Encrypt: {type(exc).__name__}") from None
            return str(inner), True
        # Plaintext mode, or compatible mode with no key configured: the plain fields.
        self._check_plain(query)
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            raise XmlRefused("body is not UTF-8") from None

    def encode_reply(self, xml: str, *, encrypted: bool) -> str:
        """A rendered passive reply, encrypted when the push was."""
        if not encrypted or self._crypto is None:
            return xml
        nonce = secrets.token_hex(8)
        return str(self._crypto.encrypt_message(xml, nonce, str(int(time.time()))))

    def _check_plain(self, query: Mapping[str, str]) -> None:
        try:
            check_signature(
                self._token,
                query.get("signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except InvalidSignatureException:
            raise SignatureRefused("bad signature") from None
