"""`activity-feed check`, the real console script in a subprocess against a real server: each rule holding
and failing, the window the statistics covered, and the exit statuses 0, 1 and 2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.cli.main import main
from activity_feed.settings import Settings
from tests.cli.test_main import clean_env, run_cli
from tests.support.server import LiveServer, free_port

TOKEN = "check-token"
# The statistics count at most this many events: the 15 minutes' 69 fit, the 3 hours' 74 do not.
STATS_WINDOW = 69


def _events(now: datetime) -> list[dict[str, Any]]:
    def event(tool: str, age: timedelta, status: str, duration: float | None) -> dict[str, Any]:
        stamp = (now - age).isoformat()
        return {
            "tool_name": tool,
            "event_type": "tool_call",
            "status": status,
            "duration_ms": duration,
            "timestamp": stamp,
        }

    minute = timedelta(minutes=1)
    # search_properties: 50 calls, 1 error, 10 to 500 ms (p95 480); book_viewing: 16 calls, 2 errors, two
    # of 1,900 ms (p95 1,900); get_tenant: 3 pending calls (no duration); old_tool: 5 calls, 2 hours ago.
    return (
        [
            event("search_properties", minute, "error" if n == 0 else "success", 10.0 * (n + 1))
            for n in range(50)
        ]
        + [
            event("book_viewing", minute, "error" if n < 2 else "success", 1900.0 if n < 2 else 100.0)
            for n in range(16)
        ]
        + [event("get_tenant", minute, "pending", None) for _ in range(3)]
        + [event("old_tool", timedelta(hours=2), "success", 5.0) for _ in range(5)]
    )


@pytest.fixture
def feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        broadcast_url="memory://",
        token=TOKEN,
        stats_window_events=STATS_WINDOW,
    )
    server = live_server(settings)
    answer = httpx.post(
        f"{server.url}/activities/batch",
        json={"events": _events(datetime.now(UTC))},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.json()["created"] == 74, answer.text
    return server


def check(feed: LiveServer, tmp_path: Path, *flags: str) -> tuple[int, list[str]]:
    """The console script, in a subprocess."""
    env = clean_env(ACTIVITY_FEED_URL=feed.url, ACTIVITY_FEED_TOKEN=TOKEN)
    result = run_cli(["check", *flags], tmp_path, env)
    assert result.stderr == ""
    return result.returncode, result.stdout.splitlines()


def check_here(feed: LiveServer, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, list[str]]:
    """The same command in this process (quicker), for the finer points of the rules."""
    status = main(["check", "--feed-url", feed.url, "--token", TOKEN, *flags])
    captured = capsys.readouterr()
    assert captured.err == ""
    return status, captured.out.splitlines()


def test_rules_that_hold_exit_0(feed: LiveServer, tmp_path: Path) -> None:
    flags = ["--max-error-rate", "20%", "--max-p95", "2s", "--require-tool", "search_properties"]
    status, lines = check(feed, tmp_path, *flags, "--forbid-tool", "delete_property")

    assert status == 0
    assert lines[0].startswith("window: since 15m (")
    assert lines[0].endswith("Z), 69 events")
    assert lines[1:] == [
        "ok   error rate 2.0% <= 20.0% (search_properties: 1/50)",
        "ok   error rate 12.5% <= 20.0% (book_viewing: 2/16)",
        "ok   error rate 0.0% <= 20.0% (get_tenant: 0/3)",
        "ok   p95 480 ms <= 2,000 ms (search_properties)",
        "ok   p95 1,900 ms <= 2,000 ms (book_viewing)",
        "ok   p95 (get_tenant: no duration in the window)",
        "ok   require search_properties: 50 calls",
        "ok   forbid delete_property: no call in the window",
    ]


def test_rules_that_fail_exit_1_and_say_which(feed: LiveServer, tmp_path: Path) -> None:
    flags = ["--max-error-rate", "0.05", "--max-p95", "800ms", "--require-tool", "old_tool"]
    status, lines = check(feed, tmp_path, *flags, "--forbid-tool", "book_viewing")

    assert status == 1
    assert lines[1:] == [
        "ok   error rate 2.0% <= 5.0% (search_properties: 1/50)",
        "FAIL error rate 12.5% > 5.0% (book_viewing: 2/16)",
        "ok   error rate 0.0% <= 5.0% (get_tenant: 0/3)",
        "ok   p95 480 ms <= 800 ms (search_properties)",
        "FAIL p95 1,900 ms > 800 ms (book_viewing)",
        "ok   p95 (get_tenant: no duration in the window)",
        "FAIL require old_tool: no call in the window",
        "FAIL forbid book_viewing: 16 calls",
    ]


def test_tool_limits_the_rules_to_the_tools_named(
    feed: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = check_here(
        feed,
        capsys,
        "--tool",
        "search_properties",
        "--tool",
        "absent",
        "--max-error-rate",
        "1.5%",
        "--max-p95",
        "1500",
    )

    assert status == 1
    assert lines[1:] == [
        "FAIL error rate 2.0% > 1.5% (search_properties: 1/50)",
        "ok   error rate (absent: no call in the window)",
        "ok   p95 480 ms <= 1,500 ms (search_properties)",
        "ok   p95 (absent: no call in the window)",
    ]
    status, lines = check_here(
        feed, capsys, "--since", "2099-01-01", "--max-error-rate", "0", "--max-p95", "1"
    )
    assert status == 0
    assert lines == [
        "window: since 2099-01-01 (2099-01-01T00:00:00Z), 0 events",
        "ok   error rate (no call in the window)",
        "ok   p95 (no call in the window)",
    ]


def test_a_bare_number_since_is_seconds_back_from_now(
    feed: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC)
    status, lines = check_here(feed, capsys, "--since", "900", "--require-tool", "old_tool")

    # 15 minutes back, not 1970-01-01T00:15:00Z: old_tool's calls, 2 hours ago, are outside the window.
    assert status == 1
    start = datetime.fromisoformat(lines[0].removeprefix("window: since 900 (").partition(")")[0])
    assert before - timedelta(minutes=15, seconds=5) < start < datetime.now(UTC) - timedelta(minutes=14)
    assert lines[0].endswith("), 69 events")
    assert lines[-1] == "FAIL require old_tool: no call in the window"


def test_a_window_larger_than_the_statistics_count_is_reported(
    feed: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = check_here(
        feed, capsys, "--since", "3h", "--max-error-rate", "0.5", "--require-tool", "old_tool"
    )

    assert status == 0
    assert lines[0].startswith(
        "window: since 3h, more events than the feed counts: the error-rate and p95 rules cover only the "
        "newest 69, from "
    )
    assert lines[0].endswith("Z on (X-Stats-Truncated)")
    # Its calls are all older than the counted events: asked of the events themselves, still found.
    assert lines[-1] == "ok   require old_tool: called (before the events the statistics counted)"


def test_one_event_is_said_in_the_singular(
    live_server: Callable[..., LiveServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'one.db'}", broadcast_url="memory://", token=TOKEN
    )
    server = live_server(settings)
    [event] = _events(datetime.now(UTC))[:1]
    answer = httpx.post(
        f"{server.url}/activities/log", json=event, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text

    status, lines = check_here(server, capsys, "--require-tool", "search_properties")

    assert status == 0
    assert lines[0].endswith("Z), 1 event")
    assert lines[1] == "ok   require search_properties: 1 call"


def test_usage_errors_exit_2_and_an_unreadable_feed_exits_1(
    feed: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_rule = run_cli(["check", "--feed-url", feed.url, "--token", TOKEN], tmp_path)
    assert no_rule.returncode == 2
    assert no_rule.stderr == (
        "activity-feed: check needs a rule: --max-error-rate, --max-p95, --require-tool or --forbid-tool\n"
    )
    refused = run_cli(["check", "--feed-url", feed.url, "--token", "wrong", "--max-p95", "1s"], tmp_path)
    assert refused.returncode == 1
    assert "answered 401: the token was refused" in refused.stderr
    assert refused.stdout == ""

    # The others in this process: the same function decides.
    absent = f"http://127.0.0.1:{free_port()}"
    for flags, status, says in (
        (["--max-error-rate", "150%"], 2, "--max-error-rate: a fraction from 0 to 1 (0.05) or a percentage"),
        (["--max-error-rate", "often"], 2, "--max-error-rate: a fraction from 0 to 1"),
        (
            ["--max-p95", "fast"],
            2,
            "--max-p95: a duration in ms or s (800ms, 1.5s) or a number of milliseconds",
        ),
        (["--tool", "x"], 2, "--tool limits --max-error-rate and --max-p95: give one of them"),
        (["--require-tool", "x", "--forbid-tool", "x"], 2, "'x' is both required and forbidden"),
        (["--since", "yesterday", "--max-p95", "1s"], 2, "--since: not a time or a duration"),
        (["--feed-url", absent, "--max-p95", "1s"], 1, f"cannot reach the feed at {absent}"),
    ):
        assert main(["check", *flags]) == status, flags
        assert says in capsys.readouterr().err


def test_the_feeds_own_alert_records_are_not_tools(
    feed: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # An alert's firing is stored as a failed system event named after its rule: not a call of a tool.
    answer = httpx.post(
        f"{feed.url}/activities/log",
        json={"tool_name": "alert: search keeps failing", "event_type": "system_event", "status": "error"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text

    status, lines = check_here(feed, capsys, "--max-error-rate", "20%")

    assert status == 0, lines
    assert not [line for line in lines if "alert:" in line]
    assert "ok   error rate 12.5% <= 20.0% (book_viewing: 2/16)" in lines
