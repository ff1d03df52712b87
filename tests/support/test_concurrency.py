"""Many agents on one PostgreSQL queue at once: no case twice, never two cases per agent."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from support.models import OPEN_STATUSES, CaseEvent, CaseStatus, RecoveryCase
from support.roles import AGENTS_GROUP
from support.services import actions
from support.services.cases import case_open, case_reference_new
from support.services.queue import CaseActionError, case_claim_next
from tests.concurrency import post_together, run_together
from tests.factories import UserFactory
from tests.support.conftest import staff_member
from tests.timing import lift_rate_limits

pytestmark = pytest.mark.django_db(transaction=True)

AGENTS = 16
CASES = 2000


def outcome(function: Callable[[], object]) -> Callable[[], tuple[str, object]]:
    """Call and report ("ok", result) or ("error", CaseActionError message)."""

    def call() -> tuple[str, object]:
        try:
            return ("ok", function())
        except CaseActionError as exc:
            return ("error", str(exc))

    return call


def waiting_cases(count: int) -> list[int]:
    """Insert `count` waiting cases in one statement; returns their ids."""
    now = timezone.now()
    references: set[str] = set()
    while len(references) < count:
        references.add(case_reference_new())
    created = RecoveryCase.objects.bulk_create(
        RecoveryCase(
            reference=reference,
            status=CaseStatus.WAITING,
            contact_email=f"waiting{i}@example.org",
            queued_at=now,
        )
        for i, reference in enumerate(sorted(references))
    )
    return [case.pk for case in created]


def test_sixteen_agents_drain_two_thousand_cases_each_claimed_exactly_once(monkeypatch):
    """16 agents, each in its own thread and connection, take next and close the case until
    the queue is empty: every case is claimed exactly once, and no agent ever holds two cases
    (each claim is checked by its thread, a watcher samples the database throughout, and the
    one_active_claim_per_agent index guarantees it).

    Rejection notices are written to the outbox as usual; their delivery, a worker's job, is
    left out so that the numbers measure the queue."""
    agents = [staff_member(f"agent{i:02d}@desk.example", AGENTS_GROUP) for i in range(AGENTS)]
    case_ids = waiting_cases(CASES)
    handed_over = []
    monkeypatch.setattr(
        "notifications.services.notifications_deliver_due_request",
        lambda: handed_over.append(1),
    )
    done = threading.Event()

    def work(agent: User) -> tuple[list[int], float]:
        claimed: list[int] = []
        claim_seconds = 0.0
        while True:
            started = time.perf_counter()
            case = case_claim_next(agent=agent)
            claim_seconds += time.perf_counter() - started
            if case is None:
                return claimed, claim_seconds
            # What this agent was handed: a case claimed by them and no other in hand.
            assert (case.status, case.claimed_by_id) == (CaseStatus.CLAIMED, agent.pk)
            assert not claimed or claimed[-1] != case.pk
            claimed.append(case.pk)
            actions.case_reject(case_id=case.pk, agent=agent, reason="duplicate")

    def watch() -> tuple[int, int]:
        """Sample the claims every 20 ms: the largest number of cases one agent held."""
        most, samples = 0, 0
        while not done.is_set():
            rows = (
                RecoveryCase.objects.filter(status=CaseStatus.CLAIMED)
                .values("claimed_by")
                .annotate(n=Count("id"))
                .values_list("n", flat=True)
            )
            most = max([most, *rows])
            samples += 1
            done.wait(0.02)
        return most, samples

    def watch_and_close() -> tuple[int, int]:
        watched = watch()
        connection.close()  # the watcher thread's own connection
        return watched

    with ThreadPoolExecutor(max_workers=1) as watcher_pool:
        watcher = watcher_pool.submit(watch_and_close)
        started = time.perf_counter()
        try:
            results = run_together([partial(work, agent) for agent in agents])
        finally:
            elapsed = time.perf_counter() - started
            done.set()
        most_held, samples = watcher.result(timeout=10)

    all_claimed = [pk for claimed, _t in results for pk in claimed]
    assert len(all_claimed) == CASES
    assert sorted(all_claimed) == sorted(case_ids), "every case claimed, none twice"
    assert samples > 10 and most_held == 1, "no agent ever held two cases"
    per_case = Counter(
        dict(
            CaseEvent.objects.filter(type=CaseEvent.Type.CLAIMED)
            .values_list("case")
            .annotate(n=Count("id"))
            .values_list("case", "n")
        )
    )
    assert set(per_case) == set(case_ids)
    assert set(per_case.values()) == {1}
    assert RecoveryCase.objects.filter(status=CaseStatus.REJECTED).count() == CASES
    assert not RecoveryCase.objects.filter(status=CaseStatus.CLAIMED).exists()
    assert CaseEvent.objects.filter(type=CaseEvent.Type.REJECTED).count() == CASES
    assert len(handed_over) == CASES, "one rejection notice per case, each asking for the worker"

    claim_time = sum(t for _claimed, t in results)
    per_agent = sorted((len(claimed) for claimed, _t in results), reverse=True)
    print(
        f"\n[queue throughput] {AGENTS} agents drained {CASES} cases in {elapsed:.2f} s: "
        f"{CASES / elapsed:.0f} claims/s, each followed by a rejection; "
        f"mean claim latency {claim_time / CASES * 1000:.1f} ms; "
        f"cases per agent {per_agent[-1]}..{per_agent[0]}; watcher samples {samples}"
    )


def test_the_database_refuses_a_second_active_claim_for_one_agent():
    """The partial unique index stands even if code bypasses the services."""
    agent = staff_member("agent@desk.example", AGENTS_GROUP)
    first, second = waiting_cases(2)
    RecoveryCase.objects.filter(pk=first).update(status=CaseStatus.CLAIMED, claimed_by=agent)
    with pytest.raises(IntegrityError, match="one_active_claim_per_agent"), transaction.atomic():
        RecoveryCase.objects.filter(pk=second).update(status=CaseStatus.CLAIMED, claimed_by=agent)
    assert RecoveryCase.objects.get(pk=second).status == CaseStatus.WAITING


def test_two_agents_acting_on_one_case_at_once_only_the_holder_wins():
    """Agent A holds the case; A and B reject it in the same instant (10 rounds): A's
    rejection goes through, B is refused with a clear message, the timeline has one
    rejection."""
    a = staff_member("anna@desk.example", AGENTS_GROUP)
    b = staff_member("bert@desk.example", AGENTS_GROUP)
    for _round in range(10):
        (case_id,) = waiting_cases(1)
        claimed = case_claim_next(agent=a)
        assert claimed is not None and claimed.pk == case_id

        results = run_together(
            [
                outcome(partial(actions.case_reject, case_id=case_id, agent=a, reason="duplicate")),
                outcome(partial(actions.case_reject, case_id=case_id, agent=b, reason="duplicate")),
            ]
        )

        assert results[0][0] == "ok"
        assert results[1][0] == "error"
        assert results[1][1] in (
            "This case is held by another agent.",
            "This case is not claimed by you any more.",
        )
        case = RecoveryCase.objects.get(pk=case_id)
        assert case.status == CaseStatus.REJECTED
        rejections = case.events.filter(type=CaseEvent.Type.REJECTED)
        assert list(rejections.values_list("actor", flat=True)) == [a.pk]


def test_one_agent_closing_a_case_twice_at_once_only_one_action_wins():
    """A double submit of two different closing actions by the holder: the row lock makes
    exactly one win; the other is told the case is no longer theirs."""
    agent = staff_member("anna@desk.example", AGENTS_GROUP)
    winners: Counter[str] = Counter()
    for _round in range(10):
        (case_id,) = waiting_cases(1)
        case_claim_next(agent=agent)

        results = run_together(
            [
                outcome(
                    partial(actions.case_reject, case_id=case_id, agent=agent, reason="duplicate")
                ),
                outcome(partial(actions.case_escalate, case_id=case_id, agent=agent, note="odd")),
            ]
        )

        kinds = [kind for kind, _value in results]
        assert sorted(kinds) == ["error", "ok"]
        error = next(value for kind, value in results if kind == "error")
        assert error == "This case is not claimed by you any more."
        case = RecoveryCase.objects.get(pk=case_id)
        closing = case.events.filter(type__in=[CaseEvent.Type.REJECTED, CaseEvent.Type.ESCALATED])
        assert closing.count() == 1
        winner = closing.get().type
        assert case.status == {"rejected": "rejected", "escalated": "escalated"}[winner]
        winners[winner] += 1
    assert sum(winners.values()) == 10


def test_the_same_agent_taking_next_twice_at_once_gets_one_case():
    """Eight simultaneous Take next clicks of one agent (10 rounds): all of them answer with
    the same case, only one claim is recorded, every other case keeps waiting."""
    agent = staff_member("anna@desk.example", AGENTS_GROUP)
    waiting_cases(30)
    for _round in range(10):
        results = run_together([lambda: case_claim_next(agent=agent)] * 8)

        held = RecoveryCase.objects.filter(claimed_by=agent, status=CaseStatus.CLAIMED)
        assert held.count() == 1
        case = held.get()
        assert set(results) == {case}
        assert case.events.filter(type=CaseEvent.Type.CLAIMED).count() == 1
        assert RecoveryCase.objects.filter(status=CaseStatus.CLAIMED).count() == 1
        actions.case_reject(case_id=case.pk, agent=agent, reason="duplicate")
    assert CaseEvent.objects.filter(type=CaseEvent.Type.CLAIMED).count() == 10
    assert RecoveryCase.objects.filter(status=CaseStatus.WAITING).count() == 20


def test_two_requests_for_one_account_at_once_leave_one_open_case():
    """Two help requests naming the same account arrive in the same instant (10 rounds):
    both customers get an answer (no error), and the account has exactly one open case; the
    other request is merged into it."""
    for round_ in range(10):
        user = UserFactory(email=f"same.account{round_}@example.com", phone=None)

        def request(n: int, user: User = user) -> int:
            return case_open(
                contact_email=f"requester{n}@example.org",
                emails_tried=[user.email],
                description=f"request {n}",
            ).case.pk

        results = run_together([partial(request, n) for n in range(2)])

        cases = RecoveryCase.objects.filter(pk__in=results)
        assert cases.count() == 2
        open_cases = cases.filter(status__in=OPEN_STATUSES)
        assert open_cases.count() == 1
        merged = cases.get(status=CaseStatus.MERGED)
        assert merged.merged_into == open_cases.get()
        assert open_cases.get().events.filter(type=CaseEvent.Type.JOINED).count() == 1


def test_two_help_forms_for_one_account_posted_at_once_leave_one_open_case(settings):
    """The same race through the form, each request in its own transaction (ATOMIC_REQUESTS),
    which the losing insert must leave usable (10 rounds): both customers get the page, the
    account has exactly one open case, and the other request joined it."""
    lift_rate_limits(settings, "recover_help")
    for round_ in range(10):
        user = UserFactory(email=f"same.form{round_}@example.com", phone=None)
        form = {
            "contact_email": "typed.wrong@example.net",
            "contact_phone": "",
            "emails_tried": user.email,
            "description": "I cannot sign in any more.",
        }

        statuses = post_together([Client(), Client()], reverse("recover_help"), form)

        assert statuses == [200, 200]
        cases = RecoveryCase.objects.filter(matched_user=user)
        assert cases.count() == 2
        opened = cases.get(status__in=OPEN_STATUSES)
        joined = cases.get(status=CaseStatus.MERGED)
        assert joined.merged_into == opened
        for case in (opened, joined):
            assert case.events.filter(type=CaseEvent.Type.OPENED).count() == 1
            assert case.links.count() == 1
        assert opened.events.filter(type=CaseEvent.Type.JOINED).count() == 1
