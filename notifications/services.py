"""The notification outbox: queue rows in the caller's transaction, deliver them after commit."""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import JSONField, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.utils import timezone, translation

from accounts.models import SecurityEvent, User
from config.celery_app import app
from config.sql import insert_parts, mark_inserted
from notifications.models import DeliveryHold, Notification
from notifications.rendering import render_message
from notifications.send_check import security_notices_suspect
from notifications.sms import SmsMessage, get_sms_backend
from notifications.tasks import notifications_deliver_due_task

logger = logging.getLogger(__name__)

# Set while a "send what is due" task is on its way: rows committed meanwhile need not ask
# for another. Its timeout recovers a lost task; the sweep sends what waited meanwhile.
DELIVERY_DUE_KEY = "notifications:delivery-due"
DELIVERY_DUE_KEY_SECONDS = 10

# Crockford's base32 without look-alikes: references are read aloud to support and typed back.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648's base32 alphabet, letter for letter onto ours.
_BASE32_TO_REFERENCE = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", REFERENCE_ALPHABET.encode()
)

# Event types that tell the customer about a change; the notice text belongs to the type.
SECURITY_NOTICE_TYPES = frozenset(
    {
        SecurityEvent.Type.TWO_FACTOR_ENABLED,
        SecurityEvent.Type.BACKUP_CODES_REGENERATED,
        SecurityEvent.Type.BACKUP_CODE_USED,
        SecurityEvent.Type.PASSWORD_CHANGED,
        SecurityEvent.Type.PASSWORD_RESET,
        SecurityEvent.Type.EMAIL_CHANGED,
        SecurityEvent.Type.PHONE_CHANGED,
        SecurityEvent.Type.SESSIONS_ENDED,
        SecurityEvent.Type.TWO_FACTOR_REENROLLED,
        SecurityEvent.Type.ACCOUNT_FROZEN,
        SecurityEvent.Type.ACCOUNT_RECOVERED,
        SecurityEvent.Type.SECURITY_HOLD_LIFTED,
        SecurityEvent.Type.PASSKEY_ADDED,
        SecurityEvent.Type.PASSKEY_RENAMED,
        SecurityEvent.Type.PASSKEY_REMOVED,
    }
)


class NoticeRefused(Exception):
    """A security notice was asked for without a matching committed security event."""


def notification_reference_new() -> str:
    """60 random bits, `7K2M-9QXA-B4TZ`: no clash among millions of messages of a campaign."""
    return notification_references_new(1)[0]


