"""Staff decisions under concurrency: one approval is decided once, one claim ends once.

Supervisors deciding the same approval, and an agent giving a case back while the lease
sweep runs, each in its own thread and PostgreSQL connection at the same instant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import SecurityEvent, User
from accounts.services.holds import HoldLiftRefused, security_hold_extend, security_hold_lift
from notifications.models import Notification
from support.models import (
    CaseApproval,
    CaseEvent,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from support.services import actions
from support.services.cases import case_open
from support.services.queue import (
    CaseActionError,
    case_claim_next,
    case_claims_release_stale,
    case_reassign,
    case_release,
)
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.support.conftest import (
    admin_client,
    claimed_case,
    email_change_approval,
    fresh_code,
    png_upload,
    staff_member,
)

pytestmark = pytest.mark.django_db(transaction=True)

SUPERVISORS = 4
ROUNDS = 5


def outcome(function: Callable[[], object]) -> Callable[[], tuple[str, object]]:
    """Call and report ("ok", result) or ("refused", the CaseActionError's message)."""

    def call() -> tuple[str, object]:
        try:
            return ("ok", function())
        except CaseActionError as exc:
            return ("refused", str(exc))

    return call


@pytest.fixture
def desk() -> tuple[User, list[User]]:
    agent = staff_member("agent.race@desk.example", AGENTS_GROUP)
    supervisors = [
        staff_member(f"super{i}.race@desk.example", SUPERVISORS_GROUP) for i in range(SUPERVISORS)
    ]
    return agent, supervisors


def deciding(
    approval: CaseApproval, supervisor: User, *, approve: bool = True
) -> Callable[[], tuple[str, object]]:
    """One supervisor's decision on the approval, ready for `run_together`."""
    return outcome(
        partial(
            actions.case_approval_decide,
            approval_id=approval.pk,
            supervisor=supervisor,
            approve=approve,
        )
    )


def document_approval(agent: User) -> CaseApproval:
    """A pending approval of a document check the agent attested."""
    case = claimed_case(agent, files=[png_upload()])
    actions.case_attest_document(case_id=case.pk, agent=agent, note="Passport matches")
    return actions.case_approval_request(
        case_id=case.pk, agent=agent, action=CaseApproval.Action.DOCUMENT
    )


def test_four_supervisors_approving_one_document_check_at_once_decide_it_once(desk):
    """Four supervisors approve the same document check together (5 rounds): one decision
    is recorded, the others are told it was already decided; the case goes back to the
    queue once."""
    agent, supervisors = desk
    for _round in range(ROUNDS):
        approval = document_approval(agent)

        results = run_together([deciding(approval, supervisor) for supervisor in supervisors])

        kinds = Counter(kind for kind, _value in results)
        assert kinds == {"ok": 1, "refused": SUPERVISORS - 1}
        assert {value for kind, value in results if kind == "refused"} == {
            "This approval was already decided."
        }
        approval.refresh_from_db()
        winner = next(
            supervisor
            for supervisor, (kind, _v) in zip(supervisors, results, strict=True)
            if kind == "ok"
        )
        assert approval.approved is True and approval.decided_by == winner
        case = approval.case
        assert case.events.filter(type=CaseEvent.Type.APPROVAL_DECIDED).count() == 1
        case.refresh_from_db()
        assert case.status == CaseStatus.WAITING
        RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.REJECTED)


def test_approve_and_deny_of_one_approval_at_once_decide_it_once(desk):
    """One supervisor approves while another denies, at the same instant (5 rounds): the
    approval holds exactly one of the two decisions, and the timeline says which."""
    agent, supervisors = desk
    for _round in range(ROUNDS):
        approval = document_approval(agent)

        results = run_together(
            [
                deciding(approval, supervisors[0], approve=True),
                deciding(approval, supervisors[1], approve=False),
            ]
        )

        assert sorted(kind for kind, _value in results) == ["ok", "refused"]
        approved_won = results[0][0] == "ok"
        approval.refresh_from_db()
        assert approval.approved is approved_won
        decided = approval.case.events.filter(type=CaseEvent.Type.APPROVAL_DECIDED)
        assert list(decided.values_list("details__approved", flat=True)) == [approved_won]
        RecoveryCase.objects.filter(pk=approval.case_id).update(status=CaseStatus.REJECTED)


def test_four_supervisors_approving_one_email_change_at_once_schedule_it_once(desk):
    """Four supervisors approve the same login-email change together (3 rounds): one
    waiting period starts, with one security event, one notice per contact on file and
    one cancel link."""
    agent, supervisors = desk
    for round_ in range(3):
        approval = email_change_approval(agent, round_)
        assert approval.email_change is not None
        user = approval.email_change.user

        results = run_together([deciding(approval, supervisor) for supervisor in supervisors])

        assert Counter(kind for kind, _value in results) == {"ok": 1, "refused": SUPERVISORS - 1}
        change = EmailChange.objects.get(pk=approval.email_change.pk)
        assert change.status == EmailChange.Status.WAITING_PERIOD
        scheduled = SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.EMAIL_CHANGE_SCHEDULED
        )
        assert scheduled.count() == 1
        notices = Notification.objects.filter(template_key="support/email_change_scheduled")
        assert sorted(notices.filter(account_id=user.pk).values_list("channel", flat=True)) == [
            "email",
            "sms",
        ]
        assert (
            CaseEvent.objects.filter(
                type=CaseEvent.Type.EMAIL_CHANGE_SCHEDULED, details__email_change_id=change.pk
            ).count()
            == 1
        )


