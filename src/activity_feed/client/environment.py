"""What a `FeedClient` takes from the environment when it is not told: where to send, and the token."""

from __future__ import annotations

import os

from activity_feed.tokens import check_token


def default_url() -> str | None:
    """`ACTIVITY_FEED_URL`, read here rather than through the service's `Settings`: the host needs none
    of the service's other settings, and a bad one of them must not stop it."""
    return os.environ.get("ACTIVITY_FEED_URL", "").strip() or None


def client_token(token: str | None) -> str | None:
    """`token`, else `ACTIVITY_FEED_TOKEN`; None when blank (as the service reads it). Raises
    `InvalidTokenError` for a token that cannot go in an HTTP header, rather than fail at every send."""
    name = "the token"
    if token is None:
        token, name = os.environ.get("ACTIVITY_FEED_TOKEN"), "ACTIVITY_FEED_TOKEN"
    return check_token(token, name=name) if token and token.strip() else None
