"""The text each tool answers besides its structured content: a line per event, tool or session, for a
person, or a model whose client shows it only the text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from activity_feed.feed_mcp.models import RecentActivity, SessionActivity, SessionList, ToolStatsReport
from activity_feed.schemas import ActivityPublic, SessionPublic, ToolStats

_SHOWN_ERROR_CHARS = 300
_SHOWN_DATA_CHARS = 2000


def _time(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def event_line(event: ActivityPublic) -> str:
    """`2026-12-01 09:02:11Z error tool_call search_properties 5000 ms: timeout [id ...]`"""
    parts = [_time(event.timestamp), event.status.value, event.event_type.value, event.tool_name or "-"]
    if event.duration_ms is not None:
        parts.append(_ms(event.duration_ms))
    line = " ".join(parts)
    if event.error_message:
        line += f": {_cut(' '.join(event.error_message.split()), _SHOWN_ERROR_CHARS)}"
    return f"{line} [id {event.id}]"


def _events(events: list[ActivityPublic], more: bool, where: str) -> str:
    if not events:
        return f"no events{where}"
    head = f"{_count(len(events), 'event')}{where}, newest first"
    if more:
        head += " (more match: raise limit to see them)"
    return "\n".join([head, *(event_line(event) for event in events)])


def recent_text(answer: RecentActivity) -> str:
    return _events(answer.events, answer.more, "")


def session_text(answer: SessionActivity) -> str:
    return _events(answer.events, answer.more, f" in session {answer.session_id}")


def event_text(event: ActivityPublic) -> str:
    lines = [event_line(event)]
    for name in ("user_source", "session_id", "correlation_id"):
        if (value := getattr(event, name)) is not None:
            lines.append(f"{name}: {value}")
    if event.error_message and len(event.error_message) > _SHOWN_ERROR_CHARS:
        lines.append(f"error_message: {event.error_message}")
    if event.data:
        lines.append(f"data: {_cut(json.dumps(event.data, ensure_ascii=False), _SHOWN_DATA_CHARS)}")
    return "\n".join(lines)


def _tool_line(tool: ToolStats) -> str:
    calls, errors = _count(tool.count, "call"), _count(tool.errors, "error")
    line = f"{tool.tool_name or '-'}: {calls}, {errors} ({tool.error_rate:.1%})"
    if tool.p50_duration_ms is not None and tool.p95_duration_ms is not None:
        line += f", p50 {_ms(tool.p50_duration_ms)}, p95 {_ms(tool.p95_duration_ms)}"
    return line


def stats_text(report: ToolStatsReport) -> str:
    if not report.tools:
        return "no events in that window"
    head = f"{_count(report.events_counted, 'event')} counted"
    if report.since is not None:
        head += f" since {_time(report.since)}"
    if report.truncated:
        head += " (older ones left out: the feed counts at most its newest events)"
    return "\n".join([head, *(_tool_line(tool) for tool in report.tools)])


def _session_line(session: SessionPublic) -> str:
    who = ", ".join(value for value in (session.user_source, session.server) if value)
    line = session.session_id + (f" ({who})" if who else "")
    return (
        f"{line}: {_count(session.events, 'event')}, {_count(session.errors, 'error')}, "
        f"{session.pending} pending, {_time(session.first_seen)} to {_time(session.last_seen)}"
    )


def sessions_text(answer: SessionList) -> str:
    if not answer.sessions:
        return "no sessions"
    head = f"{_count(len(answer.sessions), 'session')}, most recently active first"
    return "\n".join([head, *(_session_line(session) for session in answer.sessions)])
