"""Sign-ins in the customer's history: completed ones with a code or a passkey; refused
ones, a wrong password for a known account and a wrong second factor after the right
password, with the device and the time; a wrong password on "confirm it's you" as its own
kind; nothing for an email with no account, and the same work either way; never what was
typed."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import SecurityEvent, SignIn
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import SIGN_IN_HISTORY_KEPT
from notifications.models import Notification
from tests.conftest import database_state
from tests.factories import PASSWORD, UserFactory, customer_sign_in, totp_code
from tests.passkey_authenticator import SoftwarePasskey

if TYPE_CHECKING:
    from tests.factories import ClientResponse

pytestmark = pytest.mark.django_db

TYPED_PASSWORD = "guessed-Passw0rd-typed-77"
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0"
PASSKEY_STEP = "/accounts/2fa/passkey/authentication/"


@pytest.fixture
def enrolled():
    user = UserFactory.create()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device


@pytest.fixture
def limits_lifted(settings):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login": False,
        "login_failed": False,
        "two_factor_verify": False,
    }


def sign_in_history(client: Client, language: str = "en") -> str:
    html = client.get(reverse("account_security"), HTTP_ACCEPT_LANGUAGE=language)
    match = re.search(r'id="sign-ins">(.*?)</section>', html.content.decode(), re.S)
    assert match, html.content
    return match.group(1)


def no_trace_of(typed: str) -> None:
    """What was typed is in no row of the product's tables."""
    assert typed not in repr(database_state())


@pytest.mark.parametrize(
    ("language", "failed", "device_name"),
    [
        ("en", "Failed: wrong password", "Firefox Mobile on Android"),
        ("de", "Fehlgeschlagen: falsches Passwort", "Firefox Mobile auf Android"),
    ],
)
def test_wrong_password_shows_as_failed_with_device_and_time(
    enrolled, language, failed, device_name
):
    user, device = enrolled
    with time_machine.travel("2026-11-20 09:15:00", tick=False):
        stranger = Client(HTTP_USER_AGENT=ANDROID_FIREFOX, REMOTE_ADDR="203.0.113.50")
        refused = stranger.post(
            reverse("account_login"), {"login": user.email, "password": TYPED_PASSWORD}
        )
    assert refused.status_code == 200
    with time_machine.travel("2026-11-20 10:00:00", tick=True):
        owner = Client(HTTP_USER_AGENT=WINDOWS_CHROME)
        customer_sign_in(owner, user, device)

    history = sign_in_history(owner, language)
    entries = re.findall(r"<li>(.*?)</li>", history, re.S)
    assert len(entries) == 2
    newest, oldest = entries
    assert failed not in newest
    assert failed in oldest and device_name in oldest and "203.0.113.50" in oldest
    assert 'datetime="2026-11-20T09:15:00+00:00"' in oldest
    assert SignIn.objects.get(outcome=SignIn.Outcome.WRONG_PASSWORD).user == user
    no_trace_of(TYPED_PASSWORD)


def test_sign_in_with_another_case_of_the_email_is_recorded(enrolled):
    """allauth finds the account whatever the case of the email typed; so does the history."""
    user, _device = enrolled
    Client().post(
        reverse("account_login"), {"login": user.email.upper(), "password": TYPED_PASSWORD}
    )
    assert SignIn.objects.filter(user=user, outcome=SignIn.Outcome.WRONG_PASSWORD).count() == 1


