"""Many rows written at once straight to the driver: binary arrays and COPY on PostgreSQL, multi-row VALUES on SQLite.

The writes bypass SQLAlchemy's per-row work. On PostgreSQL each column goes as one binary array built by
numpy (`pg_array`) and the statement unnests them, so its text never changes with the number of rows
and the server parses no numbers; `BulkWriter.copy` lays the rows out for a binary COPY instead. On
SQLite rows go as chunks of multi-row VALUES. Statements run on the session's connection, so they share
the caller's transaction.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from itertools import chain, repeat
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import BigInteger, Float, Integer, SmallInteger, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from riderwatch.db import Base, sqlite_time, upsert
from riderwatch.infra.sqlparams import is_postgres, values_table
from riderwatch.infra.timecodes import MICROS_PER_SECOND, Micros, micros, sqlite_times


def table_of(model: type[Any]) -> Table:
    """A model's Table: bulk rows are written with Core statements, not the ORM unit of work."""
    return cast(Table, model.__table__)


# SQLite's limit on parameters in one statement (since 3.32).
SQLITE_MAX_VARIABLES = 32_766
SQLITE_ROWS_PER_STATEMENT = 500
# PostgreSQL: microseconds since the epoch to timestamptz, exactly (an interval counts microseconds).
PG_FROM_MICROS = "(timestamptz 'epoch' + {} * interval '1 microsecond')"
PG_TO_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"


