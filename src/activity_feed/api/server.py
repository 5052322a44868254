"""How the service runs under uvicorn: one place for the server options that `serve`, tests and
benchmarks share."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

WS_MAX_MESSAGE_BYTES = 64 * 1024


def server_config(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        loop="uvloop",
        http="httptools",
        # The sans-I/O implementation: the legacy one is deprecated by the websockets project.
        ws="websockets-sansio",
        # Clients have nothing to send on the stream; a large message is an abuse, not a request.
        ws_max_size=WS_MAX_MESSAGE_BYTES,
    )
