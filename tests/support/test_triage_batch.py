"""Triage by batch: a few statements for many cases, and the same results as one at a time."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache

from accounts.models import User
from notifications.models import Notification
from support.models import CaseEvent, CasePriority, RecoveryCase
from support.services.cases import TRIAGE_DUE_KEY, case_open, case_triage, cases_triage_due
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.recovery.self_service_helpers import customer_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def self_service_triage(settings):
    settings.SELF_SERVICE_TRIAGE = True


def open_mixed_requests(tag: str, copies: int) -> list[RecoveryCase]:
    """`copies` of each kind of request triage tells apart, for accounts named by `tag`.

    Per copy: the wrong email typed with the account's phone (the hint); contact data no
    account has; an account whose data allows self-service; an account with no phone and
    no verified email (agents, noting what it could prove); a second request for that
    account joining its open case with a higher priority; a "this wasn't me" report.
    """
    cases = []
    offset = {"a": 0, "b": 50}[tag]
    for i in range(copies):
        n = offset + i
        hinted = UserFactory(email=f"{tag}{i}.real@example.com", phone=f"+491511000{n:04d}")
        assert hinted.phone is not None
        cases.append(
            case_open(
                contact_email=f"{tag}{i}.typed@example.net",
                contact_phone=hinted.phone,
                description="I cannot sign in.",
            ).case
        )
        cases.append(
            case_open(
                contact_email=f"{tag}{i}.nobody@example.org",
                contact_phone=f"+491522000{n:04d}",
                description="Help.",
            ).case
        )
        self_served, _codes = customer_account(
            email=f"{tag}{i}.self@example.com", phone=f"+491513000{n:04d}"
        )
        cases.append(
            case_open(contact_email=self_served.email, description="Lost my phone app.").case
        )
        bare = UserFactory(email=f"{tag}{i}.bare@example.com", phone=None)
        EmailAddress.objects.filter(user=bare).update(verified=False)
        cases.append(case_open(contact_email=bare.email, description="Locked out.").case)
        cases.append(
            case_open(
                contact_email=bare.email,
                description="Still locked out.",
                priority=CasePriority.HIGH,
            ).case
        )
        reporter = UserFactory(email=f"{tag}{i}.reporter@example.com", phone=None)
        cases.append(
            case_open(
                contact_email=reporter.email,
                kind=RecoveryCase.Kind.NOT_ME,
                priority=CasePriority.URGENT,
                matched_user=reporter,
            ).case
        )
    return cases


def sent_to_account(notice: Notification, account: User | None) -> bool:
    """Whether a case's notice went to its account's address on file for the channel."""
    assert account is not None, "a case's notices go to the account it matched"
    return notice.recipient == (account.email if notice.channel == "email" else account.phone)


def what_triage_wrote(cases: list[RecoveryCase]) -> list[dict[str, Any]]:
    """Per request, what customers and staff see of its triage, with the names of its own
    accounts, references and times taken out (the two sets differ in those only)."""
    position = {case.reference: i for i, case in enumerate(cases)}
    seen = []
    for case in cases:
        case.refresh_from_db()
        events = [
            (
                event.type,
                event.visible_to_customer,
                event.message,
                event.actor_id,
                {
                    key: position.get(value, value) if key == "request" else value
                    for key, value in event.details.items()
                },
            )
            for event in case.events.order_by("created_at", "id")
        ]
        notices = [
            (
                notice.channel,
                notice.template_key,
                notice.status,
                notice.language,
                notice.idempotency_key.replace(f"case:{case.pk}", "case"),
                sent_to_account(notice, case.matched_user),
                sorted(notice.context),
            )
            for notice in Notification.objects.filter(
                idempotency_key__startswith=f"case:{case.pk}:"
            ).order_by("pk")
        ]
        seen.append(
            {
                "status": case.status,
                "resolution": case.resolution,
                "priority": case.priority,
                "closed": case.closed_at is not None,
                "queued_after_opening": case.queued_at >= case.created_at,
                "joined": position.get(case.merged_into.reference) if case.merged_into else None,
                "events": events,
                "notices": notices,
            }
        )
    return seen


def test_a_batch_of_mixed_requests_is_triaged_as_one_at_a_time_would():
    one_at_a_time = open_mixed_requests("a", copies=2)
    for case in one_at_a_time:
        case_triage(case_id=case.pk)
    batched = open_mixed_requests("b", copies=2)

    cases_triage_due()

    expected = what_triage_wrote(one_at_a_time)
    assert [case["resolution"] for case in expected[:4]] == [
        RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT,
        "",
        RecoveryCase.Resolution.SELF_SERVICE_OFFERED,
        "",
    ], "every kind of outcome is in the comparison"
    assert expected[3]["priority"] == CasePriority.HIGH, "the joining request raised it"
    assert what_triage_wrote(batched) == expected


@pytest.mark.parametrize("copies", [1, 8])
def test_a_batch_takes_the_same_few_queries_whatever_its_size(
    copies, django_assert_max_num_queries
):
    open_mixed_requests("a", copies=copies)
    # Locking the cases and the cases they joined, what the accounts allow (three reads),
    # the hints written and read back, three status updates and a priority, the events,
    # the status-link emails; and the transaction's savepoint.
    with django_assert_max_num_queries(16):
        outcomes = cases_triage_due()
    assert outcomes == {
        "deflected": copies,
        "queued": 3 * copies,
        "self_service": copies,
        "joined": copies,
    }
    assert not RecoveryCase.objects.filter(status="new").exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_triaging_at_once_take_every_case_once():
    """Two workers start a triage at the same instant, in small batches: SKIP LOCKED gives
    them different cases, a joining request whose open case the other holds waits for it,
    and no case is triaged twice or left out."""
    copies = 4
    # A triage is on its way (the key is set): opening asks for none, the two workers do it.
    cache.set(TRIAGE_DUE_KEY, 1, timeout=60)
    cases = open_mixed_requests("a", copies=copies)

    first, second = run_together([lambda: cases_triage_due(batch_size=3)] * 2)

    together = Counter(first) + Counter(second)
    assert together == {
        "deflected": copies,
        "queued": 3 * copies,
        "self_service": copies,
        "joined": copies,
    }, (first, second)
    assert not RecoveryCase.objects.filter(status="new").exists()
    queued_events = Counter(
        CaseEvent.objects.filter(type=CaseEvent.Type.QUEUED).values_list("case_id", flat=True)
    )
    assert queued_events == {case.pk: 1 for case in cases}, "each request triaged once"
    hints = Notification.objects.filter(template_key="support/login_email_hint")
    assert hints.count() == 2 * copies, "one email and one SMS per wrong-email request"
