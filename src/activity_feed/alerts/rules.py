"""The alerts file: TOML `[[webhooks]]` and `[[rules]]` tables, read and checked whole, every problem
reported as `FILE:LINE: what is wrong` (docs/alerts.md).

`tomllib` knows lines only for syntax errors, so the lines of tables and keys are found in the text by
`alerts/locate.py`."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from activity_feed.alerts.locate import Locations, locate
from activity_feed.alerts.urls import url_problem
from activity_feed.durations import format_duration, parse_duration
from activity_feed.errors import ConfigurationError

MAX_RULE_NAME = 150  # the system event's tool name is `alert: <name>`, at most 200 characters
MAX_TOOL_NAME = 200
DEFAULT_MIN_CALLS = 10
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 5.0


class Kind(StrEnum):
    ERROR_RATE = "error_rate"
    P95 = "p95"
    CONSECUTIVE_FAILURES = "consecutive_failures"
    STUCK_PENDING = "stuck_pending"


# The fields each kind needs (besides name, kind, tool and webhooks), and those it may take.
_REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.ERROR_RATE: ("window", "threshold"),
    Kind.P95: ("window", "max_ms"),
    Kind.CONSECUTIVE_FAILURES: ("count",),
    Kind.STUCK_PENDING: ("older_than",),
}
_OPTIONAL: dict[Kind, tuple[str, ...]] = {
    Kind.ERROR_RATE: ("min_calls",),
    Kind.P95: ("min_calls",),
    Kind.CONSECUTIVE_FAILURES: (),
    Kind.STUCK_PENDING: (),
}
_COMMON = ("name", "kind", "tool", "webhooks")
_KIND_FIELDS = ("window", "threshold", "max_ms", "count", "older_than", "min_calls")
_WEBHOOK_FIELDS = ("name", "url", "timeout")
_TOP_LEVEL = ("webhooks", "rules")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str = field(repr=False)  # may hold a secret: never logged
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS  # seconds, per attempt


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One rule; only the fields of its kind are set. Durations are in seconds."""

    name: str
    kind: Kind
    tool: str | None = None
    webhooks: tuple[str, ...] = ()
    window: float | None = None
    threshold: float | None = None
    max_ms: float | None = None
    count: int | None = None
    older_than: float | None = None
    min_calls: int = DEFAULT_MIN_CALLS

    @property
    def limit(self) -> float:
        """What the measured value is compared with: the rate, the budget, the count or the age."""
        value = {
            Kind.ERROR_RATE: self.threshold,
            Kind.P95: self.max_ms,
            Kind.CONSECUTIVE_FAILURES: self.count,
            Kind.STUCK_PENDING: self.older_than,
        }[self.kind]
        assert value is not None
        return float(value)

    @property
    def window_text(self) -> str:
        return format_duration_seconds(self.window or 0.0)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """A checked alerts file."""

    path: Path
    rules: tuple[Rule, ...] = ()
    webhooks: tuple[Webhook, ...] = ()

    def summary(self) -> str:
        return f"{_count(len(self.rules), 'rule')}, {_count(len(self.webhooks), 'webhook')}"


class AlertRulesError(ConfigurationError):
    """An alerts file that cannot be used; `problems` holds one `FILE:LINE: problem` line each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        head = (
            f"the alerts file {path} has a problem:"
            if len(problems) == 1
            else f"the alerts file {path} has {len(problems)} problems:"
        )
        super().__init__("\n".join([head, *(f"  {problem}" for problem in problems)]))


def format_duration_seconds(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def load_rules(path: Path) -> AlertConfig:
    """Read and check the alerts file at `path`; raise `AlertRulesError` naming every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AlertRulesError(path, [f"{path}: cannot read the file: {why}"]) from exc
    return parse_rules(text, path)


