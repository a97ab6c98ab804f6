"""`GET /api/v1/stats`: the programme's figures, over what the caller may see, agreeing with the clue list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from riderwatch.infra.clock import utcnow
from tests.api.helpers import Api, assert_problem


def _stats(api: Api, who: str = "dispatcher", **params: str) -> dict[str, Any]:
    res = api.client.get("/api/v1/stats", params=params, headers=api.auth(who))
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def test_the_figures_count_what_the_list_counts(api: Api) -> None:
    now = utcnow()
    old = api.report(observed_at=(now - timedelta(days=10)).isoformat())
    fresh = [api.report() for _ in range(3)]
    api.ok("dispatcher", fresh[0], "verify")
    api.ok("dispatcher", fresh[0], "dispatch", {"assignee": "police"})
    api.ok("dispatcher", fresh[1], "reject", {"reason": "重复上报"})
    api.ok("police", fresh[0], "accept")
    api.ok("police", fresh[0], "resolve", {"outcome": "已清理"})
    api.ok("dispatcher", fresh[0], "close", {"value_grade": "B"})

    week = {"from": (now - timedelta(days=7)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    figures = _stats(api, **week)
    listed = api.client.get(
        "/api/v1/clues",
        params={"observed_from": week["from"], "observed_to": week["to"]},
        headers=api.auth("dispatcher"),
    ).json()
    clues = figures["clues"]
    assert clues["total"] == listed["total"] == 3
    assert clues["by_status"] == {"closed": 1, "rejected": 1, "submitted": 1}
    assert clues["verified_share"] == 0.5  # of the two looked at, one held
    assert clues["hours_to_dispatch"]["count"] == 1 and clues["hours_to_close"]["count"] == 1
    assert sum(clues["by_category"].values()) == 3
    assert _stats(api)["clues"]["total"] == 4 and old
    riders = figures["riders"]
    assert riders["total"] == 2 and riders["by_status"] == {"active": 2} and riders["reported"] == 1


def test_a_station_manager_sees_their_station_only_and_riders_nothing(api: Api) -> None:
    api.report()
    api.report("dispatcher")  # a call taken by the command centre: not a rider of the station
    figures = _stats(api, "station_manager")
    assert figures["scope"] == "station"
    assert figures["clues"]["total"] == 1 and figures["riders"]["total"] == 2
    assert _stats(api, "dispatcher")["clues"]["total"] == 2
    for who in ("rider", "police", "platform"):
        assert_problem(api.client.get("/api/v1/stats", headers=api.auth(who)), 403)


def test_a_bad_period_is_refused(api: Api) -> None:
    now = utcnow()
    res = api.client.get(
        "/api/v1/stats",
        params={"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()},
        headers=api.auth("dispatcher"),
    )
    assert "'to' must come after 'from'" in assert_problem(res, 422)["detail"]
    assert_problem(api.client.get("/api/v1/stats?from=yesterday", headers=api.auth("dispatcher")), 422)
