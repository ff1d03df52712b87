"""The customer's case status page and the re-enrolment code page validate their input.

A bad value answers 400 with the page and a message in the customer's language, and
writes nothing: no timeline entry, no code, no proof, no message to anybody.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from recovery.views import STATUS_ACTIONS
from support.models import CaseStatus, RecoveryCase
from support.services.cases import case_open
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ACCOUNT_PHONE = "+4915123456789"


@pytest.fixture
def status_page(db) -> tuple[Client, RecoveryCase]:
    """A customer on the status page of a waiting case that matched their account."""
    john = UserFactory.create(email="john@gmail.com", phone=ACCOUNT_PHONE)
    opened = case_open(
        contact_email="reach.me@example.org",
        emails_tried=[john.email],
        description="I cannot sign in any more.",
    )
    RecoveryCase.objects.filter(pk=opened.case.pk).update(status=CaseStatus.WAITING)
    client = Client()
    assert client.get(reverse("recover_case_link", args=[opened.link_token])).status_code == 302
    return client, RecoveryCase.objects.get(pk=opened.case.pk)


BAD_INPUT = [
    ("unknown-action", {"action": "close_my_case"}, "This page has no such action."),
    ("no-action", {"message": "Hello?"}, "Choose what to do."),
    ("reply-empty", {"action": "reply", "message": "   "}, "Write your message first."),
    ("reply-too-long", {"action": "reply", "message": "x" * 4001}, "at most 4000 characters"),
    (
        "verify-unknown-channel",
        {"action": "verify_code", "kind": "carrier_pigeon", "code": "123456"},
        "Say how the code came: by text message or by email.",
    ),
    (
        "verify-no-channel",
        {"action": "verify_code", "code": "123456"},
        "Say how the code came: by text message or by email.",
    ),
    (
        "verify-malformed-code",
        {"action": "verify_code", "kind": "phone", "code": "12ab56"},
        "Enter the 6 digits of the code we sent you.",
    ),
    (
        "verify-too-long-code",
        {"action": "verify_code", "kind": "email", "code": "1234567890123"},
        "at most 12 characters",
    ),
]
# The button is their whole input: the only bad value is the action's name.
NO_INPUT_ACTIONS = {"send_phone_code", "send_email_code", "not_helped"}


def test_every_status_page_action_has_bad_input_tests():
    """The tables of this module cover every action of the status page."""
    with_input = {data["action"] for _name, data, _msg in BAD_INPUT if "action" in data}
    with_input.discard("close_my_case")
    assert with_input | NO_INPUT_ACTIONS == set(STATUS_ACTIONS)


@pytest.mark.parametrize(
    ("data", "message"), [row[1:] for row in BAD_INPUT], ids=[row[0] for row in BAD_INPUT]
)
def test_bad_input_on_the_status_page_answers_400_and_writes_nothing(
    status_page, nothing_written, data, message
):
    """Each bad value (unknown action or channel, empty or over-long message, malformed
    code) shows the status page again with status 400 and the reason in words; the case,
    its timeline, codes, proofs and the outbox stay as they were."""
    client, case = status_page
    with nothing_written():
        response = client.post(reverse("recover_case"), data)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert case.reference in html, "the status page itself, not an error page"


def test_a_refused_reply_keeps_the_customers_text(status_page):
    """An over-long reply comes back in the text box, so the customer can shorten it."""
    client, _case = status_page
    text = "My phone was stolen in Lisbon. " * 140

    response = client.post(reverse("recover_case"), {"action": "reply", "message": text})

    assert response.status_code == 400
    assert "My phone was stolen in Lisbon. My phone" in response.content.decode()


def test_status_page_messages_are_in_german_for_a_german_customer(status_page, nothing_written):
    """The validation messages follow the page's language."""
    client, _case = status_page
    with nothing_written():
        empty = client.post(
            reverse("recover_case"), {"action": "reply", "message": ""}, HTTP_ACCEPT_LANGUAGE="de"
        )
        unknown = client.post(
            reverse("recover_case"), {"action": "explode"}, HTTP_ACCEPT_LANGUAGE="de"
        )
        channel = client.post(
            reverse("recover_case"),
            {"action": "verify_code", "kind": "fax", "code": "123456"},
            HTTP_ACCEPT_LANGUAGE="de",
        )

    assert empty.status_code == unknown.status_code == channel.status_code == 400
    assert "Schreiben Sie zuerst Ihre Nachricht." in empty.content.decode()
    assert "Diese Aktion gibt es auf dieser Seite nicht." in unknown.content.decode()
    assert "Geben Sie an, wie der Code kam: per SMS oder per E-Mail." in channel.content.decode()


def test_valid_input_still_acts(status_page):
    """A reply within the limits is recorded and leads back to the page."""
    client, case = status_page

    response = client.post(reverse("recover_case"), {"action": "reply", "message": "Any news?"})

    assert response.status_code == 302 and response["Location"] == reverse("recover_case")
    assert case.events.filter(type="customer_message", message="Any news?").count() == 1


@pytest.fixture
def reenrolment_page(db) -> Client:
    """A customer whose 2FA was revoked, signed in with the password, on /recover/2fa/."""
    user = UserFactory.create(email="revoked@example.com", reenrolment_required=True)
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "resend_everything"}, "This page has no such action."),
        ({}, "Choose what to do."),
        ({"action": "verify", "code": "12ab56"}, "Enter the 6 digits of the code we sent you."),
    ],
    ids=["unknown-action", "no-action", "malformed-code"],
)
def test_bad_input_on_the_reenrolment_code_page_answers_400_and_sends_nothing(
    reenrolment_page, nothing_written, data, message
):
    """An unknown action or a malformed code on /recover/2fa/: 400 with a message; no code
    is issued or emailed."""
    with nothing_written():
        response = reenrolment_page.post(reverse("recover_2fa"), data)

    assert response.status_code == 400
    assert message in response.content.decode()
