"""`track_tool`: the same event lifecycle for any sync or async function, for servers built on anything.

    @track_tool(client, name="search_properties")
    async def search_properties(city: str) -> list[dict]: ...

The wrapper keeps the function's name, docstring, annotations and signature (`functools.wraps`, so
`inspect.signature` and frameworks that register tools from it see the original), logs a `pending`
event when called and updates it when the function returns or raises; an exception is re-raised
unchanged. A returned MCP tool result flagged `isError` is recorded as an error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast, overload

from activity_feed.mcp.recorder import ActivityClient, CallRecorder, ToolCall, warn_once

P = ParamSpec("P")
R = TypeVar("R")


@overload
def track_tool(client: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def track_tool(
    client: ActivityClient | None = None,
    *,
    name: str | None = None,
    user_source: str | None = None,
    capture_arguments: bool = True,
    capture_results: bool = True,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def track_tool(
    client: Any = None,
    *,
    name: str | None = None,
    user_source: str | None = None,
    capture_arguments: bool = True,
    capture_results: bool = True,
) -> Any:
    """Decorate a function so each call is recorded as a `tool_call` event (`@track_tool` or
    `@track_tool(client, name=...)`). `client` defaults to the process-wide `FeedClient`, looked up at
    each call; `name` to the function's name."""
    if callable(client) and not hasattr(client, "log"):
        return track_tool()(client)
    recorder = CallRecorder(
        client,
        user_source=user_source,
        capture_arguments=capture_arguments,
        capture_results=capture_results,
    )

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        tool_name = name or getattr(func, "__name__", None) or repr(func)
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have none: arguments are then recorded by position
            signature = None

        def start(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ToolCall | None:
            arguments = _arguments(signature, args, kwargs) if capture_arguments else None
            return recorder.start(tool_name, arguments=arguments)

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                call = start(args, kwargs)
                if call is None:
                    return await async_func(*args, **kwargs)
                try:
                    result = await async_func(*args, **kwargs)
                except BaseException as exc:
                    call.raised(exc)
                    raise
                call.returned(result)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            call = start(args, kwargs)
            if call is None:
                return func(*args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                call.raised(exc)
                raise
            call.returned(result)
            return result

        return wrapper

    return decorate


def _arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any] | None:
    try:
        if signature is not None:
            bound = signature.bind_partial(*args, **kwargs)
            return dict(bound.arguments)
        return {**{f"arg{i}": value for i, value in enumerate(args)}, **kwargs}
    except Exception:  # boundary: arguments the signature refuses are the function's error to raise
        warn_once("arguments", "activity feed: could not read a tracked function's arguments", exc_info=False)
        return None
