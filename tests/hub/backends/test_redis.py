"""The Redis bus against real Redis servers: the shared one (a channel of each test's own) for delivery, and
a `redis-server` of the test's own, killed and started again, for outages."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

import orjson
import pytest
from redis.asyncio import Redis

from activity_feed.errors import ConfigurationError
from activity_feed.hub.backends import BusUnavailableError, Gap, MemoryBackend, backend_for_url
from activity_feed.hub.backends.redis import DEFAULT_CHANNEL, RedisBackend, display_url, split_channel
from activity_feed.hub.notice import Notice
from tests.support.redis import RedisServer, require_redis, unique_channel

WAIT_SECONDS = 10.0
SUBSCRIBED = Gap("subscribed")
Item: TypeAlias = Sequence[Notice] | Gap


def notice(seq: int, tool_name: str = "search_properties") -> Notice:
    event = {"id": f"0190b3c4-0000-7000-8000-{seq:012d}", "tool_name": tool_name}
    text = orjson.dumps({"type": "activity_logged", "event": event, "cursor": str(seq)}).decode()
    return Notice(seq=seq, type="activity_logged", text=text)


def texts(notices: Sequence[Notice]) -> list[str]:
    return [item.text for item in notices]


class Listener:
    """`backend.listen()` drained by a task into a queue, so a test can wait for what it expects."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.items: asyncio.Queue[Item] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.backend.listen():
            self.items.put_nowait(item)

    async def next_matching(self, wanted: Callable[[Item], bool]) -> Item:
        """The next item for which `wanted` is true; the ones before it are dropped."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not wanted(item := await self.items.get()):
                pass
        return item

    async def messages(self, count: int) -> list[list[str]]:
        """The texts of the next `count` messages, failing on a `Gap` in between (none is expected)."""
        received: list[list[str]] = []
        async with asyncio.timeout(WAIT_SECONDS):
            while len(received) < count:
                item = await self.items.get()
                assert not isinstance(item, Gap), f"unexpected {item} after {len(received)} messages"
                received.append(texts(item))
        return received

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


Open = Callable[[str], Awaitable[tuple[RedisBackend, Listener]]]


@pytest.fixture
async def open_backend() -> AsyncIterator[Open]:
    """Connect a backend to a URL and start listening; everything is stopped after the test."""
    opened: list[tuple[RedisBackend, Listener]] = []

    async def open_(url: str) -> tuple[RedisBackend, Listener]:
        backend = RedisBackend(url)
        await backend.connect()
        opened.append((backend, Listener(backend)))
        return opened[-1]

    yield open_
    for backend, listener in opened:
        await listener.stop()
        await backend.disconnect()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with a password (so that the tests see it never shows); not
    started: the test starts, kills and restarts it."""
    server = RedisServer(tmp_path / "redis.log", password="s3cret-pw")
    yield server
    server.kill()


def test_channel_comes_from_the_url_and_is_removed_from_it() -> None:
    assert split_channel("redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", DEFAULT_CHANNEL)
    assert split_channel("rediss://h:6380/2?channel=feed:prod&ssl_cert_reqs=none") == (
        "rediss://h:6380/2?ssl_cert_reqs=none",
        "feed:prod",
    )
    assert RedisBackend("redis://h/0?channel=a", channel="b").channel == "b"


