"""`since` of the statistics endpoints read on its own: durations back from now, ISO times, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.exceptions import RequestValidationError

from activity_feed.api.since import parse_since

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("24H", NOW - timedelta(hours=24)),
        (" 7d ", NOW - timedelta(days=7)),
        ("1.5h", NOW - timedelta(minutes=90)),
        # A bare number is seconds, as every duration of the product, not a Unix time.
        ("900", NOW - timedelta(minutes=15)),
        (" 60 ", NOW - timedelta(minutes=1)),
        ("1.5", NOW - timedelta(seconds=1.5)),
        ("0", NOW),
        ("2026-11-30T08:00:00Z", datetime(2026, 11, 30, 8, tzinfo=UTC)),
        ("2026-11-30T10:00:00+02:00", datetime(2026, 11, 30, 8, tzinfo=UTC)),
        ("2026-11-30T08:00:00", datetime(2026, 11, 30, 8, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
    ],
)
def test_since_reads_a_duration_or_a_time(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("yesterday", "not a time or a duration"),
        ("-5m", "not a time or a duration"),
        ("5 minutes", "not a time or a duration"),
        ("", "not a time or a duration"),
        ("999999999999d", "too long a duration"),
        ("999999999999", "too long a duration"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_a_bad_since_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_since(text, now=NOW)

    [error] = caught.value.errors()
    assert error["loc"] == ("query", "since")
    assert says in error["msg"]
