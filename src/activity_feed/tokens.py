"""What a token may hold. It travels in an `Authorization: Bearer` header (or a `?token=` query), which
carries visible ASCII only: anything else cannot be sent by the client, nor match on the server."""

from __future__ import annotations

from activity_feed.errors import InvalidTokenError


def check_token(token: str, *, name: str = "the token") -> str:
    """`token` itself when it can go in an HTTP header; else `InvalidTokenError`, saying where the first
    character that cannot is (never quoting the token, which is a secret)."""
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":
            if char == " ":
                kind = "a space"
            elif char < " " or char == "\x7f":
                kind = "a control character (a newline, a tab...)"
            else:
                kind = "not ASCII"
            raise InvalidTokenError(
                f"{name} cannot be sent in an HTTP header: its character {position} is {kind}; use visible "
                "ASCII only (letters, digits, punctuation), without spaces"
            )
    return token
