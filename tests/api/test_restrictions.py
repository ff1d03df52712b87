"""The exchange's restrictions API: who may ask, what it answers, and what each call leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import User
from api.models import ServiceCall
from api.services import service_token_create, service_token_revoke
from tests.api.conftest import restrictions_path
from tests.conftest import free_port
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _headers(response) -> dict[str, str]:
    return dict(response.headers.items())


# --- Authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token rdsk_" + "A" * 43,
        "Bearer rdsk_" + "A" * 43,
        "Bearer " + "A" * 48,
        "Bearer rdsk_" + "A" * 42 + "!",
        "Bearer rdsk_" + "A" * 4000,
    ],
)
def test_a_call_without_a_valid_token_gets_401_with_a_bearer_challenge(
    client, exchange_token, authorization
):
    """Missing, malformed and unknown tokens all get the same 401 and `WWW-Authenticate: Bearer`."""
    customer = UserFactory()
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get(restrictions_path(customer.pk), **extra)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"


def test_a_revoked_token_gets_exactly_the_401_of_an_unknown_token(call_api, exchange_token):
    """Revoked tokens answer 401 (RFC 6750 invalid_token), byte for byte as an unknown one."""
    _row, token = exchange_token
    customer = UserFactory()
    assert call_api(customer.pk, token).status_code == 200
    service_token_revoke(name="exchange")
    revoked = call_api(customer.pk, token)
    unknown = call_api(customer.pk, "rdsk_" + "B" * 43)
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.content == unknown.content
    assert _headers(revoked) == _headers(unknown)


def test_the_scheme_name_is_case_insensitive(call_api, exchange_token, client):
    """`bearer` and `BEARER` are the same scheme (RFC 7235); the token itself is exact."""
    _row, token = exchange_token
    customer = UserFactory()
    for scheme in ("bearer", "BEARER"):
        response = client.get(
            restrictions_path(customer.pk), HTTP_AUTHORIZATION=f"{scheme} {token}"
        )
        assert response.status_code == 200
    assert call_api(customer.pk, token.swapcase()).status_code == 401


def test_a_token_without_the_scope_gets_the_same_403_for_known_and_unknown_accounts(
    call_api, scopeless_token
):
    """No `restrictions:read`: 403 before any lookup, identical bytes and headers for every id."""
    _row, token = scopeless_token
    customer = UserFactory()
    staff = UserFactory(is_staff=True)
    missing = max(User.objects.values_list("pk", flat=True)) + 1000
    answers = [call_api(account_id, token) for account_id in (customer.pk, missing, staff.pk)]
    answers.append(call_api("not-a-number", token))
    first = answers[0]
    assert first.status_code == 403
    assert first.json() == {"error": "forbidden"}
    challenge = 'Bearer error="insufficient_scope", scope="restrictions:read"'
    assert first["WWW-Authenticate"] == challenge
    for other in answers[1:]:
        assert other.status_code == 403
        assert other.content == first.content
        assert _headers(other) == _headers(first)


def test_a_signed_in_session_without_2fa_is_neither_redirected_nor_used(client, exchange_token):
    """The 2FA middleware leaves the API alone, and the session's user is not touched."""
    _row, token = exchange_token
    customer = UserFactory(language="en")
    assert client.login(email=customer.email, password=PASSWORD)
    response = client.get(
        restrictions_path(customer.pk),
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert response.status_code == 200
    assert response.json()["account_id"] == customer.pk
    customer.refresh_from_db()
    assert customer.language == "en"
    # A session alone is no credential.
    assert client.get(restrictions_path(customer.pk)).status_code == 401


def test_other_methods_get_405_even_without_a_csrf_token(exchange_token):
    """GET only: POST, PUT, DELETE and HEAD get a JSON 405, not the CSRF page, and are recorded."""
    _row, token = exchange_token
    customer = UserFactory()
    client = Client(enforce_csrf_checks=True)
    for method in ("post", "put", "patch", "delete", "head"):
        response = getattr(client, method)(
            restrictions_path(customer.pk), HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 405, method
        assert response["Allow"] == "GET"
        if method != "head":
            assert response.json() == {"error": "method_not_allowed"}
    assert list(ServiceCall.objects.values_list("status_code", flat=True)) == [405] * 5


# --- Accounts ---------------------------------------------------------------------------------


def test_an_unknown_account_and_a_staff_account_get_the_same_404(call_api, exchange_token):
    """Staff accounts are not the exchange's customers: they answer like a missing account."""
    _row, token = exchange_token
    staff = UserFactory(is_staff=True)
    superuser = UserFactory(is_superuser=True)
    missing = max(User.objects.values_list("pk", flat=True)) + 1000
    answers = [call_api(account_id, token) for account_id in (missing, staff.pk, superuser.pk)]
    for response in answers:
        assert response.status_code == 404
        assert response.json() == {"error": "not_found"}
        assert response.content == answers[0].content
        assert _headers(response) == _headers(answers[0])


@pytest.mark.parametrize(
    "account_id",
    [
        "abc",
        "0",
        "-1",
        "+1",
        "007",
        "1.0",
        "1e3",
        " 1",
        "%EF%BC%91",  # a full-width digit one
        "9223372036854775808",  # one past PostgreSQL's bigint
        "9" * 40,
        "1;DROP TABLE accounts_user",
        "%00",
    ],
)
def test_an_id_that_cannot_be_an_account_gets_a_json_404(call_api, exchange_token, account_id):
    """Non-numeric, signed, padded, non-ASCII and out-of-range ids get 404, never a 500."""
    _row, token = exchange_token
    UserFactory()
    response = call_api(account_id, token)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}
    call = ServiceCall.objects.get()
    assert call.status_code == 404 and call.account_id is None


def test_other_paths_under_the_api_get_a_json_404(exchange_token):
    """A trailing slash or an unknown path answers JSON, not the site's HTML page."""
    _row, token = exchange_token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for path in ("/api/v1/accounts/1/restrictions/", "/api/v1/accounts/1", "/api/v1/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "not_found"}


# --- Answers ----------------------------------------------------------------------------------


def test_a_free_account_may_do_everything(call_api, exchange_token):
    """No hold, freeze or revocation: everything allowed, no end, no reason; never cached."""
    _row, token = exchange_token
    customer = UserFactory()
    response = call_api(customer.pk, token)
    assert response.status_code == 200
    assert response.json() == {
        "account_id": customer.pk,
        "withdrawals_allowed": True,
        "security_changes_allowed": True,
        "until": None,
        "reasons": [],
    }
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"


def test_a_held_account_may_do_nothing_until_the_hold_ends(call_api, exchange_token):
    """A security hold: no withdrawal, no security change, until its end (UTC, rounded up)."""
    from accounts.services.holds import security_hold_extend

    _row, token = exchange_token
    customer = UserFactory()
    end = security_hold_extend(user=customer, hours=48).replace(microsecond=123456)
    User.objects.filter(pk=customer.pk).update(security_hold_until=end)
    body = call_api(customer.pk, token).json()
    expected_end = (end.replace(microsecond=0) + timedelta(seconds=1)).astimezone(UTC)
    assert body == {
        "account_id": customer.pk,
        "withdrawals_allowed": False,
        "security_changes_allowed": False,
        "until": expected_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reasons": ["security_hold"],
    }
    assert datetime.fromisoformat(body["until"]) >= end


def test_an_ended_hold_restricts_nothing(call_api, exchange_token):
    """A hold whose end has passed is not reported."""
    _row, token = exchange_token
    customer = UserFactory(security_hold_until=timezone.now() - timedelta(seconds=1))
    body = call_api(customer.pk, token).json()
    assert body["withdrawals_allowed"] and body["security_changes_allowed"]
    assert body["until"] is None and body["reasons"] == []


def test_a_frozen_account_answers_with_no_end(call_api, exchange_token):
    """Frozen ("this wasn't me"), held or not: nothing allowed, until support clears it."""
    from accounts.services.holds import security_hold_extend

    _row, token = exchange_token
    customer = UserFactory(frozen_at=timezone.now())
    body = call_api(customer.pk, token).json()
    assert body == {
        "account_id": customer.pk,
        "withdrawals_allowed": False,
        "security_changes_allowed": False,
        "until": None,
        "reasons": ["account_frozen"],
    }
    security_hold_extend(user=customer, hours=24)
    body = call_api(customer.pk, token).json()
    assert body["until"] is None
    assert body["reasons"] == ["account_frozen", "security_hold"]


def test_an_account_awaiting_2fa_reenrolment_may_not_withdraw(call_api, exchange_token):
    """2FA revoked: withdrawals refused with no end; security changes (the re-enrolment) allowed."""
    _row, token = exchange_token
    customer = UserFactory(reenrolment_required=True)
    assert call_api(customer.pk, token).json() == {
        "account_id": customer.pk,
        "withdrawals_allowed": False,
        "security_changes_allowed": True,
        "until": None,
        "reasons": ["two_factor_reenrolment_required"],
    }


def test_a_deactivated_account_may_do_nothing_until_reactivated(call_api, exchange_token):
    """An account whose sign-in right staff removed cannot be used by its owner: the
    exchange must not let it withdraw or change security settings either, with no end."""
    _row, token = exchange_token
    customer = UserFactory(is_active=False)
    assert call_api(customer.pk, token).json() == {
        "account_id": customer.pk,
        "withdrawals_allowed": False,
        "security_changes_allowed": False,
        "until": None,
        "reasons": ["account_inactive"],
    }


# --- Rate limits ------------------------------------------------------------------------------


def test_calls_are_limited_per_token(call_api, exchange_token, settings):
    """Over DJANGO_RATE_LIMIT_API a token gets a JSON 429; another token is not affected."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "api_restrictions": "3/m/key"}
    _row, token = exchange_token
    _other_row, other = service_token_create(name="exchange-backup")
    customer = UserFactory()
    assert [call_api(customer.pk, token).status_code for _ in range(3)] == [200, 200, 200]
    limited = call_api(customer.pk, token)
    assert limited.status_code == 429
    assert limited.json() == {"error": "rate_limited"}
    assert limited["Retry-After"] == "60"
    assert limited["Cache-Control"] == "no-store"
    assert call_api(customer.pk, other).status_code == 200
    assert ServiceCall.objects.filter(status_code=429).count() == 1


def test_refused_tokens_are_limited_per_ip_address(client, exchange_token, settings):
    """Over the failed-authentication limit an IP address gets 429 for every token, others not."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "api_auth_failed": "3/m/ip"}
    _row, token = exchange_token
    customer = UserFactory()
    path = restrictions_path(customer.pk)
    guess = "Bearer rdsk_" + "C" * 43
    statuses = [client.get(path, HTTP_AUTHORIZATION=guess).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 429
    elsewhere = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="10.0.0.7")
    assert elsewhere.status_code == 200


def test_with_redis_unreachable_the_api_refuses_with_503_and_records_it(
    call_api, exchange_token, settings
):
    """No shared counters, no answer: a JSON 503, and the call is still recorded."""
    _row, token = exchange_token
    customer = UserFactory()
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}
    }
    assert "redis" in type(caches["default"]).__module__
    response = call_api(customer.pk, token)
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable"}
    assert ServiceCall.objects.get().status_code == 503


