"""A TCP proxy that a test controls: put it between the service and its database, then cut the link.

One thread accepts and one thread per connection moves bytes both ways with `select`, so the proxy
costs the test nothing to drive and never touches the test's event loop. Three ways to fail:

- `cut()`: every open connection is closed at once (both ends, with a reset) and every new one is
  reset as soon as it arrives, as when the database stops or a firewall rejects.
- `cut(blackhole=True)`: nothing more is forwarded either way and new connections are accepted but
  never answered, as in a network partition: whoever waits on the link waits until its own timeout.
- `cut(after=b"COMMIT")`: as `cut()`, at the moment a client sends those bytes. They reach the
  database, which acts on them, but the answer is lost: the commit whose outcome the client cannot know.

`restore()` forwards again. Connections left half-dead by a blackhole are closed then, so that the
database side sees them end (and rolls back what they had open) instead of waiting for TCP keepalive.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05
_CONNECT_TIMEOUT_SECONDS = 5.0
_JOIN_SECONDS = 5.0


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a crashed peer or a rejecting firewall does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _wake(sock: socket.socket) -> None:
    """End a connection that another thread may be waiting on: `shutdown` wakes its `select`, and the
    thread closes the socket itself (closing it here could hand its descriptor to a new socket)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Link:
    """One client connection and its upstream connection, pumped by one thread."""

    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self.held = False  # a blackhole: bytes are no longer moved, the sockets stay open
        self.thread = threading.Thread(target=self._run, name="tcp-proxy-link", daemon=True)

    def _run(self) -> None:
        try:
            self.upstream = socket.create_connection(self.proxy.target, timeout=_CONNECT_TIMEOUT_SECONDS)
            self.upstream.settimeout(None)
            if not self.closed.is_set():
                self._pump(self.client, self.upstream)
        except OSError:
            pass  # the upstream refused, or the link was cut under us: either way this link is over
        finally:
            self.closed.set()
            _reset(self.client)
            if self.upstream is not None:
                _reset(self.upstream)
            self.proxy._forget(self)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while not self.closed.is_set():
            if self.held:
                # Not reading is what a partition looks like: the peers' own buffers fill and they wait.
                self.closed.wait(_POLL_SECONDS)
                continue
            readable, _, _ = select.select(list(peers), [], [], _POLL_SECONDS)
            for sock in readable:
                if self.held:
                    break
                data = sock.recv(_CHUNK)
                if not data:
                    return
                if sock is client and self.proxy._trips_on(data, self):
                    upstream.sendall(data)
                    self._lose_answer(client, upstream)
                    return
                peers[sock].sendall(data)

    def _lose_answer(self, client: socket.socket, upstream: socket.socket) -> None:
        # The client learns at once that its link is gone. The database gets an orderly end after the
        # bytes it was sent (a reset could overtake them), answers into the void, and then sees the end.
        _reset(client)
        upstream.shutdown(socket.SHUT_WR)
        upstream.settimeout(_CONNECT_TIMEOUT_SECONDS)
        with contextlib.suppress(OSError):
            while upstream.recv(_CHUNK):
                pass

    def close(self) -> None:
        """Cut this link now; its thread closes both sockets and goes."""
        self.closed.set()
        _wake(self.client)
        upstream = self.upstream
        if upstream is not None:
            _wake(upstream)


class TcpProxy:
    """Listens on 127.0.0.1 (a free port unless given) and forwards to `target_host:target_port`.

    Use as a context manager, or call `stop()`: every thread it started is joined (bounded) and every
    socket closed."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self._listener.settimeout(_POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._held_new: list[socket.socket] = []
        self._mode = "open"  # "open", "refuse" or "blackhole"
        self._trigger: bytes | None = None
        self.tripped = threading.Event()  # set when a `cut(after=...)` took effect
        self._stopping = threading.Event()
        self.accepted = 0
        self.refused = 0
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def open_links(self) -> int:
        with self._lock:
            return len(self._links)

    def cut(self, *, blackhole: bool = False, after: bytes | None = None) -> None:
        """Stop forwarding: reset every connection and every new one, or with `blackhole` hold them all
        open without moving a byte. With `after`, the reset waits for a client to send those bytes (see
        the module's docstring); `tripped` is set when it happens."""
        if after is not None:
            with self._lock:
                self.tripped.clear()
                self._trigger = after
            return
        with self._lock:
            self._mode = "blackhole" if blackhole else "refuse"
            links = list(self._links)
        for link in links:
            if blackhole:
                link.held = True
            else:
                link.close()

    def restore(self) -> None:
        """Forward again. Connections held by a blackhole are closed: their peers reconnect."""
        with self._lock:
            self._mode = "open"
            self._trigger = None
            held = [link for link in self._links if link.held]
            waiting, self._held_new = self._held_new, []
        for link in held:
            link.close()
        for sock in waiting:
            _reset(sock)

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=_JOIN_SECONDS)
        with self._lock:
            links = list(self._links)
            waiting, self._held_new = self._held_new, []
        for link in links:
            link.close()
            link.thread.join(timeout=_JOIN_SECONDS)
        for sock in waiting:
            _reset(sock)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                mode = self._mode
                if mode == "blackhole":
                    self._held_new.append(client)
                    self.refused += 1
                    continue
                if mode == "refuse":
                    self.refused += 1
                else:
                    self.accepted += 1
                    link = _Link(self, client)
                    self._links.add(link)
            if mode == "refuse":
                _reset(client)
                continue
            link.thread.start()

    def _trips_on(self, data: bytes, link: _Link) -> bool:
        """True when `data` from `link`'s client sets off an armed `cut(after=...)`; the other links are
        reset then and there, and new ones from then on."""
        with self._lock:
            if self._trigger is None or self._trigger not in data:
                return False
            self._trigger = None
            self._mode = "refuse"
            others = [other for other in self._links if other is not link]
        for other in others:
            other.close()
        self.tripped.set()
        return True

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
