"""The WeChat channel over HTTP: verification, signatures, the XML gate, retries, slow steps,
events and media — the real Runtime over the `store` fixture, wechatpy against the fake API."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
import sqlalchemy as sa
from support.drivers.wechat import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    HUGE_TEXT,
    Unreachable,
    WechatStack,
    signature,
    wechat_driver,
    wechat_stack,
)
from support.outage import blinking_store

from bot.edges import StoreReplyWindow, StoreTokenCache
from conversations.engine import Reply
from conversations.filing import Upload
from conversations.keys import ConversationKey
from handlers.base import Repeat, Steps
from handlers.wechat import make_adapter
from handlers.wechat.adapter import DOWNLOAD_FAILED
from storage.channels import inbound_deliveries, reply_windows
from storage.store import Store

WELCOME = "您好！这里是吉林省评选表彰申报助手"
# For what is refused or ignored before the store is touched: one backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
CAMPAIGN_QUESTION = "请选择要自检的评选表彰活动："


class RecordingSteps:
    """The runtime, recording each step it runs; `delay` seconds before each (a slow engine)."""

    def __init__(self, inner: Steps, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.calls: list[tuple[str, str | None, str, Upload | None]] = []
        self.ran: list[str] = []  # texts of steps that were not duplicates
        self.started = threading.Event()

    def open(self, key: ConversationKey) -> list[Reply]:
        return self.inner.open(key)

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
        *,
        keep_answer: bool = False,
        **options: Any,  # answers, sequence, store_replies: as the runtime takes them
    ) -> list[Reply] | Repeat:
        self.calls.append((key.user_id, delivery_id, text, upload))
        self.started.set()
        time.sleep(self.delay)
        replies = self.inner.handle_once(
            key, delivery_id, text, upload, keep_answer=keep_answer, **options
        )
        if not isinstance(replies, Repeat):
            self.ran.append(text)
        return replies


def recording(delay: float = 0.0) -> tuple[list[RecordingSteps], Any]:
    made: list[RecordingSteps] = []

    def wrap(inner: Steps) -> Steps:
        made.append(RecordingSteps(inner, delay))
        return made[0]

    return made, wrap


def rows(store: Store, table: sa.Table | str) -> int:
    name = table if isinstance(table, str) else table.name
    with store.reading() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())


async def raw_post(stack: WechatStack, query: dict[str, str], body: bytes) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.url}/wechat", params=query, data=io.BytesIO(body)) as response,
    ):
        return response.status, await response.text()


# ----- URL verification and signatures --------------------------------------------------------


async def test_url_verification_echoes_echostr_or_refuses(store: Store) -> None:
    async with wechat_stack(store) as stack, aiohttp.ClientSession() as session:
        token = stack.settings.token
        good = {"timestamp": "1411443780", "nonce": "437374425", "echostr": "5927782489442352469"}
        good["signature"] = signature(token, good["timestamp"], good["nonce"])
        async with session.get(f"{stack.url}/wechat", params=good) as response:
            assert (response.status, await response.text()) == (200, "5927782489442352469")
        bad = {**good, "signature": signature("not-the-token", "1411443780", "437374425")}
        async with session.get(f"{stack.url}/wechat", params=bad) as response:
            assert response.status == 403
            assert "5927782489442352469" not in await response.text()


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_a_text_message_gets_a_passive_reply(store: Store, safe: bool) -> None:
    async with wechat_stack(store, safe=safe) as stack, stack.driver("o-user-1") as user:
        answer = await user.post(user.pusher.text("o-user-1", "你好"))

        assert answer.status == 200
        assert WELCOME in answer.text
        assert CAMPAIGN_QUESTION in answer.text
        assert "\n1. " in answer.text  # choices as numbered lines
        assert (WELCOME in answer.body) is not safe  # encrypted on the wire in safe mode
        assert stack.fake.sent_texts() == []


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_wrong_signature_is_refused_with_no_effect(store: Store, safe: bool) -> None:
    made, wrap = recording()
    async with wechat_stack(store, safe=safe, wrap_steps=wrap) as stack, stack.driver() as user:
        answer = await user.post(user.pusher.text(user.openid, "你好"), token="wrong-token")

        assert answer.status == 403
        assert made[0].calls == []
        assert rows(store, inbound_deliveries) == 0
        assert rows(store, "conversation_sessions") == 0
        assert rows(store, reply_windows) == 0
        received = stack.gateway.metrics.value("awardbot_updates_received_total", channel="wechat")
        assert received == 0


async def test_safe_mode_refuses_a_plaintext_body_under_a_bad_msg_signature(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, safe=True, wrap_steps=wrap) as stack, stack.driver() as user:
        query, body = user.pusher.sign(user.pusher.text(user.openid, "你好"))
        query["msg_signature"] = "0" * 40

        status, _ = await raw_post(stack, query, body)

        assert status == 403
        assert made[0].calls == []


# ----- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, "<xml><ToUserName>"],
    ids=["billion-laughs", "external-entity", "malformed"],
)
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_hostile_xml_is_refused_quickly_with_no_step(
    store: Store, document: str, safe: bool
) -> None:
    made, wrap = recording()
    async with wechat_stack(store, safe=safe, wrap_steps=wrap) as stack, stack.driver() as user:
        query, body = user.pusher.sign(document)  # safe mode: the hostile part is inside
        started = time.perf_counter()

        status, _ = await raw_post(stack, query, body)

        assert status == 400
        assert time.perf_counter() - started < 1.0
        assert made[0].calls == []


async def test_a_megabyte_of_text_is_refused_before_parsing(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        query, body = user.pusher.sign(HUGE_TEXT)
        started = time.perf_counter()

        status, _ = await raw_post(stack, query, body)

        assert status == 413
        assert time.perf_counter() - started < 1.0
        assert made[0].calls == []


# ----- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
@pytest.mark.parametrize("identical", [False, True], ids=["signed-anew", "identical-request"])
async def test_a_retried_msgid_runs_once_and_gets_the_first_answer_again(
    store: Store, safe: bool, identical: bool
) -> None:
    # Issue 8: WeChat retries a push whose answer it did not get; the retry used to be answered
    # `success` (nothing), so the user never saw the question. A retry signed anew (another
    # nonce) and the very same request again (the nonce ledger's RETRY) both get the answer
    # kept with the first delivery; the step runs once.
    made, wrap = recording()
    async with wechat_stack(store, safe=safe, wrap_steps=wrap) as stack, stack.driver() as user:
        push = user.pusher.text(user.openid, "你好", msg_id="1000001")
        signed = user.pusher.sign(push)

        first = await user.post_signed(*signed)
        again = await (user.post_signed(*signed) if identical else user.post(push))

        assert WELCOME in first.text
        assert (again.status, again.text) == (200, first.text)
        assert made[0].ran == ["你好"]
        assert rows(store, inbound_deliveries) == 1
        assert rows(store, reply_windows) == 1
        assert stack.fake.sent_texts() == []


async def test_a_retry_arriving_while_the_first_still_runs_is_answered_once(
    store: Store,
) -> None:
    made, wrap = recording(delay=0.5)
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        push = user.pusher.text(user.openid, "你好", msg_id="1000002")

        first = asyncio.create_task(user.post(push))
        await asyncio.to_thread(made[0].started.wait, 5)
        again = await user.post(push)
        first_answer = await first

        # WeChat retries when it gave up on the first request: the retry carries the answer.
        assert again.text == first_answer.text
        assert WELCOME in first_answer.text
        assert made[0].ran == ["你好"]
        await user.idle()
        assert stack.fake.sent_texts() == []


async def test_events_are_deduplicated_by_sender_and_create_time(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        push = user.pusher.event(user.openid, "subscribe", create_time="1666230001")

        first = await user.post(push)
        again = await user.post(push)

        assert WELCOME in first.text
        assert again.text == first.text  # the kept answer (issue 8)
        assert [c[1] for c in made[0].calls] == [f"{user.openid}:1666230001"] * 2
        assert made[0].ran == ["/start"]


# ----- slow steps -----------------------------------------------------------------------------


async def test_a_slow_step_answers_success_then_a_customer_service_message(
    store: Store,
) -> None:
    made, wrap = recording(delay=0.4)
    stack_cm = wechat_stack(store, wrap_steps=wrap, reply_budget=0.1)
    async with stack_cm as stack, stack.driver() as user:
        started = time.perf_counter()
        answer = await user.post(user.pusher.text(user.openid, "你好"))
        waited = time.perf_counter() - started

        assert answer.body == "success"
        assert waited < 0.4
        await stack.fake.wait_for(lambda: bool(stack.fake.sent_texts()))
        ((openid, text),) = stack.fake.sent_texts()
        assert openid == user.openid
        assert WELCOME in text
        assert CAMPAIGN_QUESTION in text


async def test_a_long_answer_is_cut_and_the_rest_sent_as_customer_service_messages(
    store: Store,
) -> None:
    async with wechat_stack(store, passive_limit=120) as stack, stack.driver() as user:
        shown = await user.send("你好")

        answer_parts = stack.fake.sent_texts()
        assert answer_parts  # the rest came as customer-service messages
        assert all(len(text.encode()) <= 120 for _, text in answer_parts)
        assert WELCOME in shown
        assert CAMPAIGN_QUESTION in shown


# ----- events and media ----------------------------------------------------------------------


async def test_subscribe_greets_and_unsubscribe_says_nothing(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        greeting = await user.event("subscribe")
        bye = await user.post(user.pusher.event(user.openid, "unsubscribe"))

        assert greeting.startswith("感谢关注！随时可用底部菜单：自查资格 / 填报推荐 / 查询进度。")
        assert WELCOME in greeting
        assert CAMPAIGN_QUESTION in greeting
        assert bye.body == "success"
        assert made[0].ran == ["/start"]
        assert rows(store, reply_windows) == 1


@pytest.mark.parametrize(
    ("key", "command", "expected"),
    [
        ("SELF_CHECK", "/restart", CAMPAIGN_QUESTION),
        ("FILING", "/new", "只有绑定了单位的经办人可以填报推荐"),
        ("TRACK", "/track", "您还没有关注任何推荐"),
    ],
)
async def test_menu_clicks_map_to_commands(
    store: Store, key: str, command: str, expected: str
) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        await user.send("你好")

        shown = await user.event("CLICK", key)

        assert made[0].ran == ["你好", command]
        assert expected in shown


async def test_an_unknown_click_key_runs_nothing(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        answer = await user.post(user.pusher.event(user.openid, "CLICK", "NOPE"))

        assert answer.body == "success"
        assert made[0].calls == []
        assert rows(store, reply_windows) == 1  # a click still opens the 1-minute window


async def test_a_file_name_cannot_carry_a_path(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        stack.fake.add_media("M-2", b"data")

        await user.exchange(user.pusher.file(user.openid, "M-2", "../../etc/证书.pdf", 4))

        assert made[0].calls[0][3] == Upload("证书.pdf", b"data")


@pytest.mark.parametrize("kind", ["image", "file"])
async def test_images_and_files_become_attachments_through_media_get(
    store: Store, kind: str
) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
        stack.fake.add_media("MEDIA-1", data, filename="served.png", content_type="image/png")
        push = (
            user.pusher.image(user.openid, "MEDIA-1")
            if kind == "image"
            else user.pusher.file(user.openid, "MEDIA-1", "证书.pdf", len(data))
        )

        shown = await user.exchange(push)

        ((_, _, text, upload),) = made[0].calls
        assert text == ""
        assert upload == Upload("served.png" if kind == "image" else "证书.pdf", data)
        assert [c.params["media_id"] for c in stack.fake.calls_to("/cgi-bin/media/get")] == [
            "MEDIA-1"
        ]
        assert "现在不需要文件" in shown  # the engine's answer: no file was asked for


async def test_a_file_over_20_mb_is_refused_politely(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        big = b"\0" * (21 * 1024 * 1024 + 300 * 1024)  # 21.3 MB: the reply says so
        stack.fake.add_media("BIG", big, filename="big.zip")

        shown = await user.exchange(user.pusher.file(user.openid, "BIG", "big.zip", len(big)))

        assert "文件太大：21.3 MB，超过 20 MB" in shown
        assert made[0].calls == []


@pytest.mark.parametrize("kind", ["voice", "location", "link", "video"])
async def test_other_message_types_get_a_short_note(store: Store, kind: str) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        shown = await user.exchange(
            user.pusher.xml(user.openid, kind, MediaId="M", MsgId=user.pusher.next_msg_id())
        )

        assert "暂不支持" in shown
        assert made[0].calls == []
        assert rows(store, reply_windows) == 1


async def test_shutting_down_refuses_new_pushes_with_503(store: Store) -> None:
    async with wechat_stack(store) as stack, stack.driver() as user:
        stack.gateway.closing = True
        answer = await user.post(user.pusher.text(user.openid, "你好"))
        stack.gateway.closing = False

        assert answer.status == 503


# ----- shape before state (issue 8) -------------------------------------------------------------

MALFORMED = {
    "text-without-MsgId": ("text", {"Content": "你好"}),
    "text-without-Content": ("text", {"MsgId": "6800000000000000901"}),
    "text-with-empty-Content": ("text", {"Content": "", "MsgId": "6800000000000000902"}),
    "MsgId-not-a-number": ("text", {"Content": "你好", "MsgId": "abc"}),
    "MsgId-a-boolean": ("text", {"Content": "你好", "MsgId": "true"}),
    "image-without-MediaId": ("image", {"PicUrl": "http://x/y", "MsgId": "6800000000000000903"}),
    "file-without-MediaId": ("file", {"FileName": "a.pdf", "MsgId": "6800000000000000904"}),
    "voice-without-MsgId": ("voice", {"MediaId": "M1"}),
    "event-without-Event": ("event", {"EventKey": "SELF_CHECK"}),
}


def malformed_push(user: Any, case: str) -> str:
    msg_type, fields = MALFORMED[case]
    return user.pusher.xml(user.openid, msg_type, **fields)


@SQLITE_ONLY
@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_a_malformed_push_is_refused_before_anything_is_recorded(
    store: Store, case: str, safe: bool
) -> None:
    # Issue 8: a signed text push without MsgId (or CreateTime, or Content) used to run a step
    # and create a user; a MsgId that is not a number made wechatpy raise later.
    made, wrap = recording()
    async with wechat_stack(store, safe=safe, wrap_steps=wrap) as stack, stack.driver() as user:
        answer = await user.post(malformed_push(user, case))

        assert answer.status == 400
        assert made[0].calls == []
        assert stack.fake.calls == []  # no media fetched either
        for table in ("users", "conversation_sessions", inbound_deliveries, reply_windows):
            assert rows(store, table) == 0
        assert stack.gateway.metrics.value("awardbot_errors_total", channel="wechat", kind="shape")


@SQLITE_ONLY
@pytest.mark.parametrize(
    "envelope",
    [
        "<CreateTime>yesterday</CreateTime>",
        "<CreateTime></CreateTime>",
        "<CreateTime>99999999999999999999</CreateTime>",
        "",  # none at all
    ],
    ids=["words", "empty", "out-of-range", "missing"],
)
async def test_a_push_without_a_numeric_create_time_is_refused(
    store: Store, envelope: str
) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        push = user.pusher.text(user.openid, "你好")
        push = push.replace(
            push[push.index("<CreateTime>") : push.index("</CreateTime>") + 13], envelope
        )

        answer = await user.post(push)

        assert answer.status == 400
        assert made[0].calls == []
        assert rows(store, "users") == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    "sender",
    ["", "  ", "o-user<x>", "o-user]]>", "用户"],
    ids=["empty", "blank", "markup", "cdata-end", "not-ascii"],
)
async def test_a_push_from_no_valid_openid_is_refused(store: Store, sender: str) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        push = user.pusher.text("PLACEHOLDER", "你好").replace(
            "<![CDATA[PLACEHOLDER]]>", escape(sender)
        )

        answer = await user.post(push)

        assert answer.status == 400
        assert made[0].calls == []
        assert rows(store, "users") == 0


# ----- media/get answering an error (issue 8) -------------------------------------------------


@pytest.mark.parametrize("kind", ["image", "file"])
async def test_media_get_answering_an_errcode_tells_the_user_and_records_nothing(
    store: Store, kind: str
) -> None:
    # Issue 8: wechatpy's `_handle_result` was handed a dict and raised AttributeError: a 500
    # for WeChat's every retry, and the user never heard of it.
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        push = (
            user.pusher.image(user.openid, "EXPIRED")
            if kind == "image"
            else user.pusher.file(user.openid, "EXPIRED", "证书.pdf", 10)
        )  # no such media: the fake answers {"errcode": 40007, ...}

        answer = await user.post(push)

        assert answer.status == 200
        assert answer.text == DOWNLOAD_FAILED == "文件接收失败，请重新发送。"
        assert [c.errcode for c in stack.fake.calls_to("/cgi-bin/media/get")] == [40007]
        assert made[0].calls == []
        assert rows(store, inbound_deliveries) == 0
        assert rows(store, "users") == 0
        kind_count = stack.gateway.metrics.value(
            "awardbot_errors_total", channel="wechat", kind="media"
        )
        assert kind_count == 1


async def test_media_get_refusing_the_token_fetches_it_again_and_goes_on(store: Store) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        stack.fake.add_media("M-OK", b"scan", filename="scan.png", content_type="image/png")
        await user.send("你好")  # a token is fetched and used
        stack.fake.fail_next("/cgi-bin/media/get", 40001)  # as if another worker refreshed it

        await user.exchange(user.pusher.image(user.openid, "M-OK"))

        assert [c.errcode for c in stack.fake.calls_to("/cgi-bin/media/get")] == [40001, 0]
        assert made[0].calls[-1][3] == Upload("scan.png", b"scan")


# ----- what nobody wrote: answered `success`, nothing said (issue 8) ---------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("msg_type", "fields"),
    [
        ("event", {"Event": "unsubscribe"}),
        ("event", {"Event": "TEMPLATESENDJOBFINISH", "MsgID": "200163836", "Status": "success"}),
        ("event", {"Event": "LOCATION", "Latitude": "23.1", "Longitude": "113.3"}),
        ("event", {"Event": "MASSSENDJOBFINISH"}),
        ("event", {"Event": "some_event_wechat_adds_next_year"}),
        ("device_text", {"DeviceType": "gh_1", "DeviceID": "d", "Content": "x"}),
        ("a_new_message_type", {"MsgId": "6800000000000000999"}),
    ],
    ids=["unsubscribe", "template-finished", "location", "mass-send", "unknown-event",
         "device", "unknown-type"],
)  # fmt: skip
async def test_pushes_that_are_not_a_person_writing_say_nothing(
    store: Store, msg_type: str, fields: dict[str, str]
) -> None:
    made, wrap = recording()
    async with wechat_stack(store, wrap_steps=wrap) as stack, stack.driver() as user:
        answer = await user.post(user.pusher.xml(user.openid, msg_type, **fields))

        assert (answer.status, answer.body) == (200, "success")
        assert made[0].calls == []
        assert rows(store, "users") == 0
        assert rows(store, reply_windows) == 0
        await user.idle()
        assert stack.fake.sent_texts() == []


# ----- the store down (issue 8) ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_the_store_down_during_the_step_is_a_fast_503_and_the_retry_is_answered(
    store: Store, mode: str
) -> None:
    # A 200 with an apology would stop WeChat's retries and lose the message (issue 8).
    async with wechat_driver(store, mode=mode) as user:
        server = user.server
        down = Unreachable()
        server.gateway.steps = down
        push = user.pusher.text(user.openid, "你好")
        started = time.perf_counter()

        answer = await user.post(push)

        assert answer.status == 503
        assert time.perf_counter() - started < 1.0  # well within WeChat's 5 s
        assert down.calls == 1
        assert rows(store, inbound_deliveries) == 0
        assert rows(store, "users") == 0
        unavailable = server.metrics.value(
            "awardbot_requests_total", channel="wechat", outcome="unavailable", reason=""
        )
        assert unavailable == 1
        # The store is back: WeChat's retry (signed anew) gets the answer.
        server.gateway.steps = server.runtime
        again = await user.post(push)
        assert (again.status, WELCOME in again.text) == (200, True)


def _no_ledger(settings: Any, gateway: Any, store: Store, *, clock: Any) -> list[Any]:
    """The WeChat channel with this process's nonce ledger (the store's would fail first)."""
    edges = {"tokens": StoreTokenCache(store), "windows": StoreReplyWindow(store)}
    return [make_adapter(settings.wechat, gateway, clock=clock, **edges)]


async def test_the_store_down_while_fetching_media_is_a_503_not_a_500() -> None:
    # The shared access token lives in the database: reading it failed with StoreUnavailable,
    # which escaped the route as an unexpected error (500).
    async with (
        blinking_store() as (blinking, proxy),
        wechat_driver(blinking, adapters=_no_ledger) as user,
    ):
        user.fake.add_media("M-1", b"scan", filename="scan.png")
        assert WELCOME in await user.send("你好")
        proxy.cut()
        try:
            answer = await user.post(user.pusher.image(user.openid, "M-1"))
        finally:
            proxy.restore()

        assert answer.status == 503
        errors = user.server.metrics.value(
            "awardbot_errors_total", channel="wechat", kind="unhandled"
        )
        assert errors == 0


async def test_the_store_down_after_the_step_still_answers() -> None:
    # Counting the reply window is a side call: failing, it must not turn the answer into a 500.
    async with blinking_store() as (blinking, proxy), wechat_driver(blinking) as user:
        runtime = user.server.runtime

        class CutAfterTheStep(RecordingSteps):
            def handle_once(self, *args: Any, **kwargs: Any) -> list[Reply] | Repeat:
                replies = super().handle_once(*args, **kwargs)
                proxy.cut()  # the database goes away before the window is counted
                return replies

        user.server.gateway.steps = CutAfterTheStep(runtime)
        answer = await user.post(user.pusher.text(user.openid, "你好"))
        proxy.restore()

        assert (answer.status, WELCOME in answer.text) == (200, True)
        metrics = user.server.metrics
        assert metrics.value("awardbot_errors_total", channel="wechat", kind="window") == 1


async def test_the_store_down_at_the_nonce_check_is_a_503_and_nothing_ran() -> None:
    # The nonce ledger is the store's: unreachable, the push is a 503 (WeChat retries it),
    # not an unexpected error.
    async with blinking_store() as (blinking, proxy), wechat_driver(blinking) as user:
        push = user.pusher.text(user.openid, "你好")
        proxy.cut()
        try:
            answer = await user.post(push)
        finally:
            proxy.restore()
        metrics = user.server.metrics

        assert answer.status == 503
        assert metrics.value("awardbot_updates_received_total", channel="wechat") == 0
        assert metrics.value("awardbot_errors_total", channel="wechat", kind="unhandled") == 0
        assert WELCOME in (await user.post(push)).text  # the retry, once the store is back
