"""The shared example dataset: seeded once, filters, and the checks the tools rely on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from activity_feed.examples.property_data import (
    InvalidRequestError,
    NotFoundError,
    PropertyData,
    default_db_path,
)


def test_the_dataset_is_created_and_seeded_once(db_path: Path) -> None:
    # Several openers at once, as when the MCP server and the API start together on a new file.
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: len(PropertyData(db_path).search_properties()), range(4)))
    assert counts == [10, 10, 10, 10]
    PropertyData(db_path).create_maintenance_request(property_id=102, description="Leak", priority="high")
    assert len(PropertyData(db_path).list_maintenance_requests(property_id=102)) == 1  # not reseeded


def test_the_path_comes_from_property_db_path(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    monkeypatch.setenv("PROPERTY_DB_PATH", str(db_path))
    assert default_db_path() == db_path
    assert PropertyData().path == db_path


def test_searches_combine_their_filters(db_path: Path) -> None:
    data = PropertyData(db_path)
    found = data.search_properties(city="LONDON", max_rent=2500, min_bedrooms=2)
    assert [p["id"] for p in found] == [108]
    assert all(p["bedrooms"] >= 3 for p in data.search_properties(min_bedrooms=3))
    assert data.search_properties(max_rent=100) == []


def test_unknown_ids_and_bad_arguments_are_refused_with_a_reason(db_path: Path) -> None:
    data = PropertyData(db_path)
    with pytest.raises(NotFoundError, match="no property with id 5"):
        data.get_property(5)
    with pytest.raises(NotFoundError):
        data.list_tenants(5)
    with pytest.raises(InvalidRequestError, match="priority must be one of low, medium, high, urgent"):
        data.create_maintenance_request(property_id=101, description="Leak", priority="asap")
    with pytest.raises(InvalidRequestError, match="must not be empty"):
        data.create_maintenance_request(property_id=101, description="  ", priority="low")
    with pytest.raises(InvalidRequestError, match="status must be one of"):
        data.list_maintenance_requests(status="closed")


def test_viewings_must_be_in_the_future_and_not_overlap(db_path: Path) -> None:
    data = PropertyData(db_path)
    booked = data.schedule_viewing(property_id=103, visitor_name="Ada", when="2031-06-02T10:00:00")
    assert booked["starts_at"] == "2031-06-02T10:00:00+00:00"  # no zone means UTC
    with pytest.raises(InvalidRequestError, match="already has a viewing"):
        data.schedule_viewing(property_id=103, visitor_name="Bo", when="2031-06-02T11:15:00+01:00")
    with pytest.raises(InvalidRequestError, match="in the future"):
        data.schedule_viewing(property_id=103, visitor_name="Bo", when="2020-01-01T10:00:00Z")
    with pytest.raises(InvalidRequestError, match="ISO 8601"):
        data.schedule_viewing(property_id=103, visitor_name="Bo", when="next Tuesday")
    assert [v["visitor_name"] for v in data.list_viewings(103)] == ["Ada"]
