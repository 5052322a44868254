"""`FeedReader` against a real server: pages, filters, and a message a person can act on for each failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from activity_feed.api import create_app
from activity_feed.client.reader import PAGE_LIMIT, FeedReader, FeedReadError, feed_url_from, token_from
from activity_feed.settings import Settings
from tests.support.server import LiveServer, free_port

pytestmark = pytest.mark.anyio


def _sqlite(tmp_path: Path, **fields: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", **fields)  # type: ignore[arg-type]


async def test_pages_walk_every_matching_event_newest_first(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(_sqlite(tmp_path))
    items = [
        {
            "tool_name": "paged" if n % 3 else "other",
            "event_type": "tool_call",
            "timestamp": f"2026-01-01T00:{n // 60:02}:{n % 60:02}Z",
        }
        for n in range(1200)
    ]
    async with httpx.AsyncClient(base_url=server.url) as http:
        for start in range(0, len(items), 1000):
            answer = await http.post("/activities/batch", json={"events": items[start : start + 1000]})
            assert answer.is_success, answer.text[:300]
    async with FeedReader(server.url) as feed:
        pages = [page async for page in feed.pages(tool_name="paged")]
    events = [event for page in pages for event in page]
    assert max(len(page) for page in pages) == PAGE_LIMIT
    assert len(events) == 800
    assert len({event["id"] for event in events}) == 800
    stamps = [event["timestamp"] for event in events]
    assert stamps == sorted(stamps, reverse=True)


async def test_a_refused_token_and_an_absent_feed_say_so(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(_sqlite(tmp_path, token="write-token"))
    async with FeedReader(server.url, token="wrong") as feed:
        with pytest.raises(FeedReadError, match="the token was refused") as refused:
            await feed.recent()
    assert refused.value.refused
    async with FeedReader(server.url, token="") as feed:
        with pytest.raises(FeedReadError, match="no token was given"):
            await feed.recent()
    async with FeedReader(server.url, token="write-token") as feed:
        assert await feed.recent() == []
        with pytest.raises(FeedReadError, match=r"answered 422 .*since: not a time or a duration") as bad:
            await feed.recent(since="yesterday")
        assert bad.value.status == 422
        assert not bad.value.refused
    async with FeedReader(f"http://127.0.0.1:{free_port()}") as feed:
        with pytest.raises(FeedReadError, match=r"cannot reach the feed at http://127\.0\.0\.1:") as absent:
            await feed.recent()
    assert absent.value.status is None


def test_url_and_token_come_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIVITY_FEED_URL", raising=False)
    monkeypatch.delenv("ACTIVITY_FEED_TOKEN", raising=False)
    assert feed_url_from(None) == "http://127.0.0.1:8000"
    assert token_from(None) is None
    monkeypatch.setenv("ACTIVITY_FEED_URL", "http://feed.example:9000/")
    monkeypatch.setenv("ACTIVITY_FEED_TOKEN", "from-env")
    assert feed_url_from(None) == "http://feed.example:9000"
    assert feed_url_from("http://given:1") == "http://given:1"
    assert token_from(None) == "from-env"
    assert token_from("given") == "given"
    assert token_from("  ") is None


async def test_an_id_is_one_path_segment_and_the_feeds_detail_is_kept(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(_sqlite(tmp_path))
    async with FeedReader(server.url, token="") as feed:
        # Not GET /health: the id is quoted whole, so it names no other endpoint.
        with pytest.raises(FeedReadError, match=r"answered 404 to GET /activities/\.\.%2Fhealth") as other:
            await feed.event("../health")
        assert other.value.status == 404
        with pytest.raises(FeedReadError) as bad:
            await feed.stats(since="yesterday")
    assert bad.value.detail is not None
    assert bad.value.detail.startswith("since: not a time or a duration: 'yesterday' (use ")


async def test_a_transport_reads_a_feed_served_in_this_process(tmp_path: Path) -> None:
    app = create_app(_sqlite(tmp_path, token="write-token"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with FeedReader("http://127.0.0.1", token="write-token", transport=transport) as feed:
            assert await feed.sessions() == []
            with pytest.raises(FeedReadError, match="answered 404 to GET /activities/"):
                await feed.event("01936f4c-8a3e-7c2b-9a41-1f2e3d4c5b6a")


async def test_export_streams_json_lines_and_says_why_it_cannot(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(_sqlite(tmp_path, token="write-token"))
    items = [
        {"tool_name": f"t{n}", "event_type": "tool_call", "timestamp": f"2026-01-01T00:00:{n:02}Z"}
        for n in range(3)
    ]
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": "Bearer write-token"}
    ) as http:
        assert (await http.post("/activities/batch", json={"events": items})).is_success
    async with FeedReader(server.url, token="write-token") as feed:
        body = b"".join([chunk async for chunk in feed.export()])
        assert [line.split(b'"tool_name":"')[1][:2] for line in body.splitlines()] == [b"t0", b"t1", b"t2"]
        with pytest.raises(FeedReadError, match=r"answered 422 .*since: not a time") as bad:
            _ = [chunk async for chunk in feed.export(since="yesterday")]
        assert bad.value.status == 422
    async with FeedReader(server.url, token="wrong") as feed:
        with pytest.raises(FeedReadError, match="the token was refused") as refused:
            _ = [chunk async for chunk in feed.export()]
        assert refused.value.refused
    async with FeedReader(f"http://127.0.0.1:{free_port()}") as feed:
        with pytest.raises(FeedReadError, match="cannot reach the feed"):
            _ = [chunk async for chunk in feed.export()]


@pytest.mark.parametrize("status", [404, 200])
async def test_another_server_at_the_url_is_named_as_such_not_quoted(
    live_server: Callable[..., LiveServer], status: int
) -> None:
    """A web server that is not a feed (here an HTML page, as an Express app's 404 or a site's 200)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    page = "<!DOCTYPE html><html><body><pre>Cannot GET /activities/recent</pre></body></html>"
    other = Starlette(routes=[Route("/activities/recent", lambda request: HTMLResponse(page, status))])
    server = live_server(app=other)
    async with FeedReader(server.url) as feed:
        with pytest.raises(FeedReadError) as failed:
            await feed.recent(limit=5)
    message = str(failed.value)
    assert f"answered {status} to GET /activities/recent with text/html" in message
    assert "is it an Activity Feed?" in message
    assert "DOCTYPE" not in message
