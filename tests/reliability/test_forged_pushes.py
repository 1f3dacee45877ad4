"""Forged and replayed WeChat and WeCom pushes are refused and change nothing (issue 8).

Through `awardbot serve` as configured from the environment, with the nonce ledger on the
test's store (every worker's): a plaintext push to an account with an AES key, whatever its
query string says; a nonce seen before under another signature; a timestamp outside the
window. The platform's own retry (the identical request within the retry span) is answered
with the answer kept for the first.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, regions
from support.drivers.wechat import (
    PUSH_TARGETS,
    Clock,
    PushTarget,
    push_target,
    signature,
)

from conversations.identity import Level, Role
from storage import invites
from storage.store import Store

WELCOME = "您好！这里是吉林省评选表彰申报助手"
OFFICIAL = "o-bound-official"
COUNTED = ("users", "conversation_sessions", "inbound_deliveries", "audit_log", "reply_windows")
MAX_AGE = 300  # AWARDBOT_PUSH_MAX_AGE_SECONDS' default


def counts(store: Store) -> dict[str, int]:
    with store.reading() as conn:
        return {
            name: int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in COUNTED
        }


def external_ids(store: Store) -> list[str]:
    with store.reading() as conn:
        return sorted(conn.execute(sa.text("SELECT external_id FROM users")).scalars())


def refused(target: PushTarget, reason: str) -> int:
    return target.server.metrics.value(
        "awardbot_requests_total", channel=target.path[1:], outcome="refused", reason=reason
    )


def steps_run(target: PushTarget) -> int:
    channel = target.path[1:]
    return target.server.metrics.value("awardbot_updates_received_total", channel=channel)


def official_invite(store: Store) -> str:
    with store.transaction() as conn:
        return invites.create_invite(
            conn,
            role=Role.OFFICIAL,
            region=regions().get("220104"),
            level=Level.COUNTY,
            now=FIXED_NOW,
            ttl=timedelta(days=30),
        ).code


# ----- WeChat with an AES key: only encrypted pushes -----------------------------------------


async def test_a_plaintext_push_with_a_genuine_query_string_is_refused_with_an_aes_key(
    store: Store,
) -> None:
    """The attack of issue 8: the plain `signature` covers token, timestamp and nonce only, so
    whoever saw one query string (proxy logs keep them) could post any XML as any openid, a
    bound official's included, and read a nominee's ID number through /queue."""
    clock = Clock()
    async with push_target(store, "wechat-safe", clock=clock) as target:
        code = official_invite(store)
        assert (await target.push(target.text(OFFICIAL, "/start")))[0] == 200
        status, shown = await target.push(target.text(OFFICIAL, f"/bind {code}"))
        assert (status, "绑定成功" in shown) == (200, True)
        before, ran = counts(store), steps_run(target)

        for openid in (OFFICIAL, "o-somebody-new"):
            for encrypt_type in (None, "raw"):
                # A genuine plaintext-signed query string (fresh: its nonce never seen) ...
                timestamp, nonce = str(int(clock().timestamp())), f"n{openid}{encrypt_type}"
                query = {
                    "timestamp": timestamp,
                    "nonce": nonce,
                    "signature": signature(target.server.settings.wechat.token, timestamp, nonce),
                    "openid": openid,
                    **({"encrypt_type": encrypt_type} if encrypt_type else {}),
                }
                # ... carrying forged plaintext XML.
                forged = target.text(openid, "/queue").encode()
                status, _ = await target.post(query, forged)
                assert status == 403

        assert counts(store) == before
        assert steps_run(target) == ran
        assert refused(target, "plaintext") == 4
        assert "o-somebody-new" not in external_ids(store)


async def test_compatible_mode_reads_only_the_encrypted_part(store: Store) -> None:
    """兼容模式 posts the plaintext fields beside `<Encrypt>`; only the ciphertext is signed, so
    only it is read: plaintext fields naming another openid and text are ignored."""
    clock = Clock()
    async with push_target(store, "wechat-safe", clock=clock) as target:
        query, envelope = target.sign(target.text("o-real-sender", "你好"))
        forged_plain = (
            f"<FromUserName><![CDATA[{OFFICIAL}]]></FromUserName><CreateTime>1</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[/queue]]></Content>"
            "<MsgId>1</MsgId>"
        )
        body = envelope.replace(b"</ToUserName>", b"</ToUserName>" + forged_plain.encode())

        status, reply = await target.post(query, body)

        assert status == 200
        assert WELCOME in target.open_reply(reply)
        assert external_ids(store) == ["o-real-sender"]


# ----- every signed-push channel: timestamps and nonces --------------------------------------


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_a_nonce_seen_before_is_refused_under_another_signature(
    store: Store, name: str
) -> None:
    clock = Clock()
    async with push_target(store, name, clock=clock) as target:
        first = await target.push(target.text("u-first", "你好"), nonce="4242424242")
        assert first[0] == 200
        before, ran = counts(store), steps_run(target)

        # Another push (another body, so another msg_signature) under the nonce already seen.
        status, _ = await target.push(target.text("u-replayer", "你好"), nonce="4242424242")
        # The same push again later, signed with the seen nonce at a new timestamp.
        clock.now += dt.timedelta(seconds=5)
        again, _ = await target.push(target.text("u-first", "你好"), nonce="4242424242")

        assert (status, again) == (403, 403)
        assert counts(store) == before
        assert steps_run(target) == ran
        assert refused(target, "replay") == 2


async def test_plaintext_mode_refuses_a_seen_query_string_with_another_body(
    store: Store,
) -> None:
    """Without an AES key the signature covers no body; the ledger keys a push by its query
    signature and a digest of its body, so a seen query string cannot carry other XML."""
    clock = Clock()
    async with push_target(store, "wechat-plaintext", clock=clock) as target:
        query, body = target.sign(target.text("u-genuine", "你好"))
        assert (await target.post(query, body))[0] == 200
        before = counts(store)

        status, _ = await target.post(query, target.text(OFFICIAL, "/queue").encode())

        assert status == 403
        assert counts(store) == before
        assert OFFICIAL not in external_ids(store)
        assert refused(target, "replay") == 1


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_a_timestamp_outside_the_window_is_refused(store: Store, name: str) -> None:
    clock = Clock()
    async with push_target(store, name, clock=clock) as target:
        now = int(clock().timestamp())
        for skew in (-(MAX_AGE + 1), MAX_AGE + 1, -3600 * 24, 3600 * 24 * 365):
            status, _ = await target.push(target.text("u-late", "你好"), timestamp=str(now + skew))
            assert status == 403, skew

        assert counts(store) == dict.fromkeys(COUNTED, 0)
        assert refused(target, "stale") == 4
        # At the window's edges the same push is taken.
        for edge in (now - MAX_AGE + 1, now + MAX_AGE - 1):
            status, _ = await target.push(target.text("u-late", "你好"), timestamp=str(edge))
            assert status == 200, edge


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_the_identical_retry_gets_the_same_answer_and_later_is_a_replay(
    store: Store, name: str
) -> None:
    clock = Clock()
    async with push_target(store, name, clock=clock) as target:
        query, body = target.sign(target.text("u-retried", "你好", "5300000000000000001"))

        first = await target.post(query, body)
        clock.now += dt.timedelta(seconds=5)  # WeChat retries 5 s later, the same request
        retried = await target.post(query, body)
        clock.now += dt.timedelta(seconds=60)  # past the retry span: a replay
        replayed = await target.post(query, body)

        assert first[0] == retried[0] == 200
        assert WELCOME in target.open_reply(first[1])
        assert target.open_reply(retried[1]) == target.open_reply(first[1])
        assert replayed[0] == 403
        assert counts(store)["inbound_deliveries"] == 1
        assert steps_run(target) == 2  # the gateway saw the retry, the runtime ran it once
        duplicate = target.server.metrics.value(
            "awardbot_updates_duplicate_total", channel=target.path[1:]
        )
        assert duplicate == 1


# ----- every request counted (issue 8) --------------------------------------------------------


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_every_request_is_counted_by_outcome_and_reason(store: Store, name: str) -> None:
    clock = Clock()
    async with push_target(store, name, clock=clock) as target:
        channel = target.path[1:]
        text = target.text("u-counted", "你好", "5400000000000000001")
        query, body = target.sign(text)
        answers = [
            await target.post(query, body),  # accepted
            await target.push(text),  # duplicate: the same MsgId signed anew
            await target.push(target.xml("u-counted", "event", Event="unsubscribe")),  # ignored
            await target.push(target.xml("u-counted", "voice", MediaId="m", MsgId="54001")),
            await target.push(target.xml("u-counted", "text", Content="你好")),  # no MsgId
            await target.push("<xml><ToUserName>"),  # malformed XML
            await target.post(query, b"<xml>" + b"x" * 70_000 + b"</xml>"),  # too large
            await target.post({**query, "timestamp": "1"}, body),  # signature over another time
            await target.push(text, timestamp=str(int(clock().timestamp()) - 3600)),  # stale
            await target.push(target.text("u-other", "你好"), nonce=query["nonce"]),  # replay
        ]

        assert [status for status, _ in answers] == [
            200, 200, 200, 200, 400, 400, 413, 403, 403, 403,
        ]  # fmt: skip
        expected = {
            ("accepted", ""): 1,
            ("duplicate", ""): 1,
            ("ignored", ""): 2,
            ("refused", "shape"): 1,
            ("refused", "bad_xml"): 1,
            ("refused", "too_large"): 1,
            ("refused", "signature"): 1,
            ("refused", "stale"): 1,
            ("refused", "replay"): 1,
        }
        metrics = target.server.metrics
        counted = {
            key: metrics.value(
                "awardbot_requests_total", channel=channel, outcome=key[0], reason=key[1]
            )
            for key in expected
        }
        assert counted == expected
