"""A list of values bound as one SQL parameter: an array on PostgreSQL, a JSON list on SQLite.

An IN list has a placeholder per value, so its text changes with every call and the driver parses it
(and SQLAlchemy renders it) anew each time; bound as one parameter, a statement's text stays the same
however many values it carries, and the values cost one bind. The one place that knows the two forms.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeEngine

from riderwatch.db import UTCDateTime, sqlite_time


def rows_changed(result: object) -> int:
    """How many rows an UPDATE or DELETE changed (the driver's rowcount; 0 when it does not say)."""
    return int(getattr(result, "rowcount", 0) or 0)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def values_column(
    session: Session, values: Iterable[Any], type_: TypeEngine[Any], *, name: str = "value"
) -> ColumnElement[Any]:
    """The values as a one-column table (its column returned): `unnest(array)` or `json_each(list)`."""
    if is_postgres(session):
        array = bindparam(None, list(values), type_=postgresql.ARRAY(type_))
        return func.unnest(array).table_valued(name).render_derived().c[name]
    return func.json_each(json.dumps([_json(v) for v in values])).table_valued("value").c.value


def one_of(session: Session, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`: `column = ANY(array)` on PostgreSQL, `column IN (SELECT … json_each)` on SQLite."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(select(values_column(session, values, column.type)))


def values_table(
    session: Session, columns: Mapping[str, tuple[Sequence[Any], TypeEngine[Any]]]
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """Rows given as one list per column, as a table and its columns: `unnest` of one array per column on
    PostgreSQL, one JSON list of rows on SQLite (times as the text `UTCDateTime` stores there, so they
    compare with the stored ones)."""
    names = list(columns)
    if is_postgres(session):
        arrays = [bindparam(None, list(v), type_=postgresql.ARRAY(t)) for v, t in columns.values()]
        table = func.unnest(*arrays).table_valued(*names).render_derived()
        return table, [table.c[n] for n in names]
    rows = [list(row) for row in zip(*(v for v, _ in columns.values()), strict=True)]
    times = [i for i, (_, t) in enumerate(columns.values()) if isinstance(t, UTCDateTime)]
    for row in rows:
        for i in times:
            row[i] = sqlite_time(row[i])
    each = func.json_each(json.dumps(rows)).table_valued("value")
    return each, [func.json_extract(each.c.value, f"$[{i}]") for i in range(len(names))]


def _json(value: Any) -> Any:
    return sqlite_time(value) if isinstance(value, datetime) else value
