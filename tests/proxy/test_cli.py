"""`activity-feed proxy`'s command line: its help, what follows `--`, and settings it cannot use."""

from __future__ import annotations

import pytest

from activity_feed.cli.main import _parser, main
from tests.proxy.processes import exchange, proxy_command, start
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


def test_a_token_that_cannot_be_sent_stops_the_recording_not_the_relay(sqlite_feed: LiveServer) -> None:
    process = start(proxy_command(sqlite_feed.url, "cat", options=["--token", "two words"]))
    out, err = exchange(process, [b"hello\n"])
    assert process.returncode == 0
    assert out == b"hello\n"
    assert b"activity-feed proxy: not recording:" in err
