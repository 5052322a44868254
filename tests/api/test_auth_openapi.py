"""The OpenAPI schema tells the truth about tokens: every operation under /activities declares the 401 of
api/auth.py and every write its 403, the answers the middleware really sends conform to what is declared
(checked by schemathesis, as the fuzzing does), and a feed with tokens declares the bearer scheme.

In-process over ASGI without the lifespan: the middleware answers before any route, store or hub runs.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from activity_feed.api import create_app
from activity_feed.api.auth import SECURITY_SCHEME
from activity_feed.settings import Settings

WRITE = "write-token-for-openapi-tests"
READ = "read-token-for-openapi-tests"
WRITE_METHODS = {"post", "patch", "delete"}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _settings(tmp_path: Path, **tokens: str) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", **tokens)


@pytest.fixture
def secured_app(tmp_path: Path) -> FastAPI:
    return create_app(_settings(tmp_path, token=WRITE, read_token=READ))


@pytest.fixture
def document(secured_app: FastAPI) -> dict[str, Any]:
    return secured_app.openapi()


@pytest.fixture
async def http(secured_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secured_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feed.test") as client:
        yield client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def feed_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (path, method, op) for path, method, op in operations(document) if path.startswith("/activities")
    ]
    assert found, "no operation under /activities in the schema"
    return found


def error_schema(document: dict[str, Any], operation: dict[str, Any], status: str) -> dict[str, Any]:
    """The JSON schema of `operation`'s `status` answer, its reference followed."""
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def test_every_feed_operation_declares_401_with_its_challenge(document: dict[str, Any]) -> None:
    for path, method, operation in feed_operations(document):
        declared = operation["responses"].get("401")
        assert declared is not None, f"{method.upper()} {path} does not declare 401"
        assert "WWW-Authenticate" in declared["headers"], f"{method.upper()} {path}"
        assert error_schema(document, operation, "401")["required"] == ["detail"]


def test_writes_declare_403_and_reads_do_not(document: dict[str, Any]) -> None:
    for path, method, operation in feed_operations(document):
        if method in WRITE_METHODS:
            assert "403" in operation["responses"], f"{method.upper()} {path} does not declare 403"
            assert error_schema(document, operation, "403")["required"] == ["detail"]
        else:
            # A read token may read: a GET never answers 403 (the stream's Origin check is not in the schema).
            assert "403" not in operation["responses"], f"{method.upper()} {path} declares 403"


def test_health_declares_no_token_answers(document: dict[str, Any]) -> None:
    health = document["paths"]["/health"]["get"]

    assert not {"401", "403"} & set(health["responses"])
    assert "security" not in health


def test_a_feed_with_tokens_declares_the_bearer_scheme_on_its_operations(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"][SECURITY_SCHEME] == {
        "type": "http",
        "scheme": "bearer",
        "description": "ACTIVITY_FEED_TOKEN (writes and reads) or ACTIVITY_FEED_READ_TOKEN (reads only)",
    }
    for path, method, operation in feed_operations(document):
        assert operation["security"] == [{SECURITY_SCHEME: []}], f"{method.upper()} {path}"


def test_an_open_feed_declares_no_security(tmp_path: Path) -> None:
    document = create_app(_settings(tmp_path)).openapi()

    assert "securitySchemes" not in document.get("components", {})
    assert all("security" not in operation for _, _, operation in operations(document))


def test_building_the_schema_again_changes_nothing(secured_app: FastAPI) -> None:
    first = copy.deepcopy(secured_app.openapi())

    assert secured_app.openapi() == first


async def _send(http: httpx.AsyncClient, path: str, method: str, headers: dict[str, str]) -> httpx.Response:
    url = path.replace("{event_id}", str(uuid.uuid4()))
    body = {} if method in {"post", "patch"} else None
    return await http.request(method.upper(), url, json=body, headers=headers)


def _assert_conforms(
    document: dict[str, Any], path: str, method: str, response: httpx.Response, status: int
) -> None:
    assert response.status_code == status, f"{method.upper()} {path}: {response.status_code} {response.text}"
    operation = document["paths"][path][method]
    assert str(status) in operation["responses"], f"{method.upper()} {path} answers an undeclared {status}"
    assert operation["responses"][str(status)]["content"].keys() == {"application/json"}
    # The body against the declared schema, by the validation the fuzzing applies ...
    schemathesis.openapi.from_dict(document)[path][method.upper()].validate_response(response)
    # ... and nothing more than the model's fields (the schema alone would allow extra keys).
    body = response.json()
    assert set(body) == set(error_schema(document, operation, str(status))["properties"]), body
    assert isinstance(body["detail"], str)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {WRITE}"}],
    ids=["no token", "wrong token", "not bearer"],
)
async def test_401_answers_conform_to_the_schema(
    http: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str]
) -> None:
    for path, method, _ in feed_operations(document):
        response = await _send(http, path, method, headers)

        _assert_conforms(document, path, method, response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_403_answers_to_the_read_token_conform_to_the_schema(
    http: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    writes = [(path, method) for path, method, _ in feed_operations(document) if method in WRITE_METHODS]
    assert len(writes) == 4  # log, batch, patch, delete
    for path, method in writes:
        response = await _send(http, path, method, {"Authorization": f"Bearer {READ}"})

        _assert_conforms(document, path, method, response, 403)
