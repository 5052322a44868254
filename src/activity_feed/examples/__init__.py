"""Examples shipped with the package: a property-management MCP server and HTTP API over one dataset.

`python -m activity_feed.examples.property_mcp` runs the MCP server over stdio, instrumented;
`python -m activity_feed.examples.property_api` serves the HTTP API; `activity-feed demo` drives both.
"""
