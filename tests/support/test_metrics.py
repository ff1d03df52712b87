"""The support metrics against a seeded history whose answers are worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from accounts.models import SecurityEvent
from accounts.services.audit import security_event_record
from notifications.models import Notification
from support.models import CaseEvent, CasePriority, CaseStatus, RecoveryCase
from support.selectors import queue_stats
from support.services.cases import case_reference_new
from tests.incidents.helpers import bulk_customers
from tests.support.conftest import admin_client

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
R = RecoveryCase.Resolution


def seeded(
    *,
    priority=CasePriority.NORMAL,
    opened_h: float,
    closed_h: float | None = None,
    status=CaseStatus.RESOLVED,
    resolution="",
    merged_into=None,
) -> RecoveryCase:
    """A case opened `opened_h` hours before NOW and closed `closed_h` hours before it."""
    return RecoveryCase.objects.create(
        reference=case_reference_new(),
        priority=priority,
        status=status,
        resolution=resolution,
        contact_email="someone@example.org",
        created_at=NOW - timedelta(hours=opened_h),
        queued_at=NOW - timedelta(hours=opened_h),
        closed_at=None if closed_h is None else NOW - timedelta(hours=closed_h),
        merged_into=merged_into,
    )


def event(case, type, *, hours_before_now: float, actor=None, visible=False):
    return CaseEvent.objects.create(
        case=case,
        type=type,
        actor=actor,
        visible_to_customer=visible,
        created_at=NOW - timedelta(hours=hours_before_now),
    )


@pytest.fixture
def history(agent, other_agent):
    """Five requests in the window (one joined request on top, one case before it):

    A normal, 8 h to resolve, first answer after 1 h, re-authenticated by the agent;
    B high, 15 h (past its 8 h SLA), first answer after 3 h, rejected by the other agent;
    C automated (hint sent) in a second;
    D urgent, 1 h, first answer after 30 min, login email told by the agent, once reopened;
    F waiting, not answered; E joined A; G closed nine days ago.
    """
    T = CaseEvent.Type
    a = seeded(opened_h=10, closed_h=2, resolution=R.REAUTHENTICATED)
    event(a, T.CODE_SENT, hours_before_now=9, actor=agent, visible=True)
    event(a, T.REAUTHENTICATED, hours_before_now=2, actor=agent, visible=True)
    b = seeded(
        priority=CasePriority.HIGH,
        opened_h=20,
        closed_h=5,
        status=CaseStatus.REJECTED,
        resolution=R.REJECTED,
    )
    event(b, T.AGENT_MESSAGE, hours_before_now=17, actor=other_agent, visible=True)
    event(b, T.REJECTED, hours_before_now=5, actor=other_agent, visible=True)
    seeded(opened_h=30, closed_h=30 - 1 / 3600, resolution=R.WRONG_EMAIL_HINT_SENT)
    d = seeded(priority=CasePriority.URGENT, opened_h=4, closed_h=3, resolution=R.LOGIN_EMAIL_TOLD)
    event(d, T.REOPENED, hours_before_now=3.8)
    event(d, T.AGENT_MESSAGE, hours_before_now=3.5, actor=agent, visible=True)
    event(d, T.LOGIN_EMAIL_TOLD, hours_before_now=3, actor=agent, visible=True)
    seeded(opened_h=9, status=CaseStatus.MERGED, merged_into=a)
    seeded(opened_h=1, status=CaseStatus.WAITING)
    seeded(opened_h=240, closed_h=216, resolution=R.REAUTHENTICATED)


def test_queue_stats_json_matches_the_definitions(history, agent, other_agent):
    """Each figure of `queue_stats --json` equals the hand-worked answer of the history."""
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("queue_stats", "--json", stdout=out)
    stats = json.loads(out.getvalue())

    assert stats["requests"] == 5, "the joined request is part of A, not a request of its own"
    assert stats["deflected"] == 1 and stats["deflection_rate"] == 0.2
    assert stats["first_response_median_seconds"] == 3600  # 0.5 h, 1 h, 3 h
    assert stats["resolution_median_seconds"] == 8 * 3600  # 1 h, 8 h, 15 h: C left out
    assert stats["sla"]["normal"] == {"hours": 24, "closed": 1, "within": 1, "attainment": 1.0}
    assert stats["sla"]["high"] == {"hours": 8, "closed": 1, "within": 0, "attainment": 0.0}
    assert stats["sla"]["urgent"] == {"hours": 2, "closed": 1, "within": 1, "attainment": 1.0}
    assert stats["closed"] == 4 and stats["reopened"] == 1 and stats["reopen_rate"] == 0.25
    assert stats["per_agent"] == {
        agent.email: {"reauthenticated": 1, "login_email_told": 1, "total": 2},
        other_agent.email: {"rejected": 1, "total": 1},
    }
    assert stats["agent_resolutions_per_hour"] == 0.5  # A and D in the last 4 hours
    assert len(stats["hours"]) == len(stats["arrivals_hourly"]) == 24
    assert sum(stats["arrivals_hourly"]) == 4  # A, B, D, F opened within the last 24 hours
    assert sum(stats["resolutions_hourly"]) == 3  # A, B, D closed within the last 24 hours
    assert stats["resolutions_hourly"][-3] == 1, "A closed 2 hours ago, in the hour 10:00"
    assert stats["backlog"] == {"waiting/normal": 1}
    assert stats["oldest_waiting_seconds"] == 3600


def test_queue_stats_days_widens_the_window(history):
    """`--days 10` reaches case G, closed nine days ago, which the default week leaves out."""
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("queue_stats", "--json", "--days", "10", stdout=out)
    stats = json.loads(out.getvalue())
    assert stats["window_days"] == 10
    assert stats["closed"] == 5 and stats["sla"]["normal"]["closed"] == 2


def test_the_dashboard_shows_the_same_figures_in_words(history, supervisor):
    """The page words durations ("1 hour", "8 hours") and shows the rates and the axis."""
    with time_machine.travel(NOW, tick=False):
        html = admin_client(supervisor).get(reverse("admin:support_dashboard")).content.decode()
    html = html.replace("\xa0", " ")
    assert (
        '<tr id="stat-first-response"><th scope="row">First response (median)</th><td>1 hour'
        in html
    )
    assert "<td>8 hours</td>" in html
    assert "25 % (1/4)" in html and "20 % (1/5)" in html
    assert '<tr id="sla-high"><td>high</td><td>8 h</td><td>1</td><td>0 %</td></tr>' in html
    assert "13:00</text>" in html and "19:00</text>" in html, "the time axis names hours"


HELD_KEY = "security/two_factor_enabled"


@pytest.fixture
def held_flood(settings, django_capture_on_commit_callbacks):
    """Four customers "set up 2FA" at once past a burst threshold of two: the burst guard
    holds all four notices."""
    settings.BURST_GUARD_THRESHOLD = 2
    with django_capture_on_commit_callbacks(execute=False):
        for user in bulk_customers(4, prefix="flood"):
            security_event_record(user=user, type=SecurityEvent.Type.TWO_FACTOR_ENABLED)
    assert Notification.objects.filter(status=Notification.Status.HELD).count() == 4


def test_queue_stats_prints_backlog_and_figures_as_text(history, held_flood):
    """Without --json the command prints the backlog by status and priority, the rates, the
    resolutions per staff member and the held notifications as lines an operator reads."""
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("queue_stats", stdout=out)
    lines = [line.strip() for line in out.getvalue().replace("\xa0", " ").splitlines()]

    assert lines[0] == "Waiting: 1  oldest: 1 hour"
    assert lines[1].split() == ["waiting/normal", "1"]
    assert "SLA high      8 h: 0.0% of 1 closed by agents" in lines
    assert "Reopen rate: 25.0%  deflection: 20.0% (1 of 5 requests)  pending approvals: 0" in (
        lines
    )
    assert ["agent.anna@desk.example", "2"] in [line.split() for line in lines]
    assert "Held notifications: 4" in lines
    assert lines[-1].split() == [HELD_KEY, "4"]


def test_held_notifications_are_counted_on_the_dashboard_until_an_operator_decides(
    history, held_flood, supervisor
):
    """The dashboard counts the notices the burst guard holds, by type, linked to the outbox
    filtered to them; once an operator discards them the count is back to 0."""
    client = admin_client(supervisor)

    def held_row() -> str:
        with time_machine.travel(NOW, tick=False):
            html = client.get(reverse("admin:support_dashboard")).content.decode()
        return html.split('<tr id="stat-held">', 1)[1].split("</tr>", 1)[0]

    row = held_row()
    assert "Held notifications" in row
    assert '<a href="/admin/notifications/notification/?status__exact=held">4</a>' in row
    assert f"({HELD_KEY}: 4)" in row
    with time_machine.travel(NOW, tick=False):
        stats = queue_stats()
    assert stats["held_notifications"] == {HELD_KEY: 4}

    with time_machine.travel(NOW, tick=False):
        german = client.get(reverse("admin:support_dashboard"), HTTP_ACCEPT_LANGUAGE="de")
    assert "Zurückgehaltene Benachrichtigungen" in german.content.decode()

    call_command("notifications", "discard", "--type", HELD_KEY, stdout=StringIO())
    assert held_row().endswith("<td>0</td>")
