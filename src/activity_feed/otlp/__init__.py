"""OTLP trace ingest: what any OpenTelemetry SDK exports to `POST /v1/traces`, read with the official
`opentelemetry-proto` messages (the `otlp` extra), and the spans the feed keeps turned into its events.

`decode` reads a request in either encoding, `spans` flattens it, `mapping` makes each MCP or HTTP server
span an event with the places it may be stored, `calls` builds an MCP call's event from the views of it
(the client's span, the server's), and `merge` says whether a stored event and an incoming one are views
of the same call. Nothing here knows HTTP or SQL.
"""
