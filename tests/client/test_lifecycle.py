"""Fork, interpreter exit, stdout, the module-level helpers and the middleware sink."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from activity_feed import ActivityLoggerMiddleware, ClientSink, log_mcp_tool_call, update_mcp_tool_result
from activity_feed.client import FeedClient, default, feed_client, get_default_client, set_default_client
from tests.client.remotes import get_event, wait_until
from tests.support.server import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_after_fork_the_child_starts_afresh_and_its_event_arrives(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    client.log(tool_name="parent")
    assert client.flush(timeout=5)  # the parent's worker is running when it forks
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process (uvicorn's threads here); that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never through pytest
        try:
            fresh = client.sent == 0 and client.queued == 0
            event_id = client.log(tool_name="child")
            ok = fresh and client.flush(timeout=5) and client.sent == 1
            os.write(write_end, f"{event_id} {ok}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 15
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    with os.fdopen(read_end) as pipe:
        event_id, ok = pipe.read().split()
    assert ok == "True"
    assert get_event(sqlite_feed.url, event_id)["tool_name"] == "child"
    assert client.sent == 1  # the parent's own counters are untouched


def _python(code: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_FEED_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**full_env, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def test_exit_flushes_what_is_queued(sqlite_feed: LiveServer) -> None:
    code = (
        "import sys; from activity_feed import log_mcp_tool_call as log\n"
        "print(log('at_exit'), end='', file=sys.stderr)"
    )
    result = _python(code, {"ACTIVITY_FEED_URL": sqlite_feed.url})
    event_id = result.stderr.strip().splitlines()[-1]
    assert get_event(sqlite_feed.url, event_id, timeout=1)["tool_name"] == "at_exit"
    assert result.stdout == ""


def test_exit_takes_at_most_two_seconds_when_the_service_is_down() -> None:
    code = (
        "import time, sys; from activity_feed import log_mcp_tool_call as log\n"
        "[log('down') for _ in range(100)]\n"
        "sys.stderr.write(f'start {time.monotonic()}\\n')"
    )
    started = time.monotonic()
    result = _python(code, {"ACTIVITY_FEED_URL": f"http://127.0.0.1:{free_port()}"})
    logged_at = float(result.stderr.split("start ")[1].split()[0])
    assert time.monotonic() - logged_at < 3.5  # 2 s of flushing, then interpreter teardown
    assert time.monotonic() - started < 30
    assert result.stdout == ""
    assert "not sent before close" in result.stderr


def test_exit_with_a_host_that_does_not_resolve_says_so_in_one_line() -> None:
    # A long flush interval: the first attempt is the one close() makes at exit.
    code = (
        "from activity_feed.client import FeedClient\n"
        "FeedClient('http://no-such-host.invalid:8000', flush_interval=30).log(tool_name='lost')\n"
    )
    result = _python(code, {})
    assert result.stderr.count("\n") == 1, result.stderr
    assert "1 events not sent before close" in result.stderr
    assert "no-such-host.invalid" in result.stderr
    assert result.stdout == ""


def test_exit_flushes_to_a_url_with_a_host_name(sqlite_feed: LiveServer) -> None:
    # Looking the name up at exit, when Python's thread pool no longer takes work, killed the worker.
    code = (
        "import sys; from activity_feed import log_mcp_tool_call as log\n"
        "print(log('by_name'), end='', file=sys.stderr)"
    )
    result = _python(code, {"ACTIVITY_FEED_URL": f"http://localhost:{sqlite_feed.port}"})
    assert get_event(sqlite_feed.url, result.stderr.strip(), timeout=1)["tool_name"] == "by_name"


def test_without_a_url_the_helpers_do_nothing_and_say_so_once_on_stderr() -> None:
    code = (
        "from activity_feed import log_mcp_tool_call, update_mcp_tool_result\n"
        "for _ in range(3):\n"
        "    update_mcp_tool_result(log_mcp_tool_call('t', arguments={'a': 1}), result='r')\n"
    )
    result = _python(code, {})
    assert result.stdout == ""
    assert result.stderr.count("ACTIVITY_FEED_URL is not set") == 1


@pytest.fixture
def default_client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    set_default_client(None)
    yield
    get_default_client().close(timeout=1)
    set_default_client(None)


def test_the_helpers_send_through_the_default_client(
    sqlite_feed: LiveServer, monkeypatch: pytest.MonkeyPatch, default_client_env: None
) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_URL", sqlite_feed.url)
    event_id = log_mcp_tool_call(
        "search_properties", arguments={"city": "York", "api_key": "k"}, user_source="Claude Desktop"
    )
    update_mcp_tool_result(event_id, result="2 found", duration_ms=8)
    assert get_default_client().flush(timeout=5)
    event = get_event(sqlite_feed.url, event_id)
    assert (event["tool_name"], event["status"], event["duration_ms"]) == ("search_properties", "success", 8)
    assert event["data"] == {
        "arguments": {"city": "York", "api_key": "[REDACTED]"},
        "result": "2 found",
        "redacted": ["arguments.api_key"],
    }


def test_a_disabled_client_returns_ids_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, default_client_env: None
) -> None:
    monkeypatch.delenv("ACTIVITY_FEED_URL", raising=False)
    monkeypatch.setattr(feed_client, "_warned_no_url", False)
    with caplog.at_level(logging.WARNING, logger="activity_feed.client"):
        ids = {log_mcp_tool_call("t") for _ in range(3)}
        FeedClient()
    assert len(ids) == 3
    assert get_default_client().enabled is False
    assert get_default_client().flush(timeout=0.1)
    assert [r.getMessage() for r in caplog.records].count(
        "activity feed: ACTIVITY_FEED_URL is not set, so events are not sent anywhere"
    ) == 1
    assert default.get_default_client() is get_default_client()


def test_the_helpers_never_raise_for_a_token_from_the_environment_that_cannot_be_sent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, default_client_env: None
) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ACTIVITY_FEED_TOKEN", "tökén")
    with caplog.at_level(logging.WARNING, logger="activity_feed.client"):
        ids = {log_mcp_tool_call("t") for _ in range(3)}
    assert len(ids) == 3
    assert get_default_client().enabled is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [
        "activity feed: ACTIVITY_FEED_TOKEN cannot be sent in an HTTP header: its character 2 is not ASCII; "
        "use visible ASCII only (letters, digits, punctuation), without spaces; events are not sent"
    ]


def test_nothing_is_written_to_stdout(
    make_client: Callable[..., FeedClient], capfd: pytest.CaptureFixture[str]
) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", max_queue_events=5, max_backoff=0.05)
    for _ in range(10):
        client.log(tool_name="quiet", data={"password": "x"})
    client.update("not-a-uuid", status="success")
    wait_until(lambda: client.retried > 0, what="a failed attempt")
    client.close(timeout=0.2)
    assert capfd.readouterr().out == ""


async def test_client_sink_reports_a_fastapi_apps_requests_to_a_remote_feed(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    app = FastAPI()

    @app.get("/properties/{property_id}")
    async def get_property(property_id: int) -> dict[str, int]:
        return {"id": property_id}

    app.add_middleware(ActivityLoggerMiddleware, sink=ClientSink(client), user_source="property-api")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        response = await http.get("/properties/7", headers={"X-Request-ID": "req-1"})
    assert response.json() == {"id": 7}
    assert client.flush(timeout=5)
    async with httpx.AsyncClient(base_url=sqlite_feed.url) as feed:
        events = (await feed.get("/activities/recent", params={"correlation_id": "req-1"})).json()
    assert len(events) == 1
    assert events[0]["tool_name"] == "GET /properties/{property_id}"
    assert events[0]["event_type"] == "api_request"
    assert events[0]["user_source"] == "property-api"
    assert events[0]["data"]["status_code"] == 200
