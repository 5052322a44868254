"""Configuration: one pydantic-settings class, environment prefix `ACTIVITY_FEED_`, CLI flags override."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from activity_feed.durations import coerce_duration

# Parsed before pydantic sees it, so that `10m` and `30d` work as well as a plain number of seconds.
DurationSetting = Annotated[timedelta, BeforeValidator(coerce_duration)]


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'activity_feed.db'}"


class Settings(BaseSettings):
    """Everything the service reads from its environment (DESIGN.md section 4)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_FEED_", extra="ignore")

    database_url: str = Field(
        default_factory=_default_database_url,
        description="sqlite:///path or postgresql://...; the async driver is chosen for you",
    )
    broadcast_url: str = Field(
        default="memory://",
        description="memory:// for one instance; redis://host:6379/0 (or rediss://) for several, "
        "optionally with ?channel=<name> (default activity-feed:changes)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    url: str | None = Field(default=None, description="where a FeedClient sends events")
    log_level: str = "info"
    migrate_on_start: bool = Field(default=True, description="run Alembic migrations when the service starts")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    ws_queue_size: int = Field(
        default=1000, ge=1, description="messages a WebSocket client may fall behind before it is closed"
    )
    replay_limit: int = Field(
        default=10_000, ge=1, description="most changes replayed to a reconnecting client before `resync`"
    )
    # Heavy reads (replays, statistics) take turns on database connections of their own, so that they
    # never hold the ones /health, `recent` and the writes need.
    max_concurrent_replays: int = Field(
        default=4,
        ge=1,
        description="stream replays (`since=`) read at once; the others wait their turn, then are closed "
        "with 1013 to reconnect with their cursor",
    )
    max_concurrent_stats: int = Field(
        default=2,
        ge=1,
        description="`GET /activities/stats` answered at once; the others wait their turn, then get 503",
    )
    read_queue_timeout: DurationSetting = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="how long a replay or a stats request waits for its turn before it is turned away",
    )
    stats_window_events: int = Field(
        default=10_000,
        ge=1,
        description="`GET /activities/stats` counts at most this many of the newest events (by timestamp); "
        "its X-Stats-* headers say which window it covered",
    )
    write_batch_size: int = Field(default=2000, ge=1, description="most items committed in one transaction")
    database_timeout: DurationSetting = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="PostgreSQL: how long a request waits on the database (to connect, for one statement, "
        "for its write's turn) before it is answered 503",
    )

    # Security (issue 5, points 1-2). Tokens are SecretStr so that a printed or logged Settings hides them.
    token: SecretStr | None = Field(
        default=None, description="write token: every endpoint but /health then needs `Bearer <token>`"
    )
    read_token: SecretStr | None = Field(
        default=None, description="optional read-only token: GETs, the stream and the page, never writes"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins allowed by CORS and on the stream (comma-separated or a JSON list); CORS is off "
        "when empty, and the stream then accepts only its own origin",
    )
    insecure: bool = Field(default=False, description="let `serve` bind a non-loopback host without a token")
    max_data_bytes: int = Field(default=64 * 1024, ge=1, description="most bytes in one event's `data`")

    @field_validator("token", "read_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        # `ACTIVITY_FEED_TOKEN=` (set but empty) must not become a token that an empty header would match.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return [str(item).strip().rstrip("/") for item in items if str(item).strip()]
        return value

    @model_validator(mode="after")
    def _read_token_needs_write_token(self) -> Settings:
        # A read token alone would guard reads while leaving writes open: surely not what was meant.
        if self.read_token is not None and self.token is None:
            raise ValueError("ACTIVITY_FEED_READ_TOKEN is set without ACTIVITY_FEED_TOKEN (the write token)")
        return self

    # Retention and stale calls (issue 5, points 3-4): run by store/maintenance.py every
    # `maintenance_interval`. Durations take a number of seconds or a number with s, m, h or d (`10m`).
    retention_days: float = Field(
        default=0, ge=0, description="delete events older than this many days; 0 keeps them forever"
    )
    retention_max_events: int = Field(
        default=0, ge=0, description="keep only the newest this many events; 0 keeps them all"
    )
    pending_timeout: DurationSetting = Field(
        default=timedelta(minutes=10),
        ge=timedelta(0),
        description="mark `pending` events older than this `error` (no completion arrived); 0 disables",
    )
    maintenance_interval: DurationSetting = Field(
        default=timedelta(seconds=60), gt=timedelta(0), description="how often retention and the timeout run"
    )
    maintenance_batch_size: int = Field(
        default=500, ge=1, description="most events deleted or expired in one transaction"
    )
