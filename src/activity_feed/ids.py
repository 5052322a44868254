"""Time-ordered UUIDs (version 7, RFC 9562), made without a dependency until Python ships them."""

from __future__ import annotations

import random
import time
import uuid


def uuid7() -> uuid.UUID:
    """A random UUID whose first 48 bits are the Unix time in milliseconds, so ids sort by creation.

    The 74 random bits come from `random` (seeded from the OS at start and again in a forked child),
    not `os.urandom`: ids need to be unique, not secret, and a system call per id costs more than the
    rest of `FeedClient.log()` together where system calls are slow (sandboxes, gVisor)."""
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80 | random.getrandbits(80)
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)
