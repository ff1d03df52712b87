"""Cases waiting for the customer: reminders after 1 and 3 days, closed after 7, reopened
by the customer's answer; every message through the outbox."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from notifications.models import Notification
from support.models import CaseEvent, CasePriority, CaseStatus, RecoveryCase
from support.services.actions import case_ask_customer
from support.services.cases import case_customer_reply
from support.services.queue import case_claim_next
from support.tasks import cases_awaiting_customer_follow_up_task
from tests.support.conftest import waiting_case

pytestmark = pytest.mark.django_db


def run_follow_up(capture) -> dict:
    with capture(execute=True):
        return cases_awaiting_customer_follow_up_task.apply().get()


def test_reminders_then_closing_then_reopening_by_the_answer(
    agent, django_capture_on_commit_callbacks, mailoutbox
):
    """Day 1 and day 3 bring one reminder each (never twice), day 7 closes the case with
    a message that says how to go on; the customer's reply opens it again for the agents."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        case = waiting_case(contact_email="waits@example.org")
        case_claim_next(agent=agent)
        case_ask_customer(case_id=case.pk, agent=agent, canned="more_details")
    capture = django_capture_on_commit_callbacks

    def at(hours: float) -> dict:
        with time_machine.travel(start + timedelta(hours=hours), tick=False):
            return run_follow_up(capture)

    assert at(23) == {"reminded": 0, "closed": 0}
    assert at(25) == {"reminded": 1, "closed": 0}
    assert at(26) == {"reminded": 0, "closed": 0}, "one reminder per day, not per run"
    assert at(73) == {"reminded": 1, "closed": 0}
    assert at(100) == {"reminded": 0, "closed": 0}
    assert at(7 * 24 + 1) == {"reminded": 0, "closed": 1}
    case.refresh_from_db()
    assert case.status == CaseStatus.CANCELLED
    assert case.resolution == RecoveryCase.Resolution.NO_ANSWER

    sent = Notification.objects.filter(recipient="waits@example.org").order_by("pk")
    keys = [n.template_key for n in sent]
    assert keys.count("support/case_reminder") == 2
    assert keys[-1] == "support/case_closed_no_answer"
    subjects = [m.subject for m in mailoutbox]
    assert sum("waiting for your answer" in s for s in subjects) == 2
    assert any("was closed" in s for s in subjects)
    assert "reply on your status page" in mailoutbox[-1].body
    types = list(case.events.values_list("type", flat=True))
    assert types.count(CaseEvent.Type.REMINDER_SENT) == 2
    assert CaseEvent.Type.AUTO_CLOSED in types

    with time_machine.travel(start + timedelta(days=8), tick=False):
        case_customer_reply(case=case, message="Sorry, I was travelling. My old number is …")
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING and case.resolution == ""
    assert case.priority == CasePriority.HIGH, "the late answer goes ahead of new arrivals"
    assert case.events.filter(type=CaseEvent.Type.REOPENED).exists()


def test_an_answer_in_time_stops_the_reminders(agent, django_capture_on_commit_callbacks):
    """A case the customer answered is back in the queue: no reminder, no closing."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        case = waiting_case()
        case_claim_next(agent=agent)
        case_ask_customer(case_id=case.pk, agent=agent, message="Which phone did you use?")
        case_customer_reply(case=case, message="+49 151 …")
    with time_machine.travel(start + timedelta(days=8), tick=False):
        assert run_follow_up(django_capture_on_commit_callbacks) == {"reminded": 0, "closed": 0}
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING


def test_the_follow_up_runs_on_the_beat():
    """Celery beat runs the follow-up task regularly."""
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "support.tasks.cases_awaiting_customer_follow_up_task" in tasks


def test_the_customers_answer_puts_the_case_back_ahead_of_older_normal_cases(agent, other_agent):
    """Asked for more information, the customer answers: the case returns to the queue with
    high priority, so the next agent takes it before normal cases that waited longer."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        asked = waiting_case(contact_email="answers@example.org")
        case_claim_next(agent=agent)
        case_ask_customer(case_id=asked.pk, agent=agent, canned="more_details")
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        older = waiting_case(queued_at=start - timedelta(days=1))
        case_customer_reply(case=asked, message="My old number was +49 151 …")

    asked.refresh_from_db()
    assert asked.status == CaseStatus.WAITING
    assert asked.priority == CasePriority.HIGH
    assert case_claim_next(agent=other_agent) == asked
    assert case_claim_next(agent=agent) == older


def test_the_closing_email_tells_how_long_its_link_still_opens_the_page(
    agent, django_capture_on_commit_callbacks, mailoutbox, client
):
    """A closed case's page opens only `CASE_LINK_DAYS_AFTER_CLOSE` days more: the email
    that invites the reply says so, and its link indeed stops working after that."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        case = waiting_case(contact_email="waits@example.org")
        case_claim_next(agent=agent)
        case_ask_customer(case_id=case.pk, agent=agent, canned="more_details")
    closing = start + timedelta(days=settings.SUPPORT_AUTO_CLOSE_DAYS, hours=1)
    with time_machine.travel(closing, tick=False):
        assert run_follow_up(django_capture_on_commit_callbacks)["closed"] == 1

    body = mailoutbox[-1].body
    days = settings.CASE_LINK_DAYS_AFTER_CLOSE
    assert f"reply on your status page within {days} days" in body
    link = re.search(r"/recover/case/[A-Za-z0-9_-]{40,}/", body)
    assert link is not None
    with time_machine.travel(closing + timedelta(days=days, hours=1), tick=False):
        assert client.get(link.group(0)).status_code == 404
