"""The shapes the points API takes (the pages build the same)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuleKey = Literal["clue_A", "clue_B", "clue_C", "alert_ack", "sighting", "course_passed", "leaflets_10"]
RewardKind = Literal["goods", "voucher", "cash"]


class RuleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: RuleKey
    points: int = Field(ge=0, le=10_000)
    effective_from: date = Field(description="the first day it applies (today or later)")
    note: str = Field(default="", max_length=500)


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rider: str = Field(min_length=1, max_length=64, description="the rider's username")
    points: int = Field(ge=-100_000, le=100_000, description="added (or, negative, taken)")
    note: str = Field(min_length=1, max_length=500, description="why: the rider reads it")


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    name_en: str = Field(default="", max_length=200)
    kind: RewardKind
    cost: int = Field(ge=1, le=1_000_000, description="points")
    cash_yuan: float | None = Field(default=None, gt=0, le=100_000, description="for cash: the amount in yuan")
    stock: int | None = Field(default=None, ge=0, le=1_000_000, description="none: no limit")
    active: bool = True


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


class CashProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clue_id: int = Field(ge=1)
    amount_yuan: float = Field(gt=0, le=100_000)
    reason: str = Field(min_length=1, max_length=1000)


class ClaimCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim_code: str = Field(min_length=4, max_length=32)


class Nickname(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nickname: str = Field(default="", max_length=16, description="empty: my name, all but its first character hidden")
