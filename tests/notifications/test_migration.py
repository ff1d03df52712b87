"""Moving the outbox from accounts to notifications keeps every row, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from notifications.models import DeliveryHold, Notification

pytestmark = pytest.mark.django_db(transaction=True)

LAST_BEFORE_THE_MOVE = ("accounts", "0005_security_events_phone_and_permissions")
MOVED_TABLES = ["notifications_notification", "notifications_deliveryhold"]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


@pytest.fixture
def latest_schema_afterwards(transactional_db):
    """The newest migrations, whatever the test left applied."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield latest
    finally:
        migrate(latest)
        ContentType.objects.clear_cache()


def test_outbox_rows_and_holds_move_to_the_notifications_app(latest_schema_afterwards):
    """Notices and a hold written to accounts' tables before the move are the notifications
    app's rows after it, with the same ids and data and their links to their security event
    and campaign; new rows continue the ids; the content types (and the permissions hanging
    off them) now belong to notifications; no index or constraint is named after accounts."""
    # Unapplying accounts' next migration unapplies notifications' first one, which needs it.
    old_apps = migrate([LAST_BEFORE_THE_MOVE]).loader.project_state(LAST_BEFORE_THE_MOVE).apps
    event = old_apps.get_model("accounts", "SecurityEvent").objects.create(
        account_id=4242, type="password_changed"
    )
    campaign = old_apps.get_model("accounts", "RevocationCampaign").objects.create(
        reason="breach drill", operator="ops"
    )
    now = timezone.now()
    OldNotification = old_apps.get_model("accounts", "Notification")
    OldNotification.objects.create(
        reference="7K2M-9QXA-B4TZ",
        channel="email",
        recipient="anna@example.com",
        account_id=4242,
        template_key="security/password_changed",
        language="de",
        context={"not_me_token": "opaque"},
        idempotency_key="security:1:email:anna@example.com",
        security_event=event,
        status="held",
        attempts=2,
        next_attempt_at=now + timedelta(minutes=5),
        last_error="gateway answered 503",
        created_at=now - timedelta(minutes=1),
    )
    OldNotification.objects.create(
        reference="RC4F-7K2M-9QXA",
        channel="sms",
        recipient="+4915100000042",
        account_id=4242,
        template_key="accounts/campaign_revocation",
        idempotency_key="campaign:1:4242",
        campaign=campaign,
        status="sent",
        attempts=1,
        sent_at=now,
    )
    old_apps.get_model("accounts", "DeliveryHold").objects.create(
        template_key="security/password_changed", queued_in_window=1001
    )
    notices_before = list(OldNotification.objects.order_by("pk").values())
    holds_before = list(old_apps.get_model("accounts", "DeliveryHold").objects.values())
    content_types = old_apps.get_model("contenttypes", "ContentType").objects
    notification_type = content_types.get(app_label="accounts", model="notification").pk

    migrate(latest_schema_afterwards)
    ContentType.objects.clear_cache()

    notices_after = [dict(row) for row in Notification.objects.order_by("pk").values()]
    # Rows from before the task that sends what is due were each handed a task of their own.
    assert {row.pop("delivery") for row in notices_after} == {Notification.Delivery.HANDED}
    assert notices_after == notices_before
    assert list(DeliveryHold.objects.values()) == holds_before
    held = Notification.objects.select_related("security_event").get(reference="7K2M-9QXA-B4TZ")
    assert held.security_event is not None
    assert held.security_event.type == "password_changed"
    assert Notification.objects.get(campaign_id=campaign.pk).status == Notification.Status.SENT
    newer = Notification.objects.create(
        reference="ZZZZ-ZZZZ-ZZZZ", channel="email", recipient="b@example.com", idempotency_key="n"
    )
    assert newer.pk > max(row["id"] for row in notices_before)

    assert ContentType.objects.get_for_model(Notification).pk == notification_type
    assert Permission.objects.filter(
        content_type_id=notification_type, codename="view_notification"
    ).exists()
    assert not ContentType.objects.filter(
        app_label="accounts", model__in=["notification", "deliveryhold"]
    ).exists()
    with connection.cursor() as cursor:
        for table in MOVED_TABLES:
            names = connection.introspection.get_constraints(cursor, table)
            assert not [name for name in names if name.startswith("accounts_")], table
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            assert cursor.fetchone()[0] == f"public.{table}_id_seq"
