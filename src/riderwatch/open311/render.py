"""Open311 documents as JSON or XML: one tree, the XML element names mirroring the JSON keys."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree
from starlette.responses import Response

from riderwatch.errors import NotFound

MEDIA_TYPES = {"json": "application/json", "xml": "text/xml"}
# A JSON list inside an object becomes a container element whose children take the singular name.
ITEM_NAMES = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}
# Characters XML 1.0 cannot carry at all; lxml refuses them, so they are dropped rather than answering 500.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Document = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def check_format(fmt: str) -> str:
    """The response format named by the path suffix; any other suffix is an unknown resource."""
    if fmt not in MEDIA_TYPES:
        raise NotFound(f"unknown format .{fmt[:20]}: use .json or .xml")
    return fmt


def format_of_path(path: str) -> str:
    """JSON when the path asks for it, else XML (the format the specification requires)."""
    return "json" if path.endswith(".json") else "xml"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # what json.dumps writes, so XML and JSON agree digit for digit
    return _NOT_XML_CHAR.sub("", str(value))


def _fill(element: etree._Element, name: str, value: Any) -> None:
    child = etree.SubElement(element, name)
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _fill(child, key, sub)
    elif isinstance(value, list | tuple):
        item_name = ITEM_NAMES[name]
        for item in value:
            _fill(child, item_name, item)
    else:
        child.text = _text(value)


def to_xml(document: Document, *, root: str, item: str | None = None) -> bytes:
    """A list becomes <root><item>…</item>…</root>; an object becomes <root>…</root>."""
    element = etree.Element(root)
    if isinstance(document, Mapping):
        for key, value in document.items():
            _fill(element, key, value)
    else:
        if item is None:
            raise ValueError("a list document needs an item element name")
        for entry in document:
            _fill(element, item, entry)
    return bytes(etree.tostring(element, xml_declaration=True, encoding="utf-8"))


def to_json(document: Document) -> bytes:
    # Lone surrogates cannot be encoded; replacing them beats failing the whole answer.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "replace")


def render(fmt: str, document: Document, *, root: str, item: str | None = None, status: int = 200) -> Response:
    body = to_json(document) if fmt == "json" else to_xml(document, root=root, item=item)
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt] + "; charset=utf-8")
