"""Configuration: one pydantic-settings class, environment prefix `ACTIVITY_FEED_`, CLI flags override."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from activity_feed.durations import coerce_duration
from activity_feed.errors import ConfigurationError
from activity_feed.tokens import check_token

# Parsed before pydantic sees it, so that `10m` and `30d` work as well as a plain number of seconds.
DurationSetting = Annotated[timedelta, BeforeValidator(coerce_duration)]

# Upper bounds of the retention settings (and of `prune`'s options): beyond them a cutoff cannot be
# computed from the current time, or the database cannot hold the number; no deployment needs more.
MAX_RETENTION_DAYS = 36_500  # 100 years
MAX_RETENTION_EVENTS = 10**12


# What a list setting looks like, for the message that refuses one.
_LIST_EXAMPLES = {
    "allowed_hosts": ("feed.example", "*.lan.example"),
    "allowed_origins": ("https://a.example", "https://b.example"),
}


def _json_list(text: str, setting: str) -> list[str]:
    """A list setting written as JSON (it starts with `[`); ValueError saying which forms it takes."""
    first, second = _LIST_EXAMPLES.get(setting, ("a.example", "b.example"))
    forms = (
        f'write it comma-separated ({first},{second}) or as a JSON list of strings (["{first}", "{second}"])'
    )
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not a valid JSON list ({exc}): {forms}") from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"not a JSON list of strings: {forms}")
    return items


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'activity_feed.db'}"


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

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
    header_timeout: DurationSetting = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="close a connection whose request headers are not complete this long after it opened "
        "(or after the next request began)",
    )
    keep_alive_timeout: DurationSetting = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="close a kept-alive connection idle this long after a response (whole seconds)",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="open connections (stream clients included) beyond which requests are answered 503",
    )
    ws_queue_size: int = Field(
        default=1000, ge=1, description="messages a WebSocket client may fall behind before it is closed"
    )
    replay_limit: int = Field(
        default=10_000, ge=1, description="most changes replayed to a reconnecting client before `resync`"
    )
    # Heavy reads (replays, statistics, exports) take turns on database connections of their own, so that they
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
    max_concurrent_exports: int = Field(
        default=2,
        ge=1,
        description="`GET /activities/export` streamed at once; the others wait their turn, then get 503",
    )
    read_queue_timeout: DurationSetting = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="how long a replay, a stats request or an export waits for its turn before it is "
        "turned away",
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
        le=timedelta(hours=1),
        description="PostgreSQL: how long a request waits on the database (to connect, for one statement, "
        "for its write's turn) before it is answered 503",
    )

    # Security. Tokens are SecretStr so that a printed or logged Settings hides them.
    token: SecretStr | None = Field(
        default=None, description="write token: every endpoint but /health then needs `Bearer <token>`"
    )
    read_token: SecretStr | None = Field(
        default=None, description="optional read-only token: GETs, the stream and the page, never writes"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins allowed by CORS and on the stream (comma-separated or a JSON list); CORS is off "
        "when empty, and the stream then accepts only pages of its own origin (without a token: pages on a "
        "loopback host or an allowed host)",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="without a token, the host names the feed answers to besides localhost, 127.0.0.1 and "
        "[::1] (comma-separated or a JSON list; `*.example.com` for subdomains; ports are ignored); other "
        "`Host` headers get 421. `*` answers any, which lets DNS-rebinding pages in: unsafe without a token",
    )
    insecure: bool = Field(default=False, description="let `serve` bind a non-loopback host without a token")
    max_data_bytes: int = Field(default=64 * 1024, ge=1, description="most bytes in one event's `data`")
    metrics_max_tools: int = Field(
        default=500,
        ge=1,
        description="tools that get a `tool_name` label of their own in GET /metrics; later ones count "
        "under `other`",
    )
    alerts: Path | None = Field(
        default=None,
        description="a TOML file of alert rules and the webhooks they post to (docs/alerts.md); checked at "
        "start, and `serve` refuses to start when it has a problem",
    )

    @field_validator("token", "read_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        # `ACTIVITY_FEED_TOKEN=` (set but empty) must not become a token that an empty header would match.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("token", "read_token")
    @classmethod
    def _token_fits_a_header(cls, value: SecretStr | None) -> SecretStr | None:
        # Compared with what arrives in a header, which holds visible ASCII only: any other token could
        # never match, so the service would refuse every request while seeming to run.
        if value is not None:
            check_token(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        # Checked here, so that every command that reads the setting refuses a URL of an unknown kind or
        # an in-memory SQLite database alike, before anything starts. Imported when used: SQLAlchemy takes
        # half a second to load.
        from activity_feed.store.engine import async_url

        try:
            async_url(value)
        except ConfigurationError as exc:
            raise PydanticCustomError("database_url", "{reason}", {"reason": str(exc)}) from None
        return value

    @field_validator("alerts", mode="before")
    @classmethod
    def _blank_path_is_none(cls, value: Any) -> Any:
        # `ACTIVITY_FEED_ALERTS=` (set but empty) means no rules, not the working directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("read_token")
    @classmethod
    def _read_token_needs_write_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A read token alone would guard reads while leaving writes open: surely not what was meant.
        # `token` is declared first, so it is in `info.data` here unless it was refused itself.
        if value is not None and "token" in info.data and info.data["token"] is None:
            raise ValueError(
                "ACTIVITY_FEED_READ_TOKEN is set without ACTIVITY_FEED_TOKEN (the write token), which would "
                "leave writes open: set ACTIVITY_FEED_TOKEN too"
            )
        return value

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = _json_list(text, info.field_name or "") if text.startswith("[") else text.split(",")
            return [str(item).strip().rstrip("/") for item in items if str(item).strip()]
        return value

    @field_validator("host")
    @classmethod
    def _unbracketed_host(cls, value: str) -> str:
        # `[::1]` as written in a URL; the socket layer wants the bare address.
        value = value.strip()
        return value[1:-1] if value.startswith("[") and value.endswith("]") else value

    # Retention and stale calls: run by store/maintenance.py every
    # `maintenance_interval`. Durations take a number of seconds or a number with s, m, h or d (`10m`).
    retention_days: float = Field(
        default=0,
        ge=0,
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description="delete events whose timestamp is older than this many days; 0 keeps them forever",
    )
    retention_max_events: int = Field(
        default=0,
        ge=0,
        le=MAX_RETENTION_EVENTS,
        description="keep only this many events, the last to arrive (not by timestamp); 0 keeps them all",
    )
    pending_timeout: DurationSetting = Field(
        default=timedelta(minutes=10),
        ge=timedelta(0),
        le=timedelta(days=365),
        description="mark `pending` events older than this `error` (no completion arrived); 0 disables",
    )
    maintenance_interval: DurationSetting = Field(
        default=timedelta(seconds=60),
        gt=timedelta(0),
        le=timedelta(days=1),
        description="how often retention and the timeout run",
    )
    maintenance_batch_size: int = Field(
        default=500, ge=1, description="most events deleted or expired in one transaction"
    )
    # A client whose clock or time zone is off would otherwise pin its events atop `recent` and keep its
    # calls from ever timing out. 0 turns the check off, as it turns off retention and the timeout: even
    # synchronised clocks differ by milliseconds, so refusing every timestamp ahead would refuse at random.
    max_clock_skew: DurationSetting = Field(
        default=timedelta(minutes=5),
        ge=timedelta(0),
        le=timedelta(days=365),
        description="refuse (422) events whose timestamp is more than this ahead of the server's clock; "
        "0 accepts any timestamp",
    )
