"""Event ids made from what a span knows, so that the same span, or the other view of the same call,
always names the same places (UUIDv5 of a name in the feed's own namespace).

- a request: its trace, its JSON-RPC request id and its method, which the client's span and the
  server's span both carry;
- a link: the caller's span, which the client's span is and the server's span names as its remote
  parent (some clients record no request id, but every propagating one links its spans this way);
- the span itself, the last resort, which nothing else names.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f0e5a43-7c1b-5d2e-9a8f-0b1c2d3e4f50")


def request_key(trace_id: str, request_id: str, method: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"request\n{trace_id}\n{request_id}\n{method}")


def link_key(trace_id: str, caller_span_id: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"link\n{trace_id}\n{caller_span_id}")


def span_key(trace_id: str, span_id: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"span\n{trace_id}\n{span_id}")
