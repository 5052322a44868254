"""Which host names a feed without a token answers to: loopback names (localhost, 127.0.0.0/8, [::1])
and those listed in ACTIVITY_FEED_ALLOWED_HOSTS. Used by the Host check (api/host_check.py) and by the
stream's Origin check (api/auth.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ANY_HOST = "*"
LOOPBACK_NAMES = "localhost, 127.0.0.1 or [::1]"


def host_name(authority: str) -> str:
    """The host of a `Host` header or of an origin's `host:port`: lower case, without the port, the IPv6
    brackets or a trailing dot."""
    value = authority.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        value = value[1:end] if end > 0 else value
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def is_loopback_name(host: str) -> bool:
    """True for names only this machine answers to: `localhost` (and `*.localhost`), 127.0.0.0/8, ::1."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Which host names a token-less feed answers to: loopback names, plus the listed ones (`name`, or
    `*.example.com` for its subdomains; ports are ignored), or any at all when `*` is listed."""

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        names = {host_name(entry) for entry in allowed_hosts if entry.strip()}
        self.any_host = ANY_HOST in names
        names.discard(ANY_HOST)
        self.suffixes = tuple(sorted(name[1:] for name in names if name.startswith("*.")))
        self.names = frozenset(name for name in names if not name.startswith("*."))

    def trusts(self, authority: str) -> bool:
        """A loopback or listed host (a bare `*` not counting): a page there may use the stream."""
        host = host_name(authority)
        return is_loopback_name(host) or host in self.names or host.endswith(self.suffixes)

    def accepts(self, authority: str) -> bool:
        """A `Host` the feed answers to."""
        return self.any_host or self.trusts(authority)
