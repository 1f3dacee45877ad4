"""The WeChat API client: wechatpy's `WeChatClient` on our API base and our shared token.

wechatpy keeps its access_token per process and refreshes it without a lock, while a new token
invalidates the old one (platforms.md §1.3). Here the token lives in a shared `TokenCache`
instead (`handlers.ports`; the database's in `serve`): one worker fetches at a time, every other
worker and process reads what it kept. wechatpy's own `fetch_access_token` calls the public
host whatever `API_BASE_URL` says, so this subclass replaces it with a fetch from `api_base`.

Every call goes through `WechatClient.call`, the edge where wechatpy's and requests' exceptions
become `WechatApiError`: on an invalid or expired token (40001/40014/42001) the token is fetched
again once (marked stale, so a token another worker stored meanwhile is taken instead) and the
call is retried once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from handlers.ports import EdgeError, Token, TokenCache

T = TypeVar("T")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid credential / token, token expired
TOKEN_MARGIN = dt.timedelta(minutes=5)  # old and new tokens both work for 5 minutes
TIMEOUT = 10.0  # seconds per HTTP call


class WechatApiError(Exception):
    """The WeChat API refused a call or could not be reached; errcode None: HTTP/network."""

    def __init__(self, errcode: int | None, detail: str) -> None:
        self.errcode = errcode
        self.detail = detail
        super().__init__(f"WeChat API error {errcode}: {detail}")


class MediaTooLarge(Exception):
    """A media file is larger than we accept; nothing more was read.

    `size` is its real size when the API declared it (Content-Length), else None."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


class WechatClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client against `api_base`, with the access_token shared through `tokens`."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        *,
        api_base: str,
        tokens: TokenCache,
        clock: Callable[[], dt.datetime],
        timeout: float = TIMEOUT,
    ) -> None:
        super().__init__(app_id, secret, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        self._tokens = tokens
        self._clock = clock
        self._used = threading.local()  # the token the current thread's call carried

    @property
    def token_name(self) -> str:
        return f"wechat:{self.appid}"

    # ----- the shared token -------------------------------------------------------------

    @property
    def access_token(self) -> str:
        """What wechatpy puts in every request: the shared token (fetched if none is valid)."""
        value = self.token().value
        self._used.value = value
        return value

    def token(self, *, stale: str | None = None) -> Token:
        """A valid token; `stale` is one the platform just refused (never returned again)."""
        now = self._now()
        cached = self._tokens.cached(self.token_name, now=now, margin=TOKEN_MARGIN)
        if cached is not None and cached.value != stale:
            return cached
        return self._tokens.refresh(
            self.token_name,
            self._fetch_token,
            now=self._now,
            margin=TOKEN_MARGIN,
            stale=stale,
        )

    def fetch_access_token(self) -> dict[str, Any]:
        """wechatpy's hook (its auto-retry is off here): refresh the shared token."""
        token = self.token(stale=getattr(self._used, "value", None))
        self.session.set(self.access_token_key, token.value)
        return {"access_token": token.value}

    def _fetch_token(self) -> tuple[str, int]:
        """GET {api_base}/cgi-bin/token: called by `TokenCache.refresh`, one worker at a time."""
        try:
            response = self._http.get(
                f"{self.api_base}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                },
                timeout=self.timeout,
            )
            response.raise_for_status()
            result = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise WechatApiError(None, f"token fetch failed: {type(exc).__name__}") from None
        if not isinstance(result, dict) or not result.get("access_token"):
            code = result.get("errcode") if isinstance(result, dict) else None
            raise WechatApiError(_int(code), "token fetch refused")
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)

    # ----- calls ------------------------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """Run one wechatpy call; re-fetch the token once if the platform refused it."""
        try:
            return _converted(fn)
        except WechatApiError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
        self.token(stale=getattr(self._used, "value", None))
        return _converted(fn)

    def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (`message/custom/send`)."""
        self.call(lambda: self.message.send_text(openid, text))

    def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], *, url: str | None = None
    ) -> None:
        """A template message (`message/template/send`), opening `url` when tapped."""
        self.call(lambda: self.message.send_template(openid, template_id, data, url=url))

    def send_subscribe(
        self, openid: str, template_id: str, data: dict[str, Any], *, page: str | None = None
    ) -> None:
        """A subscription notice (订阅通知, `message/subscribe/bizsend`: wechatpy's
        `send_subscribe_message`, not the one-time `send_subscribe_template`), opening the web
        page `page` when tapped."""
        message = self.message
        self.call(lambda: message.send_subscribe_message(openid, template_id, data, page=page))

    def create_menu(self, menu: dict[str, Any]) -> None:
        self.call(lambda: self.menu.create(menu))

    def download(self, media_id: str, *, limit: int) -> tuple[str | None, bytes]:
        """A temporary media file (`media/get`) as (its file name if given, content).

        Streams it and stops past `limit` bytes (raises MediaTooLarge): wechatpy's
        `media.download` would read any size into memory first. The shared access token
        unreadable (its store away) raises the cache's Unavailable, so the push is answered
        503 and retried; another token-cache failure is a WechatApiError like any failed
        download.
        """
        try:
            return self.call(lambda: self._download(media_id, limit))
        except EdgeError as exc:
            raise WechatApiError(None, f"token store failed: {type(exc).__name__}") from None

    def _download(self, media_id: str, limit: int) -> tuple[str | None, bytes]:
        try:
            with self._http.get(
                f"{self.API_BASE_URL}media/get",
                params={"access_token": self.access_token, "media_id": media_id},
                timeout=self.timeout,
                stream=True,
            ) as response:
                response.raise_for_status()
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise MediaTooLarge(f"{declared} bytes", int(declared))
                kind = response.headers.get("Content-Type", "")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise MediaTooLarge(f"more than {limit} bytes")
                    chunks.append(chunk)
                disposition = response.headers.get("Content-Disposition", "")
        except requests.RequestException as exc:
            raise WechatApiError(None, f"media download failed: {type(exc).__name__}") from None
        data = b"".join(chunks)
        if kind.startswith(("application/json", "text/plain")):
            # An error answer ({"errcode": 40007, ...}) instead of the file. Not through
            # wechatpy's `_handle_result`: it wants a response object, and a dict made it fail
            # with an AttributeError, a 500 for every retry of the push (issue 8).
            result = _json(data)
            errcode = _int(result.get("errcode"))
            detail = str(result.get("errmsg", ""))[:120]
            raise WechatApiError(errcode if errcode else -1, detail or "media/get answered JSON")
        return _filename(disposition), data


def _converted(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except WeChatClientException as exc:
        raise WechatApiError(_int(exc.errcode), str(exc.errmsg or "")[:120]) from None
    except requests.RequestException as exc:
        raise WechatApiError(None, f"request failed: {type(exc).__name__}") from None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return {"errcode": -1, "errmsg": "unreadable answer"}
    return value if isinstance(value, dict) else {"errcode": -1, "errmsg": "unexpected answer"}


def _filename(disposition: str) -> str | None:
    match = re.search(r'filename="?([^";]+)"?', disposition)
    return match.group(1).strip() if match else None
