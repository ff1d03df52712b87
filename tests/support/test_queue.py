"""The agent queue: take next, one case per agent, leases, giving back, joining and triage."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

import support.views
from notifications.models import Notification
from support.models import (
    OPEN_STATUSES,
    CaseEvent,
    CasePriority,
    CaseProof,
    CaseStatus,
    RecoveryCase,
)
from support.services import actions
from support.services.cases import case_open
from support.services.queue import (
    CLAIM_NEXT_SQL,
    CaseActionError,
    case_claim_next,
    case_claims_release_stale,
    case_release,
)
from tests.factories import UserFactory
from tests.processes import database_url
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    admin_client,
    staff_member,
    waiting_case,
)

pytestmark = pytest.mark.django_db

START = "2026-05-04 09:00:00+00:00"


def claimed_events(case: RecoveryCase) -> int:
    return case.events.filter(type=CaseEvent.Type.CLAIMED).count()


def test_take_next_gives_the_highest_priority_then_the_longest_waiting_case(db):
    """Urgent before high before normal; within a priority the case queued first."""
    now = timezone.now()
    normal_oldest = waiting_case(queued_at=now - timedelta(hours=5))
    high_newer = waiting_case(priority=CasePriority.HIGH, queued_at=now - timedelta(hours=1))
    high_older = waiting_case(priority=CasePriority.HIGH, queued_at=now - timedelta(hours=2))
    urgent_newest = waiting_case(priority=CasePriority.URGENT, queued_at=now)
    agents = [staff_member(f"agent{i}@desk.example", "Support agents") for i in range(4)]

    taken = [case_claim_next(agent=agent) for agent in agents]

    assert taken == [urgent_newest, high_older, high_newer, normal_oldest]
    for agent, case in zip(agents, taken, strict=True):
        assert case is not None
        case.refresh_from_db()
        assert case.status == CaseStatus.CLAIMED
        assert case.claimed_by == agent
        assert case.lease_expires_at is not None
        assert case.lease_expires_at > timezone.now() + timedelta(minutes=19)
        assert list(case.events.values_list("type", "actor")) == [("claimed", agent.pk)]
    assert case_claim_next(agent=staff_member("late@desk.example", "Support agents")) is None


def test_supervisors_take_escalated_cases_before_the_queue_but_agents_never_do(agent, supervisor):
    """Escalated cases are the supervisors' queue: an agent skips them, a supervisor starts
    there even when an urgent waiting case exists."""
    escalated = waiting_case(priority=CasePriority.NORMAL)
    RecoveryCase.objects.filter(pk=escalated.pk).update(status=CaseStatus.ESCALATED)
    urgent = waiting_case(priority=CasePriority.URGENT)

    assert case_claim_next(agent=agent) == urgent
    waiting_case()
    assert case_claim_next(agent=supervisor) == escalated


@pytest.mark.django_db(transaction=True)
def test_a_case_returned_to_its_agent_comes_first_and_locks_no_other_case(agent, other_agent):
    """The case that came back for the agent is taken ahead of a more urgent one, and the
    claim locks that case alone: inside the agent's open transaction another connection
    can still lock the urgent case, which the next agent then takes."""
    urgent = waiting_case(priority=CasePriority.URGENT)
    returned = waiting_case()
    RecoveryCase.objects.filter(pk=returned.pk).update(returns_to=agent)
    with transaction.atomic():
        assert case_claim_next(agent=agent) == returned
        with psycopg.connect(database_url(), autocommit=True) as elsewhere:
            locked = elsewhere.execute(
                "SELECT id FROM support_recoverycase WHERE id = %s FOR UPDATE NOWAIT",
                [urgent.pk],
            ).fetchone()
    assert locked == (urgent.pk,)
    assert case_claim_next(agent=other_agent) == urgent


def test_the_claim_is_parsed_and_planned_once_per_connection(agent, other_agent):
    """The claim runs as a server-side prepared statement on Django's own connection: the
    second agent's claim reuses the plan the first one prepared."""
    waiting_case()
    waiting_case()

    def prepared_claims() -> list[tuple[int, int]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE from_sql = false AND starts_with(statement, %s)",
                [CLAIM_NEXT_SQL[False].split("%(")[0]],
            )
            return cursor.fetchall()

    assert case_claim_next(agent=agent) is not None
    assert case_claim_next(agent=other_agent) is not None

    assert len(prepared := prepared_claims()) == 1
    assert sum(prepared[0]) == 2  # two executions of the one prepared statement


