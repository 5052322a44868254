"""`/activities/ws`: replay from a cursor, then the live stream, with no gap and no duplicate.

The subscription is taken before the handshake completes, so every change committed after it reaches
the client. Replay reads the database (the source of truth) in change order; live notices that the
replay already covered (change number at or below the last one sent) are skipped.

Replays are heavy (a reconnecting client may be owed thousands of large events), so they take turns
(api/read_limits.py) and read and send in pages bounded by count and by bytes: however many clients
reconnect at once, only a few pages are in memory at a time.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated

import anyio
import anyio.lowlevel
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from activity_feed.api.deps import HubDep, MetricsDep, ReadLimitsDep, SettingsDep, StoreDep
from activity_feed.api.read_limits import NoTurnError, Turns
from activity_feed.errors import InvalidCursorError, StoreUnavailableError
from activity_feed.hub import RESYNC, ChangeFilter, Notice, Subscription, decode_cursor
from activity_feed.schemas import EventStatus, EventType
from activity_feed.store import ActivityStore

router = APIRouter()

CLOSE_TRY_AGAIN_LATER = 1013
_REPLAY_PAGE = 500
_REPLAY_PAGE_BYTES = 1024 * 1024
# Sends to a client that keeps up never wait, so encoding and sending would hold the event loop for a
# whole page: every this many bytes the others (/health, live clients, other replays) get their turn.
_YIELD_EVERY_BYTES = 16 * 1024
# A replaying client that takes longer than this to read one page is closed as too slow: it must not
# keep a turn that the others wait for.
_PAGE_SEND_TIMEOUT_SECONDS = 30.0
# A client is too slow because its connection is not draining, so the close frame itself may wait for
# the client to read: long enough for a client that resumes to learn why (1013), bounded for dead ones.
_CLOSE_TIMEOUT_SECONDS = 30.0


@router.websocket("/activities/ws")
async def activity_stream(
    websocket: WebSocket,
    store: StoreDep,
    hub: HubDep,
    settings: SettingsDep,
    limits: ReadLimitsDep,
    metrics: MetricsDep,
    event_type: EventType | None = None,
    status: EventStatus | None = None,
    tool_name: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=200, description="only this session's events")] = None,
    # Any length: a cursor this service never sent gets `resync` (a failed handshake would not say why).
    since: str | None = None,
) -> None:
    change_filter = ChangeFilter(
        event_type=event_type.value if event_type else None,
        status=status.value if status else None,
        tool_name=tool_name,
        session_id=session_id,
    )
    async with hub.subscribe(change_filter, queue_size=settings.ws_queue_size) as subscription:
        await websocket.accept()
        stream = _Stream(
            websocket, store, subscription, replay_limit=settings.replay_limit, replays=limits.replays
        )
        too_slow = False
        why_again: str | None = None
        async with anyio.create_task_group() as tasks:

            async def pump() -> None:
                nonlocal too_slow, why_again
                # The client may go away mid-send: then there is no one to tell.
                with suppress(WebSocketDisconnect, OSError, RuntimeError):
                    try:
                        await stream.run(since)
                    except StoreUnavailableError:
                        # The database went away during the replay: the client is told to come back
                        # with its last cursor, and then misses nothing.
                        why_again = "database unavailable"
                    except NoTurnError:
                        # Nothing was sent yet: coming back with the same cursor misses nothing.
                        why_again = "try again later"
                    except _ReplayTooSlow:
                        too_slow = True
                tasks.cancel_scope.cancel()

            async def watch_too_slow() -> None:
                nonlocal too_slow
                await subscription.too_slow.wait()
                too_slow = True
                tasks.cancel_scope.cancel()

            async def drain_incoming() -> None:
                # Clients have nothing to say yet: their messages (at most 64 KiB, see server.py) are
                # read and ignored, and reading is how a disconnect is noticed.
                with suppress(WebSocketDisconnect, RuntimeError):
                    while (await websocket.receive())["type"] != "websocket.disconnect":
                        pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(pump)
            tasks.start_soon(watch_too_slow)
            tasks.start_soon(drain_incoming)
    if too_slow:
        metrics.slow_stream_clients.inc()
    if (too_slow or why_again) and websocket.client_state == WebSocketState.CONNECTED:
        why = "client too slow" if too_slow else why_again
        # The client may go away while the close frame waits for it to read: then there is no one to tell.
        with (
            anyio.move_on_after(_CLOSE_TIMEOUT_SECONDS, shield=True),
            suppress(WebSocketDisconnect, OSError, RuntimeError),
        ):
            await websocket.close(CLOSE_TRY_AGAIN_LATER, f"{why}: reconnect with since=<cursor>")


class _ReplayTooSlow(Exception):
    """The client did not take a page of its replay in time."""


class _Stream:
    def __init__(
        self,
        websocket: WebSocket,
        store: ActivityStore,
        subscription: Subscription,
        *,
        replay_limit: int,
        replays: Turns,
    ) -> None:
        self.websocket = websocket
        self.store = store
        self.subscription = subscription
        self.replay_limit = replay_limit
        self.replays = replays

    async def run(self, since: str | None) -> None:
        last_sent = await self.catch_up(since) if since is not None else None
        self.subscription.catching_up = False
        while True:
            notice = await self.subscription.queue.get()
            if last_sent is not None and notice.seq <= last_sent:
                continue  # the replay already sent this change, or a later state of its event
            await self.websocket.send_text(notice.text)

    async def catch_up(self, since: str) -> int | None:
        """Replay every change after `since`; return the last change number covered, or None after a
        `resync` (the client reloads, and everything live from now on is new to it)."""
        try:
            cursor = decode_cursor(since)
        except InvalidCursorError:
            await self.resync()
            return None
        # Below the floor, retention has dropped tombstones the client may need (store/maintenance.py).
        floor, head = await self.store.replay_window()
        if cursor > head or cursor < floor or head - cursor > self.replay_limit:
            await self.resync()
            return None
        if cursor == head and not self.subscription.lost:
            # Nothing missed: whatever is queued came after the head, so the client goes live at once
            # without waiting for a turn.
            return cursor
        async with self.replays.turn():
            return await self._replay(cursor)

    async def _replay(self, cursor: int) -> int | None:
        last = cursor
        unyielded = 0
        # Each pass starts by dropping the queued live notices: the pass reads them from the database.
        # A pass during which the queue overflowed is followed by another from where it ended.
        while True:
            self.subscription.restart_catch_up()
            while True:
                # Read whole even when the client leaves meanwhile: a read cut short half-way makes the
                # driver drop its connection (and log why), and a page takes milliseconds.
                with anyio.CancelScope(shield=True):
                    page = await self.store.changes_page(
                        cursor=last, limit=_REPLAY_PAGE, max_bytes=_REPLAY_PAGE_BYTES, origin=cursor
                    )
                with anyio.move_on_after(_PAGE_SEND_TIMEOUT_SECONDS) as sending:
                    for change in page.changes:
                        if self.subscription.filter.matches_change(change):
                            text = Notice.from_change(change).text
                            await self.websocket.send_text(text)
                            unyielded += len(text)
                            if unyielded >= _YIELD_EVERY_BYTES:
                                unyielded = 0
                                await anyio.lowlevel.checkpoint()
                        last = change.seq
                more = page.more
                del page  # not kept while the next one is read
                if sending.cancelled_caught:
                    raise _ReplayTooSlow
                if not more:
                    break
                if last - cursor > self.replay_limit:
                    await self.resync()
                    return None
            if not self.subscription.lost:
                return last

    async def resync(self) -> None:
        await self.websocket.send_text(RESYNC)
