"""Durations as settings and `prune --older-than` take them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from activity_feed.durations import format_duration, parse_duration
from activity_feed.settings import Settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("10m", timedelta(minutes=10)),
        ("45s", timedelta(seconds=45)),
        ("600", timedelta(minutes=10)),
        ("1.5h", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
        ("0", timedelta(0)),
    ],
)
def test_parse_duration_takes_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "30x", "-5m", "10 minutes", "1e3", "30d12h"])
def test_parse_duration_refuses_anything_else_and_says_what_works(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: .* \(use a number with s, m, h or d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999d", "1000000000d", "9" * 400, "9" * 400 + "s"])
def test_parse_duration_refuses_a_duration_too_long_to_hold_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"^too long a duration: '\d+.*' \(at most 999999999d\)$"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1e400s", "nan", "inf", "-inf", "infs"])
def test_parse_duration_refuses_exponents_and_non_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(600, "10m"), (86400 * 30, "30d"), (7200, "2h"), (90, "90s"), (0.5, "0.5s")]
)
def test_format_duration_uses_the_largest_exact_unit(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_settings_take_durations_as_text_or_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_PENDING_TIMEOUT", "2m")
    monkeypatch.setenv("ACTIVITY_FEED_MAINTENANCE_INTERVAL", "15")
    settings = Settings()
    assert settings.pending_timeout == timedelta(minutes=2)
    assert settings.maintenance_interval == timedelta(seconds=15)
    assert Settings(pending_timeout=0).pending_timeout == timedelta(0)


def test_settings_refuse_a_bad_duration_or_a_zero_interval() -> None:
    with pytest.raises(ValidationError, match="not a duration"):
        Settings(pending_timeout="soon")
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings(maintenance_interval="0s")
