"""Storage: SQLAlchemy async on SQLite or PostgreSQL, Alembic migrations, group-committed writes."""

from activity_feed.store.activity_store import ActivityStore
from activity_feed.store.export import ExportPage, ExportQuery
from activity_feed.store.reads import ChangePage, EventFilter, RecentPage, RecentQuery, StatsWindow

__all__ = [
    "ActivityStore",
    "ChangePage",
    "EventFilter",
    "ExportPage",
    "ExportQuery",
    "RecentPage",
    "RecentQuery",
    "StatsWindow",
]