class PgArray:
    """A one-dimensional PostgreSQL array in the server's binary form, for a `%b::type[]` parameter."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PgArrayDumper(Dumper):
    """Sends a `PgArray` as it is. Its type comes from the statement's cast (the parameter's oid is
    left unknown), so one dumper serves every element type."""

    format = Format.BINARY

    def dump(self, obj: PgArray) -> bytes:
        return obj.data


psycopg.adapters.register_dumper(PgArray, PgArrayDumper)

# Element types of the arrays ingest sends: numpy's big-endian form and the PostgreSQL type's oid.
PG_ELEMENTS: dict[str, tuple[str, int]] = {
    "int2": (">i2", 21),
    "int4": (">i4", 23),
    "int8": (">i8", 20),
    "float8": (">f8", 701),
}


def pg_array(values: Sequence[int | float | None] | npt.NDArray[Any], element: str) -> PgArray:
    """Numbers (None for NULL) as a binary PostgreSQL array, built by numpy at a few nanoseconds each.

    Text arrays cost a str() per element here and a parse per element in the server; at thousands of
    rows and eight columns per batch that was a large share of both. The layout is array_send's:
    dimensions, a NULL flag, the element oid, length and lower bound, then each element as its byte
    length (-1 for NULL) and its big-endian value.
    """
    layout, oid = PG_ELEMENTS[element]
    n = len(values)
    if not n:
        return PgArray(struct.pack(">iii", 0, 0, oid))
    nulls: list[int] = []
    if isinstance(values, np.ndarray):
        numbers = values  # numpy arrays hold no NULL
    else:
        nulls = [i for i, v in enumerate(values) if v is None] if None in values else []
        numbers = np.array([0 if v is None else v for v in values] if nulls else values)
    kind = np.dtype(layout)
    if numbers.dtype.kind not in "iuf" or (kind.kind == "i" and numbers.dtype.kind == "f"):
        raise TypeError(f"no {element} array of {numbers.dtype} values")
    if kind.kind == "i" and (numbers.min() < np.iinfo(kind).min or numbers.max() > np.iinfo(kind).max):
        raise OverflowError(f"a value does not fit {element}")
    size = kind.itemsize
    items = np.empty(n, dtype=[("length", ">i4"), ("value", layout)])
    items["length"] = size
    items["value"] = numbers
    header = struct.pack(">iiiii", 1, 1 if nulls else 0, oid, n, 1)
    if not nulls:
        return PgArray(header + items.tobytes())
    items["length"][nulls] = -1
    kept = np.ones((n, 4 + size), dtype=bool)
    kept[nulls, 4:] = False  # a NULL is its length alone
    return PgArray(header + items.view(np.uint8).reshape(n, 4 + size)[kept].tobytes())


# PostgreSQL's binary COPY: its times count microseconds from 2000-01-01T00:00Z.
PG_EPOCH_MICROS = 946_684_800 * MICROS_PER_SECOND
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no extension
COPY_TRAILER = struct.pack(">h", -1)


def pg_copy_rows(columns: Sequence[tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None, str]]) -> bytes:
    """Rows in the form of PostgreSQL's binary COPY, built by numpy: each column as its values, a
    mask of NULLs (or None) and its element type (`PG_ELEMENTS`).

    A row is its field count, then each field's byte length (-1 for NULL) and big-endian value. Rows
    with NULLs in the same columns share one layout and are laid out together: COPY takes rows in
    any order.
    """
    n = len(columns[0][0])
    if len(columns) > 62:
        raise ValueError("at most 62 columns")  # one bit each in an int64 NULL pattern
    pattern = np.zeros(n, dtype=np.int64)
    for bit, (_, nulls, _) in enumerate(columns):
        if nulls is not None:
            pattern |= nulls.astype(np.int64) << bit
    shapes = np.unique(pattern).tolist()
    parts = [COPY_HEADER]
    for shape in shapes:
        rows = None if len(shapes) == 1 else np.flatnonzero(pattern == shape)
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for i, (_, _, element) in enumerate(columns):
            fields.append((f"l{i}", ">i4"))
            if not (shape >> i) & 1:
                fields.append((f"v{i}", PG_ELEMENTS[element][0]))
        out = np.empty(n if rows is None else len(rows), dtype=fields)
        out["count"] = len(columns)
        for i, (values, _, element) in enumerate(columns):
            if (shape >> i) & 1:
                out[f"l{i}"] = -1
            else:
                out[f"l{i}"] = np.dtype(PG_ELEMENTS[element][0]).itemsize
                out[f"v{i}"] = values if rows is None else values[rows]
        parts.append(out.tobytes())
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def pg_element(column: Any) -> str:
    """The `PG_ELEMENTS` key for a numeric column."""
    kind = column.type
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, SmallInteger):
        return "int2"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, Float):
        return "float8"
    raise TypeError(f"no binary array for column {column.name} ({kind})")


class Inserted(NamedTuple):
    stored: int  # rows inserted (not those the conflict clause skipped)
    rows: list[tuple[Any, ...]]  # what RETURNING gave back, if asked


class BulkWriter:
    """INSERT … ON CONFLICT of many rows at once on the session's connection, straight to the driver.

    Columns come as lists of values already in the database's form, except times, which come as
    `Micros` (PostgreSQL converts them in the statement, SQLite gets the text SQLAlchemy writes for
    `UTCDateTime`, so both paths read and compare alike). `constants` are the same for every row.
    """

    def __init__(self, session: Session) -> None:
        self.conn: Connection = session.connection()
        name = self.conn.dialect.name
        if name not in ("postgresql", "sqlite"):
            raise RuntimeError(f"positions need SQLite or PostgreSQL, not {name}")
        self.postgres = name == "postgresql"

    def time(self, ts: datetime) -> Any:
        """An aware UTC datetime as the column takes it."""
        return ts if self.postgres else sqlite_time(ts)

    def returned_times(self, values: Micros) -> list[Any]:
        """Times as a RETURNING clause of `insert` gives them back: `micros` on PostgreSQL, text on SQLite."""
        return values.values.tolist() if self.postgres else sqlite_times(values.values)

    def insert(
        self,
        table: Table,
        columns: dict[str, Sequence[Any] | npt.NDArray[Any] | Micros],
        *,
        conflict: str,
        constants: dict[str, Any] | None = None,
        returning: Sequence[str] = (),
    ) -> Inserted:
        """Insert the rows (one list per column, in row order): how many were, and the RETURNING rows, if asked.

        A time column named in `returning` comes back as `returned_times` gives it.
        """
        constants = constants or {}
        size = len(next(iter(columns.values())))
        if not size:
            return Inserted(0, [])
        names = [*columns, *constants]
        into = f"INSERT INTO {table.name} ({', '.join(names)})"
        times = {name for name, values in columns.items() if isinstance(values, Micros)}
        if self.postgres:
            back = ", ".join(PG_TO_MICROS.format(c) if c in times else c for c in returning)
            # unnest yields the arrays' elements in order, so rows are written (and locked) in the
            # caller's order: sorted keys keep concurrent batches from deadlocking.
            aliases = [f"c{i}" for i in range(len(columns))]
            elements = ["int8" if name in times else pg_element(table.c[name]) for name in columns]
            arrays = ", ".join(f"%b::{element}[]" for element in elements)
            values = [PG_FROM_MICROS.format(a) if c in times else a for a, c in zip(aliases, columns, strict=True)]
            values += [f"%s::{self._type(table, name)}" for name in constants]
            sql = f"{into} SELECT {', '.join(values)} FROM unnest({arrays}) AS u({', '.join(aliases)}) {conflict}" + (
                f" RETURNING {back}" if returning else ""
            )
            params = (
                *constants.values(),
                *(
                    pg_array(v.values if isinstance(v, Micros) else v, e)
                    for v, e in zip(columns.values(), elements, strict=True)
                ),
            )
            result = self.conn.exec_driver_sql(sql, params)
            return Inserted(result.rowcount, [tuple(r) for r in result.all()] if returning else [])
        lists = [
            sqlite_times(v.values) if isinstance(v, Micros) else v.tolist() if isinstance(v, np.ndarray) else v
            for v in columns.values()
        ]
        rows = list(zip(*lists, *(repeat(v, size) for v in constants.values()), strict=True))
        back = f" RETURNING {', '.join(returning)}" if returning else ""
        out: list[tuple[Any, ...]] = []
        count = 0
        # Moderate chunks: SQLite compiles each statement, and a very long VALUES list costs more to
        # compile than it saves; a full chunk's text repeats, so the driver's statement cache keeps it.
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(names)))
        one = "(" + ", ".join("?" * len(names)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            sql = f"{into} VALUES {', '.join([one] * len(chunk))} {conflict}{back}"
            result = self.conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
            if returning:
                back_rows = [tuple(r) for r in result.all()]
                out.extend(back_rows)
                count += len(back_rows)
            else:
                count += result.rowcount
        return Inserted(count, out)

    def copy(
        self,
        table: Table,
        columns: dict[str, Sequence[Any] | npt.NDArray[Any] | Micros],
        *,
        constants: dict[str, datetime] | None = None,
    ) -> None:
        """PostgreSQL: insert the rows with a binary COPY (no conflict clause, nothing sent back).

        The server's work per row is about a third less than `insert`'s, which unnests arrays and
        evaluates the select list for each row. A violated key raises the driver's IntegrityError.
        Numbers as for `insert` (None for NULL); times as `Micros`; constants are times.
        """
        assert self.postgres, "COPY is PostgreSQL's"
        size = len(next(iter(columns.values())))
        if not size:
            return
        fields: list[tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None, str]] = []
        for name, values in columns.items():
            if isinstance(values, Micros):
                fields.append((values.values - PG_EPOCH_MICROS, None, "int8"))
            elif isinstance(values, np.ndarray):
                fields.append((values, None, pg_element(table.c[name])))
            else:
                nulls = np.array([v is None for v in values], dtype=bool)
                dense = np.array([0 if v is None else v for v in values]) if nulls.any() else np.array(values)
                fields.append((dense, nulls if nulls.any() else None, pg_element(table.c[name])))
        for moment in (constants or {}).values():
            fields.append((np.full(size, micros(moment) - PG_EPOCH_MICROS, dtype=np.int64), None, "int8"))
        names = ", ".join([*columns, *(constants or {})])
        data = pg_copy_rows(fields)
        driver = cast("psycopg.Connection[Any]", self.conn.connection.driver_connection)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(data)

    def _type(self, table: Table, column: str) -> str:
        return str(table.c[column].type.compile(dialect=self.conn.dialect))


def upsert_rows(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    replace: Sequence[str],
    earlier: str | None = None,
) -> None:
    """INSERT many rows, a row already there (same `keys`) taking the new values of `replace` (only
    when the new `earlier` is earlier, if given). Straight to the connection, without the ORM's
    per-row bookkeeping: on PostgreSQL as one statement with an array per column, unnested (its text
    does not change with the number of rows); on SQLite through the driver's executemany."""
    stmt = upsert(session, model)
    table = table_of(model)
    names = list(rows[0])
    if is_postgres(session):
        _, columns = values_table(session, {n: ([row[n] for row in rows], table.c[n].type) for n in names})
        stmt = stmt.from_select(names, select(*columns))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={n: stmt.excluded[n] for n in replace},
        where=None if earlier is None else stmt.excluded[earlier] < table.c[earlier],
    )
    if is_postgres(session):
        session.connection().execute(stmt)
    else:
        session.connection().execute(stmt, rows)
