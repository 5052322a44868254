"""The SDK's client driving tests/otlp/mcp_server.py over stdio, traced by OpenTelemetry's SDK too (its own
CLIENT spans), both exporting where the environment says: `python -m tests.otlp.mcp_client`. Prints what
each call answered, as JSON, once every span is exported.

The client runs in a process of its own because OpenTelemetry's tracer provider is global and set once
per process: the test process keeps none, as the other tests expect."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[2]
SERVER_SERVICE_NAME = "otlp-calculator"
CALL_TIMEOUT_SECONDS = 10.0


async def conversation() -> dict[str, Any]:
    from mcp import Client, StdioServerParameters
    from mcp.shared.exceptions import MCPError

    environment = {name: value for name, value in os.environ.items() if name.startswith("OTEL_")}
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tests.otlp.mcp_server"],
        env={**environment, "OTEL_SERVICE_NAME": SERVER_SERVICE_NAME, "PYTHONPATH": os.environ["PYTHONPATH"]},
        cwd=str(ROOT),
    )
    answers: dict[str, Any] = {}
    async with Client(parameters, read_timeout_seconds=CALL_TIMEOUT_SECONDS) as client:
        added = await client.call_tool("add", {"a": 2, "b": 3})
        answers["add"] = {"is_error": added.is_error, "text": added.content[0].text}  # type: ignore[union-attr]
        divided = await client.call_tool("divide", {"a": 1, "b": 0})
        answers["divide"] = {"is_error": divided.is_error, "text": divided.content[0].text}  # type: ignore[union-attr]
        prompt = await client.get_prompt("explain", {"operation": "sums"})
        answers["explain"] = {"messages": len(prompt.messages)}
        try:
            await client.get_prompt("missing", {})
        except MCPError as exc:
            answers["missing"] = {"code": exc.error.code, "message": exc.error.message}
        tools = await client.list_tools()
        answers["tools"] = sorted(tool.name for tool in tools.tools)
    return answers


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from tests.otlp.telemetry import configure_tracing

    provider = configure_tracing()
    answers = anyio.run(conversation)
    provider.shutdown()  # exports what the batch processor holds before printing
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
