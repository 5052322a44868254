"""Event ids made from spans are the standard UUIDv5 of their names, made faster."""

from __future__ import annotations

import uuid

import pytest

from activity_feed.otlp.keys import NAMESPACE, link_key, request_key, span_key, uuid5


@pytest.mark.parametrize("name", ["", "request\n0af7651916cd43dd8448eb211c80319c\n7\ntools/call", "é" * 300])
def test_uuid5_is_the_standards(name: str) -> None:
    made, standard = uuid5(name), uuid.uuid5(NAMESPACE, name)
    assert made == standard
    assert (str(made), hash(made), made.version, made.variant) == (
        str(standard),
        hash(standard),
        5,
        uuid.RFC_4122,
    )


def test_each_kind_of_place_has_names_of_its_own() -> None:
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    assert len({request_key(trace, span, "x"), link_key(trace, span), span_key(trace, span)}) == 3
