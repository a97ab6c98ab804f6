"""The miss throttle: a threshold, then waits that double, a sliding window, and a bounded memory."""

from __future__ import annotations

from riderwatch.infra.throttle import MissThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waits_start_at_the_threshold_and_double() -> None:
    clock = Clock()
    throttle = MissThrottle(threshold=3, window_seconds=600, longest_wait=60, clock=clock)
    for _ in range(3):
        assert throttle.wait("a") == 0
        throttle.miss("a")
    assert throttle.wait("a") == 1
    assert throttle.wait("b") == 0
    waits = []
    for _ in range(8):
        clock.now += throttle.wait("a")
        assert throttle.wait("a") == 0
        throttle.miss("a")
        waits.append(throttle.wait("a"))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_misses_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    throttle = MissThrottle(threshold=2, window_seconds=600, longest_wait=600, clock=clock)
    throttle.miss("a")
    throttle.miss("a")
    assert throttle.wait("a") == 1
    clock.now += 600
    assert throttle.wait("a") == 0
    throttle.miss("a")
    assert throttle.wait("a") == 0


def test_only_so_many_addresses_are_remembered() -> None:
    throttle = MissThrottle(threshold=1, window_seconds=600, longest_wait=600, max_keys=100, clock=Clock())
    for n in range(1000):
        throttle.miss(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle._misses) == 100
    assert throttle.wait("10.0.3.231") == 1  # the latest are kept
    assert throttle.wait("10.0.0.0") == 0
