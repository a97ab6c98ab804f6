"""The district pages: the administrator sees the areas on a map, adds by form or drawing, imports a file
after checking it on the map, edits and retires — and every refusal is a message on the page."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Grid, Station
from tests.factories import CENTER_LAT, CENTER_LON, square
from tests.pages import Browser

NE = square(CENTER_LAT + 0.005, CENTER_LON + 0.005, 0.004)


def _admin(browser: Callable[[str], Browser]) -> Browser:
    admin = browser("admin")
    admin.client.headers["Accept-Language"] = "zh-CN"
    return admin


def test_the_district_page_shows_every_kind_and_the_areas_on_the_map(browser: Callable[[str], Browser]) -> None:
    page = _admin(browser).client.get("/admin/district")
    assert page.status_code == 200
    for kind in ("jurisdictions", "communities", "grids", "zones", "stations", "platforms", "patrol-units"):
        assert f'data-testid="kind-{kind}"' in page.text
    assert "辖区设置" in page.text and "金鼎西网格" in page.text
    assert 'data-testid="district-map"' in page.text and "jinding-w" in page.text


def test_a_drawn_grid_is_added_and_a_bad_drawing_is_refused_with_the_reason(
    browser: Callable[[str], Browser], db: Session
) -> None:
    admin = _admin(browser)
    form = {"code": "jinding-ne", "name": "金鼎东北网格", "community": "jinding", "boundary": json.dumps(NE)}
    res = admin.post("/admin/district/grids", form, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/admin/district/grids/jinding-ne?done=created"
    assert db.scalar(select(Grid.name).where(Grid.code == "jinding-ne")) == "金鼎东北网格"
    db.rollback()
    bow = {
        "type": "Polygon",
        "coordinates": [[[119.0, 25.4], [119.1, 25.5], [119.1, 25.4], [119.0, 25.5], [119.0, 25.4]]],
    }
    res = admin.post("/admin/district/grids", {**form, "code": "x", "boundary": json.dumps(bow)})
    assert res.status_code == 422 and "边界在" in res.text and "自相交" in res.text
    assert 'value="x"' in res.text  # the form keeps what was typed


def test_a_station_is_added_edited_and_retired(browser: Callable[[str], Browser], db: Session) -> None:
    admin = _admin(browser)
    res = admin.post("/admin/district/stations", {"code": "mt-dongyang", "name": "美团东阳站", "platform": "meituan"})
    assert res.status_code == 200 and "已添加" in res.text
    res = admin.post("/admin/district/stations/mt-dongyang", {"name": "美团东阳站（新）", "platform": "meituan"})
    assert res.status_code == 200 and "已保存" in res.text
    res = admin.post("/admin/district/stations/mt-dongyang/retire")
    assert res.status_code == 200 and 'data-testid="org-retired"' in res.text
    station = db.scalar(select(Station).where(Station.code == "mt-dongyang"))
    assert station is not None and station.name == "美团东阳站（新）" and station.retired_at is not None
    db.rollback()
    # A community with grids in use cannot be retired: the page says why.
    res = admin.post("/admin/district/communities/jinding/retire")
    assert res.status_code == 409 and "jinding-w" in res.text
    assert admin.client.get("/admin/district/zones/nowhere").status_code == 404


def test_a_file_is_checked_on_the_map_then_imported(browser: Callable[[str], Browser], db: Session) -> None:
    admin = _admin(browser)
    feature = {
        "type": "Feature",
        "geometry": NE,
        "properties": {"编码": "jinding-ne", "名称": "东北", "社区": "jinding"},
    }
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False).encode()

    def send(action: str) -> object:
        return admin.client.post(
            "/admin/district/import",
            data={"csrf_token": admin.csrf, "kind": "grids", "action": action, "crs": "wgs84"},
            files={"file": ("网格.geojson", data, "application/geo+json")},
        )

    checked = send("check")
    assert checked.status_code == 200 and "文件无误" in checked.text  # type: ignore[attr-defined]
    assert db.scalar(select(Grid.id).where(Grid.code == "jinding-ne")) is None
    db.rollback()
    done = send("import")
    assert done.status_code == 200 and "已导入" in done.text  # type: ignore[attr-defined]
    assert db.scalar(select(Grid.id).where(Grid.code == "jinding-ne")) is not None
    db.rollback()
    bad = admin.client.post(
        "/admin/district/import",
        data={"csrf_token": admin.csrf, "kind": "grids", "action": "import"},
        files={
            "file": (
                "x.geojson",
                json.dumps({"type": "Feature", "geometry": None, "properties": {"code": "a"}}).encode(),
                "application/geo+json",
            )
        },
    )
    assert bad.status_code == 422 and "第 1 个要素没有几何图形" in bad.text
