"""What a missing service (PostgreSQL, Chromium) means: a skip with the reason on a laptop, a failure
in CI (CI=true) or wherever ACTIVITY_FEED_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

SERVICES_REQUIRED = os.environ.get("CI") == "true" or os.environ.get("ACTIVITY_FEED_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> NoReturn:
    if SERVICES_REQUIRED:
        pytest.fail(reason + " (required because CI=true or ACTIVITY_FEED_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
