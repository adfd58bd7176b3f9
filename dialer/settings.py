"""One typed settings object for every process (CLI, worker, beat, API).

Read from the environment (prefix ``DIALER_``) and an optional ``.env`` file.
A bad value stops start-up with a message that names the setting.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.errors import SettingsError


class Settings(BaseSettings):
    """Deployment settings. Every field is documented; docs/OPERATIONS.md is generated from them."""

    model_config = SettingsConfigDict(env_prefix="DIALER_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+psycopg://...). Unset: embedded server.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:port/db). Unset: the embedded Redis is used.",
    )
    home: Path = Field(
        default=Path(".dialer"),
        description="Folder for the embedded servers' data, pid files and logs.",
    )
    legal_window_start: time = Field(
        default=time(8, 0),
        description="Earliest local time any call may start (legal outer bound).",
    )
    legal_window_end: time = Field(
        default=time(21, 0), description="Latest local time a call may start (legal outer bound)."
    )
    clock_speed: float = Field(
        default=1.0,
        gt=0,
        description="Simulated seconds per real second (demo only). 1 means the real clock.",
    )
    clock_anchor_real: datetime | None = Field(
        default=None, description="Real UTC instant at which the simulated clock was anchored."
    )
    clock_anchor_sim: datetime | None = Field(
        default=None, description="Simulated UTC instant that corresponds to clock_anchor_real."
    )
    log_format: str = Field(
        default="auto", description="auto (pretty on a terminal, JSON otherwise), json or console."
    )
    log_level: str = Field(default="INFO", description="Minimum log level.")

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in {"auto", "json", "console"}:
            raise ValueError("must be one of auto, json, console")
        return value

    @model_validator(mode="after")
    def _legal_window_is_a_window(self) -> Settings:
        if self.legal_window_start >= self.legal_window_end:
            raise ValueError("legal_window_start must be before legal_window_end")
        if (self.clock_anchor_real is None) != (self.clock_anchor_sim is None):
            raise ValueError("clock_anchor_real and clock_anchor_sim must be set together")
        return self


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, raising SettingsError that names each bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError.from_validation(exc) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
