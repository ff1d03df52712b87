"""PostgreSQL or Redis down: /healthz says so in JSON, pages say "try again" in the
customer's language, and no form that would send a message writes anything.

The app is pointed at a closed port for the part that is down; the other stays real.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import Notification
from support.models import RecoveryCase
from tests.conftest import free_port
from tests.factories import PASSWORD, UserFactory, customer_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_unreachable():
    """This process's database connection points at a port where nothing listens."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@contextlib.contextmanager
def redis_unreachable():
    """The cache (rate limits) points at a port where nothing listens."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}
    with override_settings(REDIS_URL=closed, CACHES={"default": cache}):
        assert isinstance(caches["default"], RedisCache)
        yield


def signed_in(user, device, at: float) -> Client:
    client = Client(HTTP_USER_AGENT=f"Browser {at}", raise_request_exception=False)
    return customer_sign_in(client, user, device, at=at)


def test_healthz_answers_503_json_while_postgresql_is_down_and_200_once_it_is_back():
    """ATOMIC_REQUESTS does not stand between /healthz and its answer."""
    client = Client(raise_request_exception=False)
    with database_unreachable():
        down = client.get("/healthz")
    assert down.status_code == 503
    assert down["Content-Type"] == "application/json"
    assert down.json()["status"] == "unavailable"
    assert down.json()["checks"]["database"] == "down"
    assert client.get("/healthz").status_code == 200


def test_pages_answer_a_localized_503_while_postgresql_is_down():
    """Anonymous and signed-in visitors get the "try again" page in their language, not a
    500; the page itself needs no database."""
    user = UserFactory()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    customer = signed_in(user, device, time.time())
    visitor = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="de")
    with database_unreachable():
        answers = {
            (method, path): getattr(client, method)(path)
            for client, method, path in (
                (visitor, "get", "/recover/"),
                (visitor, "post", "/recover/email/"),
                (customer, "get", reverse("account_security")),
                (customer, "post", reverse("sessions_end_others")),
            )
        }
    for (method, path), response in answers.items():
        assert response.status_code == 503, (method, path)
        assert "text/html" in response["Content-Type"]
    assert "Das ist gerade leider nicht möglich" in answers["get", "/recover/"].content.decode()
    signed_in_page = answers["get", reverse("account_security")].content.decode()
    assert "We can't do this right now" in signed_in_page
    assert customer.get(reverse("account_security")).status_code == 200


def test_sign_out_other_sessions_fails_closed_while_redis_is_down():
    """The session-ending form answers 503 like every other sending form: no session ends,
    no event, no notice."""
    user = UserFactory()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    first = signed_in(user, device, time.time())
    second = signed_in(user, device, time.time() + 30)
    events, notices = SecurityEvent.objects.count(), Notification.objects.count()

    with redis_unreachable():
        response = first.post(reverse("sessions_end_others"))

    assert response.status_code == 503
    assert "nothing was changed" in response.content.decode()
    assert (SecurityEvent.objects.count(), Notification.objects.count()) == (events, notices)
    assert second.get(reverse("account_security")).status_code == 200


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("account_login", {"login": "someone@example.com", "password": PASSWORD}),
        ("account_signup", {"email": "new@example.com", "password1": "A-long-pass-phrase-42"}),
    ],
)
def test_sign_in_and_sign_up_fail_closed_with_a_clear_page_while_redis_is_down(path, data):
    """Their attempt limits live in Redis: without them the forms refuse, and say why."""
    client = Client(raise_request_exception=False)
    users = User.objects.count()
    with redis_unreachable():
        assert client.get(reverse(path)).status_code == 200
        response = client.post(reverse(path), data)
    assert response.status_code == 503
    assert "We can't do this right now" in response.content.decode()
    assert User.objects.count() == users


def test_the_help_form_fails_closed_while_redis_is_down():
    """Its view asks Redis first thing (the rate limits): no request is opened, nothing is
    sent, and the page says nothing was changed."""
    client = Client(raise_request_exception=False)
    with redis_unreachable():
        response = client.post(
            reverse("recover_help"),
            {
                "contact_email": "someone@example.net",
                "contact_phone": "+4915112000001",
                "emails_tried": "",
                "description": "I cannot sign in any more.",
            },
        )
    assert response.status_code == 503
    assert "nothing was changed" in response.content.decode()
    assert not RecoveryCase.objects.exists()
    assert not Notification.objects.exists()


def test_signing_out_still_works_while_redis_is_down():
    """Leaving needs no limit: the customer on a shared computer can still sign out."""
    user = UserFactory()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    client = signed_in(user, device, time.time())
    with redis_unreachable():
        response = client.post(reverse("account_logout"))
        assert response.status_code == 302
    assert client.get(reverse("account_security")).status_code == 302
