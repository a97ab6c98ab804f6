"""The shapes the evaluation API takes (the pages build the same)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AhpMatrix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matrix: list[list[float]] = Field(
        min_length=2, max_length=10, description="a_ij: how much more important i is than j, 1/9 … 9; a_ji = 1/a_ij"
    )


class IndicatorSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=32)
    weight: float | None = Field(default=None, ge=0, le=1000, description="typed weights only")
    difficulty: float = Field(default=1.0, ge=0.5, le=3.0)


class SchemeIn(BaseModel):
    """New evaluation settings: the indicators in order, how the weights are set, and the grades."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["typed", "ahp", "entropy"]
    indicators: list[IndicatorSetting] = Field(min_length=2, max_length=10)
    matrix: list[list[float]] | None = Field(default=None, max_length=10, description="for AHP, in the same order")
    grades: dict[Literal["A", "B", "C"], float] = Field(description="the lowest score of each grade")
    note: str = Field(default="", max_length=500)
