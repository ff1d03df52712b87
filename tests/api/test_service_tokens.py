"""Service tokens: issued once, stored only as a keyed hash, revoked, listed, shown to staff."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.hashing import HashPurpose, keyed_hash
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from api.models import ServiceToken
from tests.api.conftest import restrictions_path
from tests.factories import UserFactory, admin_sign_in

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"rdsk_[A-Za-z0-9_-]{43}")


def _run(*args: str) -> str:
    out = StringIO()
    call_command("service_token", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_token_once_and_stores_only_its_keyed_hash(client):
    """The token (256 random bits) appears once in the output; the row holds its HMAC only."""
    output = _run("create", "exchange-withdrawals")
    tokens = TOKEN.findall(output)
    assert len(tokens) == 1
    token = tokens[0]
    assert "Authorization: Bearer" in output and "/api/v1/accounts/" in output
    row = ServiceToken.objects.get(name="exchange-withdrawals")
    assert row.scopes == ["restrictions:read"]
    assert row.token_hash == keyed_hash(token, purpose=HashPurpose.SERVICE_TOKEN) != token
    assert len(row.token_hash) == 64 and token not in row.token_hash
    customer = UserFactory()
    response = client.get(restrictions_path(customer.pk), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


def test_the_hash_is_keyed_with_the_secret_key(settings):
    """Without the SECRET_KEY a database copy cannot check a guessed token."""
    token = "rdsk_" + "E" * 43
    before = keyed_hash(token, purpose=HashPurpose.SERVICE_TOKEN)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"
    assert keyed_hash(token, purpose=HashPurpose.SERVICE_TOKEN) != before


def test_two_tokens_are_never_alike():
    """Each token is fresh randomness; names are unique."""
    first = TOKEN.findall(_run("create", "a"))[0]
    second = TOKEN.findall(_run("create", "b"))[0]
    assert first != second
    assert ServiceToken.objects.values("token_hash").distinct().count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "exchange"), "already exists"),
        (("create", "two words"), "letters, digits"),
        (("create", ".dot-first"), "letters, digits"),
        (("create", "x" * 65), "at most 64"),
    ],
)
def test_create_refuses_a_taken_or_bad_name(args, message):
    """A duplicate or malformed name is a CommandError (non-zero exit) and issues nothing."""
    _run("create", "exchange")
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert ServiceToken.objects.count() == 1


def test_create_refuses_an_unknown_scope():
    """Only the scopes the API knows can be granted."""
    with pytest.raises(CommandError, match="invalid choice"):
        _run("create", "exchange", "--scope", "accounts:write")
    assert not ServiceToken.objects.exists()


def test_revoke_refuses_the_token_from_its_next_call(client):
    """After `revoke`, the token gets 401; revoking again or an unknown name is an error."""
    token = TOKEN.findall(_run("create", "exchange"))[0]
    customer = UserFactory()
    path = restrictions_path(customer.pk)
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert "Revoked service token exchange" in _run("revoke", "exchange")
    assert ServiceToken.objects.get().revoked_at is not None
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    with pytest.raises(CommandError, match="already revoked"):
        _run("revoke", "exchange")
    with pytest.raises(CommandError, match="No service token is called nobody"):
        _run("revoke", "nobody")


def test_list_shows_names_scopes_and_dates_but_never_a_token_or_hash(client):
    """`list` (and `list --json`) name each token with its scopes and dates, nothing secret."""
    token = TOKEN.findall(_run("create", "exchange"))[0]
    _run("create", "old-exchange")
    _run("revoke", "old-exchange")
    client.get(restrictions_path(UserFactory().pk), HTTP_AUTHORIZATION=f"Bearer {token}")
    hashes = list(ServiceToken.objects.values_list("token_hash", flat=True))

    text = _run("list")
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "scopes"]
    assert lines[1].startswith("exchange ") and "restrictions:read" in lines[1]
    assert lines[2].startswith("old-exchange ") and lines[2].rstrip().endswith("UTC")
    rows = json.loads(_run("list", "--json"))
    assert [row["name"] for row in rows] == ["exchange", "old-exchange"]
    assert rows[0]["last_used_at"] is not None and rows[0]["revoked_at"] is None
    assert rows[1]["last_used_at"] is None and rows[1]["revoked_at"] is not None
    assert set(rows[0]) == {"name", "scopes", "created_at", "last_used_at", "revoked_at"}
    for output in (text, json.dumps(rows)):
        assert not TOKEN.search(output)
        assert not any(h in output for h in hashes)


def test_list_says_when_there_are_no_tokens():
    """An empty list is said in words."""
    assert _run("list").strip() == "No service tokens."


def test_staff_see_tokens_and_calls_read_only_and_never_a_hash():
    """The admin lists tokens and calls; no add, change or delete; no token and no hash shown."""
    token = TOKEN.findall(_run("create", "exchange"))[0]
    row = ServiceToken.objects.get()
    anonymous = Client()
    anonymous.get(restrictions_path(UserFactory().pk), HTTP_AUTHORIZATION=f"Bearer {token}")

    staff = UserFactory(is_staff=True, is_superuser=True)
    two_factor_provision(user=staff, context=AuditContext(), notify=False)
    client = Client()
    admin_sign_in(client, staff)
    pages = {
        "/admin/api/servicetoken/": 200,
        f"/admin/api/servicetoken/{row.pk}/change/": 200,
        "/admin/api/servicecall/": 200,
        "/admin/api/servicetoken/add/": 403,
        f"/admin/api/servicetoken/{row.pk}/delete/": 403,
    }
    for path, status in pages.items():
        response = client.get(path)
        assert response.status_code == status, path
        page = response.content.decode()
        assert token not in page and row.token_hash not in page, path
    assert "exchange" in client.get("/admin/api/servicetoken/").content.decode()
    change = client.get(f"/admin/api/servicetoken/{row.pk}/change/").content.decode()
    assert 'name="name"' not in change
