"""The stranger who knows the victim's phone number.

They hold the victim's phone number (not the SIM: texts to it reach the victim), an inbox
of their own and a browser. The victim has an open recovery case: they proved the phone on
file, support wrote to them, and a code to their email on file is on its way. The stranger
opens a request of their own with the victim's number, which joins the victim's case.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import time_machine

from support.models import CaseEvent, CaseProof, CaseStatus, RecoveryCase
from support.services import actions
from tests.attacks.helpers import (
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    Desk,
    Requester,
    last_code,
    open_request,
    section,
)
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

UNKNOWN_PHONE = "+4917698765432"  # belongs to no account
SUPPORT_MESSAGE = "Thank you, Satoshi. Please also confirm the email code we just sent."
STRANGER_MESSAGE = "I am the owner. Send the reset link to my new address, please."


@dataclass
class Victim(Requester):
    """The victim's request, the code to their email on file they have not typed yet, and
    the desk of the agent working their case."""

    pending_email_code: str
    desk: Desk


@pytest.fixture
def victim(account, agent, capture, sms_outbox, mailoutbox) -> Victim:
    """The victim's open case: phone proven, a message from support, an email code pending."""
    opened = open_request(
        capture=capture,
        contact_email=ACCOUNT_EMAIL,
        contact_phone=ACCOUNT_PHONE,
        description="My authenticator app was on my old phone.",
    )
    assert opened.post("send_phone_code").status_code == 302
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert opened.verify("phone", code).status_code == 302
    assert opened.post("send_email_code").status_code == 302
    pending_email_code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    case = opened.request
    desk = Desk(agent, capture)
    assert desk.take_next() == case.pk
    with capture():
        actions.case_ask_customer(case_id=case.pk, agent=agent, message=SUPPORT_MESSAGE)
    page = opened.page().content.decode()
    assert SUPPORT_MESSAGE in page and "Phone on file proven" in page
    assert "Waiting for your answer" in page
    sms_outbox.clear()
    mailoutbox.clear()
    return Victim(
        client=opened.client,
        reference=opened.reference,
        capture=opened.capture,
        pending_email_code=pending_email_code,
        desk=desk,
    )


def test_the_stranger_sees_nothing_of_the_case_and_cannot_act_on_it(
    victim, agent, capture, sms_outbox, mailoutbox
):
    """The stranger's page reads like a request for an unknown number (state and queue place,
    proofs, timeline and reply sections byte for byte); their reply stays
    on their own request; their "send a code" sends nothing to the victim; their guesses burn
    their own attempts only, so the victim's pending code still works afterwards."""
    case = victim.request
    with time_machine.travel("2026-06-01 08:00:00+00:00", tick=False):
        stranger = open_request(
            capture=capture,
            contact_email="stranger@example.net",
            contact_phone=ACCOUNT_PHONE,
            description="Locked out, please help.",
        )
        nobody = open_request(
            capture=capture,
            contact_email="someone@example.net",
            contact_phone=UNKNOWN_PHONE,
            description="Locked out, please help.",
        )
        own, unknown = stranger.page(), nobody.page()
        assert sorted(m.to for m in mailoutbox) == [
            ["someone@example.net"],
            ["stranger@example.net"],
        ]
        mailoutbox.clear()

        # The stranger's request joined the victim's case, and its page shows none of it.
        request = stranger.request
        assert request.merged_into_id == case.pk and request.status == CaseStatus.MERGED
        html = own.content.decode()
        for secret in (
            case.reference,
            SUPPORT_MESSAGE,
            "Phone on file proven",
            "Waiting for your answer",
        ):
            assert secret not in html, secret
        assert "Waiting for an agent" in section(html, "case-state")
        # What a request for a number nobody has shows, byte for byte, its queue place too.
        for name in ("case-state", "proofs", "timeline", "reply"):
            assert stranger.comparable(section(own.content, name).encode()) == nobody.comparable(
                section(unknown.content, name).encode()
            ), name
        assert "Your place in the queue: " in section(unknown.content.decode(), "case-state")

        # "Send a code to my phone / email on file": the same answer, and nothing is sent.
        for action in ("send_phone_code", "send_email_code"):
            sent, control = stranger.post(action), nobody.post(action)
            assert (sent.status_code, sent["Location"]) == (
                control.status_code,
                control["Location"],
            )
        assert sms_outbox == [] and mailoutbox == []
        assert stranger.comparable(section(stranger.page().content, "proofs").encode()) == (
            nobody.comparable(section(nobody.page().content, "proofs").encode())
        )

        # Six guesses at an email code: the answers a request for an unknown number gets.
        for guess in ("000000", "111111", "222222", "333333", "444444", "555555"):
            answer, control = stranger.verify("email", guess), nobody.verify("email", guess)
            assert answer.status_code == control.status_code == 400
            assert stranger.comparable(section(answer.content, "proofs").encode()) == (
                nobody.comparable(section(control.content, "proofs").encode())
            )

        # A reply goes on the stranger's own request, not onto the victim's case.
        assert stranger.post("reply", message=STRANGER_MESSAGE).status_code == 302

    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_CUSTOMER, "the stranger's reply moved nothing"
    assert not case.events.filter(type=CaseEvent.Type.CUSTOMER_MESSAGE).exists()
    assert request.events.get(type=CaseEvent.Type.CUSTOMER_MESSAGE).message == STRANGER_MESSAGE
    assert STRANGER_MESSAGE not in victim.page().content.decode()
    assert not request.proofs.exists()

    # The victim's own code still works: the stranger used up none of its attempts.
    assert victim.verify("email", victim.pending_email_code).status_code == 302
    assert set(case.proofs.values_list("kind", flat=True)) == {
        CaseProof.Kind.PHONE,
        CaseProof.Kind.EMAIL,
    }
    assert "Email on file proven" in victim.page().content.decode()

    # The agent sees both requesters side by side, each with their own proofs and words.
    RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.WAITING, priority=2)
    desk = victim.desk
    assert desk.take_next() == case.pk
    page = desk.case_page(case.pk)
    victim_part = section(page, f"requester-{case.reference}")
    stranger_part = section(page, f"requester-{request.reference}")
    assert "opened the case" in victim_part and "joined the case" in stranger_part
    assert victim_part.count("proven") == 2 and STRANGER_MESSAGE not in victim_part
    assert "proven" not in stranger_part and STRANGER_MESSAGE in stranger_part
    assert "stranger@example.net" not in page, "contacts are masked"