def test_wrong_second_factor_after_the_right_password(enrolled):
    """The right password then a wrong code is its own kind: the password is known to someone."""
    user, device = enrolled
    with time_machine.travel("2026-11-20 09:00:00", tick=True):
        stranger = Client(HTTP_USER_AGENT=ANDROID_FIREFOX)
        stranger.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        wrong_code = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
        refused = stranger.post(reverse("two_factor_verify"), {"code": wrong_code})
    assert refused.status_code == 400

    assert list(SignIn.objects.values_list("user", "outcome")) == [
        (user.pk, SignIn.Outcome.WRONG_SECOND_FACTOR)
    ]
    with time_machine.travel("2026-11-20 10:00:00", tick=True):
        owner = Client(HTTP_USER_AGENT=WINDOWS_CHROME)
        customer_sign_in(owner, user, device)
    history = sign_in_history(owner)
    assert "Failed: right password, wrong two-factor code" in history
    assert "Firefox Mobile on Android" in history
    assert "Failed: wrong password" not in history
    assert f'"{wrong_code}"' not in repr(database_state()).replace(f"'{wrong_code}'", "")


def test_unknown_email_records_nothing_by_the_same_statements(enrolled):
    """An email without an account writes nothing, answers as a known one, and runs the
    same statements on the sign-in history (only the typed email differs)."""
    user, _device = enrolled
    history_statements = {}
    answers = {}
    for who, email in (("known", user.email), ("unknown", "nobody@example.com")):
        client = Client(REMOTE_ADDR="192.0.2.7")
        with (
            time_machine.travel("2026-11-20 09:00:00", tick=False),
            CaptureQueriesContext(connection) as queries,
        ):
            response = client.post(
                reverse("account_login"), {"login": email, "password": TYPED_PASSWORD}
            )
        html = response.content.decode()
        answers[who] = (
            response.status_code,
            re.sub(r'value="[^"]*"', "", html.replace(email, "EMAIL")),
        )
        history_statements[who] = [
            q["sql"].replace(email, "EMAIL") for q in queries if "accounts_signin" in q["sql"]
        ]
    assert answers["known"] == answers["unknown"]
    assert history_statements["known"] == history_statements["unknown"]
    assert len(history_statements["known"]) == 2  # the INSERT … SELECT and the prune
    assert list(SignIn.objects.values_list("user", flat=True)) == [user.pk]


def test_history_keeps_the_newest_failures_apart_from_the_sign_ins(enrolled, limits_lifted):
    """A stranger's many failures are bounded and never push out the owner's sign-ins."""
    user, device = enrolled
    owner = Client(HTTP_USER_AGENT=WINDOWS_CHROME)
    with time_machine.travel("2026-11-20 08:00:00", tick=True):
        customer_sign_in(owner, user, device)
    stranger = Client(HTTP_USER_AGENT=ANDROID_FIREFOX)
    with time_machine.travel("2026-11-20 09:00:00", tick=True) as clock:
        for _ in range(SIGN_IN_HISTORY_KEPT + 5):
            stranger.post(
                reverse("account_login"), {"login": user.email, "password": TYPED_PASSWORD}
            )
            clock.shift(1)
    failed = SignIn.objects.filter(user=user, outcome=SignIn.Outcome.WRONG_PASSWORD)
    assert failed.count() == SIGN_IN_HISTORY_KEPT
    # The oldest five went; the newest stayed.
    oldest = failed.order_by("created_at").first()
    assert oldest is not None
    assert oldest.created_at.second >= 5
    assert SignIn.objects.filter(user=user, outcome=SignIn.Outcome.SIGNED_IN).count() == 1


def test_refused_sign_ins_are_no_security_event_and_send_nothing(
    enrolled, django_capture_on_commit_callbacks, mailoutbox, sms_outbox
):
    """SPEC §7 and §5: security events record changes and only they notify; a refused
    sign-in changes nothing, so it is in the sign-in history only."""
    user, _device = enrolled
    events = SecurityEvent.objects.count()
    notices = Notification.objects.count()
    stranger = Client()
    with django_capture_on_commit_callbacks(execute=True):
        stranger.post(reverse("account_login"), {"login": user.email, "password": TYPED_PASSWORD})
        stranger.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        stranger.post(reverse("two_factor_verify"), {"code": "000000"})
    assert SignIn.objects.filter(user=user).count() == 2
    assert SecurityEvent.objects.count() == events
    assert Notification.objects.count() == notices
    assert mailoutbox == [] and sms_outbox == []


