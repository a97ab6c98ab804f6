"""The array checks of a batch against the plain, one-point-at-a-time rules they replace.

Ingest decides consent, duty, duplicates and jumps for a whole batch with numpy (see
riderwatch.tracking.ingest). These tests state each rule the simple way, point by point, and check
that the array version decides exactly the same on random batches built to hit the edges: points on
a shift's start and end, overlapping and open shifts, consent given mid-batch, unknown riders,
repeated times, points just inside and just beyond the plausible distance.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from riderwatch.coverage.counts import _unique_rows
from riderwatch.geo.coords import haversine_m
from riderwatch.infra.timecodes import micros, micros_of
from riderwatch.tracking.ingest import (
    ACCEPT,
    NO_CONSENT,
    OFF_DUTY,
    UNKNOWN_RIDER,
    IngestRules,
    _admit,
    _continuity,
    _RiderState,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
RULES = IngestRules(
    resolutions=(9, 10),
    max_age=timedelta(hours=48),
    max_future=timedelta(seconds=120),
    max_speed_mps=30.0,
    jump_slack_m=50.0,
)


def at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def test_micros_are_exact_to_the_microsecond() -> None:
    rng = random.Random(7)
    moments = [BASE + timedelta(microseconds=rng.randrange(-(10**13), 10**13)) for _ in range(5000)] + [
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
        EPOCH,
    ]
    expected = [(m - EPOCH) // timedelta(microseconds=1) for m in moments]
    assert micros_of(moments).tolist() == expected
    assert [micros(m) for m in moments] == expected


def _admit_one_by_one(rider: list[int], us: list[int], states: dict[int, _RiderState]) -> list[int]:
    codes = []
    for r, t in zip(rider, us, strict=True):
        state = states.get(r)
        ts = at(t)
        if state is None:
            codes.append(UNKNOWN_RIDER)
        elif state.consent_since is None or ts < state.consent_since:
            codes.append(NO_CONSENT)
        elif not any(start <= ts and (end is None or ts <= end) for start, end in state.shifts):
            codes.append(OFF_DUTY)
        else:
            codes.append(ACCEPT)
    return codes


@pytest.mark.parametrize("seed", range(40))
def test_consent_and_duty_decided_as_point_by_point(seed: int) -> None:
    rng = random.Random(seed)
    base = micros(BASE)
    minute = 60_000_000
    states: dict[int, _RiderState] = {}
    riders = list(range(1, rng.randint(2, 12)))
    for r in riders:
        if rng.random() < 0.15:
            continue  # unknown to the server
        consent = None if rng.random() < 0.15 else at(base + rng.randint(-30, 40) * minute)
        shifts: list[tuple[datetime, datetime | None]] = []
        start = base + rng.randint(-60, 30) * minute
        for _ in range(rng.randint(0, 4)):
            # Sometimes overlapping the previous shift, sometimes still open.
            start += rng.randint(-20, 40) * minute
            end = None if rng.random() < 0.2 else start + rng.randint(0, 30) * minute
            shifts.append((at(start), None if end is None else at(end)))
        shifts.sort(key=lambda s: s[0])
        states[r] = _RiderState(consent_since=consent, shifts=shifts)
    points = []
    for r in riders:
        for _ in range(rng.randint(1, 30)):
            # Whole minutes meet shift edges and consent times exactly; the odd microsecond misses them.
            points.append((r, base + rng.randint(-70, 120) * minute + rng.choice((0, 0, 1, -1))))
    points.sort()
    rider, us = [p[0] for p in points], [p[1] for p in points]
    got = _admit(np.array(rider, dtype=np.int64), np.array(us, dtype=np.int64), states).tolist()
    assert got == _admit_one_by_one(rider, us, states)


def _continuity_one_by_one(
    rider: list[int], us: list[int], lat: list[float], lon: list[float], previous: dict[int, tuple[int, float, float]]
) -> tuple[list[bool], list[bool]]:
    refs = dict(previous)
    duplicate, jump = [], []
    for r, t, a, b in zip(rider, us, lat, lon, strict=True):
        ref = refs.get(r)
        dup = far = False
        if ref is not None:
            if ref[0] == t:
                dup = True
            else:
                dt = abs(t - ref[0]) / 1_000_000
                far = haversine_m(ref[1], ref[2], a, b) > RULES.max_speed_mps * dt + RULES.jump_slack_m
        if not (dup or far):
            refs[r] = (t, a, b)
        duplicate.append(dup)
        jump.append(far)
    return duplicate, jump


@pytest.mark.parametrize("seed", range(40))
def test_duplicates_and_jumps_decided_as_point_by_point(seed: int) -> None:
    rng = random.Random(1000 + seed)
    base = micros(BASE)
    metres = 1 / 111_320
    rider: list[int] = []
    us: list[int] = []
    lat: list[float] = []
    lon: list[float] = []
    previous: dict[int, tuple[int, float, float]] = {}
    for r in range(1, rng.randint(2, 10)):
        t, a, b = base + rng.randint(-600, 600) * 1_000_000, 25.43, 119.01
        if rng.random() < 0.6:
            previous[r] = (t, a, b)
        for _ in range(rng.randint(1, 40)):
            step = rng.choice((0, 1, 5, 10, 10, 10))
            limit = RULES.max_speed_mps * step + RULES.jump_slack_m
            # Within the limit, at it (to the rounding), or far beyond it.
            distance = rng.choice((0.5 * limit, limit, limit * (1 + 1e-12), 20 * limit, 0.1 * limit))
            t += step * 1_000_000
            if rng.random() < 0.1:
                t -= rng.randint(0, 20) * 1_000_000  # behind the last point, or on it
            a += distance * metres
            rider.append(r)
            us.append(t)
            lat.append(a)
            lon.append(b)
    order = sorted(range(len(us)), key=lambda i: (rider[i], us[i], i))
    rider, us, lat, lon = ([c[i] for i in order] for c in (rider, us, lat, lon))
    duplicate, jump = _continuity(
        np.array(rider, dtype=np.int64),
        np.array(us, dtype=np.int64),
        np.array(lat),
        np.array(lon),
        previous,
        RULES,
    )
    assert (duplicate.tolist(), jump.tolist()) == _continuity_one_by_one(rider, us, lat, lon, previous)


def test_distinct_rows_sorted_with_counts() -> None:
    rng = np.random.default_rng(3)
    columns = [rng.integers(0, 4, 2000), rng.integers(2**60, 2**60 + 5, 2000), rng.integers(0, 3, 2000)]
    rows, counts = _unique_rows(columns)
    expected, expected_counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    assert np.column_stack(rows).tolist() == expected.tolist()
    assert counts.tolist() == expected_counts.tolist()
    assert math.fsum(counts) == 2000
