"""Writing to and reading the append-only audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | str,
    **detail: Any,
) -> None:
    """Append one audit entry in the caller's transaction."""
    session.add(
        AuditEntry(
            actor_id=actor.id if actor else None,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            detail=detail,
        )
    )


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    # Keyset paging: entries older than this id (the log only grows, so pages never shift).
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class AuditRow:
    """An entry as a reader is shown it: its actor (None for the system, the public, or one withheld),
    and its details."""

    entry: AuditEntry
    actor: User | None
    detail: dict[str, Any]
    actor_withheld: bool = False


def list_entries(session: Session, *, filters: AuditFilters) -> tuple[list[AuditRow], int]:
    """Entries newest first with their actors, and how many match the filters in all (read only)."""
    conditions = []
    if filters.action:
        conditions.append(AuditEntry.action == filters.action)
    if filters.object_type:
        conditions.append(AuditEntry.object_type == filters.object_type)
    if filters.object_id:
        conditions.append(AuditEntry.object_id == filters.object_id)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
    if filters.before is not None:
        conditions.append(AuditEntry.id < filters.before)
    rows = session.execute(
        select(AuditEntry, User)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(*conditions)
        .order_by(AuditEntry.id.desc())
        .limit(filters.limit)
    ).all()
    return [AuditRow(entry, actor, dict(entry.detail or {})) for entry, actor in rows], total


def vocabulary(session: Session) -> tuple[list[str], list[str]]:
    """The actions and object types present in the log, for the filters."""
    actions = list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    types = list(session.scalars(select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)))
    return actions, types
