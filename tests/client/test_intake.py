"""The hand-off from the caller's thread to the worker's: redaction and serialisation run on the worker,
updates fold into their creates as the server would apply them, and what a call recorded cannot be
changed afterwards by replacing keys of the caller's `data`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from activity_feed.client import FeedClient
from activity_feed.client.intake import Call, CreateCall, UpdateCall, fold_updates
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
    assert client.dropped == {"queue_full": 0, "too_large": 0, "rejected": 0, "gave_up": 0}
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


def test_a_tool_calls_end_folds_into_its_start_by_handle_until_the_start_is_admitted() -> None:
    started = _create(None, started_ns=1_764_000_000_000_000_000, timestamp=None)
    already_admitted = _create(None, timestamp=None)
    already_admitted.id = "admitted-earlier"
    calls: list[Call] = [
        started,
        _update(None, status="success", duration_ms=3.0, create=started),
        _update(None, status="error", create=already_admitted),
    ]

    folded = fold_updates(calls)

    assert folded == [started, calls[2]]
    assert (started.status, started.duration_ms) == ("success", 3.0)
