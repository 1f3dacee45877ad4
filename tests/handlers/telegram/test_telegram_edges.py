"""Issue 8 on the Telegram channel: start-up, bodies of the wrong shape, service messages, the
store down (webhook and polling), and what /metrics counts for each — through `awardbot serve`
(the real `Server`), both libraries, the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientSession
from fakes.telegram_api import FakeTelegram
from support.console_harness import FIXED_NOW, catalog
from support.drivers.telegram import (
    CHAT,
    LIBRARIES,
    SECRET,
    adapter_factory,
    telegram_bot,
    telegram_env,
)
from support.outage import FailingSteps
from support.serving import settings_for
from support.stores import store_url_for

from bot.server import Server
from bot.wiring import build_runtime
from conversations.texts import render
from handlers.base import Steps
from handlers.telegram.render import PRIVATE_ONLY
from storage.store import Store

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TABLES = ("users", "conversation_sessions", "inbound_deliveries")
REQUESTS = "awardbot_requests_total"
GROUP = -1001234567890


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: what these tests look at is the adapter's; the store's side of it (nothing
    recorded by a failed step, repeats) has its own tests on both backends, and the fuzzer
    (tests/reliability/test_fuzz_telegram.py) posts to both."""
    with store_url_for("sqlite", tmp_path) as url:
        yield url


def state(store: Store) -> dict[str, int]:
    """Rows of what a step records: who wrote, their conversation, the update ids taken."""
    with store.reading() as conn:
        return {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in TABLES
        }


def texts(fake: FakeTelegram, chat: int = CHAT) -> list[str]:
    """What the bot sent to `chat`, in order."""
    calls = fake.calls_of("sendMessage")
    return [str(c.params.get("text")) for c in calls if c.params.get("chat_id") == chat]


def failing(failures: int) -> tuple[list[FailingSteps], Any]:
    made: list[FailingSteps] = []

    def wrap(inner: Steps) -> Steps:
        made.append(FailingSteps(inner, failures))
        return made[0]

    return made, wrap


def fake_body(update: dict[str, Any]) -> bytes:
    return json.dumps(update).encode()


async def post_raw(url: str, body: bytes) -> tuple[int, str]:
    async with (
        ClientSession() as http,
        http.post(f"{url}/telegram", data=body, headers={SECRET_HEADER: SECRET}) as resp,
    ):
        return resp.status, await resp.text()


