"""Posting alerts to webhooks: one task and one queue per webhook, off every request's path, so that a
webhook that hangs or fails delays only its own messages, never another webhook's, never ingest.

A message is retried with exponential backoff on a connection error, a timeout, a 5xx or a 429, a bounded
number of times; any other 4xx is final (the request itself is wrong: retrying would not help)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from activity_feed import __version__
from activity_feed.alerts.rules import Webhook

log = logging.getLogger(__name__)

ATTEMPTS = 5
FIRST_DELAY_SECONDS = 0.5  # then 1, 2, 4: with 5 s per attempt, about 30 s in all
MAX_DELAY_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 10.0
QUEUE_SIZE = 1000
STOP_GRACE_SECONDS = 2.0
_USER_AGENT = f"activity-feed/{__version__} alerts"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How posting one message to one webhook ended."""

    webhook: str
    delivered: bool
    attempts: int
    detail: str  # "HTTP 200", "HTTP 404", "timed out after 5 s", "connection refused", ...


class _Retry(Exception):
    def __init__(self, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.wait = wait


class WebhookSender:
    """Delivers messages to one webhook in order, one at a time."""

    def __init__(
        self,
        webhook: Webhook,
        *,
        attempts: int = ATTEMPTS,
        first_delay: float = FIRST_DELAY_SECONDS,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.webhook = webhook
        self._secrets = _secrets(webhook.url)
        self._attempts = attempts
        self._first_delay = first_delay
        self._queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned_full = False
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        self._client = _client()
        self._task = asyncio.create_task(self._run(), name=f"activity-feed-webhook-{self.webhook.name}")

    async def stop(self) -> None:
        """Give queued messages a moment to go, then stop."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning(
                    "alerts: webhook %r: %d message(s) not delivered at shutdown",
                    self.webhook.name,
                    self._queue.qsize() + 1,
                )
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def send(self, body: Mapping[str, Any]) -> None:
        """Queue `body`; never waits. A full queue (a webhook down for long) drops its oldest message."""
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "alerts: webhook %r is not keeping up; dropping its oldest messages",
                    self.webhook.name,
                )
        self._queue.put_nowait(body)

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                result = await self.deliver(body)
                if result.delivered:
                    self.delivered += 1
                else:
                    self.failed += 1
                    log.warning(
                        "alerts: webhook %r: not delivered after %d attempt(s): %s (%s)",
                        self.webhook.name,
                        result.attempts,
                        result.detail,
                        body.get("text"),
                    )
            except Exception:  # boundary: one bad message must not stop this webhook's deliveries
                log.exception("alerts: webhook %r: delivery failed", self.webhook.name)
            finally:
                self._queue.task_done()

    async def deliver(self, body: Mapping[str, Any], *, attempts: int | None = None) -> Delivery:
        """Post `body`, retrying as the module says; return how it ended."""
        tries = attempts or self._attempts
        client = self._client
        own_client = client is None
        if client is None:
            client = _client()
        try:
            delay = self._first_delay
            for attempt in range(1, tries + 1):
                try:
                    detail = await self._attempt(client, body)
                    return Delivery(self.webhook.name, True, attempt, detail)
                except _Retry as retry:
                    if attempt == tries:
                        return Delivery(self.webhook.name, False, attempt, self._hide(retry.detail))
                    await asyncio.sleep(retry.wait if retry.wait is not None else delay)
                    delay = min(delay * 2, MAX_DELAY_SECONDS)
                except _Final as final:
                    return Delivery(self.webhook.name, False, attempt, self._hide(str(final)))
            raise AssertionError("unreachable")
        finally:
            if own_client:
                await client.aclose()

    def _hide(self, detail: str) -> str:
        """`detail` (an error's message, a server's answer) without the parts of the URL that may be
        secret: what a failure says is logged and printed."""
        for secret in self._secrets:
            detail = detail.replace(secret, "…")
        return detail

    async def _attempt(self, client: httpx.AsyncClient, body: Mapping[str, Any]) -> str:
        timeout = self.webhook.timeout
        try:
            # The whole attempt is bounded, not only each read: a server that trickles bytes cannot hold it.
            async with asyncio.timeout(timeout):
                response = await client.post(self.webhook.url, json=dict(body), timeout=timeout)
        except TimeoutError:
            raise _Retry(f"no answer within {timeout:g} s") from None
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"cannot connect: {exc or type(exc).__name__}") from None
        except Exception as exc:  # boundary: a URL httpx cannot use (a port out of range, a bad host name)
            # fails the same way every time: final, said in one line, never a traceback per message.
            raise _Final(f"cannot post: {_one_line(exc)}") from None
        status = response.status_code
        detail = f"HTTP {status}"
        if 200 <= status < 300:
            return detail
        if status == 429 or status >= 500:
            raise _Retry(detail, _retry_after(response))
        raise _Final(f"{detail}: {response.text[:200].strip()}" if response.text.strip() else detail)


class _Final(Exception):
    """An answer that retrying would not change."""


def _secrets(url: str) -> list[str]:
    """What a failure's detail must not repeat: the URL, its credentials, its path and query, and any
    long path segment (a Slack-style URL's token), longest first; the scheme and host may be shown."""
    parts = urlsplit(url)
    found = {url, parts.username or "", parts.password or "", parts.path, parts.query}
    found.update(segment for segment in parts.path.split("/") if len(segment) >= 8)
    # A short one ("/", "/x") is no secret, and would be hidden everywhere in the text.
    return sorted((secret for secret in found if len(secret) >= 4), key=len, reverse=True)


def _one_line(exc: BaseException) -> str:
    """The first error inside `exc` (anyio's connect raises groups), as `Type: message` on one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": _USER_AGENT})


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


async def send_test(webhooks: list[Webhook], body_for: Callable[[str], Mapping[str, Any]]) -> list[Delivery]:
    """Post one test message to every webhook at once, one attempt each; return how each ended."""
    senders = [WebhookSender(webhook, attempts=1) for webhook in webhooks]
    return list(await asyncio.gather(*(sender.deliver(body_for(sender.webhook.name)) for sender in senders)))
