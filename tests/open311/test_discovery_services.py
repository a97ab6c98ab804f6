"""Open311 discovery, services and service definitions, in JSON and XML."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Category
from riderwatch.open311 import discovery as open311_discovery
from tests.factories import make_district
from tests.open311.helpers import BASE, SCHEMA_DIR, assert_error, assert_xml_mirrors, both, validate


def test_schema_directory_is_present() -> None:
    for name in ("request.json", "requests.json", "service.json", "services.json", "service-definition.json"):
        assert (SCHEMA_DIR / name).is_file(), f"missing Open311 schema {name} in {SCHEMA_DIR}"


def test_discovery_announces_both_formats(client: TestClient, db: Session) -> None:
    make_district(db)
    res_json, res_xml = both(client, "GET", "discovery")
    assert res_json.status_code == res_xml.status_code == 200
    doc = res_json.json()
    assert doc["contact"] == "镇海派出所指挥中心"
    assert doc["key_service"]
    [endpoint] = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["type"] in ("production", "test")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert res_xml.headers["content-type"].startswith("text/xml")
    assert_xml_mirrors(res_xml.content, doc, root="discovery")


def test_services_list_every_active_category(client: TestClient, db: Session) -> None:
    db.get(Category, "other").active = False  # type: ignore[union-attr]
    db.commit()
    res_json, res_xml = both(client, "GET", "services")
    assert res_json.status_code == res_xml.status_code == 200
    services = res_json.json()
    validate(services, "services.json")
    active = set(db.scalars(select(Category.code).where(Category.active.is_(True))))
    assert {s["service_code"] for s in services} == active
    assert "other" not in active
    fire = next(s for s in services if s["service_code"] == "fire_hazard")
    assert fire["service_name"] == "消防隐患"
    assert fire["group"] == "hazard"
    assert fire["type"] == "realtime"
    assert fire["metadata"] is True
    assert_xml_mirrors(res_xml.content, services, root="services", item="service")


def test_services_in_english_when_asked(client: TestClient) -> None:
    res = client.get(f"{BASE}/services.json", headers={"Accept-Language": "en-GB,en;q=0.8"})
    fire = next(s for s in res.json() if s["service_code"] == "fire_hazard")
    assert fire["service_name"] == "Fire hazard"


@pytest.mark.parametrize("code", ["fire_hazard", "theft", "person_in_need"])
def test_service_definition(client: TestClient, code: str) -> None:
    res_json, res_xml = both(client, "GET", f"services/{code}")
    assert res_json.status_code == res_xml.status_code == 200
    definition = res_json.json()
    validate(definition, "service-definition.json")
    assert definition["service_code"] == code
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert attributes["urgency"]["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attributes["urgency"]["values"]] == ["normal", "urgent"]
    assert attributes["observed_at"]["datatype"] == "datetime"
    assert all(a["variable"] is True for a in attributes.values())
    assert [a["order"] for a in definition["attributes"]] == sorted(a["order"] for a in definition["attributes"])
    # Only hazards ask who is at risk.
    assert ("at_risk" in attributes) == (code == "fire_hazard")
    if code == "fire_hazard":
        assert attributes["at_risk"]["datatype"] == "multivaluelist"
    assert_xml_mirrors(res_xml.content, definition, root="service_definition")


def test_metadata_true_only_where_a_definition_exists(client: TestClient) -> None:
    for service in client.get(f"{BASE}/services.json").json():
        res = client.get(f"{BASE}/services/{service['service_code']}.json")
        assert res.status_code == (200 if service["metadata"] else 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_service_is_404(client: TestClient, fmt: str) -> None:
    assert_error(client.get(f"{BASE}/services/no_such_thing.{fmt}"), 404, fmt, mentions="no_such_thing")


def test_inactive_service_has_no_definition(client: TestClient, db: Session) -> None:
    db.get(Category, "fire_hazard").active = False  # type: ignore[union-attr]
    db.commit()
    assert_error(client.get(f"{BASE}/services/fire_hazard.json"), 404, "json")


@pytest.mark.parametrize("path", ["services.html", "discovery.csv", "services/fire_hazard.yaml", "nothing.json"])
def test_unknown_resources_are_404(client: TestClient, path: str) -> None:
    fmt = "json" if path.endswith(".json") else "xml"
    assert_error(client.get(f"{BASE}/{path}"), 404, fmt)


def test_jurisdiction_id_is_checked(client: TestClient, settings: object) -> None:
    ours = client.app.state.settings.open311_jurisdiction_id  # type: ignore[attr-defined]
    assert client.get(f"{BASE}/services.json", params={"jurisdiction_id": ours}).status_code == 200
    assert_error(
        client.get(f"{BASE}/services.xml", params={"jurisdiction_id": "elsewhere.gov"}),
        404,
        "xml",
        mentions="jurisdiction",
    )


def test_wrong_method_is_a_400_error_list(client: TestClient) -> None:
    assert_error(client.delete(f"{BASE}/services.json"), 400, "json")


def test_attribute_codes_never_clash_with_request_fields_kept_in_clue_attributes() -> None:
    codes = {spec.code for spec in open311_discovery.ATTRIBUTES}
    assert len(codes) == len(open311_discovery.ATTRIBUTES)
    assert not codes & {open311_discovery.MEDIA_URL_KEY, open311_discovery.ADDRESS_ID_KEY}
