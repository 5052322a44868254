"""Configuration: one pydantic-settings class, environment prefix `ACTIVITY_FEED_`, CLI flags override."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'activity_feed.db'}"


class Settings(BaseSettings):
    """Everything the service reads from its environment (DESIGN.md section 4)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_FEED_", extra="ignore")

    database_url: str = Field(
        default_factory=_default_database_url,
        description="sqlite:///path or postgresql://...; the async driver is chosen for you",
    )
    broadcast_url: str = Field(default="memory://", description="memory:// or, later, redis://...")
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
    write_batch_size: int = Field(default=2000, ge=1, description="most items committed in one transaction")
