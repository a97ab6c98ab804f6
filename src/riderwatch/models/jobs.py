"""A lease per periodic job, so that across N server processes each job runs once at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base


class JobLease(Base):
    __tablename__ = "job_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), default="")
    leased_until: Mapped[datetime]
