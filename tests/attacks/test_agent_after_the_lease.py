"""The agent whose lease ran out.

An agent signed in to the admin who held a case with two proofs done, stepped away past
the lease, and acts now: their page was checked a moment before the lease ended and the
action arrives after it, or a colleague already sees the case back in the queue while the
sweep has not run yet. A case whose lease has ended is no longer theirs; every action's
service refuses it, whoever calls, and writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from support.models import CaseEvent, CaseProof, CaseStatus, RecoveryCase
from support.services import actions
from support.services.queue import CaseActionError, case_release
from tests.support.conftest import claimed_case

pytestmark = pytest.mark.django_db

ACTIONS = {
    "reauthenticate": lambda case, agent: actions.case_reauthenticate(case_id=case.pk, agent=agent),
    "tell_login_email": lambda case, agent: actions.case_tell_login_email(
        case_id=case.pk, agent=agent
    ),
    "send_phone_code": lambda case, agent: actions.case_send_proof_code(
        case_id=case.pk, agent=agent, kind=CaseProof.Kind.PHONE
    ),
    "reveal": lambda case, agent: actions.case_reveal_contact(
        case_id=case.pk, agent=agent, field="phone", reason="customer on the phone"
    ),
    "start_email_change": lambda case, agent: actions.case_email_change_start(
        case_id=case.pk, agent=agent, new_email="fresh.address@example.org"
    ),
    "reject": lambda case, agent: actions.case_reject(
        case_id=case.pk, agent=agent, reason="not_verified"
    ),
    "note": lambda case, agent: actions.case_note_add(case_id=case.pk, agent=agent, note="hm"),
}


@pytest.fixture
def lapsed_case(agent: User, account: User) -> RecoveryCase:
    """The agent's case with the phone and the email on file proven; the lease ended a
    second ago and no sweep has returned the case yet."""
    case = claimed_case(agent, user=account)
    CaseProof.objects.create(case=case, kind=CaseProof.Kind.PHONE)
    CaseProof.objects.create(case=case, kind=CaseProof.Kind.EMAIL)
    RecoveryCase.objects.filter(pk=case.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return case


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_no_action_is_taken_on_a_case_whose_lease_ran_out(
    agent: User, account: User, lapsed_case: RecoveryCase, action: str
):
    """Re-authenticate, tell the login email, send a code, reveal, start an email change,
    reject, note: each is refused in words and the case, its timeline and the
    account stay as they were (the lease is not renewed by the attempt either)."""
    events_before = CaseEvent.objects.filter(case=lapsed_case).count()
    password_before = account.password

    with pytest.raises(CaseActionError):
        ACTIONS[action](lapsed_case, agent)

    case = RecoveryCase.objects.get(pk=lapsed_case.pk)
    assert case.status == CaseStatus.CLAIMED
    assert case.lease_expires_at is not None and case.lease_expires_at < timezone.now()
    assert CaseEvent.objects.filter(case=lapsed_case).count() == events_before
    assert User.objects.get(pk=account.pk).password == password_before


def test_giving_back_a_case_whose_lease_ran_out_only_returns_it_to_the_queue(
    agent: User, lapsed_case: RecoveryCase
):
    """Giving the case back is the one thing left to do: it ends the claim as the sweep
    would, and the agent holds nothing afterwards."""
    case_release(case_id=lapsed_case.pk, agent=agent, reason="Back from lunch, too late")

    case = RecoveryCase.objects.get(pk=lapsed_case.pk)
    assert (case.status, case.claimed_by_id, case.lease_expires_at) == (
        CaseStatus.WAITING,
        None,
        None,
    )
