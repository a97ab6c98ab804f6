"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

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