def parse_rules(text: str, path: Path) -> AlertConfig:
    """Check `text`, the content of the alerts file at `path` (which only names it in messages)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        line = found.group(1) if found else "1"
        reason = _TOML_LINE.sub("", message).strip()
        raise AlertRulesError(path, [f"{path}:{line}: not valid TOML: {reason}"]) from None
    checker = _Checker(path, locate(text))
    config = checker.check(document)
    if checker.problems:
        raise AlertRulesError(path, checker.problems)
    return config


class _Checker:
    def __init__(self, path: Path, where: Locations) -> None:
        self.path = path
        self.where = where
        self._found: list[tuple[int, str]] = []
        # Every webhook name in the file, good or not: a rule naming one with a problem is not told that
        # it names an unknown webhook (the webhook's own problem is reported).
        self._webhooks_named: set[str] = set()

    def problem(self, line: int, message: str) -> None:
        self._found.append((line, message))

    @property
    def problems(self) -> list[str]:
        """`FILE:LINE: message`, in the order of the file."""
        ordered = sorted(self._found, key=lambda found: found[0])
        return [f"{self.path}:{line}: {message}" for line, message in ordered]

    def check(self, document: dict[str, Any]) -> AlertConfig:
        for key in document:
            if key not in _TOP_LEVEL:
                self.problem(
                    self.where.top_level(key), f"unknown section {key!r} (use [[webhooks]] and [[rules]])"
                )
        webhooks = self._webhooks(self._tables(document, "webhooks"))
        rules = self._rules(self._tables(document, "rules"), {webhook.name for webhook in webhooks})
        return AlertConfig(self.path, tuple(rules), tuple(webhooks))

    def _tables(self, document: dict[str, Any], section: str) -> list[dict[str, Any]]:
        value = document.get(section, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(self.where.top_level(section), f"{section} must be tables: write [[{section}]]")
            return []
        return value

    def _webhooks(self, tables: list[dict[str, Any]]) -> list[Webhook]:
        webhooks: list[Webhook] = []
        seen: dict[str, int] = {}
        for index, table in enumerate(tables):
            at = self.where.table("webhooks", index)
            number = f"webhook #{index + 1}"
            name = self._text(table, "webhooks", index, "name", required=True, label=number)
            label = f"webhook {name!r}" if name is not None else number
            if name is not None:
                self._webhooks_named.add(name)
            self._unknown_keys(table, _WEBHOOK_FIELDS, "webhooks", index, label)
            url = self._text(table, "webhooks", index, "url", required=True, label=label)
            timeout = self._duration(table, "webhooks", index, "timeout", label=label)
            if name is None or url is None:
                continue
            if name in seen:
                self.problem(at, f"{label} is defined twice (first at line {seen[name]})")
                continue
            seen[name] = at
            wrong = url_problem(url)
            if wrong is not None:
                self.problem(self.where.key("webhooks", index, "url"), f"{label}: {wrong}")
                continue
            webhooks.append(Webhook(name, url, timeout or DEFAULT_WEBHOOK_TIMEOUT_SECONDS))
        return webhooks

    def _rules(self, tables: list[dict[str, Any]], webhook_names: set[str]) -> list[Rule]:
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for index, table in enumerate(tables):
            at = self.where.table("rules", index)
            number = f"rule #{index + 1}"
            name = self._text(
                table, "rules", index, "name", required=True, max_length=MAX_RULE_NAME, label=number
            )
            label = f"rule {name!r}" if name is not None else number
            if name is not None:
                if name in seen:
                    self.problem(at, f"{label} is defined twice (first at line {seen[name]})")
                    name = None
                else:
                    seen[name] = at
            self._unknown_keys(table, (*_COMMON, *_KIND_FIELDS), "rules", index, label)
            kind_text = self._text(table, "rules", index, "kind", required=True, label=label)
            kind: Kind | None = None
            if kind_text is not None:
                try:
                    kind = Kind(kind_text)
                except ValueError:
                    choices = ", ".join(k.value for k in Kind)
                    self.problem(
                        self.where.key("rules", index, "kind"),
                        f"{label}: unknown kind {kind_text!r} (use one of {choices})",
                    )
            tool = self._text(table, "rules", index, "tool", max_length=MAX_TOOL_NAME, label=label)
            hooks = self._webhook_names(table, index, label, webhook_names)
            if kind is None:
                continue
            fields = self._kind_fields(table, index, label, kind)
            if name is None or fields is None or hooks is None:
                continue
            rules.append(Rule(name=name, kind=kind, tool=tool, webhooks=hooks, **fields))
        return rules

    def _kind_fields(
        self, table: dict[str, Any], index: int, label: str, kind: Kind
    ) -> dict[str, Any] | None:
        ok = True
        allowed = (*_REQUIRED[kind], *_OPTIONAL[kind])
        for key in _KIND_FIELDS:
            if key in table and key not in allowed:
                self.problem(
                    self.where.key("rules", index, key),
                    f"{label}: {key} does not apply to kind {kind.value} (it takes {', '.join(allowed)})",
                )
                ok = False
        for key in _REQUIRED[kind]:
            if key not in table:
                self.problem(
                    self.where.table("rules", index), f"{label}: kind {kind.value} needs {key} (missing)"
                )
                ok = False
        fields: dict[str, Any] = {}
        for key in allowed:
            if key not in table:
                continue
            value: float | int | None
            if key in ("window", "older_than"):
                value = self._duration(table, "rules", index, key, label=label)
            elif key in ("count", "min_calls"):
                value = self._integer(table, index, key, label)
            elif key == "threshold":
                # The rate must be more than the threshold to fire: at 1 the rule could never fire.
                value = self._number(table, index, key, label, low=0.0, high=1.0, high_open=True, note=_RATE)
            else:
                value = self._number(table, index, key, label, low=0.0, low_open=True)
            if value is None:
                ok = False
            else:
                fields[key] = value
        return fields if ok else None

    def _webhook_names(
        self, table: dict[str, Any], index: int, label: str, known: set[str]
    ) -> tuple[str, ...] | None:
        value = table.get("webhooks", [])
        line = self.where.key("rules", index, "webhooks")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(line, f'{label}: webhooks must be a list of webhook names, such as ["ops"]')
            return None
        named = self._webhooks_named
        unknown = [name for name in value if name not in named]
        for name in unknown:
            defined = ", ".join(repr(n) for n in sorted(named)) or "none is defined"
            self.problem(line, f"{label}: unknown webhook {name!r} (defined: {defined})")
        if unknown or any(name not in known for name in value):
            return None
        return tuple(dict.fromkeys(value))

    def _unknown_keys(
        self, table: dict[str, Any], allowed: tuple[str, ...], section: str, index: int, label: str
    ) -> None:
        for key in table:
            if key not in allowed:
                self.problem(
                    self.where.key(section, index, key),
                    f"{label}: unknown field {key!r} (known: {', '.join(allowed)})",
                )

    def _text(
        self,
        table: dict[str, Any],
        section: str,
        index: int,
        key: str,
        *,
        required: bool = False,
        max_length: int = 2000,
        label: str | None = None,
    ) -> str | None:
        prefix = f"{label}: " if label else ""
        if key not in table:
            if required:
                self.problem(self.where.table(section, index), f"{prefix}{key} is missing")
            return None
        value = table[key]
        line = self.where.key(section, index, key)
        if not isinstance(value, str):
            self.problem(line, f"{prefix}{key} must be a string, not {_toml_type(value)}")
            return None
        if not value.strip():
            self.problem(line, f"{prefix}{key} must not be empty")
            return None
        if len(value) > max_length or "\x00" in value:
            self.problem(line, f"{prefix}{key} must be at most {max_length} characters, without NUL")
            return None
        return value

    def _duration(
        self, table: dict[str, Any], section: str, index: int, key: str, *, label: str | None = None
    ) -> float | None:
        if key not in table:
            return None
        value = table[key]
        line = self.where.key(section, index, key)
        prefix = f"{label}: " if label else ""
        seconds: float | None = None
        if isinstance(value, str):
            try:
                seconds = parse_duration(value).total_seconds()
            except ValueError as exc:
                self.problem(line, f"{prefix}{key}: {exc}")
                return None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            self.problem(
                line, f'{prefix}{key} must be a duration such as "30s" or "5m", not {_toml_type(value)}'
            )
            return None
        if not math.isfinite(seconds) or seconds <= 0 or seconds > 7 * 86400:
            self.problem(line, f"{prefix}{key} must be more than 0 and at most 7d")
            return None
        return seconds

    def _integer(self, table: dict[str, Any], index: int, key: str, label: str) -> int | None:
        value = table[key]
        line = self.where.key("rules", index, key)
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(line, f"{label}: {key} must be a whole number, not {_toml_type(value)}")
            return None
        if not 1 <= value <= 1_000_000:
            self.problem(line, f"{label}: {key} must be from 1 to 1000000, not {value}")
            return None
        return value

    def _number(
        self,
        table: dict[str, Any],
        index: int,
        key: str,
        label: str,
        *,
        low: float,
        high: float = 1e12,
        low_open: bool = False,
        high_open: bool = False,
        note: str = "",
    ) -> float | None:
        value = table[key]
        line = self.where.key("rules", index, key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.problem(line, f"{label}: {key} must be a number, not {_toml_type(value)}")
            return None
        number = float(value)
        too_low = number <= low if low_open else number < low
        too_high = number >= high if high_open else number > high
        if not math.isfinite(number) or too_low or too_high:
            lower = f"more than {low:g}" if low_open else f"at least {low:g}"
            upper = f"less than {high:g}" if high_open else f"at most {high:g}"
            self.problem(line, f"{label}: {key} must be {lower} and {upper}, not {value}{note}")
            return None
        return number


_RATE = " (a fraction of the calls, 0.05 for 5%: the rule fires when more than it fail)"


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value:g}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # dates and times
