"""`python -m bench [NAME ...]`: run the named benchmarks (all when none is named), print each figure with
its baseline and target, a summary table at the end, and write the results to bench/results/."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench import (
    alerts,
    batch,
    delivery,
    export,
    ingest,
    instances,
    mcp_overhead,
    memory,
    otlp,
    proxy,
    query,
    replay,
    sessions,
    stats,
    tail,
)
from bench.harness import Check, Skipped, environment, fmt, say

BENCHMARKS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        ingest,
        batch,
        query,
        memory,
        mcp_overhead,
        delivery,
        instances,
        replay,
        stats,
        sessions,
        proxy,
        otlp,
        tail,
        export,
        alerts,
    )
}
RESULTS_DIR = Path(__file__).with_name("results")


def _verdict(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "MISSED"


def _describe(check: Check) -> str:
    text = f"{check.name}: {fmt(check.value, check.unit)}"
    if check.baseline is not None:
        text += f"; {check.baseline_name}: {fmt(check.baseline, check.unit)}"
    if check.ratio is not None:
        text += f"; ratio {check.ratio:.2f}"
    return f"{text} (target {check.target}): {_verdict(check.met)}"


def _table(checks: Sequence[Check], failures: dict[str, str], skipped: dict[str, str]) -> str:
    header = ("benchmark", "figure", "value", "baseline", "ratio", "target", "result")
    rows = [
        (
            check.benchmark,
            check.name,
            fmt(check.value, check.unit),
            fmt(check.baseline, check.unit) if check.baseline is not None else "-",
            f"{check.ratio:.2f}" if check.ratio is not None else "-",
            check.target,
            _verdict(check.met),
        )
        for check in checks
    ]
    rows += [(name, f"failed: {reason}", "-", "-", "-", "-", "ERROR") for name, reason in failures.items()]
    rows += [
        (name, f"skipped: {reason[:80]}", "-", "-", "-", "-", "skipped") for name, reason in skipped.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([render(header), "  ".join("-" * width for width in widths), *map(render, rows)])


def _write_results(
    checks: Sequence[Check], failures: dict[str, str], skipped: dict[str, str], seconds: float
) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "environment": environment(),
        "seconds": seconds,
        "checks": [check.as_dict() for check in checks],
        "failures": failures,
        "skipped": skipped,
    }
    path = RESULTS_DIR / f"bench-{stamp}.json"
    text = json.dumps(document, indent=2, default=str)
    path.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)

    checks: list[Check] = []
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}  # benchmarks that cannot run here (a service they need does not answer)
    started = time.monotonic()
    for name in names:
        say(f"[{name}] {BENCHMARKS[name].TITLE}")
        run: Callable[[], list[Check]] = BENCHMARKS[name].run
        begun = time.monotonic()
        try:
            results = run()
        except Skipped as exc:
            say(f"  skipped: {exc}")
            skipped[name] = str(exc)
            continue
        except Exception as exc:  # boundary: one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:120]
            continue
        for check in results:
            say(f"  => {_describe(check)}")
        say(f"  ({time.monotonic() - begun:.0f} s)")
        checks.extend(results)
    seconds = time.monotonic() - started

    say("")
    say(_table(checks, failures, skipped))
    path = _write_results(checks, failures, skipped, seconds)
    say(f"\n{len(checks)} figures in {seconds:.0f} s; results in bench/results/{path.name}")
    if failures:
        return 1
    if args.strict and any(check.met is False for check in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
