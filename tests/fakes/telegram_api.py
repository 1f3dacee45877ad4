"""A fake Telegram Bot API on 127.0.0.1 that python-telegram-bot and aiogram really talk to.

    async with FakeTelegram() as tg:
        settings = TelegramSettings(tg.token, ..., api_base=tg.url, ...)
        tg.push_update(tg.text_update(CHAT, "/start"))       # polling: served by getUpdates
        await tg.post_webhook(tg.text_update(CHAT, "/start"))  # webhook: POSTed like Telegram
        tg.sent(CHAT)                                          # the bot's messages, as stored

Routes: `/bot<token>/<method>` (JSON, urlencoded and multipart bodies, GET query too) for
getMe, getUpdates (long poll honouring offset and timeout), setWebhook, deleteWebhook,
getWebhookInfo, sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery,
getFile, sendDocument, sendPhoto (multipart uploads: `uploads(chat)` gives what arrived);
`/file/bot<token>/<file_path>` downloads. Every call is recorded with
its decoded parameters and a monotonic timestamp. `fail(method, times, retry_after)` answers 429
like Telegram; `block(chat)` answers 403 as for a user who blocked the bot; `slow(method, s)`
answers that method `s` seconds late (a slow getMe keeps a bot starting). Responses are real
Bot API objects (message_id, date, chat, from...) so both libraries parse them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

TOKEN = "123456789:AAFakeTokenForTests_only-123"
BOT_ID = 123456789
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_DOWNLOAD = 20 * 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
UPLOADS = {"sendDocument": "document", "sendPhoto": "photo"}  # method -> its file field
MAX_PHOTO = 10 * 1024 * 1024
_NUMERIC = {"chat_id", "message_id", "offset", "limit", "timeout", "max_connections"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _NUMERIC:
        try:
            return int(value)
        except ValueError:
            return value
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if value in ("true", "false"):
        return value == "true"
    return value


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


class FakeTelegram:
    """The fake server; an async context manager (binds a free port on 127.0.0.1)."""

    def __init__(self, token: str = TOKEN, *, port: int = 0) -> None:
        self.token = token
        self.port = port
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] = {}
        self.files: dict[str, tuple[bytes | None, int, str]] = {}  # id -> data, size, path
        self.messages: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.blocked: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._callback_ids = itertools.count(1)
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._delays: dict[str, float] = {}
        self._arrived = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.url = ""

    # ----- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._client = ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._arrived.set()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----- what tests set up --------------------------------------------------------------

    def fail(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get 429 Too Many Requests."""
        for _ in range(times):
            self._failures[method].append(
                ApiError(
                    429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
                )
            )

    def error(self, method: str, code: int, description: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` fail with this Bot API error."""
        for _ in range(times):
            self._failures[method].append(ApiError(code, description))

    def slow(self, method: str, seconds: float) -> None:
        """Every call of `method` is answered `seconds` late (recorded when it arrives)."""
        self._delays[method] = seconds

    def block(self, chat_id: int) -> None:
        self.blocked.add(chat_id)

    def add_file(
        self, file_id: str, data: bytes | None, *, size: int | None = None, path: str = ""
    ) -> None:
        """A file users can send; `data=None` with a `size` for one too big to download."""
        size = len(data) if data is not None else (size or 0)
        self.files[file_id] = (data, size, path or f"documents/{file_id}")

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (polling mode)."""
        self._updates.append(update)
        self._arrived.set()
        return update

    async def post_webhook(
        self, update: dict[str, Any], *, secret: str | None | bool = True
    ) -> int:
        """POST the update to the registered webhook like Telegram; returns the HTTP status.

        `secret=True` sends the registered secret token; a string sends that; None sends none.
        """
        assert self._client is not None
        assert self.webhook.get("url"), "no webhook set"
        headers = {}
        token = self.webhook.get("secret_token") if secret is True else secret
        if isinstance(token, str):
            headers[SECRET_HEADER] = token
        async with self._client.post(self.webhook["url"], json=update, headers=headers) as resp:
            await resp.read()
            return resp.status

    # ----- what tests read ----------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def uploads(self, chat_id: int) -> list[tuple[str, str, bytes]]:
        """(method, file name, bytes) of every file the bot sent to this chat, in order."""
        out = []
        for call in self.calls:
            field_name = UPLOADS.get(call.method)
            if field_name is None or call.params.get("chat_id") != chat_id:
                continue
            upload = call.params.get(field_name)
            if isinstance(upload, dict):
                out.append((call.method, upload["filename"], upload["data"]))
        return out

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in this chat, as they stand now (edits applied), in order."""
        return [m for _, m in sorted(self.messages[chat_id].items()) if m["from"]["id"] == BOT_ID]

    # ----- updates like Telegram sends them -----------------------------------------------

    def _user(self, chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"}

    def _chat(self, chat_id: int, kind: str = "private") -> dict[str, Any]:
        if kind == "private":
            return {"id": chat_id, "type": "private", "first_name": "测试"}
        return {"id": chat_id, "type": kind, "title": "测试群"}

    def _user_message(
        self, chat_id: int, chat_type: str = "private", **body: Any
    ) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type),
            "from": self._user(abs(chat_id)),
            **body,
        }
        self.messages[chat_id][message["message_id"]] = message
        return message

    def _update(self, **body: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **body}

    def text_update(
        self, chat_id: int, text: str, *, chat_type: str = "private"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._update(message=self._user_message(chat_id, chat_type, **body))

    def callback_update(self, chat_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        """The user presses the button with `data` under the bot's `message`."""
        return self._update(
            callback_query={
                "id": str(next(self._callback_ids)),
                "from": self._user(chat_id),
                "message": message,
                "chat_instance": f"ci{chat_id}",
                "data": data,
            }
        )

    def photo_update(self, chat_id: int, file_id: str) -> dict[str, Any]:
        """A photo in three sizes; `file_id` (registered with add_file) is the largest."""
        _, size, _ = self.files[file_id]
        sizes = [
            {"file_id": f"{file_id}-s", "file_unique_id": f"{file_id}s", "width": 90,
             "height": 60, "file_size": 900},
            {"file_id": f"{file_id}-m", "file_unique_id": f"{file_id}m", "width": 320,
             "height": 213, "file_size": 9000},
            {"file_id": file_id, "file_unique_id": f"{file_id}u", "width": 1280,
             "height": 853, "file_size": size},
        ]  # fmt: skip
        return self._update(message=self._user_message(chat_id, photo=sizes))

    def document_update(
        self, chat_id: int, file_id: str, file_name: str, mime_type: str = "application/pdf"
    ) -> dict[str, Any]:
        _, size, _ = self.files[file_id]
        document = {
            "file_id": file_id,
            "file_unique_id": f"{file_id}u",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": size,
        }
        return self._update(message=self._user_message(chat_id, document=document))

    def service_update(
        self, chat_id: int, *, chat_type: str = "group", **body: Any
    ) -> dict[str, Any]:
        """A service message (`pinned_message=...`, `new_chat_members=[...]`...) in a chat."""
        return self._update(message=self._user_message(chat_id, chat_type, **body))

    def user(self, user_id: int) -> dict[str, Any]:
        """A person as updates carry them (`from`, `new_chat_members`...)."""
        return self._user(user_id)

    def sticker_update(self, chat_id: int) -> dict[str, Any]:
        sticker = {
            "file_id": "sticker1", "file_unique_id": "st1", "type": "regular", "width": 512,
            "height": 512, "is_animated": False, "is_video": False,
        }  # fmt: skip
        return self._update(message=self._user_message(chat_id, sticker=sticker))

    # ----- the API ------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        params[name] = {"filename": value.filename, "data": value.file.read()}
                    else:
                        params[name] = value
        # A file may be named by reference (`"document": "attach://<part>"`, as aiogram sends it).
        for name, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[name] = params.pop(value.removeprefix("attach://"), value)
        return {name: _decode(name, value) for name, value in params.items()}

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params))
        delay = self._delays.get(method)
        if delay:
            await asyncio.sleep(delay)
        failures = self._failures.get(method)
        if failures:
            return self._error(failures.popleft())
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(ApiError(404, "Not Found: method not found"))
        try:
            result = await handler(params)
        except ApiError as exc:
            return self._error(exc)
        return web.json_response({"ok": True, "result": result})

    def _error(self, exc: ApiError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": exc.code,
            "description": exc.description,
        }
        if exc.parameters:
            body["parameters"] = exc.parameters
        return web.json_response(body, status=exc.code)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        self.calls.append(Call("download", {"file_path": path}))
        for data, _, file_path in self.files.values():
            if file_path == path and data is not None:
                return web.Response(body=data)
        return web.Response(status=404)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "评选申报助手",
            "username": "award_test_bot",
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self._bot_user()

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing:
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return self._updates[:limit]

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        if not str(params.get("url", "")).startswith(("http://", "https://")) and params.get(
            "url"
        ):
            raise ApiError(400, "Bad Request: bad webhook: invalid URL")
        self.webhook = {
            "url": params.get("url", ""),
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {}
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _chat_of(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup  # type: ignore[no-any-return]

    def _bot_message(self, chat_id: int, **body: Any) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(),
            **{k: v for k, v in body.items() if v is not None},
        }
        self.messages[chat_id][message["message_id"]] = message
        return message

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        return self._bot_message(chat_id, text=text, reply_markup=markup)

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_of(params)
        message = self.messages[chat_id].get(params.get("message_id"))  # type: ignore[arg-type]
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._stored(params)
        text = str(params.get("text", ""))
        if _utf16_len(text) > MAX_TEXT or not text.strip():
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        message["text"] = text
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._stored(params)
        markup = self._check_markup(params.get("reply_markup"))
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        return True

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        _, size, path = self.files[file_id]
        if size > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": f"{file_id}u",
            "file_size": size,
            "file_path": path,
        }

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        photo = params.get("photo")
        if not isinstance(photo, dict) or not photo["data"]:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if len(photo["data"]) > MAX_PHOTO:
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        file_id = f"sent{len(self.files) + 1}"
        self.add_file(file_id, photo["data"])
        size = {"file_id": file_id, "file_unique_id": f"{file_id}u", "width": 800,
                "height": 600, "file_size": len(photo["data"])}  # fmt: skip
        return self._bot_message(chat_id, photo=[size], caption=params.get("caption"))

    async def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        document = params.get("document")
        name = document["filename"] if isinstance(document, dict) else "document"
        file_id = f"sent{len(self.files) + 1}"
        data = document["data"] if isinstance(document, dict) else b""
        self.add_file(file_id, data)
        return self._bot_message(
            chat_id,
            document={
                "file_id": file_id,
                "file_unique_id": f"{file_id}u",
                "file_name": name,
                "file_size": len(data),
            },
            caption=params.get("caption"),
        )


# ----- try the bot by hand: a terminal "Telegram app" for `awardbot serve` in polling mode -----


async def _chat(port: int) -> None:
    from support.drivers.telegram import TelegramDriver

    async with FakeTelegram(port=port) as fake:
        print(f"fake Bot API on {fake.url}; in another terminal run:")
        print(
            f"  AWARDBOT_TELEGRAM_TOKEN='{fake.token}' AWARDBOT_TELEGRAM_MODE=polling "
            f"AWARDBOT_TELEGRAM_API_BASE={fake.url} awardbot serve"
        )
        print("then type here (a number or a choice's value presses its button; Ctrl-D quits)")
        user = TelegramDriver(fake, mode="polling")
        busy = asyncio.Lock()

        async def pushed() -> None:
            """What the bot sends unasked (notifications, reminders), shown as it comes."""
            while True:
                await asyncio.sleep(1)
                async with busy:
                    text = user._collect()
                if text:
                    print(f"\n{text}\n> ", end="", flush=True)

        printer = asyncio.create_task(pushed())
        try:
            while True:
                try:
                    line = await asyncio.to_thread(input, "> ")
                except EOFError:
                    return
                if line.strip():
                    async with busy:
                        print(await user.send(line.strip()))
        finally:
            printer.cancel()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a fake Telegram Bot API with a chat prompt")
    parser.add_argument("--port", type=int, default=8081)
    asyncio.run(_chat(parser.parse_args().port))
