"""A webhook's URL, checked when the rules file is read rather than when the first alert is posted."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15})://")  # short: a longer one may be a secret


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook's URL, or None: caught here, not when the first alert is posted."""
    # Never the URL itself: its credentials (or a Slack-style secret path) would go to logs and CI output.
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "url must start with http:// or https://"
    if scheme.group(1).lower() not in ("http", "https"):
        return f"url must be http:// or https://, not '{scheme.group(0)}…'"
    try:
        parts = urlsplit(url)
    except ValueError:  # a host in brackets that is no IPv6 address
        parts = None
    if parts is None or not parts.hostname:
        return f"url must name a host after '{scheme.group(0)}'"
    try:
        port = parts.port  # a ValueError when out of range or not a number
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        return "url must have a port from 1 to 65535"
    return None
