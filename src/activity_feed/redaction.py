"""Redaction of secrets before an event leaves the process.

Two rules, applied to a deep copy of the event's `data`:

- **Keys.** A value whose key looks sensitive is replaced whole by `[REDACTED]` (whatever its type;
  `None` is kept, since it hides nothing). The default denylist is the union of Sentry's
  `DEFAULT_DENYLIST` (sentry_sdk/scrubber.py) and Logfire's `DEFAULT_PATTERNS`
  (logfire/_internal/scrubbing.py), plus payment-card and passphrase names. Keys are normalised first
  (camelCase split, lower case, `-`, `.` and spaces read as `_`), then searched for the patterns as
  substrings, as Logfire does: `auth` matches `authorization`, `oauth_state` and `authenticated`, and
  `token` matches `max_tokens` too. That is the safer choice for a feed whose data is tool arguments;
  `safe_keys` is the escape hatch. Only `author`/`authors` are exempt by default (as in Logfire).
  Short acronyms (`pwd`, `sid`, `csrf`, `xsrf`, `jwt`, `ssn`, `cvv`, `cvc`, `pin`) must stand alone
  between underscores, so that `shipping` or `pinned` are not redacted.
- **Values.** Secrets inside any string are replaced in place, keeping the rest of the text: API keys
  (`sk-…`, `sk_live_…`, `ghp_…`, `github_pat_…`, `xox?-…`, `AKIA…`, `AIza…`), JWTs, `Bearer`/`Basic`
  credentials, PEM private keys (to the end of the string when a preview cut off the END line),
  passwords in URLs (`scheme://user:secret@host`) and `password=…`-style assignments.

A safe key is exempt from the key rule only: its value is still scanned for secret values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MAX_DEPTH = 32
_TOO_DEEP = "[TOO DEEP]"

DEFAULT_KEY_PATTERNS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    r"auth(?!ors?(?:_|$))",
    "credential",
    "private_?key",
    "api_?key",
    "access_?key",
    "session",
    "sessid",
    "cookie",
    "social_?security",
    "credit_?card",
    "card_?number",
    "forwarded_for",
    "real_ip",
    "ip_address",
    "remote_addr",
    "symfony",
    r"connect_sid",
    r"(?:^|_)(?:pwd|sid|csrf|xsrf|jwt|ssn|cvv|cvc|pin)(?:_|$)",
)

# Secrets recognised inside any string. Each alternative is a named group so that the replacement can
# keep the non-secret part (the `Bearer ` scheme, the URL's user name, the `password=` assignment).
_VALUE_PATTERNS: tuple[str, ...] = (
    r"(?P<pem>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z))",
    r"(?P<jwt>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
    r"(?P<scheme>\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\s+)(?P<credential>[A-Za-z0-9._~+/=-]{8,})",
    r"(?P<openai>\bsk-[A-Za-z0-9_-]{16,})",
    r"(?P<stripe>\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,})",
    r"(?P<github>\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}))",
    r"(?P<slack>\bxox[abeprs]-[A-Za-z0-9-]{10,})",
    r"(?P<aws>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",
    r"(?P<google>\bAIza[0-9A-Za-z_-]{35})",
    r"(?P<url_user>://[^/\s:@]+:)(?P<url_password>[^/\s@]+)(?=@)",
    r"(?P<assign>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|client[_-]?secret)"
    r"\"?\s*[=:]\s*\"?)(?P<assigned>[^\s&\"',;}]+)",
)


def _may_hold_default_secret(text: str) -> bool:
    """False only when no default value pattern can match `text`: each needs a literal `text` lacks.

    A prefilter, so that the combined value pattern (slow: it tries its alternatives at every position)
    runs only on the few strings that could hold a secret. Every check is a single-character test first
    (a `memchr`, tens of nanoseconds for a KiB), then the literals themselves, each a pass over the text
    (about a microsecond for a KiB): the tests are of characters a literal needs and ordinary text often
    lacks (`_`, `-`, capitals), so that a result preview costs a few passes rather than a dozen. It must
    stay a superset of `_VALUE_PATTERNS` (the patterns are case-sensitive): `tests/test_redaction.py`
    compares the results with and without it.
    """
    return (
        ("G" in text and "-----BEGIN " in text)  # pem
        or ("J" in text and "eyJ" in text)  # jwt
        or (("B" in text or "b" in text) and ("earer" in text or "asic" in text))  # [Bb]earer, [Bb]asic
        or ("B" in text and ("EARER" in text or "ASIC" in text))  # BEARER, BASIC
        or ("-" in text and "sk-" in text)  # openai
        or (
            "_" in text  # [rs]k_live_, [rs]k_test_, gh[pousr]_, github_pat_
            and ("k_live_" in text or "k_test_" in text or "gh" in text or "github_pat_" in text)
        )
        or ("x" in text and "xox" in text)  # slack
        or ("A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text))  # aws, google
        or ("@" in text and "://" in text)  # scheme://user:password@host
        or (
            ("=" in text or ":" in text)  # the assignments: password, passwd, pwd, secret, token, api key
            and (
                ("w" in text and ("passw" in text or "pwd" in text))
                or ("c" in text and "secret" in text)
                or ("k" in text and ("key" in text or "token" in text))
            )
        )
    )


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[-. ]+")


def normalise_key(key: str) -> str:
    """`apiKey`, `API-Key` and `api.key` all become `api_key`."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower()


def _replace_value(match: re.Match[str]) -> str:
    group = match.lastgroup
    if group == "credential":
        return match["scheme"] + REDACTED
    if group == "url_password":
        return match["url_user"] + REDACTED
    if group == "assigned":
        return match["assign"] + REDACTED
    return REDACTED


