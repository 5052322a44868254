"""Redactor: every default key and value pattern, nesting, safe keys, extra patterns, and what is kept."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from pydantic import BaseModel

from activity_feed.redaction import REDACTED, Redactor, _may_hold_default_secret, normalise_key

REDACTOR = Redactor()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_password",
        "passwd",
        "pwd",
        "mysql_pwd",
        "passphrase",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh-token",
        "max_tokens",
        "auth",
        "Authorization",
        "oauth_state",
        "credential",
        "credentials",
        "api_key",
        "api-key",
        "apikey",
        "apiKey",
        "API Key",
        "x_api_key",
        "private_key",
        "privateKey",
        "private key",
        "aws_access_key_id",
        "session",
        "sessionid",
        "user_session",
        "PHPSESSID",
        "connect.sid",
        "cookie",
        "set-cookie",
        "csrf",
        "_csrf",
        "csrftoken",
        "XSRF-TOKEN",
        "_xsrf",
        "jwt",
        "ssn",
        "userSsn",
        "social_security_number",
        "credit_card",
        "creditCardNumber",
        "card_number",
        "cvv",
        "cvc",
        "pin",
        "X-Forwarded-For",
        "x_real_ip",
        "ip_address",
        "REMOTE_ADDR",
        "symfony",
    ],
)
def test_a_sensitive_key_is_redacted(key: str) -> None:
    data, paths = REDACTOR.redact({key: "value", "city": "Leeds"})
    assert data == {key: REDACTED, "city": "Leeds"}
    assert paths == [key]


@pytest.mark.parametrize(
    "key", ["author", "authors", "city", "description", "shipping", "pinned", "spinner", "tool_name", "id"]
)
def test_a_harmless_key_is_kept(key: str) -> None:
    assert REDACTOR.redact({key: "value"}) == ({key: "value"}, [])


def test_a_sensitive_key_is_redacted_whatever_its_value_but_none_is_kept() -> None:
    data, paths = REDACTOR.redact({"token": {"a": 1}, "secret": [1, 2], "pin": 1234, "password": None})
    assert data == {"token": REDACTED, "secret": REDACTED, "pin": REDACTED, "password": None}
    assert paths == ["token", "secret", "pin"]


SECRET_TEXTS: list[tuple[str, str]] = [
    ("key sk-" + "a" * 48, f"key {REDACTED}"),
    ("sk-proj-" + "Ab1_" * 10, REDACTED),
    ("sk-ant-api03-" + "x" * 40 + " end", f"{REDACTED} end"),
    ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", REDACTED),
    ("ghp_" + "a" * 36, REDACTED),
    ("gho_" + "B" * 36, REDACTED),
    ("ghs_" + "1" * 36, REDACTED),
    ("github_pat_" + "11ABCDEFG0" * 6, REDACTED),
    ("slack xoxb-1234567890-abcdefghij", f"slack {REDACTED}"),
    ("xoxp-1234-5678-abcdefghijkl", REDACTED),
    ("aws AKIAIOSFODNN7EXAMPLE here", f"aws {REDACTED} here"),
    ("AIza" + "S" * 35, REDACTED),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8",
        f"jwt {REDACTED}",
    ),
    ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: Bearer {REDACTED}"),
    ("basic dXNlcjpwYXNzd29yZA==", f"basic {REDACTED}"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nafter",
        f"{REDACTED}\nafter",
    ),
    ("cut preview -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg", f"cut preview {REDACTED}"),
    ("postgresql://feed:s3cr3t@db:5432/feed", f"postgresql://feed:{REDACTED}@db:5432/feed"),
    ("retry with password=hunter2&user=ann", f"retry with password={REDACTED}&user=ann"),
    ('{"token": "abc123"}', f'{{"token": "{REDACTED}"}}'),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_TEXTS)
def test_a_secret_value_is_replaced_in_place(text: str, expected: str) -> None:
    data, paths = REDACTOR.redact({"note": text})
    assert data == {"note": expected}
    assert paths == ["note"]


ORDINARY_TEXTS: list[str] = [
    "an ordinary sentence about tokens and sessions",
    "sk-short",
    "task-1234567890abcdefghij",  # not sk- at a word start
    "AKIA lower",
    "Bearer",
    "eyJ alone",
    "https://example.com/path?q=1",
    "",
]


@pytest.mark.parametrize("text", ORDINARY_TEXTS)
def test_an_ordinary_value_is_kept(text: str) -> None:
    assert REDACTOR.redact({"note": text}) == ({"note": text}, [])


def test_nested_lists_and_dicts_report_their_paths() -> None:
    data = {
        "arguments": {
            "items": [{"name": "a"}, {"name": "b"}, {"name": "c", "token": "t"}],
            "password": "p",
            "notes": ["fine", "ghp_" + "z" * 36],
        },
        "count": 3,
    }
    redacted, paths = REDACTOR.redact(data)
    assert paths == ["arguments.items[2].token", "arguments.password", "arguments.notes[1]"]
    assert redacted["arguments"]["items"][2] == {"name": "c", "token": REDACTED}
    assert redacted["arguments"]["notes"] == ["fine", REDACTED]
    assert redacted["count"] == 3


def test_the_input_is_not_modified() -> None:
    data: dict[str, Any] = {"arguments": {"password": "p", "list": [{"secret": "s"}]}}
    REDACTOR.redact(data)
    assert data == {"arguments": {"password": "p", "list": [{"secret": "s"}]}}


def test_safe_keys_are_exempt_from_the_key_rule_but_not_from_value_patterns() -> None:
    redactor = Redactor(safe_keys=["max_tokens", "Session-Id"])
    data, paths = redactor.redact(
        {"max_tokens": 1000, "session_id": "conv-7", "tokens_used": 5, "max_tokens_note": "x"}
    )
    assert data == {
        "max_tokens": 1000,
        "session_id": "conv-7",
        "tokens_used": REDACTED,
        "max_tokens_note": REDACTED,
    }
    assert redactor.redact({"max_tokens": "sk-" + "q" * 30}) == ({"max_tokens": REDACTED}, ["max_tokens"])
    assert paths == ["tokens_used", "max_tokens_note"]


def test_extra_key_and_value_patterns_add_to_the_defaults() -> None:
    redactor = Redactor(extra_key_patterns=[r"tenant_?phone"], extra_value_patterns=[r"INT-\d{6}"])
    data, paths = redactor.redact({"tenantPhone": "0113", "ref": "ticket int-123456 open", "password": "p"})
    assert data == {"tenantPhone": REDACTED, "ref": f"ticket {REDACTED} open", "password": REDACTED}
    assert paths == ["tenantPhone", "ref", "password"]


def test_models_dataclasses_tuples_and_non_string_keys_are_walked() -> None:
    class Login(BaseModel):
        user: str
        password: str

    @dataclasses.dataclass
    class Card:
        holder: str
        card_number: str

    data, paths = REDACTOR.redact(
        {"login": Login(user="ann", password="p"), "card": Card("ann", "4111"), "pair": ("a", "b"), 1: "one"}
    )
    assert data == {
        "login": {"user": "ann", "password": REDACTED},
        "card": {"holder": "ann", "card_number": REDACTED},
        "pair": ["a", "b"],
        "1": "one",
    }
    assert paths == ["login.password", "card.card_number"]


def test_a_cycle_is_cut_instead_of_recursing_forever() -> None:
    data: dict[str, Any] = {"name": "loop"}
    data["self"] = data
    redacted, _ = REDACTOR.redact(data)
    depth = 0
    node: Any = redacted
    while isinstance(node, dict):
        node, depth = node["self"], depth + 1
    assert node == "[TOO DEEP]"
    assert depth < 40


def test_untouched_values_are_not_copied() -> None:
    text = "x" * 1000
    data, _ = REDACTOR.redact({"a": text})
    assert data["a"] is text


def test_normalise_key() -> None:
    assert normalise_key("apiKey") == "api_key"
    assert normalise_key("X-Forwarded-For") == "x_forwarded_for"
    assert normalise_key("connect.sid") == "connect_sid"
    assert normalise_key("API Key") == "api_key"


# The prefilter (`_may_hold_default_secret`) only skips the value pattern where it cannot match.

_FRAGMENTS = (
    "-----BEGIN ",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "PRIVATE KEY-----",
    "eyJ",
    "eyJhbGciOiJIUzI1NiJ9",
    "Bearer ",
    "bearer\t",
    "BEARER ",
    "Basic ",
    "basic\n",
    "BASIC ",
    "sk-",
    "sk_live_",
    "rk_test_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "ASIA",
    "AIza",
    "://",
    "https://ann:",
    "@",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "client-secret",
    "token",
    "access_token",
    "api_key",
    "api-key",
    "apikey",
    "=",
    ": ",
    '"',
    "&",
    ".",
    "INT-123456",
    "int-654321",
    "pwd=",
    "passwd: ",
    'password"=',
    "secret:",
    "api_key =",
    "token=",
    "Authorization: Bearer ",
    "postgresql://feed:",
)
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:=@/+~ \t\n\"'{},;&é€"


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randrange(0, 12)):
        roll = rng.random()
        if roll < 0.4:
            parts.append(rng.choice(_FRAGMENTS))
        elif roll < 0.5:
            parts.append(rng.choice(SECRET_TEXTS)[0])
        else:
            parts.append("".join(rng.choices(_ALPHABET, k=rng.randrange(0, 40))))
    return "".join(parts)


def _texts() -> list[str]:
    rng = random.Random(20261126)
    texts = [text for text, _ in SECRET_TEXTS] + ORDINARY_TEXTS + list(_FRAGMENTS)
    texts += [_random_text(rng) for _ in range(5000)]
    return texts


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"extra_value_patterns": [r"INT-\d{6}"], "safe_keys": ["token"]}],
    ids=["defaults", "extras"],
)
def test_the_prefilter_changes_no_result(kwargs: dict[str, Any]) -> None:
    filtered, unfiltered = Redactor(**kwargs), Redactor(**kwargs)
    unfiltered._prefilter = False
    for text in _texts():
        assert filtered.redact_text(text) == unfiltered.redact_text(text), text
        data = {"note": text, "nested": [{"value": text}], "token": text}
        assert filtered.redact(data) == unfiltered.redact(data), text


def test_the_prefilter_lets_every_default_secret_through() -> None:
    for text, _ in SECRET_TEXTS:
        assert _may_hold_default_secret(text), text
    # and skips plain text and JSON without any of the literals
    assert not _may_hold_default_secret('[{"id": 3, "city": "Leeds", "rent": 950, "available": true}]')
