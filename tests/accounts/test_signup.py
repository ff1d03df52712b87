"""Signup through allauth: phone numbers, email verification, enumeration safety."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import SecurityEvent, User
from notifications.models import CONTEXT_REMOVED, Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def signup(client, **overrides):
    data = {
        "email": "new.customer@example.com",
        "phone": "0151 23456789",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
        **overrides,
    }
    return client.post(reverse("account_signup"), data)


def test_signup_stores_e164_phone_and_sends_verification(
    client, django_capture_on_commit_callbacks
):
    """A new customer is created with the phone in E.164 and must verify the email first."""
    with django_capture_on_commit_callbacks(execute=True):
        response = signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="new.customer@example.com")
    assert user.phone == "+4915123456789"
    assert SecurityEvent.objects.filter(account_id=user.pk, type="signed_up").count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.customer@example.com"]
    assert "confirm" in mail.outbox[0].body.lower()
    notification = Notification.objects.get(account_id=user.pk)
    assert notification.status == Notification.Status.SENT
    assert notification.reference in mail.outbox[0].body
    assert set(notification.context.values()) == {CONTEXT_REMOVED}, "no link stays once sent"


def test_signup_email_is_case_insensitive(client):
    UserFactory.create(email="taken@example.com")
    signup(client, email="TAKEN@Example.com", phone="+4915199999999")
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_email_verification_link_signs_in_and_asks_for_2fa_setup(
    client, django_capture_on_commit_callbacks
):
    """Following the emailed link verifies the address and leads to the 2FA setup."""
    with django_capture_on_commit_callbacks(execute=True):
        signup(client)
    link = re.search(r"https?://[^\s]+/confirm-email/[^\s]+", str(mail.outbox[0].body))
    assert link, mail.outbox[0].body
    path = link.group(0).split("testserver", 1)[1]
    response = client.post(path)
    assert response.status_code == 302
    user = User.objects.get(email="new.customer@example.com")
    assert EmailAddress.objects.get(user=user).verified
    response = client.get(reverse("account_security"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("two_factor_setup")


def _final_page(client, response):
    assert response.status_code == 302
    page = client.get(response["Location"])
    return response, page


def test_taken_phone_answers_like_any_signup_and_texts_the_holder(
    client, sms_outbox, django_capture_on_commit_callbacks
):
    """Same status, redirect and page for a new and a taken number; only the holder learns."""
    holder = UserFactory.create(email="john@gmail.com", phone="+4915123456789")
    with django_capture_on_commit_callbacks(execute=True):
        fresh, fresh_page = _final_page(client, signup(client, phone="+4915111111111"))
    client.cookies.clear()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        taken, taken_page = _final_page(
            client, signup(client, email="other.person@example.com", phone="+49 151 23456789")
        )
    assert fresh["Location"] == taken["Location"]
    assert sorted(fresh.cookies) == sorted(taken.cookies)
    fresh_body = CSRF.sub(b"", fresh_page.content).replace(b"new.customer@example.com", b"E")
    taken_body = CSRF.sub(b"", taken_page.content).replace(b"other.person@example.com", b"E")
    assert fresh_page.status_code == taken_page.status_code == 200
    assert fresh_body == taken_body
    assert not User.objects.filter(email="other.person@example.com").exists()
    assert mail.outbox == []
    assert len(sms_outbox) == 1
    assert sms_outbox[0].to == holder.phone
    assert "j***n@g***.com" in sms_outbox[0].body


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"phone": "12"}, "phone", "valid phone number"),
        ({"phone": "not a phone"}, "phone", "valid phone number"),
        ({"password1": "password", "password2": "password"}, "password1", "too common"),
        ({"email": "not-an-email"}, "email", "valid email"),
    ],
)
def test_bad_input_gives_a_form_error_not_a_500(client, overrides, field, message):
    response = signup(client, **overrides)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message in errors
    assert not User.objects.exists()


def test_bad_phone_error_is_localized(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "a@example.com", "phone": "12", "password1": "x", "password2": "x"},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert "gültige Telefonnummer" in response.content.decode()


@pytest.mark.parametrize("taken", ["none", "email", "phone"])
def test_the_signup_answer_is_true_whatever_was_taken(
    client, taken, django_capture_on_commit_callbacks
):
    """A fresh sign-up, a taken email and a taken phone get one page, and every sentence
    on it is true for each: no "confirmation email sent to …" when none was sent."""
    UserFactory.create(email="holder@example.com", phone="+4915100000001")
    overrides = {
        "none": {},
        "email": {"email": "holder@example.com"},
        "phone": {"phone": "+4915100000001"},
    }[taken]
    with django_capture_on_commit_callbacks(execute=True):
        response = signup(client, **overrides)
    page = client.get(response["Location"]).content.decode()
    assert "Confirmation email sent" not in page
    assert "Check your inbox at" in page and "and your phone" in page
    assert "If the email address or the phone number already belongs to an account" in page
