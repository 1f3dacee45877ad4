"""A bounded fuzzer on `POST /telegram` (issue 8): the valid secret header, malformed content.

`awardbot serve` (the real `Server`, tests/support/serving.py) runs with the Telegram channel in
webhook mode on each library, against the fake Bot API, on a thread of its own; hypothesis posts
bodies that are not Telegram updates — a field of the wrong type or out of range, a required one
missing, nesting deeper than any update, NaN, invalid UTF-8, truncated or non-object JSON — each
built from a real update so that it is malformed for one known reason. Every one must be a 400
(never a 500), send nothing, and record nothing (rows of users, conversation_sessions and
inbound_deliveries before and after). A real update reusing one of the ids then still runs.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.drivers.telegram import CHAT, LIBRARIES, SECRET, TelegramBot, telegram_bot

from storage.store import Store

T = TypeVar("T")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TABLES = ("users", "conversation_sessions", "inbound_deliveries")
EXAMPLES = 150  # per library and store backend; a few seconds each
UPDATE_ID = 7000  # every malformed body carries this id (or a broken one)


def state(store: Store) -> dict[str, int]:
    with store.reading() as conn:
        return {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in TABLES
        }


# ----- the bot on a thread of its own (hypothesis drives it synchronously) -----------------------


class ThreadedBot:
    """`telegram_bot(...)` on its own event loop in a thread; `post` blocks until answered."""

    def __init__(self, store: Store, library: str, files_dir: Path) -> None:
        self._args = (store, library, files_dir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = AsyncExitStack()
        self.bot: TelegramBot | None = None
        self._http: ClientSession | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def __enter__(self) -> ThreadedBot:
        self._thread.start()
        self._run(self._enter())
        return self

    async def _enter(self) -> None:
        store, library, files_dir = self._args
        self.bot = await self._stack.enter_async_context(
            telegram_bot(store, library=library, mode="webhook", files_dir=files_dir)
        )
        self._http = await self._stack.enter_async_context(ClientSession())

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self._stack.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def post(self, body: bytes) -> tuple[int, str]:
        return self._run(self._post(body))

    async def _post(self, body: bytes) -> tuple[int, str]:
        assert self.bot is not None
        assert self._http is not None
        async with self._http.post(
            f"{self.bot.url}/telegram", data=body, headers={SECRET_HEADER: SECRET}
        ) as resp:
            return resp.status, await resp.text()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._run(coro)


# ----- real updates to break ---------------------------------------------------------------------

USER = {"id": CHAT, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"}
PRIVATE = {"id": CHAT, "type": "private", "first_name": "测试"}
DATE = 1_700_000_000


def text_update() -> dict[str, Any]:
    return {
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 11,
            "date": DATE,
            "chat": dict(PRIVATE),
            "from": dict(USER),
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


def press_update() -> dict[str, Any]:
    keyboard = {"inline_keyboard": [[{"text": "是", "callback_data": "yes"}]]}
    return {
        "update_id": UPDATE_ID,
        "callback_query": {
            "id": "901",
            "from": dict(USER),
            "chat_instance": "ci1",
            "data": "yes",
            "message": {
                "message_id": 10,
                "date": DATE,
                "chat": dict(PRIVATE),
                "from": {"id": 123456789, "is_bot": True, "first_name": "bot"},
                "text": "请选择：",
                "reply_markup": keyboard,
            },
        },
    }


def photo_update() -> dict[str, Any]:
    sizes = [
        {"file_id": "p-s", "file_unique_id": "ps", "width": 90, "height": 60, "file_size": 900},
        {"file_id": "p", "file_unique_id": "pu", "width": 1280, "height": 853, "file_size": 9},
    ]
    return {
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 12,
            "date": DATE,
            "chat": dict(PRIVATE),
            "from": dict(USER),
            "photo": sizes,
        },
    }


def document_update() -> dict[str, Any]:
    document = {
        "file_id": "d",
        "file_unique_id": "du",
        "file_name": "申报表.pdf",
        "mime_type": "application/pdf",
        "file_size": 10,
    }
    return {
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 13,
            "date": DATE,
            "chat": dict(PRIVATE),
            "from": dict(USER),
            "document": document,
        },
    }


TEMPLATES = [text_update, press_update, photo_update, document_update]

# What each field is: (path, kind, required: leaving it out is malformed). Kinds: id (any int
# in range), update_id, date, str, bool, object, list. A path's steps are keys, or list indexes.
Path_ = tuple[str | int, ...]
USER_FIELDS: list[tuple[Path_, str, bool]] = [
    (("id",), "id", True),
    (("is_bot",), "bool", True),
    (("first_name",), "str", True),
]
MESSAGE_FIELDS: list[tuple[Path_, str, bool]] = [
    ((), "object", False),  # without it the update is one of those not for us: a quiet 200
    (("message_id",), "id", True),
    (("date",), "date", True),
    (("chat",), "object", True),
    (("chat", "id"), "id", True),
    (("chat", "type"), "str", True),
]


def fields(update: dict[str, Any]) -> list[tuple[Path_, str, bool]]:
    """Every field the shape check reads in this update, with its kind."""
    out: list[tuple[Path_, str, bool]] = [(("update_id",), "update_id", True)]

    def message(at: Path_, body: dict[str, Any]) -> None:
        out.extend((at + p, kind, req) for p, kind, req in MESSAGE_FIELDS)
        if "from" in body:
            out.append((at + ("from",), "object", False))
            out.extend((at + ("from",) + p, kind, req) for p, kind, req in USER_FIELDS)
        if "text" in body:
            out.append((at + ("text",), "str", False))
        for i, _ in enumerate(body.get("photo", [])):
            size = at + ("photo", i)
            out.append((size, "object", False))  # (a list item: dropping it leaves a list)
            out.extend(
                [(size + ("file_id",), "str", True), (size + ("file_unique_id",), "str", True)]
            )
            out.extend([(size + ("width",), "id", True), (size + ("height",), "id", True)])
            out.append((size + ("file_size",), "id", False))
        if "photo" in body:
            out.append((at + ("photo",), "list", False))
        if "document" in body:
            doc = at + ("document",)
            out.append((doc, "object", False))
            out.extend(
                [(doc + ("file_id",), "str", True), (doc + ("file_unique_id",), "str", True)]
            )
            out.extend([(doc + ("file_name",), "str", False), (doc + ("file_size",), "id", False)])
        if "reply_markup" in body:
            markup = at + ("reply_markup",)
            out.append((markup, "object", False))
            out.append((markup + ("inline_keyboard",), "list", False))
            out.append((markup + ("inline_keyboard", 0), "list", False))
            button = markup + ("inline_keyboard", 0, 0)
            out.append((button, "object", False))
            out.append((button + ("text",), "str", True))
            out.append((button + ("callback_data",), "str", False))

    if "message" in update:
        message(("message",), update["message"])
    if "callback_query" in update:
        query = ("callback_query",)
        out.append((query, "object", False))
        out.extend([(query + ("id",), "str", True), (query + ("chat_instance",), "str", True)])
        out.append((query + ("data",), "str", False))
        out.append((query + ("from",), "object", True))
        out.extend((query + ("from",) + p, kind, req) for p, kind, req in USER_FIELDS)
        message(query + ("message",), update["callback_query"]["message"])
    return out


HUGE = [2**53, -(2**53), 10**20, -(10**30), 2**63]
NOT_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfff"]  # NUL, lone surrogates (JSON \u escapes)
DEEP = 40  # deeper than MAX_DEPTH wherever it is put

OTHER_TYPES: dict[str, list[Any]] = {
    "int": [0, 1, -5, 7000],
    "bool": [True, False],
    "float": [1.5, 0.0, -3.25, 1e20],
    "str": ["", "7000", "abc", "true"],
    "list": [[], [1], [{"id": 1}]],
    "object": [{}, {"id": 1}, {"text": "x"}],
}


def bad_values(kind: str) -> st.SearchStrategy[Any]:
    """Values that are wrong for a field of this kind, whatever else the update holds."""
    wrong: list[Any] = []
    for name, values in OTHER_TYPES.items():
        if name == kind or (name == "int" and kind in ("id", "update_id", "date")):
            continue
        wrong += values
    if kind == "id":
        wrong += HUGE
    elif kind == "update_id":
        wrong += [-1, -7000, 2**31, 2**32, *HUGE]
    elif kind == "date":
        wrong += [-1, 2**32, 10**20, -(10**20)]
    elif kind == "str":
        wrong += NOT_TEXT
    elif kind == "list":
        wrong = [v for v in wrong if v != []]
        wrong += [[1, 2], ["x"], [None]]
    if kind in ("object",):
        wrong = [v for v in wrong if not isinstance(v, dict)]
    return st.sampled_from(wrong)


def _at(data: Any, path: Path_) -> Any:
    for step in path:
        data = data[step]
    return data


@st.composite
def wrong_field(draw: st.DrawFn) -> tuple[str, bytes]:
    """One field of a real update made wrong: another type, out of range, or missing."""
    update = draw(st.sampled_from(TEMPLATES))()
    path, kind, required = draw(st.sampled_from(fields(update)))
    parent = _at(update, path[:-1])
    if required and draw(st.booleans()):
        del parent[path[-1]]
        return f"missing {'.'.join(map(str, path))}", dumps(update)
    value = draw(bad_values(kind))
    parent[path[-1]] = copy.deepcopy(value)
    return f"{'.'.join(map(str, path))} = {value!r}", dumps(update)


def _objects(data: Any, at: Path_ = ()) -> Iterator[Path_]:
    if isinstance(data, dict):
        yield at
        for key, value in data.items():
            yield from _objects(value, at + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _objects(value, at + (i,))


def _deep(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"a": leaf}
    return leaf


@st.composite
def junk_inside(draw: st.DrawFn) -> tuple[str, bytes]:
    """Something no update holds, put into any object of a real one under any name."""
    update = draw(st.sampled_from(TEMPLATES))()
    at = draw(st.sampled_from(list(_objects(update))))
    key = draw(st.sampled_from(["x", "extra", "caption", "forward_date", "edit_date", "text"]))
    kind = draw(st.sampled_from(["deep", "huge", "date", "nan", "text"]))
    value: Any
    if kind == "deep":
        value = _deep(draw(st.integers(DEEP, 200)), draw(st.sampled_from([1, "x", None])))
    elif kind == "huge":
        value = draw(st.sampled_from(HUGE))
    elif kind == "date":
        key = draw(st.sampled_from(["date", "edit_date", "forward_date", "until_date"]))
        value = draw(st.sampled_from([-1, 2**32, 10**20, 1e300, 2.5]))
    elif kind == "nan":
        value = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    else:
        value = draw(st.sampled_from(NOT_TEXT))
    if at == () and key == "x" and kind == "deep":
        key = "update_id"  # the id itself replaced
    _at(update, at)[key] = value
    return f"{'.'.join(map(str, at))}.{key} = {kind}", dumps(update)


@st.composite
def broken_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real update's body cut short, or with bytes that are not UTF-8, or nested hugely."""
    body = dumps(draw(st.sampled_from(TEMPLATES))())
    how = draw(st.sampled_from(["truncated", "not utf-8", "very deep"]))
    if how == "truncated":
        return how, body[: draw(st.integers(0, len(body) - 1))]
    if how == "not utf-8":
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]))
        return how, body[:at] + junk + body[at:]
    depth = draw(st.integers(1_000, 50_000))
    return how, body[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"


JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def not_an_update(draw: st.DrawFn) -> tuple[str, bytes]:
    """JSON that is not an object, or an object without a valid update_id."""
    if draw(st.booleans()):
        value = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return "not an object", dumps(value)
    body = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4))
    body.pop("update_id", None)
    if draw(st.booleans()):
        body["update_id"] = draw(bad_values("update_id"))
    return "no valid update_id", dumps(body)


