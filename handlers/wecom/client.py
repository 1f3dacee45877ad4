"""The WeCom API as the adapter and the sender use it: wechatpy's enterprise client on our API
base, one access token shared by every worker, and WeChat errors turned into our own.

wechatpy keeps the token in a per-process session and refreshes it without a lock; we keep it
in a shared `TokenCache` instead (`handlers.ports`; the database's in `serve`): one worker
fetches it at a time, the others read it. A call the platform refuses for its token (40001 / 40014
/ 42001) refreshes once with that token named stale, then is tried again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from handlers.config import WecomSettings
from handlers.files import is_image, media_type
from handlers.ports import Token, TokenCache

T = TypeVar("T")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid credential / token, token expired
TOKEN_MARGIN = timedelta(minutes=5)  # refresh a token this long before it expires
RATE_LIMITED = 45009  # API frequency or quota exceeded
BUSY = -1  # "system busy, try again"
ALL_RECIPIENTS_INVALID = 81013
USER_NOT_FOUND = 60111
IMAGE_LIMIT = 10 * 1024 * 1024  # WeCom's largest image; a larger one goes as a file (20 MB)
RETRYABLE = frozenset({RATE_LIMITED, 45011, BUSY, *TOKEN_ERRORS})


class WecomApiError(Exception):
    """A WeCom API call failed; `reason` is one line without message text or user data."""

    def __init__(self, reason: str, *, errcode: int | None, retryable: bool) -> None:
        self.reason = reason
        self.errcode = errcode  # None: the request did not get a WeCom answer (network, HTTP)
        self.retryable = retryable
        super().__init__(reason)


class _Client(WeChatClient):  # type: ignore[misc]
    """wechatpy's enterprise client on `api_base`, taking its token from `tokens()`.

    `fetch_access_token` is overridden because wechatpy's hard-codes the public host (and
    sends it without a timeout); nothing of wechatpy's own token cache is used.
    """

    def __init__(self, settings: WecomSettings, tokens: Callable[[], str], timeout: float):
        super().__init__(settings.corp_id, settings.secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{settings.api_base}/cgi-bin/"
        self._gettoken_url = f"{settings.api_base}/cgi-bin/gettoken"
        self._tokens = tokens

    @property
    def access_token(self) -> str:
        return self._tokens()

    def fetch_access_token(self) -> dict[str, Any]:
        response = self._http.get(
            self._gettoken_url,
            params={"corpid": self.corp_id, "corpsecret": self.secret},
            timeout=self.timeout,
        )
        try:
            response.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(
                errcode=None, errmsg=None, client=self, request=exc.request, response=exc.response
            ) from None
        result: dict[str, Any] = response.json()
        errcode = int(result.get("errcode", 0) or 0)
        if errcode != 0 or "access_token" not in result:
            raise WeChatClientException(
                errcode, result.get("errmsg", ""), client=self, response=response
            )
        return result

    def close(self) -> None:
        self._http.close()


class WecomApi:
    """The calls we make to WeCom, safe to use from several threads at once."""

    def __init__(
        self,
        settings: WecomSettings,
        tokens: TokenCache,
        *,
        clock: Callable[[], datetime],
        timeout: float = 10.0,
    ) -> None:
        self.agent_id = settings.agent_id
        self.notice_url = settings.notice_url  # where a notice's text card leads; None: none
        self.token_name = f"wecom:{settings.corp_id}:{settings.agent_id}"
        self._tokens = tokens
        self._clock = clock
        self._client = _Client(settings, self._token, timeout)
        self._lock = threading.Lock()
        self._current: Token | None = None

    def send_text(self, user_id: str, content: str) -> None:
        """One app text message to one member; raises WecomApiError if WeCom did not take it.

        WeCom answers errcode 0 with `invaliduser` when a recipient is unknown or outside the
        app's visible range: the message went nowhere, so that is an error too.
        """
        result = self._call(
            lambda: self._client.message.send_text(self.agent_id, [user_id], content)
        )
        _check_delivered(result)

    def send_text_card(
        self, user_id: str, *, title: str, description: str, url: str, button: str
    ) -> None:
        """One app text card (`msgtype: textcard`) to one member: a bold title, a description
        (WeCom's small HTML: `<div class="gray|normal|highlight">`, `<br>`), and a button
        leading to `url`. WeCom cuts a title past 128 bytes and a description past 512 bytes
        of UTF-8 without saying so: the sender keeps within them. WecomApiError if refused."""
        result = self._call(
            lambda: self._client.message.send_text_card(
                self.agent_id, [user_id], title, description, url, btntxt=button
            )
        )
        _check_delivered(result)

    def send_file(self, user_id: str, filename: str, kind: str, data: bytes) -> None:
        """One attachment as an app message: an image (jpg/png up to 10 MB) or a file. The
        bytes go up as temporary media (`media/upload`, multipart under `filename`), then the
        message names the media id. WecomApiError if either call is refused."""
        media = "image" if is_image(kind) and len(data) <= IMAGE_LIMIT else "file"
        uploaded = self._call(
            lambda: self._client.media.upload(media, (filename, data, media_type(kind)))
        )
        media_id = uploaded.get("media_id") if isinstance(uploaded, dict) else None
        if not media_id:
            raise WecomApiError("上传临时素材失败 (no media_id)", errcode=None, retryable=True)
        message = self._client.message
        send = message.send_image if media == "image" else message.send_file
        result = self._call(lambda: send(self.agent_id, [user_id], media_id))
        _check_delivered(result)

    def close(self) -> None:
        self._client.close()

    # ----- token -----------------------------------------------------------------------------

    def _token(self) -> str:
        with self._lock:
            current = self._current
        if current is not None and current.expires_at - TOKEN_MARGIN > self._clock():
            return current.value
        token = self._tokens.cached(self.token_name, now=self._clock(), margin=TOKEN_MARGIN)
        if token is None:
            token = self._refresh(stale=None)
        with self._lock:
            self._current = token
        return token.value

    def _refresh(self, *, stale: str | None) -> Token:
        token = self._tokens.refresh(
            self.token_name,
            self._fetch,
            now=self._clock,
            margin=TOKEN_MARGIN,
            stale=stale,
        )
        with self._lock:
            self._current = token
        return token

    def _fetch(self) -> tuple[str, int]:
        try:
            result = self._client.fetch_access_token()
        except WeChatClientException as exc:
            code = exc.errcode
            raise WecomApiError(
                f"获取 access_token 失败 (gettoken errcode {code})",
                errcode=code,
                retryable=code is None or code in (BUSY, RATE_LIMITED),
            ) from None
        except requests.RequestException as exc:
            raise _network(exc) from None
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    # ----- calls ---------------------------------------------------------------------------

    def _call(self, call: Callable[[], T]) -> T:
        try:
            used = self._token()
            try:
                return call()
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_ERRORS:
                    raise
                self._refresh(stale=used)  # once: another worker may have refreshed already
                return call()
        except WeChatClientException as exc:
            raise _converted(exc) from None
        except requests.RequestException as exc:
            raise _network(exc) from None


def _check_delivered(result: object) -> None:
    """WeCom answers errcode 0 with `invaliduser` when the recipient is unknown or outside the
    app's visible range: the message went nowhere, so that is an error too."""
    if isinstance(result, dict) and result.get("invaliduser"):
        raise WecomApiError(
            "接收人无效或不在应用可见范围 (invaliduser)", errcode=0, retryable=False
        )


def _converted(exc: WeChatClientException) -> WecomApiError:
    code = exc.errcode
    if code is None:
        status = getattr(exc.response, "status_code", None)
        return WecomApiError(
            f"企业微信接口 HTTP 错误 (HTTP {status})", errcode=None, retryable=True
        )
    code = int(code)
    if code == RATE_LIMITED:
        reason = "企业微信接口调用超过频率限制 (errcode 45009)"
    elif code == ALL_RECIPIENTS_INVALID:
        reason = "接收人全部无效 (errcode 81013)"
    elif code == USER_NOT_FOUND:
        reason = "成员不存在 (errcode 60111)"
    elif code in TOKEN_ERRORS:
        reason = f"access_token 无效 (errcode {code})"
    else:
        reason = f"企业微信接口错误 (errcode {code})"
    return WecomApiError(reason, errcode=code, retryable=code in RETRYABLE)


def _network(exc: requests.RequestException) -> WecomApiError:
    return WecomApiError(
        f"企业微信接口网络错误 (network: {type(exc).__name__})", errcode=None, retryable=True
    )
