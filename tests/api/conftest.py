"""Fixtures of the service API tests: tokens with and without the scope, and a caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from api.models import ServiceToken
from api.services import service_token_create


def restrictions_path(account_id: object) -> str:
    return f"/api/v1/accounts/{account_id}/restrictions"


@pytest.fixture
def exchange_token(db) -> tuple[ServiceToken, str]:
    """The exchange's token with the restrictions:read scope: the row and the raw token."""
    return service_token_create(name="exchange")


@pytest.fixture
def scopeless_token(db) -> tuple[ServiceToken, str]:
    return service_token_create(name="reporting", scopes=[])


@pytest.fixture
def call_api(client: Client) -> Callable[..., Any]:
    """GET the restrictions of an account, with a bearer token unless None is given."""

    def call(account_id: object, token: str | None, **extra: Any) -> Any:
        if token is not None:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
        return client.get(restrictions_path(account_id), **extra)

    return call
