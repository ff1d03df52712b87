"""What an agent sees of the account: masked contacts, no secrets; revealing is logged."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email, mask_phone
from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from notifications.models import Notification
from support.models import CaseEvent, RecoveryCase
from support.services.cases import case_open
from support.services.queue import case_claim_next
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE, admin_client, claimed_case

pytestmark = pytest.mark.django_db


def work_url(case: RecoveryCase) -> str:
    return reverse("admin:support_case_work", args=[case.pk])


def secrets_of(account: User, backup_codes: list[str], link_token: str) -> dict[str, str]:
    """Every secret of the account an agent must never see, by name."""
    device = TOTPDevice.objects.get(user=account, confirmed=True)
    found = {
        "totp key (hex)": device.key,
        "totp key (base32)": base64.b32encode(device.bin_key).decode().rstrip("="),
        "password hash": account.password,
        "password hash (digest)": account.password.rsplit("$", 1)[-1],
        "status link token": link_token,
    }
    for i, code in enumerate(backup_codes):
        found[f"backup code {i}"] = code
        found[f"backup code {i} (plain)"] = code.replace("-", "")
    return found


@pytest.mark.parametrize(
    "submission",
    [
        pytest.param(
            {
                "contact_email": "new.inbox@example.org",
                "contact_phone": ACCOUNT_PHONE,
                "emails_tried": [ACCOUNT_EMAIL],
            },
            id="help-request-with-the-accounts-own-contacts",
        ),
        pytest.param(
            {
                "contact_email": ACCOUNT_EMAIL,
                "contact_phone": ACCOUNT_PHONE,
                "kind": RecoveryCase.Kind.NOT_ME,
            },
            id="this-wasnt-me-case",
        ),
    ],
)
def test_the_case_page_shows_no_full_contact_and_no_secret(
    agent, account, account_backup_codes, submission, capture, sms_outbox
):
    """The holder's case page shows the matched account's email and phone masked only, even
    where the customer typed them, and no TOTP key, backup code, password hash or token."""
    with capture():
        opened = case_open(description="Please help, my phone was stolen.", **submission)
    # A recent security event with a not-me token must not leak either.
    security_event_record(
        user=account, type=SecurityEvent.Type.PASSWORD_CHANGED, context=AuditContext()
    )
    not_me_tokens = [
        n.context["not_me_token"] for n in Notification.objects.filter(status="pending")
    ]
    assert case_claim_next(agent=agent) == opened.case
    client = admin_client(agent)

    response = client.get(work_url(opened.case))

    assert response.status_code == 200
    html = response.content.decode()
    assert opened.case.reference in html
    assert ACCOUNT_EMAIL not in html.lower()
    assert ACCOUNT_PHONE not in html and ACCOUNT_PHONE[1:] not in html
    assert "15123456789" not in re.sub(r"\s", "", html), "nor in another format"
    assert mask_email(ACCOUNT_EMAIL) in html
    assert mask_phone(ACCOUNT_PHONE) in html
    leaked = {
        name
        for name, value in {
            **secrets_of(account, account_backup_codes, opened.link_token),
            **{f"not-me token {i}": t for i, t in enumerate(not_me_tokens)},
        }.items()
        if value and value in html
    }
    assert leaked == set()


def test_revealing_a_full_value_needs_a_reason_shows_it_once_and_is_logged(agent, account):
    """No reason: refused with a message and nothing logged. With a reason: the full phone is
    shown on the next page view only, and a contact_revealed entry records who, why and what."""
    case = claimed_case(agent, contact_email="new.inbox@example.org", emails_tried=[ACCOUNT_EMAIL])
    client = admin_client(agent)

    refused = client.post(work_url(case), {"action": "reveal", "field": "phone", "reason": " "})
    assert refused.status_code == 400
    assert "Say why you need the full value." in refused.content.decode()
    assert ACCOUNT_PHONE not in refused.content.decode()
    assert not case.events.filter(type=CaseEvent.Type.CONTACT_REVEALED).exists()

    revealed = client.post(
        work_url(case),
        {"action": "reveal", "field": "phone", "reason": "Customer reads digits on the call"},
    )
    assert revealed.status_code == 302 and revealed["Location"] == work_url(case)
    assert ACCOUNT_PHONE not in revealed.content.decode()
    shown = client.get(work_url(case)).content.decode()
    assert f"<code>{ACCOUNT_PHONE}</code>" in shown
    assert ACCOUNT_EMAIL not in shown, "only the field asked for"
    assert ACCOUNT_PHONE not in client.get(work_url(case)).content.decode(), "shown once"

    event = case.events.get(type=CaseEvent.Type.CONTACT_REVEALED)
    assert event.actor == agent
    assert event.message == "Customer reads digits on the call"
    assert event.details == {"field": "phone"}
    assert not event.visible_to_customer
    timeline = client.get(work_url(case)).content.decode()
    assert "Full contact revealed to agent" in timeline


def test_an_agent_cannot_reveal_on_a_case_they_do_not_hold(agent, other_agent, account):
    """Reveal goes through the holder check: another agent gets the "not available" answer,
    learns nothing and nothing is logged as revealed."""
    case = claimed_case(agent, contact_email="new.inbox@example.org", emails_tried=[ACCOUNT_EMAIL])
    client = admin_client(other_agent)

    response = client.post(
        work_url(case), {"action": "reveal", "field": "email", "reason": "curious"}
    )

    assert response.status_code == 404
    assert ACCOUNT_EMAIL not in response.content.decode()
    assert not case.events.filter(type=CaseEvent.Type.CONTACT_REVEALED).exists()
