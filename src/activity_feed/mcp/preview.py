"""What a tool call's outcome looks like in the feed: a short result preview and the error's real reason.

Shared by the SDK middleware, the fastmcp middleware and `track_tool`, so all three describe results
alike. Results come in several shapes (the SDK's wire dict with `isError`, a `CallToolResult` model,
fastmcp's `ToolResult`, or whatever a decorated function returns); nothing here imports the SDK, so
`track_tool` works without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

import orjson

PREVIEW_BYTES = 1024
MAX_ERROR_CHARS = 4000
TRUNCATED = "… [truncated]"
_TEXT = itemgetter("text")

# pydantic echoes the rejected input into its messages (`input_value={'password': ...}`): the caller's
# data, which may hold secrets the key-based redaction of `data` would have caught. Keep only the type.
_INPUT_VALUE = re.compile(r"input_value=.*?, (?=input_type=)", re.DOTALL)
_PYDANTIC_LINK = re.compile(r"\n? *For further information visit https://errors\.pydantic\.dev/\S*")


def truncate(text: str, limit: int = PREVIEW_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marker included, on a character boundary."""
    if len(text) <= limit and text.isascii():  # one byte per character, known without encoding
        return text
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    room = limit - len(TRUNCATED.encode())
    return encoded[:room].decode("utf-8", "ignore") + TRUNCATED


def _field(value: Any, name: str, attribute: str | None = None) -> Any:
    """`name` from a wire dict (camelCase), or `attribute` (default `name`) from a model (snake_case).

    Models are never asked for the camelCase name: fastmcp adds deprecated camelCase aliases to the
    SDK's models that warn when read.
    """
    if type(value) is dict:
        return value.get(name)
    # Attributes first: a model is no Mapping, and asking that of a class that is not one costs more
    # than the whole lookup (this runs several times inside every instrumented tool call).
    found = getattr(value, attribute or name, None)
    if found is None and isinstance(value, Mapping):
        return value.get(name)
    return found


def _block_text(block: Any) -> str:
    text = _field(block, "text")
    if isinstance(text, str):
        return text
    kind = _field(block, "type")
    if kind == "resource":
        resource = _field(block, "resource")
        inner = _field(resource, "text")
        return inner if isinstance(inner, str) else f"[resource {_field(resource, 'uri')}]"
    if kind == "resource_link":
        return f"[resource link {_field(block, 'uri')}]"
    if kind in ("image", "audio"):
        return f"[{kind} {_field(block, 'mimeType', 'mime_type') or ''}]".replace(" ]", "]")
    return f"[{kind or type(block).__name__}]"


def content_text(result: Any) -> str | None:
    """The text of an MCP tool result's content blocks, joined; None when it has no content list."""
    content = _field(result, "content")
    return _joined_text(content) if isinstance(content, list) else None


def _joined_text(content: list[Any]) -> str:
    # This runs inside every instrumented tool call. The wire dicts the SDK's middleware sees, all text
    # blocks, are joined in C (`map`); anything else is read block by block.
    if content and type(content[0]) is dict:
        try:
            return "\n".join(map(_TEXT, content))
        except (KeyError, TypeError):  # a block without text, or not a dict
            pass
    texts = [
        text
        if isinstance(text := block.get("text") if type(block) is dict else getattr(block, "text", None), str)
        else _block_text(block)
        for block in content
    ]
    return "\n".join(texts)


def is_error_result(result: Any) -> bool:
    """An MCP tool result flagged `isError` (wire dict, `CallToolResult` or fastmcp's `ToolResult`)."""
    return _field(result, "isError", "is_error") is True


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json", by_alias=True, exclude_none=True)
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def result_preview(result: Any) -> str:
    """At most 1 KiB of text saying what the tool returned."""
    content = result.get("content") if type(result) is dict else _field(result, "content")
    if isinstance(content, list):  # an MCP tool result
        text = _joined_text(content)
        if not text:
            structured = _field(result, "structuredContent", "structured_content")
            if structured is not None:
                text = _as_text(structured)
        return truncate(text)
    return truncate(_as_text(result))


def error_result_message(result: Any) -> str:
    """Why an `isError` result failed: the text the tool returned."""
    text = content_text(result)
    return clean_message(text) if text else "the tool returned an error result (isError) with no text"


def clean_message(text: str) -> str:
    """An error text without echoed input values or pydantic's help links, and of bounded length."""
    if "input_value=" in text:
        text = _INPUT_VALUE.sub("", text)
    if "errors.pydantic.dev" in text:
        text = _PYDANTIC_LINK.sub("", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - len(TRUNCATED)] + TRUNCATED


def exception_message(exc: BaseException) -> str:
    """The real reason a call raised: an `MCPError`'s message, a validation error's details, or
    `Type: message` (with the cause, when the exception wraps one)."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None)
    if isinstance(message, str):  # mcp.shared.exceptions.MCPError, without importing the SDK
        data = getattr(error, "data", None)
        if isinstance(data, str) and data and data not in message:
            message = f"{message}: {data}"
        return clean_message(message)
    text = str(exc)
    if type(exc).__name__ == "ValidationError":  # pydantic's, or fastmcp's subclass of ValueError
        return clean_message(text or "invalid arguments")
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        described += f" (caused by {type(cause).__name__}: {cause})"
    return clean_message(described)


def cause_message(exc: BaseException) -> str | None:
    """`Type: message` of what an SDK wrapper exception (`UnexpectedToolError`) was raised from."""
    cause = exc.__cause__ or exc
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
