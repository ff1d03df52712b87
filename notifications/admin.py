"""Staff view of the outbox: read-only, without message content or recipients."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "channel",
        "template_key",
        "status",
        "attempts",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "channel", "template_key"]
    search_fields = ["=reference", "=account_id"]
    exclude = ["context", "recipient"]
