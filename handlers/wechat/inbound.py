"""WeChat's push protocol: URL verification, signatures, plaintext and safe (AES) mode.

Plaintext mode: the query carries `signature = sha1(sorted(token, timestamp, nonce))`, which
covers no part of the body: anyone who saw one query string could post any XML with it. So:
- with an AES key configured (compatible or safe mode) only `encrypt_type=aes` pushes are
  accepted, whose `msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt))` covers the
  AES-CBC ciphertext `<Encrypt>` (platforms.md §1.1); a plaintext push is refused, and in
  compatible mode the plaintext fields beside `<Encrypt>` are never read (issue 8);
- without a key (plaintext mode, for testing) the signature is checked, and the adapter's
  timestamp window and nonce ledger (`handlers.pushes`) keep a seen query string from being
  used again with another body (`Push.signature` includes a digest of the body).
Both the envelope and the decrypted inner document pass the hostile-XML gate
(`handlers.xmlgate`, shape included) before wechatpy parses anything: the envelope goes to
wechatpy's crypto as the gated dict, and only the gated inner text reaches `parse_message`.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from handlers.xmlgate import MAX_BODY, Fields, XmlRefused, check_shape, parse_flat


class SignatureRefused(Exception):
    """The request is not signed with our token (answer 403, do nothing)."""

    def __init__(self, detail: str, *, reason: str = "signature") -> None:
        self.reason = reason  # signature | plaintext: the `refused` outcome's reason
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class Push:
    """One decoded push: the wechatpy message, its gated fields, and how it came."""

    message: Any  # a wechatpy message or event
    fields: Fields
    encrypted: bool
    kind: str = ""  # MsgType, lower case (`xmlgate.check_shape`)
    signature: str = ""  # what tells a retry of this very request from a replay (the ledger)


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
        """The push in `body`; raises SignatureRefused (403), ShapeRefused or XmlRefused (400).

        Its timestamp and nonce are the caller's to check (`handlers.pushes.PushGuard`).
        """
        text, encrypted = self.unwrap(query, body)
        fields = parse_flat(text, limit=MAX_BODY)
        kind = check_shape(fields)
        try:
            message = parse_message(text)
        except (KeyError, ValueError, TypeError, AttributeError, ExpatError) as exc:
            raise XmlRefused(f"unparsable message: {type(exc).__name__}") from None
        if encrypted:  # msg_signature covers the ciphertext: the same value is the same push
            signature = query.get("msg_signature", "")
        else:  # the plain signature covers no body: a seen query string with another body
            digest = hashlib.sha256(body).hexdigest()[:32]  # is a replay, not a retry
            signature = f"{query.get('signature', '')}:{digest}"
        return Push(message, fields, encrypted, kind, signature)

    def unwrap(self, query: Mapping[str, str], body: bytes) -> tuple[str, bool]:
        """The signed inner text of a push and whether it was encrypted (not yet gated).

        With an AES key only an encrypted push is taken (issue 8): a plaintext one (no
        `encrypt_type`, or `raw`) is refused whatever its plain signature says.
        """
        if self._crypto is not None:
            if query.get("encrypt_type", "raw").lower() != "aes":
                raise SignatureRefused(
                    "plaintext push to an encrypted account", reason="plaintext"
                )
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