def test_an_agent_holding_a_case_gets_the_same_case_back(agent):
    """Take next while holding a case returns that case (lease renewed), claims nothing else."""
    first = waiting_case(queued_at=timezone.now() - timedelta(hours=1))
    second = waiting_case()
    with time_machine.travel(START, tick=False) as clock:
        held = case_claim_next(agent=agent)
        assert held == first
        clock.shift(timedelta(minutes=5))
        again = case_claim_next(agent=agent)

        assert again is not None and again.pk == first.pk
        again.refresh_from_db()
        assert again.lease_expires_at == timezone.now() + timedelta(minutes=20)
    second.refresh_from_db()
    assert second.status == CaseStatus.WAITING and second.claimed_by is None
    assert claimed_events(first) == 1
    assert RecoveryCase.objects.filter(claimed_by=agent).count() == 1


def test_an_expired_lease_returns_the_case_to_the_queue(agent, other_agent):
    """Twenty-one minutes after the claim without any action, the periodic release puts the
    case back in the queue with a lease_expired entry, and another agent can take it."""
    case = waiting_case()
    with time_machine.travel(START, tick=False) as clock:
        case_claim_next(agent=agent)
        clock.shift(timedelta(minutes=19))
        assert case_claims_release_stale() == 0
        clock.shift(timedelta(minutes=2))

        assert case_claims_release_stale() == 1

    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING
    assert case.claimed_by is None and case.lease_expires_at is None
    expired = case.events.get(type=CaseEvent.Type.LEASE_EXPIRED)
    assert expired.details == {"agent_id": agent.pk}
    assert case_claims_release_stale() == 0, "nothing left to release"
    with pytest.raises(CaseActionError, match="not claimed by you"):
        case_release(case_id=case.pk, agent=agent, reason="too late")
    assert case_claim_next(agent=other_agent) == case


def test_an_action_before_expiry_renews_the_lease(agent, account, sms_outbox):
    """Sending a proof code at minute 15 moves the lease to minute 35: the case survives the
    release at minute 30 and only expires 21 minutes after the last action."""
    case = waiting_case(matched_user=account)
    with time_machine.travel(START, tick=False) as clock:
        case_claim_next(agent=agent)
        clock.shift(timedelta(minutes=15))
        assert actions.case_send_proof_code(case_id=case.pk, agent=agent, kind=CaseProof.Kind.PHONE)
        acted_at = timezone.now()
        clock.shift(timedelta(minutes=15))

        assert case_claims_release_stale() == 0
        case.refresh_from_db()
        assert case.status == CaseStatus.CLAIMED and case.claimed_by == agent
        assert case.lease_expires_at == acted_at + timedelta(minutes=20)

        clock.shift(timedelta(minutes=6))
        assert case_claims_release_stale() == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING


def test_giving_a_case_back_needs_a_reason_which_is_kept(agent):
    """An empty or blank reason is refused and changes nothing; a real one returns the case
    to the queue with the reason on the timeline."""
    case = waiting_case()
    case_claim_next(agent=agent)
    for reason in ("", "   "):
        with pytest.raises(CaseActionError, match="Say why"):
            case_release(case_id=case.pk, agent=agent, reason=reason)
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == agent
    assert not case.events.filter(type=CaseEvent.Type.RELEASED).exists()

    case_release(case_id=case.pk, agent=agent, reason="Customer writes in Finnish only")

    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING and case.claimed_by is None
    released = case.events.get(type=CaseEvent.Type.RELEASED)
    assert (released.actor, released.message) == (agent, "Customer writes in Finnish only")


