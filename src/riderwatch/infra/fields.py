"""Field types every domain's schemas share: an aware time that UTC can hold, and an id the databases store."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# Row ids are 32-bit integers on PostgreSQL; a bigger number names no row (and SQLite would overflow at 2^63).
MAX_ID = 2**31 - 1

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    # Pydantic's lax mode reads a number (or a numeric string, as every query value is) as seconds since
    # 1970: "observed_to=0.5" would mean 1970-01-01. A time is written as a time.
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("give an ISO 8601 time with its offset, e.g. 2026-12-01T08:30:00+08:00")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:  # year 1 east of Greenwich, year 9999 west of it
        raise ValueError("the time lies outside the years 1 to 9999 in UTC") from None
    return value


# An ISO 8601 time with its offset (kept as given); refused (422) without an offset, as a number, or
# where UTC cannot hold it.
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]
