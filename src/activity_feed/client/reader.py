"""`FeedReader`: reads a running feed over its REST API, for the commands that watch or question it
(`tail`, `export`, `check`, the feed's own MCP server).

Every failure is one `FeedReadError` whose message a person can act on: the feed is not there, the token
was refused, or the feed answered the request with an error (its `detail` quoted).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from activity_feed.errors import ActivityFeedError

DEFAULT_FEED_URL = "http://127.0.0.1:8000"
# The most `GET /activities/recent` answers in one page.
PAGE_LIMIT = 500


class FeedReadError(ActivityFeedError):
    """The feed could not be read: unreachable, the token refused, or a request it answered with an error.

    `status` is the HTTP status of the answer (None when no answer came); `detail` is what the feed said
    was wrong with the request (its `detail`), for callers that name the request themselves."""

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail

    @property
    def refused(self) -> bool:
        """The token was missing or wrong (401) or not allowed this (403)."""
        return self.status in (401, 403)


def feed_url_from(given: str | None) -> str:
    """`given`, else `ACTIVITY_FEED_URL`, else the local default; without a trailing slash."""
    return (given or os.environ.get("ACTIVITY_FEED_URL", "").strip() or DEFAULT_FEED_URL).rstrip("/")


def feed_url_problem(feed_url: str) -> str | None:
    """What is wrong with a feed's URL for a command line's `--feed-url`, or None."""
    if not feed_url.startswith(("http://", "https://")):
        return f"--feed-url: must start with http:// or https://, not {feed_url!r}"
    return None


def token_from(given: str | None) -> str | None:
    """`given`, else `ACTIVITY_FEED_TOKEN`; a blank token is none."""
    token = given if given is not None else os.environ.get("ACTIVITY_FEED_TOKEN")
    return token.strip() or None if token is not None else None


def _query(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters that are set: None leaves a parameter out."""
    return {name: value for name, value in (params or {}).items() if value is not None}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:  # not the feed's JSON (a proxy's page, another server): one line of it
        return " ".join(response.text.split())[:200] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors: the message of each
        return "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail
        )
    return str(detail)


class FeedReader:
    """An async reader of one feed. Use it as `async with FeedReader(url, token) as feed:`.

    `transport` replaces the network: `httpx.ASGITransport(app)` reads a feed served in this process."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = feed_url_from(url)
        self.token = token_from(token)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> FeedReader:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer of `GET path`; parameters that are None are left out."""
        response = await self.get(path, params)
        try:
            return response.json()
        except ValueError:  # a 2xx that is not JSON: another server on that address
            raise self._not_a_feed(response, path) from None

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """`GET path`, or `FeedReadError` for anything but a 2xx."""
        try:
            response = await self._http.get(path, params=_query(params))
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        self._check(response, path)
        return response

    @asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """`GET path` with its body read as it arrives (`aiter_bytes`): the response once its status is a
        2xx, else `FeedReadError` as for `get`. A body cut short (the feed stopped, or closed the
        connection before the end) is a `FeedReadError` too, as it leaves the block."""
        answered = False
        try:
            async with self._http.stream("GET", path, params=_query(params)) as response:
                if response.is_error:
                    await response.aread()
                self._check(response, path)
                answered = True
                yield response
        except httpx.HTTPError as exc:
            if not answered:
                raise self._unreachable(exc) from None
            raise FeedReadError(
                f"the feed at {self.url} stopped answering GET {path} midway: {exc or type(exc).__name__}"
            ) from None

    def _unreachable(self, exc: httpx.HTTPError) -> FeedReadError:
        return FeedReadError(f"cannot reach the feed at {self.url}: {exc or type(exc).__name__}")

    def _check(self, response: httpx.Response, path: str) -> None:
        if response.status_code in (401, 403):
            which = "no token was given" if self.token is None else "the token was refused"
            raise FeedReadError(
                f"the feed at {self.url} answered {response.status_code}: {which} "
                "(pass --token or set ACTIVITY_FEED_TOKEN)",
                status=response.status_code,
            )
        if response.is_error:
            if "json" not in response.headers.get("content-type", ""):
                raise self._not_a_feed(response, path)
            detail = _detail(response)
            raise FeedReadError(
                f"the feed answered {response.status_code} to GET {path}: {detail}",
                status=response.status_code,
                detail=detail,
            )

    def _not_a_feed(self, response: httpx.Response, path: str) -> FeedReadError:
        """Every answer of the feed is JSON; anything else (an HTML page, a proxy's error) came from another
        server: say so, rather than quote its page."""
        kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
        return FeedReadError(
            f"{self.url} answered {response.status_code} to GET {path} with {kind}, not the feed's JSON: "
            "is it an Activity Feed? (--feed-url or ACTIVITY_FEED_URL)",
            status=response.status_code,
        )

    async def recent(self, **filters: Any) -> list[dict[str, Any]]:
        """`GET /activities/recent` with these filters (`limit`, `event_type`, `status`, `since`, ...)."""
        answer: list[dict[str, Any]] = await self.get_json("/activities/recent", filters)
        return answer

    async def pages(self, **filters: Any) -> AsyncIterator[list[dict[str, Any]]]:
        """Every event matching `filters`, newest first, a page of at most 500 at a time (paging with
        `before`), so that memory stays constant however many there are."""
        before: str | None = None
        while True:
            page = await self.recent(**filters, limit=PAGE_LIMIT, before=before)
            if page:
                yield page
            if len(page) < PAGE_LIMIT:
                return
            before = page[-1]["id"]

    async def export(self, **filters: Any) -> AsyncIterator[bytes]:
        """`GET /activities/export` with these filters: every matching event as JSON lines, oldest first,
        in chunks as they arrive (a chunk may end inside a line)."""
        async with self.stream("/activities/export", filters) as response:
            async for chunk in response.aiter_bytes():
                yield chunk

    async def event(self, event_id: str) -> dict[str, Any]:
        # Quoted whole: an id holding `/` or `?` must not reach another endpoint.
        answer: dict[str, Any] = await self.get_json(f"/activities/{quote(event_id, safe='')}")
        return answer

    async def stats(self, **filters: Any) -> httpx.Response:
        """`GET /activities/stats`: the response itself, whose `X-Stats-*` headers say what was counted."""
        return await self.get("/activities/stats", filters)

    async def sessions(self, **filters: Any) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = await self.get_json("/activities/sessions", filters)
        return answer
