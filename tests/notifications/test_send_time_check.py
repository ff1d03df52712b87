"""The send-time check: a security notice whose account does not show the change is held."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.two_factor import backup_codes_regenerate, two_factor_provision
from accounts.services.users import user_phone_change
from notifications.models import SUSPECT_PREFIX, DeliveryHold, Notification
from notifications.selectors import delivery_holds_active, notification_status_summary
from support.roles import SUPERVISORS_GROUP
from tests.factories import UserFactory, totp_code
from tests.incidents.helpers import bulk_customers

# Each test commits for real: "before" is the state before the transaction of the event,
# which only a committed earlier transaction can show.
pytestmark = pytest.mark.django_db(transaction=True)

ENABLED = SecurityEvent.Type.TWO_FACTOR_ENABLED
KEY = f"security/{ENABLED}"
HELD, SENT = Notification.Status.HELD, Notification.Status.SENT


def provisioned(user: User):
    """A user with an authenticator set up for real (its notices sent), in its own transaction."""
    device, codes = two_factor_provision(user=user, context=AuditContext())
    return device, codes


def the_bug(user: User) -> SecurityEvent:
    """What the exchange's bug did: a "2FA changed" event for an account nothing happened to."""
    with transaction.atomic():
        return security_event_record(user=user, type=ENABLED)


def test_a_notice_whose_event_is_a_lie_is_held_with_an_alert_and_not_sent(mailoutbox, sms_outbox):
    """The account's factors equal the "before" of the event: its email and SMS are held as
    suspect, nothing reaches the customer, supervisors and operators see it."""
    user = UserFactory.create()
    provisioned(user)
    assert [m.to for m in mailoutbox] == [[user.email]], "the genuine set-up was told"
    mailoutbox.clear()
    sms_outbox.clear()

    event = the_bug(user)

    notices = Notification.objects.filter(security_event=event)
    assert notices.count() == 2
    assert set(notices.values_list("status", flat=True)) == {HELD}
    assert all(n.last_error.startswith(SUSPECT_PREFIX) for n in notices)
    assert mailoutbox == [] and sms_outbox == []
    assert KEY in delivery_holds_active()
    assert notification_status_summary()["suspect"] == {KEY: 2}
    out = StringIO()
    call_command("notifications", "status", stdout=out)
    assert f"SUSPECT {KEY}: 2 held" in out.getvalue()
    # The event keeps keyed hashes of the state, never the values themselves.
    state = SecurityEvent.objects.get(pk=event.pk).details["state"]
    assert state["before"] == state["after"]
    assert user.phone is not None
    assert user.email not in json.dumps(state) and user.phone not in json.dumps(state)


def test_a_release_cannot_send_a_lie_and_a_discard_clears_the_alert(mailoutbox):
    """Released suspects go through the same check again and are held again; discarding
    them ends the alert."""
    user = UserFactory.create(phone=None)
    provisioned(user)
    mailoutbox.clear()
    the_bug(user)

    call_command("notifications", "release", "--type", KEY, stdout=StringIO())
    assert mailoutbox == []
    assert Notification.objects.filter(template_key=KEY, status=HELD).count() == 1
    call_command("notifications", "discard", "--type", KEY, stdout=StringIO())
    assert KEY not in delivery_holds_active()


def test_genuine_changes_are_sent(mailoutbox, sms_outbox):
    """Real changes of factors and phone, right after a lie on another account, are sent."""
    liar_victim, customer = UserFactory.create(), UserFactory.create()
    provisioned(liar_victim)
    device, _codes = provisioned(customer)
    mailoutbox.clear()
    sms_outbox.clear()
    the_bug(liar_victim)

    assert backup_codes_regenerate(user=customer, code=totp_code(device), context=AuditContext())
    old_phone = customer.phone
    assert old_phone is not None
    user_phone_change(user=customer, new_phone="+4915199990000", context=AuditContext())

    subjects = sorted(m.subject for m in mailoutbox)
    assert subjects == [
        "[Recovery Desk] New backup codes were created",
        "[Recovery Desk] The phone number of your account was changed",
    ]
    assert {m.to[0] for m in mailoutbox} == {customer.email}
    assert sorted(s.to for s in sms_outbox) == sorted([old_phone, old_phone, "+4915199990000"])
    genuine = Notification.objects.filter(account_id=customer.pk).exclude(
        template_key="security/two_factor_enabled"
    )
    assert set(genuine.values_list("status", flat=True)) == {SENT}


def test_a_password_change_is_sent(mailoutbox):
    """A new password, then its event (as allauth's signal records it): the notice is sent."""
    user = UserFactory.create(phone=None)
    provisioned(user)
    mailoutbox.clear()
    user.refresh_from_db()
    user.set_password("another-long-passphrase-42")
    user.save(update_fields=["password"])
    with transaction.atomic():
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    assert [m.subject for m in mailoutbox] == ["[Recovery Desk] Your password was changed"]


def test_a_flood_of_false_2fa_alarms_is_held_and_stops_the_type(settings, mailoutbox):
    """The false-alarm incident in small: a bug "changes" 2FA for 30 customers whose 2FA is
    untouched. Not one notice is sent: the first ones are held as suspect at delivery, and as
    they stay in the burst guard's count, the guard then holds the whole type."""
    settings.BURST_GUARD_THRESHOLD = 20
    users = bulk_customers(30)
    for user in users:
        two_factor_provision(user=user, context=AuditContext(), notify=False)

    for user in users:
        the_bug(user)

    assert mailoutbox == []
    lies = Notification.objects.filter(template_key=KEY)
    assert lies.count() == 30
    assert set(lies.values_list("status", flat=True)) == {HELD}
    suspect = lies.filter(last_error__startswith=SUSPECT_PREFIX).count()
    print(f"\n{suspect} held as suspect at delivery, {30 - suspect} held by the burst guard")
    assert suspect >= 20
    assert DeliveryHold.objects.filter(template_key=KEY, released_at__isnull=True).exists()
    assert KEY in delivery_holds_active()


def test_supervisors_are_alerted_to_suspect_notices_in_their_language():
    """The admin's red banner names a type that holds suspect notices, in English and German."""
    from tests.notifications.test_burst_guard import _staff_member

    user = UserFactory.create(phone=None)
    provisioned(user)
    supervisor = _staff_member(SUPERVISORS_GROUP)
    assert 'id="delivery-hold-banner"' not in supervisor.get("/admin/").content.decode()

    the_bug(user)

    page = supervisor.get("/admin/").content.decode()
    banner = page.split('id="delivery-hold-banner"', 1)[1].split("</div>", 1)[0]
    assert KEY in banner and "as suspect" in banner
    german = supervisor.get("/admin/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "als verdächtig zurückgehaltene" in german.split('id="delivery-hold-banner"', 1)[1]
