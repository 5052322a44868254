"""Schemathesis over the whole OpenAPI schema, in-process over ASGI: no 5xx, and every response is one the
schema declares (status code, content type and body).

Schemathesis runs the app's lifespan (store, hub) around the requests itself, and ends it when each test
ends. The page (`/`, `/ui`) and the stream (`/activities/ws`) are not in the OpenAPI schema, so they are not
fuzzed here. Generation is derandomised, so CI fuzzes the same cases on every run.

The schema is loaded at import, as `@schema.parametrize()` needs it to make one test per operation
(`schemathesis.pytest.from_fixture` does not work with pytest 9), so the app's database lives in a
directory made at import and removed at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from activity_feed.api import create_app
from activity_feed.settings import Settings
from tests.otlp.exporters import protobuf_body
from tests.otlp.spans import SpanMaker, call_spans

_MIN_CASES = 1_000
# Hypothesis examples per operation. Operations without parameters (`/health`) have a single case, so the
# others carry the total past `_MIN_CASES`; it is asserted once every operation has run.
_MAX_EXAMPLES = 200
_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

_DIRECTORY = Path(tempfile.mkdtemp(prefix="activity-feed-fuzz-"))
atexit.register(shutil.rmtree, _DIRECTORY, ignore_errors=True)
# Schemathesis addresses the app as http://testserver, a name the feed answers to only when allowed.
app = create_app(
    Settings(
        database_url=f"sqlite:///{_DIRECTORY / 'f.db'}",
        broadcast_url="memory://",
        allowed_hosts=["testserver"],
    )
)


# `POST /v1/traces` takes protobuf, which Schemathesis cannot make from a JSON Schema: real OTLP exports of
# one MCP call (the client's and the server's span), whole, cut short or with a byte flipped, and bytes
# of any kind.
def _otlp_exports() -> list[bytes]:
    client, server = SpanMaker("fuzz-client"), SpanMaker("fuzz-server")
    spans = call_spans(client, server)
    return [protobuf_body(spans), protobuf_body(spans[:1]), protobuf_body([])]


@st.composite
def _damaged(draw: st.DrawFn, whole: list[bytes]) -> bytes:
    body = bytearray(draw(st.sampled_from(whole)))
    if body and draw(st.booleans()):
        at = draw(st.integers(0, len(body) - 1))
        body[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(body[: draw(st.integers(0, len(body)))]) if draw(st.booleans()) else bytes(body)


_EXPORTS = _otlp_exports()
schemathesis.openapi.media_type(
    "application/x-protobuf",
    st.one_of(st.sampled_from(_EXPORTS), _damaged(_EXPORTS), st.binary(max_size=512)),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)

_cases: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _count_cases() -> Iterator[None]:
    yield
    total = sum(_cases.values())
    print(f"\nfuzzed {total} cases: " + ", ".join(f"{label} {n}" for label, n in sorted(_cases.items())))
    operations = {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}
    if operations <= set(_cases):  # only a run of every operation must reach the total
        assert total >= _MIN_CASES, f"only {total} cases were generated, fewer than {_MIN_CASES}"


@schema.parametrize()
@settings(
    max_examples=_MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case: Any) -> None:
    _cases[f"{case.method.upper()} {case.operation.path}"] += 1
    case.call_and_validate(checks=_CHECKS)
