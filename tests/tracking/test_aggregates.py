"""The per-cell, per-hour aggregates kept at ingest equal a recount from the raw positions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.tracking.ingest import IngestRules
from tests.api.helpers import Api
from tests.factories import District
from tests.tracking.helpers import (
    CENTER_LAT,
    CENTER_LON,
    backdate,
    ready,
    recount,
    send,
    stored_aggregates,
    stored_positions,
)


def test_aggregates_match_a_recount_after_random_batches(api: Api, db: Session, district: District) -> None:
    rng = random.Random(20261129)
    riders = ["rider", "rider2"]
    for name in riders:
        ready(api, name)
        backdate(db, district.users[name].id, hours=30)
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=20)
    sent: dict[str, list[datetime]] = {name: [] for name in riders}
    for _ in range(12):
        name = rng.choice(riders)
        batch = []
        for _ in range(rng.randint(1, 60)):
            # Few distinct instants and a small area, so duplicates and shared cells are common.
            if sent[name] and rng.random() < 0.2:
                ts = rng.choice(sent[name])
            else:
                ts = start + timedelta(minutes=rng.randint(0, 20 * 60 - 1), seconds=rng.choice([0, 30]))
            sent[name].append(ts)
            lat = CENTER_LAT + rng.uniform(-0.004, 0.004)
            lon = CENTER_LON + rng.uniform(-0.004, 0.004)
            batch.append({"ts": ts.isoformat(), "lat": lat, "lon": lon})
        data = send(api, batch, username=name)
        assert data["accepted"] + data["duplicates"] + data["rejected"] == len(batch)
        assert all(r["reason"] == "implausible_jump" for r in data["rejections"])
    positions = stored_positions(db)
    assert len(positions) > 100
    ids = {district.users[n].id for n in riders}
    assert {p[0] for p in positions} == ids
    resolutions = IngestRules.from_settings(api.client.app.state.settings).resolutions  # type: ignore[attr-defined]
    expected = recount(positions, resolutions)
    assert stored_aggregates(db) == expected
    # Distinct riders really are distinct: some cell-hours hold both riders, none more than two.
    assert max(n for _, n in expected.values()) == 2
    assert max(p for p, _ in expected.values()) > 2