def notification_references_new(count: int) -> list[str]:
    """`count` fresh references at once: a campaign draws a million of them."""
    # Base32 turns every 5 random bytes into 8 uniform characters of a 32-letter alphabet,
    # which the table maps onto ours; 15 bytes make two 12-character references.
    raw = (
        base64.b32encode(secrets.token_bytes(15 * ((count + 1) // 2)))
        .translate(_BASE32_TO_REFERENCE)
        .decode()
    )
    return [
        f"{raw[i : i + 4]}-{raw[i + 4 : i + 8]}-{raw[i + 8 : i + 12]}"
        for i in range(0, 12 * count, 12)
    ]


def notification_queue(
    *,
    channel: Notification.Channel,
    recipient: str,
    template_key: str,
    idempotency_key: str,
    language: str = "en",
    context: dict[str, Any] | None = None,
    account_id: int | None = None,
    security_event: SecurityEvent | None = None,
    enqueue: bool = True,
) -> Notification:
    """Write one outbox row and hand it to a worker once the surrounding transaction commits.

    The idempotency key makes a repeated call a no-op: the existing row is returned.
    Security notices (`security/…`) are refused here: only `security_notice_queue` makes
    them, from the stored event, so no caller can address or word one itself.
    `enqueue=False` leaves the row to the caller, who sends it with
    `notifications_deliver_after_commit` (the sweep still catches it if that never runs).
    """
    if template_key.startswith("security/"):
        raise NoticeRefused(template_key)
    return _notification_add(
        channel=channel,
        recipient=recipient,
        template_key=template_key,
        idempotency_key=idempotency_key,
        language=language,
        context=context,
        account_id=account_id,
        security_event=security_event,
        enqueue=enqueue,
    )


def notifications_queue_many(rows: Sequence[Notification]) -> list[Notification]:
    """`notification_queue(..., enqueue=False)` for many unsaved rows, in two statements.

    Returns the stored rows in the order given: for a key already used, the existing row.
    Security notices are refused as there.
    """
    for row in rows:
        if row.template_key.startswith("security/"):
            raise NoticeRefused(row.template_key)
    if not rows:
        return []
    for row, reference in zip(rows, notification_references_new(len(rows)), strict=True):
        row.status = Notification.Status.PENDING
        row.reference = reference
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    stored = Notification.objects.in_bulk(
        [row.idempotency_key for row in rows], field_name="idempotency_key"
    )
    return [stored[row.idempotency_key] for row in rows]


def notifications_deliver_after_commit(notification_ids: Sequence[int]) -> None:
    """Send the rows from this process, in one go, once the current transaction commits.

    For code that already runs in a worker: a task per row would only add a broker round
    trip and another transaction per message.
    """
    if notification_ids:
        ids = list(notification_ids)
        transaction.on_commit(lambda: notifications_deliver(notification_ids=ids), robust=True)


def notifications_deliver_due_request() -> None:
    """Ask a worker to send the customers' due rows, once the current transaction commits.

    In a flood one task sends many rows: a commit that finds a task already asked for (a
    key in the cache, which the task clears before it claims) asks for none. There is no
    wait for others to join: a lone code leaves at once. A key whose task was lost ends
    with its timeout, and the sweep sends whatever waited meanwhile.
    """

    def ask() -> None:
        try:
            if cache.add(DELIVERY_DUE_KEY, 1, timeout=DELIVERY_DUE_KEY_SECONDS):
                try:
                    notifications_deliver_due_task.delay()
                except Exception:
                    # The next commit asks again instead of waiting for the timeout.
                    cache.delete(DELIVERY_DUE_KEY)
                    raise
        except Exception:
            logger.warning("Could not ask for delivery; the sweep will send the rows")

    transaction.on_commit(ask)


def notifications_deliver_due() -> int:
    """Send the customers' due rows, oldest first, a chunk at a time until none is left;
    returns how many this call sent.

    Only rows queued for this task (`Delivery.DUE`) are taken: campaign and retraction
    batches, released holds and rows a worker sends itself keep their own way, held rows
    are not pending, and a row claimed by another worker is not due until its lease ends.
    """
    # Cleared before claiming: a row committed from now on asks for a task of its own,
    # so one that commits after a claim below is not left for the sweep.
    try:
        cache.delete(DELIVERY_DUE_KEY)
    except Exception:
        logger.warning("Could not clear the delivery key; it ends with its timeout")
    size = settings.NOTIFICATION_DELIVERY_CHUNK
    lease = settings.NOTIFICATION_SEND_LEASE
    sent = 0
    while True:
        rows = _claim_due(size, lease=lease)
        sent += _deliver_claimed(rows, lease=lease)
        if len(rows) < size:
            return sent


def _notification_add(
    *,
    channel: Notification.Channel,
    recipient: str,
    template_key: str,
    idempotency_key: str,
    language: str,
    context: dict[str, Any] | None,
    account_id: int | None,
    security_event: SecurityEvent | None,
    enqueue: bool = True,
) -> Notification:
    status = Notification.Status.PENDING
    if template_key.startswith("security/"):
        # A repeated call must not count towards the burst guard a second time.
        existing = Notification.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        if burst_guard_trips(template_key=template_key):
            status = Notification.Status.HELD
    row = Notification(
        status=status,
        reference=notification_reference_new(),
        channel=channel,
        recipient=recipient,
        template_key=template_key,
        idempotency_key=idempotency_key,
        language=language,
        context=context or {},
        account_id=account_id,
        security_event=security_event,
    )
    due = status == Notification.Status.PENDING and enqueue
    if due:
        row.delivery = Notification.Delivery.DUE
    if not _notification_insert(row):
        # A repeated or concurrent call with the same key: the first row stands.
        return Notification.objects.get(idempotency_key=idempotency_key)
    if due:
        notifications_deliver_due_request()
    return row


def _notification_insert(row: Notification) -> bool:
    """Insert the row unless its idempotency key is taken; True when it was inserted.

    One statement: ON CONFLICT DO NOTHING needs no savepoint around the insert, and
    RETURNING gives the new id, so the row is read back only when the key was taken.
    """
    parts = insert_parts(row)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {parts.table} ({parts.columns}) VALUES ({parts.values})"  # noqa: S608 # nosec B608 - columns from the model
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            parts.params,
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    mark_inserted(row, inserted[0])
    return True


def notifications_enqueue_batches(
    notification_ids: Sequence[int],
    *,
    channel: Notification.Channel | None = None,
    queue: str | None = None,
) -> None:
    """Hand many rows to the workers in batches, one task per batch and channel.

    A caller that wrote the rows and knows they all share one `channel` passes it, and
    the channels are not looked up again. The batches go to the bulk queue unless `queue`
    names another: rows a customer is waiting for must not queue behind a campaign.
    """
    from notifications.tasks import deliver_email_batch_task, deliver_sms_batch_task

    if not notification_ids:
        return
    size = settings.NOTIFICATION_BATCH_SIZE
    by_channel: dict[str, list[int]] = {
        Notification.Channel.EMAIL: [],
        Notification.Channel.SMS: [],
    }
    if channel is not None:
        by_channel[channel] = list(notification_ids)
    else:
        for pk, row_channel in Notification.objects.filter(pk__in=notification_ids).values_list(
            "pk", "channel"
        ):
            by_channel[row_channel].append(pk)
    tasks: dict[str, Any] = {
        Notification.Channel.EMAIL: deliver_email_batch_task,
        Notification.Channel.SMS: deliver_sms_batch_task,
    }
    try:
        # One producer (one broker connection) for all the batches, not one per message.
        with app.producer_or_acquire() as producer:
            for task_channel, ids in by_channel.items():
                for start in range(0, len(ids), size):
                    batch = ids[start : start + size]
                    # A short argsrepr: Celery would otherwise render every id for its logs.
                    tasks[task_channel].apply_async(
                        args=[batch],
                        producer=producer,
                        argsrepr=f"[{len(batch)} ids]",
                        **({"queue": queue} if queue else {}),
                    )
    except Exception:
        logger.warning("Could not enqueue a delivery batch; the sweep will retry")


def notifications_enqueue_via_worker(
    notification_ids: Sequence[int], *, channel: Notification.Channel
) -> None:
    """Hand a large set of rows to the workers in one message; a worker splits it into batches.

    Mass revocation commits thousands of notices at a time: publishing their delivery
    batches from the operator's process would cost it a broker round trip per batch.
    """
    from notifications.tasks import notifications_enqueue_task

    if not notification_ids:
        return
    try:
        notifications_enqueue_task.apply_async(  # type: ignore[call-arg] # Celery's own option
            args=(list(notification_ids), channel), argsrepr=f"[{len(notification_ids)} ids]"
        )
    except Exception:
        logger.warning("Could not enqueue %d notices; the sweep will retry", len(notification_ids))


def burst_guard_trips(*, template_key: str) -> bool:
    """True when notices of this type must be held: a hold exists, or this one crosses the line.

    Crossing the threshold (outside any campaign) creates the hold in the database, so
    every worker obeys it, and holds the type's rows that are still waiting to be sent.
    """
    hold = DeliveryHold.objects.filter(template_key=template_key).first()
    if hold is not None and hold.released_at is None:
        return True
    now = timezone.now()
    since = now - timedelta(seconds=settings.BURST_GUARD_WINDOW_SECONDS)
    if hold is not None and hold.released_at is not None:
        since = max(since, hold.released_at)
    recent = Notification.objects.filter(
        template_key=template_key, campaign__isnull=True, created_at__gte=since
    ).count()
    if recent < settings.BURST_GUARD_THRESHOLD:
        return False
    with transaction.atomic():
        DeliveryHold.objects.update_or_create(
            template_key=template_key,
            defaults={"held_at": now, "queued_in_window": recent, "released_at": None},
        )
        Notification.objects.filter(
            template_key=template_key,
            campaign__isnull=True,
            status=Notification.Status.PENDING,
        ).update(status=Notification.Status.HELD)
    logger.error("Burst guard: holding %s after %d notices in the window", template_key, recent)
    return True


def held_notifications_release(*, template_key: str) -> int:
    """Lift the hold on a type and send what it held; returns how many were released."""
    with transaction.atomic():
        DeliveryHold.objects.filter(template_key=template_key).update(released_at=timezone.now())
        ids = list(
            Notification.objects.filter(
                template_key=template_key, status=Notification.Status.HELD
            ).values_list("pk", flat=True)
        )
        # Handed to rate-limited batches on the bulk queue, not to the customers' own task.
        Notification.objects.filter(pk__in=ids).update(
            status=Notification.Status.PENDING,
            next_attempt_at=timezone.now(),
            delivery=Notification.Delivery.HANDED,
        )
        transaction.on_commit(lambda: notifications_enqueue_batches(ids))
    return len(ids)


def held_notifications_discard(*, template_key: str) -> int:
    """Lift the hold and mark what it held as discarded (the rows stay, as records)."""
    with transaction.atomic():
        DeliveryHold.objects.filter(template_key=template_key).update(released_at=timezone.now())
        return Notification.objects.filter(
            template_key=template_key, status=Notification.Status.HELD
        ).update(status=Notification.Status.DISCARDED, context=context_removed())


def security_notice_queue(
    *, event_id: int, former_emails: Sequence[str] = (), former_phones: Sequence[str] = ()
) -> list[Notification]:
    """Queue the notices for one security event, to every contact on file.

    `former_emails` and `former_phones` are contacts the account just stopped using (a
    changed login email, a changed phone number), which must hear of the change too.

    The event is read back from the database: a notice exists only for a stored event of a
    notifiable type, for that event's own account, and its wording comes from the type.
    """
    event = SecurityEvent.objects.filter(pk=event_id).first()
    if event is None or event.type not in SECURITY_NOTICE_TYPES:
        raise NoticeRefused(event_id)
    # Only a change of that very contact has a former one to warn; any other event would
    # send its alarm to somebody else's mailbox or phone.
    if former_emails and event.type != SecurityEvent.Type.EMAIL_CHANGED:
        raise NoticeRefused(event_id)
    if former_phones and event.type != SecurityEvent.Type.PHONE_CHANGED:
        raise NoticeRefused(event_id)
    user = User.objects.filter(pk=event.account_id).first()
    if user is None:
        raise NoticeRefused(event_id)
    recipients = [(Notification.Channel.EMAIL, user.email)]
    recipients += [(Notification.Channel.EMAIL, email) for email in former_emails]
    if user.phone:
        recipients.append((Notification.Channel.SMS, user.phone))
    recipients += [(Notification.Channel.SMS, phone) for phone in former_phones]
    from accounts.services.tokens import not_me_link_issue

    context = {"event_type": event.type}
    if event.type != SecurityEvent.Type.ACCOUNT_FROZEN:
        context["not_me_token"] = not_me_link_issue(user=user, security_event=event)
    return [
        _notification_add(
            channel=channel,
            recipient=recipient,
            template_key=f"security/{event.type}",
            idempotency_key=f"security:{event.pk}:{channel}:{recipient}",
            language=user.language,
            context=context,
            account_id=user.pk,
            security_event=event,
        )
        for channel, recipient in recipients
    ]


def prerendered_email_queue(
    *,
    recipient: str,
    template_prefix: str,
    subject: str,
    text: str,
    html: str | None,
    reference: str,
    language: str,
    account_id: int | None = None,
) -> Notification:
    """Queue an email whose text was rendered by allauth (verification, password reset).

    Its body may hold a one-time link; delivery erases it once sent, as for every row.
    """
    with transaction.atomic():
        notification = Notification.objects.create(
            reference=reference,
            channel=Notification.Channel.EMAIL,
            recipient=recipient,
            template_key=f"prerendered/{template_prefix}",
            idempotency_key=f"prerendered:{reference}",
            language=language,
            context={"subject": subject, "text": text, "html": html},
            account_id=account_id,
            delivery=Notification.Delivery.DUE,
        )
        notifications_deliver_due_request()
    return notification


def _render_context(notification: Notification) -> dict[str, Any]:
    from notifications.notices import campaign_notice_text, security_notice_text

    context = dict(notification.context)
    context.update(reference=notification.reference, site_url=settings.SITE_URL)
    if notification.campaign_id is not None:
        # The campaign's event (fetched with the row) names the factors it removed.
        event = notification.security_event
        context.update(campaign_notice_text(event.details.get("factors") if event else None))
    if notification.template_key.startswith("security/"):
        # The wording belongs to the stored event's type, not to data kept on the row.
        event = notification.security_event
        assert event is not None  # a database check: security notices always have their event
        context.update(security_notice_text(event.type, event.details))
        context["event_time"] = event.created_at
        if "not_me_token" in context:
            context["not_me_url"] = f"{settings.SITE_URL}/recover/not-me/{context['not_me_token']}/"
    return context


def _template_base(notification: Notification, kind: str) -> str:
    """Template path: `security/<type>` -> the security notice, `<app>/<name>` -> app/kind/name."""
    if notification.template_key.startswith("security/"):
        return f"notifications/{kind}/security_notice"
    app, name = notification.template_key.split("/", 1)
    return f"{app}/{kind}/{name}"


def _render_email(notification: Notification) -> EmailMultiAlternatives:
    if notification.template_key.startswith("prerendered/"):
        subject, text, html = (notification.context[k] for k in ("subject", "text", "html"))
    else:
        base = _template_base(notification, "email")
        context = _render_context(notification)
        subject = render_message(f"{base}_subject.txt", context).strip()
        text = render_message(f"{base}_message.txt", context)
        html = render_message(f"{base}_message.html", context)
    subject = " ".join(subject.splitlines())
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        # A fixed Message-ID lets mail systems drop a copy sent again after a crash.
        headers={
            "X-Recovery-Desk-Reference": notification.reference,
            "Message-ID": f"<{notification.reference}@recovery-desk>",
        },
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message


def _render_sms(notification: Notification) -> SmsMessage:
    template = _template_base(notification, "sms") + ".txt"
    body = render_message(template, _render_context(notification))
    return SmsMessage(
        to=notification.recipient, body=" ".join(body.split()), reference=notification.reference
    )


class _Senders:
    """One SMTP session and one HTTP session for all the messages of a chunk.

    The SMTP connection opens with the chunk's first email and closes once, at the end; a
    send that fails closes it, so the next email opens a fresh one instead of writing into a
    connection in an unknown state.
    """

    def __init__(self) -> None:
        self.email = get_connection()
        self.sms: Any = None

    def send(self, notification: Notification) -> None:
        with translation.override(notification.language):
            if notification.channel == Notification.Channel.EMAIL:
                message = _render_email(notification)
                try:
                    self.email.open()
                    self.email.send_messages([message])
                except Exception:
                    self._close_email()
                    raise
            else:
                if self.sms is None:
                    self.sms = get_sms_backend()
                self.sms.send(_render_sms(notification))

    def close(self) -> None:
        self._close_email()
        close_sms = getattr(self.sms, "close", None)
        if close_sms is not None:
            close_sms()

    def _close_email(self) -> None:
        try:
            self.email.close()
        except Exception:
            logger.warning("Closing the SMTP connection failed", exc_info=True)


def notifications_deliver(*, notification_ids: Sequence[int]) -> int:
    """Send the due pending notifications among the ids; returns how many this call sent.

    The rows go a chunk at a time (`NOTIFICATION_DELIVERY_CHUNK`) over one SMTP and one
    HTTP session. A chunk is claimed in one statement: its rows' `next_attempt_at` moves a
    lease (`NOTIFICATION_SEND_LEASE`) ahead, so a second delivery of the same ids (a
    redelivered task, the sweep) finds nothing due and sends nothing, and no two workers
    claim one row. Then each row is sent and at once marked sent, in its own commit. A
    worker killed, or cut off from the database, mid-chunk has sent at most the one row it
    was in the middle of without marking it; that row and the chunk's unsent rest are due
    again when the lease ends, and the sweep hands them out. The one row goes out again with
    the same reference (Message-ID, the gateway's Idempotency-Key), so the receiving side
    can drop the copy.
    """
    size = settings.NOTIFICATION_DELIVERY_CHUNK
    return sum(
        _deliver_chunk(notification_ids[start : start + size])
        for start in range(0, len(notification_ids), size)
    )


def _deliver_chunk(notification_ids: Sequence[int]) -> int:
    lease = settings.NOTIFICATION_SEND_LEASE
    return _deliver_claimed(_claim(notification_ids, lease=lease), lease=lease)


def _deliver_claimed(rows: list[Notification], *, lease: timedelta) -> int:
    """Send claimed rows over one SMTP and one HTTP session, marking each sent at once."""
    if not rows:
        return 0
    held = _held_by_burst_guard(rows)
    if held:
        Notification.objects.filter(pk__in=held).update(status=Notification.Status.HELD)
    held |= security_notices_suspect(row for row in rows if row.pk not in held)
    # Stop well inside the lease: a row sent after it ended could be claimed and sent by
    # another worker as well. The rows left stay claimed until the lease ends.
    stop_at = time.monotonic() + lease.total_seconds() / 2
    senders, sent = _Senders(), 0
    try:
        with _commits_not_waiting_for_disk() as cursor:
            for row in rows:
                if time.monotonic() > stop_at:
                    break
                if row.pk not in held and _deliver_one(row, senders, cursor):
                    sent += 1
    finally:
        senders.close()
    return sent


@contextlib.contextmanager
def _commits_not_waiting_for_disk() -> Iterator[CursorWrapper]:
    """Let each mark's COMMIT return before its WAL record is flushed to disk; yields the
    cursor the marks are written with, one for the whole chunk.

    A flush per message would cost more than sending it. PostgreSQL writes the records
    within a fraction of a second (three `wal_writer_delay`s at most) and keeps them through
    a lost connection, a killed worker and a clean restart; only a crash of the database
    server in that fraction forgets the last marks, whose messages then go out again under
    their own references.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
            yield cursor
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:
            pass  # the connection is gone, and its setting with it


_TABLE = Notification._meta.db_table
# The row's context with every value replaced by CONTEXT_REMOVED: what a row keeps once it
# no longer needs its links and codes. SQL, so marking a row sent stays one statement.
# The literal is CONTEXT_REMOVED as JSON.
_CONTEXT_REMOVED_SQL = (
    "(SELECT COALESCE(jsonb_object_agg(key, '\"[removed]\"'::jsonb), '{}'::jsonb)"
    " FROM jsonb_each(context))"
)


def context_removed() -> RawSQL:
    """For `update(context=...)`: the row's context with its values removed."""
    return RawSQL(_CONTEXT_REMOVED_SQL, [], output_field=JSONField())  # noqa: S611 # nosec B611


# Claiming returns the claimed rows whole, so a chunk costs one statement, not a second read.
_CLAIM = (
    f"UPDATE {_TABLE} SET next_attempt_at = %s"  # noqa: S608 # nosec B608 - table name only
    " WHERE id = ANY(%s) AND status = %s AND next_attempt_at <= %s RETURNING *"
)
# One statement per message sent, written out once: the ORM would build and compile it anew
# for every message. The outbox keeps no content once sent: it may hold a code or a link.
_MARK_SENT = (
    f"UPDATE {_TABLE} SET status = %s, sent_at = %s,"  # noqa: S608 # nosec B608 - constants only
    f" attempts = attempts + 1, context = {_CONTEXT_REMOVED_SQL} WHERE id = %s"
)


# The oldest due rows queued for the task that sends what is due; rows another worker is
# claiming at this instant are left to it.
_CLAIM_DUE = (
    f"UPDATE {_TABLE} SET next_attempt_at = %s WHERE id IN ("  # noqa: S608 # nosec B608 - table name only
    f" SELECT id FROM {_TABLE} WHERE status = %s AND delivery = %s AND next_attempt_at <= %s"
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *"
)


def _claim(notification_ids: Sequence[int], *, lease: timedelta) -> list[Notification]:
    """Claim the due pending rows among the ids for `lease`; returns them in id order, with
    their security events."""
    now = timezone.now()
    return _claimed(
        Notification.objects.raw(
            _CLAIM, [now + lease, list(notification_ids), Notification.Status.PENDING, now]
        )
    )


def _claim_due(limit: int, *, lease: timedelta) -> list[Notification]:
    """Claim up to `limit` of the oldest due rows queued for `notifications_deliver_due`."""
    now = timezone.now()
    return _claimed(
        Notification.objects.raw(
            _CLAIM_DUE,
            [now + lease, Notification.Status.PENDING, Notification.Delivery.DUE, now, limit],
        )
    )


def _claimed(claimed: Iterable[Notification]) -> list[Notification]:
    rows = sorted(claimed, key=lambda row: row.pk)
    if any(row.security_event_id is not None for row in rows):
        prefetch_related_objects(rows, "security_event")
    return rows


def _held_by_burst_guard(rows: Sequence[Notification]) -> set[int]:
    """Rows whose type the burst guard holds: security notices outside a campaign only."""
    guarded = {
        row.template_key
        for row in rows
        if row.campaign_id is None and row.template_key.startswith("security/")
    }
    if not guarded:
        return set()
    held_keys = set(
        DeliveryHold.objects.filter(template_key__in=guarded, released_at__isnull=True).values_list(
            "template_key", flat=True
        )
    )
    return {row.pk for row in rows if row.campaign_id is None and row.template_key in held_keys}


def _deliver_one(row: Notification, senders: _Senders, cursor: CursorWrapper) -> bool:
    """Send one claimed row, then mark it sent in a commit of its own; True if sent."""
    try:
        senders.send(row)
    except Exception as exc:
        _attempt_failed(row, exc)
        return False
    cursor.execute(_MARK_SENT, [Notification.Status.SENT, timezone.now(), row.pk])
    return True


def _attempt_failed(notification: Notification, exc: Exception) -> None:
    logger.warning("Delivery of notification %s failed: %s", notification.reference, exc)
    notification.attempts += 1
    notification.last_error = str(exc)[:500]
    if notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        # Never sent, never to be: its link or code goes now, as a sent row's does.
        notification.status = Notification.Status.FAILED
        Notification.objects.filter(pk=notification.pk).update(
            attempts=notification.attempts,
            last_error=notification.last_error,
            status=Notification.Status.FAILED,
            context=context_removed(),
        )
        return
    # A retry renders the message again: the row keeps its context until then.
    backoff = timedelta(seconds=30 * 2 ** (notification.attempts - 1))
    notification.next_attempt_at = timezone.now() + backoff
    notification.save(update_fields=["attempts", "last_error", "next_attempt_at"])


def notification_sweep(*, limit: int = 50000) -> int:
    """Hand pending rows whose delivery is overdue to the broker again; returns how many."""
    cutoff = timezone.now() - settings.NOTIFICATION_SWEEP_AGE
    overdue = list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, next_attempt_at__lte=cutoff
        ).values_list("pk", "campaign_id")[:limit]
    )
    # A customer's own message goes back to the queue of messages, not behind a campaign.
    notifications_enqueue_batches(
        [pk for pk, campaign_id in overdue if campaign_id is None],
        queue=settings.TASK_QUEUE_MESSAGES,
    )
    notifications_enqueue_batches([pk for pk, campaign_id in overdue if campaign_id is not None])
    return len(overdue)
