"""The account taker who phished the password and holds the login inbox, racing the owner's
recovery by support.

The owner lost the inbox to the attacker, proved the phone on file and had a passport
attested and approved; the agent re-authenticated the account, which removed every second
factor and texted the owner a recovery link. Before the owner opens it, the attacker signs
in with the old password and asks /recover/2fa/ for the emailed code (the re-enrolment of
a mass revocation), or asks for a password reset through the inbox first. The recovery must stay
the owner's: the attacker sets up no authenticator of their own, and the owner's link still
leads to a new password and app.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from support.models import CaseApproval, CaseProof
from support.services import actions
from support.services.cases import case_proof_code_send, case_proof_verify
from support.services.queue import case_claim_next
from tests.factories import PASSWORD, totp_code
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    PROOF_CODE_SMS,
    RECOVERY_LINK,
    inbox_lost_case,
    png_upload,
)

pytestmark = pytest.mark.django_db

CODE = re.compile(r"\b(\d{6})\b")
NEW_PASSWORD = "the-owners-passphrase-after-recovery"
RESET_LINK = re.compile(r"/accounts/password/reset/key/")


def recovered_by_support(account: User, agent: User, supervisor: User, capture, sms_outbox):
    """Phone proven and passport approved: the agent re-authenticates; the link goes by SMS."""
    case = inbox_lost_case(
        capture,
        description="Someone took over my mailbox and changed its password.",
        files=[png_upload()],
    )
    with capture():
        case_proof_code_send(case=case, kind=CaseProof.Kind.PHONE)
    sent = PROOF_CODE_SMS.search(sms_outbox[-1].body)
    assert sent, sms_outbox[-1].body
    case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=sent.group(1))
    case_claim_next(agent=agent)
    actions.case_attest_document(case_id=case.pk, agent=agent, note="Passport matches")
    approval = actions.case_approval_request(
        case_id=case.pk, agent=agent, action=CaseApproval.Action.DOCUMENT
    )
    actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)
    case_claim_next(agent=agent)
    with capture():
        actions.case_reauthenticate(case_id=case.pk, agent=agent)
    links = [found.group(0) for m in sms_outbox if (found := RECOVERY_LINK.search(m.body))]
    assert len(links) == 1
    return links[0]


def test_the_old_password_and_the_inbox_do_not_overtake_an_agents_recovery(
    account, agent, supervisor, capture, mailoutbox, sms_outbox
):
    link = recovered_by_support(account, agent, supervisor, capture, sms_outbox)
    mailoutbox.clear()

    attacker = Client(REMOTE_ADDR="203.0.113.66")
    attacker.post(reverse("account_login"), {"login": ACCOUNT_EMAIL, "password": PASSWORD})
    with capture():
        attacker.post(reverse("recover_2fa"), {"action": "send"})
    emailed = [
        found.group(1)
        for m in mailoutbox
        if m.to == [ACCOUNT_EMAIL] and (found := CODE.search(m.body))
    ]
    if emailed:
        code = emailed[-1]
        attacker.post(reverse("recover_2fa"), {"action": "verify", "code": code})
        attacker.get(reverse("recover_2fa_setup"))
        device = TOTPDevice.objects.filter(user=account, confirmed=False).first()
        if device is not None:
            attacker.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})
    assert not TOTPDevice.objects.filter(user=account, confirmed=True).exists()

    owner = Client(REMOTE_ADDR="198.51.100.20")
    assert owner.get(link).status_code == 302
    reset = owner.post(
        reverse("recover_reset"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert reset.status_code == 302 and reset["Location"] == reverse("recover_2fa_setup")
    assert owner.get(reverse("recover_2fa_setup")).status_code == 200
    device = TOTPDevice.objects.get(user=account, confirmed=False)
    assert owner.post(reverse("recover_2fa_setup"), {"code": totp_code(device)}).status_code == 200
    assert TOTPDevice.objects.filter(user=account, confirmed=True).get().pk == device.pk


def test_a_reset_through_the_inbox_does_not_overtake_an_agents_recovery(
    account, agent, supervisor, capture, mailoutbox, sms_outbox
):
    link = recovered_by_support(account, agent, supervisor, capture, sms_outbox)
    mailoutbox.clear()

    attacker = Client(REMOTE_ADDR="203.0.113.66")
    with capture():
        asked = attacker.post(reverse("account_reset_password"), {"email": ACCOUNT_EMAIL})

    # The page answers as for anyone; the inbox gets the hold's end, not a link.
    assert asked.status_code == 302
    (message,) = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
    assert not RESET_LINK.search(message.body)
    assert "cannot be changed until the hold ends" in message.body
    # The owner's link still leads to the new password.
    owner = Client(REMOTE_ADDR="198.51.100.20")
    assert owner.get(link).status_code == 302
    reset = owner.post(
        reverse("recover_reset"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert reset.status_code == 302 and reset["Location"] == reverse("recover_2fa_setup")
