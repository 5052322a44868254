"""Whether a stored event and an incoming one are views of the same call, and the event they make together
(the store's `Combine`, run inside its write transaction).

The same call: the same method in the same trace, with the same request id when both know one, and no
kind of view twice with different spans (two SERVER spans are two calls, whatever their ids say). A
server span whose parent is remote names its caller's span: a client span other than that one is another
call's. Anything else (an HTTP request, an event of another source) is the same only as the very same
span, sent again.
"""

from __future__ import annotations

from typing import Any

from activity_feed.otlp.calls import CLIENT_SPAN, SERVER_SPAN, Call, View, build_event, call_of
from activity_feed.schemas import ActivityCreate, ActivityPublic


def combine(stored: ActivityPublic, incoming: ActivityCreate) -> ActivityCreate | None:
    """The event `stored` and `incoming` make together, or None when they are not views of one call."""
    theirs = call_of(incoming.data)
    if theirs is None:
        return incoming if _span_of(stored.data) == _span_of(incoming.data) is not None else None
    ours = call_of(stored.data)
    if ours is None:
        return None
    (call, views), (new_call, new_views) = ours, theirs
    if call.method != new_call.method or call.trace_id != new_call.trace_id:
        return None
    known = call.request_id is not None and new_call.request_id is not None
    if known and str(call.request_id) != str(new_call.request_id):
        return None
    for kind, view in new_views.items():
        held = views.get(kind)
        if held is not None and held["span_id"] != view["span_id"]:
            return None
    merged = {**new_views, **views}  # a view held already stays as stored: the same span sent again
    if not _linked(merged):
        return None
    return build_event(_joined(call, new_call), merged, incoming.id)


def _linked(views: dict[str, View]) -> bool:
    client, server = views.get(CLIENT_SPAN), views.get(SERVER_SPAN)
    if client is None or server is None or server.get("remote_parent") is not True:
        return True
    return bool(server.get("parent_span_id") == client["span_id"])


def _joined(call: Call, other: Call) -> Call:
    """`call` with what only `other` knows (a view may carry the arguments or the result, the other not)."""
    return Call(
        method=call.method,
        trace_id=call.trace_id,
        request_id=call.request_id if call.request_id is not None else other.request_id,
        target=call.target if call.target is not None else other.target,
        arguments=call.arguments if call.arguments is not None else other.arguments,
        result=call.result if call.result is not None else other.result,
        redacted=[*call.redacted, *(path for path in other.redacted if path not in call.redacted)],
    )


def _span_of(data: dict[str, Any]) -> tuple[Any, Any] | None:
    otlp = data.get("otlp")
    if not isinstance(otlp, dict) or otlp.get("span_id") is None:
        return None
    return otlp.get("trace_id"), otlp.get("span_id")
