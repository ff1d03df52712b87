"""The OpenAPI 3.1 schema is valid, public, and describes the answers the API really gives."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from accounts.selectors import RestrictionReason
from accounts.services.holds import security_hold_extend
from api.models import Scope
from api.openapi import OPENAPI_PATH, openapi_document
from api.services import service_token_revoke
from tests.api.conftest import restrictions_path
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OPERATION = "/api/v1/accounts/{account_id}/restrictions"
DOCUMENT_URI = "urn:recovery-desk:openapi"


def _validator(schema: dict, document: dict) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator whose `#/components/...` references reach the document."""
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": DOCUMENT_URI + schema["$ref"]},
        registry=registry,
        format_checker=FormatChecker(),
    )


def _assert_conforms(response, document: dict) -> None:
    """Body and documented headers of `response` against its status's entry in the schema."""
    documented = document["paths"][OPERATION]["get"]["responses"][str(response.status_code)]
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    resolver = registry.resolver(base_uri=DOCUMENT_URI)

    def resolve(node: dict) -> dict:
        return resolver.lookup(DOCUMENT_URI + node["$ref"]).contents if "$ref" in node else node

    assert response["Content-Type"] == "application/json"
    body_schema = documented["content"]["application/json"]["schema"]
    _validator(body_schema, document).validate(response.json())
    for name, header in documented.get("headers", {}).items():
        header = resolve(header)
        if header.get("required"):
            assert name in response.headers, name
        if name in response.headers:
            value: object = response[name]
            if resolve(header["schema"]).get("type") == "integer":
                value = int(response[name])
            Draft202012Validator(resolve(header["schema"])).validate(value)


def test_the_schema_is_a_valid_openapi_3_1_document():
    """openapi-spec-validator accepts the document, and it declares OpenAPI 3.1."""
    document = openapi_document()
    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_the_schema_is_served_publicly_as_it_is_kept(client):
    """GET /api/v1/openapi.json needs no token and returns the file in the app, unchanged."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == OPENAPI_PATH.read_bytes()
    assert json.loads(response.content) == openapi_document()


def test_the_schema_names_every_reason_and_scope_the_code_uses():
    """Reason codes and scopes in the schema are exactly those of the code, so neither drifts."""
    document = openapi_document()
    reasons = document["components"]["schemas"]["RestrictionReason"]["enum"]
    codes = {
        value
        for name, value in vars(RestrictionReason).items()
        if not name.startswith("_") and isinstance(value, str)
    }
    assert set(reasons) == codes
    assert document["paths"][OPERATION]["get"]["security"] == [{"serviceToken": list(Scope.values)}]


def test_real_answers_conform_to_the_schema(
    client, call_api, exchange_token, scopeless_token, settings
):
    """200 (free, held, frozen, re-enrolling), 401, 403, 404, 405 and 429 match their schemas."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "api_restrictions": "8/m/key",
    }
    document = openapi_document()
    _row, token = exchange_token
    _scopeless_row, scopeless = scopeless_token
    free = UserFactory()
    held = UserFactory()
    security_hold_extend(user=held, hours=48)
    frozen = UserFactory(frozen_at=held.security_hold_until)
    reenrolling = UserFactory(reenrolment_required=True)

    answers = [call_api(user.pk, token) for user in (free, held, frozen, reenrolling)]
    assert [a.status_code for a in answers] == [200] * 4
    answers.append(call_api(free.pk, None))
    answers.append(call_api(free.pk, scopeless))
    answers.append(call_api("nope", token))
    answers.append(call_api(free.pk + 1000, token))
    answers.append(client.post(restrictions_path(free.pk), HTTP_AUTHORIZATION=f"Bearer {token}"))
    while (last := call_api(free.pk, token)).status_code != 429:
        answers.append(last)
    answers.append(last)
    service_token_revoke(name="exchange")
    answers.append(call_api(free.pk, token))

    assert {a.status_code for a in answers} == {200, 401, 403, 404, 405, 429}
    for response in answers:
        _assert_conforms(response, document)


def test_the_schema_rejects_answers_it_does_not_describe():
    """The response schemas are strict: a missing field, an extra one or a bad time fail."""
    document = openapi_document()
    schema = document["paths"][OPERATION]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    validator = _validator(schema, document)
    good = {
        "account_id": 42,
        "withdrawals_allowed": False,
        "security_changes_allowed": False,
        "until": "2026-11-30T10:00:00Z",
        "reasons": ["security_hold"],
    }
    assert validator.is_valid(good)
    assert validator.is_valid({**good, "until": None, "reasons": []})
    for bad in (
        {k: v for k, v in good.items() if k != "until"},
        {**good, "email": "a@example.com"},
        {**good, "until": "2026-11-30 10:00"},
        {**good, "until": "2026-11-30T10:00:00.5+01:00"},
        {**good, "until": "2026-11-30T25:00:00Z"},
        {**good, "reasons": ["unknown"]},
        {**good, "reasons": ["security_hold", "security_hold"]},
        {**good, "account_id": "42"},
    ):
        assert not validator.is_valid(bad), bad
    unauthorized = document["paths"][OPERATION]["get"]["responses"]["401"]["content"][
        "application/json"
    ]["schema"]
    assert not _validator(unauthorized, document).is_valid({"error": "forbidden"})