def test_take_next_and_give_back_through_the_admin(agent):
    """In the admin: Take next opens the case page; giving back without a reason shows the
    error and keeps the claim; with a reason the agent lands on the queue again."""
    case = waiting_case()
    client = admin_client(agent)
    assert 'id="take-next"' in client.get(reverse("admin:support_queue")).content.decode()

    taken = client.post(reverse("admin:support_take_next"))
    work_url = reverse("admin:support_case_work", args=[case.pk])
    assert taken.status_code == 302 and taken["Location"] == work_url
    page = client.get(work_url).content.decode()
    assert case.reference in page and "Give back to the queue" in page

    refused = client.post(work_url, {"action": "release", "reason": " "})
    assert refused.status_code == 400
    assert "Say why you give the case back." in refused.content.decode()
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == agent

    done = client.post(work_url, {"action": "release", "reason": "Need a German speaker"})
    assert done["Location"] == reverse("admin:support_queue")
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING
    queue = client.get(reverse("admin:support_queue")).content.decode()
    assert f"Case given back to the queue: {case.reference}. Nothing was sent." in queue
    assert 'id="take-next"' in queue


@pytest.mark.django_db(transaction=True)
def test_take_next_claims_outside_a_request_transaction(agent, monkeypatch):
    """The Take next button claims in autocommit: no request transaction and savepoint
    around the one statement, which commits by itself, as the benchmark measures it."""
    case = waiting_case()
    client = admin_client(agent)
    in_transaction: list[bool] = []

    def claim_and_observe(*, agent):
        in_transaction.append(connection.in_atomic_block)
        return case_claim_next(agent=agent)

    monkeypatch.setattr(support.views, "case_claim_next", claim_and_observe)
    taken = client.post(reverse("admin:support_take_next"))

    assert taken["Location"] == reverse("admin:support_case_work", args=[case.pk])
    assert in_transaction == [False]
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == agent
    assert claimed_events(case) == 1


@pytest.fixture
def john(db):
    return UserFactory(email=ACCOUNT_EMAIL, phone=ACCOUNT_PHONE)


def test_a_second_request_for_the_same_account_joins_the_open_case(
    john, agent, django_capture_on_commit_callbacks
):
    """One open case per account: another request that matches the account is a requester
    of its own (reference, status link, what it submitted) that joined the open case, whose
    timeline shows a "joined" entry naming the request (and none of its contact data); a
    "this wasn't me" joining raises the open case's priority. The queue holds the one case,
    triaged once."""
    with django_capture_on_commit_callbacks(execute=True):
        first = case_open(
            contact_email=ACCOUNT_EMAIL, contact_phone=ACCOUNT_PHONE, description="Lost my 2FA"
        )
    assert RecoveryCase.objects.get(pk=first.case.pk).status == CaseStatus.WAITING
    with django_capture_on_commit_callbacks(execute=True):
        second = case_open(
            contact_email="other.inbox@example.org",
            emails_tried=[ACCOUNT_EMAIL.upper()],
            description="Still locked out",
            kind=RecoveryCase.Kind.NOT_ME,
            priority=CasePriority.URGENT,
        )

    open_cases = RecoveryCase.objects.filter(status__in=OPEN_STATUSES)
    assert list(open_cases.values_list("pk", flat=True)) == [first.case.pk]
    case = open_cases.get()
    assert case.status == CaseStatus.WAITING
    assert case.priority == CasePriority.URGENT
    joined = case.events.get(type=CaseEvent.Type.JOINED)
    assert joined.message == ""
    assert joined.details == {"request": second.case.reference, "kind": "not_me"}
    assert case.events.filter(type=CaseEvent.Type.QUEUED).count() == 1, "triaged only once"

    request = RecoveryCase.objects.get(pk=second.case.pk)
    assert request.pk != case.pk and request.reference != case.reference
    assert request.status == CaseStatus.MERGED and request.merged_into == case
    assert request.contact_email == "other.inbox@example.org"
    assert request.emails_tried == [ACCOUNT_EMAIL]
    assert request.description == "Still locked out"
    assert first.link_token != second.link_token
    assert case_claim_next(agent=agent) == case
    assert case_claim_next(agent=staff_member("b@desk.example", "Support agents")) is None


