"""A bounded fuzzer on `POST /wechat` (plaintext and safe mode) and `POST /wecom` (issue 8).

Every request is validly signed (a fresh nonce, the server's clock) and goes through the real
`Server` of `awardbot serve`; what varies is the document inside. Each generated document is
either malformed on purpose (a field missing, of the wrong type or shape, a hostile or broken
document, a ciphertext that does not decrypt) and must be refused with 400 — or a push that no
person wrote (an unknown event, a system push) and must be taken quietly with 200. Never a 500,
and no request changes any of the counted tables.

Hypothesis drives the examples from a worker thread while the event loop of the test serves
them; 150 examples per route keep the three routes within a few seconds each.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.drivers.wechat import PUSH_TARGETS, Clock, PushTarget, push_target, signature
from support.keys import TEST_SEALER

from storage.store import Store

EXAMPLES = 150
COUNTED = ("users", "conversation_sessions", "inbound_deliveries", "audit_log", "reply_windows")
NONCES = "push_nonces"  # a refused push leaves no nonce either; a taken one does

# What a valid push of each kind carries besides ToUserName, FromUserName, CreateTime.
REQUIRED = {
    "text": ("MsgType", "Content", "MsgId"),
    "image": ("MsgType", "MediaId", "MsgId"),
    "file": ("MsgType", "MediaId", "MsgId"),
    "voice": ("MsgType", "MsgId"),
    "event": ("MsgType", "Event"),
}
COMMON = ("ToUserName", "FromUserName", "CreateTime")
READ_FIELDS = (*COMMON, "MsgType", "MsgId", "Content", "MediaId", "FileName", "Event", "EventKey",
               "AgentID")  # fmt: skip
NUMBERS = {"CreateTime": 10, "MsgId": 20, "AgentID": 10}  # digits at most
ACTING_EVENTS = {  # events that run a step or open a reply window
    "subscribe", "click", "view", "scan", "scancode_push", "scancode_waitmsg", "enter_agent",
}  # fmt: skip

_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_ACCOUNT = re.compile(r"[!-~]{1,128}")
_NUMBER = {name: re.compile(f"[0-9]{{1,{digits}}}") for name, digits in NUMBERS.items()}
_NUMBER["AgentID"] = re.compile("[0-9]{0,10}")  # empty in some of WeCom's system pushes


@dataclass(frozen=True)
class Case:
    """One request: the inner document (or a whole envelope), and what it must be answered."""

    fields: tuple[tuple[str, str], ...] = ()  # the inner document's fields, in order
    raw: str | None = None  # a whole inner document instead of `fields`
    envelope: str | None = None  # a whole Encrypt value instead of encrypting the document
    statuses: tuple[int, ...] = (400,)
    why: str = ""

    def document(self) -> str:
        if self.raw is not None:
            return self.raw
        return "<xml>" + "".join(_element(name, value) for name, value in self.fields) + "</xml>"


def _element(name: str, value: str) -> str:
    if value.startswith("\0raw:"):  # a field made nested or given attributes on purpose
        return value[5:]
    return f"<{name}>{escape(value)}</{name}>"


# ----- strategies -------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=40)  # anything, for malformed values
xml_texts = st.text(  # what a valid document may carry as text (XML 1.0 characters)
    st.characters(codec="utf-8").filter(
        lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
    ),
    max_size=40,
)
extra_names = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,14}", fullmatch=True).filter(
    lambda name: name not in READ_FIELDS
)


@st.composite
def valid_fields(draw: st.DrawFn, wecom: bool) -> dict[str, str]:
    kind = draw(st.sampled_from(sorted(REQUIRED)))
    fields = {
        "ToUserName": "wwfakecorp0000001" if wecom else "gh_fakeaccount0",
        "FromUserName": draw(st.from_regex(r"o[A-Za-z0-9_-]{5,27}", fullmatch=True)),
        "CreateTime": str(draw(st.integers(1_600_000_000, 1_700_000_000))),
        "MsgType": kind,
    }
    if kind == "text":
        fields["Content"] = draw(xml_texts.filter(lambda text: text.strip() != ""))
    if kind in ("image", "file", "voice"):
        fields["MediaId"] = draw(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
    if kind == "file":
        fields["FileName"] = draw(xml_texts)
    if kind == "event":
        fields["Event"] = draw(st.sampled_from(["subscribe", "CLICK", "enter_agent", "VIEW"]))
        fields["EventKey"] = draw(st.sampled_from(["", "SELF_CHECK", "qrscene_1"]))
    else:
        fields["MsgId"] = str(draw(st.integers(1, 2**63)))
    if wecom:
        fields["AgentID"] = "1000002"
    for _ in range(draw(st.integers(0, 3))):  # fields nobody reads, with any text
        fields.setdefault(draw(extra_names), draw(xml_texts))
    return fields


def _not(pattern: re.Pattern[str]) -> st.SearchStrategy[str]:
    return st.one_of(texts, st.integers(10**20, 10**40).map(str)).filter(
        lambda value: not pattern.fullmatch(value)
    )


@st.composite
def malformed(draw: st.DrawFn, wecom: bool) -> Case:
    """A document that is not a push we can act on, each way it can be that."""
    fields = draw(valid_fields(wecom))
    kind = fields["MsgType"]
    how = draw(
        st.sampled_from(
            ["drop", "number", "nested", "account", "name", "empty", "duplicate", "broken"]
        )
    )
    if how == "drop":
        name = draw(st.sampled_from(COMMON + REQUIRED[kind]))
        del fields[name]
    elif how == "number":
        name = draw(st.sampled_from([n for n in NUMBERS if n in fields]))
        fields[name] = draw(_not(_NUMBER[name]))
    elif how == "nested":
        name = draw(st.sampled_from([n for n in READ_FIELDS if n in fields]))
        inner = escape(fields[name])
        fields[name] = "\0raw:" + draw(
            st.sampled_from(
                [
                    f"<{name}><v>{inner}</v></{name}>",
                    f'<{name} kind="x">{inner}</{name}>',
                    f"<{name}>{inner}<b/></{name}>",
                ]
            )
        )
    elif how == "account":
        name = draw(st.sampled_from(["ToUserName", "FromUserName"]))
        fields[name] = draw(
            st.one_of(
                _not(_ACCOUNT),
                st.sampled_from(["o-a<b", "o]]>", "o&x", 'o"q', "o'q", "o[1]", "o b", ""]),
            )
        )
    elif how == "name":
        name = "Event" if kind == "event" else "MsgType"
        fields[name] = draw(_not(_NAME))
    elif how == "empty":
        if kind == "text":
            fields["Content"] = ""
        elif kind in ("image", "file"):
            fields["MediaId"] = draw(st.sampled_from(["", " ", "\n\t"]))
        else:
            del fields["MsgType"]
    elif how == "duplicate":
        name = draw(st.sampled_from(sorted(fields)))
        return Case(tuple(fields.items()) + ((name, fields[name]),), why="duplicate " + name)
    else:
        return draw(broken(Case(tuple(fields.items())).document()))
    return Case(tuple(fields.items()), why=how)


@st.composite
def broken(draw: st.DrawFn, document: str) -> Case:
    """Not a flat document at all: cut, garbage, hostile, another root, too deep."""
    way = draw(st.sampled_from(["cut", "garbage", "doctype", "root", "deep", "encoding"]))
    if way == "cut":
        raw = document[: draw(st.integers(0, len(document) - 2))]
    elif way == "garbage":
        raw = draw(st.one_of(texts, st.binary(max_size=60).map(lambda b: b.hex())))
    elif way == "doctype":
        raw = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "x">]>' + document
    elif way == "root":
        raw = document.replace("<xml>", "<root>", 1).replace("</xml>", "</root>")
    elif way == "deep":
        depth = draw(st.integers(260, 600))
        raw = document.replace("</xml>", "<d>" * depth + "</d>" * depth + "</xml>")
    else:
        charset = draw(st.sampled_from(["latin-1", "gbk", "utf-16", "x-unknown", "ascii"]))
        raw = f'<?xml version="1.0" encoding="{charset}"?>' + document
    return Case(raw=raw, why=way)


@st.composite
def nobody_wrote(draw: st.DrawFn, wecom: bool) -> Case:
    """A valid push that no person wrote (or one we do not act on): taken quietly, 200."""
    fields = draw(valid_fields(wecom))
    fields["MsgType"] = "event"
    for name in ("Content", "MediaId", "FileName", "MsgId"):
        fields.pop(name, None)
    fields["Event"] = draw(
        st.from_regex(r"[A-Za-z_]{1,30}", fullmatch=True).filter(
            lambda event: event.lower() not in ACTING_EVENTS
        )
    )
    fields.setdefault("EventKey", "")
    if wecom and draw(st.booleans()):
        fields["FromUserName"] = "sys"  # WeCom's own pushes: contacts, calendar, approvals
    return Case(tuple(fields.items()), statuses=(200,), why="nobody wrote")


def garbage_ciphertext() -> st.SearchStrategy[Case]:
    """A signed envelope whose Encrypt does not decrypt to anything (safe mode, WeCom).

    Undecryptable is a 400; ciphertext that happens to decrypt to a trailer naming another app
    id is wechatpy's InvalidAppIdException, which the WeChat codec refuses as not signed for
    this account (403) — wechatpy cannot tell garbage from another app's ciphertext.
    """
    blobs = st.one_of(
        st.binary(min_size=0, max_size=200).map(lambda b: base64.b64encode(b).decode()),
        st.from_regex(r"[A-Za-z0-9+/=]{1,120}", fullmatch=True),
        texts,
    )
    return blobs.map(lambda blob: Case(envelope=blob, statuses=(400, 403), why="ciphertext"))


def cases(name: str) -> st.SearchStrategy[Case]:
    wecom = name == "wecom"
    choices = [malformed(wecom), malformed(wecom), nobody_wrote(wecom)]
    if name != "wechat-plaintext":
        choices.append(garbage_ciphertext())
    return st.one_of(*choices)


# ----- the requests -------------------------------------------------------------------------


def request_for(target: PushTarget, case: Case) -> tuple[dict[str, str], bytes]:
    """The validly signed request carrying `case`."""
    if case.envelope is None:
        return target.sign(case.document())
    query, _ = target.sign("<xml/>")  # a fresh nonce and the server's time
    token = target.server.settings.wecom.token if target.name == "wecom" else TOKEN
    query["msg_signature"] = signature(token, query["timestamp"], query["nonce"], case.envelope)
    if target.name == "wecom":
        query.pop("signature", None)
    body = f"<xml><ToUserName>x</ToUserName><Encrypt>{escape(case.envelope)}</Encrypt></xml>"
    return query, body.encode("utf-8")


def counts(store: Store, tables: tuple[str, ...]) -> dict[str, int]:
    with store.reading() as conn:
        return {
            name: int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in tables
        }


TOKEN = "fake-push-token"  # fakes.wechat_api.TOKEN


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_signed_malformed_pushes_are_refused_and_change_nothing(
    tmp_path: Path, name: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fuzz.db'}", sealer=TEST_SEALER)
    loop = asyncio.get_running_loop()
    seen: dict[str, int] = {}
    try:
        async with push_target(store, name, clock=Clock(), files_dir=tmp_path) as target:

            def post(query: dict[str, str], body: bytes) -> tuple[int, str]:
                future = asyncio.run_coroutine_threadsafe(target.post(query, body), loop)
                return future.result(timeout=10)

            run = fuzz(store, target, post, seen)
            await asyncio.to_thread(run)
            errors = target.server.metrics.value(
                "awardbot_errors_total", channel=target.path[1:], kind="unhandled"
            )
            assert errors == 0
    finally:
        store.close()
    print(
        f"{name}: {sum(seen.values())} requests, " + ", ".join(f"{k} {v}" for k, v in seen.items())
    )
    assert seen.get("500", 0) == 0


def fuzz(
    store: Store,
    target: PushTarget,
    post: Callable[[dict[str, str], bytes], tuple[int, str]],
    seen: dict[str, int],
) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=cases(target.name))
    def run(case: Case) -> None:
        tables = COUNTED if case.statuses == (200,) else (*COUNTED, NONCES)
        before = counts(store, tables)

        status, body = post(*request_for(target, case))

        seen[str(status)] = seen.get(str(status), 0) + 1
        assert status in case.statuses, (case.why, status, case.document()[:300])
        if status == 200:
            assert body in ("", "success"), (case.why, body[:200])
        assert counts(store, tables) == before, case.why

    return run
