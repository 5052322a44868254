"""The stdio relay: runs COMMAND and passes bytes between its stdin/stdout and the proxy's own.

Every chunk is forwarded as soon as it is read, unchanged and in order, whatever it holds (a part of a
line, many lines, bytes that are not JSON). Before writing a chunk, the relay hands the recorder a copy
(`tap.py`); the recording happens elsewhere. Where the proxy's stdout is a pipe (as when an MCP client
runs it), one thread relays both directions and busy-polls after each message (`stdio_poll.py`);
otherwise, or with busy polling off, a thread per direction loops on blocking reads and writes.

COMMAND's stderr is the proxy's own descriptor, inherited. COMMAND runs in a process group of its own,
and SIGINT, SIGTERM and SIGHUP sent to the proxy are passed to that group, so each reaches the server
(and whatever it started, as a terminal's Ctrl-C would) exactly once. The end of the proxy's input
closes COMMAND's stdin. The proxy's exit code is COMMAND's (128 + N when a signal N ended it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType

from activity_feed.proxy.busy_poll import default_window
from activity_feed.proxy.stdio_poll import CHUNK_BYTES, Flow, PollingRelay, Tap, reopen_nonblocking

PIPE_BYTES = 1024 * 1024
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Once COMMAND has exited, what it wrote is still relayed to the end; but a descendant that keeps its
# stdout open, or a client that stops reading, must not keep the proxy alive: after this long without
# progress the proxy stops relaying.
DRAIN_STALL_SECONDS = 5.0
# How often the main thread, waiting for signals, looks whether COMMAND has exited.
WAIT_SLICE_SECONDS = 0.02
NOT_FOUND = 127
NOT_EXECUTABLE = 126


# The feed's tokens are the proxy's, not the server's: a third-party server must not be able to write to
# (or read) the feed it is watched by.
FEED_SECRETS = ("ACTIVITY_FEED_TOKEN", "ACTIVITY_FEED_READ_TOKEN")


def server_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The proxy's environment without the feed's tokens, for the server it runs."""
    return {name: value for name, value in environment.items() if name not in FEED_SECRETS}


