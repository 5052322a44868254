"""`activity-feed tail`, run for real as a subprocess against `activity-feed serve` subprocesses: history
then live, across a restart of the service, in a pipe and in a pseudo-terminal, as JSON, filtered, and its
exit statuses."""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.cli.main import main
from tests.support.server import free_port
from tests.support.service import ServiceProcess, service_env

WAIT_SECONDS = 30.0  # for output that must come; generous, as the machine may be shared
EXIT_SECONDS = 15.0
TOKEN = "tail-test-token"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tail:
    """`activity-feed tail ARGS` with its stdout read line by line in a thread (from a pipe, or from a
    pseudo-terminal with `terminal=True`) and its stderr in a file."""

    def __init__(self, args: Sequence[str], log_dir: Path, *, terminal: bool = False, **env: str) -> None:
        self.stderr_path = log_dir / f"tail-{uuid.uuid4().hex[:8]}.err"
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        command = [sys.executable, "-m", "activity_feed.cli.main", "tail", *args]
        environment = {**service_env(), **env}
        with self.stderr_path.open("wb") as stderr:
            if terminal:
                leader, follower = pty.openpty()
                # A wide terminal, so that no line is cut to the default 80 columns.
                fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
                environment |= {"TERM": "xterm-256color", "COLUMNS": "200"}
                environment.pop("NO_COLOR", None)
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=follower, stderr=stderr, env=environment
                )
                os.close(follower)
                reader = threading.Thread(target=self._read_terminal, args=(leader,), daemon=True)
            else:
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=environment
                )
                reader = threading.Thread(target=self._read_pipe, daemon=True)
        reader.start()

    def _read_pipe(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                self._queue.put(raw.decode().rstrip("\n"))
        self._queue.put(None)

    def _read_terminal(self, leader: int) -> None:
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO once the child has closed its side
                    break
                if not chunk:
                    break
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._queue.put(raw.decode().rstrip("\r"))
        finally:
            os.close(leader)
            self._queue.put(None)

    def wait_for(
        self, done: Callable[[list[str]], bool], what: str, timeout: float = WAIT_SECONDS
    ) -> list[str]:
        """Collect lines until `done(lines)`; fail, showing what came, once `timeout` has passed."""
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.0, left))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(
                    f"tail never printed {what} (exit {self.process.poll()}); stdout:\n"
                    + "\n".join(self.lines)
                    + f"\nstderr:\n{self.stderr()}"
                )
            self.lines.append(line)
        return self.lines

    def all_output(self, timeout: float = EXIT_SECONDS) -> list[str]:
        """Every line, once the process has closed its stdout."""
        deadline = time.monotonic() + timeout
        while (line := self._queue.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            self.lines.append(line)
        return self.lines

    def wait_for_stderr(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert time.monotonic() < deadline, f"tail never said {text!r}; stderr:\n{self.stderr()}"
            time.sleep(0.05)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def exit_code(self, timeout: float = EXIT_SECONDS) -> int:
        return self.process.wait(timeout=timeout)

    def interrupt(self) -> int:
        """Ctrl-C; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.exit_code()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=EXIT_SECONDS)


@pytest.fixture
def tails(tmp_path: Path) -> Iterator[Callable[..., Tail]]:
    """Start tails, with the feed's token in their environment unless told otherwise."""
    started: list[Tail] = []

    def start(*args: str, terminal: bool = False, token: str | None = TOKEN) -> Tail:
        env = {"ACTIVITY_FEED_TOKEN": token} if token is not None else {}
        tail = Tail(args, tmp_path, terminal=terminal, **env)
        started.append(tail)
        return tail

    yield start
    for tail in started:
        tail.kill()


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One `activity-feed serve` with a token, on a port of its own so that a test can restart it where
    tails expect it; each test uses tool names of its own."""
    directory = tmp_path_factory.mktemp("feed")
    service = ServiceProcess(
        f"sqlite:///{directory / 'feed.db'}",
        directory / "serve.log",
        port=free_port(),
        extra_args=("--token", TOKEN),
    )
    service.start()
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


@pytest.fixture
def api(feed: ServiceProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=feed.url, headers=headers, timeout=10) as client:
        yield client


def post(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("event_type", "tool_call")
    response = api.post("/activities/log", json=fields)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def tools(lines: list[str]) -> list[str]:
    """The tool column of plain lines (time, status, type, tool, ...): the fourth field."""
    return [line.split()[3] for line in lines if len(line.split()) > 3]


def test_a_restart_of_the_service_loses_nothing_and_repeats_nothing(
    feed: ServiceProcess, api: httpx.Client, tails: Callable[..., Tail]
) -> None:
    for i in range(12):
        post(api, tool_name=f"hist-{i}", status="success", duration_ms=i)
    tail = tails("--feed-url", feed.url, "-n", "5")

    # The last five, oldest first, then the live ones.
    tail.wait_for(lambda lines: len(lines) >= 5, "the history")
    assert tools(tail.lines) == [f"hist-{i}" for i in range(7, 12)]
    for i in range(5):
        post(api, tool_name=f"live-{i}")
    tail.wait_for(lambda lines: "live-4" in tools(lines), "the live events")

    # Events posted without pause across a restart on the same port and database: those answered
    # before the stop, the ones refused while it is down, those answered as soon as it is back (before
    # tail has reconnected: it gets them by replay) and after.
    posted: list[str] = []
    stop_posting = threading.Event()

    def post_steadily() -> None:
        with httpx.Client(base_url=feed.url, headers=api.headers, timeout=2) as http:
            for i in range(10_000):
                if stop_posting.is_set():
                    return
                name = f"across-{i}"
                try:
                    answer = http.post("/activities/log", json={"tool_name": name, "event_type": "tool_call"})
                    if answer.status_code == 201:
                        posted.append(name)
                except httpx.TransportError:
                    pass  # down, or cut off mid-request: the database says at the end what was kept
                time.sleep(0.02)

    def wait_for_answers(count: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(posted) < count:
            assert time.monotonic() < deadline, f"the poster got {len(posted)} answers, not {count}"
            time.sleep(0.02)

    poster = threading.Thread(target=post_steadily)
    poster.start()
    try:
        wait_for_answers(10)
        feed.stop()
        feed.start()
        feed.wait_healthy()
        wait_for_answers(len(posted) + 20)
    finally:
        stop_posting.set()
        poster.join(timeout=10)
        if feed.exited() is not None:  # the restart failed: bring it back for the other tests
            feed.start()
            feed.wait_healthy()
    post(api, tool_name="last")

    lines = tail.wait_for(lambda lines: "last" in tools(lines), "the event posted last")
    stored = [event["tool_name"] for event in reversed(api.get("/activities/recent?limit=500").json())]
    start = stored.index("hist-7")
    assert stored[start - 7 : start] == [f"hist-{i}" for i in range(7)]  # older than the history shown
    expected = stored[start:]
    assert set(posted) <= set(expected)
    # Every event stored since the history was read, printed once each: none missed, none twice.
    assert sorted(tools(lines)) == sorted(expected)
    assert len(tools(lines)) == len(lines)
    assert not any("\x1b" in line for line in lines), "escape codes in a pipe"
    stderr = tail.stderr()
    assert "lost the stream" in stderr
    assert "again" in stderr
    assert tail.interrupt() == 0
    assert "Traceback" not in tail.stderr()


def test_in_a_terminal_the_columns_are_coloured(
    feed: ServiceProcess, api: httpx.Client, tails: Callable[..., Tail]
) -> None:
    post(api, tool_name="tty-history", status="success", duration_ms=1234.5)
    tail = tails("--feed-url", feed.url, "--tool", "tty-history", "-n", "1", terminal=True)
    tail.wait_for(lambda lines: any("tty-history" in line for line in lines), "the history")

    [line] = [line for line in tail.lines if "tty-history" in line]
    assert ANSI.search(line), f"no colour in {line!r}"
    plain = ANSI.sub("", line)
    assert plain.split()[1:4] == ["success", "tool_call", "tty-history"]
    assert "1.23 s" in plain
    assert tail.interrupt() == 0


def test_in_a_pipe_lines_are_plain_aligned_columns(
    feed: ServiceProcess, api: httpx.Client, tails: Callable[..., Tail]
) -> None:
    # Posted at once: whether tail reads them as its history or from the stream, each is printed once.
    tail = tails("--feed-url", feed.url, "--tool", "pipe-probe")
    post(
        api,
        tool_name="pipe-probe",
        user_source="ann",
        status="error",
        duration_ms=42.5,
        error_message="no\x1b[31m",
    )
    post(api, tool_name="pipe-probe", user_source="bob", event_type="api_request", status="pending")
    lines = tail.wait_for(lambda lines: len(lines) >= 2, "two events")

    assert not any("\x1b" in line for line in lines)
    first, second = lines
    assert first.split()[1:] == ["error", "tool_call", "pipe-probe", "ann", "42.5", "ms", "no?[31m"]
    assert second.split()[1:] == ["pending", "api_request", "pipe-probe", "bob"]
    assert first.index("pipe-probe") == second.index("pipe-probe")  # aligned
    assert first.index("ann") == second.index("bob")
    assert tail.interrupt() == 0


def test_json_lines_parse_and_the_filters_apply(
    feed: ServiceProcess, api: httpx.Client, tails: Callable[..., Tail]
) -> None:
    def event(source: str, status: str, tool: str = "json-a") -> dict[str, Any]:
        return post(api, tool_name=tool, user_source=source, status=status)

    shown_old = event("alice", "error")
    for other in (("bob", "error"), ("alice", "success"), ("alice", "error", "json-b")):
        event(*other)
    tail = tails(
        *("--feed-url", feed.url, "--json", "-n", "3"),
        *("--tool", "json-a", "--status", "error", "--source", "alice"),
    )
    tail.wait_for(lambda lines: len(lines) >= 1, "the history")

    shown_new = event("alice", "error")
    hidden = event("bob", "error")
    event("alice", "success")
    pending = event("alice", "pending")
    api.patch(f"/activities/{pending['id']}", json={"status": "error", "error_message": "late"})
    api.delete(f"/activities/{hidden['id']}")  # never shown: not printed
    api.delete(f"/activities/{shown_old['id']}")
    last = event("alice", "error")
    lines = tail.wait_for(lambda lines: last["id"] in "".join(lines), "the event posted last")

    messages = [json.loads(line) for line in lines]
    assert [(m["type"], m["event"]["id"]) for m in messages] == [
        ("history", shown_old["id"]),
        ("activity_logged", shown_new["id"]),
        ("tool_failed", pending["id"]),
        ("activity_deleted", shown_old["id"]),
        ("activity_logged", last["id"]),
    ]
    assert all(m["cursor"].isdigit() for m in messages)
    assert messages[2]["event"]["error_message"] == "late"
    assert tail.interrupt() == 0


def test_a_cursor_the_feed_cannot_replay_from_reloads_the_history(
    feed: ServiceProcess, api: httpx.Client, tails: Callable[..., Tail]
) -> None:
    kept = post(api, tool_name="resync-probe", status="success")
    tail = tails("--feed-url", feed.url, "--json", "--tool", "resync-probe", "--since", "999999999")

    lines = tail.wait_for(lambda lines: len(lines) >= 2, "a resync and the history")
    assert json.loads(lines[0]) == {"type": "resync"}
    assert json.loads(lines[1])["event"]["id"] == kept["id"]
    assert "reloading the newest events" in tail.stderr()
    assert tail.interrupt() == 0


def test_a_refused_token_exits_1_saying_so(
    feed: ServiceProcess, tails: Callable[..., Tail], capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "answered 401: the token was refused": tails("--feed-url", feed.url, token="wrong"),
        # With a cursor tail goes straight to the stream: its handshake is refused.
        "401 to the stream's handshake: the token was refused": tails(
            "--feed-url", feed.url, "--since", "1", token="wrong"
        ),
    }
    for said, tail in cases.items():
        assert tail.exit_code() == 1, said
        assert said in tail.stderr()
        assert "Traceback" not in tail.stderr()
    # The same entry point in this process (a process of its own costs a second of imports).
    assert main(["tail", "--feed-url", feed.url]) == 1
    assert "answered 401: no token was given" in capsys.readouterr().err


def test_bad_arguments_exit_2_with_one_line(
    tails: Callable[..., Tail], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tail = tails("-n", "501")
    assert tail.exit_code() == 2
    assert tail.stderr().strip() == "activity-feed: -n: must be from 0 to 500, not 501"
    assert tail.all_output() == []

    monkeypatch.delenv("ACTIVITY_FEED_URL", raising=False)
    for args, said in (
        (["-n", "3", "--since", "5"], "activity-feed: -n and --since cannot be combined"),
        (["--feed-url", "ftp://example"], "activity-feed: --feed-url: must start with http:// or https://"),
        (["--tool", "x" * 201], "activity-feed: --tool: at most 200 characters"),
    ):
        assert main(["tail", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.err.startswith(said), args
        assert captured.err.count("\n") == 1
        assert captured.out == ""
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusals
        main(["tail", "--type", "bogus"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_it_waits_for_a_feed_that_is_not_up_and_ctrl_c_exits_0(tails: Callable[..., Tail]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    tail = tails("--feed-url", url)

    tail.wait_for_stderr(f"waiting for the feed at {url}")
    assert tail.interrupt() == 0
    assert tail.stderr().count("waiting for the feed") == 1, "said once, not at every retry"
    assert "Traceback" not in tail.stderr()


class _NotAFeed(http.server.BaseHTTPRequestHandler):
    """A web server that is not a feed: every path is an HTML error page of several lines."""

    def do_GET(self) -> None:
        page = b"<!DOCTYPE html>\n<html>\n<body>\n<h1>Internal Server Error</h1>\n</body>\n</html>\n"
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:  # quiet in the test's output
        pass


def test_a_server_that_is_not_a_feed_is_one_line_and_exit_1(tails: Callable[..., Tail]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAFeed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        tail = tails("--feed-url", url)
        assert tail.exit_code() == 1
        said = tail.stderr()
        assert said.count("\n") == 1, said
        assert said.startswith(f"activity-feed: {url} answered 500 to GET /activities/recent with text/html")
        assert "is it an Activity Feed?" in said
    finally:
        server.shutdown()
        server.server_close()
