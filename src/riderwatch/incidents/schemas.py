"""The shapes of an incident import, from the API's JSON body or an uploaded file, and its answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from riderwatch.incidents import rows

ROW_DESCRIPTION = (
    "One case: `source` (the system, e.g. `110`, `case-system`; may come from the body's `source`), "
    "`external_ref` (its number there; importing the same source and number again updates the stored case "
    "if its category, place, time or note changed, and leaves it alone if not), "
    "`category` (a category code, or its Chinese or English name), `lat`, `lon` (WGS-84, or GCJ-02 with "
    '`"crs": "gcj02"`), `occurred_at` (ISO 8601; without an offset, local time of the station), '
    "`note` (optional, up to 500 characters)."
)


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(
        default=None, max_length=rows.MAX_SOURCE, description="the source of rows that name none"
    )
    incidents: list[dict[str, Any]] = Field(min_length=1, max_length=rows.MAX_ROWS, description=ROW_DESCRIPTION)


class ImportAnswer(BaseModel):
    rows: int = Field(description="rows in the batch")
    created: int = Field(description="incidents stored now")
    updated: int = Field(description="incidents stored before whose category, place, time or note the rows changed")
    unchanged: int = Field(description="incidents stored before exactly as the rows give them")
