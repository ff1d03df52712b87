"""allauth's less-used pages in our design and words: sentence case, our card, both languages,
and no allauth wording left (their Title Case headings and buttons).

Every page allauth's URL configuration serves with our settings is listed here or in the
browser walk (tests/test_customer_pages_browser.py); sign-in by code, phone verification and
the code-based password reset are switched off, so their pages are not served.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.adapter import AccountAdapter
from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import PASSWORD, UserFactory, customer_sign_in

pytestmark = pytest.mark.django_db

ALLAUTH_WORDING = (
    "Confirm Access",
    "Please reauthenticate",
    "Request Code",
    "Enter Sign-In Code",
    "Sign Up Closed",
    "Sign Out Other Sessions",
    "Started At",
    "Alternative options",
    "Zugriff bestätigen",
    "Anmeldungen geschlossen",
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
EMAIL_SUBJECTS = {
    "en": "Your code to confirm it's you",
    "de": "Ihr Code zur Bestätigung, dass Sie es sind",
}
HEADINGS = {
    "en": {
        "reauthenticate": "Confirm it's you",
        "code": "Enter the code",
        "sessions": "Where you are signed in",
        "closed": "Sign-up is closed",
    },
    "de": {
        "reauthenticate": "Bestätigen Sie, dass Sie es sind",
        "code": "Code eingeben",
        "sessions": "Wo Sie angemeldet sind",
        "closed": "Die Registrierung ist geschlossen",
    },
}


def signed_in(language: str) -> tuple[Client, User]:
    user = UserFactory.create()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return customer_sign_in(Client(HTTP_ACCEPT_LANGUAGE=language), user, device), user


def heading(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, html
    return match.group(1).strip()


def assert_ours(html: str, language: str) -> None:
    assert f'<html lang="{language}">' in html
    assert 'class="card' in html
    for words in ALLAUTH_WORDING:
        assert words not in html


@pytest.mark.parametrize("language", ["en", "de"])
def test_confirming_it_is_you_by_password_and_by_code(
    language, mailoutbox, django_capture_on_commit_callbacks
):
    """The password page offers the code instead; asking for the code emails it and leads to
    a page that names the address and takes the code."""
    client, user = signed_in(language)
    html = client.get(reverse("account_reauthenticate")).content.decode()
    assert heading(html) == HEADINGS[language]["reauthenticate"]
    assert reverse("account_request_reauthentication_code") in html
    assert_ours(html, language)

    html = client.get(reverse("account_request_reauthentication_code")).content.decode()
    assert heading(html) == HEADINGS[language]["reauthenticate"]
    assert f'<option value="{user.email}">' in html
    assert_ours(html, language)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_request_reauthentication_code"), {"recipient": user.email}
        )
    assert response["Location"].startswith(reverse("account_confirm_reauthentication_code"))
    assert [message.to for message in mailoutbox] == [[user.email]]
    assert mailoutbox[0].subject == "[Recovery Desk] " + EMAIL_SUBJECTS[language]
    assert "Sign-In Code" not in mailoutbox[0].body
    html = client.get(response["Location"]).content.decode()
    assert heading(html) == HEADINGS[language]["code"]
    assert user.email in html and 'name="code"' in html
    assert_ours(html, language)


def test_a_right_password_passes_and_a_wrong_one_says_so():
    client, _user = signed_in("en")
    wrong = client.post(reverse("account_reauthenticate"), {"password": "not-it"})
    assert wrong.status_code == 200
    assert 'class="error"' in wrong.content.decode()
    right = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert right.status_code == 302


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_sessions_page_names_devices_and_ends_others_through_our_service(language):
    """allauth's session list shows readable devices; ending the others goes through our
    service, so it is recorded as a security event like the security page's button."""
    client, user = signed_in(language)
    other_client = Client(HTTP_USER_AGENT=IPHONE)
    other_client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    html = client.get(reverse("usersessions_list")).content.decode()
    assert heading(html) == HEADINGS[language]["sessions"]
    assert "iOS" in html
    assert f'action="{reverse("sessions_end_others")}"' in html
    assert_ours(html, language)
    client.post(reverse("sessions_end_others"))
    assert SecurityEvent.objects.filter(
        account_id=user.pk, type=SecurityEvent.Type.SESSIONS_ENDED
    ).exists()


@pytest.mark.parametrize("language", ["en", "de"])
def test_sign_up_closed_is_ours(language, monkeypatch):
    """If sign-up is ever closed, the page says so in our words and points to sign-in."""
    monkeypatch.setattr(AccountAdapter, "is_open_for_signup", lambda self, request: False)
    html = Client(HTTP_ACCEPT_LANGUAGE=language).get(reverse("account_signup")).content.decode()
    assert heading(html) == HEADINGS[language]["closed"]
    assert reverse("account_login") in html
    assert_ours(html, language)


ALLAUTH_EMAILS = {
    "en": {
        "signup": ("Confirm your email address", "confirm the address with this link"),
        "taken": ("You already have an account", "you already have an account with it"),
        "reset": ("Reset your password", "choose a new password with this link"),
        "unknown": ("No account uses this email address", "no Recovery Desk account uses it"),
    },
    "de": {
        "signup": ("Bestätigen Sie Ihre E-Mail-Adresse", "bestätigen Sie die Adresse"),
        "taken": ("Sie haben bereits ein Konto", "damit bereits ein Konto"),
        "reset": ("Passwort zurücksetzen", "wählen Sie mit diesem Link ein neues Passwort"),
        "unknown": ("Kein Konto verwendet diese E-Mail-Adresse", "kein Recovery-Desk-Konto"),
    },
}
ALLAUTH_EMAIL_WORDING = (
    "Please Confirm",
    "Password Reset E-mail",
    "Account Already Exists",
    "Unknown Account",
    "You're receiving this",
    "Bitte bestätigen",
)


@pytest.mark.parametrize("language", ["en", "de"])
def test_allauth_emails_read_in_our_words(language, mailoutbox, django_capture_on_commit_callbacks):
    """Sign-up, sign-up with a taken email, and a password reset for a known and an unknown
    address each send one email, in sentence case and the customer's language."""
    UserFactory.create(email="taken@example.com")
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    signup = {"password1": "a-long-passphrase-2", "password2": "a-long-passphrase-2"}
    sent = {
        "signup": lambda: client.post(
            reverse("account_signup"),
            {**signup, "email": "new@example.com", "phone": "+4915123456701"},
        ),
        "taken": lambda: client.post(
            reverse("account_signup"),
            {**signup, "email": "taken@example.com", "phone": "+4915123456702"},
        ),
        "reset": lambda: client.post(
            reverse("account_reset_password"), {"email": "taken@example.com"}
        ),
        "unknown": lambda: client.post(
            reverse("account_reset_password"), {"email": "nobody@example.com"}
        ),
    }
    for kind, send in sent.items():
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            send()
        subject, phrase = ALLAUTH_EMAILS[language][kind]
        assert [m.subject for m in mailoutbox] == ["[Recovery Desk] " + subject], kind
        body = mailoutbox[0].body
        assert phrase in " ".join(body.split()), kind
        assert not [w for w in ALLAUTH_EMAIL_WORDING if w in body], kind
        client.logout()
