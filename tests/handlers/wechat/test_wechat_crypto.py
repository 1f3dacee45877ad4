"""WeChat push decoding: the official sample vectors (platforms.md §1.5), URL check, XML gate."""

from __future__ import annotations

import time

import pytest
from support.drivers.wechat import BILLION_LAUGHS, EXTERNAL_ENTITY, HUGE_TEXT, signature
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from handlers.wechat.inbound import Codec, SignatureRefused
from handlers.xmlgate import MAX_BODY, XmlRefused, parse_flat

# Vector C: wechatpy v1.8.18 tests/test_crypto.py
C_TOKEN, C_ID = "123456", "wx49f0ab532d5d035a"
C_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
C_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYy"
    "olBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWO"
    "MZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7ml"
    "sl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
C_QUERY = {
    "encrypt_type": "aes",
    "msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    "timestamp": "1411525903",
    "nonce": "461056294",
}
C_BODY = (
    f"<xml><ToUserName><![CDATA[{C_ID}]]></ToUserName>"
    f"<Encrypt><![CDATA[{C_ENCRYPT}]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>"
).encode()
C_URL = {
    "signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    ),
}
# Vector B: the official Java sample (WxJava WxCryptUtilTest)
B_TOKEN, B_ID = "pamtest", "wxb11529c136998cb6"
B_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
B_CIPHER = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)


def test_vector_c_decrypts_through_our_decoding() -> None:
    push = Codec(C_TOKEN, C_KEY, C_ID).decode(C_QUERY, C_BODY)

    assert push.encrypted
    assert push.message.type == "text"
    assert push.message.content == "test"
    assert push.message.source == "messense"
    assert push.fields["MsgId"] == "4363689963896700987"


def test_vector_c_with_a_wrong_msg_signature_is_refused() -> None:
    query = {**C_QUERY, "msg_signature": "0" * 40}

    with pytest.raises(SignatureRefused):
        Codec(C_TOKEN, C_KEY, C_ID).decode(query, C_BODY)


def test_vector_c_for_another_app_id_is_refused() -> None:
    with pytest.raises(SignatureRefused):
        Codec(C_TOKEN, C_KEY, "wx0000000000000000").decode(C_QUERY, C_BODY)


def test_vector_b_ciphertext_decrypts_to_the_official_plaintext() -> None:
    timestamp, nonce = "1409304348", "xxxxxx"
    query = {
        "encrypt_type": "aes",
        "timestamp": timestamp,
        "nonce": nonce,
        "msg_signature": signature(B_TOKEN, timestamp, nonce, B_CIPHER),
    }
    body = f"<xml><ToUserName>x</ToUserName><Encrypt>{B_CIPHER}</Encrypt></xml>".encode()

    text, encrypted = Codec(B_TOKEN, B_KEY, B_ID).unwrap(query, body)

    assert (text, encrypted) == ("我是中文abcd123", True)


def test_our_encrypted_reply_decrypts_with_wechatpy() -> None:
    push = Codec(C_TOKEN, C_KEY, C_ID).decode(C_QUERY, C_BODY)
    xml = TextReply(message=push.message, content="收到：你好").render()

    body = Codec(C_TOKEN, C_KEY, C_ID).encode_reply(xml, encrypted=True)

    fields = parse_flat(body)
    assert "收到" not in body
    plain = WeChatCrypto(C_TOKEN, C_KEY, C_ID).decrypt_message(
        body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
    )
    reply = parse_flat(plain)
    assert reply["Content"] == "收到：你好"
    assert (reply["ToUserName"], reply["FromUserName"]) == ("messense", C_ID)


def test_plaintext_reply_stays_plain() -> None:
    assert Codec(C_TOKEN, C_KEY, C_ID).encode_reply("<xml/>", encrypted=False) == "<xml/>"


def test_url_verification_echoes_echostr_when_the_signature_holds() -> None:
    query = {**C_URL, "signature": signature(C_TOKEN, C_URL["timestamp"], C_URL["nonce"])}

    assert Codec(C_TOKEN, C_KEY, C_ID).verify_url(query) == C_URL["echostr"]
    assert Codec(C_TOKEN, None, C_ID).verify_url(query) == C_URL["echostr"]


def test_url_verification_refuses_vector_cs_wecom_style_signature() -> None:
    # Vector C's URL check signs the echostr too (WeCom); an Official Account's does not.
    with pytest.raises(SignatureRefused):
        Codec(C_TOKEN, C_KEY, C_ID).verify_url(C_URL)
    with pytest.raises(SignatureRefused):
        Codec("654321", C_KEY, C_ID).verify_url(
            {**C_URL, "signature": signature(C_TOKEN, C_URL["timestamp"], C_URL["nonce"])}
        )


def test_plaintext_push_needs_its_signature() -> None:
    body = (
        b"<xml><ToUserName>gh_1</ToUserName><FromUserName>u</FromUserName>"
        b"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
        b"<MsgId>1</MsgId></xml>"
    )
    query = {"timestamp": "1", "nonce": "2", "signature": signature(C_TOKEN, "1", "2")}
    codec = Codec(C_TOKEN, None, C_ID)

    assert codec.decode(query, body).message.content == "hi"
    with pytest.raises(SignatureRefused):
        codec.decode({**query, "signature": signature("other", "1", "2")}, body)
    with pytest.raises(SignatureRefused):
        codec.decode({"timestamp": "1", "nonce": "2"}, body)


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, HUGE_TEXT, "<xml><a>", "not xml", "<root><a>1</a></root>"],
    ids=["billion-laughs", "external-entity", "1MB-text", "truncated", "garbage", "not-xml-root"],
)
def test_hostile_or_malformed_xml_is_refused_without_expanding_it(document: str) -> None:
    started = time.perf_counter()

    with pytest.raises(XmlRefused):
        parse_flat(document)

    assert time.perf_counter() - started < 0.5
    assert len(HUGE_TEXT) > MAX_BODY


def test_a_wechat_push_passes_the_gate() -> None:
    fields = parse_flat(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1348831860</CreateTime>"
        "<Content><![CDATA[a < b & c]]></Content></xml>"
    )

    assert fields == {"ToUserName": "gh_1", "CreateTime": "1348831860", "Content": "a < b & c"}
