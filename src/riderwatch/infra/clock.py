"""The one clock: every "now" in RiderWatch is read from `utcnow`, which tests set to a fixed instant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from time import monotonic


def system_time() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = system_time


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return _source()


@contextmanager
def frozen(at: datetime, *, tick: bool = True) -> Iterator[None]:
    """Make `utcnow` start at `at` for the block (and then move on with the real time, unless `tick` is
    False): a test that runs at midnight or on the hour's turn sees the same date and hour as any other."""
    global _source
    if at.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    start, before = monotonic(), _source
    at = at.astimezone(UTC)
    _source = (lambda: at + timedelta(seconds=monotonic() - start)) if tick else (lambda: at)
    try:
        yield
    finally:
        _source = before
