"""Leaflet outreach: campaigns, stations' stock, riders' distributions within limits, points every ten
leaflets, totals per campaign, station, community and week, and the map's cells."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from riderwatch.evaluation.indicators import measure
from riderwatch.infra.clock import utcnow
from riderwatch.outreach import service
from riderwatch.points import service as points
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON, District

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _campaign(api: Api, **body: Any) -> None:
    today = utcnow().astimezone(SHANGHAI).date()
    values = {"code": "fanzha", "name": "反电诈宣传", "starts_on": (today - timedelta(days=30)).isoformat()} | body
    res = api.client.post("/api/v1/leaflets/campaigns", json=values, headers=api.auth("admin"))
    assert res.status_code == 200, res.text


def _issue(api: Api, count: int, *, who: str = "station_manager", kind: str = "issue") -> Any:
    body = {"campaign": "fanzha", "station": "mt-jinding", "kind": kind, "count": count}
    return api.client.post("/api/v1/leaflets/stock", json=body, headers=api.auth(who))


def _hand(api: Api, count: int, key: str, **extra: Any) -> Any:
    body = {"campaign": "fanzha", "count": count, "lat": CENTER_LAT, "lon": CENTER_LON - 0.004} | extra
    return api.client.post("/api/v1/me/leaflets", json=body, headers=api.auth("rider") | {"Idempotency-Key": key})


def test_a_rider_logs_leaflets_from_the_stations_stock_and_earns_points(
    api: Api, district: District, db: Session
) -> None:
    _campaign(api)
    assert _issue(api, 100).json()["left"] == 100
    first = _hand(api, 15, "round-0001")
    assert first.status_code == 201, first.text
    again = _hand(api, 15, "round-0001")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert _hand(api, 5, "round-0002").status_code == 201
    mine = api.client.get("/api/v1/me/leaflets", headers=api.auth("rider")).json()
    assert mine["total"] == 20 and [d["count"] for d in mine["items"]] == [5, 15]
    # 15 leaflets: one ten reached; 20: the second.
    assert points.balance(db, district.users["rider"].id) == 2 * points.DEFAULT_POINTS["leaflets_10"]
    db.rollback()
    assert _issue(api, 81, kind="return").status_code == 409
    assert _issue(api, 80, kind="return").json()["left"] == 0
    empty = _hand(api, 1, "round-0003")
    assert empty.status_code == 409 and "0" in empty.json()["detail"]


@pytest.mark.parametrize(
    ("count", "extra", "status", "says"),
    [
        (201, {}, 422, ""),
        (10, {"handed_at": "2999-01-01T00:00:00Z"}, 422, "future"),
        (10, {"lat": 95}, 422, ""),
    ],
)
def test_impossible_entries_are_refused_and_nothing_is_stored(
    api: Api, district: District, count: int, extra: dict[str, Any], status: int, says: str
) -> None:
    _campaign(api)
    _issue(api, 1000)
    refused = _hand(api, count, "bad-entry-1", **extra)
    assert refused.status_code == status, refused.text
    assert says in refused.json()["detail"]
    assert api.client.get("/api/v1/me/leaflets", headers=api.auth("rider")).json()["total"] == 0


def test_limits_per_day_age_and_the_campaigns_dates(api: Api, district: District) -> None:
    _campaign(api)
    _issue(api, 1000)
    for n in range(3):
        assert _hand(api, 100, f"day-round-{n}").status_code == 201
    too_many = _hand(api, 1, "day-round-9")
    assert too_many.status_code == 422 and "300" in too_many.json()["detail"]
    old = (utcnow() - timedelta(days=8)).isoformat()
    assert _hand(api, 1, "old-round-1", handed_at=old).status_code == 422
    tomorrow = (utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)).isoformat()
    _campaign(api, code="later", name="下月宣传", starts_on=tomorrow)
    later = api.client.post(
        "/api/v1/me/leaflets",
        json={"campaign": "later", "count": 1, "lat": CENTER_LAT, "lon": CENTER_LON},
        headers=api.auth("rider") | {"Idempotency-Key": "later-round"},
    )
    assert later.status_code == 409 and "下月宣传" in later.json()["detail"]
    assert (
        api.client.post(
            "/api/v1/me/leaflets",
            json={"campaign": "fanzha", "count": 1, "lat": CENTER_LAT, "lon": CENTER_LON},
            headers=api.auth("rider"),
        ).status_code
        == 422
    )  # no Idempotency-Key


def test_a_station_manager_keeps_only_their_own_stations_stock(api: Api, district: District, db: Session) -> None:
    from riderwatch.accounts.service import create_user
    from riderwatch.models import Station

    _campaign(api)
    db.add(Station(code="other", name="别的站", platform_id=district.platform.id, lat=25.4, lon=119.0))
    db.commit()
    create_user(db, username="mgr2", role="station_manager", password="correct-horse-battery", station_code="other")
    db.commit()
    assert _issue(api, 10, who="mgr2").status_code == 403
    assert _issue(api, 10, who="admin").status_code == 201


def test_totals_the_counter_and_the_map(api: Api, district: District, db: Session) -> None:
    _campaign(api)
    _issue(api, 100)
    _hand(api, 12, "tot-round-1")
    _hand(api, 8, "tot-round-2", lat=CENTER_LAT + 0.05)
    found = api.client.get("/api/v1/leaflets/totals", headers=api.auth("dispatcher")).json()
    assert (found["programme_total"], found["total"]) == (20, 20)
    assert found["by_campaign"] == {"反电诈宣传": 20}
    assert found["by_station"] == {"美团金鼎站": 20}
    assert found["by_community"] == {"金鼎社区": 12, "": 8}
    assert sum(c["count"] for c in found["cells"]) == 20 and len(found["cells"]) == 2
    assert found["stock"] == [{"campaign": "反电诈宣传", "station": "美团金鼎站", "left": 80}]
    assert [r["count"] for r in found["top_riders"]] == [20]
    assert api.client.get("/api/v1/leaflets/totals", headers=api.auth("rider")).status_code == 403
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    values = measure(db, start=start, end=end)
    assert values[district.users["rider"].id]["leaflets"] == 20.0
    db.rollback()


def test_the_same_entry_sent_twice_at_once_is_stored_once(api: Api, district: District, session_factory: Any) -> None:
    """A phone that retries while its first send is still on its way: two transactions with one key."""
    import threading

    from riderwatch.models import LeafletDistribution, User

    _campaign(api)
    _issue(api, 100)
    rider_id = district.users["rider"].id
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def send() -> None:
        session = session_factory()
        try:
            start.wait(timeout=10)
            rider = session.get(User, rider_id)
            row, new = service.hand_out(
                session,
                rider=rider,
                campaign_code="fanzha",
                count=7,
                lat=CENTER_LAT,
                lon=CENTER_LON,
                handed_at=None,
                idempotency_key="twice-at-once",
                timezone="Asia/Shanghai",
            )
            session.commit()
            outcomes.append((row.id, new))
        except Exception as exc:
            session.rollback()
            outcomes.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 2 and all(isinstance(o, tuple) for o in outcomes), outcomes
    assert {o[0] for o in outcomes} == {outcomes[0][0]} and sorted(o[1] for o in outcomes) == [False, True]
    with session_factory() as check:
        assert check.query(LeafletDistribution).count() == 1
