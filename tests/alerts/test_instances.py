"""Two `activity-feed serve` processes on one PostgreSQL and one Redis, both with the same alerts file:
exactly one evaluates (it holds the advisory lock), so each breach reaches the webhook once, whichever
instance the events went to; both answer `GET /activities/alerts`; when the evaluator dies, the other
takes over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from activity_feed.alerts.leader import ALERTS_LOCK_KEY
from tests.alerts.conftest import WAIT_SECONDS, rules_file, states
from tests.support.redis import require_redis, unique_channel
from tests.support.service import ServiceProcess, stop_all
from tests.support.webhooks import WebhookReceiver

RULES = """
[[rules]]
name = "streak"
kind = "consecutive_failures"
tool = "multi_tool"
count = 4
webhooks = ["ops"]
"""


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _evaluator_pid(url: str) -> int | None:
    """The process holding the alerts' advisory lock, from the name its connection gives itself."""
    conn = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        name = await conn.fetchval(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1",
            ALERTS_LOCK_KEY,
        )
    finally:
        await conn.close()
    return int(name.rsplit(" ", 1)[1]) if name else None


def wait_for_evaluator(url: str, among: list[ServiceProcess]) -> ServiceProcess:
    pids = {instance.process.pid: instance for instance in among if instance.process is not None}
    deadline = time.monotonic() + WAIT_SECONDS
    while (pid := asyncio.run(_evaluator_pid(url))) not in pids:
        assert time.monotonic() < deadline, f"no instance took the alerts' lock (holder: {pid})"
        time.sleep(0.1)
    return pids[pid]


@pytest.fixture
def instances(postgres_url: str, tmp_path: Path, hooks: WebhookReceiver) -> Iterator[list[ServiceProcess]]:
    bus = f"{require_redis()}?channel={unique_channel()}"
    rules = rules_file(tmp_path / "alerts.toml", hooks, RULES)
    started = [
        ServiceProcess(
            postgres_url,
            tmp_path / f"instance-{index}.log",
            broadcast_url=bus,
            extra_env={"ACTIVITY_FEED_ALERTS": str(rules)},
        )
        for index in range(2)
    ]
    try:
        for instance in started:
            instance.start()
        for instance in started:
            instance.wait_healthy()
        yield started
    finally:
        stop_all(started)
    for instance in started:
        assert "Traceback" not in instance.log(), instance.log()


def post(instance: ServiceProcess, status: str) -> None:
    event = {"event_type": "tool_call", "tool_name": "multi_tool", "status": status}
    response = httpx.post(f"{instance.url}/activities/log", json=event, timeout=WAIT_SECONDS)
    assert response.status_code == 201, response.text


def wait_alerts(instance: ServiceProcess, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(answer := httpx.get(f"{instance.url}/activities/alerts", timeout=WAIT_SECONDS).json()) != count:
        assert time.monotonic() < deadline, f"{instance.url}/activities/alerts: {answer}"
        time.sleep(0.05)


def test_one_instance_evaluates_and_each_breach_is_sent_once(
    instances: list[ServiceProcess], postgres_url: str, hooks: WebhookReceiver
) -> None:
    a, b = instances
    evaluator = wait_for_evaluator(postgres_url, instances)
    # The failures go to both instances, alternately: only the evaluator counts them, seeing the other's
    # through Redis.
    for instance in (a, b, a, b, a, b):
        post(instance, "error")
    got = hooks.wait_for(lambda got: len(got) >= 1, "/ops")
    for instance in instances:
        wait_alerts(instance, 1)  # both know, whichever evaluates
    post(b, "success")
    got = hooks.wait_for(lambda got: len(got) >= 2, "/ops")
    for instance in instances:
        wait_alerts(instance, 0)

    # The evaluator dies; the other takes the lock over, starts from the database, and alerts once.
    survivor = b if evaluator is a else a
    evaluator.sigkill()
    evaluator.reap()
    assert wait_for_evaluator(postgres_url, [survivor]) is survivor
    for _ in range(4):
        post(survivor, "error")
    post(survivor, "success")
    got = hooks.wait_for(lambda got: len(got) >= 4, "/ops")
    assert states([r.body for r in got]) == [("firing", "multi_tool"), ("resolved", "multi_tool")] * 2
    # Nothing more comes: the resolution was the last change, so a duplicate would be in the list already.
    assert len(hooks.received("/ops")) == 4
