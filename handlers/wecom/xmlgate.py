"""The gate every inbound WeCom XML passes before anything else parses it.

wechatpy hands XML to xmltodict (expat), which expands internal entities: a "billion laughs"
body would be blown up in memory. defusedxml refuses any document type declaration, entity or
external reference as soon as the parser meets it, so a hostile body is refused while it is
still small. The caller caps the size first (a 1 MB text node never reaches the parser).
"""

from __future__ import annotations

from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_ELEMENTS = 256  # a few events nest a short list; no callback needs more


class RefusedXml(ValueError):
    """The body is not the plain `<xml>…</xml>` document WeCom sends; safe to log."""


def flat_xml(data: bytes | str) -> dict[str, str]:
    """The top-level children of an `<xml>` document as {tag: text}.

    Raises RefusedXml for a DTD, an entity, an external reference, malformed XML, another
    root, a repeated field or too many elements. Nested elements (a few events have them) are
    allowed; their own text is not collected.
    """
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise RefusedXml(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise RefusedXml(f"malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise RefusedXml("root element is not <xml>")
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise RefusedXml("too many elements")
    fields: dict[str, str] = {}
    for child in root:
        tag = str(child.tag)
        if tag in fields:
            raise RefusedXml(f"repeated field {tag[:32]}")
        fields[tag] = "" if len(child) else (child.text or "")
    return fields
