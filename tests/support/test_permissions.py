"""Who reaches which support page or action: a matrix of roles by URLs, checked on the server.

Setup for every cell: the holder has claimed case A (matched to a customer account, with an
uploaded evidence file); case W waits in the queue; nothing else is open.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import Notification
from support.models import CaseEvent, CaseStatus, RecoveryCase
from tests.factories import UserFactory
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    PNG,
    admin_client,
    claimed_case,
    customer_client,
    password_only_client,
    png_upload,
    staff_member,
    waiting_case,
)

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@dataclass
class World:
    holder: User
    other_agent: User
    supervisor: User
    case: RecoveryCase
    waiting: RecoveryCase
    evidence_id: int

    def url(self, endpoint: str) -> tuple[str, str, dict]:
        """(method, path, data) of an endpoint, for this world's cases."""
        case_id = self.case.pk
        return {
            "queue": ("get", reverse("admin:support_queue"), {}),
            "take_next": ("post", reverse("admin:support_take_next"), {}),
            "case_page": ("get", reverse("admin:support_case_work", args=[case_id]), {}),
            "action": (
                "post",
                reverse("admin:support_case_work", args=[case_id]),
                {"action": "release", "reason": "Needs a Portuguese speaker"},
            ),
            "approvals": ("get", reverse("admin:support_approvals"), {}),
            "dashboard": ("get", reverse("admin:support_dashboard"), {}),
            "evidence": (
                "get",
                reverse("admin:support_evidence", args=[case_id, self.evidence_id]),
                {},
            ),
            "changelist": ("get", reverse("admin:support_recoverycase_changelist"), {}),
        }[endpoint]


@pytest.fixture
def world(agent, other_agent, supervisor, account) -> World:
    case = claimed_case(
        agent,
        contact_email="new.inbox@example.org",
        emails_tried=[ACCOUNT_EMAIL],
        description="Lost my phone and my inbox.",
        files=[png_upload()],
    )
    return World(
        holder=agent,
        other_agent=other_agent,
        supervisor=supervisor,
        case=case,
        waiting=waiting_case(),
        evidence_id=case.evidence.get().pk,
    )


def client_for(role: str, world: World) -> Client:
    if role == "anonymous":
        return Client()
    if role == "customer":
        customer = UserFactory(email="another.customer@example.com")
        two_factor_provision(user=customer, context=AuditContext(), notify=False)
        return customer_client(customer)
    if role == "holder_without_otp":
        return password_only_client(world.holder)
    if role == "supervisor_without_otp":
        return password_only_client(world.supervisor)
    return admin_client(
        {"other_agent": world.other_agent, "holder": world.holder, "supervisor": world.supervisor}[
            role
        ]
    )


def snapshot() -> dict:
    """Everything an allowed request could change."""
    return {
        "cases": list(
            RecoveryCase.objects.order_by("pk").values_list(
                "pk", "status", "claimed_by_id", "lease_expires_at", "priority", "resolution"
            )
        ),
        "events": list(CaseEvent.objects.order_by("pk").values_list("pk", "type", "actor_id")),
        "notifications": Notification.objects.count(),
    }


