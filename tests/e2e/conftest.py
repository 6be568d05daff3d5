"""The HTTP API in-process: an app on the test store, real client credentials, tokens.

Every fixture here builds on `store_url`, so each API test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import granted
from handover.api.app import create_app
from handover.config import Settings
from handover.services import access
from handover.services.model import Role
from handover.services.ports import UnitOfWorkFactory

SECRET_KEY = "e2e-test-secret-key-that-is-long-enough-0123456789"


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    carrier_id: str | None = None


@pytest.fixture
def settings(store_url: str, tmp_path: Any) -> Settings:
    return Settings(
        database_url=store_url,
        environment="test",
        secret_key=SECRET_KEY,
        spool_dir=str(tmp_path),
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def register_carrier(uow_factory: UnitOfWorkFactory) -> Callable[..., Client]:
    def register(carrier_id: str, country: str = "CN") -> Client:
        _, credentials = access.register_carrier(
            uow_factory, carrier_id, carrier_id.upper(), country
        )
        granted.grant(uow_factory, carrier_id)
        return Client(credentials.client_id, credentials.client_secret, carrier_id)

    return register


@pytest.fixture
def cm(register_carrier: Callable[..., Client]) -> Client:
    """China Mobile's reporting client."""
    return register_carrier("cm")


@pytest.fixture
def cu(register_carrier: Callable[..., Client]) -> Client:
    """China Unicom's reporting client."""
    return register_carrier("cu")


@pytest.fixture
def regulator(uow_factory: UnitOfWorkFactory) -> Client:
    credentials = access.register_client(uow_factory, Role.REGULATOR, "The regulator")
    return Client(credentials.client_id, credentials.client_secret)


@pytest.fixture
def token(http: TestClient) -> Callable[..., str]:
    """A bearer token for a client (through POST /oauth/token)."""

    def get(client: Client, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        response = http.post(
            "/oauth/token", data=form, auth=(client.client_id, client.client_secret)
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token

    return get


@pytest.fixture
def as_client(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for a client."""

    def headers(client: Client, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(client, scope)}"}

    return headers