def test_password_never_shows() -> None:
    assert display_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert display_url("rediss://user:s3cret@h/0") == "rediss://user:***@h/0"
    assert display_url("redis://h:6379/0") == "redis://h:6379/0"
    backend = RedisBackend("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in (backend.problem or "")
    assert "s3cret" not in backend.display_url


def test_backend_is_chosen_by_url_scheme() -> None:
    assert isinstance(backend_for_url("memory://"), MemoryBackend)
    assert isinstance(backend_for_url("redis://127.0.0.1:6379/0"), RedisBackend)
    assert isinstance(backend_for_url("rediss://127.0.0.1:6380/0"), RedisBackend)
    with pytest.raises(ConfigurationError, match="memory:// or redis://") as refused:
        backend_for_url("kafka://user:s3cret@127.0.0.1:9092")
    assert "s3cret" not in str(refused.value)


def test_missing_redis_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on an install without the extra: `import redis` fails, and the backend module with it.
    monkeypatch.delitem(sys.modules, "activity_feed.hub.backends.redis")
    for name in [name for name in sys.modules if name == "redis" or name.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError, match=r"pip install '\.\[redis\]' in Activity Feed's folder"):
        backend_for_url("redis://127.0.0.1:6379/0")


async def test_messages_reach_every_subscriber_in_order(open_backend: Open) -> None:
    url = f"{require_redis()}?channel={unique_channel()}"
    publisher, first = await open_backend(url)
    other, second = await open_backend(url)
    for listener in (first, second):
        assert await listener.next_matching(lambda item: isinstance(item, Gap)) == SUBSCRIBED
    assert publisher.problem is None
    assert other.problem is None

    # One notice per message, and one transaction's many notices in one message.
    messages = [[notice(n)] for n in range(1, 50)] + [[notice(n) for n in range(50, 80)]]
    for message in messages:
        await publisher.publish(message)

    sent = [texts(message) for message in messages]
    assert await first.messages(len(messages)) == sent
    assert await second.messages(len(messages)) == sent


@pytest.mark.parametrize(
    "garbage",
    [
        b"not json",
        b"[1, 2, 3]",
        b'{"type": "activity_logged", "event": {}}',
        b'{"type": "activity_logged", "event": {}, "cursor": "abc"}',
        b"\xff\xfe",
    ],
)
async def test_malformed_lines_on_the_channel_are_skipped(open_backend: Open, garbage: bytes) -> None:
    channel = unique_channel()
    _, listener = await open_backend(f"{require_redis()}?channel={channel}")
    assert await listener.next_matching(lambda item: isinstance(item, Gap)) == SUBSCRIBED
    good = notice(7)
    async with Redis.from_url(require_redis()) as foreign:  # whatever else publishes on the channel
        await foreign.publish(channel, garbage)
        await foreign.publish(channel, garbage + b"\n" + good.text.encode())

    assert await listener.messages(1) == [[good.text]]
    assert listener.items.empty()


async def test_starts_while_redis_is_down_and_subscribes_when_it_comes(
    open_backend: Open, redis_server: RedisServer
) -> None:
    backend, listener = await open_backend(redis_server.url(unique_channel()))

    gap = await listener.next_matching(lambda item: isinstance(item, Gap))
    assert isinstance(gap, Gap)
    assert gap.reason.startswith("cannot subscribe")
    assert backend.problem is not None
    assert backend.problem.startswith(
        f"no subscription to Redis at redis://:***@127.0.0.1:{redis_server.port}/0"
    )
    with pytest.raises(BusUnavailableError):
        await backend.publish([notice(1)])

    redis_server.start()
    assert await listener.next_matching(lambda item: item == SUBSCRIBED) == SUBSCRIBED
    await backend.publish([notice(2)])
    heard = await listener.next_matching(lambda item: not isinstance(item, Gap))
    assert not isinstance(heard, Gap)
    assert texts(heard) == [notice(2).text]
    assert backend.problem is None


async def test_outage_is_a_problem_and_a_gap_until_redis_is_back(
    open_backend: Open, redis_server: RedisServer
) -> None:
    redis_server.start()
    backend, listener = await open_backend(redis_server.url(unique_channel()))
    assert await listener.next_matching(lambda item: isinstance(item, Gap)) == SUBSCRIBED
    await backend.publish([notice(1)])
    assert await listener.messages(1) == [[notice(1).text]]

    redis_server.kill()
    lost = await listener.next_matching(lambda item: isinstance(item, Gap))
    assert isinstance(lost, Gap)
    assert lost.reason.startswith("subscription lost")
    with pytest.raises(BusUnavailableError) as refused:
        await backend.publish([notice(2)])
    for text in (str(refused.value), backend.problem or "", lost.reason):
        assert f"127.0.0.1:{redis_server.port}" in text
        assert "s3cret" not in text
    # While it stays down, every retry says again that messages may be missing (the hub reads the
    # database each time).
    again = await listener.next_matching(lambda item: isinstance(item, Gap))
    assert isinstance(again, Gap)
    assert again.reason.startswith("cannot subscribe")

    redis_server.start()  # same port, empty: whatever was published during the outage is gone
    assert await listener.next_matching(lambda item: item == SUBSCRIBED) == SUBSCRIBED
    await backend.publish([notice(3)])
    assert await listener.messages(1) == [[notice(3).text]]
    assert backend.problem is None


async def test_a_redis_that_stops_answering_is_noticed(redis_server: RedisServer) -> None:
    redis_server.start()
    silence = 0.2
    backend = RedisBackend(redis_server.url(unique_channel()), silence_seconds=silence)
    await backend.connect()
    listener = Listener(backend)
    try:
        assert await listener.next_matching(lambda item: isinstance(item, Gap)) == SUBSCRIBED
        # Quiet but there: its answers to the PINGs keep the subscription.
        await asyncio.sleep(silence * 6)
        await backend.publish([notice(1)])
        assert await listener.messages(1) == [[notice(1).text]]

        redis_server.pause()  # the connection stays open; nothing answers
        lost = await listener.next_matching(lambda item: isinstance(item, Gap))
        assert isinstance(lost, Gap)
        assert "did not answer a PING" in lost.reason
        assert backend.problem is not None

        redis_server.resume()
        assert await listener.next_matching(lambda item: item == SUBSCRIBED) == SUBSCRIBED
        assert backend.problem is None
    finally:
        redis_server.resume()
        await listener.stop()
        await backend.disconnect()


async def test_disconnect_ends_listening(open_backend: Open) -> None:
    backend, listener = await open_backend(f"{require_redis()}?channel={unique_channel()}")
    assert await listener.next_matching(lambda item: isinstance(item, Gap)) == SUBSCRIBED
    await backend.disconnect()
    async with asyncio.timeout(WAIT_SECONDS):
        await listener.task
