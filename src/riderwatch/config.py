"""Settings from the environment (RIDERWATCH_*), with the defaults CONTRACT.md fixes."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
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
    login_max_failures: int = 5
    login_window_seconds: int = 900
    token_ttl_seconds: int = 12 * 3600
    # Cookies marked Secure; off by default because intranet deployments often serve plain HTTP.
    secure_cookies: bool = False
    # Run periodic jobs (overdue escalation) inside the server process.
    run_jobs: bool = True
    job_interval_seconds: int = 60
    duplicate_radius_m: float = 300.0
    duplicate_window_hours: int = 72
    open311_jurisdiction_id: str = "zhenhai.licheng.putian"
    public_base_url: str = Field(default="http://127.0.0.1:8000")

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
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings() -> Settings:
    return Settings()
