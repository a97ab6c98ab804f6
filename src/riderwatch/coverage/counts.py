"""The coverage counts: passes and distinct riders per H3 cell and hour, added at ingest and folded in.

Coverage owns these counts. Ingest hands each batch's newly stored points to `add_passes`; on
PostgreSQL that *appends* the counts to `coverage_cell_deltas` (one row of parallel arrays per batch,
no key, no index), and `fold_counts` moves them into `coverage_cells`: adding them in place cost a
look-up and a rewrite per cell-hour, and concurrent batches queued on the locks of the same cells in
the same hour. SQLite, one writer at a time, adds to `coverage_cells` directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, Integer, Select, SmallInteger, column, func, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FromClause

from riderwatch.infra.bulk import BulkWriter, pg_array, table_of
from riderwatch.infra.sqlparams import is_postgres, one_of
from riderwatch.models import CoverageCell, CoverageRiderCell


def _unique_rows(
    columns: Sequence[npt.NDArray[np.int64]],
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """The distinct rows of equally long integer columns, sorted by the first column, then the next…,
    and how often each occurs (np.unique(axis=0) does the same through a slow generic sort)."""
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for c in ordered:
        new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    return [c[starts] for c in ordered], np.diff(np.append(starts, len(order)))


def add_passes(
    writer: BulkWriter,
    rider: npt.NDArray[np.int64],
    hour: npt.NDArray[np.int64],
    cells: dict[int, list[int]],
) -> None:
    """Add newly stored positions to the per-cell, per-hour counts of passes and distinct riders."""
    # One row per point and resolution: (resolution, cell, hour, rider), as int64 (H3 indexes fit).
    size = len(hour)
    keys = [
        np.repeat(np.array(list(cells), dtype=np.int64), size),
        np.array(list(chain.from_iterable(cells.values())), dtype=np.int64),
        np.tile(hour, len(cells)),
        np.tile(rider, len(cells)),
    ]
    riders, _ = _unique_rows(keys)  # sorted: concurrent transactions lock rows in one order
    passes, counts = _unique_rows(keys[:3])
    # The per-rider table decides who is new in a cell-hour: only rows it actually inserts (not
    # those another batch stored first) raise the distinct count, so concurrent batches agree.
    if writer.postgres:
        # One statement: the rows the per-rider insert returns are counted in the server, not sent back.
        writer.conn.exec_driver_sql(
            PG_AGGREGATE,
            (
                *(pg_array(c, e) for c, e in zip(riders, ("int2", "int8", "int4", "int4"), strict=True)),
                *(pg_array(c, e) for c, e in zip((*passes, counts), ("int2", "int8", "int4", "int4"), strict=True)),
            ),
        )
        return
    first_passes = Counter(
        tuple(row)
        for row in writer.insert(
            table_of(CoverageRiderCell),
            dict(zip(("resolution", "cell", "hour", "rider_id"), riders, strict=True)),
            conflict="ON CONFLICT DO NOTHING",
            returning=("resolution", "cell", "hour"),
        ).rows
    )
    resolution, cell, hour_ = passes
    cell_hours = zip(resolution.tolist(), cell.tolist(), hour_.tolist(), strict=True)
    writer.insert(
        table_of(CoverageCell),
        {
            "resolution": resolution,
            "cell": cell,
            "hour": hour_,
            "passes": counts,
            "riders": [first_passes[key] for key in cell_hours],
        },
        conflict="ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + "
        "excluded.passes, riders = coverage_cells.riders + excluded.riders",
    )


# PostgreSQL: the per-rider rows, then the counts, the distinct riders being those rows it inserted.
# Rows go in the arrays' order (sorted keys), so concurrent batches lock per-rider rows in one order.
# The counts are appended to `coverage_cell_deltas` as one row of parallel arrays (see the model),
# folded in later by `fold_counts`. The aggregates of one SELECT see its rows in one order, so the
# arrays line up.
PG_AGGREGATE = """
WITH firsts AS (
    INSERT INTO coverage_rider_cells (resolution, cell, hour, rider_id)
    SELECT * FROM unnest(%b::int2[], %b::int8[], %b::int4[], %b::int4[])
    ON CONFLICT DO NOTHING
    RETURNING resolution, cell, hour
), counted AS (
    SELECT resolution, cell, hour, count(*)::int AS riders FROM firsts GROUP BY resolution, cell, hour
)
INSERT INTO coverage_cell_deltas (resolution, cell, hour, passes, riders)
SELECT array_agg(p.resolution), array_agg(p.cell), array_agg(p.hour), array_agg(p.passes),
    array_agg(coalesce(c.riders, 0))