class Redactor:
    """Replace secrets in event data; `redact(data)` returns a redacted copy and the redacted paths.

    `extra_key_patterns` and `extra_value_patterns` are regular expressions (case-insensitive) added to
    the defaults: key patterns are searched in normalised keys, value patterns anywhere in strings (the
    whole match is replaced). `safe_keys` are exempt from the key rule (compared after normalisation).
    """

    def __init__(
        self,
        extra_key_patterns: Iterable[str] = (),
        extra_value_patterns: Iterable[str] = (),
        safe_keys: Iterable[str] = (),
    ) -> None:
        keys = (*DEFAULT_KEY_PATTERNS, *extra_key_patterns)
        self._key_pattern = re.compile("|".join(f"(?:{p})" for p in keys), re.IGNORECASE)
        extra = [f"(?P<extra{i}>{p})" for i, p in enumerate(extra_value_patterns)]
        # Defaults are case-sensitive where case is part of the format (AKIA, eyJ); extras are not.
        self._value_pattern = re.compile("|".join(_VALUE_PATTERNS), re.DOTALL)
        self._extra_value_pattern = re.compile("|".join(extra), re.IGNORECASE) if extra else None
        # Skip the (slow) default value pattern on strings that cannot match it; off only in tests.
        self._prefilter = True
        self._safe_keys = frozenset(normalise_key(k) for k in safe_keys)
        # Keys repeat from one event to the next: remember the verdict (bounded, never evicted piecemeal).
        self._key_verdicts: dict[str, bool] = {}
        # So do short values (a method name, a transport, a city): whether they may hold a secret.
        self._short_value_verdicts: dict[str, bool] = {}

    def redact(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """A redacted deep copy of `data` and the paths redacted (`arguments.items[2].token`)."""
        paths: list[str] = []
        copy = self._mapping(data, "", paths, 0)
        return copy, paths

    def redact_text(self, text: str) -> str:
        """`text` with every secret value replaced."""
        paths: list[str] = []
        return self._string(text, "", paths)

    def is_sensitive_key(self, key: str) -> bool:
        verdict = self._key_verdicts.get(key)
        if verdict is None:
            normal = normalise_key(key)
            verdict = normal not in self._safe_keys and self._key_pattern.search(normal) is not None
            if len(self._key_verdicts) >= _VERDICTS_KEPT:
                self._key_verdicts.clear()
            self._key_verdicts[key] = verdict
        return verdict

    def _mapping(self, data: Mapping[Any, Any], path: str, paths: list[str], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        plain_strings = self._prefilter and self._extra_value_pattern is None
        # The verdict caches are read inline: this loop runs for every key of every event.
        key_verdicts = self._key_verdicts
        value_verdicts = self._short_value_verdicts
        for raw_key, value in data.items():
            key = raw_key if type(raw_key) is str else str(raw_key)
            sensitive = key_verdicts.get(key)
            if sensitive is None:
                sensitive = self.is_sensitive_key(key)
            if sensitive and value is not None:
                result[key] = REDACTED
                paths.append(f"{path}.{key}" if path else key)
                continue
            kind = type(value)
            # Fast path for what most values are (scalars, and strings that cannot hold a secret): no
            # path is built, since none will be reported.
            if kind in _SCALARS or (
                kind is str
                and plain_strings
                and (
                    # A long value is seldom seen twice: not worth hashing for the cache.
                    not _may_hold_default_secret(value)
                    if len(value) > _SHORT_VALUE
                    else value_verdicts.get(value) is False or not self._may_hold_secret(value)
                )
            ):
                result[key] = value
            elif kind is dict and depth < MAX_DEPTH:  # what `_value` does with it, one call sooner
                result[key] = self._mapping(value, f"{path}.{key}" if path else key, paths, depth + 1)
            else:
                result[key] = self._value(value, f"{path}.{key}" if path else key, paths, depth + 1)
        return result

    def _may_hold_secret(self, value: str) -> bool:
        if len(value) > _SHORT_VALUE:
            return _may_hold_default_secret(value)
        verdict = self._short_value_verdicts.get(value)
        if verdict is None:
            verdict = _may_hold_default_secret(value)
            if len(self._short_value_verdicts) >= _VERDICTS_KEPT:
                self._short_value_verdicts.clear()
            self._short_value_verdicts[value] = verdict
        return verdict

    def _value(self, value: Any, path: str, paths: list[str], depth: int) -> Any:
        if isinstance(value, str):
            return self._string(value, path, paths)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth > MAX_DEPTH:  # also what stops a cycle
            return _TOO_DEEP
        if isinstance(value, Mapping):
            return self._mapping(value, path, paths, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(item, f"{path}[{i}]", paths, depth + 1) for i, item in enumerate(value)]
        dumped = _plain(value)
        if dumped is not value:
            return self._value(dumped, path, paths, depth)
        return value  # dates, UUIDs, bytes...: the serialiser turns them into text

    def _string(self, value: str, path: str, paths: list[str]) -> str:
        redacted = value
        if self._prefilter and not _may_hold_default_secret(value):
            pass
        elif self._value_pattern.search(value) is not None:
            redacted = self._value_pattern.sub(_replace_value, value)
        extra = self._extra_value_pattern
        if extra is not None and extra.search(redacted) is not None:
            redacted = extra.sub(REDACTED, redacted)
        if redacted != value:
            paths.append(path)
            return redacted
        return value


_SCALARS = frozenset({int, float, bool, type(None)})
_SHORT_VALUE = 64  # characters: longer values are seldom repeated, and not worth keeping
_VERDICTS_KEPT = 4096


def _plain(value: Any) -> Any:
    """Pydantic models and dataclasses as plain dicts, so their fields are redacted by name too."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # boundary: a user's model that cannot dump itself is sent as text instead
            return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
