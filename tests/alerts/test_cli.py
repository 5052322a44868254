"""`activity-feed alerts check` and `alerts test`, and `serve` refusing a bad alerts file."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity_feed.cli.main import main
from tests.alerts.conftest import rules_file
from tests.cli.test_main import run_cli
from tests.support.webhooks import WebhookReceiver

RULE = """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 3
webhooks = ["ops"]
"""
BAD = """
[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 3
webhooks = ["pager"]
"""


def test_check_says_ok_and_exits_0(
    tmp_path: Path, hooks: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules_file(tmp_path / "alerts.toml", hooks, RULE)
    assert main(["alerts", "check", str(path)]) == 0
    assert capsys.readouterr().out == "1 rule, 1 webhook: ok\n"


def test_check_names_the_line_and_exits_2(
    tmp_path: Path, hooks: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules_file(tmp_path / "alerts.toml", hooks, BAD)  # the webhook takes lines 1-4
    assert main(["alerts", "check", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"activity-feed: the alerts file {path} has a problem:\n"
        f"  {path}:10: rule 'streak': unknown webhook 'pager' (defined: 'ops')\n"
    )


def test_test_reports_each_webhook_and_exits_1_when_one_fails(
    tmp_path: Path, hooks: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks.answer("/gone", 404)
    path = rules_file(tmp_path / "alerts.toml", hooks, RULE, webhooks={"ops": "/ops", "gone": "/gone"})
    assert main(["alerts", "test", "--alerts", str(path)]) == 1
    assert capsys.readouterr().out == "ops   delivered (HTTP 200)\ngone  failed (HTTP 404: {})\n"
    [body] = hooks.bodies("/ops")
    assert body["state"] == "test"
    assert body["text"] == "[test] Activity Feed alerts can reach the webhook 'ops'."

    path = rules_file(tmp_path / "alerts.toml", hooks, RULE)
    assert main(["alerts", "test", "--alerts", str(path)]) == 0


def test_test_without_a_file_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACTIVITY_FEED_ALERTS", raising=False)
    assert main(["alerts", "test"]) == 2
    assert "no alerts file: pass --alerts FILE or set ACTIVITY_FEED_ALERTS" in capsys.readouterr().err


def test_serve_refuses_a_bad_file_before_touching_the_database(
    tmp_path: Path, hooks: WebhookReceiver
) -> None:
    path = rules_file(tmp_path / "alerts.toml", hooks, BAD)
    database = tmp_path / "feed.db"
    result = run_cli(
        ["serve", "--port", "0", "--database-url", f"sqlite:///{database}", "--alerts", str(path)], tmp_path
    )
    assert result.returncode == 2
    assert f"{path}:10: rule 'streak': unknown webhook 'pager'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists()


def test_test_reports_a_url_that_httpx_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Passes the check (a host, a scheme), but httpx cannot encode the host name: not a connection error.
    path = tmp_path / "alerts.toml"
    path.write_text('[[webhooks]]\nname = "ops"\nurl = "http://u:p@xn--zz/hook"\n')
    assert main(["alerts", "test", "--alerts", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ops  failed (cannot post: "), out
    assert out.count("\n") == 1, out


def test_test_never_prints_a_webhook_url_secret(
    tmp_path: Path, hooks: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Slack-style URL holds its secret in the path, which many servers' error pages repeat.
    secret = "/services/T000/B000/secretpath"
    hooks.answer(secret, 404, body=f'{{"error": "no route for POST {secret}"}}')
    url = hooks.url(secret).replace("http://", "http://user:secretpw@")
    path = tmp_path / "alerts.toml"
    path.write_text(f'[[webhooks]]\nname = "ops"\nurl = "{url}"\n')
    assert main(["alerts", "test", "--alerts", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ops  failed (HTTP 404: "), out
    assert "secretpath" not in out
    assert "secretpw" not in out
