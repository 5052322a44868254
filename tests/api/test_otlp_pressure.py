"""`POST /v1/traces` when the database cannot keep up: 429 while the writer is behind, 503 while the
database does not answer, both with `Retry-After`, as OTLP exporters expect before they retry. Another
connection holds the change counter's lock, which every write transaction takes first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import httpx
from google.rpc.status_pb2 import Status
from sqlalchemy.engine import make_url

from activity_feed.settings import Settings
from tests.otlp.exporters import protobuf_body
from tests.otlp.spans import SpanMaker, call_spans
from tests.support.server import LiveServer

WAIT_SECONDS = 4.0
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@asynccontextmanager
async def writes_blocked(url: str) -> AsyncIterator[None]:
    """Hold the change counter's row lock until the block ends."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute("SELECT value FROM activity_change_counter WHERE id = 1 FOR UPDATE")
            yield
    finally:
        await conn.close()


def export() -> bytes:
    return protobuf_body(list(call_spans(SpanMaker("client"), SpanMaker("server"))))


async def test_a_writer_behind_answers_429_with_retry_after(
    postgres_url: str, live_server: Callable[..., LiveServer]
) -> None:
    # One item per transaction: the writer is "behind" once more than ten wait.
    settings = Settings(database_url=postgres_url, broadcast_url="memory://", write_batch_size=1)
    server = live_server(settings)
    events = {"events": [{"event_type": "tool_call", "tool_name": f"t{n}"} for n in range(20)]}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        async with writes_blocked(postgres_url):
            waiting = [asyncio.create_task(http.post("/activities/batch", json=events)) for _ in range(2)]
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                assert time.monotonic() < deadline, "the writer never fell behind"
                try:
                    answer = await http.post("/v1/traces", content=export(), headers=PROTOBUF, timeout=0.3)
                except httpx.TimeoutException:
                    continue  # taken into the queue: it waits for the lock like the others
                if answer.status_code == 429:
                    break
        assert answer.headers["retry-after"] == "1"
        assert Status.FromString(answer.content).message == "the feed is behind with its writes; retry later"
        assert {(await task).status_code for task in waiting} <= {200, 503}
        # Once the writer has caught up, exports are taken again.
        assert (await http.post("/v1/traces", content=export(), headers=PROTOBUF)).status_code == 200


async def test_a_database_that_does_not_answer_gets_503_with_retry_after(
    postgres_url: str, live_server: Callable[..., LiveServer]
) -> None:
    settings = Settings(
        database_url=postgres_url, broadcast_url="memory://", database_timeout=timedelta(seconds=1)
    )
    server = live_server(settings)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        async with writes_blocked(postgres_url):
            answer = await http.post("/v1/traces", content=export(), headers=PROTOBUF)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert Status.FromString(answer.content).message.endswith("; retry later")
        assert (await http.post("/v1/traces", content=export(), headers=PROTOBUF)).status_code == 200