REFUSED_TO_LOGIN = ["anonymous", "customer", "holder_without_otp", "supervisor_without_otp"]
ENDPOINTS = [
    "queue",
    "take_next",
    "case_page",
    "action",
    "approvals",
    "dashboard",
    "evidence",
    "changelist",
]
# role -> endpoint -> (status, where a redirect goes, whether state may change)
EXPECTED: dict[str, dict[str, tuple[int, str | None, bool]]] = {
    **{role: {e: (302, LOGIN, False) for e in ENDPOINTS} for role in REFUSED_TO_LOGIN},
    # A case someone else holds answers as a case that does not exist.
    "other_agent": {
        "queue": (200, None, False),
        "take_next": (302, "work:waiting", True),
        "case_page": (404, None, False),
        "action": (404, None, False),
        "approvals": (403, None, False),
        "dashboard": (403, None, False),
        "evidence": (404, None, False),
        "changelist": (302, "queue", False),
    },
    "holder": {
        "queue": (200, None, False),
        "take_next": (302, "work:case", True),
        "case_page": (200, None, False),
        "action": (302, "queue", True),
        "approvals": (403, None, False),
        "dashboard": (403, None, False),
        "evidence": (200, None, False),
        "changelist": (302, "queue", False),
    },
    "supervisor": {
        "queue": (200, None, False),
        "take_next": (302, "work:waiting", True),
        "case_page": (200, None, False),
        # Supervisors see every case but act only on cases they hold: the service refuses.
        "action": (302, "work:case", False),
        "approvals": (200, None, False),
        "dashboard": (200, None, False),
        "evidence": (200, None, False),
        "changelist": (200, None, False),
    },
}
MATRIX = [
    pytest.param(role, endpoint, *EXPECTED[role][endpoint], id=f"{role}-{endpoint}")
    for role in EXPECTED
    for endpoint in ENDPOINTS
]


def expected_location(where: str, world: World) -> str:
    if where == LOGIN:
        return LOGIN
    if where == "queue":
        return reverse("admin:support_queue")
    target = world.case if where == "work:case" else world.waiting
    return reverse("admin:support_case_work", args=[target.pk])


@pytest.mark.parametrize(("role", "endpoint", "status", "redirect", "may_change"), MATRIX)
def test_permission_matrix(world, role, endpoint, status, redirect, may_change):
    """Each role gets exactly the expected answer for each support URL, and a refused
    request leaves cases, timelines and the outbox as they were."""
    client = client_for(role, world)
    method, path, data = world.url(endpoint)
    before = snapshot()

    response = getattr(client, method)(path, data)

    assert response.status_code == status, (role, endpoint)
    if redirect is not None:
        location = response["Location"]
        if redirect == LOGIN:
            assert location.startswith(LOGIN + "?next="), location
        else:
            assert location == expected_location(redirect, world)
    if not may_change:
        assert snapshot() == before, f"{role} changed state through {endpoint}"
    if status == 200 and endpoint == "evidence":
        assert b"".join(response.streaming_content) == PNG
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "sandbox"
    if status == 200 and endpoint == "case_page":
        assert world.case.reference in response.content.decode()
    if (role, endpoint) == ("holder", "action"):
        world.case.refresh_from_db()
        assert world.case.status == CaseStatus.WAITING
        assert world.case.events.filter(type=CaseEvent.Type.RELEASED).count() == 1
    if (role, endpoint) in {("other_agent", "take_next"), ("supervisor", "take_next")}:
        world.waiting.refresh_from_db()
        assert world.waiting.status == CaseStatus.CLAIMED
        world.case.refresh_from_db()
        assert world.case.claimed_by == world.holder, "the held case stays with its holder"
    if (role, endpoint) == ("supervisor", "action"):
        page = client.get(response["Location"]).content.decode()
        assert "This case is held by another agent." in page


def test_a_missing_case_answers_404_to_staff(world):
    """An unknown case id: 404 for the page and for an action, even for a supervisor."""
    client = admin_client(world.supervisor)
    missing = reverse("admin:support_case_work", args=[world.case.pk + 1000])
    assert client.get(missing).status_code == 404
    assert client.post(missing, {"action": "release", "reason": "x"}).status_code == 404


def test_a_staff_member_without_a_role_reaches_no_support_page(world):
    """Staff who are neither agents nor supervisors get 403 everywhere in the queue; the
    queue itself, where every staff member lands after sign-in, sends them to the index."""
    outsider = staff_member("outsider@desk.example", "Support agents")
    outsider.groups.clear()
    client = admin_client(outsider)
    before = snapshot()
    for endpoint in ("take_next", "case_page", "action", "evidence"):
        method, path, data = world.url(endpoint)
        assert getattr(client, method)(path, data).status_code == 403, endpoint
    method, path, data = world.url("queue")
    assert getattr(client, method)(path, data)["Location"] == reverse("admin:index")
    assert snapshot() == before
