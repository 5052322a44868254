"""Time-ordered UUIDs (version 7, RFC 9562), made without a dependency until Python ships them."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A random UUID whose first 48 bits are the Unix time in milliseconds, so ids sort by creation."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80 | rand
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)