# ----- start-up --------------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_update_while_starting_gets_503_then_is_processed(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: `serve` listens before the channel has started (PTB's `initialize()` answered
    500 then); until the client started, Telegram gets a 503 and sends the update again."""
    async with FakeTelegram() as fake:
        fake.slow("getMe", 1.0)
        settings = settings_for(
            telegram_env(fake, library=library, mode="webhook"), files_dir=tmp_path
        )
        runtime = build_runtime(settings, catalog(), store, clock=lambda: FIXED_NOW)
        server = Server(
            settings, store, runtime, clock=lambda: FIXED_NOW, adapters=adapter_factory()
        )
        before = state(store)
        starting = asyncio.create_task(server.start("127.0.0.1", 0))
        try:
            async with asyncio.timeout(5):
                while not fake.calls_of("getMe"):  # noqa: ASYNC110 - the fake records, no event
                    await asyncio.sleep(0.01)
            update = fake.text_update(CHAT, "/start")
            status, _ = await post_raw(server.url, fake_body(update))
            assert status == 503
            assert not starting.done()  # it was still starting
            await starting
            assert state(store) == before
            assert fake.calls_of("sendMessage") == []
            assert server.metrics.value(
                REQUESTS, channel="telegram", outcome="unavailable", reason="starting"
            ) == 1  # fmt: skip

            # Telegram's retry, now that the bot is up, is processed.
            fake.webhook = {"url": f"{server.url}/telegram", "secret_token": SECRET}
            assert await fake.post_webhook(update) == 200
            adapter = server.adapters[0]
            await adapter.settled(update["update_id"])  # type: ignore[attr-defined]
            assert len(fake.calls_of("sendMessage")) == 2  # greeting + the campaign question
        finally:
            if not starting.done():
                starting.cancel()
            await server.stop()


# ----- the shape of an update, before anything is recorded -------------------------------------


def _text_update(update_id: Any = 5000, **message: Any) -> dict[str, Any]:
    body = {
        "message_id": 7,
        "date": 1_700_000_000,
        "chat": {"id": CHAT, "type": "private", "first_name": "测试"},
        "from": {"id": CHAT, "is_bot": False, "first_name": "测试"},
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    body.update(message)
    return {"update_id": update_id, "message": body}


WRONG_SHAPES = {
    "update_id true": _text_update(True),
    "update_id 2**31": _text_update(2**31),
    "update_id -1": _text_update(-1),
    "update_id 1.0": _text_update(1.0),
    "update_id '5000'": _text_update("5000"),
    "chat id a string": _text_update(chat={"id": "abc", "type": "private"}),
    "chat id true": _text_update(chat={"id": True, "type": "private"}),
    "chat id 10**30": _text_update(chat={"id": 10**30, "type": "private"}),
    "chat without type": _text_update(chat={"id": CHAT}),
    "message_id a string": _text_update(message_id="7"),
    "message_id false": _text_update(message_id=False),
    "text a number": _text_update(text=5),
    "date 10**20": _text_update(date=10**20),
    "edit_date 10**20": _text_update(edit_date=10**20),
    "date negative": _text_update(date=-(10**20)),
    "date 1e300": _text_update(date=1e300),
    "message a list": {"update_id": 5000, "message": [1, 2]},
    "no chat": {"update_id": 5000, "message": {"message_id": 1, "date": 1, "text": "hi"}},
    "press without from": {
        "update_id": 5000,
        "callback_query": {"id": "1", "chat_instance": "c", "data": "x"},
    },
    "press data a number": {
        "update_id": 5000,
        "callback_query": {
            "id": "1",
            "from": {"id": CHAT, "is_bot": False, "first_name": "x"},
            "chat_instance": "c",
            "data": 5,
        },
    },
}


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_update_of_the_wrong_shape_is_400_and_records_nothing(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: PTB does not check types (a chat id "abc" made a user), and an `update_id` of
    true was taken (`isinstance(True, int)`) — for update 1, so update 1 became a repeat."""
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        before = state(store)
        for name, update in WRONG_SHAPES.items():
            status, _ = await post_raw(tg.url, fake_body(update))
            assert status == 400, name
        await tg.gateway.drain(1)
        tg.gateway.closing = False
        assert state(store) == before
        assert tg.fake.calls_of("sendMessage") == []
        # A real update 1 (the id `true` stood for) is new.
        start = tg.fake.text_update(CHAT, "/start")
        start["update_id"] = 1
        assert await tg.fake.post_webhook(start) == 200
        await tg.adapter.settled(1)
        assert len(tg.fake.calls_of("sendMessage")) == 2
        metrics = tg.gateway.metrics
        refused = sum(
            metrics.value(REQUESTS, channel="telegram", outcome="refused", reason=reason)
            for reason in ("not_update", "shape", "bad_json")
        )
        assert refused == len(WRONG_SHAPES)
        assert metrics.value(REQUESTS, channel="telegram", outcome="refused",
                             reason="not_update") == 5  # fmt: skip


@pytest.mark.parametrize("library", LIBRARIES)
async def test_malformed_json_is_400_never_500(store: Store, tmp_path: Path, library: str) -> None:
    """Issue 8: nesting deep enough for a RecursionError was a 500."""
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        before = state(store)
        deep_reply = _text_update()
        for _ in range(60):  # Telegram never nests a reply in a reply
            deep_reply = _text_update(reply_to_message=deep_reply["message"])
        bodies = {
            "deep": b"[" * 100_000 + b"]" * 100_000,
            "deep object": b'{"update_id": 1, "x": ' + b'{"a": ' * 500 + b"1" + b"}" * 501,
            "deep replies": fake_body(deep_reply),
            "NaN": b'{"update_id": 5000, "message": NaN}',
            "Infinity": b'{"update_id": 5000, "x": 1e400}',
            "invalid UTF-8": b'{"update_id": 5000, "message": {"text": "\xff"}}',
            "lone surrogate": fake_body(_text_update()).replace(b"/start", b"\\ud800", 1),
            "NUL": fake_body(_text_update()).replace(b"/start", b"\\u0000", 1),
            "a 5000-digit number": b'{"update_id": ' + b"9" * 5000 + b"}",
            "empty": b"",
            "a number": b"5",
            "null": b"null",
        }
        for name, body in bodies.items():
            status, _ = await post_raw(tg.url, body)
            assert status == 400, name
        assert state(store) == before
        assert tg.fake.calls_of("sendMessage") == []


# ----- service messages: not a person writing ---------------------------------------------------


def service_messages(fake: FakeTelegram) -> dict[str, dict[str, Any]]:
    member = fake.user(777)
    pinned = {
        "message_id": 3,
        "date": 1_700_000_000,
        "chat": {"id": GROUP, "type": "supergroup", "title": "测试群"},
        "text": "置顶的消息",
    }
    photo = [{"file_id": "p1", "file_unique_id": "u1", "width": 160, "height": 160}]
    return {
        "pinned_message": {"pinned_message": pinned},
        "new_chat_members": {"new_chat_members": [member]},
        "left_chat_member": {"left_chat_member": member},
        "new_chat_title": {"new_chat_title": "新群名"},
        "new_chat_photo": {"new_chat_photo": photo},
        "delete_chat_photo": {"delete_chat_photo": True},
        "group_chat_created": {"group_chat_created": True},
        "supergroup_chat_created": {"supergroup_chat_created": True},
        "migrate_to_chat_id": {"migrate_to_chat_id": GROUP - 1},
        "migrate_from_chat_id": {"migrate_from_chat_id": -4242},
        "video_chat_started": {"video_chat_started": {}},
        "video_chat_ended": {"video_chat_ended": {"duration": 60}},
        "forum_topic_created": {"forum_topic_created": {"name": "话题", "icon_color": 7322096}},
        "forum_topic_closed": {"forum_topic_closed": {}},
        "message_auto_delete_timer_changed": {
            "message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}
        },
    }


