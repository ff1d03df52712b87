"""Single-use links under concurrency: N uses at the same instant give one success, N-1 refusals.

Real threads, each with its own PostgreSQL connection and its own browser session, post at
the same moment (a barrier), as two tabs or a double click would.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.hashing import HashPurpose, keyed_hash
from accounts.models import SecurityEvent
from accounts.services.audit import security_event_record
from accounts.services.tokens import not_me_link_issue
from notifications.models import Notification
from support.models import RecoveryCase, RecoveryLink
from support.services import case_open
from tests.concurrency import clients_holding, post_together
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 4


def test_simultaneous_not_me_confirmations_freeze_once_open_one_case_notify_once():
    """Four confirmations of one "this wasn't me" link: one freeze, one event, one case."""
    user = UserFactory.create()
    event = security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    token = not_me_link_issue(user=user, security_event=event)
    clients = clients_holding(f"/recover/not-me/{token}/", RACERS)

    statuses = post_together(clients, "/recover/not-me/", {})

    assert sorted(statuses) == [200] + [404] * (RACERS - 1)
    assert SecurityEvent.objects.filter(account_id=user.pk, type="account_frozen").count() == 1
    assert RecoveryCase.objects.filter(matched_user=user).count() == 1
    frozen_notices = Notification.objects.filter(
        account_id=user.pk, security_event__type="account_frozen"
    )
    assert frozen_notices.exists()
    assert frozen_notices.values("channel").distinct().count() == frozen_notices.count()


def test_simultaneous_password_sets_on_one_recovery_link_give_one_success():
    """Four password sets through one recovery link: one wins, three get a clean 404."""
    user = UserFactory.create()
    case = case_open(contact_email=user.email, matched_user=user).case
    token = secrets.token_urlsafe(32)
    RecoveryLink.objects.create(
        case=case,
        user=user,
        token_hash=keyed_hash(token, purpose=HashPurpose.RECOVERY_LINK),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    clients = clients_holding(f"/recover/reset/{token}/", RACERS)
    password = "a-fresh-and-long-passphrase-42"

    statuses = post_together(
        clients,
        "/recover/reset/",
        {"new_password1": password, "new_password2": password},
    )

    assert sorted(statuses) == [302] + [404] * (RACERS - 1)
    assert SecurityEvent.objects.filter(account_id=user.pk, type="password_reset").count() == 1
    user.refresh_from_db()
    assert user.check_password(password)
