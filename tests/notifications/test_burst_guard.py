"""The burst guard: a flood of one security notice type is held until an operator decides."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import SecurityEvent
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.two_factor import two_factor_provision
from notifications.models import CONTEXT_REMOVED, DeliveryHold, Notification
from notifications.services import notification_sweep, notifications_deliver
from notifications.tasks import notification_deliver_task
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from tests.factories import UserFactory, admin_sign_in
from tests.incidents.helpers import bulk_customers

pytestmark = pytest.mark.django_db

THRESHOLD = 20
KEY = "security/two_factor_enabled"
HELD, SENT, PENDING = (Notification.Status.HELD, Notification.Status.SENT, "pending")


@pytest.fixture(autouse=True)
def _small_threshold(settings):
    settings.BURST_GUARD_THRESHOLD = THRESHOLD


def two_factor_set_up(users) -> None:
    for user in users:
        security_event_record(user=user, type=SecurityEvent.Type.TWO_FACTOR_ENABLED)


def statuses(key: str = KEY) -> dict[str, int]:
    rows = Notification.objects.filter(template_key=key).values_list("status", flat=True)
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def command(*args: str) -> str:
    out = StringIO()
    call_command("notifications", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def flood(django_capture_on_commit_callbacks):
    """25 customers (no phone: one email each) "set up 2FA" at once; nothing delivered yet."""
    users = bulk_customers(25)
    with django_capture_on_commit_callbacks(execute=False) as lost_tasks:
        two_factor_set_up(users)
    assert DeliveryHold.objects.filter(template_key=KEY).exists()
    return users, lost_tasks


def test_crossing_the_threshold_holds_the_type_and_what_is_still_waiting(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Past the threshold a DeliveryHold is created; rows already sent stay sent, rows still
    pending become held, and every later row of that type is written as held."""
    users = bulk_customers(25)
    with django_capture_on_commit_callbacks(execute=True):
        two_factor_set_up(users[:10])
    assert len(mailoutbox) == 10 and statuses() == {SENT: 10}

    with django_capture_on_commit_callbacks(execute=False) as waiting:
        two_factor_set_up(users[10:THRESHOLD])
        assert statuses() == {SENT: 10, PENDING: 10}
        assert not DeliveryHold.objects.exists(), "at the threshold, not yet over it"
        two_factor_set_up(users[THRESHOLD : THRESHOLD + 1])
        hold = DeliveryHold.objects.get()
        assert hold.template_key == KEY and hold.queued_in_window == THRESHOLD
        assert statuses() == {SENT: 10, HELD: 11}
        two_factor_set_up(users[THRESHOLD + 1 :])
    assert statuses() == {SENT: 10, HELD: 15}

    # The tasks queued for the rows that were pending run now: they send nothing.
    assert len(waiting) == 10
    for task in waiting:
        task()
    assert len(mailoutbox) == 10

    # Other notice types are not affected.
    with django_capture_on_commit_callbacks(execute=True):
        security_event_record(user=users[0], type=SecurityEvent.Type.PASSWORD_CHANGED)
    assert statuses("security/password_changed") == {SENT: 1}
    assert len(mailoutbox) == 11


def test_delivering_a_row_of_a_held_type_sends_nothing(mailoutbox):
    """A hold set by another process after a row was queued still stops its delivery."""
    user = bulk_customers(1)[0]
    two_factor_set_up([user])
    notice = Notification.objects.get()
    assert notice.status == PENDING
    DeliveryHold.objects.create(template_key=KEY)

    assert notifications_deliver(notification_ids=[notice.pk]) == 0
    assert notification_deliver_task.apply(args=(notice.pk,)).get() == 0
    notice.refresh_from_db()
    assert notice.status == HELD and notice.sent_at is None
    assert mailoutbox == []


def test_held_notices_are_never_sent_before_release(flood, mailoutbox):
    """Neither their own tasks, nor the sweep, nor direct delivery sends a held notice."""
    _users, lost_tasks = flood
    for task in lost_tasks:
        task()
    Notification.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert notification_sweep() == 0
    for pk in Notification.objects.values_list("pk", flat=True):
        assert notifications_deliver(notification_ids=[pk]) == 0
    assert mailoutbox == []
    assert statuses() == {HELD: 25}


def test_status_shows_the_hold_in_text_and_json(flood):
    """`notifications status` names the held type and how many wait, also as JSON."""
    text = command("status")
    assert f"HELD {KEY}: 25 waiting since" in text
    assert re.search(r"^\s*held: 25$", text, re.MULTILINE)
    summary = json.loads(command("status", "--json"))
    assert summary["by_status"] == {"held": 25}
    [hold] = summary["holds"]
    assert hold["template_key"] == KEY and hold["held"] == 25