@pytest.mark.parametrize("library", LIBRARIES)
async def test_service_messages_are_ignored_quietly(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: a pin or members joining a group got the private-chat hint."""
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        before = state(store)
        services = service_messages(tg.fake)
        for name, body in services.items():
            update = tg.fake.service_update(GROUP, chat_type="supergroup", **body)
            assert await tg.fake.post_webhook(update) == 200, name
            await tg.adapter.settled(update["update_id"])
        # In the private chat too: the user pinning a message is not writing to the bot.
        pin = tg.fake.service_update(CHAT, chat_type="private", pinned_message={
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": CHAT, "type": "private"},
            "text": "/start"})  # fmt: skip
        assert await tg.fake.post_webhook(pin) == 200
        await tg.adapter.settled(pin["update_id"])
        await tg.gateway.drain(1)
        tg.gateway.closing = False
        assert tg.fake.calls_of("sendMessage") == []
        assert state(store) == before
        assert tg.gateway.metrics.value(
            REQUESTS, channel="telegram", outcome="ignored", reason=""
        ) == len(services) + 1  # fmt: skip

        # A person writing in the group still gets the hint.
        text = tg.fake.text_update(GROUP, "你好", chat_type="supergroup")
        assert await tg.fake.post_webhook(text) == 200
        await tg.adapter.settled(text["update_id"])
        assert texts(tg.fake, GROUP) == [PRIVATE_ONLY]


# ----- the store down ----------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_store_down_webhook_answers_503_and_the_retry_is_processed(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: the step failing because the store is unreachable was answered 200 with an
    apology, so Telegram never sent the update again. Now: 503, nothing sent, and Telegram's
    retry runs the step."""
    made, wrap = failing(2)
    async with telegram_bot(
        store, library=library, mode="webhook", files_dir=tmp_path, wrap_steps=wrap
    ) as tg:
        steps = made[0]
        update = tg.fake.text_update(CHAT, "/start")
        assert await tg.fake.post_webhook(update) == 503
        assert await tg.fake.post_webhook(update) == 503  # still down on the first retry
        await asyncio.sleep(0.2)
        assert tg.fake.calls_of("sendMessage") == []
        assert state(store)["inbound_deliveries"] == 0
        assert await tg.fake.post_webhook(update) == 200  # the store is back
        await tg.adapter.settled(update["update_id"])
        assert steps.tries == ["/start"] * 3
        assert steps.ran == ["/start"]
        assert len(tg.fake.calls_of("sendMessage")) == 2
        assert render("step_failed") not in texts(tg.fake)
        metrics = tg.gateway.metrics
        assert metrics.value(REQUESTS, channel="telegram", outcome="unavailable",
                             reason="store") == 2  # fmt: skip
        assert metrics.value(REQUESTS, channel="telegram", outcome="accepted", reason="") == 1


@pytest.mark.parametrize("library", LIBRARIES)
async def test_store_down_a_button_press_is_retried_too(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: a press whose step met the store down is a 503; its retry still counts as a
    press of the live keyboard (the failed attempt did not make the buttons stale)."""
    made, wrap = failing(0)
    async with telegram_bot(
        store, library=library, mode="webhook", files_dir=tmp_path, wrap_steps=wrap
    ) as tg:
        user = tg.driver()
        await user.send("/start")
        steps = made[0]
        steps.failures = 1
        keyboard = user._current()
        choice = keyboard["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        press = tg.fake.callback_update(CHAT, keyboard, choice)
        sent = len(tg.fake.calls_of("sendMessage"))
        assert await tg.fake.post_webhook(press) == 503
        assert len(tg.fake.calls_of("sendMessage")) == sent
        assert await tg.fake.post_webhook(press) == 200
        await tg.adapter.settled(press["update_id"])
        assert len(steps.ran) == 2  # /start and the press
        new = tg.fake.calls_of("sendMessage")[sent:]
        assert new
        assert all("过期" not in str(c.params.get("text")) for c in new)


@pytest.mark.parametrize("library", LIBRARIES)
async def test_store_down_polling_keeps_the_update_until_the_store_is_back(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8, polling: no HTTP answer makes Telegram send the update again, so the step is
    retried (backing off) and the chat's next update waits its turn; nothing is lost."""
    made, wrap = failing(3)
    async with telegram_bot(
        store,
        library=library,
        mode="polling",
        files_dir=tmp_path,
        wrap_steps=wrap,
        store_retry=(0.05, 0.2, 10.0),
    ) as tg:
        steps = made[0]
        first = tg.fake.push_update(tg.fake.text_update(CHAT, "/start"))
        second = tg.fake.push_update(tg.fake.text_update(CHAT, "1"))
        await tg.adapter.settled(first["update_id"])
        await tg.adapter.settled(second["update_id"])
        assert steps.tries == ["/start"] * 4 + ["1"]  # the next update waited
        assert steps.ran == ["/start", "1"]
        sent = texts(tg.fake)
        assert render("step_failed") not in sent
        assert len(sent) >= 3  # greeting, campaign question, then the answer to "1"


async def test_store_down_polling_gives_up_after_a_while_with_an_apology(
    store: Store, tmp_path: Path
) -> None:
    """Issue 8, polling: after about a minute (here 0.5 s) the user is asked to send again,
    nothing recorded; the next message, with the store back, is processed."""
    made, wrap = failing(10_000)
    async with telegram_bot(
        store,
        library="aiogram",
        mode="polling",
        files_dir=tmp_path,
        wrap_steps=wrap,
        store_retry=(0.05, 0.1, 0.5),
    ) as tg:
        steps = made[0]
        before = state(store)
        started = time.monotonic()
        first = tg.fake.push_update(tg.fake.text_update(CHAT, "/start"))
        await tg.adapter.settled(first["update_id"])
        assert time.monotonic() - started >= 0.4
        assert texts(tg.fake) == [render("step_failed")]
        assert state(store) == before
        assert len(steps.tries) >= 4
        steps.failures = 0
        again = tg.fake.push_update(tg.fake.text_update(CHAT, "/start"))
        await tg.adapter.settled(again["update_id"])
        assert len(texts(tg.fake)) == 3


# ----- metrics: a repeat is a duplicate --------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_repeated_webhook_delivery_is_counted_as_duplicate(
    store: Store, tmp_path: Path, library: str
) -> None:
    """Issue 8: an update this process had handled was answered from memory with no outcome
    noted, and counted as "ignored"."""
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        update = tg.fake.text_update(CHAT, "/start")
        assert await tg.fake.post_webhook(update) == 200
        await tg.adapter.settled(update["update_id"])
        assert await tg.fake.post_webhook(update) == 200
        assert await tg.fake.post_webhook(update, secret="wrong") == 403
        metrics = tg.gateway.metrics
        assert metrics.value(REQUESTS, channel="telegram", outcome="accepted", reason="") == 1
        assert metrics.value(REQUESTS, channel="telegram", outcome="duplicate", reason="") == 1
        assert metrics.value(REQUESTS, channel="telegram", outcome="refused",
                             reason="bad_secret") == 1  # fmt: skip
        assert len(tg.fake.calls_of("sendMessage")) == 2


async def test_store_down_polling_stopping_cuts_the_wait_short(
    store: Store, tmp_path: Path
) -> None:
    """Issue 8, polling: a shutdown does not wait out the minute; the user is asked to send
    again (the update cannot outlive the process), nothing recorded."""
    made, wrap = failing(10_000)
    async with FakeTelegram() as fake:
        async with telegram_bot(
            store,
            library="ptb",
            mode="polling",
            files_dir=tmp_path,
            fake=fake,
            wrap_steps=wrap,
            store_retry=(0.05, 0.1, 60.0),
        ):
            before = state(store)
            fake.push_update(fake.text_update(CHAT, "/start"))
            async with asyncio.timeout(5):
                while len(made[0].tries) < 2:  # noqa: ASYNC110 - the steps record, no event
                    await asyncio.sleep(0.02)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 10
        assert texts(fake) == [render("step_failed")]
        assert state(store) == before


async def test_a_secret_header_that_is_not_utf8_is_403(store: Store, tmp_path: Path) -> None:
    """Issue 8: header bytes that are not UTF-8 (aiohttp passes them on as surrogates) made the
    secret comparison raise UnicodeEncodeError: a 500."""
    async with telegram_bot(store, library="ptb", mode="webhook", files_dir=tmp_path) as tg:
        host, port = tg.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        body = fake_body(tg.fake.text_update(CHAT, "/start"))
        writer.write(
            b"POST /telegram HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
            + SECRET_HEADER.encode()
            + b": \xff\xfe"
            + SECRET.encode()
            + b"\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status_line = (await reader.readline()).decode()
        writer.close()
        await writer.wait_closed()
        assert status_line.split()[1] == "403"
        assert state(store) == {table: 0 for table in TABLES}