def passkey_second_step(client: Client, passkey: SoftwarePasskey, **forge) -> ClientResponse:
    """The 2FA step with a passkey: the ceremony's options, then the signed assertion."""
    options = client.post(f"{PASSKEY_STEP}begin/", content_type="application/json")
    assert options.status_code == 200, options.content
    return client.post(
        f"{PASSKEY_STEP}complete/",
        passkey.assertion(options.json(), **forge),
        content_type="application/json",
    )


def test_a_passkey_second_step_is_in_the_history_like_a_code(enrolled):
    """A sign-in completed with a passkey shows with its device, as one with a code does;
    an assertion that fails its checks after the right password is a wrong second factor."""
    user, _device = enrolled
    passkey = SoftwarePasskey(user)
    with time_machine.travel("2026-11-20 09:00:00", tick=True):
        stranger = Client(HTTP_USER_AGENT=ANDROID_FIREFOX, REMOTE_ADDR="203.0.113.50")
        stranger.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        forged = passkey_second_step(
            stranger, passkey, signing_key=ec.generate_private_key(ec.SECP256R1())
        )
        assert forged.status_code == 422, forged.content
    with time_machine.travel("2026-11-20 10:00:00", tick=True):
        owner = Client(HTTP_USER_AGENT=WINDOWS_CHROME, REMOTE_ADDR="198.51.100.8")
        owner.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
        assert passkey_second_step(owner, passkey).status_code == 200

    assert list(
        SignIn.objects.order_by("created_at").values_list("outcome", "ip_address", "user_agent")
    ) == [
        (SignIn.Outcome.WRONG_SECOND_FACTOR, "203.0.113.50", ANDROID_FIREFOX),
        (SignIn.Outcome.SIGNED_IN, "198.51.100.8", WINDOWS_CHROME),
    ]
    history = sign_in_history(owner)
    assert "Failed: right password, wrong two-factor code" in history
    assert "Chrome on Windows" in history


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("en", "Failed: wrong password when confirming it's you"),
        ("de", "Fehlgeschlagen: falsches Passwort bei der Bestätigung, dass Sie es sind"),
    ],
)
def test_wrong_password_when_confirming_it_is_you_is_no_failed_sign_in(
    enrolled, django_capture_on_commit_callbacks, mailoutbox, language, shown
):
    """A signed-in session that types a wrong password on "confirm it's you" tried no
    sign-in: the history names it for what it is (a session on the account that does not
    know the password), with its device, kept with the refused ones; no event, no notice."""
    user, device = enrolled
    session = Client(HTTP_USER_AGENT=ANDROID_FIREFOX, REMOTE_ADDR="203.0.113.50")
    with time_machine.travel("2026-11-20 09:00:00", tick=True):
        customer_sign_in(session, user, device)
        events = SecurityEvent.objects.count()
        with django_capture_on_commit_callbacks(execute=True):
            refused = session.post(reverse("account_reauthenticate"), {"password": TYPED_PASSWORD})
    assert refused.status_code == 200
    assert 'class="error"' in refused.content.decode()

    assert list(SignIn.objects.order_by("created_at").values_list("outcome", flat=True)) == [
        SignIn.Outcome.SIGNED_IN,
        SignIn.Outcome.WRONG_PASSWORD_REAUTHENTICATION,
    ]
    entries = re.findall(r"<li>(.*?)</li>", html.unescape(sign_in_history(session, language)), re.S)
    assert len(entries) == 2
    assert shown in entries[0] and "Firefox" in entries[0] and "203.0.113.50" in entries[0]
    assert "<strong" not in entries[1]
    assert SecurityEvent.objects.count() == events and mailoutbox == []
    no_trace_of(TYPED_PASSWORD)
