"""Where tables and keys are in a TOML text, for messages that name the line of a problem that `tomllib`
(which keeps no positions) finds only in the parsed document.

A line scanner, run only on text `tomllib` has accepted: it knows `[[array]]` and `[table]` headers, keys
at the start of a line, and multi-line strings, which is all a hand-written alerts file holds. Whatever it
cannot place falls back to the enclosing table's header line, then to line 1."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ARRAY_HEADER = re.compile(r"\[\[\s*(.+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"\[\s*(.+?)\s*\]")
_KEY = re.compile(r"""([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*[.=]""")
_MULTILINE_QUOTES = ('"""', "'''")


@dataclass
class _Table:
    line: int
    keys: dict[str, int] = field(default_factory=dict)


def _bare(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        return name[1:-1]
    return name


class Locations:
    """Line numbers (from 1) of the `[[section]]` tables and their keys, and of top-level keys."""

    def __init__(self) -> None:
        self.arrays: dict[str, list[_Table]] = {}
        self.top: dict[str, int] = {}

    def table(self, section: str, index: int) -> int:
        tables = self.arrays.get(section, [])
        if index < len(tables):
            return tables[index].line
        return self.top_level(section)

    def key(self, section: str, index: int, key: str) -> int:
        tables = self.arrays.get(section, [])
        if index < len(tables):
            return tables[index].keys.get(key, tables[index].line)
        return self.top_level(section)

    def top_level(self, key: str) -> int:
        if key in self.top:
            return self.top[key]
        tables = self.arrays.get(key)
        return tables[0].line if tables else 1


def locate(text: str) -> Locations:
    found = Locations()
    top = _Table(0)
    current: _Table | None = top
    closing: str | None = None  # the quotes that end the multi-line string the scan is in
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if closing in line:
                closing = None
            continue
        stripped = line.strip()
        if header := _ARRAY_HEADER.match(stripped):
            name = _bare(header.group(1))
            current = _Table(number)
            found.arrays.setdefault(name, []).append(current)
            found.top.setdefault(name, number)
            continue
        if header := _TABLE_HEADER.match(stripped):
            # A plain table: top-level when undotted, else a sub-table whose keys are no rule's own.
            name = header.group(1)
            if "." not in name:
                found.top.setdefault(_bare(name), number)
            current = None
            continue
        if key := _KEY.match(stripped):
            if current is not None:
                current.keys.setdefault(_bare(key.group(1)), number)
            if current is top:
                found.top.setdefault(_bare(key.group(1)), number)
        for quotes in _MULTILINE_QUOTES:
            if line.count(quotes) % 2 == 1:
                closing = quotes
                break
    return found
