"""Redis for the tests: the machine's server (ACTIVITY_FEED_TEST_REDIS_URL, default redis://127.0.0.1:6379/0)
with a channel of each test's own, or a `redis-server` of a test's own that it can kill and restart on the
same port. Without them, tests are skipped with the reason, or fail where services are required."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.requirements import unavailable
from tests.support.server import free_port

REDIS_URL = os.environ.get("ACTIVITY_FEED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def unique_channel() -> str:
    """A channel no other test (nor another run on this Redis) publishes on."""
    return f"activity-feed-test:{os.getpid()}:{secrets.token_hex(4)}"


def _pings(host: str, port: int, password: str | None = None) -> bool:
    """True when a Redis server answers on host:port (with `password`, if it needs one)."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            if password is not None:
                conn.sendall(f"AUTH {password}\r\n".encode())
                if not conn.recv(64).startswith(b"+OK"):
                    return False
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> str:
    """The shared Redis's URL, or a skip (a failure in CI) when it does not answer."""
    parts = urlsplit(REDIS_URL)
    if not _pings(parts.hostname or "127.0.0.1", parts.port or 6379, parts.password):
        unavailable(
            f"Redis is not available at {REDIS_URL} (set ACTIVITY_FEED_TEST_REDIS_URL to run these tests)"
        )
    return REDIS_URL


def redis_server_binary() -> str:
    """Where `redis-server` is (ACTIVITY_FEED_TEST_REDIS_SERVER, else the PATH), or a skip."""
    binary = os.environ.get("ACTIVITY_FEED_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server) for the Redis outage tests")
    return binary


class RedisServer:
    """A `redis-server` of a test's own on a fixed loopback port, keeping nothing on disk, that the test
    can kill and start again where its clients expect it."""

    def __init__(self, log_path: Path, *, password: str | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.password = password
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, channel: str | None = None) -> str:
        auth = f":{self.password}@" if self.password is not None else ""
        query = f"?channel={channel}" if channel is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0{query}"

    def start(self) -> None:
        """Start on `port`; return once it answers PING."""
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        if self.password is not None:
            command += ["--requirepass", self.password]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _pings("127.0.0.1", self.port, self.password):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.log()}")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would; return once the process is gone and the port is free."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as with a host gone or a network cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
