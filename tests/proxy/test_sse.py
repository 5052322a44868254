"""The SSE reader that turns copies of a relayed stream into the messages it carried, however the
stream was cut into chunks."""

from __future__ import annotations

import pytest

from activity_feed.proxy.lines import Oversized
from activity_feed.proxy.sse import SseParser

STREAM = (
    b": a comment\n"
    b"retry: 1000\n"
    b"id: 1\n"
    b'data: {"a":1}\n'
    b"\n"
    b"event: message\r\n"
    b'data: {"b":\r\n'
    b"data:2}\r\n"
    b"\r\n"
    b"event: ping\n"
    b"data: not a message\n"
    b"\n"
    b'data: {"c":3}\r'
    b"\r"
    b"data: no blank line after it"
)
EXPECTED = [b'{"a":1}', b'{"b":\n2}', b'{"c":3}']


def read(chunks: list[bytes], max_event_bytes: int = 1 << 20) -> list[object]:
    parser = SseParser(max_event_bytes)
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_events_whole() -> None:
    assert read([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_events_in_chunks_of_any_size(size: int) -> None:
    chunks = [STREAM[start : start + size] for start in range(0, len(STREAM), size)]
    assert read(chunks) == EXPECTED


def test_an_event_too_large_is_known_by_its_edges() -> None:
    data = b'{"jsonrpc":"2.0","id":12,"result":{"text":"' + b"y" * 5000 + b'"}}'
    stream = b"data: " + data + b"\n\ndata: {}\n\n"
    for size in (len(stream), 100, 1):
        chunks = [stream[start : start + size] for start in range(0, len(stream), size)]
        big, small = read(chunks, max_event_bytes=1000)
        assert isinstance(big, Oversized)
        assert big.size == len(data)
        assert big.head.startswith(b'{"jsonrpc":"2.0","id":12,')
        assert data.endswith(big.tail)
        assert small == b"{}"
