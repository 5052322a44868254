"""The alerts inside the service: the board on every instance; on the one that holds the lock (alerts/
leader.py), the evaluator fed by the hub and a tick, whose alerts go to the webhooks and into the feed.

    runner = AlertRunner.for_settings(settings, store=store, hub=hub)  # None without an alerts file
    async with runner.running():
        ...
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from activity_feed.alerts.board import AlertBoard
from activity_feed.alerts.evaluator import AlertChange, Evaluator
from activity_feed.alerts.leader import Leadership, leadership_for
from activity_feed.alerts.messages import ALERT_SOURCE, alert_body, alert_tool_name
from activity_feed.alerts.rules import AlertConfig, load_rules
from activity_feed.alerts.seed import seed_board, seed_evaluator
from activity_feed.alerts.webhooks import WebhookSender
from activity_feed.errors import ActivityFeedError
from activity_feed.hub import Hub, Notice
from activity_feed.schemas import ActivityCreate, EventStatus, EventType
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from activity_feed.store.engine import postgres_dsn

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5  # how often time-driven changes (pending calls, draining windows) are judged
# How long calls are gathered before they are counted against the rules: under load, each rule's work
# per tool is then shared by every call of that time, at a cost of this much delay to an alert.
FLUSH_SECONDS = 0.05
LEADER_RETRY_SECONDS = 2.0  # how often a standby instance tries to become the evaluator
LEADER_CHECK_SECONDS = 2.0  # how often the evaluator checks that it still holds the lock
RECORD_ATTEMPTS = 5
STOP_GRACE_SECONDS = 2.0


class AlertRunner:
    def __init__(
        self,
        config: AlertConfig,
        *,
        store: ActivityStore,
        hub: Hub,
        leadership: Leadership,
        tick_seconds: float = TICK_SECONDS,
        retry_seconds: float = LEADER_RETRY_SECONDS,
    ) -> None:
        self.config = config
        self.board = AlertBoard()
        self._store = store
        self._hub = hub
        self._leadership = leadership
        self._tick_seconds = tick_seconds
        self._retry_seconds = retry_seconds
        self._senders = {webhook.name: WebhookSender(webhook) for webhook in config.webhooks}
        self._evaluator: Evaluator | None = None
        self._backlog: list[Notice] | None = None  # what the hub delivers while the evaluator is seeded
        self._records: asyncio.Queue[tuple[AlertChange, dict[str, Any]]] = asyncio.Queue()
        self._flush_timer: asyncio.TimerHandle | None = None

    @classmethod
    def for_settings(cls, settings: Settings, *, store: ActivityStore, hub: Hub) -> AlertRunner | None:
        """The runner for `settings.alerts`, checked now (`AlertRulesError`); None without one."""
        if settings.alerts is None:
            return None
        config = load_rules(settings.alerts)
        return cls(
            config, store=store, hub=hub, leadership=leadership_for(postgres_dsn(settings.database_url))
        )

    @property
    def evaluating(self) -> bool:
        """Whether this instance evaluates the rules (on PostgreSQL, only the one holding the lock)."""
        return self._evaluator is not None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Follow the hub from now on; start the webhooks' senders and try to become the evaluator."""
        stop_observing = self._hub.observe(self._observe)
        for sender in self._senders.values():
            sender.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            try:
                await seed_board(self.board, self._store)
            except ActivityFeedError as exc:
                log.warning("alerts: cannot read which alerts hold (%s); the banner starts empty", exc)
            tasks = [
                asyncio.create_task(self._lead_loop(), name="activity-feed-alerts-evaluate"),
                asyncio.create_task(self._record_loop(), name="activity-feed-alerts-record"),
            ]
            log.info("alerts: %s from %s", self.config.summary(), self.config.path)
            yield
        finally:
            stop_observing()
            if tasks:
                leading, recording = tasks
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
                # What the evaluator last sent is recorded in the feed, unless the database is away.
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._records.join(), STOP_GRACE_SECONDS)
                recording.cancel()
                await asyncio.gather(recording, return_exceptions=True)
            await asyncio.gather(*(sender.stop() for sender in self._senders.values()))

    def _observe(self, notices: Sequence[Notice]) -> None:
        self.board.observe(notices)
        if self._backlog is not None:
            self._backlog.extend(notices)
        elif (evaluator := self._evaluator) is not None:
            evaluator.observe(notices)
            if self._flush_timer is None and evaluator.unflushed:
                self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if self._evaluator is not None:
            self._dispatch(self._evaluator.flush())

    async def _lead_loop(self) -> None:
        try:
            while True:
                if await self._leadership.acquire():
                    try:
                        await self._lead()
                    except ActivityFeedError as exc:
                        log.warning("alerts: stopped evaluating the rules: %s; trying again", exc)
                    except Exception:  # boundary: evaluation must come back whatever failed
                        log.exception("alerts: evaluating the rules failed; trying again")
                    finally:
                        self._evaluator = None
                        self._backlog = None
                        if self._flush_timer is not None:
                            self._flush_timer.cancel()
                            self._flush_timer = None
                await asyncio.sleep(self._retry_seconds)
        finally:
            await self._leadership.release()

    async def _lead(self) -> None:
        """Evaluate until the lock is lost: seed from the database, then follow the hub and the clock."""
        self._backlog = []
        head = await self._store.last_change()
        evaluator = Evaluator(self.config.rules)
        await seed_evaluator(evaluator, self._store, head=head)
        backlog, self._backlog = self._backlog, None
        self._evaluator = evaluator
        self._dispatch(evaluator.settle(self.board.firing()))
        evaluator.observe([notice for notice in backlog if notice.seq > head])
        self._dispatch(evaluator.flush())
        log.info("alerts: this instance evaluates the rules (%s)", self.config.summary())
        next_check = time.monotonic() + LEADER_CHECK_SECONDS
        while True:
            await asyncio.sleep(self._tick_seconds)
            self._dispatch(evaluator.tick())
            if time.monotonic() >= next_check:
                if not await self._leadership.still_held():
                    log.warning("alerts: this instance no longer evaluates the rules")
                    return
                next_check = time.monotonic() + LEADER_CHECK_SECONDS

    def _dispatch(self, changes: list[AlertChange]) -> None:
        for change in changes:
            body = alert_body(change)
            log.warning("alerts: %s", body["text"])
            for name in change.rule.webhooks:
                self._senders[name].send(body)
            self._records.put_nowait((change, body))

    async def _record_loop(self) -> None:
        """Each alert's firing and end, as a system event in the feed (the stream and the banner show it)."""
        while True:
            change, body = await self._records.get()
            try:
                await self._record(change, body)
            finally:
                self._records.task_done()

    async def _record(self, change: AlertChange, body: dict[str, Any]) -> None:
        event = ActivityCreate(
            event_type=EventType.SYSTEM_EVENT,
            tool_name=alert_tool_name(change.rule),
            user_source=ALERT_SOURCE,
            status=EventStatus.ERROR if change.firing else EventStatus.SUCCESS,
            data=body,
            error_message=body["text"] if change.firing else None,
        )
        delay = 0.5
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                await self._store.create(event=event)
                return
            except ActivityFeedError as exc:
                if attempt == RECORD_ATTEMPTS:
                    log.warning("alerts: cannot record %r in the feed: %s", body["text"], exc)
                    return
                await asyncio.sleep(delay)
                delay *= 2
