"""export: `activity-feed export` of 1,000,000 events to a JSON lines file, run as users run it (the real
console script in a subprocess), once through a running feed (`activity-feed serve`, GET
/activities/export) and once straight from the database (`--database-url`).

Figures: events/s of the whole command, from its start to its exit, and its peak RSS (VmHWM, read from
/proc while it runs: the kernel's `ru_maxrss` of a child also counts the memory of its parent, which the
child holds until its exec). The database is filled as `query` fills it, finished calls only (the
service's maintenance would otherwise mark the old pending ones failed while the export reads). Each
export's file must hold every event. Targets: >= 100,000 events/s and <= 150 MB, both ways.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import PROJECT_ROOT, Check, ServerProcess, fmt, say, sqlite_url
from bench.sizes import fill_events

NAME = "export"
TITLE = "`activity-feed export` of 1,000,000 events to JSON lines: events/s and the command's peak RSS"
EVENTS = 1_000_000
TARGET_RATE = 100_000
TARGET_RSS_MB = 150.0
TIMEOUT_SECONDS = 600.0
SCRIPT = Path(sys.executable).with_name("activity-feed")


def _finished(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "status": "success"} if row["status"] == "pending" else row


def _peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(found[0]) / 1024 if found else 0.0


def _export(source: list[str], output: Path) -> dict[str, Any]:
    """Run the command to its end; its time, peak RSS and last line, and that the file is whole."""
    command = [str(SCRIPT), "export", *source, "-o", str(output)]
    peak = 0.0
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE)
    try:
        while process.poll() is None:
            peak = max(peak, _peak_rss_mb(process.pid))
            if time.perf_counter() - started > TIMEOUT_SECONDS:
                raise TimeoutError(f"{command} did not finish within {TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
    finally:
        process.kill()
        _, stderr = process.communicate()
    last_line = stderr.decode(errors="replace").strip()
    if process.returncode != 0:
        raise RuntimeError(f"{command} exited with {process.returncode}: {last_line}")
    with output.open("rb") as written:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 20), b""))
    size = output.stat().st_size
    output.unlink()
    if lines != EVENTS:
        raise RuntimeError(f"the export wrote {lines:,} events, not {EVENTS:,}: {last_line}")
    return {
        "seconds": seconds,
        "rate": EVENTS / seconds,
        "peak_rss_mb": peak,
        "bytes": size,
        "said": last_line,
    }


def run() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="activity-feed-bench-") as tmp:
        folder = Path(tmp)
        database = folder / "export.db"
        fill_seconds = fill_events(database, EVENTS, seed=9, shape=_finished)
        say(f"  filled {EVENTS:,} events in {fill_seconds:.1f} s")
        results: dict[str, dict[str, Any]] = {}
        with ServerProcess(sqlite_url(database), cli=True, log_path=folder / "server.log") as server:
            results["feed"] = _export(["--feed-url", server.url], folder / "feed.jsonl")
        results["database"] = _export(["--database-url", sqlite_url(database)], folder / "database.jsonl")
    checks = []
    for way, label in (("feed", "from the feed (GET /activities/export)"), ("database", "--database-url")):
        result = results[way]
        say(
            f"  {label}: {result['seconds']:.1f} s, {fmt(result['rate'], 'events/s')}, peak RSS "
            f"{result['peak_rss_mb']:.1f} MB, {result['bytes'] / 1e6:.0f} MB written ({result['said']})"
        )
        checks += [
            Check(
                benchmark=NAME,
                name=f"export {EVENTS:,} to JSON lines {label}",
                value=result["rate"],
                unit="events/s",
                target=f">= {TARGET_RATE:,} events/s",
                met=result["rate"] >= TARGET_RATE,
                details=result | {"fill_seconds": fill_seconds},
            ),
            Check(
                benchmark=NAME,
                name=f"export peak RSS of the command, {label}",
                value=result["peak_rss_mb"],
                unit="MB",
                target=f"<= {TARGET_RSS_MB:.0f} MB",
                met=result["peak_rss_mb"] <= TARGET_RSS_MB,
            ),
        ]
    return checks