# --- Audit ------------------------------------------------------------------------------------


def test_every_call_leaves_one_record_refusals_included(
    call_api, exchange_token, scopeless_token, settings
):
    """One row per call with token, account asked, status and IP; refusals are not rolled back."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "api_restrictions": "3/m/key"}
    row, token = exchange_token
    scopeless_row, scopeless = scopeless_token
    customer = UserFactory()
    revoked_row, revoked = service_token_create(name="old-exchange")
    service_token_revoke(name="old-exchange")

    call_api(customer.pk, None)
    call_api(customer.pk, "rdsk_" + "D" * 43)
    call_api(customer.pk, revoked)
    call_api(customer.pk, scopeless)
    call_api("nope", token)
    call_api(customer.pk + 1000, token)
    call_api(customer.pk, token, REMOTE_ADDR="2001:db8::1")
    call_api(customer.pk, token)

    calls = list(
        ServiceCall.objects.order_by("id").values_list(
            "token_id", "account_id", "status_code", "ip_address"
        )
    )
    assert calls == [
        (None, customer.pk, 401, "127.0.0.1"),
        (None, customer.pk, 401, "127.0.0.1"),
        (revoked_row.pk, customer.pk, 401, "127.0.0.1"),
        (scopeless_row.pk, customer.pk, 403, "127.0.0.1"),
        (row.pk, None, 404, "127.0.0.1"),
        (row.pk, customer.pk + 1000, 404, "127.0.0.1"),
        (row.pk, customer.pk, 200, "2001:db8::1"),
        (row.pk, customer.pk, 429, "127.0.0.1"),
    ]
    row.refresh_from_db()
    revoked_row.refresh_from_db()
    assert row.last_used_at is not None
    assert revoked_row.last_used_at is None


def test_call_records_are_append_only(call_api, exchange_token):
    """PostgreSQL refuses to change or delete a call record, whoever asks."""
    _row, token = exchange_token
    call_api(UserFactory().pk, token)
    for change in (
        lambda: ServiceCall.objects.update(status_code=200),
        lambda: ServiceCall.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert ServiceCall.objects.count() == 1


def test_the_database_never_holds_a_raw_token(call_api, exchange_token, scopeless_token):
    """After tokens are issued, used, refused and revoked, no row of any table contains one."""
    _row, token = exchange_token
    _scopeless_row, scopeless = scopeless_token
    customer = UserFactory()
    call_api(customer.pk, token)
    call_api(customer.pk, scopeless)
    service_token_revoke(name="exchange")
    call_api(customer.pk, token)
    raw_tokens = [token, scopeless, token.removeprefix("rdsk_"), scopeless.removeprefix("rdsk_")]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            for raw in raw_tokens:
                cursor.execute(
                    f"SELECT count(*) FROM {quoted} AS t WHERE t::text LIKE %s",  # noqa: S608
                    ["%" + raw + "%"],
                )
                assert cursor.fetchone()[0] == 0, table
    assert ServiceCall.objects.count() == 3
