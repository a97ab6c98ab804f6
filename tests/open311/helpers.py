"""Checking Open311 answers: the published JSON Schemas, and XML that mirrors the JSON."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from httpx import Response
from jsonschema import Draft7Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.accounts.service import create_api_key
from riderwatch.models import Clue

# The schemas of the open311 schema-validation project, copied into the repository (see schemas/README.md).
# A missing file must fail the tests, not skip them.
SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_FILES = ("request.json", "requests.json", "service.json", "services.json", "service-definition.json")
BASE = "/open311/v2"
# The JSON lists that the XML holds as a container of singular elements.
XML_ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # jsonschema only checks date-time with an optional package; Open311 also wants a timezone.
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


@cache
def _registry() -> Registry[Any]:
    names = (*SCHEMA_FILES, "swagger.json")
    resources = [
        (name, Resource.from_contents(json.loads((SCHEMA_DIR / name).read_text()), default_specification=DRAFT7))
        for name in names
    ]
    return Registry().with_resources(resources)


def validate(document: Any, schema_name: str) -> None:
    """Validate against one of the project's schema files (or swagger.json#/definitions/...)."""
    if schema_name.startswith("swagger.json#"):
        schema: dict[str, Any] = {"$ref": schema_name}
    else:
        schema = json.loads((SCHEMA_DIR / schema_name).read_text())
    Draft7Validator(schema, registry=_registry(), format_checker=FORMATS).validate(document)


def validate_created(document: Any) -> None:
    """A POST answer: a one-item list of the specification's RequestResponse."""
    assert isinstance(document, list) and len(document) == 1
    validate(document[0], "swagger.json#/definitions/RequestResponse")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_xml(element: etree._Element, list_item: str | None = None) -> Any:
    children = list(element)
    item = list_item or XML_ITEMS.get(element.tag)
    if item is not None:
        assert all(c.tag == item for c in children), f"<{element.tag}> holds more than <{item}> elements"
        return [_from_xml(c) for c in children]
    if not children:
        return element.text or ""
    tags = [c.tag for c in children]
    assert len(tags) == len(set(tags)), f"<{element.tag}> repeats an element: {tags}"
    return {c.tag: _from_xml(c) for c in children}


def assert_xml_mirrors(xml: bytes, document: Any, *, root: str, item: str | None = None) -> None:
    """The XML is well-formed, has the given root, and holds exactly the JSON's names and values."""
    tree = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    assert tree.tag == root
    assert _from_xml(tree, item) == _from_json(document)


def both(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[Response, Response]:
    """The same call in .json and .xml."""
    return (
        client.request(method, f"{BASE}/{path}.json", **kwargs),
        client.request(method, f"{BASE}/{path}.xml", **kwargs),
    )


def assert_error(res: Response, status: int, fmt: str, *, mentions: str = "") -> str:
    """An Open311 error list with one error, in the path's format; returns its description."""
    assert res.status_code == status, res.text
    if fmt == "json":
        assert res.headers["content-type"].startswith("application/json")
        body = res.json()
        assert isinstance(body, list) and len(body) == 1
        assert set(body[0]) == {"code", "description"}
        code, description = body[0]["code"], body[0]["description"]
    else:
        assert res.headers["content-type"].startswith("text/xml")
        tree = etree.fromstring(res.content)
        assert tree.tag == "errors"
        errors = tree.findall("error")
        assert len(errors) == 1 and [c.tag for c in errors[0]] == ["code", "description"]
        code, description = errors[0].findtext("code"), errors[0].findtext("description")
    assert str(code) == str(status)
    assert description
    assert mentions.lower() in description.lower(), description
    return str(description)


def api_key(db: Session, name: str = "city hotline") -> str:
    key = create_api_key(db, name=name)
    db.commit()
    return key


def clue_count(db: Session) -> int:
    db.expire_all()
    count = db.scalar(select(func.count()).select_from(Clue)) or 0
    db.rollback()  # SQLite transactions here take the write lock: release it for the app
    return count


def stored(db: Session, clue_id: int) -> Clue:
    """The clue as stored now, detached so that the test holds no transaction the app would wait on."""
    db.expire_all()
    clue = db.get(Clue, clue_id)
    assert clue is not None, f"clue {clue_id} was not stored"
    db.expunge(clue)
    db.rollback()
    return clue
