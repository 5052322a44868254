"""Running `activity-feed proxy` as a real process over real pipes, as an MCP client would."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every exchange is bounded: a proxy that hangs fails its test instead of stalling the run.
EXCHANGE_SECONDS = 60.0


def environment(**extra: str) -> dict[str, str]:
    """This environment, with the project importable and no feed URL of its own (the example server
    would report to it itself)."""
    env = {key: value for key, value in os.environ.items() if key != "ACTIVITY_FEED_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env.update(extra)
    return env


def proxy_command(feed_url: str, *server: str, options: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "activity_feed.cli.main",
        "proxy",
        "--feed-url",
        feed_url,
        *options,
        "--",
        *server,
    ]


def peer(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.proxy.peers", *args]


def start(command: Sequence[str], **extra_env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(**extra_env),
        cwd=ROOT,
    )


def exchange(process: subprocess.Popen[bytes], chunks: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Write `chunks` one write each, then end the input; answers everything the process wrote on
    stdout and stderr once it has exited."""
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stdin = process.stdin
    read: dict[str, bytes] = {}

    def write() -> None:
        try:
            for chunk in chunks:
                stdin.write(chunk)
                stdin.flush()
        except BrokenPipeError:
            pass
        finally:
            stdin.close()

    def drain(name: str, stream: object) -> None:
        read[name] = stream.read()  # type: ignore[attr-defined]

    threads = [
        threading.Thread(target=write, daemon=True),
        threading.Thread(target=drain, args=("out", process.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", process.stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        process.wait(timeout=EXCHANGE_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    for thread in threads:
        thread.join(timeout=EXCHANGE_SECONDS)
    process.stdout.close()
    process.stderr.close()
    return read.get("out", b""), read.get("err", b"")
