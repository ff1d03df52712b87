"""The dismissed agent and the demoted supervisor.

A staff member signed in to the admin (password and authenticator) holds a case, or a
pending approval waits for them, when an operator takes their rights away: deactivates
the account, removes the staff flag or the role, or removes their authenticator (as a mass
2FA revocation does). The browser they signed in with is still open and they go on
clicking. The very next request of that session does nothing a support role allows.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.users import user_permissions_change
from support.models import CaseApproval, CaseEvent, CaseStatus, RecoveryCase
from tests.support.conftest import admin_client, claimed_case, email_change_approval, fresh_code

pytestmark = pytest.mark.django_db


def _change(
    user: User,
    *,
    is_active: bool = True,
    is_staff: bool = True,
    groups: list[Group] | None = None,
) -> None:
    """What the admin's account form does when an operator saves the new rights."""
    user_permissions_change(
        user=user,
        is_active=is_active,
        is_staff=is_staff,
        is_superuser=user.is_superuser,
        groups=list(user.groups.all()) if groups is None else groups,
        context=AuditContext(),
    )


DISMISSALS: dict[str, Callable[[User], None]] = {
    "deactivated": lambda user: _change(user, is_active=False),
    "no longer staff": lambda user: _change(user, is_staff=False),
    "role removed": lambda user: _change(user, groups=[]),
    "authenticator removed": lambda user: TOTPDevice.objects.filter(user=user).delete() and None,
}


@pytest.mark.parametrize("dismissal", sorted(DISMISSALS))
def test_a_dismissed_agent_cannot_go_on_with_the_case_they_held(agent: User, dismissal: str):
    """Their case page, a note, giving the case back and taking the next one: none of them
    shows the case or writes anything."""
    client = admin_client(agent)
    case = claimed_case(agent)
    RecoveryCase.objects.create(
        reference="RC-NEXT-0001", status=CaseStatus.WAITING, contact_email="next@example.org"
    )
    work = reverse("admin:support_case_work", args=[case.pk])
    assert client.get(work).status_code == 200
    events_before = CaseEvent.objects.count()

    DISMISSALS[dismissal](agent)

    page = client.get(work)
    assert page.status_code in (302, 403), page.status_code
    assert case.reference not in page.content.decode()
    for data in (
        {"action": "note", "note": "still here"},
        {"action": "release", "reason": "bye"},
    ):
        assert client.post(work, data).status_code in (302, 403)
    assert client.post(reverse("admin:support_take_next")).status_code in (302, 403)
    assert CaseEvent.objects.count() == events_before
    assert not RecoveryCase.objects.filter(reference="RC-NEXT-0001", claimed_by=agent).exists()


@pytest.mark.parametrize("dismissal", sorted(DISMISSALS))
def test_a_demoted_supervisor_decides_no_approval(agent: User, supervisor: User, dismissal: str):
    """The approvals page and a decision posted with a valid fresh code both fail."""
    client = admin_client(supervisor)
    approval = email_change_approval(agent, 1)
    code = fresh_code(supervisor)

    DISMISSALS[dismissal](supervisor)

    response = client.post(
        reverse("admin:support_approvals"),
        {"action": "approve", "approval_id": approval.pk, "otp_code": code, "confirmed": "on"},
    )
    assert response.status_code in (302, 403)
    approval.refresh_from_db()
    assert approval.decided_at is None
    assert CaseApproval.objects.filter(decided_at__isnull=False).count() == 0
