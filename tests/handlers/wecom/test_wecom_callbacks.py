"""WeCom callbacks through the adapter: URL check and decryption with wechatpy's vector C, our
encrypted replies, refused signatures and hostile XML, retries, slow steps, events."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from support.drivers.wechat import Clock, Unreachable, push_target

from conversations.engine import Option, Reply
from conversations.keys import ConversationKey
from handlers.base import Repeat, render_text, utf8_len
from handlers.wecom.adapter import TEXT_ONLY
from storage.channels import inbound_deliveries
from storage.store import Store

if TYPE_CHECKING:
    from conftest import Rig

CORP_ID = "wx49f0ab532d5d035a"  # vector C's corp id, the rig's too
# For what is refused or ignored before the store is touched: one backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

VECTOR_ECHO = {
    "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    ),
}
VECTOR_MESSAGE = {
    "msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    "timestamp": "1411525903",
    "nonce": "461056294",
}
VECTOR_TIME = dt.datetime.fromtimestamp(1411525903, dt.UTC)
VECTOR_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrs"
    "TyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4"
    "+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6"
    "td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWT"
    "T4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
VECTOR_BODY = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
    f"<Encrypt><![CDATA[{VECTOR_ENCRYPT}]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>"
).encode()

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<xml><Encrypt>&c;</Encrypt></xml>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<xml><Encrypt>&x;</Encrypt></xml>"
)


def deliveries(rig: Rig) -> list[str]:
    with rig.store.reading() as conn:
        rows = conn.execute(sa.select(inbound_deliveries.c.delivery_id)).scalars().all()
    return sorted(rows)


async def test_url_verification_answers_the_decrypted_echostr(rig: Rig) -> None:
    started = time.monotonic()
    response = await rig.client.get("/wecom", params=VECTOR_ECHO)
    assert (response.status, await response.text()) == (200, "5927782489442352469")
    assert time.monotonic() - started < 1.0  # WeCom waits one second

    wrong = {**VECTOR_ECHO, "msg_signature": "0" * 40}
    response = await rig.client.get("/wecom", params=wrong)
    assert response.status == 403
    assert "5927782489442352469" not in await response.text()
    missing = {k: v for k, v in VECTOR_ECHO.items() if k != "msg_signature"}
    assert (await rig.client.get("/wecom", params=missing)).status == 403


async def test_the_vector_message_reaches_the_assistant_and_our_reply_decrypts(rig: Rig) -> None:
    rig.clock.now = VECTOR_TIME  # the vector's timestamp is "now": within the window (issue 8)
    status, body = await rig.post_raw(VECTOR_BODY, VECTOR_MESSAGE)

    assert status == 200
    [step] = rig.steps.steps
    assert (step.key, step.delivery_id, step.text) == (
        ConversationKey("wecom", "messense"),
        "4363689963896700987",
        "test",
    )
    assert step.replies
    reply = rig.opened(body)  # wechatpy decrypts and parses what we answered
    assert (reply.type, reply.source, reply.target) == ("text", CORP_ID, "messense")
    assert reply.content == "\n\n".join(render_text(r) for r in step.replies)
    assert deliveries(rig) == ["4363689963896700987"]
    assert rig.gateway.metrics.value("awardbot_replies_sent_total", channel="wecom") == 1


async def test_a_wrong_signature_is_refused_and_changes_nothing(rig: Rig) -> None:
    for params in (
        {**VECTOR_MESSAGE, "msg_signature": "0" * 40},
        {**VECTOR_MESSAGE, "timestamp": "1411525904"},  # replayed with another timestamp
        {k: v for k, v in VECTOR_MESSAGE.items() if k != "msg_signature"},
    ):
        status, body = await rig.post_raw(VECTOR_BODY, params)
        assert (status, body) == (403, "")
    assert rig.steps.steps == []
    assert deliveries(rig) == []
    assert rig.fake.calls == []
    assert rig.gateway.metrics.value("awardbot_errors_total", channel="wecom", kind="signature")


async def test_hostile_or_malformed_xml_is_refused_without_parsing_it(rig: Rig) -> None:
    repeated = VECTOR_BODY.replace(b"</xml>", b"<Encrypt><![CDATA[x]]></Encrypt></xml>")
    hostile = (BILLION_LAUGHS, EXTERNAL_ENTITY, repeated, b"<xml><Encrypt>abc", b"not xml", b"")
    for body in hostile:
        status, _ = await rig.post_raw(body, VECTOR_MESSAGE)
        assert status == 400, body[:40]
    # A signed, encrypted envelope whose inner document is hostile: refused after decrypting.
    inner = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">]>'
        "<xml><FromUserName>x</FromUserName><MsgType>text</MsgType><Content>&a;</Content>"
        "<MsgId>1</MsgId></xml>"
    )
    status, _ = await rig.post(inner)
    assert status == 400
    # 1 MB of text: refused by size before any parsing.
    huge = b"<xml><Encrypt>" + b"A" * (1024 * 1024) + b"</Encrypt></xml>"
    status, _ = await rig.post_raw(huge, VECTOR_MESSAGE)
    assert status == 413
    assert rig.steps.steps == []
    assert deliveries(rig) == []


async def test_a_retried_msgid_runs_once_and_gets_the_first_answer_again(rig: Rig) -> None:
    # Issue 8: a retry (WeCom did not get the first answer) used to be answered with nothing.
    message = rig.text_xml("zhangsan", "/help", msg_id=5000000000000000001)
    first = await rig.post(message)
    again = await rig.post(message)  # signed anew: another nonce
    body, query = rig.signed(message)
    identical = [await rig.post_raw(body, query) for _ in range(2)]  # the very same request
    assert first[0] == again[0] == 200
    shown = rig.opened(first[1]).content
    assert "/help" in shown
    assert [rig.opened(b).content for _, b in (again, *identical)] == [shown] * 3
    assert [isinstance(s.replies, Repeat) for s in rig.steps.steps] == [False, True, True, True]
    assert deliveries(rig) == ["5000000000000000001"]

    # Retries arriving while the first is still running wait for it and get its answer.
    rig.steps.delay = 0.3
    message = rig.text_xml("zhangsan", "/help", msg_id=5000000000000000002)
    results = await asyncio.gather(*(rig.post(message) for _ in range(3)))
    assert len({rig.opened(body).content for _, body in results}) == 1
    assert sum(not isinstance(s.replies, Repeat) for s in rig.steps.steps) == 2
    assert rig.fake.texts() == []


async def test_text_echoed_from_the_user_cannot_break_our_reply_xml(rig: Rig) -> None:
    await rig.say("zhangsan", "/help")  # a first message only greets
    reply = await rig.say("zhangsan", "/a]]><x>b")
    assert "/a]]><x>b" in reply  # the unknown command, quoted back intact


async def test_a_slow_step_gets_an_empty_answer_then_an_app_message(rig: Rig) -> None:
    rig.steps.delay = 1.0
    rig.adapter._budget = 0.2  # noqa: SLF001 - the test's budget; the default is 4 s
    started = time.monotonic()
    status, body = await rig.post(rig.text_xml("zhangsan", "/help"))
    assert (status, body) == (200, "")
    assert time.monotonic() - started < 0.9  # answered before the step finished
    assert rig.fake.texts() == []

    await rig.settle()
    [step] = rig.steps.steps
    assert step.replies
    expected = "\n\n".join(render_text(r) for r in step.replies)
    assert rig.fake.texts() == [("zhangsan", expected)]
    [send] = rig.fake.calls_to("/cgi-bin/message/send")
    assert send.body is not None
    assert send.body["agentid"] == rig.fake.agent_id


async def test_a_long_answer_goes_out_as_app_messages_under_2048_bytes(rig: Rig) -> None:
    paragraph = "长" * 400  # 1200 bytes
    choices = (Option("同意", "yes"), Option("不同意", "no"))
    rig.steps.canned = [Reply("\n\n".join([paragraph] * 4), options=choices)]
    status, body = await rig.post(rig.text_xml("zhangsan", "hi"))
    assert (status, body) == (200, "")  # one passive reply cannot hold it
    await rig.settle()
    sent = [content for _, content in rig.fake.texts()]
    assert sent == [paragraph, paragraph, paragraph, f"{paragraph}\n1. 同意\n2. 不同意"]
    assert all(utf8_len(piece) <= 2048 for piece in sent)
    assert rig.gateway.metrics.value("awardbot_replies_sent_total", channel="wecom") == 4


async def test_entering_the_app_greets_once_per_event(rig: Rig) -> None:
    event = rig.event_xml("wangwu", "enter_agent")
    status, body = await rig.post(event)
    assert status == 200
    greeting = rig.opened(body).content
    assert greeting
    assert rig.steps.opened == [ConversationKey("wecom", "wangwu")]
    retried = await rig.post(event)  # WeCom's retry of the same event: the same greeting
    assert rig.opened(retried[1]).content == greeting
    assert rig.steps.opened == [ConversationKey("wecom", "wangwu")]

    # A later entry asks the question the member was left at.
    status, body = await rig.post(rig.event_xml("wangwu", "enter_agent", create_time=1666300000))
    assert rig.opened(body).content.splitlines()[-1] == greeting.splitlines()[-1]
    # Other events say nothing.
    assert (await rig.post(rig.event_xml("wangwu", "LOCATION")))[1] == ""


async def test_other_message_types_get_a_short_note(rig: Rig) -> None:
    image = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1666229400</CreateTime>"
        "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://x/y.jpg]]></PicUrl>"
        "<MediaId><![CDATA[m1]]></MediaId><MsgId>42</MsgId><AgentID>1</AgentID></xml>"
    )
    status, body = await rig.post(image)
    assert status == 200
    assert "文字" in rig.opened(body).content
    assert rig.steps.steps == []


async def test_new_callbacks_are_refused_while_shutting_down(rig: Rig) -> None:
    rig.gateway.closing = True
    status, _ = await rig.post(rig.text_xml("zhangsan", "/help"))
    assert status == 503
    assert rig.steps.steps == []
    rig.gateway.closing = False


# ----- malformed documents with valid signatures (issue 8) ------------------------------------

HEAD = f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
FROM = "<FromUserName><![CDATA[zhangsan]]></FromUserName>"
TIME = "<CreateTime>1666229400</CreateTime>"
TEXT = "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[/help]]></Content>"
MSG_ID = "<MsgId>5100000000000000001</MsgId>"
AGENT = "<AgentID>1000002</AgentID>"
MALFORMED = {
    "MsgId-not-a-number": HEAD + FROM + TIME + TEXT + "<MsgId>abc</MsgId>" + AGENT,
    "CreateTime-not-a-number": HEAD + FROM + "<CreateTime>now</CreateTime>" + TEXT + MSG_ID,
    "AgentID-not-a-number": HEAD + FROM + TIME + TEXT + MSG_ID + "<AgentID>app</AgentID>",
    "event-without-Event": HEAD + FROM + TIME + "<MsgType>event</MsgType>" + AGENT,
    "event-with-nested-EventKey": (
        HEAD + FROM + TIME + "<MsgType>event</MsgType><Event>enter_agent</Event>"
        "<EventKey><a>1</a></EventKey>" + AGENT
    ),
    "MsgType-with-an-attribute": (
        HEAD + FROM + TIME + '<MsgType kind="x">text</MsgType><Content>hi</Content>' + MSG_ID
    ),
    "Content-with-children": (
        HEAD + FROM + TIME + "<MsgType>text</MsgType><Content><b>hi</b></Content>" + MSG_ID
    ),
    "text-without-MsgId": HEAD + FROM + TIME + TEXT + AGENT,
    "text-without-Content": HEAD + FROM + TIME + "<MsgType>text</MsgType>" + MSG_ID,
    "no-sender": HEAD + "<FromUserName></FromUserName>" + TIME + TEXT + MSG_ID,
    "no-CreateTime": HEAD + FROM + TEXT + MSG_ID + AGENT,
}


@SQLITE_ONLY
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_message_with_a_valid_signature_is_a_400_and_changes_nothing(
    rig: Rig, case: str
) -> None:
    # Issue 8: wechatpy int()s MsgId, CreateTime and AgentID when they are first read, and
    # reads Event without looking: each of these was a 500 for WeCom's every retry.
    status, body = await rig.post(f"<xml>{MALFORMED[case]}</xml>")

    assert (status, body) == (400, "")
    assert rig.steps.steps == []
    assert rig.steps.opened == []
    assert deliveries(rig) == []
    with rig.store.reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
    assert rig.gateway.metrics.value("awardbot_errors_total", channel="wecom", kind="shape") == 1


# ----- not a person writing (issue 8) ---------------------------------------------------------


def _system(event: str, extra: str = "", sender: str = "sys") -> str:
    return (
        f"<xml>{HEAD}<FromUserName><![CDATA[{sender}]]></FromUserName>{TIME}"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


SYSTEM_PUSHES = {
    "contact-change": _system(
        "change_contact", "<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID>"
    ),
    "calendar": _system("add_calendar", "<CalId>wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA</CalId>"),
    "schedule": _system("modify_schedule", "<CalId>c1</CalId><ScheduleId>s1</ScheduleId>"),
    "meeting": _system("book_meeting_room", "<MeetingRoomId>1</MeetingRoomId>"),
    "approval": _system(
        "sys_approval_change",
        f"{AGENT}<ApprovalInfo><SpNo>202210200001</SpNo><SpStatus>1</SpStatus></ApprovalInfo>",
    ),
    "batch-job": _system("batch_job_result", "<BatchJob><JobId>j</JobId></BatchJob>"),
    "sys-text": f"<xml>{HEAD}<FromUserName>sys</FromUserName>{TIME}{TEXT}{MSG_ID}</xml>",
    "unknown-member-event": _system("template_card_event", AGENT, sender="zhangsan"),
    "unknown-type": (
        f"<xml>{HEAD}{FROM}{TIME}<MsgType>update_button</MsgType>{MSG_ID}{AGENT}</xml>"
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("case", sorted(SYSTEM_PUSHES))
async def test_system_pushes_are_ignored_quietly(rig: Rig, case: str) -> None:
    status, body = await rig.post(SYSTEM_PUSHES[case])

    assert (status, body) == (200, "")  # never 「目前只支持文字消息」
    assert rig.steps.steps == []
    assert rig.steps.opened == []
    await rig.settle()
    assert rig.fake.texts() == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("voice", "<MediaId>m</MediaId><Format>amr</Format>"),
        ("video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>"),
        ("file", "<MediaId>m</MediaId><FileName>a.pdf</FileName>"),
        ("location", "<Location_X>43.8</Location_X><Location_Y>125.3</Location_Y>"),
        ("link", "<Title>t</Title><Url>http://x</Url>"),
    ],
)
async def test_a_members_own_non_text_message_gets_the_note(
    rig: Rig, kind: str, fields: str
) -> None:
    inner = f"<xml>{HEAD}{FROM}{TIME}<MsgType>{kind}</MsgType>{fields}{MSG_ID}{AGENT}</xml>"

    status, body = await rig.post(inner)

    assert status == 200
    assert rig.opened(body).content == TEXT_ONLY
    assert rig.steps.steps == []


# ----- the store down (issue 8) ---------------------------------------------------------------


async def test_the_store_down_is_a_fast_503_and_the_retry_is_answered(store: Store) -> None:
    clock = Clock()
    async with push_target(store, "wecom", clock=clock) as target:
        server = target.server
        server.gateway.steps = Unreachable()
        message = target.text("zhangsan", "/help")
        entered = target.xml("zhangsan", "event", Event="enter_agent", EventKey="")
        started = time.monotonic()

        answers = [await target.push(message), await target.push(entered)]

        assert [status for status, _ in answers] == [503, 503]
        assert time.monotonic() - started < 1.0
        with store.reading() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
            assert (
                conn.execute(
                    sa.select(sa.func.count()).select_from(inbound_deliveries)
                ).scalar_one()
                == 0
            )
        # Back up: WeCom's retries (signed anew) are answered, the greeting too.
        server.gateway.steps = server.runtime
        status, shown = await target.push(message)
        assert (status, bool(shown)) == (200, True)
        status, greeting = await target.push(entered)
        assert (status, bool(greeting)) == (200, True)
