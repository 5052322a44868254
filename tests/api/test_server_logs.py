"""Tokens never reach the server's log, however the query spells them: `activity-feed serve` as a real
process, its log (uvicorn's access log and handshake lines) read from its output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from activity_feed.api.server import RedactTokenFilter
from tests.support.service import ServiceProcess

TOKEN = "service-log-token"
WAIT_SECONDS = 10.0
# Each query carries a secret of its own, so that the log shows which spelling leaked.
SPELLINGS = {
    "plain": "token={secret}",
    "encoded-name": "%74oken={secret}",
    "encoded-upper": "%54OKEN={secret}",
    "capitalised": "Token={secret}",
    "after-semicolon": "limit=5;token={secret}",
    "repeated": "token={secret}&token={secret}-again",
    "plus-prefixed": "+token={secret}",
    "double-encoded": "%2574oken={secret}",
    "encoded-equals": "token%3D{secret}",
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        f"sqlite:///{tmp_path / 'feed.db'}",
        tmp_path / "serve.log",
        extra_args=["--log-level", "info", "--token", TOKEN],
    )
    process.start()
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def secret(name: str) -> str:
    return f"secret-{name}-0123456789"


def test_the_stream_takes_a_percent_encoded_token_name(service: ServiceProcess) -> None:
    # What makes the redaction necessary: the stream decodes the name, so `%74oken` is a token.
    with connect(f"{service.ws_url}/activities/ws?%74oken={TOKEN}", open_timeout=WAIT_SECONDS):
        pass


def test_no_spelling_of_a_token_reaches_the_log(service: ServiceProcess) -> None:
    with httpx.Client(base_url=service.url, timeout=WAIT_SECONDS) as http:
        for name, query in SPELLINGS.items():
            target = f"/activities/recent?{query.format(secret=secret(name))}"
            http.get(target, headers={"Authorization": f"Bearer {TOKEN}"})
            with connect(
                f"{service.ws_url}/activities/ws?{query.format(secret=secret(name))}",
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
                open_timeout=WAIT_SECONDS,
            ):
                pass
        # The access log is written after the response: one more request orders the last one's line.
        http.get("/health")
    service.stop()  # and the process's output is complete

    log = service.log()
    assert "/activities/ws?%74oken=[redacted]" in log, log
    assert "/activities/recent?limit=5;token=[redacted]" in log, log
    assert log.count("[redacted]") >= 2 * (len(SPELLINGS) + 1), log
    leaked = [name for name in SPELLINGS if secret(name) in log]
    assert leaked == [], log
    assert TOKEN not in log


def test_parameters_that_are_not_tokens_are_left_alone() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/activities/recent?limit=5&tokens=2;before=x&token=", "1.1", 200),
        None,
    )

    RedactTokenFilter().filter(record)

    assert record.getMessage() == (
        '127.0.0.1:5000 - "GET /activities/recent?limit=5&tokens=2;before=x&token= HTTP/1.1" 200'
    )
