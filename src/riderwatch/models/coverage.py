"""The daily roll-up of the coverage aggregates, for sealed days only.

`coverage_days` holds running totals: per H3 cell and UTC day on which the cell had passes, its
passes, rider-hours and the passes in each UTC hour of the day (`p00` … `p23`, what the hour-of-day
profile needs in any timezone), each summed over every rolled-up day up to and including that one.
The sums over days [a, b) are then the cell's latest row on or before b - 1 minus its latest row on
or before a - 1 (zero where there is none): two rows per cell, however long the window. A day is
rolled up once it is sealed — no ping can still arrive for it — so its totals never change.
`coverage_rollup` holds a single row: every UTC day before `sealed_before` is rolled up.
Days are whole days since 1970-01-01 (UTC), so that `hour // 24` is the day of an hour.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base

HOURS_PER_DAY = 24


class CoverageDay(Base):
    __tablename__ = "coverage_days"
    # Rows sit in key order on SQLite, so a cell's days are read together.
    __table_args__ = ({"sqlite_with_rowid": False},)
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    passes: Mapped[int] = mapped_column(BigInteger)
    riders: Mapped[int] = mapped_column(BigInteger)  # rider-hours: each hour's distinct riders, summed
    p00: Mapped[int] = mapped_column(BigInteger)
    p01: Mapped[int] = mapped_column(BigInteger)
    p02: Mapped[int] = mapped_column(BigInteger)
    p03: Mapped[int] = mapped_column(BigInteger)
    p04: Mapped[int] = mapped_column(BigInteger)
    p05: Mapped[int] = mapped_column(BigInteger)
    p06: Mapped[int] = mapped_column(BigInteger)
    p07: Mapped[int] = mapped_column(BigInteger)
    p08: Mapped[int] = mapped_column(BigInteger)
    p09: Mapped[int] = mapped_column(BigInteger)
    p10: Mapped[int] = mapped_column(BigInteger)
    p11: Mapped[int] = mapped_column(BigInteger)
    p12: Mapped[int] = mapped_column(BigInteger)
    p13: Mapped[int] = mapped_column(BigInteger)
    p14: Mapped[int] = mapped_column(BigInteger)
    p15: Mapped[int] = mapped_column(BigInteger)
    p16: Mapped[int] = mapped_column(BigInteger)
    p17: Mapped[int] = mapped_column(BigInteger)
    p18: Mapped[int] = mapped_column(BigInteger)
    p19: Mapped[int] = mapped_column(BigInteger)
    p20: Mapped[int] = mapped_column(BigInteger)
    p21: Mapped[int] = mapped_column(BigInteger)
    p22: Mapped[int] = mapped_column(BigInteger)
    p23: Mapped[int] = mapped_column(BigInteger)


class CoverageRollup(Base):
    """One row (id 1): how far `coverage_days` reaches."""

    __tablename__ = "coverage_rollup"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    sealed_before: Mapped[int] = mapped_column(Integer)  # the first UTC day not rolled up
