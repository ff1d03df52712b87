"""The account taker whose email change a supervisor approves as the owner says "not me".

The attacker talked an agent into a change of login email to their own address; it waits
for a supervisor. The owner reads a notice and confirms "this wasn't me" at the very moment
a supervisor approves the change. The freeze must stop the change: an approval decided at
the same instant must not start its waiting period after the freeze ended it, or the
change would apply once support clears the freeze.
"""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from accounts.models import SecurityEvent
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.tokens import not_me_link_find, not_me_link_issue
from notifications.models import Notification
from recovery.services import account_freeze
from support.models import CaseApproval, EmailChange
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from support.services import actions
from support.services.queue import CaseActionError
from tests.concurrency import in_thread, until_lock_waiters
from tests.support.conftest import email_change_approval, staff_member

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_approval_at_the_instant_of_the_freeze_does_not_revive_the_change():
    """The freeze has ended the change but not committed yet when the supervisor approves;
    once it commits, the approval is refused in words, the change stays cancelled and no
    "email change scheduled" notice is queued."""
    agent = staff_member("agent.freeze@desk.example", AGENTS_GROUP)
    supervisor = staff_member("super.freeze@desk.example", SUPERVISORS_GROUP)
    approval = email_change_approval(agent, 0)
    assert approval.email_change is not None
    user = approval.email_change.user
    event = security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    link = not_me_link_find(token=not_me_link_issue(user=user, security_event=event))
    assert link is not None

    frozen, commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def owner() -> None:
        try:
            with transaction.atomic():
                account_freeze(link=link, context=AuditContext())
                frozen.set()
                assert commit.wait(timeout=30)
        finally:
            frozen.set()

    def approver() -> str:
        try:
            actions.case_approval_decide(
                approval_id=approval.pk, supervisor=supervisor, approve=True
            )
        except CaseActionError as exc:
            return str(exc)
        return "approved"

    owner_thread = in_thread(owner, outcome, "owner")
    assert frozen.wait(timeout=30)
    approver_thread = in_thread(approver, outcome, "result")
    until_lock_waiters(1, unless_ended=approver_thread)
    commit.set()
    owner_thread.join(timeout=30)
    approver_thread.join(timeout=30)

    assert approval.email_change is not None
    change = EmailChange.objects.get(pk=approval.email_change.pk)
    assert change.status == EmailChange.Status.CANCELLED
    assert change.effective_at is None and change.cancel_token_hash == ""
    assert outcome["result"] == "This email change is no longer waiting for approval."
    assert not Notification.objects.filter(template_key="support/email_change_scheduled").exists()
    assert not CaseApproval.objects.filter(pk=approval.pk, approved=True).exists()
