"""`serve` refuses a non-loopback address without a token unless told `--insecure`, in one line."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from activity_feed.api.server import is_loopback
from tests.cli.test_main import SCRIPT, STOP_TIMEOUT_SECONDS, clean_env, run_cli, wait_until_healthy
from tests.support.server import free_port

TOKEN = "serve-test-token"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path, host: str) -> None:
    result = run_cli(["serve", "--host", host, "--port", str(free_port())], tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("activity-feed: refusing to serve on")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "ACTIVITY_FEED_TOKEN" in result.stderr
    assert "--insecure" in result.stderr
    assert not (tmp_path / "activity_feed.db").exists()  # refused before touching the database


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("", False),
        ("feed.local", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


class Serve:
    """`activity-feed serve` as a subprocess, stopped (and reaped) when the test ends."""

    def __init__(
        self, tmp_path: Path, args: list[str], env: dict[str, str], *, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.stderr = (tmp_path / "stderr.txt").open("w+")
        self.process = subprocess.Popen(
            [
                str(SCRIPT),
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                f"sqlite:///{tmp_path / 'f.db'}",
                *args,
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            text=True,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for process in started:
        process.stop()


def test_serve_on_all_addresses_with_insecure_starts_open(tmp_path: Path, serve: list[Serve]) -> None:
    serve.append(Serve(tmp_path, ["--host", "0.0.0.0", "--insecure"], clean_env()))

    wait_until_healthy(serve[0].url, serve[0].process)
    assert httpx.get(f"{serve[0].url}/activities/recent", timeout=5).status_code == 200


@pytest.mark.parametrize("from_env", [True, False], ids=["env", "flag"])
def test_serve_on_all_addresses_with_a_token_starts_and_requires_it(
    tmp_path: Path, serve: list[Serve], from_env: bool
) -> None:
    args = ["--host", "0.0.0.0"] + ([] if from_env else ["--token", TOKEN])
    env = clean_env(ACTIVITY_FEED_TOKEN=TOKEN) if from_env else clean_env()
    serve.append(Serve(tmp_path, args, env))

    wait_until_healthy(serve[0].url, serve[0].process)
    without = httpx.get(f"{serve[0].url}/activities/recent", timeout=5)
    with_token = httpx.get(
        f"{serve[0].url}/activities/recent", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )

    assert without.status_code == 401
    assert with_token.status_code == 200


def test_serve_on_all_addresses_without_a_token_answers_loopback_and_allowed_hosts_only(
    tmp_path: Path, serve: list[Serve]
) -> None:
    # Reached by the machine's name, an open feed could be reached by a DNS-rebinding page's name too:
    # `serve` says at start what to set, and the refusal says it again.
    name = socket.gethostname()
    (tmp_path / "open").mkdir()
    serve.append(Serve(tmp_path / "open", ["--host", "0.0.0.0", "--insecure"], clean_env()))
    wait_until_healthy(serve[0].url, serve[0].process)

    by_name = httpx.get(
        f"{serve[0].url}/activities/recent", headers={"Host": f"{name}:{serve[0].port}"}, timeout=5
    )
    by_loopback = httpx.get(f"{serve[0].url}/activities/recent", timeout=5)
    serve[0].stderr.seek(0)
    start_up = serve[0].stderr.read()

    assert by_name.status_code == 421, by_name.text
    assert "ACTIVITY_FEED_ALLOWED_HOSTS" in by_name.json()["detail"]
    assert by_loopback.status_code == 200
    assert "activity-feed: no token: only requests addressed to localhost" in start_up, start_up
    assert f"set ACTIVITY_FEED_ALLOWED_HOSTS={name}" in start_up, start_up

    (tmp_path / "allowed").mkdir()
    env = clean_env(ACTIVITY_FEED_ALLOWED_HOSTS=name)
    serve.append(Serve(tmp_path / "allowed", ["--host", "0.0.0.0", "--insecure"], env))
    wait_until_healthy(serve[1].url, serve[1].process)

    allowed = httpx.get(
        f"{serve[1].url}/activities/recent", headers={"Host": f"{name}:{serve[1].port}"}, timeout=5
    )
    serve[1].stderr.seek(0)

    assert allowed.status_code == 200, allowed.text
    assert "ACTIVITY_FEED_ALLOWED_HOSTS" not in serve[1].stderr.read()


def ipv6_loopback_port() -> int | None:
    """A free port on ::1, or None when this machine has no IPv6 loopback."""
    if not socket.has_ipv6:
        return None
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port: int = probe.getsockname()[1]
    except OSError:
        return None
    return port


@pytest.mark.parametrize("host", ["[::1]", "::1"])
def test_serve_binds_the_ipv6_loopback(tmp_path: Path, serve: list[Serve], host: str) -> None:
    port = ipv6_loopback_port()
    if port is None:
        pytest.skip("this machine has no IPv6 loopback address (::1) to bind")
    serve.append(Serve(tmp_path, ["--host", host], clean_env(), port=port, host="[::1]"))

    wait_until_healthy(serve[0].url, serve[0].process)
    # httpx sends `Host: [::1]:<port>`, which the feed (open: no token) must answer.
    recent = httpx.get(f"{serve[0].url}/activities/recent", timeout=5)

    assert recent.status_code == 200, recent.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)  # bound to ::1 alone
