"""Requests that carry a body (POST, PUT, PATCH) must declare it as a type their endpoint takes: 415 if not.

A web page may send another site a POST whose body is `text/plain`, a form or multipart without asking
first (no CORS preflight); a body declared `application/json` needs a preflight, which the feed grants only
to ACTIVITY_FEED_ALLOWED_ORIGINS. Reading whatever arrives as JSON would let any page write to a feed on
localhost. Each path prefix declares the types it takes (`accepted`), so that an endpoint taking another
format (protobuf, say) adds one entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_TYPES = ("application/json", "application/*+json")
# The feed's own endpoints that take a body: JSON, and OTLP's two encodings on its trace endpoint.
FEED_BODY_TYPES: dict[str, Sequence[str]] = {
    "/activities": JSON_TYPES,
    "/v1/traces": ("application/x-protobuf", "application/json"),
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SHOWN_TYPE_CHARS = 100


class MediaTypes:
    """Media types compared as HTTP says: without parameters (`; charset=utf-8`), in any case. A
    `type/*+suffix` entry takes any subtype with that structured suffix (`application/*+json`)."""

    def __init__(self, media_types: Sequence[str]) -> None:
        if not media_types:
            raise ValueError("at least one media type is needed")
        self.exact = tuple(kind.lower() for kind in media_types if "*" not in kind)
        self._exact = frozenset(self.exact)
        self._exact_raw = frozenset(kind.encode() for kind in self.exact)
        self._suffixed = tuple(_split_pattern(kind.lower()) for kind in media_types if "*" in kind)
        self.listed = " or ".join(kind.lower() for kind in media_types)

    def accepts(self, raw: bytes) -> bool:
        if raw in self._exact_raw:  # what nearly every client sends: no parsing
            return True
        essence = raw.partition(b";")[0].strip().decode("latin-1").lower()
        if essence in self._exact:
            return True
        return any(
            essence.startswith(kind) and essence.endswith(suffix) and len(essence) > len(kind) + len(suffix)
            for kind, suffix in self._suffixed
        )

    def refusal(self, raw: bytes | None) -> JSONResponse:
        sent = "no Content-Type" if raw is None else f"Content-Type `{_shown(raw)}`"
        detail = (
            f"the body must be {self.listed}, declared as such: send `Content-Type: {self.exact[0]}` "
            f"(this request has {sent})"
        )
        # RFC 9110: a 415 for a media type may say in `Accept` which ones would have been taken.
        return JSONResponse({"detail": detail}, status_code=415, headers={"Accept": ", ".join(self.exact)})


def _split_pattern(pattern: str) -> tuple[str, str]:
    kind, _, suffix = pattern.partition("/*")
    return f"{kind}/", suffix


def _shown(raw: bytes) -> str:
    return raw.decode("latin-1")[:_SHOWN_TYPE_CHARS]


class ContentTypeMiddleware:
    """Answer 415 to a POST, PUT or PATCH under a prefix of `accepted` whose Content-Type is not one of
    that prefix's types (the longest matching prefix decides). Other requests pass untouched."""

    def __init__(self, app: ASGIApp, *, accepted: Mapping[str, Sequence[str]]) -> None:
        self.app = app
        by_length = sorted(accepted.items(), key=lambda item: len(item[0]), reverse=True)
        self.rules = [(prefix, MediaTypes(types)) for prefix, types in by_length]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            path: str = scope["path"]
            for prefix, types in self.rules:
                if path.startswith(prefix):
                    raw = _content_type(scope)
                    if raw is None or not types.accepts(raw):
                        await types.refusal(raw)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def _content_type(scope: Scope) -> bytes | None:
    # The raw header list, in a plain loop: this runs on every ingest request, where a Headers object
    # or a generator cost more than the check itself.
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-type":
            return value
    return None
