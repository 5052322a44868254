"""Event ids made from what a span knows, so that the same span, or the other view of the same call,
always names the same places (UUIDv5 of a name in the feed's own namespace).

- a request: its trace, its JSON-RPC request id and its method, which the client's span and the
  server's span both carry;
- a link: the caller's span, which the client's span is and the server's span names as its remote
  parent (some clients record no request id, but every propagating one links its spans this way);
- the span itself, the last resort, which nothing else names.
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6f0e5a43-7c1b-5d2e-9a8f-0b1c2d3e4f50")
_PREFIX = NAMESPACE.bytes
_new_uuid = uuid.UUID.__new__
_set = object.__setattr__
# RFC 9562: version 5 in bits 76-79, the variant in bits 62-63.
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_MARK = (0x5 << 76) | (0x2 << 62)


def uuid5(name: str) -> uuid.UUID:
    """`uuid.uuid5(NAMESPACE, name)`, made without `UUID.__init__`'s checks (three per span)."""
    value = int.from_bytes(hashlib.sha1(_PREFIX + name.encode()).digest()[:16]) & _CLEAR | _MARK
    made = _new_uuid(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def request_key(trace_id: str, request_id: str, method: str) -> uuid.UUID:
    return uuid5(f"request\n{trace_id}\n{request_id}\n{method}")


def link_key(trace_id: str, caller_span_id: str) -> uuid.UUID:
    return uuid5(f"link\n{trace_id}\n{caller_span_id}")


def span_key(trace_id: str, span_id: str) -> uuid.UUID:
    return uuid5(f"span\n{trace_id}\n{span_id}")
