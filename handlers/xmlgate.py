"""The hostile-XML gate: every WeChat and WeCom XML body passes here before any other parser.

Both platforms post small flat documents (`<xml><ToUserName>…</ToUserName>…</xml>`). Anything
else is refused without being expanded: a DOCTYPE (so no entity expansion, "billion laughs", and
no external entity), a body larger than they ever send, a repeated field, too many elements.
defusedxml refuses the DTD as soon as the parser meets it, before any entity is declared.
Only a document that passed is handed to wechatpy (whose parser, xmltodict, expands entities).
Callers cap the body's size before reading it (`handlers.base.read_capped`) and again here.

A signed document can still be malformed (issue 8): `check_shape` is the one place that says
what a push we act on must carry, checked before anything is recorded, so that wechatpy (which
converts MsgId, CreateTime and AgentID with `int()` when they are first read) never sees a
field of the wrong type or shape.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BODY = 64 * 1024  # bytes; pushes are a few KiB (safe mode ~3x the plaintext)
MAX_ELEMENTS = 256  # events such as pic_sysphoto nest a short list; nothing needs more
_DECLARED_ENCODING = re.compile(rb"\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']")


class XmlRefused(ValueError):
    """The body is not a WeChat/WeCom XML document we accept; the reason is safe to log."""


class ShapeRefused(XmlRefused):
    """A well-formed document that is not a push we can act on (a field missing or of the
    wrong type); the reason names the field, never its value."""


class Fields(dict[str, str]):
    """{tag: text} of a flat document; `nested` names the children that are not plain text
    (they have children or attributes: xmltodict would hand wechatpy a dict for them)."""

    nested: frozenset[str] = frozenset()


def parse_flat(data: bytes | str, *, limit: int = MAX_BODY) -> Fields:
    """The children of the root `<xml>` element as {tag: text}; raises XmlRefused.

    `limit` bounds the size before parsing starts, so 1 MB of text is never parsed.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > limit:
        raise XmlRefused(f"body of {len(raw)} bytes exceeds {limit}")
    if not raw.strip():
        raise XmlRefused("empty body")
    declared = _DECLARED_ENCODING.match(raw)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        # The platforms send UTF-8. Another declared encoding would make this gate and
        # wechatpy's parser (given the decoded text) read different documents (issue 8).
        raise XmlRefused("declared encoding is not UTF-8")
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlRefused(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise XmlRefused(f"malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise XmlRefused("root element is not <xml>")
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise XmlRefused("too many elements")
    fields = Fields()
    nested: set[str] = set()
    for child in root:
        if child.tag in fields:
            raise XmlRefused(f"repeated field {str(child.tag)[:32]}")
        fields[str(child.tag)] = (child.text or "").strip() if len(child) else child.text or ""
        if len(child) or child.attrib:
            nested.add(str(child.tag))
    fields.nested = frozenset(nested)
    return fields


# ----- the shape of a push ------------------------------------------------------------------

# Fields the adapters (and wechatpy, for them) read: each must be plain text when present.
READ_FIELDS = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Content",
    "MediaId",
    "FileName",
    "Event",
    "EventKey",
    "AgentID",
)
MEMBER_MESSAGES = frozenset(
    {"image", "voice", "video", "shortvideo", "file", "location", "link", "miniprogrampage"}
)  # what a person sends besides text (answered with a note, or taken as a file)

_ACCOUNT = re.compile(r"[!-~]{1,128}")  # openids, WeCom user ids, gh_… and corp ids: ASCII
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")  # MsgType and Event values
_CREATE_TIME = re.compile(r"[0-9]{1,10}")  # seconds: wechatpy turns it into a datetime
_MSG_ID = re.compile(r"[0-9]{1,20}")  # a 64-bit number
_AGENT_ID = re.compile(r"[0-9]{0,10}")  # WeCom's app id (empty in some system pushes)
_UNSAFE_ACCOUNT = frozenset("<>&[]\"'")  # never in a real id; would break our reply's XML


def check_shape(fields: Fields) -> str:
    """The push's kind (its MsgType, lower case) once its shape holds; raises ShapeRefused.

    Every push: ToUserName and FromUserName (ASCII ids), CreateTime (seconds), MsgType.
    Text: MsgId and a non-empty Content. Image and file: MsgId and MediaId. Other things a
    person sends (voice, location…): MsgId. Events: Event. MsgId and AgentID, where given,
    are numbers. Kinds nobody acts on (unknown types) need only the common fields.
    """
    for name in READ_FIELDS:
        if name in fields.nested:
            raise ShapeRefused(f"{name} is not plain text")
    for name in ("ToUserName", "FromUserName"):
        value = fields.get(name, "")
        if not _ACCOUNT.fullmatch(value) or _UNSAFE_ACCOUNT.intersection(value):
            raise ShapeRefused(f"{name} missing or not an id")
    if not _CREATE_TIME.fullmatch(fields.get("CreateTime", "")):
        raise ShapeRefused("CreateTime missing or not a number")
    kind = fields.get("MsgType", "")
    if not _NAME.fullmatch(kind):
        raise ShapeRefused("MsgType missing or not a name")
    kind = kind.lower()
    if "MsgId" in fields and not _MSG_ID.fullmatch(fields["MsgId"]):
        raise ShapeRefused("MsgId not a number")
    if "AgentID" in fields and not _AGENT_ID.fullmatch(fields["AgentID"]):
        raise ShapeRefused("AgentID not a number")
    if kind == "event":
        if not _NAME.fullmatch(fields.get("Event", "")):
            raise ShapeRefused("Event missing or not a name")
        return kind
    if (kind == "text" or kind in MEMBER_MESSAGES) and "MsgId" not in fields:
        raise ShapeRefused("MsgId missing")
    if kind == "text" and not fields.get("Content"):
        raise ShapeRefused("Content missing")
    if kind in ("image", "file") and not fields.get("MediaId", "").strip():
        raise ShapeRefused("MediaId missing")
    return kind
