"""Lines out of relayed chunks: split anywhere, blank lines left out, long lines not kept, gaps."""

from __future__ import annotations

from activity_feed.proxy.lines import EDGE_BYTES, LineSplitter, Oversized


def split(splitter: LineSplitter, *chunks: bytes) -> list[object]:
    return [line for chunk in chunks for line in splitter.feed(chunk)]


def test_lines_split_across_and_within_chunks() -> None:
    splitter = LineSplitter(1000)
    assert split(splitter, b'{"a"', b":1}\n{", b'"b":2}\n{"c":3}\n\n  \n', b"partial") == [
        b'{"a":1}',
        b'{"b":2}',
        b'{"c":3}',
    ]
    assert split(splitter, b" end\n") == [b"partial end"]


def test_a_line_too_long_is_kept_as_its_edges_and_size() -> None:
    splitter = LineSplitter(10_000)
    line = b"H" * EDGE_BYTES + b"m" * 20_000 + b"T" * EDGE_BYTES
    found = split(splitter, line[:5000], line[5000:15_000], line[15_000:] + b"\nnext\n")
    assert found == [Oversized(b"H" * EDGE_BYTES, b"T" * EDGE_BYTES, len(line)), b"next"]


def test_a_long_line_in_one_chunk() -> None:
    splitter = LineSplitter(100)
    line = b"x" * 101
    assert split(splitter, line + b"\nok\n") == [Oversized(line[:EDGE_BYTES], line[-EDGE_BYTES:], 101), b"ok"]


def test_after_a_gap_the_cut_line_is_skipped() -> None:
    splitter = LineSplitter(1000)
    assert split(splitter, b"whole\nstart of a line") == [b"whole"]
    splitter.lost()
    assert split(splitter, b"rest of some line\nafter\n") == [b"after"]