def test_release_sends_the_held_notices_once(flood, mailoutbox, django_capture_on_commit_callbacks):
    """`release --type T` lifts the hold and, after commit, sends each held notice once."""
    users, _lost = flood
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        out = command("release", "--type", KEY)
        assert mailoutbox == [], "nothing leaves before the release commits"
    assert f"Released 25 {KEY} notices" in out
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in users)
    assert statuses() == {SENT: 25}
    assert not DeliveryHold.objects.filter(released_at__isnull=True).exists()
    assert "No notice type is held." in command("status")
    Notification.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert notification_sweep() == 0
    assert len(mailoutbox) == 25


def test_discard_keeps_the_rows_as_records_and_sends_nothing(
    flood, mailoutbox, django_capture_on_commit_callbacks
):
    """`discard --type T` lifts the hold and marks the held rows discarded, without sending."""
    _users, lost_tasks = flood
    with django_capture_on_commit_callbacks(execute=True):
        out = command("discard", "--type", KEY)
    assert f"Discarded 25 {KEY} notices" in out
    for task in lost_tasks:
        task()
    Notification.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert notification_sweep() == 0
    assert mailoutbox == []
    assert statuses() == {Notification.Status.DISCARDED: 25}
    assert {n.context["not_me_token"] for n in Notification.objects.all()} == {CONTEXT_REMOVED}, (
        "no link kept in the rows"
    )
    assert not DeliveryHold.objects.filter(released_at__isnull=True).exists()


def test_after_a_release_only_new_notices_count_towards_the_next_burst(
    flood, mailoutbox, django_capture_on_commit_callbacks
):
    """The released notices do not trip the guard again; a fresh burst after the release does."""
    with django_capture_on_commit_callbacks(execute=True):
        command("release", "--type", KEY)
    more = bulk_customers(THRESHOLD + 1, prefix="later")
    with django_capture_on_commit_callbacks(execute=True):
        two_factor_set_up(more[:THRESHOLD])
    assert statuses() == {SENT: 25 + THRESHOLD}, "the 25 released ones are not counted again"
    with django_capture_on_commit_callbacks(execute=True):
        two_factor_set_up(more[THRESHOLD:])
    assert DeliveryHold.objects.filter(template_key=KEY, released_at__isnull=True).exists()
    assert statuses()[HELD] == 1


@pytest.mark.parametrize("verb", ["release", "discard"])
def test_release_and_discard_need_a_type(flood, verb):
    """An operator must name the type; nothing changes otherwise."""
    with pytest.raises(CommandError, match="needs --type"):
        command(verb)
    assert statuses() == {HELD: 25}


def test_a_campaign_over_more_users_than_the_threshold_is_not_held(
    settings, mailoutbox, django_capture_on_commit_callbacks
):
    """A declared revocation campaign sends to everyone it covers, even with a hold elsewhere."""
    settings.REVOKE_CONFIRM_THRESHOLD = 5
    users = bulk_customers(3 * THRESHOLD)
    DeliveryHold.objects.create(template_key=KEY)
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "revoke_2fa",
            "--all",
            "--reason",
            "Seed leak",
            "--confirm",
            str(len(users)),
            "--batch-size",
            "25",
            stdout=StringIO(),
        )
    assert list(DeliveryHold.objects.values_list("template_key", flat=True)) == [KEY]
    assert statuses("accounts/campaign_revocation") == {SENT: len(users)}
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in users)


def _staff_member(group: str):
    user = UserFactory.create(is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    client = Client()
    response = admin_sign_in(client, user)
    assert response.status_code == 302
    return client


def test_supervisors_see_a_red_banner_in_the_admin_while_a_type_is_held():
    """Supervisors (and only they) see #delivery-hold-banner naming the held type."""
    supervisor, agent = _staff_member(SUPERVISORS_GROUP), _staff_member(AGENTS_GROUP)
    page = supervisor.get("/admin/")
    assert page.status_code == 200
    assert 'id="delivery-hold-banner"' not in page.content.decode()

    DeliveryHold.objects.create(template_key=KEY)
    page = supervisor.get("/admin/").content.decode()
    assert 'id="delivery-hold-banner"' in page
    banner = page.split('id="delivery-hold-banner"', 1)[1].split("</div>", 1)[0]
    assert KEY in banner and "release --type" in banner
    assert (
        'id="delivery-hold-banner"'
        in supervisor.get("/admin/notifications/notification/").content.decode()
    )
    assert 'id="delivery-hold-banner"' not in agent.get("/admin/").content.decode()