def dumps(value: Any) -> bytes:
    # ASCII with \u escapes: how a lone surrogate or a NUL reaches us; NaN as JSON's NaN.
    return json.dumps(value, ensure_ascii=True).encode()


# The updates broken field by field weigh double: they are where the libraries differ.
MALFORMED = st.one_of(
    wrong_field(), wrong_field(), junk_inside(), junk_inside(), broken_bytes(), not_an_update()
)


# ----- the fuzzer --------------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_malformed_updates_get_400_and_change_nothing(
    store: Store, tmp_path: Path, library: str
) -> None:
    with ThreadedBot(store, library, tmp_path) as bot:
        assert bot.bot is not None
        fake = bot.bot.fake
        before = state(store)
        seen: list[tuple[str, int, str]] = []

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=MALFORMED)
        def post_malformed(case: tuple[str, bytes]) -> None:
            why, body = case
            status, text = bot.post(body)
            seen.append((why, status, text))
            assert status == 400, f"{why}: {status} {text}"
            assert state(store) == before, why

        post_malformed()
        reasons = Counter(text.split(":")[0] for _, _, text in seen)
        print(f"telegram fuzz ({library}): {len(seen)} bodies, all 400: {dict(reasons)}")
        assert len(seen) >= EXAMPLES // 2
        assert all(status == 400 for _, status, _ in seen)
        assert fake.calls_of("sendMessage") == []
        assert fake.calls_of("answerCallbackQuery") == []

        # The bot still answers, and none of those bodies took the id they carried.
        update = text_update()
        status, _ = bot.post(dumps(update))
        assert status == 200
        bot.call(bot.bot.adapter.settled(UPDATE_ID))
        assert len(fake.calls_of("sendMessage")) == 2  # greeting + the campaign question
        assert state(store)["inbound_deliveries"] == before["inbound_deliveries"] + 1
