"""The answers OTLP/HTTP specifies, in the encoding of the request: an `ExportTraceServiceResponse` (with
`partial_success` when some spans were not stored), or a `google.rpc.Status` for a refusal.

`Status` is not among opentelemetry-proto's messages; it is declared here, in a descriptor pool of its own
so that it never clashes with the `google.rpc` package another library may have loaded, and encoded by
protobuf like any other message.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

# gRPC status codes, as `Status.code` takes them.
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14


def _status_class() -> Any:
    proto = descriptor_pb2.FileDescriptorProto(
        name="activity_feed/otlp/status.proto", package="google.rpc", syntax="proto3"
    )
    message = proto.message_type.add(name="Status")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    message.field.add(
        name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32, label=optional
    )
    message.field.add(
        name="message", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=optional
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


_Status = _status_class()


def export_answer(*, rejected: int, message: str | None, as_json: bool) -> bytes:
    """The success answer; `partial_success` only when some spans were not stored."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message or ""
    if as_json:
        return orjson.dumps(json_format.MessageToDict(response))
    return bytes(response.SerializeToString())


def status_answer(code: int, message: str, *, as_json: bool) -> bytes:
    """A refusal's body: `Status` (the JSON one also says it as `detail`, like the feed's other answers)."""
    if as_json:
        return orjson.dumps({"code": code, "message": message, "detail": message})
    return bytes(_Status(code=code, message=message).SerializeToString())
