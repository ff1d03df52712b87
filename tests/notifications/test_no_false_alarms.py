"""No false alarms: a "your 2FA changed" notice exists only for a committed event of that user."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from accounts.models import SecurityEvent
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.users import user_email_change, user_phone_change
from notifications.models import Notification
from notifications.notices import security_notice_text
from notifications.services import (
    SECURITY_NOTICE_TYPES,
    NoticeRefused,
    notification_queue,
    notifications_deliver,
    security_notice_queue,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TWO_FACTOR = SecurityEvent.Type.TWO_FACTOR_ENABLED
NOT_NOTIFIABLE = sorted(set(SecurityEvent.Type) - SECURITY_NOTICE_TYPES)


def contacts(user) -> set[str]:
    return {user.email, user.phone} - {None}


def test_a_missing_event_is_refused():
    """An event id that is not stored gives NoticeRefused and no outbox row."""
    with pytest.raises(NoticeRefused):
        security_notice_queue(event_id=987_654_321)
    assert not Notification.objects.exists()


@pytest.mark.parametrize("event_type", NOT_NOTIFIABLE)
def test_an_event_of_a_non_notifiable_type_is_refused(event_type):
    """Events that are not customer-facing changes (sign-up, revocation, …) never notify."""
    assert NOT_NOTIFIABLE, "some event types are deliberately silent"
    user = UserFactory.create()
    event = security_event_record(user=user, type=event_type, notify=False)
    with pytest.raises(NoticeRefused):
        security_notice_queue(event_id=event.pk)
    assert not Notification.objects.exists()


def test_an_event_rolled_back_with_its_change_never_notifies(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """If the change fails, its event and notice vanish together; nothing is sent, and the
    event id cannot be used for a notice afterwards."""
    user = UserFactory.create()
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        event = security_event_record(user=user, type=TWO_FACTOR)
        assert Notification.objects.filter(security_event=event).count() == 2
        raise RuntimeError("the 2FA change itself failed")
    assert not Notification.objects.exists()
    assert mailoutbox == [] and sms_outbox == []
    with pytest.raises(NoticeRefused):
        security_notice_queue(event_id=event.pk)


def test_an_event_of_user_a_only_ever_notifies_user_a(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """The notice goes to the event's own account, read from the stored event: passing A's
    event anywhere can never produce a notice to B, and there is no recipient parameter."""
    alice, bob = UserFactory.create(), UserFactory.create()
    event = security_event_record(user=alice, type=TWO_FACTOR, notify=False)

    with django_capture_on_commit_callbacks(execute=True):
        notices = security_notice_queue(event_id=event.pk)
        again = security_notice_queue(event_id=event.pk)

    assert {n.recipient for n in notices} == contacts(alice)
    assert {n.account_id for n in notices} == {alice.pk}
    assert [n.pk for n in again] == [n.pk for n in notices], "idempotent per event"
    assert [m.to for m in mailoutbox] == [[alice.email]]
    assert [s.to for s in sms_outbox] == [alice.phone]
    assert not Notification.objects.filter(account_id=bob.pk).exists()
    assert not Notification.objects.filter(recipient__in=contacts(bob)).exists()
    assert list(inspect.signature(security_notice_queue).parameters) == [
        "event_id",
        "former_emails",
        "former_phones",
    ]


def test_the_generic_outbox_refuses_to_make_a_security_notice(mailoutbox):
    """`notification_queue` cannot forge a security notice: not for another user, not with a
    borrowed event of another type, not with the wording chosen by the caller."""
    alice, bob = UserFactory.create(), UserFactory.create()
    password_event = security_event_record(
        user=alice, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False
    )
    two_factor_event = security_event_record(user=alice, type=TWO_FACTOR, notify=False)
    forgeries: list[dict[str, Any]] = [
        # Alice's real 2FA event, but addressed to Bob.
        {"recipient": bob.email, "account_id": bob.pk, "security_event": two_factor_event},
        # A password event relabelled as a 2FA change, to Alice herself.
        {"recipient": alice.email, "account_id": alice.pk, "security_event": password_event},
        # No event at all.
        {"recipient": bob.email, "account_id": bob.pk, "security_event": None},
    ]
    for number, forged in enumerate(forgeries):
        with pytest.raises(NoticeRefused):
            notification_queue(
                channel=Notification.Channel.EMAIL,
                template_key=f"security/{TWO_FACTOR}",
                idempotency_key=f"forged:{number}",
                context={"event_type": TWO_FACTOR},
                **forged,
            )
    assert not Notification.objects.exists()
    assert mailoutbox == []


def test_former_emails_are_only_for_a_login_email_change(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Extra addresses may hear only of the email change that dropped them; a 2FA event cannot
    be broadcast to someone else's address that way."""
    alice, bob = UserFactory.create(phone=None), UserFactory.create(phone=None)
    with pytest.raises(NoticeRefused), transaction.atomic():
        security_event_record(user=alice, type=TWO_FACTOR, former_emails=[bob.email])
    assert not Notification.objects.exists()

    old_email = alice.email
    with django_capture_on_commit_callbacks(execute=True):
        user_email_change(user=alice, new_email="alice.new@example.com", context=AuditContext())
    assert sorted(m.to[0] for m in mailoutbox) == sorted([old_email, "alice.new@example.com"])
    assert {m.subject for m in mailoutbox} == {"[Recovery Desk] Your login email was changed"}
    assert bob.email not in {m.to[0] for m in mailoutbox}


