"""Importing the areas a street office's GIS exports (GeoJSON, KML, KMZ): previewed with a dry run, every
feature checked, all stored or none, a second import of the same file changes nothing."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.cli import app as cli
from riderwatch.geo.coords import wgs84_to_gcj02
from riderwatch.models import Community, Grid
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, District, square

EAST_HALF = square(CENTER_LAT, CENTER_LON + 0.005, 0.0045)
NORTH_EAST = square(CENTER_LAT + 0.005, CENTER_LON + 0.005, 0.004)


def _feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def _send(api: Api, kind: str, data: bytes, name: str = "areas.geojson", **fields: str) -> Any:
    return api.client.post(
        f"/api/v1/org/{kind}/import",
        files={"file": (name, data, "application/octet-stream")},
        data=fields,
        headers=api.auth("admin"),
    )


def _count(db: Session, model: Any) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return n


GRIDS = _collection(
    _feature(EAST_HALF, code="jinding-e", name="金鼎东网格", community="jinding"),
    _feature(NORTH_EAST, 编码="jinding-ne", 名称="金鼎东北网格", 社区="jinding"),
)


def test_a_geojson_file_is_previewed_then_imported_and_a_second_import_changes_nothing(api: Api, db: Session) -> None:
    preview = _send(api, "grids", GRIDS, dry_run="true")
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["dry_run"], body["created"], body["updated"], body["unchanged"]) == (True, 2, 0, 0)
    assert [a["code"] for a in body["areas"]] == ["jinding-e", "jinding-ne"]
    # The two new grids overlap each other (the file's own areas count too).
    assert [(w["code"], w["overlaps"].split(" (")[0]) for w in body["warnings"]] == [("jinding-ne", "金鼎东网格")]
    assert _count(db, Grid) == 1

    res = _send(api, "grids", GRIDS)
    assert res.status_code == 200 and res.json()["created"] == 2
    assert _count(db, Grid) == 3
    again = _send(api, "grids", GRIDS).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    renamed = GRIDS.replace("金鼎东网格".encode(), "金鼎东片网格".encode())
    assert _send(api, "grids", renamed).json()["updated"] == 1


def test_bad_features_are_each_named_and_nothing_is_stored(api: Api, db: Session) -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[119.0, 25.4], [119.1, 25.5], [119.1, 25.4], [119.0, 25.5], [119.0, 25.4]]],
    }
    data = _collection(
        _feature(EAST_HALF, code="ok-1", name="好网格", community="jinding"),
        _feature(NORTH_EAST, name="没有代码", community="jinding"),
        _feature(NORTH_EAST, code="ok-1", name="重复", community="jinding"),
        _feature(bow_tie, code="bad-1", name="交叉", community="jinding"),
        _feature(NORTH_EAST, code="bad-2", name="无社区", community="nowhere"),
    )
    problem = assert_problem(_send(api, "grids", data), 422)
    assert problem["detail"] == "4 of 5 areas are refused; nothing was imported"
    assert [(e["feature"], e["code"]) for e in problem["errors"]] == [(2, ""), (3, "ok-1"), (4, "bad-1"), (5, "bad-2")]
    assert "crosses itself" in problem["errors"][2]["reason"]
    assert _count(db, Grid) == 1


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "not GeoJSON"),
        (b'{"type": "Point", "coordinates": [1, 2]}', "FeatureCollection, a Feature or a Polygon"),
        (
            _collection(_feature({"type": "MultiPolygon", "coordinates": [EAST_HALF["coordinates"]] * 2}, code="m")),
            "several polygons",
        ),
        (b"<kml xmlns='http://www.opengis.net/kml/2.2'><Document/></kml>", "no Placemark"),
        (b"<kml><unclosed>", "not valid KML"),
    ],
)
def test_a_bad_file_gets_a_clear_reason(api: Api, data: bytes, words: str) -> None:
    assert words in assert_problem(_send(api, "communities", data), 422)["detail"]


def _kml(code: str, name: str, ring: list[list[float]]) -> bytes:
    coords = " ".join(f"{lon},{lat},0" for lon, lat in ring)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>
  <name>{name}</name>
  <ExtendedData><Data name="code"><value>{code}</value></Data></ExtendedData>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon>
</Placemark></Document></kml>""".encode()


def test_kml_and_kmz_from_a_gis_are_read(api: Api, db: Session) -> None:
    ring = square(CENTER_LAT, CENTER_LON + 0.03, 0.01)["coordinates"][0]
    res = _send(api, "communities", _kml("dongyang", "东阳社区", ring), name="东阳.kml")
    assert res.status_code == 200, res.text
    assert res.json()["areas"][0]["name"] == "东阳社区"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "doc.kml", _kml("xinan", "新安社区", square(CENTER_LAT + 0.03, CENTER_LON, 0.01)["coordinates"][0])
        )
    res = _send(api, "communities", buffer.getvalue(), name="新安.kmz")
    assert res.status_code == 200, res.text
    assert _count(db, Community) == 3


def test_an_xml_entity_is_not_expanded(api: Api) -> None:
    evil = b"""<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&x;</name></Placemark></kml>"""
    res = _send(api, "communities", evil)
    assert res.status_code == 422 and "root:" not in res.text


def test_a_file_drawn_on_a_chinese_map_is_converted_from_gcj02(api: Api, db: Session) -> None:
    wgs = square(CENTER_LAT, CENTER_LON + 0.03, 0.01)
    shifted = [list(reversed(wgs84_to_gcj02(lat, lon))) for lon, lat in wgs["coordinates"][0]]
    res = _send(
        api,
        "communities",
        _collection(_feature({"type": "Polygon", "coordinates": [shifted]}, code="d", name="东")),
        crs="gcj02",
    )
    assert res.status_code == 200, res.text
    stored = res.json()["areas"][0]["boundary"]["coordinates"][0]
    assert all(
        abs(a - b) < 1e-6 for p, q in zip(stored, wgs["coordinates"][0], strict=True) for a, b in zip(p, q, strict=True)
    )


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, db: Session) -> Callable[..., Result]:
    monkeypatch.setenv("RIDERWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RIDERWATCH_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def test_the_command_line_imports_areas_and_riders(
    run: Callable[..., Result], tmp_path: Path, db: Session, district: District
) -> None:
    grids = tmp_path / "grids.geojson"
    grids.write_bytes(GRIDS)
    dry = run("org", "import", "grids", str(grids), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would be created: 2" in dry.output
    done = run("org", "import", "grids", str(grids))
    assert done.exit_code == 0 and "created: 2" in done.output
    listed = run("org", "list", "grids")
    assert "jinding-ne\t金鼎东北网格" in listed.output and "community=jinding" in listed.output
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(_collection(_feature(NORTH_EAST, name="没有代码", community="jinding")))
    refused = run("org", "import", "grids", str(bad))
    assert refused.exit_code == 2 and "feature 1 (no code)" in refused.output

    riders = tmp_path / "riders.csv"
    riders.write_text("姓名,手机号,站点\n张伟,13800138001,mt-jinding\n李娜,13800138002,美团金鼎站\n", encoding="utf-8")
    codes = tmp_path / "codes.csv"
    imported = run("riders", "import", str(riders), "--codes", str(codes))
    assert imported.exit_code == 0, imported.output
    assert "created: 2" in imported.output
    lines = codes.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "行,姓名,登录名,一次性验证码,有效期至" and lines[1].startswith("2,张伟,13800138001,")
    assert "unchanged: 2" in run("riders", "import", str(riders)).output
    db.rollback()
