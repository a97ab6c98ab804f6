"""Pydantic shapes for managing accounts and Open311 keys, and for reading the audit log (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from riderwatch.accounts.service import UserSummary
from riderwatch.models.accounts import RiderStatus, Role

LINK_FIELDS = {"community", "grid", "patrol_unit", "station", "platform"}


def _code() -> Any:
    """An org code (community, grid, patrol unit, station, platform); empty or null for none."""
    return Field(default=None, max_length=64)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # A NUL cannot be stored by PostgreSQL and nothing typed by a person contains one.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class UserCreate(_Strict):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=8, max_length=1000)
    display_name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    rider_status: RiderStatus = RiderStatus.active
    community: str | None = _code()
    grid: str | None = _code()
    patrol_unit: str | None = _code()
    station: str | None = _code()
    platform: str | None = _code()

    def links(self) -> dict[str, str | None]:
        return {k: v for k, v in self.model_dump(include=LINK_FIELDS).items() if v}


class UserUpdate(_Strict):
    """Only the fields sent are changed; a link sent as null is removed."""

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    rider_status: RiderStatus | None = None
    community: str | None = _code()
    grid: str | None = _code()
    patrol_unit: str | None = _code()
    station: str | None = _code()
    platform: str | None = _code()

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set}


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    is_active: bool
    phone: str | None
    rider_status: str | None
    community: str | None
    grid: str | None
    patrol_unit: str | None
    station: str | None
    platform: str | None
    created_at: datetime

    @classmethod
    def of(cls, summary: UserSummary) -> UserRead:
        user = summary.user
        codes = {kind: ref.code for kind, ref in summary.links.items()}
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            is_active=user.is_active,
            phone=user.phone,
            rider_status=summary.rider_status,
            community=codes.get("community"),
            grid=codes.get("grid"),
            patrol_unit=codes.get("patrol_unit"),
            station=codes.get("station"),
            platform=codes.get("platform"),
            created_at=user.created_at,
        )


class UserList(BaseModel):
    items: list[UserRead]
    total: int


class PasswordReset(_Strict):
    password: str = Field(min_length=8, max_length=1000)


class OneTimeCode(BaseModel):
    """A password an administrator hands to a user, who must replace it at first login; shown once."""

    code: str
    expires_at: datetime


class PasswordChange(_Strict):
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=1, max_length=1000)


class ActiveChange(_Strict):
    active: bool


class ApiKeyCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(description="the key itself: shown in this answer only, never again")


class AuditEntryRead(BaseModel):
    id: int
    at: datetime
    actor: str | None = Field(description="the acting user's username; null for the system or the public")
    actor_withheld: bool = Field(
        default=False, description="true when the actor is the reporter of an anonymous clue, withheld from you"
    )
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    total: int = Field(description="entries matching the filters in all")
    next_before: int | None = Field(description="pass as `before` for the next (older) page; null on the last")
