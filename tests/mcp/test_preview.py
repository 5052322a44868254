"""Result previews and error reasons, shared by every integration."""

from __future__ import annotations

from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ImageContent, TextContent

from activity_feed.mcp import preview


def test_truncation_keeps_whole_characters_within_one_kib() -> None:
    text = preview.truncate("é" * 2000)
    assert len(text.encode()) <= 1024
    assert text.endswith(preview.TRUNCATED)
    assert preview.truncate("short") == "short"


def test_results_of_every_shape_are_previewed() -> None:
    wire = {"content": [{"type": "text", "text": "3"}], "isError": False}
    model = CallToolResult(
        content=[
            TextContent(type="text", text="a"),
            ImageContent(type="image", data="", mime_type="image/png"),
        ]
    )
    assert preview.result_preview(wire) == "3"
    assert preview.result_preview(model) == "a\n[image image/png]"
    assert preview.result_preview({"rows": [1, 2]}) == '{"rows":[1,2]}'
    assert preview.is_error_result({"content": [], "isError": True})
    assert preview.is_error_result(CallToolResult(content=[], is_error=True))
    assert not preview.is_error_result({"isError": False})


def test_wire_results_with_blocks_other_than_text_read_each_block() -> None:
    text = {"type": "text", "text": "rows"}
    image = {"type": "image", "data": "", "mimeType": "image/png"}
    link = {"type": "resource_link", "uri": "file:///a.txt", "name": "a"}
    assert preview.result_preview({"content": [text, {"type": "text", "text": "more"}]}) == "rows\nmore"
    assert preview.result_preview({"content": [text, image, link]}) == (
        "rows\n[image image/png]\n[resource link file:///a.txt]"
    )
    assert preview.result_preview({"content": [text, {"type": "text", "text": 3}]}) == "rows\n[text]"
    assert preview.result_preview({"content": [TextContent(type="text", text="m"), text]}) == "m\nrows"
    long = preview.result_preview({"content": [{"type": "text", "text": "é" * 2000}]})
    assert long.endswith(preview.TRUNCATED)


def test_exception_messages_give_the_reason() -> None:
    assert preview.exception_message(MCPError(code=-32602, message="Unknown tool: x")) == "Unknown tool: x"
    wrapped = RuntimeError("lookup failed")
    wrapped.__cause__ = KeyError("k")
    assert preview.exception_message(wrapped) == "RuntimeError: lookup failed (caused by KeyError: 'k')"
    cleaned = preview.clean_message(
        "1 validation error\nx\n"
        "  Field required [type=missing, input_value={'password': 'p'}, input_type=dict]"
        "\n    For further information visit https://errors.pydantic.dev/2.14/v/missing"
    )
    assert cleaned == "1 validation error\nx\n  Field required [type=missing, input_type=dict]"
