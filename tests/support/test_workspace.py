"""The agent's workspace through the admin: landing, offered actions, confirmations,
summaries, notes, history, timeline wording, claims that run out, give-back, approvals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email
from accounts.models import SecurityEvent
from support.models import CaseApproval, CaseEvent, CaseProof, CaseStatus, RecoveryCase
from support.roles import AGENTS_GROUP
from support.selectors import case_timeline_in_words
from support.services.actions import case_approval_request, case_note_add
from support.services.queue import case_claim_next, case_release
from tests.factories import PASSWORD, totp_code
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    admin_client,
    fresh_code,
    staff_member,
    waiting_case,
)

pytestmark = pytest.mark.django_db

QUEUE = "/admin/support/recoverycase/queue/"


def work_url(case: RecoveryCase) -> str:
    return reverse("admin:support_case_work", args=[case.pk])


@pytest.fixture
def proven_case(account) -> RecoveryCase:
    case = waiting_case(matched_user=account)
    for kind in (CaseProof.Kind.PHONE, CaseProof.Kind.EMAIL):
        CaseProof.objects.create(case=case, kind=kind)
    return case


def test_staff_sign_in_lands_on_the_queue(agent):
    """With no page asked for, the sign-in leads an agent to the queue, not the index."""
    client = Client()
    device = TOTPDevice.objects.get(user=agent)
    response = client.post(
        "/admin/login/",
        {"username": agent.email, "password": PASSWORD, "otp_token": totp_code(device)},
    )
    assert response.status_code == 302 and response["Location"] == QUEUE


def test_a_fresh_case_offers_codes_but_no_irreversible_action(agent, account):
    """Without proofs the page offers codes to send, never re-authentication or the login
    email (the policy's words say what is missing)."""
    case = waiting_case(matched_user=account)
    case_claim_next(agent=agent)
    page = admin_client(agent).get(work_url(case)).content.decode()
    assert 'value="send_phone_code"' in page and 'value="send_email_code"' in page
    assert 'value="reauthenticate"' not in page and 'value="tell_login_email"' not in page
    assert 'value="request_email_change_approval"' not in page
    assert "Not allowed yet" not in page and "a code sent to the phone on file" in page


def test_re_authentication_asks_to_confirm_in_words_and_acts_only_then(agent, proven_case):
    """The first POST shows what will happen and changes nothing; the confirmed one acts and
    sums up what was sent where."""
    case_claim_next(agent=agent)
    client = admin_client(agent)
    ask = client.post(work_url(proven_case), {"action": "reauthenticate"})
    assert ask.status_code == 200
    html = ask.content.decode()
    assert "Every session of the account ends" in html and 'name="confirmed"' in html
    proven_case.refresh_from_db()
    assert proven_case.status == CaseStatus.CLAIMED

    done = client.post(
        work_url(proven_case), {"action": "reauthenticate", "confirmed": "on"}, follow=True
    )
    proven_case.refresh_from_db()
    assert proven_case.status == CaseStatus.RESOLVED
    text = done.content.decode()
    assert f"Re-authenticated; case resolved: {proven_case.reference}." in text
    assert f"recovery link → email to {mask_email(ACCOUNT_EMAIL)}" in text


def test_resolve_and_take_next_opens_the_next_case(agent, proven_case, account):
    """ "…then take the next case" resolves and claims the next one in the same request."""
    case_claim_next(agent=agent)
    following = waiting_case(contact_email="next.one@example.org")
    response = admin_client(agent).post(
        work_url(proven_case),
        {"action": "tell_login_email", "confirmed": "on", "then": "next"},
    )
    assert response["Location"] == work_url(following)
    following.refresh_from_db()
    assert following.status == CaseStatus.CLAIMED and following.claimed_by == agent


def test_an_internal_note_is_on_the_staff_timeline_and_never_on_the_customers_page(
    agent, proven_case
):
    """A note is staff-only: marked on the timeline, absent from what the customer sees."""
    case_claim_next(agent=agent)
    response = admin_client(agent).post(
        work_url(proven_case), {"action": "note", "note": "Sounded like the owner"}, follow=True
    )
    page = response.content.decode()
    assert "Sounded like the owner" in page and "staff only" in page
    note = CaseEvent.objects.get(case=proven_case, type=CaseEvent.Type.NOTE)
    assert note.visible_to_customer is False
    from support.selectors import case_timeline_for_customer

    assert note not in case_timeline_for_customer(case=proven_case)


def test_the_timeline_says_which_proof_which_channel_and_what_was_decided(
    agent, supervisor, account
):
    """Rows name the proof and channel, and whether a supervisor approved or denied."""
    case = waiting_case(matched_user=account)
    CaseEvent.objects.create(
        case=case, type=CaseEvent.Type.PROOF_ADDED, details={"kind": "phone", "channel": "sms"}
    )
    CaseEvent.objects.create(
        case=case, type=CaseEvent.Type.CODE_SENT, details={"kind": "email", "channel": "email"}
    )
    CaseEvent.objects.create(
        case=case,
        type=CaseEvent.Type.APPROVAL_DECIDED,
        actor=supervisor,
        details={"action": "document", "approved": False},
    )
    words = [row.what for row in case_timeline_in_words(case=case)]
    assert "Proof recorded: Phone on file, code by text message" in words
    assert "Verification code sent by email for Email on file" in words
    assert "Supervisor denied: Approve a document check" in words


def test_the_case_page_shows_history_language_and_sla(agent, account):
    """Earlier cases of the account, the disputed event of a not-me case, the customer's
    language and the age against the priority's SLA."""
    earlier = waiting_case(matched_user=account)
    RecoveryCase.objects.filter(pk=earlier.pk).update(
        status=CaseStatus.RESOLVED, resolution="login_email_told", closed_at=timezone.now()
    )
    disputed = SecurityEvent.objects.filter(account_id=account.pk).first()
    assert disputed is not None
    case = waiting_case(matched_user=account)
    RecoveryCase.objects.filter(pk=case.pk).update(
        kind=RecoveryCase.Kind.NOT_ME,
        language="de",
        created_at=timezone.now() - timedelta(hours=30),
    )
    CaseEvent.objects.create(
        case=case, type=CaseEvent.Type.FROZEN, details={"security_event_id": disputed.pk}
    )
    case_claim_next(agent=agent)
    page = admin_client(agent).get(work_url(case)).content.decode()
    assert earlier.reference in page and "Login email told after proof" in page
    assert 'id="disputed-event"' in page and disputed.get_type_display() in page
    assert '<span id="case-language">German</span>' in page
    assert "past its SLA" in page


def test_a_claim_that_ran_out_answers_a_page_in_words_not_a_403(agent, proven_case):
    """After the lease ran out (before the sweep), the page and any action answer 409 with
    what happened and the way back; the case is back in the queue, the action not done."""
    case_claim_next(agent=agent)
    RecoveryCase.objects.filter(pk=proven_case.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = admin_client(agent)
    response = client.post(work_url(proven_case), {"action": "note", "note": "late"})
    assert response.status_code == 409
    html = response.content.decode()
    assert f"Your claim on case {proven_case.reference} ran out" in html
    assert reverse("admin:support_queue") in html
    proven_case.refresh_from_db()
    assert proven_case.status == CaseStatus.WAITING
    assert not CaseEvent.objects.filter(case=proven_case, type=CaseEvent.Type.NOTE).exists()
    assert client.get(work_url(proven_case)).status_code == 409


def test_give_back_goes_behind_the_others_and_not_to_the_same_agent(agent, other_agent):
    """A given-back case queues behind the others of its priority; its agent's next take
    passes it by (the queue may look empty to them), a colleague's takes it."""
    given_back = waiting_case(queued_at=timezone.now() - timedelta(hours=1))
    case_claim_next(agent=agent)
    case_release(case_id=given_back.pk, agent=agent, reason="Need a German speaker")
    assert case_claim_next(agent=agent) is None
    later = waiting_case()
    assert case_claim_next(agent=agent) == later
    assert case_claim_next(agent=other_agent) == given_back


def test_a_given_back_case_waits_behind_a_younger_case_of_its_priority(agent, other_agent):
    """Given back, the oldest case loses its place: a colleague's take next gets the case
    that arrived after it first, and the given-back case only after that."""
    now = timezone.now()
    oldest = waiting_case(queued_at=now - timedelta(hours=1))
    younger = waiting_case(queued_at=now - timedelta(minutes=30))
    assert case_claim_next(agent=agent) == oldest
    case_release(case_id=oldest.pk, agent=agent, reason="Need a German speaker")

    assert case_claim_next(agent=other_agent) == younger
    third_agent = staff_member("agent.carla@desk.example", AGENTS_GROUP)
    assert case_claim_next(agent=third_agent) == oldest


def test_a_decided_approval_returns_the_case_to_the_agent_who_asked(
    agent, other_agent, supervisor, account
):
    """The supervisor's note is kept; the case waits for the asking agent, not the next
    free one, and comes back first on their Take next."""
    case = waiting_case(matched_user=account)
    case.evidence.create(file="evidence/x", content_type="image/png", size=1, sha256="a" * 64)
    CaseProof.objects.create(case=case, kind=CaseProof.Kind.PHONE)
    CaseProof.objects.create(
        case=case, kind=CaseProof.Kind.DOCUMENT, by_customer=False, attested_by=agent
    )
    case_claim_next(agent=agent)
    approval = case_approval_request(
        case_id=case.pk, agent=agent, action=CaseApproval.Action.DOCUMENT, note="Passport"
    )
    newer = waiting_case()
    client = admin_client(supervisor)
    page = client.get(reverse("admin:support_approvals")).content.decode()
    assert "Phone on file" in page and "proven by code" in page
    client.post(
        reverse("admin:support_approvals"),
        {
            "action": "approve",
            "approval_id": approval.pk,
            "note": "Looks right",
            "confirmed": "on",
            "otp_code": fresh_code(supervisor),
        },
    )
    approval.refresh_from_db()
    assert approval.approved and approval.decision_note == "Looks right"
    assert case_claim_next(agent=other_agent) == newer
    assert case_claim_next(agent=agent) == case


def test_a_supervisor_notes_on_any_case(supervisor, account):
    """A supervisor may add a note to a case they do not hold."""
    case = waiting_case(matched_user=account)
    event = case_note_add(case_id=case.pk, agent=supervisor, note="Watch this one")
    assert event.type == CaseEvent.Type.NOTE and event.actor == supervisor


def test_only_the_holder_renews_a_claim(agent, other_agent, proven_case):
    """Renewing someone else's case answers as for a missing case and changes nothing."""
    case_claim_next(agent=agent)
    proven_case.refresh_from_db()
    renew = reverse("admin:support_case_renew", args=[proven_case.pk])
    assert admin_client(other_agent).post(renew).status_code == 404
    before = proven_case.lease_expires_at
    RecoveryCase.objects.filter(pk=proven_case.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    answer = admin_client(agent).post(renew, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    proven_case.refresh_from_db()
    assert proven_case.lease_expires_at >= before


def test_take_next_after_the_own_claim_ran_out_returns_it_and_claims_again(agent):
    """Before the sweep ran, Take next puts the agent's lapsed claim back (with its timeline
    entry) and claims the most urgent waiting case, here that same one."""
    case = waiting_case()
    case_claim_next(agent=agent)
    RecoveryCase.objects.filter(pk=case.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = case_claim_next(agent=agent)
    assert again is not None and again.pk == case.pk
    assert again.lease_expires_at is not None and again.lease_expires_at > timezone.now()
    assert case.events.filter(type=CaseEvent.Type.LEASE_EXPIRED).count() == 1
