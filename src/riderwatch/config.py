"""Settings from the environment (RIDERWATCH_*), with the defaults CONTRACT.md fixes."""

from __future__ import annotations

import functools
import os
import secrets
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RIDERWATCH_", extra="ignore")

    database_url: str = "sqlite:///./var/riderwatch.db"
    redis_url: str | None = None
    data_dir: Path = Path("./var")
    secret_key: str | None = None
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_Hans_CN"
    # Map tiles from a local tile server, e.g. http://tiles.intranet/{z}/{x}/{y}.png; empty: no tiles.
    tile_url: str = ""
    tile_attribution: str = ""
    max_photo_bytes: int = 8 * 1024 * 1024
    max_photos: int = 6
    # Clues one rider may send in an hour (an offline phone's queue of a shift's reports fits easily);
    # more are answered 429, and the report page keeps them queued and sends them later.
    clues_per_rider_per_hour: int = Field(default=30, ge=1)
    # Failed logins in the window after which each further try waits longer (1 s, 2 s, 4 s … up to the
    # window): per account name from one client address, per address over all names, per name over
    # all addresses. The real user, on their own address, is slowed only by a flood from many addresses.
    login_max_failures: int = Field(default=5, ge=1)
    login_address_max_failures: int = Field(default=20, ge=1)
    login_account_max_failures: int = Field(default=50, ge=1)
    login_window_seconds: int = Field(default=900, ge=60)
    # Password hashes (argon2: about 0.1 s of a core and 64 MiB each) checked at once per server process.
    login_hashes_at_once: int = Field(default=max(1, (os.cpu_count() or 2) // 2), ge=1)
    token_ttl_seconds: int = 12 * 3600
    # Cookies marked Secure; off by default because intranet deployments often serve plain HTTP.
    secure_cookies: bool = False
    # Run periodic jobs (overdue escalation) inside the server process.
    run_jobs: bool = True
    job_interval_seconds: int = 60
    duplicate_radius_m: float = 300.0
    duplicate_window_hours: int = 72
    open311_jurisdiction_id: str = "zhenhai.licheng.putian"
    # The address phones reach the server at (join links and their QR codes, Traccar Client, Open311
    # discovery); empty: the address each request came in on (through a proxy, its forwarded host).
    public_base_url: str = ""
    # Webhooks: send the outbox from this server process; each try's time limit; tries before a delivery is
    # given up (the waits between them double from 10 s up to an hour: 10 tries span about two and a half hours).
    webhook_worker: bool = True
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    # How often a worker looks for deliveries another process wrote (a commit in its own process wakes it).
    webhook_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    # An alert of severity Extreme waits for a second dispatcher's (or administrator's) approval.
    alert_extreme_needs_approval: bool = False
    # Positions (PIPL: sensitive personal information). Raw positions and per-rider aggregates are
    # deleted after the retention period; anonymous per-cell counts are kept.
    position_retention_days: int = Field(default=30, ge=1, le=3650)
    location_consent_text_version: str = "v1"
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the audit log and the
    # login limits take the client's address from it only for requests that come from one of these.
    trusted_proxies: tuple[str, ...] = ()
    # H3 resolutions aggregated at ingest; the finest one is also stored with each raw position.
    coverage_resolutions: tuple[int, ...] = (9, 10)
    # Pings recorded longer ago than this are refused (a phone that buffered offline sends them late).
    max_ping_age_hours: int = Field(default=48, ge=1)
    # Phone clocks drift: a ping this far ahead of the server is still taken as "now".
    max_ping_future_seconds: int = Field(default=120, ge=0)
    # A jump faster than this (plus the slack for GPS noise) from the rider's previous point is refused.
    max_speed_mps: float = Field(default=40.0, gt=0)
    jump_slack_m: float = Field(default=150.0, ge=0)
    max_pings_per_batch: int = Field(default=5000, ge=1)
    live_window_minutes: int = Field(default=10, ge=1)
    coverage_max_cells: int = Field(default=50_000, ge=1)
    coverage_max_window_days: int = Field(default=366, ge=1)

    @field_validator("coverage_resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 0 <= r <= 15 for r in value):
            raise ValueError("coverage_resolutions must name H3 resolutions between 0 and 15")
        return tuple(sorted(set(value)))

    @cached_property
    def signing_key(self) -> str:
        """The configured secret, else one generated into the data dir on first use."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def photo_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def material_dir(self) -> Path:
        return self.data_dir / "materials"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings() -> Settings:
    return Settings()


@functools.cache
def programme_timezone() -> ZoneInfo:
    """The programme's time zone as the environment sets it, for a calendar day where no request's settings
    are at hand (the day a rider joined)."""
    return ZoneInfo(Settings().timezone)
