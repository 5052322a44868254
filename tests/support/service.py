"""`activity-feed serve` as real child processes: one, or several instances sharing one PostgreSQL database
and one Redis, as an operator runs them (README, "Deployment: several instances").

    instances = start_instances(2, database_url=pg_url, broadcast_url=redis_url, log_dir=tmp_path)
    ...  # instances[0].url, instances[1].ws_url
    stop_all(instances)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
Health = dict[str, Any]


def service_env() -> dict[str, str]:
    """This environment without any ACTIVITY_FEED_* setting: flags alone configure the child."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ACTIVITY_FEED_")}


@dataclass
class ServiceProcess:
    """`activity-feed serve` on `database_url` and `broadcast_url`, on a free port unless given one."""

    database_url: str
    log_path: Path
    broadcast_url: str = "memory://"
    port: int = 0
    extra_args: Sequence[str] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    preexec_fn: Callable[[], None] | None = field(default=None, repr=False)  # runs in the child
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "activity_feed.cli.main",
            "serve",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            "--broadcast-url",
            self.broadcast_url,
            "--log-level",
            "warning",
            *self.extra_args,
        ]

    def start(self) -> None:
        """Start the process; returns at once (see `wait_healthy`)."""
        if self.port == 0:
            self.port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env={**service_env(), **self.extra_env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=self.preexec_fn,
            )

    def health(self) -> Health | None:
        """`/health`'s answer with its status code under `"http_status"`, or None while nothing answers."""
        try:
            response = httpx.get(f"{self.url}/health", timeout=2)
        except httpx.TransportError:
            return None
        answer: Health = response.json()
        answer["http_status"] = response.status_code
        return answer

    def wait_health(self, ready: Callable[[Health], bool], timeout: float = START_TIMEOUT_SECONDS) -> Health:
        """Poll `/health` until `ready(answer)`; fail with the log if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None, "not started"
            code = self.process.poll()
            assert code is None, f"serve exited with {code}:\n{self.log()}"
            answer = self.health()
            if answer is not None and ready(answer):
                return answer
            assert time.monotonic() < deadline, f"/health never became ready ({answer}):\n{self.log()}"
            time.sleep(0.05)

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> Health:
        """Wait until `/health` answers 200 with the bus `ok` (subscribed, when it is Redis)."""
        return self.wait_health(lambda h: h["http_status"] == 200 and h.get("bus") == "ok", timeout)

    def exited(self) -> int | None:
        """The exit code, or None while the process runs."""
        assert self.process is not None, "not started"
        return self.process.poll()

    def sigkill(self) -> None:
        """SIGKILL, as a crash would; returns at once (see `reap`)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def reap(self) -> None:
        """Wait (bounded) until the process is gone."""
        if self.process is not None:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), then SIGKILL if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_instances(
    count: int, *, database_url: str, broadcast_url: str, log_dir: Path, extra_args: Sequence[str] = ()
) -> list[ServiceProcess]:
    """`count` instances on one database and one bus, started together (migrations take turns under a
    lock), each on a free port; returned once every one is healthy and subscribed."""
    instances = [
        ServiceProcess(
            database_url,
            log_dir / f"instance-{index}.log",
            broadcast_url=broadcast_url,
            extra_args=extra_args,
        )
        for index in range(count)
    ]
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_healthy()
    except BaseException:
        stop_all(instances)
        raise
    return instances


def stop_all(instances: Sequence[ServiceProcess]) -> None:
    for instance in instances:
        instance.stop()