def test_auto_triage_deflects_the_wrong_email_case(
    john, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """The phone belongs to an account whose email the customer did not type: the account's
    phone gets the masked login email by SMS, its address the full one by email, and the case
    is resolved as wrong_email_hint_sent without reaching an agent."""
    with django_capture_on_commit_callbacks(execute=True):
        opened = case_open(
            contact_email="satoshi@gmail.com",
            contact_phone=ACCOUNT_PHONE,
            emails_tried=["nakamoto@gmx.net"],
        )

    case = RecoveryCase.objects.get(pk=opened.case.pk)
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT
    assert case.closed_at is not None and case.claimed_by is None
    assert case.matched_user == john
    assert list(case.events.values_list("type", flat=True)) == ["opened", "hint_sent", "queued"]
    # The requester's timeline reads as a request waiting for an agent.
    assert list(case.events.filter(visible_to_customer=True).values_list("type", flat=True)) == [
        "queued"
    ]

    assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE]
    assert "s***o@g***.net" in sms_outbox[0].body
    assert ACCOUNT_EMAIL not in sms_outbox[0].body
    hints = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
    assert len(hints) == 1 and ACCOUNT_EMAIL in hints[0].body
    # The address the customer typed gets only the status link, never the account's address.
    typed = [m for m in mailoutbox if m.to == ["satoshi@gmail.com"]]
    assert len(typed) == 1 and ACCOUNT_EMAIL not in typed[0].body
    assert len(mailoutbox) == 2
    hint_notices = Notification.objects.filter(template_key="support/login_email_hint")
    assert {(n.channel, n.recipient, n.status) for n in hint_notices} == {
        ("sms", ACCOUNT_PHONE, "sent"),
        ("email", ACCOUNT_EMAIL, "sent"),
    }
    assert case_claim_next(agent=staff_member("a@desk.example", "Support agents")) is None


@pytest.mark.parametrize(
    "submission",
    [
        pytest.param({"contact_email": "reach.me@example.org"}, id="no-phone-no-match"),
        pytest.param(
            {"contact_email": "reach.me@example.org", "emails_tried": [ACCOUNT_EMAIL]},
            id="no-phone-email-matches",
        ),
        pytest.param(
            {"contact_email": ACCOUNT_EMAIL, "contact_phone": ACCOUNT_PHONE},
            id="phone-and-right-email",
        ),
        pytest.param(
            {
                "contact_email": "new.inbox@example.org",
                "contact_phone": ACCOUNT_PHONE,
                "emails_tried": [ACCOUNT_EMAIL],
            },
            id="phone-and-right-email-tried",
        ),
        pytest.param(
            {"contact_email": "reach.me@example.org", "contact_phone": "+4917698765432"},
            id="phone-of-nobody",
        ),
    ],
)
def test_auto_triage_leaves_every_other_case_waiting_for_an_agent(
    john, submission, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """No phone, a phone of no account, or the right email with the phone: no hint is sent
    and the case waits in the queue."""
    with django_capture_on_commit_callbacks(execute=True):
        opened = case_open(**submission)

    case = RecoveryCase.objects.get(pk=opened.case.pk)
    assert case.status == CaseStatus.WAITING
    assert case.resolution == ""
    # A case that matched an account notes for the agent what its data lets be proven.
    expected = ["opened", "triaged", "queued"] if case.matched_user else ["opened", "queued"]
    assert list(case.events.values_list("type", flat=True)) == expected
    assert sms_outbox == []
    assert [m.to for m in mailoutbox] == [[submission["contact_email"].lower()]]
    assert not Notification.objects.filter(template_key="support/login_email_hint").exists()
    assert case_claim_next(agent=staff_member("a@desk.example", "Support agents")) == case
