"""Times as whole numbers: microseconds and hours since 1970-01-01T00:00Z, the keys of positions and coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

SECONDS_PER_HOUR = 3600
MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = MICROS_PER_SECOND * SECONDS_PER_HOUR


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since 1970-01-01T00:00Z, exactly."""
    return round(moment.timestamp() - moment.microsecond / MICROS_PER_SECOND) * MICROS_PER_SECOND + moment.microsecond


def micros_of(moments: Sequence[datetime]) -> npt.NDArray[np.int64]:
    """`micros` of many aware datetimes at once.

    Exact: `timestamp()` is a float some microseconds off at worst (in year 9999), so taking the
    microseconds off and rounding gives the whole second, to which they are added back as they are.
    """
    n = len(moments)
    fraction = np.fromiter((m.microsecond for m in moments), np.int64, n)
    stamps = np.fromiter((m.timestamp() for m in moments), np.float64, n)
    seconds = np.rint(stamps - fraction / MICROS_PER_SECOND).astype(np.int64)
    return seconds * MICROS_PER_SECOND + fraction


@dataclass(frozen=True)
class Micros:
    """A column of times given as `micros`: the writer turns them into the column's form in bulk."""

    values: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.values)


def hour_of(ts: datetime) -> int:
    """Whole hours since 1970-01-01T00:00Z: the time key of the coverage aggregates."""
    return micros(ts) // MICROS_PER_HOUR


def sqlite_times(values: Sequence[int] | npt.NDArray[np.int64]) -> list[str]:
    """`micros` as the text `UTCDateTime` stores on SQLite (`db.sqlite_time`), in bulk."""
    return [t[:10] + " " + t[11:] for t in np.array(values, dtype="datetime64[us]").astype(str).tolist()]
