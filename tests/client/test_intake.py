"""The hand-off from the caller's thread to the worker's: redaction and serialisation run on the worker,
updates fold into their creates as the server would apply them, a tool call's record carries its own
end, and what a call recorded cannot be changed afterwards by replacing keys of the caller's `data`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from activity_feed.client import FeedClient
from activity_feed.client.counters import DROP_REASONS
from activity_feed.client.intake import Call, CallRecord, CreateCall, Intake, UpdateCall, fold_updates
from activity_feed.redaction import Redactor
from tests.client.remotes import get_event, wait_until
from tests.support.server import LiveServer


class ThreadRecordingRedactor(Redactor):
    """A real redactor that also notes which threads it ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def redact(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        self.threads.add(threading.current_thread().name)
        return super().redact(data)


def test_redaction_runs_on_the_worker_thread_not_the_callers(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    redactor = ThreadRecordingRedactor()
    client = make_client(sqlite_feed.url, redactor=redactor)

    event_id = client.log(tool_name="login", data={"arguments": {"password": "hunter2"}})
    wait_until(lambda: client.sent == 1, what="the event sent by the worker alone")

    assert redactor.threads == {"activity-feed-client"}
    assert get_event(sqlite_feed.url, event_id)["data"]["arguments"]["password"] != "hunter2"


def test_replacing_keys_of_data_after_the_call_does_not_change_the_event(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    data: dict[str, Any] = {"arguments": {"city": "Leeds"}, "step": 1}

    event_id = client.log(tool_name="search", data=data)
    data["step"] = 2
    data["added"] = True
    assert client.flush(timeout=5)

    assert get_event(sqlite_feed.url, event_id)["data"] == {"arguments": {"city": "Leeds"}, "step": 1}


def test_calls_from_many_threads_are_all_admitted_exactly_once(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, batch_size=50)
    ids: list[str] = []
    lock = threading.Lock()

    def call_many() -> None:
        for i in range(200):
            event_id = client.log(tool_name="threads", data={"i": i})
            client.update(event_id, status="success", duration_ms=1.0)
            with lock:
                ids.append(event_id)

    threads = [threading.Thread(target=call_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert client.flush(timeout=10)
    assert len(ids) == 800
    assert client.dropped == dict.fromkeys(DROP_REASONS, 0)
    # A create and its update merged or not, every call reached the service: 800 events, all finished.
    assert 800 <= client.sent <= 1600
    for event_id in ids[::97]:
        assert get_event(sqlite_feed.url, event_id)["status"] == "success"


def _create(event_id: str, **fields: Any) -> CreateCall:
    values: dict[str, Any] = {
        "event_type": "tool_call",
        "status": "pending",
        "tool_name": "t",
        "user_source": None,
        "data": None,
        "duration_ms": None,
        "error_message": None,
        "correlation_id": None,
        "timestamp": "2026-11-26T10:00:00+00:00",
    }
    return CreateCall(id=event_id, **{**values, **fields})


def _update(event_id: str, **fields: Any) -> UpdateCall:
    values: dict[str, Any] = {"status": None, "duration_ms": None, "error_message": None, "data": None}
    return UpdateCall(id=event_id, **{**values, **fields})


def test_updates_fold_into_their_create_as_the_server_would_apply_them() -> None:
    calls: list[Call] = [
        _create("a", data={"arguments": {"q": 1}, "step": 1}),
        _update("b", status="success"),  # its create was sent earlier: stays an update, in place
        _update("a", status="error", error_message="boom", data={"step": 2}),
        _create("c"),
        _update("a", status="success", duration_ms=12.5, data={"result": "ok"}),
    ]

    folded = fold_updates(calls)

    assert [(type(call).__name__, call.id) for call in folded] == [
        ("CreateCall", "a"),
        ("UpdateCall", "b"),
        ("CreateCall", "c"),
    ]
    first = folded[0]
    assert isinstance(first, CreateCall)
    assert first.status == "success"
    assert first.duration_ms == 12.5
    assert first.error_message == "boom"  # an update that does not name a field leaves it as it was
    assert first.data == {"arguments": {"q": 1}, "step": 2, "result": "ok"}


class StdioDetails:
    """More `data` for a call, read on the worker's thread, as the MCP middleware's are."""

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return {"mcp": {"transport": "stdio"}}


def start_search(
    client: FeedClient, name: str, user_source: str | None, arguments: dict[str, Any] | None
) -> CallRecord:
    return client.start_tool_call(name, user_source=user_source, arguments=arguments, details=StdioDetails())


def test_a_tool_call_that_ended_before_the_worker_saw_it_is_sent_as_one_finished_create(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, flush_interval=60.0)  # nothing is admitted before flush()

    call = start_search(client, "search", "Claude Desktop 1.0", {"city": "Leeds", "password": "hunter2"})
    client.end_tool_call(call, "success", 12.5, None, "3 properties")
    assert client.flush(timeout=5)

    assert client.sent == 1  # the start and the end made one item
    event = get_event(sqlite_feed.url, str(call.id))
    assert (event["status"], event["duration_ms"], event["tool_name"]) == ("success", 12.5, "search")
    assert event["user_source"] == "Claude Desktop 1.0"
    assert event["data"]["arguments"]["city"] == "Leeds"
    assert event["data"]["arguments"]["password"] != "hunter2"  # redacted on the worker
    assert event["data"]["mcp"] == {"transport": "stdio"}
    assert event["data"]["result"] == "3 properties"
    assert call.arguments is None  # the host's arguments are not kept once copied


def test_a_tool_call_seen_in_flight_is_created_pending_and_then_finished(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, flush_interval=60.0)

    call = start_search(client, "schedule_viewing", None, {"property_id": 7})
    assert client.flush(timeout=5)
    pending = get_event(sqlite_feed.url, str(call.id))
    assert (pending["status"], pending["duration_ms"]) == ("pending", None)

    client.end_tool_call(call, "error", 40.0, "ValueError: no slot left", None)
    assert client.flush(timeout=5)

    assert client.sent == 2
    ended = get_event(sqlite_feed.url, str(call.id))
    assert (ended["status"], ended["duration_ms"]) == ("error", 40.0)
    assert ended["error_message"] == "ValueError: no slot left"
    assert ended["data"] == {"arguments": {"property_id": 7}, "mcp": {"transport": "stdio"}}
    assert ended["timestamp"] == pending["timestamp"]  # the moment the call started


def test_a_tool_calls_end_handed_off_again_is_sent_once(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, flush_interval=60.0)
    call = start_search(client, "search", None, None)
    assert client.flush(timeout=5)
    client.end_tool_call(call, "success", 1.0, None, "ok")

    client.end_tool_call(call, "success", 1.0, None, "ok")  # its end, handed off once more
    assert client.flush(timeout=5)

    assert client.sent == 2
    assert get_event(sqlite_feed.url, str(call.id))["data"]["result"] == "ok"


def test_a_reader_waits_for_calls_another_thread_is_still_admitting() -> None:
    admitted: list[Call] = []
    admitting = threading.Event()
    release = threading.Event()

    def slow_admit(calls: list[Call]) -> None:
        admitting.set()
        release.wait(timeout=5)
        admitted.extend(calls)

    intake = Intake(slow_admit)
    call = _update("a", status="success")
    intake.calls.append(call)
    worker = threading.Thread(target=intake.admit_all)
    worker.start()
    assert admitting.wait(timeout=5)  # the worker has taken the call and is admitting it
    seen_by_reader: list[list[Call]] = []
    reader = threading.Thread(target=lambda: (intake.admit_all(), seen_by_reader.append(list(admitted))))
    reader.start()

    reader.join(timeout=0.2)
    assert reader.is_alive()  # flush() and the counters wait rather than miss the call
    release.set()
    reader.join(timeout=5)
    worker.join(timeout=5)
    assert seen_by_reader == [[call]]


INTAKE_BOUND = 5


@contextmanager
def worker_busy_admitting(client: FeedClient) -> Iterator[None]:
    """Hold the intake as the worker does while it admits (for long, when the host starves it). The
    counters admit what waits before they answer: read them after, not inside."""
    with client._intake._admitting:
        yield


def in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=5)
    return thread


def fill_intake(client: FeedClient, count: int) -> None:
    """Log `count` events from another thread, which must return while the intake is held."""
    filler = in_thread(lambda: [client.log(tool_name="filler") for _ in range(count)])
    assert not filler.is_alive()


def test_a_full_intake_refuses_calls_without_waiting_for_the_worker(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, max_queue_events=INTAKE_BOUND)
    ids: list[str] = []
    with worker_busy_admitting(client):
        caller = in_thread(lambda: ids.extend(client.log(tool_name=f"call-{i}") for i in range(8)))
        assert not caller.is_alive()  # every call returned while the worker still held the intake
    assert client.flush(timeout=5)

    assert client.dropped["queue_full"] == 3

    assert client.sent == INTAKE_BOUND
    assert [get_event(sqlite_feed.url, event_id)["tool_name"] for event_id in ids[:INTAKE_BOUND]] == [
        f"call-{i}" for i in range(INTAKE_BOUND)
    ]
    assert httpx.get(f"{sqlite_feed.url}/activities/{ids[-1]}", timeout=5).status_code == 404


def test_a_tool_call_refused_at_its_start_is_counted_once(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, max_queue_events=INTAKE_BOUND)
    with worker_busy_admitting(client):
        fill_intake(client, INTAKE_BOUND)
        call = start_search(client, "search", None, None)
        client.end_tool_call(call, "success", 2.0, None, "ok")
    assert client.flush(timeout=5)

    assert client.sent == INTAKE_BOUND
    assert client.dropped["queue_full"] == 1
    assert call.id is None  # never admitted


def test_the_end_of_a_call_whose_start_waits_in_a_full_intake_goes_with_it(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url, max_queue_events=INTAKE_BOUND)
    with worker_busy_admitting(client):
        fill_intake(client, INTAKE_BOUND - 1)
        call = start_search(client, "search", None, None)  # the last place in the intake
        client.end_tool_call(call, "success", 2.0, None, "ok")  # refused, but nothing is lost
    assert client.flush(timeout=5)

    assert client.dropped["queue_full"] == 0
    event = get_event(sqlite_feed.url, str(call.id))
    assert (event["status"], event["duration_ms"], event["data"]["result"]) == ("success", 2.0, "ok")


class McpLikeDetails:
    """Details that place the arguments in a mapping of their own, as the MCP middleware's do."""

    def extra_data(self, arguments: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return {"mcp": {"method": "resources/read", "arguments": arguments}}


class Outcome:
    def outcome_data(self, result_preview: str | None) -> Mapping[str, Any]:
        return {"mcp": {"result": result_preview, "error": {"code": -32002, "message": "gone"}}}


@pytest.mark.parametrize("in_flight", [False, True])
def test_any_call_goes_the_fast_way_with_its_session_trace_and_outcome(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient], in_flight: bool
) -> None:
    client = make_client(sqlite_feed.url, flush_interval=60.0)
    call = client.start_call(
        "resources/read",
        event_type="mcp_request",
        user_source="Claude Desktop 0.9.2",
        arguments={"uri": "props://portfolio", "token": "hunter2"},
        details=McpLikeDetails(),
        session_id="session-1",
        correlation_id="0af7651916cd43dd8448eb211c80319c",
    )
    if in_flight:  # the start is sent on its own, the end as an update
        assert client.flush(timeout=5)
        assert get_event(sqlite_feed.url, str(call.id))["status"] == "pending"
    client.end_call(call, "error", 3.0, "gone", "the portfolio", Outcome())
    assert client.flush(timeout=5)

    event = get_event(sqlite_feed.url, str(call.id))
    assert (event["event_type"], event["status"], event["error_message"]) == ("mcp_request", "error", "gone")
    assert (event["session_id"], event["correlation_id"]) == ("session-1", "0af7651916cd43dd8448eb211c80319c")
    assert "arguments" not in event["data"]  # only a tool call's go in `data.arguments`
    assert "result" not in event["data"]  # the outcome placed the preview
    assert event["data"]["mcp"] == {
        "method": "resources/read",  # kept: the update extends the start's `mcp`
        "arguments": {"uri": "props://portfolio", "token": "[REDACTED]"},
        "result": "the portfolio",
        "error": {"code": -32002, "message": "gone"},
    }
    assert client.sent == (2 if in_flight else 1)
