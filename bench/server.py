"""The server the benchmarks measure, run in a process of its own (`python -m bench.server`).

It is the service as `activity-feed serve` builds it (`create_app(settings)` under uvicorn with
`server_config`: uvloop, httptools; the collector and the switch interval set by `tune_interpreter`),
plus one route that exists only here: `POST /bench/bare`, which returns a constant JSON object. That
route is the baseline of the ingest benchmark: the same app, the same server, the same middleware, and
none of the feed's work.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from activity_feed.api import create_app
from activity_feed.api.server import server_config, tune_interpreter
from activity_feed.settings import Settings

BARE_PATH = "/bench/bare"
_BARE_ANSWER = {"status": "ok"}


def build_app(database_url: str) -> FastAPI:
    app = create_app(Settings(database_url=database_url, log_level="warning"))

    @app.post(BARE_PATH, include_in_schema=False)
    async def bare() -> dict[str, str]:
        return _BARE_ANSWER

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    app = build_app(args.database_url)
    tune_interpreter()  # as `activity-feed serve` does
    config = server_config(app, host="127.0.0.1", port=args.port, log_level=args.log_level)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
