"""`activity-feed proxy`'s command line: its help, what follows `--`, and settings it cannot use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from activity_feed.cli.main import _parser, main
from tests.proxy.processes import EXCHANGE_SECONDS, environment, exchange, proxy_command, start
from tests.support.server import LiveServer


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["proxy", "--help"])
    shown = capsys.readouterr().out
    for option in ("--feed-url", "--token", "--source", "--record", "COMMAND"):
        assert option in shown


def test_everything_after_the_double_dash_is_the_servers() -> None:
    args = _parser().parse_args(["proxy", "--record", "all", "--", "npx", "-y", "server", "--record", "x"])
    assert args.record == "all"
    assert args.server_command == ["--", "npx", "-y", "server", "--record", "x"]


def test_an_unknown_record_mode_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--record", "everything", "--", "cat"])
    assert exited.value.code == 2
    assert "tools" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "0.5", "soon", "100001"])
def test_a_busy_poll_that_is_not_whole_microseconds_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--busy-poll", value, "--", "cat"])
    assert exited.value.code == 2
    assert "expected microseconds from 0 to 100000" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "65536", "99999", "http"])
def test_a_port_out_of_range_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--upstream", "http://127.0.0.1:1/mcp", "--port", value])
    assert exited.value.code == 2
    assert "expected a port from 0 to 65535" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mode", [["--upstream", "http://127.0.0.1:1/mcp"], ["--", "cat"]], ids=["http", "stdio"]
)
def test_a_feed_url_without_its_scheme_is_refused_before_anything_starts(
    mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proxy", "--feed-url", "127.0.0.1:8000", *mode]) == 2
    assert "--feed-url: must start with http:// or https://, not '127.0.0.1:8000'" in capsys.readouterr().err


def test_the_stdout_it_shares_with_its_parent_stays_blocking() -> None:
    # The polling relay writes through a non-blocking description of its own: the shell's, which the
    # next command inherits, must be as it was.
    check = "import os, sys; sys.stdout.write(str(os.get_blocking(1)))"
    script = '"$@" && exec "$0" -c "$CHECK"'
    process = subprocess.run(
        ["sh", "-c", script, sys.executable, *proxy_command("http://127.0.0.1:1", "echo", "relayed")],
        input=b"",
        capture_output=True,
        timeout=EXCHANGE_SECONDS,
        env=environment(CHECK=check),
        check=False,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    assert process.stdout == b"relayed\nTrue"


def test_a_token_that_cannot_be_sent_stops_the_recording_not_the_relay(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, "cat", options=["--token", "two words"]))
    out, err = exchange(process, [b"hello\n"])
    assert process.returncode == 0
    assert out == b"hello\n"
    assert b"activity-feed proxy: not recording:" in err
