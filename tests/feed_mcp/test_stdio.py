"""`activity-feed mcp` as an AI assistant runs it: a subprocess on stdio, under the SDK's client, reading
a real feed over HTTP; stdout carries the protocol and nothing else."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
from mcp import Client, StdioServerParameters

from tests.feed_mcp.conftest import READ_TOKEN
from tests.feed_mcp.test_tools import TOOLS, call, error
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 20.0
COMMAND = [sys.executable, "-m", "activity_feed.cli.main", "mcp"]


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACTIVITY_FEED_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return {**env, **extra}


async def test_the_assistant_asks_what_failed_in_the_last_hour(guarded_feed: LiveServer) -> None:
    # As a Claude Desktop configuration gives them: no flags, the feed and its read token in `env`.
    parameters = StdioServerParameters(
        command=COMMAND[0],
        args=COMMAND[1:],
        env=_environment(ACTIVITY_FEED_URL=guarded_feed.url, ACTIVITY_FEED_TOKEN=READ_TOKEN),
        cwd=str(ROOT),
    )
    async with Client(parameters, mode="legacy", read_timeout_seconds=WAIT_SECONDS) as client:  # type: ignore[arg-type]
        assert client.server_info is not None
        assert client.server_info.name == "activity-feed"
        assert sorted(tool.name for tool in (await client.list_tools()).tools) == sorted(TOOLS)
        answer, text = await call(client, "recent_activity", status="error", since="1h")
        [failed] = answer["events"]
        assert (failed["tool_name"], failed["error_message"]) == ("search_properties", "timeout after 5 s")
        assert text.startswith("1 event, newest first\n")
        answer, _ = await call(client, "get_activity", id=failed["id"])
        assert answer["data"] == {"arguments": {"city": "Leeds"}}
        # Another id: its last hex digit changed (an id ending in 0 would otherwise be itself).
        other = failed["id"][:-1] + ("1" if failed["id"].endswith("0") else "0")
        assert "no event with id" in await error(client, "get_activity", id=other)


async def _message(stdout: asyncio.StreamReader) -> dict[str, Any]:
    line = await stdout.readline()
    assert line, "the server closed stdout"
    message: dict[str, Any] = orjson.loads(line)  # every line on stdout is a JSON-RPC message
    return message


async def test_flags_over_raw_stdio_and_a_refused_token(guarded_feed: LiveServer) -> None:
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "--feed-url",
        guarded_feed.url,
        "--token",
        "not-the-token",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(),
        cwd=ROOT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "tool_stats", "arguments": {"since": "1h"}},
        },
    ]
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            process.stdin.write(b"".join(orjson.dumps(request) + b"\n" for request in requests))
            await process.stdin.drain()
            assert (await _message(process.stdout))["id"] == 1
            answer = await _message(process.stdout)
            process.stdin.close()
            assert await process.stdout.read() == b""
            assert await process.wait() == 0
            stderr = await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert answer["id"] == 2
    assert answer["result"]["isError"] is True
    [content] = answer["result"]["content"]
    assert f"the feed at {guarded_feed.url} answered 401: the token was refused" in content["text"]
    assert b"Traceback" not in stderr