FROM unnest(%b::int2[], %b::int8[], %b::int4[], %b::int4[]) AS p(resolution, cell, hour, passes)
LEFT JOIN counted AS c ON (c.resolution, c.cell, c.hour) = (p.resolution, p.cell, p.hour)
HAVING count(*) > 0
"""

# The appended counts move into `coverage_cells`, summed per cell-hour, in key order (so that two
# folds lock rows in one order). Counts a batch still has uncommitted stay for the next fold; a
# concurrent fold waits for the rows this one took and then skips them.
PG_FOLD = """
WITH moved AS (
    DELETE FROM coverage_cell_deltas RETURNING resolution, cell, hour, passes, riders
), counts AS (
    SELECT u.* FROM moved, unnest(moved.resolution, moved.cell, moved.hour, moved.passes, moved.riders)
        AS u(resolution, cell, hour, passes, riders)
)
INSERT INTO coverage_cells (resolution, cell, hour, passes, riders)
SELECT resolution, cell, hour, sum(passes), sum(riders) FROM counts
GROUP BY resolution, cell, hour ORDER BY resolution, cell, hour
ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + excluded.passes,
    riders = coverage_cells.riders + excluded.riders
"""


# Folds take turns (a transaction-level advisory lock; the key is arbitrary, RiderWatch's own).
FOLD_LOCK = 0x52570001

# The counts appended and not yet folded, one row per batch and cell-hour.
PG_PENDING = """
SELECT u.resolution, u.cell, u.hour, u.passes, u.riders
FROM coverage_cell_deltas AS d, unnest(d.resolution, d.cell, d.hour, d.passes, d.riders)
    AS u(resolution, cell, hour, passes, riders)
"""


def fold_counts(session: Session) -> int:
    """Fold the counts ingest appended into `coverage_cells`, in the caller's transaction; returns the
    cell-hours updated. Nothing to do on SQLite.

    Writers call it: the periodic job `fold_coverage_counts` (so the appended rows stay few), the
    roll-up before it seals days, the demo. Readers do not: they read the appended counts beside
    `coverage_cells` (`count_sources`), so a request that only reads writes nothing. Folds take turns
    under an advisory lock held to the caller's commit, so keep the caller's transaction short.
    """
    if not is_postgres(session):
        return 0
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FOLD_LOCK})
    return int(session.connection().exec_driver_sql(PG_FOLD).rowcount)


def count_sources(session: Session) -> list[FromClause]:
    """Where the counts per cell and hour are, as tables with the columns resolution, cell, hour, passes,
    riders: `coverage_cells`, and on PostgreSQL the appended counts no fold has moved yet.

    Passes and riders add up across both (an appended row holds what its batch added), so a reader that
    sums over both in one statement sees every batch committed before it, and writes nothing.
    """
    sources: list[FromClause] = [table_of(CoverageCell)]
    if is_postgres(session):
        pending = text(PG_PENDING).columns(
            column("resolution", SmallInteger),
            column("cell", BigInteger),
            column("hour", Integer),
            column("passes", Integer),
            column("riders", Integer),
        )
        sources.append(pending.subquery("pending"))
    return sources


def hourly_counts(session: Session, *, resolution: int, cells: Sequence[int], lo: int, hi: int) -> Select[Any]:
    """(cell, hour, passes, riders) of the cells in the hours [lo, hi), one row per cell-hour."""
    parts = [
        select(t.c.cell, t.c.hour, t.c.passes, t.c.riders).where(
            t.c.resolution == resolution, one_of(session, t.c.cell, cells), t.c.hour >= lo, t.c.hour < hi
        )
        for t in count_sources(session)
    ]
    if len(parts) == 1:
        return parts[0]
    rows = union_all(*parts).subquery("counts")
    return select(rows.c.cell, rows.c.hour, func.sum(rows.c.passes), func.sum(rows.c.riders)).group_by(
        rows.c.cell, rows.c.hour
    )
