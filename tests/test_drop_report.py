"""The drop report's headers: written only once something was dropped, read back as written, and
anything else in them (reasons the service does not know, counts that are no counts, a source that
cannot be a header) left out rather than refused: the batch they ride on matters more."""

from __future__ import annotations

import os

import pytest

from activity_feed.drop_report import DROP_REASONS, default_source, read_report, report_headers


def raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode("utf-8")) for name, value in headers.items()]


def test_nothing_is_reported_until_something_is_dropped() -> None:
    assert report_headers("a@b/1", dict.fromkeys(DROP_REASONS, 0)) == {}
    assert read_report(raw({"content-type": "application/json"})) is None


def test_the_totals_read_back_as_they_were_written() -> None:
    headers = report_headers(default_source(), {"queue_full": 3, "too_large": 0, "gave_up": 120})

    assert read_report(raw(headers)) == (default_source(), {"queue_full": 3, "gave_up": 120})


def test_the_default_source_is_this_process_in_header_characters() -> None:
    source = default_source()
    assert source.endswith(f"/{os.getpid()}")
    assert all("!" <= char <= "~" for char in source)


@pytest.mark.parametrize(
    ("dropped", "totals"),
    [
        ("queue_full=2,bogus=5", {"queue_full": 2}),
        ("queue_full=-2, gave_up=x, rejected=²", None),
        ("gave_up=1234567890123456", None),  # more digits than any real count
        (" rejected=4 , bad_response=1", {"rejected": 4, "bad_response": 1}),
    ],
)
def test_what_the_service_does_not_read_is_left_out(dropped: str, totals: dict[str, int] | None) -> None:
    report = read_report(raw({"Activity-Feed-Source": "a@b/1", "Activity-Feed-Dropped": dropped}))

    assert report == (None if totals is None else ("a@b/1", totals))


@pytest.mark.parametrize("source", ["", "has space", "x" * 201, "naïve"])
def test_a_source_that_cannot_be_a_label_of_ours_is_not_read(source: str) -> None:
    assert read_report(raw({"Activity-Feed-Source": source, "Activity-Feed-Dropped": "queue_full=1"})) is None
