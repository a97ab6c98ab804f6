"""The shapes of a webhook channel as the API takes it and the pages build it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal["json", "wecom", "dingtalk", "feishu"]
Party = Literal["command", "police", "grid_staff", "patrol"]


class ChannelIn(BaseModel):
    """A new channel: a party's duty group chat (`party`, administrators) or the caller's own (no party)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="who reads it, e.g. 社区民警值班群")
    party: Party | None = Field(default=None, description="whose duty group chat; none: the caller's own")
    format: Format
    url: str = Field(min_length=1, max_length=1000, description="the robot's or system's address (http or https)")
    secret: str = Field(default="", max_length=200, description="signing secret (required for json)")
    kinds: list[str] = Field(min_length=1, max_length=16, description="the kinds of event it takes")
    locale: Literal["zh", "en"] = "zh"


class ChannelChange(BaseModel):
    """A change to a channel: only the fields given change; an empty secret keeps the one saved."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    format: Format | None = None
    url: str | None = Field(default=None, min_length=1, max_length=1000)
    secret: str | None = Field(default=None, max_length=200)
    kinds: list[str] | None = Field(default=None, min_length=1, max_length=16)
    locale: Literal["zh", "en"] | None = None
    active: bool | None = Field(
        default=None, description="false retires the channel (its log is kept), true restores it"
    )
