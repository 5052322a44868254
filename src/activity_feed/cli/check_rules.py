"""The rules of `activity-feed check`, how they are written on the command line, and their verdicts over
the per-tool statistics of a window (`GET /activities/stats`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# How the statistics name the events that have no tool_name.
NO_TOOL = "(no tool name)"
_P95 = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", re.IGNORECASE)


def parse_error_rate(text: str) -> float:
    """`0.05` or `5%` -> 0.05; ValueError outside 0 to 1."""
    given = text.strip()
    try:
        rate = float(given[:-1]) / 100 if given.endswith("%") else float(given)
    except ValueError:
        rate = math.nan
    if not 0 <= rate <= 1:
        raise ValueError(f"a fraction from 0 to 1 (0.05) or a percentage (5%), not {text!r}")
    return rate


def parse_p95(text: str) -> float:
    """`800ms`, `1.5s`, `2s`, or a plain number of milliseconds -> milliseconds."""
    match = _P95.fullmatch(text)
    if match is None:
        raise ValueError(f"a duration in ms or s (800ms, 1.5s) or a number of milliseconds, not {text!r}")
    number, unit = match.groups()
    return float(number) * (1000 if (unit or "ms").lower() == "s" else 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    max_error_rate: float | None = None
    max_p95_ms: float | None = None
    tools: tuple[str, ...] = ()  # the error-rate and p95 rules cover these only (all tools when empty)
    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()

    def problem(self) -> str | None:
        """What makes these rules unusable, or None."""
        window_rules = self.max_error_rate is not None or self.max_p95_ms is not None
        if self.tools and not window_rules:
            return "--tool limits --max-error-rate and --max-p95: give one of them"
        if not window_rules and not self.require and not self.forbid:
            return "check needs a rule: --max-error-rate, --max-p95, --require-tool or --forbid-tool"
        if both := sorted(set(self.require) & set(self.forbid)):
            return f"{both[0]!r} is both required and forbidden"
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.text}"


def window_verdicts(rules: Rules, stats: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """The error-rate and p95 rules over each tool they cover: the tools named with --tool, else every
    tool of the window, busiest first, but the feed's own alert records (their failures are the
    alerts, not calls). A named tool without calls, or without durations, holds them."""
    from activity_feed.alerts.messages import ALERT_TOOL_PREFIX  # here: it loads the evaluator's hub

    by_name = {tool["tool_name"] or NO_TOOL: tool for tool in stats}
    names = (
        list(dict.fromkeys(rules.tools))
        if rules.tools
        else [name for name in by_name if not name.startswith(ALERT_TOOL_PREFIX)]
    )
    verdicts: list[Verdict] = []
    if not names:  # an empty window: each rule still says that it was checked
        for rule, limit in (("error rate", rules.max_error_rate), ("p95", rules.max_p95_ms)):
            if limit is not None:
                verdicts.append(Verdict(True, f"{rule} (no call in the window)"))
        return verdicts
    if rules.max_error_rate is not None:
        limit = rules.max_error_rate
        for name in names:
            if (tool := by_name.get(name)) is None or not tool["count"]:
                verdicts.append(Verdict(True, f"error rate ({name}: no call in the window)"))
                continue
            errors, count = int(tool["errors"]), int(tool["count"])
            rate = errors / count
            shown, bound = _percents(rate, limit)
            sign = "<=" if rate <= limit else ">"
            verdicts.append(
                Verdict(rate <= limit, f"error rate {shown} {sign} {bound} ({name}: {errors}/{count})")
            )
    if rules.max_p95_ms is not None:
        limit = rules.max_p95_ms
        for name in names:
            p95 = None if (tool := by_name.get(name)) is None else tool["p95_duration_ms"]
            if p95 is None:
                why = "no call" if tool is None else "no duration"
                verdicts.append(Verdict(True, f"p95 ({name}: {why} in the window)"))
                continue
            sign = "<=" if p95 <= limit else ">"
            verdicts.append(Verdict(p95 <= limit, f"p95 {_ms(p95)} {sign} {_ms(limit)} ({name})"))
    return verdicts


def presence_verdicts(
    rules: Rules, called: Mapping[str, bool], stats: Sequence[Mapping[str, Any]]
) -> list[Verdict]:
    """--require-tool and --forbid-tool, from whether each tool was `called` in the window; the count, when
    the statistics have one."""
    counts = {tool["tool_name"]: int(tool["count"]) for tool in stats}

    def calls(name: str) -> str:
        count = counts.get(name)
        if count is None:
            return "called (before the events the statistics counted)"
        return f"{count} call" if count == 1 else f"{count:,} calls"

    verdicts = [
        Verdict(True, f"require {name}: {calls(name)}")
        if called[name]
        else Verdict(False, f"require {name}: no call in the window")
        for name in dict.fromkeys(rules.require)
    ]
    verdicts += [
        Verdict(False, f"forbid {name}: {calls(name)}")
        if called[name]
        else Verdict(True, f"forbid {name}: no call in the window")
        for name in dict.fromkeys(rules.forbid)
    ]
    return verdicts


def _percents(rate: float, limit: float) -> tuple[str, str]:
    """Both as percentages with one decimal, or as many more (up to four) as it takes to tell them apart."""
    for digits in range(1, 5):
        shown, bound = f"{rate:.{digits}%}", f"{limit:.{digits}%}"
        if shown != bound or rate == limit:
            break
    return shown, bound


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
