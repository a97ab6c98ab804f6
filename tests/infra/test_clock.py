"""The one clock: frozen at the tests' instant in every test (and in the app they drive), ticking on or
standing still as asked, restored afterwards; a test marked `real_clock` reads the real time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from riderwatch.infra import clock
from tests.api.helpers import Api
from tests.conftest import DEFAULT_NOW, TEST_NOW, frozen_instant

ELSEWHEN = datetime(2031, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
A_MINUTE = timedelta(minutes=1)


def test_every_test_starts_at_the_tests_instant() -> None:
    now = clock.utcnow()
    assert TEST_NOW <= now < TEST_NOW + A_MINUTE
    assert now.utcoffset() == timedelta(0)


def test_the_app_reads_the_same_clock(api: Api) -> None:
    res = api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    assert res.status_code == 200, res.text
    assert TEST_NOW <= datetime.fromisoformat(res.json()["since"]) <= clock.utcnow()


@pytest.mark.real_clock
def test_a_test_marked_real_clock_reads_the_real_time() -> None:
    assert abs(clock.utcnow() - clock.system_time()) < timedelta(seconds=1)


def test_frozen_ticks_on_from_the_instant() -> None:
    with clock.frozen(ELSEWHEN):
        first = clock.utcnow()
        time.sleep(0.05)
        second = clock.utcnow()
    assert ELSEWHEN <= first < second < ELSEWHEN + A_MINUTE
    assert second - first >= timedelta(seconds=0.05)


def test_frozen_without_tick_stands_still() -> None:
    with clock.frozen(ELSEWHEN, tick=False):
        first = clock.utcnow()
        time.sleep(0.02)
        assert clock.utcnow() == first == ELSEWHEN


def test_frozen_gives_utc_for_an_instant_in_another_zone() -> None:
    with clock.frozen(datetime(2026, 12, 1, 1, 40, tzinfo=ZoneInfo("Asia/Shanghai")), tick=False):
        now = clock.utcnow()
    assert now == datetime(2026, 11, 30, 17, 40, tzinfo=UTC) and now.tzinfo is UTC


def test_frozen_restores_the_clock_it_replaced() -> None:
    with clock.frozen(ELSEWHEN, tick=False):
        with clock.frozen(ELSEWHEN + timedelta(days=1), tick=False):
            assert clock.utcnow() == ELSEWHEN + timedelta(days=1)
        assert clock.utcnow() == ELSEWHEN  # the outer block's clock again, not the real one
        with pytest.raises(RuntimeError), clock.frozen(ELSEWHEN - timedelta(days=1)):
            raise RuntimeError("the block fails")
        assert clock.utcnow() == ELSEWHEN
    # The test's own clock, still ticking on from the tests' instant.
    assert TEST_NOW <= clock.utcnow() < TEST_NOW + A_MINUTE


def test_frozen_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"), clock.frozen(datetime(2026, 11, 30, 17, 40)):
        pass
    assert TEST_NOW <= clock.utcnow() < TEST_NOW + A_MINUTE  # unchanged


def test_another_instant_for_the_tests_must_keep_their_rules() -> None:
    assert frozen_instant(None) == frozen_instant("") == DEFAULT_NOW
    assert frozen_instant(DEFAULT_NOW.isoformat()) == DEFAULT_NOW
    assert frozen_instant("2026-12-01T08:40:00+08:00") == datetime(2026, 12, 1, 0, 40, tzinfo=UTC)
    for bad in (
        "2026-12-01T00:40:00",  # no offset
        "2026-12-01T00:55:00Z",  # five minutes from an hour's turn
        "2026-12-01T15:20:00Z",  # 23:20 in Shanghai: no later hour today
        "2026-12-01T16:30:00Z",  # 00:30 in Shanghai: no hour of today is over yet
        "2026-11-01T12:30:00Z",  # before the incidents tests hold
        (clock.system_time() + timedelta(days=1)).replace(hour=4, minute=30).isoformat(),  # the future
    ):
        with pytest.raises(ValueError, match="RIDERWATCH_TEST_NOW"):
            frozen_instant(bad)
