"""The hostile-XML gate: every WeChat and WeCom XML body passes here before any other parser.

Both platforms post small flat documents (`<xml><ToUserName>…</ToUserName>…</xml>`). Anything
else is refused without being expanded: a DOCTYPE (so no entity expansion, "billion laughs", and
no external entity), a body larger than they ever send, a repeated field, too many elements.
defusedxml refuses the DTD as soon as the parser meets it, before any entity is declared.
Only a document that passed is handed to wechatpy (whose parser, xmltodict, expands entities).
Callers cap the body's size before reading it (`handlers.base.read_capped`) and again here.
"""

from __future__ import annotations

from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BODY = 64 * 1024  # bytes; pushes are a few KiB (safe mode ~3x the plaintext)
MAX_ELEMENTS = 256  # events such as pic_sysphoto nest a short list; nothing needs more


class XmlRefused(ValueError):
    """The body is not a WeChat/WeCom XML document we accept; the reason is safe to log."""


def parse_flat(data: bytes | str, *, limit: int = MAX_BODY) -> dict[str, str]:
    """The children of the root `<xml>` element as {tag: text}; raises XmlRefused.

    `limit` bounds the size before parsing starts, so 1 MB of text is never parsed.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > limit:
        raise XmlRefused(f"body of {len(raw)} bytes exceeds {limit}")
    if not raw.strip():
        raise XmlRefused("empty body")
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlRefused(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise XmlRefused(f"malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise XmlRefused("root element is not <xml>")
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise XmlRefused("too many elements")
    fields: dict[str, str] = {}
    for child in root:
        if child.tag in fields:
            raise XmlRefused(f"repeated field {str(child.tag)[:32]}")
        fields[str(child.tag)] = (child.text or "").strip() if len(child) else child.text or ""
    return fields
