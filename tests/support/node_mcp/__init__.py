"""A Node.js MCP server on the official TypeScript SDK (`server.mjs`), for tests and benchmarks of
servers that are not Python. `install()` puts the SDK from the npm registry into a cache folder outside
the repository (once; a lock keeps parallel runs from installing it twice) and answers the path of
the server to run with `node`."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGES = ("@modelcontextprotocol/sdk@1.32.2", "zod@3.25.76")
SERVER_SOURCE = Path(__file__).with_name("server.mjs")
CACHE_ENV = "ACTIVITY_FEED_NODE_CACHE"
INSTALL_TIMEOUT_SECONDS = 300.0


class NodeUnavailable(Exception):
    """Node.js, npm or the SDK cannot be had here; the message says why."""


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "activity-feed-node-mcp")
    return Path(base) / "-".join(package.replace("/", "+") for package in PACKAGES)


def install() -> Path:
    """The path of `server.mjs` beside an installed SDK. Raises `NodeUnavailable`."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeUnavailable("node and npm are not on PATH")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = folder / ".installed"
        if not installed.exists():
            try:
                done = subprocess.run(
                    [
                        npm,
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                        str(folder),
                        *PACKAGES,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise NodeUnavailable(
                    f"npm install did not finish in {INSTALL_TIMEOUT_SECONDS:.0f} s"
                ) from exc
            if done.returncode != 0:
                tail = " ".join(done.stderr.strip().splitlines()[-3:])
                raise NodeUnavailable(f"npm install {' '.join(PACKAGES)} failed: {tail}")
            installed.write_text("\n".join(PACKAGES) + "\n")
        server = folder / "server.mjs"
        # Next to node_modules, so that its imports resolve; copied each time, so edits take effect.
        shutil.copyfile(SERVER_SOURCE, server)
    return server
