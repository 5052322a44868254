"""The follower behind `activity-feed tail`: the newest events over REST, then the live stream from the
cursor of that same moment, resumed after every dropped connection.

No gap and no duplicate between the history and the stream: `GET /activities/recent` says, in its
`X-Stream-Cursor` header, the stream cursor its page was read at (one database snapshot), and the stream
is opened with `since=` that cursor. Every message moves the cursor on, so a connection that drops (the
service restarted, the network, a `1013` for a client that fell behind) is opened again with the last one
and the feed replays what was missed, nothing twice. When it cannot (`resync`: the database was replaced,
or too much was missed), the history is read again and only what changed since it was shown is printed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from activity_feed.cli.tail_lines import DELETED, Lines
from activity_feed.client.reader import FeedReader, FeedReadError
from activity_feed.hub.backoff import Backoff

CURSOR_HEADER = "X-Stream-Cursor"
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0
# Answers that mean "not now" (a service restarting, a proxy in front of one): waited out. Any other
# error answer is final: it will not change by asking again (and may come from something not a feed).
RETRIED_STATUSES = frozenset({502, 503, 504})
# The events whose shown state is remembered: to print a deletion under a filter only for an event that
# was shown, and after a resync only what changed. Bounded, so that a tail left running stays small.
REMEMBERED_EVENTS = 10_000
# Closing politely must not hold up Ctrl-C when the feed has stopped answering.
_CLOSE_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TailOptions:
    feed_url: str
    token: str | None
    event_type: str | None = None
    status: str | None = None
    tool_name: str | None = None
    session_id: str | None = None
    user_source: str | None = None  # not a stream filter: applied here, to each message
    history: int = 10
    since: str | None = None

    def stream_filters(self) -> dict[str, str]:
        filters = {
            "event_type": self.event_type,
            "status": self.status,
            "tool_name": self.tool_name,
            "session_id": self.session_id,
        }
        return {name: value for name, value in filters.items() if value is not None}

    @property
    def filtered(self) -> bool:
        return bool(self.stream_filters()) or self.user_source is not None


class _Shown:
    """What was printed of each of the newest `REMEMBERED_EVENTS` events: a digest of its state."""

    def __init__(self) -> None:
        self._states: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def _digest(event: Mapping[str, Any]) -> bytes:
        return hashlib.blake2b(orjson.dumps(event, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()

    def note(self, event: Mapping[str, Any]) -> None:
        event_id = str(event.get("id"))
        self._states[event_id] = self._digest(event)
        self._states.move_to_end(event_id)
        if len(self._states) > REMEMBERED_EVENTS:
            self._states.popitem(last=False)

    def forget(self, event_id: str) -> bool:
        """Forget a deleted event; whether it had been shown."""
        return self._states.pop(event_id, None) is not None

    def same(self, event: Mapping[str, Any]) -> bool:
        return self._states.get(str(event.get("id"))) == self._digest(event)


def stream_url(feed_url: str, params: Mapping[str, str]) -> str:
    """The stream's `ws://` (or `wss://`) URL under a feed's `http://` (or `https://`) URL."""
    base = "ws" + feed_url.removeprefix("http")
    return f"{base}/activities/ws" + (f"?{urlencode(params)}" if params else "")


class Follower:
    """Prints the history, then every change, to `lines`; says what happens to the connection through
    `say` (stderr). `run` returns only by raising: `FeedReadError` when the feed refuses the token or
    answers a request with a client error, which no retry would change."""

    feed: FeedReader

    def __init__(self, options: TailOptions, lines: Lines, say: Callable[[str], None]) -> None:
        self.options = options
        self.lines = lines
        self.say = say
        self.cursor = options.since
        self.shown = _Shown()
        self.backoff = Backoff(first=FIRST_RETRY_SECONDS, cap=MAX_RETRY_SECONDS)
        self.trouble: str | None = None  # why the feed is not being followed right now, once said
        self.followed = False  # the stream was open once: from then on, a failure is a lost stream

    async def run(self) -> None:
        async with FeedReader(self.options.feed_url, self.options.token) as feed:
            self.feed = feed
            if self.cursor is None:
                await self.load_history(reloading=False)
            while True:
                if await self.listen():  # the feed asked for a resync
                    await self.load_history(reloading=True)

    async def load_history(self, *, reloading: bool) -> None:
        """Print the newest events, oldest first, and take the cursor they were read at."""
        options = self.options
        params = {
            "limit": max(1, options.history),
            "event_type": options.event_type,
            "status": options.status,
            "tool_name": options.tool_name,
            "session_id": options.session_id,
            "user_source": options.user_source,
        }
        while True:
            try:
                response = await self.feed.get("/activities/recent", params)
                break
            except FeedReadError as exc:
                if exc.status is not None and exc.status not in RETRIED_STATUSES:
                    raise
                self._trouble(f"waiting for the feed at {self.feed.url} ({exc})")
                await asyncio.sleep(self.backoff.next_delay())
        cursor = response.headers.get(CURSOR_HEADER)
        if cursor is None:
            raise FeedReadError(
                f"the feed at {self.feed.url} does not say which stream cursor its history was read at "
                f"(no {CURSOR_HEADER} header): it is older than this command (upgrade it), or not a feed"
            )
        self._recovered(f"connected to the feed at {self.feed.url}")
        events: list[dict[str, Any]] = response.json()[: options.history]
        for event in reversed(events):
            if reloading and self.shown.same(event):
                continue
            self.lines.history(event, cursor)
            self.shown.note(event)
        self.cursor = cursor

    async def listen(self) -> bool:
        """Follow the stream from the cursor, reconnecting as needed; True when the feed asks for a
        resync."""
        params = self.options.stream_filters()
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token else {}
        while True:
            url = stream_url(self.feed.url, {**params, "since": self.cursor} if self.cursor else params)
            try:
                async with connect(
                    url, additional_headers=headers, max_size=None, close_timeout=_CLOSE_TIMEOUT_SECONDS
                ) as stream:
                    self._recovered(f"following the stream from {self.feed.url} again")
                    self.followed = True
                    if await self._read(stream):
                        self.say(
                            f"the feed could not replay the changes after cursor {self.cursor} (its "
                            "database was replaced, or too many were missed): reloading the newest events"
                        )
                        self.lines.resync()
                        return True
                    why = "the feed closed the stream"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    which = "no token was given" if self.options.token is None else "the token was refused"
                    raise FeedReadError(
                        f"the feed at {self.feed.url} answered {status} to the stream's handshake: {which} "
                        "(pass --token or set ACTIVITY_FEED_TOKEN)",
                        status=status,
                    ) from None
                if status not in RETRIED_STATUSES:
                    body = " ".join(exc.response.body.decode(errors="replace").split())
                    raise FeedReadError(
                        f"the feed at {self.feed.url} answered {status} to the stream's handshake "
                        f"({url.split('?')[0]}): {body[:200]}",
                        status=status,
                    ) from None
                why = f"the stream's handshake answered {status}"
            except InvalidURI as exc:
                raise FeedReadError(f"cannot follow the stream at {url}: {exc}") from None
            except ConnectionClosed as exc:
                why = f"the stream closed ({_close_reason(exc)})"
            except (OSError, InvalidHandshake, TimeoutError, EOFError) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self.followed:
                self._trouble(
                    f"lost the stream from {self.feed.url} ({why}); reconnecting from cursor {self.cursor}"
                )
            else:
                self._trouble(f"waiting for the feed at {self.feed.url} ({why})")
            await asyncio.sleep(self.backoff.next_delay())

    async def _read(self, stream: ClientConnection) -> bool:
        """Print each message; True on `resync`, False when the stream ends."""
        async for text in stream:
            message = orjson.loads(text)
            kind = message.get("type")
            if kind == "resync":
                return True
            # Reset on a message rather than on the handshake: a feed that accepts and at once closes
            # (1013, no replay turn free) is asked again ever more slowly.
            self.backoff.reset()
            self.cursor = message.get("cursor", self.cursor)
            event = message.get("event") or {}
            if self._wanted(kind, event):
                self.lines.change(kind, event, text if isinstance(text, str) else text.decode())
        return False

    def _wanted(self, kind: str, event: Mapping[str, Any]) -> bool:
        if kind == DELETED:
            # Deletions pass every stream filter (the stream cannot know what a deleted event was), so a
            # filtered tail shows only those of events it has shown.
            was_shown = self.shown.forget(str(event.get("id")))
            return was_shown or not self.options.filtered
        source = self.options.user_source
        if source is not None and event.get("user_source") != source:
            return False
        self.shown.note(event)
        return True

    def _trouble(self, message: str) -> None:
        if self.trouble is None:
            self.say(message)
        self.trouble = message

    def _recovered(self, message: str) -> None:
        if self.trouble is not None:
            self.say(message)
        self.trouble = None


def _close_reason(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "no close frame"
    return f"{frame.code} {frame.reason}".strip()
