"""The outbox and the burst guard's holds, moved here from accounts with their rows.

accounts.0006 renamed the tables; this adds the models to this app's state without touching
them, and moves their content types from accounts to notifications, so the permissions that
hang off them (the supervisors' view of the outbox) and admin history stay attached.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MOVED_MODELS = ["notification", "deliveryhold"]


def _content_types_move(apps, schema_editor, from_label, to_label):
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    # A content type already created under the target label wins; the other one is stale.
    taken = set(
        content_types.filter(app_label=to_label, model__in=MOVED_MODELS).values_list(
            "model", flat=True
        )
    )
    content_types.filter(
        app_label=from_label, model__in=set(MOVED_MODELS) - taken
    ).update(app_label=to_label)


def content_types_forwards(apps, schema_editor):
    _content_types_move(apps, schema_editor, "accounts", "notifications")


def content_types_backwards(apps, schema_editor):
    _content_types_move(apps, schema_editor, "notifications", "accounts")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0006_outbox_moves_to_notifications"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DeliveryHold",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("template_key", models.CharField(max_length=80, unique=True)),
                        ("held_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("queued_in_window", models.PositiveIntegerField(default=0)),
                        ("released_at", models.DateTimeField(blank=True, null=True)),
                    ],
                ),
                migrations.CreateModel(
                    name="Notification",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("reference", models.CharField(max_length=16, unique=True)),
                        ("channel", models.CharField(choices=[("email", "Email"), ("sms", "SMS")], max_length=8)),
                        ("recipient", models.CharField(max_length=254)),
                        ("account_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                        ("template_key", models.CharField(max_length=80)),
                        ("language", models.CharField(default="en", max_length=8)),
                        ("context", models.JSONField(blank=True, default=dict)),
                        ("idempotency_key", models.CharField(max_length=200, unique=True)),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("held", "Held by the burst guard"), ("sent", "Sent"), ("failed", "Failed"), ("discarded", "Discarded by an operator")], default="pending", max_length=10)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_error", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("campaign", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.revocationcampaign")),
                        ("security_event", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.securityevent")),
                    ],
                    options={
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(condition=models.Q(("status", "pending")), fields=["next_attempt_at"], name="notification_pending_idx"),
                            models.Index(condition=models.Q(("campaign__isnull", True)), fields=["template_key", "created_at"], name="notification_burst_idx"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(condition=models.Q(("campaign__isnull", False)), fields=("campaign", "account_id"), name="one_notice_per_campaign_and_account"),
                            models.CheckConstraint(condition=models.Q(models.Q(("template_key__startswith", "security/"), _negated=True), ("security_event__isnull", False), _connector="OR"), name="security_notice_needs_event"),
                        ],
                    },
                ),
            ],
            # The tables, rows, constraints and indexes are there already (accounts.0006).
            database_operations=[],
        ),
        migrations.RunPython(content_types_forwards, content_types_backwards),
    ]
