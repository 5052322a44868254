"""`POST /v1/traces`: OTLP/HTTP trace ingest, so that any OpenTelemetry SDK pointed at the feed
(`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8000`) shows its MCP calls and HTTP requests live.

A pure ASGI middleware, like the other ingest endpoints (api/ingest.py), inside the token, Host and
Content-Type checks. It answers what the OTLP/HTTP specification asks, in the request's encoding: 200 with
an `ExportTraceServiceResponse` (`partial_success` counts the spans not stored), 400 for a body that cannot
be decoded, 413 over the size limit (as sent or inflated), 415 for an encoding it cannot read, 429 while
the writer is behind, 503 while the database does not answer (both with `Retry-After`).

The decoding needs the `otlp` extra (opentelemetry-proto), imported on the first export: without it, the
endpoint answers 501 and says what to install.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import ModuleType

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from activity_feed.api.errors import RETRY_AFTER_SECONDS
from activity_feed.api.otlp_body import ENCODINGS, BadEncoding, BodyTooLarge, ClientGone, inflate, read_body
from activity_feed.errors import StoreUnavailableError
from activity_feed.redaction import Redactor
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore

OTLP_TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
OTLP_BODY_TYPES = (PROTOBUF, JSON)
# The writer is behind when this many of its transactions' worth of items wait for it: exporters are told
# to come back (429) rather than queue more.
BACKLOG_TRANSACTIONS = 10
_METHOD_NOT_ALLOWED = JSONResponse({"detail": "Method Not Allowed"}, 405, {"Allow": "POST"})
_NOT_INSTALLED = (
    "OTLP ingest needs the `otlp` extra, which is not installed here: "
    "pip install '.[otlp]' in Activity Feed's folder (make run installs it)"
)
# gRPC codes for `Status.code` (otlp/answers.py); defined here too so that refusals made before the
# extra is imported need no import of it.
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE = 3, 8, 14


class _Answers:
    """Answers in the encoding of one request (otlp/answers.py encodes them)."""

    def __init__(self, answers: ModuleType, *, as_json: bool) -> None:
        self._answers = answers
        self.as_json = as_json
        self.media_type = JSON if as_json else PROTOBUF

    def refusal(self, status: int, code: int, message: str, *, retry: bool = False) -> Response:
        body = self._answers.status_answer(code, message, as_json=self.as_json)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else None
        return Response(body, status_code=status, media_type=self.media_type, headers=headers)

    def accepted(self, rejected: int, message: str | None) -> Response:
        body = self._answers.export_answer(rejected=rejected, message=message, as_json=self.as_json)
        return Response(body, media_type=self.media_type)


class OtlpMiddleware:
    """Serve `POST /v1/traces` (405 for other methods there); pass anything else on to `app`."""

    def __init__(
        self, app: ASGIApp, *, store: ActivityStore, settings: Settings, max_backlog: int | None = None
    ) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.max_backlog = max_backlog or BACKLOG_TRANSACTIONS * settings.write_batch_size
        self.redactor = Redactor()
        self._modules: tuple[ModuleType, ModuleType] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != OTLP_TRACES_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _METHOD_NOT_ALLOWED(scope, receive, send)
            return
        response = await self._export(scope, receive)
        if response is not None:
            await response(scope, receive, send)

    def _load(self) -> tuple[ModuleType, ModuleType] | None:
        if self._modules is None:
            try:
                ingest = importlib.import_module("activity_feed.otlp.ingest")
                answers = importlib.import_module("activity_feed.otlp.answers")
            except ImportError:
                return None
            self._modules = ingest, answers
        return self._modules

    async def _export(self, scope: Scope, receive: Receive) -> Response | None:
        modules = self._load()
        if modules is None:
            return JSONResponse({"detail": _NOT_INSTALLED}, status_code=501)
        ingest, answers_module = modules
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        answers = _Answers(answers_module, as_json=content_type == JSON.encode())
        encoding = headers.get(b"content-encoding", b"").decode("latin-1").strip().lower()
        if encoding not in ENCODINGS:
            detail = f"Content-Encoding {encoding[:40]!r} is not supported: send gzip, deflate or none"
            return answers.refusal(415, _INVALID_ARGUMENT, detail)
        if self.store.write_backlog() > self.max_backlog:
            detail = "the feed is behind with its writes; retry later"
            return answers.refusal(429, _RESOURCE_EXHAUSTED, detail, retry=True)
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length", b"")
        try:
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(f"the body is over {limit} bytes")
            body = inflate(await read_body(receive, max_bytes=limit), encoding, max_bytes=limit)
        except ClientGone:
            return None
        except BodyTooLarge as exc:
            return answers.refusal(413, _RESOURCE_EXHAUSTED, f"{exc} (ACTIVITY_FEED_MAX_BODY_BYTES)")
        except BadEncoding as exc:
            return answers.refusal(400, _INVALID_ARGUMENT, str(exc))
        return await self._ingest(ingest, answers, body)

    async def _ingest(self, ingest: ModuleType, answers: _Answers, body: bytes) -> Response:
        settings = self.settings
        skew = settings.max_clock_skew
        try:
            request = ingest.decode_export(body, as_json=answers.as_json)
        except ingest.PayloadError as exc:
            return answers.refusal(400, _INVALID_ARGUMENT, str(exc))
        try:
            export = await ingest.store_export(
                self.store,
                request,
                redactor=self.redactor,
                latest=datetime.now(UTC) + skew if skew else None,
                max_data_bytes=settings.max_data_bytes,
            )
        except StoreUnavailableError as exc:
            return answers.refusal(503, _UNAVAILABLE, f"{exc}; retry later", retry=True)
        return answers.accepted(*export.rejection())
