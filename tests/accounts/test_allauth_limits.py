"""allauth's own limits (sign-in, sign-up, password reset) answer with our 429: a
`Retry-After` of the refusing limit's real remaining window, in the page's language, with
what was typed still in the form and never the password."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db

WORDS = {"en": "Please try again in", "de": "Bitte versuchen Sie es in"}
TYPED_PASSWORD = "typed-secret-Passw0rd-41"


@pytest.fixture
def limits(settings):
    """Set some of allauth's limits low; the dict is replaced, so the test's end restores it."""

    def set_limits(**rates: str) -> None:
        settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, **rates}

    return set_limits


def assert_refused(response, *, retry_after: int, language: str, kept: dict[str, str]) -> str:
    assert response.status_code == 429, response.content[:300]
    assert int(response["Retry-After"]) == retry_after
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert WORDS[language] in html
    for value in kept.values():
        assert f'value="{value}"' in html
    assert TYPED_PASSWORD not in html
    return html


@pytest.mark.parametrize("language", ["en", "de"])
def test_sign_in_over_the_failed_attempts_limit(limits, language):
    """Five wrong passwords for one email in five minutes: the sixth try is a 429 that waits
    until the first of them leaves the window, with the email still typed."""
    limits(login_failed="10/m/ip,5/5m/key")
    user = UserFactory.create()
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        for _ in range(5):
            wrong = client.post(
                reverse("account_login"), {"login": user.email, "password": TYPED_PASSWORD}
            )
            assert wrong.status_code == 200
            clock.shift(10)
        refused = client.post(
            reverse("account_login"), {"login": user.email, "password": TYPED_PASSWORD}
        )
        # The first failure was 50 s ago: 250 s are left of its five minutes.
        assert_refused(refused, retry_after=250, language=language, kept={"login": user.email})

        # Even the right password waits: the limit counts the email, not the outcome.
        right = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        assert right.status_code == 429

        clock.shift(251)
        allowed = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert allowed.status_code == 302


def test_failed_attempts_limit_answers_an_unknown_email_alike(limits):
    """The limit is counted for any typed email: an unknown one is refused the same way."""
    limits(login_failed="10/m/ip,2/5m/key")
    known = UserFactory.create()
    answers = {}
    for email in (known.email, "nobody@example.com"):
        client = Client(REMOTE_ADDR="192.0.2.1" if email == known.email else "192.0.2.2")
        with time_machine.travel("2026-11-20 10:00:00", tick=False):
            for _ in range(2):
                client.post(reverse("account_login"), {"login": email, "password": TYPED_PASSWORD})
            refused = client.post(
                reverse("account_login"), {"login": email, "password": TYPED_PASSWORD}
            )
        answers[email] = (refused.status_code, refused["Retry-After"])
        assert_refused(refused, retry_after=300, language="en", kept={"login": email})
    assert answers[known.email] == answers["nobody@example.com"]


@pytest.mark.parametrize("language", ["en", "de"])
def test_sign_in_over_the_per_address_limit(limits, language):
    """allauth's `login` limit (posts per IP, whatever the outcome) goes through handler429."""
    limits(login="2/m/ip", login_failed="100/m/ip,100/5m/key")
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        for _ in range(2):
            client.post(
                reverse("account_login"), {"login": "me@example.org", "password": TYPED_PASSWORD}
            )
            clock.shift(15)
        refused = client.post(
            reverse("account_login"),
            {"login": "me@example.org", "password": TYPED_PASSWORD, "remember": "on"},
        )
    html = assert_refused(
        refused, retry_after=30, language=language, kept={"login": "me@example.org"}
    )
    assert 'id="id_remember" checked' in html


@pytest.mark.parametrize("language", ["en", "de"])
def test_sign_up_over_its_limit_keeps_email_and_phone(limits, language):
    limits(signup="1/m/ip")
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        first = client.post(
            reverse("account_signup"),
            {
                "email": "first@example.org",
                "phone": "+4915123450001",
                "password1": TYPED_PASSWORD,
                "password2": TYPED_PASSWORD,
            },
        )
        assert first.status_code == 302
        clock.shift(12)
        refused = Client(HTTP_ACCEPT_LANGUAGE=language).post(
            reverse("account_signup"),
            {
                "email": "second@example.org",
                "phone": "+49 151 23450002",
                "password1": TYPED_PASSWORD,
                "password2": TYPED_PASSWORD,
            },
        )
    assert_refused(
        refused,
        retry_after=48,
        language=language,
        kept={"email": "second@example.org", "phone": "+49 151 23450002"},
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_password_reset_over_the_per_email_limit(limits, language, mailoutbox):
    """Five resets per email and minute; the sixth, from another address, still waits."""
    limits(reset_password="20/m/ip,5/m/key")
    user = UserFactory.create()
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        for n in range(5):
            sent = Client(REMOTE_ADDR=f"192.0.2.{n + 1}").post(
                reverse("account_reset_password"), {"email": user.email}
            )
            assert sent.status_code == 302
            clock.shift(5)
        refused = Client(HTTP_ACCEPT_LANGUAGE=language, REMOTE_ADDR="198.51.100.9").post(
            reverse("account_reset_password"), {"email": user.email.upper()}
        )
    assert_refused(refused, retry_after=35, language=language, kept={"email": user.email.upper()})


@pytest.mark.parametrize("language", ["en", "de"])
def test_reset_link_page_over_its_limit_says_when(limits, language):
    """The page a reset link opens keeps nothing (it asks only for a new password) but says
    how long to wait."""
    limits(reset_password_from_key="1/m/ip")
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    path = reverse("account_reset_password_from_key", kwargs={"uidb36": "x", "key": "y-z"})
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        client.post(path, {"password1": TYPED_PASSWORD, "password2": TYPED_PASSWORD})
        clock.shift(1)
        refused = client.post(path, {"password1": TYPED_PASSWORD, "password2": TYPED_PASSWORD})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 59
    assert WORDS[language] in refused.content.decode()


@pytest.mark.parametrize("language", ["en", "de"])
def test_password_change_over_its_per_account_limit_says_when(limits, language):
    """A signed-in page of allauth limited per account: nothing to keep (only passwords),
    the wait of that account's limit."""
    limits(change_password="1/m/user")
    user = UserFactory.create()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    with time_machine.travel("2026-11-20 10:00:00", tick=False) as clock:
        client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        assert (
            client.post(reverse("two_factor_verify"), {"code": totp_code(device)}).status_code
            == 302
        )
        typed = {"oldpassword": TYPED_PASSWORD, "password1": "x", "password2": "x"}
        assert client.post(reverse("account_change_password"), typed).status_code == 200
        clock.shift(20)
        refused = client.post(reverse("account_change_password"), typed)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 40
    html = refused.content.decode()
    assert WORDS[language] in html
    assert TYPED_PASSWORD not in html