def test_giving_a_case_back_while_the_lease_sweep_runs_ends_the_claim_once(desk):
    """An agent gives back a case whose lease just ran out while the sweep returns stale
    claims (10 rounds): the case is back in the queue once, with either "returned" or
    "claim expired" on the timeline, never both; a late give-back is refused in words."""
    agent, _supervisors = desk
    seen: Counter[str] = Counter()
    for _round in range(10):
        case = claimed_case(agent)
        RecoveryCase.objects.filter(pk=case.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

        # Two kinds of result: the give-back's outcome and the sweep's count.
        racers: list[Callable[[], Any]] = [
            outcome(partial(case_release, case_id=case.pk, agent=agent, reason="Lunch")),
            case_claims_release_stale,
        ]
        (release, swept) = run_together(racers)

        ended = case.events.filter(type__in=[CaseEvent.Type.RELEASED, CaseEvent.Type.LEASE_EXPIRED])
        assert ended.count() == 1
        if release[0] == "ok":
            assert swept == 0 and ended.get().type == CaseEvent.Type.RELEASED
        else:
            assert release[1] == "This case is not claimed by you any more."
            assert swept == 1 and ended.get().type == CaseEvent.Type.LEASE_EXPIRED
        seen[ended.get().type] += 1
        case.refresh_from_db()
        assert (case.status, case.claimed_by_id) == (CaseStatus.WAITING, None)
        RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.REJECTED)
    assert sum(seen.values()) == 10


def test_giving_one_case_back_twice_at_once_records_it_once(desk):
    """A double click on "give back": one release is recorded, the other is refused."""
    agent, _supervisors = desk
    for _round in range(ROUNDS):
        case = claimed_case(agent)

        results = run_together(
            [outcome(partial(case_release, case_id=case.pk, agent=agent, reason="Lunch"))] * 4
        )

        assert Counter(kind for kind, _value in results) == {"ok": 1, "refused": 3}
        assert case.events.filter(type=CaseEvent.Type.RELEASED).count() == 1
        RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.REJECTED)


def test_four_supervisors_approving_through_the_approvals_page_at_once_decide_once(desk):
    """The whole page at once: four supervisors, each with a fresh code from their own
    authenticator, press "approve" on the same approval together. Every answer is a page
    (a redirect with a message, or the form's refusal), never an error; one decision."""
    agent, supervisors = desk
    approval = document_approval(agent)
    clients = [admin_client(supervisor) for supervisor in supervisors]
    codes = [fresh_code(supervisor) for supervisor in supervisors]

    responses = run_together(
        [
            partial(
                client.post,
                reverse("admin:support_approvals"),
                {
                    "action": "approve",
                    "approval_id": approval.pk,
                    "otp_code": code,
                    "confirmed": "on",
                },
            )
            for client, code in zip(clients, codes, strict=True)
        ]
    )

    assert {response.status_code for response in responses} <= {302, 400}
    approval.refresh_from_db()
    assert approval.approved is True and approval.decided_by in supervisors
    assert approval.case.events.filter(type=CaseEvent.Type.APPROVAL_DECIDED).count() == 1


def test_reassigning_to_an_agent_who_takes_a_case_at_that_moment_refuses_cleanly(desk):
    """A supervisor moves a case to an agent at the instant that agent presses "take next"
    (10 rounds): the agent ends up with exactly one case, and the supervisor is either
    obeyed or told in words that the agent already holds one, never a server error."""
    holder, supervisors = desk
    target = staff_member("agent.busy@desk.example", AGENTS_GROUP)
    seen: Counter[str] = Counter()
    for _round in range(10):
        case = claimed_case(holder)
        waiting = case_open(contact_email="next.in.line@example.org").case
        RecoveryCase.objects.filter(pk=waiting.pk).update(status=CaseStatus.WAITING)

        # Two kinds of result: the reassignment's outcome and the case taken.
        racers: list[Callable[[], Any]] = [
            outcome(partial(case_reassign, case_id=case.pk, agent=supervisors[0], assignee=target)),
            partial(case_claim_next, agent=target),
        ]
        reassigned, _taken = run_together(racers)

        if reassigned[0] == "refused":
            assert reassigned[1] == "That agent already holds a case."
        seen[reassigned[0]] += 1
        held = RecoveryCase.objects.filter(claimed_by=target, status=CaseStatus.CLAIMED)
        assert held.count() == 1
        RecoveryCase.objects.filter(pk__in=[case.pk, waiting.pk]).update(
            status=CaseStatus.REJECTED, claimed_by=None
        )
    print(f"\n[reassign against take-next] {dict(seen)}")
    assert sum(seen.values()) == 10


def test_four_supervisors_lifting_one_hold_at_once_lift_it_once(desk):
    """Four supervisors lift the same security hold together (5 rounds): one lift is
    recorded and notified, the others are told the account is not on a hold."""
    _agent, supervisors = desk
    for _round in range(ROUNDS):
        customer = UserFactory()
        security_hold_extend(user=customer, hours=48)

        def lift(supervisor, customer=customer):
            try:
                return ("ok", security_hold_lift(user=customer, supervisor=supervisor, reason="Ok"))
            except HoldLiftRefused as exc:
                return ("refused", exc.code)

        results = run_together([partial(lift, supervisor) for supervisor in supervisors])

        assert Counter(kind for kind, _value in results) == {"ok": 1, "refused": SUPERVISORS - 1}
        assert {value for kind, value in results if kind == "refused"} == {"no_hold"}
        lifted = SecurityEvent.objects.filter(
            account_id=customer.pk, type=SecurityEvent.Type.SECURITY_HOLD_LIFTED
        )
        assert lifted.count() == 1
        assert Notification.objects.filter(security_event__in=lifted).count() == 2
