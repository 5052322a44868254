"""The stdio relay as a real process over real pipes: every byte both ways, the server's exit code and
stderr, signals, servers that exit or crash in the middle of a call, and a feed that is up, refused or
hanging."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.conftest import by_name, settled, stored, wait_until
from tests.proxy.peers import FLOOD_PATTERN, MiB, client_input, server_output
from tests.proxy.processes import EXCHANGE_SECONDS, environment, exchange, peer, proxy_command, start
from tests.support.peers import HangingServer
from tests.support.server import LiveServer, free_port

DROP_LINE = b"event writes were not recorded in the feed"


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.stop()


def feed_url(situation: str, feed: LiveServer, hanging: HangingServer) -> str:
    if situation == "up":
        return feed.url
    if situation == "refused":
        return f"http://127.0.0.1:{free_port()}"
    return hanging.url


def line(message: dict[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"


INITIALIZE = line(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
)
CALL = line({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "work", "arguments": {}}})


@pytest.mark.parametrize("situation", ["up", "refused", "hanging"])
def test_every_byte_is_relayed_unchanged_both_ways(
    situation: str, sqlite_feed: LiveServer, hanging: HangingServer, tmp_path: Path
) -> None:
    server_read = tmp_path / "server-read.bin"
    process = start(
        proxy_command(feed_url(situation, sqlite_feed, hanging), *peer("script", str(server_read)))
    )
    out, err = exchange(process, client_input())
    assert process.returncode == 0, err.decode(errors="replace")
    assert out == b"".join(server_output())
    assert server_read.read_bytes() == b"".join(client_input())
    if situation != "up":
        assert err.count(DROP_LINE) == 1, err.decode(errors="replace")
        return
    assert DROP_LINE not in err
    named = by_name(wait_until(sqlite_feed.url, settled(3)))
    assert named["initialize"]["data"]["mcp"]["server"] == {"name": "peer", "version": "0.1"}
    assert named["small"]["data"]["result"] == "small"
    assert named["small"]["user_source"] == "byte-test"
    dump = named["dump"]
    assert dump["status"] == "success"
    assert dump["data"]["result"].startswith("[a ")
    assert dump["data"]["result"].endswith(" MiB response, too large to record]")
    assert len(stored(sqlite_feed.url)) == 3  # garbage, huge and partial lines are not recorded


@pytest.mark.parametrize("busy_poll", ["500", "0"], ids=["one-polling-thread", "a-thread-each-way"])
def test_a_client_that_does_not_read_holds_back_only_what_goes_to_it(busy_poll: str, tmp_path: Path) -> None:
    # The server floods stdout, the client writes all its input before reading anything: the input must
    # still reach the server, whose output waits in the pipes until the client reads it.
    server_read, size = tmp_path / "server-read.bin", 8 * MiB
    process = start(
        proxy_command(
            f"http://127.0.0.1:{free_port()}",
            *peer("flood", str(server_read), str(size)),
            options=("--busy-poll", busy_poll),
        )
    )
    assert process.stdin is not None
    assert process.stdout is not None
    given = bytes(range(256)) * (4 * MiB // 256)
    stdin = process.stdin

    def write_all() -> None:
        with contextlib.suppress(BrokenPipeError):
            stdin.write(given)
        stdin.close()

    writer = threading.Thread(target=write_all, daemon=True)
    writer.start()
    writer.join(timeout=EXCHANGE_SECONDS)
    try:
        assert not writer.is_alive(), "the client's input stalled behind the output it was not reading"
        out = process.stdout.read()
        assert process.wait(timeout=EXCHANGE_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=EXCHANGE_SECONDS)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()
    assert out == FLOOD_PATTERN * (size // len(FLOOD_PATTERN))
    assert server_read.read_bytes() == given


def test_a_stdout_that_is_a_file_gets_every_byte_too(tmp_path: Path) -> None:
    # Not a pipe: the relay cannot reopen it as a description of its own, and relays with a thread each way.
    output = tmp_path / "out.bin"
    with output.open("wb") as stdout:
        process = subprocess.run(
            proxy_command(f"http://127.0.0.1:{free_port()}", "cat"),
            input=b"".join(client_input()),
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=EXCHANGE_SECONDS,
            env=environment(),
            check=False,
        )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    assert output.read_bytes() == b"".join(client_input())


def test_a_server_that_exits_mid_call_leaves_the_call_an_error_and_its_exit_code(
    sqlite_feed: LiveServer,
) -> None:
    process = start(proxy_command(sqlite_feed.url, *peer("exit-mid-call", "3")))
    out, err = exchange(process, [INITIALIZE, CALL])
    assert process.returncode == 3
    assert b"exiting in the middle of a call" in err  # the server's stderr passes through
    assert json.loads(out)["result"]["serverInfo"]["name"] == "peer"
    work = by_name(wait_until(sqlite_feed.url, settled(2)))["work"]
    assert work["status"] == "error"
    assert work["error_message"] == "no response: server exited with code 3"


def test_a_server_that_crashes_passes_on_its_exit_code_and_traceback(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, *peer("crash")))
    _, err = exchange(process, [INITIALIZE, CALL])
    assert process.returncode == 1
    assert b"RuntimeError: the peer crashed on purpose" in err
    work = by_name(wait_until(sqlite_feed.url, settled(2)))["work"]
    assert work["error_message"] == "no response: server exited with code 1"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_passed_on_once(signum: signal.Signals, sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, *peer("signals")))
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(signum)
    process.wait(timeout=EXCHANGE_SECONDS)  # stdin still open: only the signal can end the server
    _, err = process.communicate(timeout=EXCHANGE_SECONDS)
    assert process.returncode == 40 + signum
    assert err.count(f"got {signum.name}".encode()) == 1


def test_a_server_killed_by_a_signal_exits_as_a_shell_says(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, *peer("sleep")))
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=EXCHANGE_SECONDS)
    process.communicate(timeout=EXCHANGE_SECONDS)
    assert process.returncode == 128 + signal.SIGTERM


def test_the_end_of_input_ends_the_server(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, *peer("sleep")))
    out, _ = exchange(process, [b"anything\n"])
    assert process.returncode == 0
    assert out == b"ready\n"


def test_a_command_that_cannot_run(sqlite_feed: LiveServer, tmp_path: Path) -> None:
    process = start(proxy_command(sqlite_feed.url, str(tmp_path / "no-such-server")))
    out, err = exchange(process, [])
    assert process.returncode == 127
    assert out == b""
    assert b"cannot run" in err
    assert b"no-such-server" in err


def test_no_command_is_a_usage_error(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url)[:-1])
    _, err = exchange(process, [])
    assert process.returncode == 2
    assert b"name the server to run after --" in err


def test_the_proxy_writes_nothing_of_its_own_on_stdout(hanging: HangingServer) -> None:
    process = start(proxy_command(hanging.url, *peer("exit-mid-call", "0")))
    out, err = exchange(process, [INITIALIZE, CALL])
    assert process.returncode == 0
    assert out.count(b"\n") == 1  # the server's answer to initialize, and nothing else
    assert json.loads(out)["id"] == 0
    assert DROP_LINE in err


def test_it_runs_as_a_subprocess_of_a_subprocess() -> None:
    # A shell that execs the proxy, as Claude Desktop's launcher might: the signal plumbing (process
    # groups) does not depend on being a session leader.
    process = subprocess.run(
        ["sh", "-c", 'exec "$@"', "sh", *proxy_command("http://127.0.0.1:1", "sh", "-c", "echo hi; exit 5")],
        capture_output=True,
        timeout=EXCHANGE_SECONDS,
        env=environment(),
        check=False,
    )
    assert process.returncode == 5
    assert process.stdout == b"hi\n"


def test_the_server_does_not_see_the_feeds_tokens(sqlite_feed: LiveServer) -> None:
    report = (
        "import os, sys; "
        "sys.stdout.write(repr(sorted(k for k in os.environ if k.startswith('ACTIVITY_FEED_'))) + chr(10))"
    )
    process = start(
        proxy_command(sqlite_feed.url, sys.executable, "-c", report),
        ACTIVITY_FEED_TOKEN="write-secret",
        ACTIVITY_FEED_READ_TOKEN="read-secret",
        ACTIVITY_FEED_OTHER="kept",
    )
    out, _ = exchange(process, [])
    assert process.returncode == 0
    seen = out.decode()
    assert "'ACTIVITY_FEED_OTHER'" in seen
    assert "TOKEN" not in seen
