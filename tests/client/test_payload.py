"""What the worker writes for each event, made the quick way: ids, timestamps and pre-serialised values
come out as the slow way makes them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import orjson

from activity_feed.client.payload import Serialised, dumps, new_event_id, utc_text


def test_new_event_id_is_a_uuid7_of_the_given_millisecond() -> None:
    rng = random.Random(7)
    seen: set[str] = set()
    for _ in range(2000):
        unix_ms = rng.choice([rng.randrange(2**48), 1_767_225_600_000 + rng.randrange(3)])
        text = new_event_id(unix_ms)
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert parsed.int >> 80 == unix_ms
        seen.add(text)
    assert len(seen) == 2000  # many share a millisecond, none an id


def test_utc_text_is_isoformat_to_the_nearest_microsecond() -> None:
    rng = random.Random(11)
    stamps = [0, 999, 1_000, 1_499, 1_500, 999_999_499, 999_999_500, 1_767_225_600_000_000_000]
    stamps += [rng.randrange(4 * 10**18) for _ in range(3000)]
    stamps += [rng.randrange(4 * 10**9) * 10**9 for _ in range(200)]  # whole seconds: no fraction
    stamps += [1_767_225_600 * 10**9 + rng.randrange(3 * 10**9) for _ in range(3000)]  # seconds in turn
    for unix_ns in stamps:
        micros = (unix_ns + 500) // 1000
        expected = datetime.fromtimestamp(micros // 10**6, UTC).replace(microsecond=micros % 10**6)
        assert utc_text(unix_ns) == expected.isoformat(), unix_ns


def test_a_serialised_value_is_written_as_it_is_whichever_serialiser_runs() -> None:
    value = {"method": "tools/call", "request_id": 7, "client": {"name": "c", "version": None}}
    for extra in ({}, {"big": 2**70}, {1: "a key that is no text"}):  # orjson, its fallbacks, json
        event = {"data": {"mcp": Serialised(orjson.dumps(value)), **extra}}
        written = orjson.loads(dumps(event))
        assert written["data"]["mcp"] == value
