"""The HTTP relay over real sockets, between a real client and a real upstream: bodies byte for byte
both ways, headers both ways without the hop-by-hop ones, statuses and error bodies unchanged, SSE events
as they come, streams that end at either side, an upstream that is down or fails mid-response, and
requests the relay refuses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from tests.proxy.http_peers import WAIT_SECONDS, ByteUpstream, MiB, RelayThread, random_bytes
from tests.support.server import LiveServer, free_port

REPLY = random_bytes(3 * MiB + 7, seed=1)


@pytest.fixture
def upstream() -> ByteUpstream:
    return ByteUpstream(REPLY)


# Every behaviour holds whether the relay sleeps between messages or polls after each request.
@pytest.fixture(params=[0.0, 0.003], ids=["sleeping", "polling"])
def relay(
    upstream: ByteUpstream, live_server: Callable[..., LiveServer], request: pytest.FixtureRequest
) -> Iterator[RelayThread]:
    server = live_server(app=upstream)
    relay = RelayThread(f"{server.url}/mcp", busy_poll=request.param).start()
    yield relay
    relay.stop()


@pytest.fixture
def http(relay: RelayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay.url, timeout=WAIT_SECONDS) as client:
        yield client


def test_bodies_cross_byte_for_byte_both_ways(http: httpx.Client, upstream: ByteUpstream) -> None:
    sent = random_bytes(2 * MiB + 3, seed=2)
    response = http.post("/echo", content=sent)
    assert response.status_code == 200
    assert upstream.seen[-1].body == sent
    assert response.content == REPLY

    # A request body in chunks of no announced length, and a response of none either.
    pieces = [sent[:1000], sent[1000:MiB], sent[MiB:]]
    response = http.post("/stream", content=iter(pieces))
    assert upstream.seen[-1].body == sent
    assert response.content == REPLY
    assert response.headers["x-kind"] == "stream"


def test_end_to_end_headers_pass_both_ways_and_hop_by_hop_ones_do_not(
    http: httpx.Client, upstream: ByteUpstream, relay: RelayThread
) -> None:
    headers = [
        ("Authorization", "Bearer sk-live-secret"),
        ("Mcp-Session-Id", "abc123"),
        ("Mcp-Protocol-Version", "2025-06-18"),
        ("Last-Event-ID", "42"),
        ("X-Twice", "one"),
        ("X-Twice", "two"),
        ("Connection", "keep-alive, x-private"),
        ("X-Private", "for the proxy only"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "Basic cHJveHk6cHJveHk="),
    ]
    response = http.post("/echo?a=1&b=%2F", content=b"{}", headers=headers)
    seen = upstream.seen[-1]
    assert (seen.method, seen.path, seen.query) == ("POST", b"/echo", b"a=1&b=%2F")
    assert seen.header(b"authorization") == [b"Bearer sk-live-secret"]
    assert seen.header(b"mcp-session-id") == [b"abc123"]
    assert seen.header(b"mcp-protocol-version") == [b"2025-06-18"]
    assert seen.header(b"last-event-id") == [b"42"]
    assert seen.header(b"x-twice") == [b"one", b"two"]
    for hop in (b"x-private", b"keep-alive", b"te", b"proxy-authorization"):
        assert seen.header(hop) == [], hop
    assert seen.header(b"connection") in ([], [b"keep-alive"])  # the upstream side's own, if any
    host = seen.header(b"host")
    assert host != [f"127.0.0.1:{relay.port}".encode()]  # the upstream's name, not the relay's

    assert response.headers["x-custom"] == "kept"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["mcp-session-id"] == "upstream-session"
    assert "x-hop" not in response.headers
    assert "keep-alive" not in response.headers


@pytest.mark.parametrize("status", [400, 401, 404, 405, 500, 503])
def test_upstream_errors_come_back_unchanged(
    status: int, http: httpx.Client, live_server: Callable[..., LiveServer], upstream: ByteUpstream
) -> None:
    direct = httpx.post(
        f"{live_server(app=upstream).url}/status/{status}", content=b"{}", timeout=WAIT_SECONDS
    )
    relayed = http.post(f"/status/{status}", content=b"{}")
    assert relayed.status_code == direct.status_code == status
    assert relayed.content == direct.content
    assert relayed.headers["content-type"] == direct.headers["content-type"]


def test_methods_and_paths_other_than_the_endpoint_pass_through(
    http: httpx.Client, upstream: ByteUpstream
) -> None:
    for method in ("GET", "DELETE", "PUT", "PATCH", "OPTIONS"):
        response = http.request(method, "/.well-known/oauth-protected-resource/mcp?x=%20y")
        assert response.status_code == 200
        assert response.content == b"ok"
        assert (upstream.seen[-1].method, upstream.seen[-1].path) == (
            method,
            b"/.well-known/oauth-protected-resource/mcp",
        )
        assert upstream.seen[-1].query == b"x=%20y"
    head = http.head("/echo")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(REPLY))
    assert head.content == b""
    assert http.get("/other").content == b"ok"  # the connection after a HEAD still works


def test_sse_events_come_through_one_by_one(http: httpx.Client, upstream: ByteUpstream) -> None:
    with http.stream("GET", "/sse", headers={"accept": "text/event-stream"}) as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = response.iter_lines()
        first = [next(lines), next(lines)]
        # The upstream sends the second event only once the first has reached the client.
        assert first == ["event: message", 'data: {"n":1}']
        upstream.release.set()
        rest = list(lines)
    assert 'data: {"n":2}' in rest


def test_a_client_that_leaves_a_stream_ends_it_upstream(http: httpx.Client, upstream: ByteUpstream) -> None:
    with http.stream("GET", "/forever") as response:
        assert next(response.iter_lines()) == "event: message"
    # Leaving the block closed the connection; the relay closes its own to the upstream.
    assert upstream.left.wait(WAIT_SECONDS)


def test_an_upstream_that_is_down_gets_a_502_that_says_so() -> None:
    relay = RelayThread(f"http://127.0.0.1:{free_port()}/mcp").start()
    try:
        request = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "x"}}
        response = httpx.post(f"{relay.url}/mcp", content=orjson.dumps(request), timeout=WAIT_SECONDS)
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["id"] == 7
        assert body["error"]["code"] == -32000
        assert "unreachable" in body["error"]["message"]
        assert httpx.get(f"{relay.url}/mcp", timeout=WAIT_SECONDS).json()["id"] is None
    finally:
        relay.stop()


def test_an_upstream_that_fails_mid_response_cuts_the_client_short(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/cut")
    assert http.get("/other").content == b"ok"  # a new connection, a new upstream connection


def _raw(relay: RelayThread, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=WAIT_SECONDS) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_requests_the_relay_cannot_pass_on_get_a_4xx_that_says_why(relay: RelayThread) -> None:
    garbage = _raw(relay, b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert b"invalid HTTP request" in garbage
    huge = _raw(relay, b"GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431 ")
    connect = _raw(relay, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert connect.startswith(b"HTTP/1.1 501 ")


def test_pipelined_requests_are_answered_in_order(relay: RelayThread, upstream: ByteUpstream) -> None:
    requests = b"".join(
        b"POST /status/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % code for code in (400, 500)
    )
    answer = _raw(relay, requests + b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (
        answer.index(b"upstream says 400") < answer.index(b"upstream says 500") < answer.index(b"\r\n\r\nok")
    )


def test_an_http_1_0_client_reads_a_stream_to_the_end_of_the_connection(relay: RelayThread) -> None:
    answer = _raw(relay, b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert body == REPLY


async def test_clients_at_once_each_get_their_own_answer(relay: RelayThread, upstream: ByteUpstream) -> None:
    bodies = [random_bytes(10_000 + n, seed=100 + n) for n in range(20)]
    async with httpx.AsyncClient(base_url=relay.url, timeout=WAIT_SECONDS) as http:
        answers = await asyncio.gather(*(http.post("/echo", content=body) for body in bodies))
    assert all(answer.content == REPLY for answer in answers)
    assert sorted(seen.body for seen in upstream.seen) == sorted(bodies)