class CommandError(Exception):
    """COMMAND could not be started; `exit_code` is what a shell would answer (126 or 127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _widen(pipe: int) -> None:
    """Let the server write up to PIPE_BYTES before the relay has to read: fewer wake-ups for large
    messages. Linux only (elsewhere, or beyond the system's limit, the pipe stays as it is)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe, set_size, PIPE_BYTES)


def exit_code(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


@contextlib.contextmanager
def signals_for_the_main_thread() -> Iterator[None]:
    """Block the forwarded signals in the calling (main) thread for the block: threads started inside
    inherit the mask and never receive them. (On a thread other than the main one: nothing.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _takes_signals_itself() -> bool:
    """Whether the main thread can wait for the forwarded signals itself (`sigtimedwait`: Linux)."""
    return hasattr(signal, "sigtimedwait") and threading.current_thread() is threading.main_thread()


class _Pump:
    """Relays one direction until its source ends; `on_end` runs then (e.g. to close the target)."""

    def __init__(
        self, name: str, source: int, target: int, tap: Tap | None, on_end: Callable[[], None] | None = None
    ) -> None:
        self.source = source
        self.target = target
        self.tap = tap
        self.on_end = on_end
        self.progress = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        readv, write, source, target = os.readv, os.write, self.source, self.target
        copy = self.tap.copy if self.tap is not None else None
        writable = True
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        try:
            while True:
                try:
                    size = readv(source, (buffer,))
                except OSError:
                    break
                if not size:
                    break
                chunk = bytes(view[:size])
                if copy is not None:
                    copy(chunk)
                if writable:
                    try:
                        written = write(target, chunk)
                        while written < len(chunk):  # a write cut short by a signal
                            chunk = chunk[written:]
                            written = write(target, chunk)
                    except OSError:
                        # The reader is gone. Keep reading, so the writer on the other side is not blocked
                        # on a full pipe and can reach its own end.
                        writable = False
                self.progress = time.monotonic()
        finally:
            if self.on_end is not None:
                self.on_end()


class _PollingThread:
    """Runs a `PollingRelay` on a thread of its own, and closes its reopened stdout after."""

    def __init__(self, relay: PollingRelay, stdout: int) -> None:
        self.relay = relay
        self.stdout = stdout
        self.thread = threading.Thread(target=self._run, name="activity-feed-proxy-relay", daemon=True)

    @property
    def progress(self) -> float:
        return self.relay.progress

    def _run(self) -> None:
        try:
            self.relay.run()
        finally:
            with contextlib.suppress(OSError):
                os.close(self.stdout)


class StdioRelay:
    """Runs `command` with its stdin and stdout relayed to `stdin` and `stdout` (descriptors)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        client_to_server: Tap | None = None,
        server_to_client: Tap | None = None,
        stdin: int = 0,
        stdout: int = 1,
        busy_poll: float | None = None,
    ) -> None:
        if not command:
            raise CommandError("no command to run", NOT_FOUND)
        self.command = list(command)
        self.client_to_server = client_to_server
        self.server_to_client = server_to_client
        self.stdin = stdin
        self.stdout = stdout
        # Seconds of busy polling after each message (busy_poll.py); None: the default for this machine.
        self.busy_poll = default_window() if busy_poll is None else busy_poll
        self.process: subprocess.Popen[bytes] | None = None
        self._early_signals: list[int] = []

    def run(self) -> int:
        """Start the command, relay until it exits and its output is relayed, and answer its exit code.
        Raises `CommandError` when it cannot start."""
        with self._forwarding_signals():
            process = self._start()
            for signum in self._early_signals:
                self._forward(signum, None)
            assert process.stdin is not None
            assert process.stdout is not None
            child_stdin = process.stdin

            def close_child_stdin() -> None:
                with contextlib.suppress(OSError):
                    child_stdin.close()

            _widen(process.stdout.fileno())
            stdout = reopen_nonblocking(self.stdout) if self.busy_poll > 0 else None
            if stdout is None:
                inbound = _Pump(
                    "activity-feed-proxy-in",
                    self.stdin,
                    child_stdin.fileno(),
                    self.client_to_server,
                    close_child_stdin,
                )
                with signals_for_the_main_thread():
                    inbound.thread.start()
                # The outbound thread, started below, is the one waited for: the server's output ends it.
                relay: _Pump | _PollingThread = _Pump(
                    "activity-feed-proxy-out", process.stdout.fileno(), self.stdout, self.server_to_client
                )
            else:
                os.set_blocking(child_stdin.fileno(), False)
                relay = _PollingThread(
                    PollingRelay(
                        Flow(self.stdin, child_stdin.fileno(), self.client_to_server, close_child_stdin),
                        Flow(process.stdout.fileno(), stdout, self.server_to_client),
                        self.busy_poll,
                    ),
                    stdout,
                )
            if _takes_signals_itself():
                # A Python handler runs only once the main thread gets the signal and next looks, which
                # a thread busy with the interpreter lock can delay: taken here, synchronously, each
                # signal is forwarded at once, whichever thread is busy.
                with signals_for_the_main_thread():
                    relay.thread.start()
                    returncode = self._wait_taking_signals(process)
            else:
                relay.thread.start()
                returncode = process.wait()
            while relay.thread.is_alive():
                relay.thread.join(0.05)
                if time.monotonic() - relay.progress > DRAIN_STALL_SECONDS:
                    break
            return exit_code(returncode)

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                process_group=0,
                env=server_environment(os.environ),
            )
        except FileNotFoundError as exc:
            raise CommandError(f"cannot run {self.command[0]}: {exc.strerror}", NOT_FOUND) from exc
        except PermissionError as exc:
            raise CommandError(f"cannot run {self.command[0]}: {exc.strerror}", NOT_EXECUTABLE) from exc
        except OSError as exc:
            raise CommandError(f"cannot run {self.command[0]}: {exc}", NOT_EXECUTABLE) from exc
        return self.process

    def _wait_taking_signals(self, process: subprocess.Popen[bytes]) -> int:
        """Wait for `process` to exit, forwarding each signal it is sent meanwhile (they must be
        blocked in every thread: see signals_for_the_main_thread)."""
        while True:
            taken = signal.sigtimedwait(FORWARDED_SIGNALS, WAIT_SLICE_SECONDS)
            # CPython 3.11 answers a garbage `si_signo` when interrupted at its deadline: only ours count.
            if taken is not None and taken.si_signo in FORWARDED_SIGNALS:
                self._forward(taken.si_signo, None)
            returncode = process.poll()
            if returncode is not None:
                return returncode

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        process = self.process
        if process is None:
            self._early_signals.append(signum)
        elif process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)

    @contextlib.contextmanager
    def _forwarding_signals(self) -> Iterator[None]:
        # Installed before the command starts: a signal in between is passed on as soon as it runs,
        # rather than killing the proxy before it can. (Only the main thread can handle signals.)
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._forward) for signum in FORWARDED_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