def test_former_phones_are_only_for_a_phone_change(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """An extra number may hear only of the phone change that dropped it; an email change
    cannot be texted to someone else's phone that way."""
    alice, bob = UserFactory.create(), UserFactory.create()
    assert alice.phone and bob.phone
    for event_type in (TWO_FACTOR, SecurityEvent.Type.EMAIL_CHANGED):
        with pytest.raises(NoticeRefused), transaction.atomic():
            security_event_record(user=alice, type=event_type, former_phones=[bob.phone])
    assert not Notification.objects.exists()

    old_phone = alice.phone
    with django_capture_on_commit_callbacks(execute=True):
        user_phone_change(user=alice, new_phone="+4915199999999", context=AuditContext())
    assert sorted(s.to for s in sms_outbox) == sorted([old_phone, "+4915199999999"])
    assert [m.to for m in mailoutbox] == [[alice.email]]
    assert {m.subject for m in mailoutbox} == {
        "[Recovery Desk] The phone number of your account was changed"
    }
    assert bob.phone not in {s.to for s in sms_outbox}


def test_the_database_refuses_a_security_notice_without_an_event():
    """The CheckConstraint holds whatever the code does: insert, bulk insert or update."""
    base = {"channel": "email", "recipient": "x@example.com", "template_key": "security/x"}
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(reference="AAAA-0001", idempotency_key="f1", **base)
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.bulk_create(
            [Notification(reference="AAAA-0002", idempotency_key="f2", **base)]
        )
    user = UserFactory.create()
    event = security_event_record(user=user, type=TWO_FACTOR)
    real = Notification.objects.filter(security_event=event).first()
    assert real is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=real.pk).update(security_event=None)
    assert Notification.objects.filter(security_event__isnull=True).count() == 0


@pytest.mark.parametrize(
    "event_type",
    [
        SecurityEvent.Type.PASSWORD_CHANGED,
        SecurityEvent.Type.TWO_FACTOR_ENABLED,
        SecurityEvent.Type.BACKUP_CODE_USED,
    ],
)
def test_the_wording_comes_from_the_stored_event_type_only(event_type, mailoutbox, sms_outbox):
    """Neither the event's free-form details nor the outbox row's data can change what the
    notice says: the headline is the one of the stored event's type."""
    user = UserFactory.create()
    event = security_event_record(
        user=user,
        type=event_type,
        details={"note": "Your 2FA was disabled, log in at http://evil.example to fix it"},
        notify=False,
    )
    notices = security_notice_queue(event_id=event.pk)
    # Even a row whose stored data was tampered with says what the event says.
    Notification.objects.filter(pk__in=[n.pk for n in notices]).update(
        context={**notices[0].context, "event_type": SecurityEvent.Type.ACCOUNT_RECOVERED}
    )
    for notice in notices:
        assert notifications_deliver(notification_ids=[notice.pk]) == 1

    expected = security_notice_text(event_type)
    [mail] = mailoutbox
    assert mail.subject == f"[Recovery Desk] {expected['headline']}"
    assert expected["explanation"] in mail.body
    assert expected["headline"] in sms_outbox[0].body
    for text in (mail.subject, mail.body, sms_outbox[0].body):
        assert "evil" not in text
        assert "2FA was disabled" not in text
        assert security_notice_text(SecurityEvent.Type.ACCOUNT_RECOVERED)["headline"] not in text
