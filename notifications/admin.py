"""Staff view of the outbox: read-only, without message content; contacts masked."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from accounts.contacts import mask_contacts_in
from notifications.models import CONTEXT_REMOVED, Notification


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
    exclude = ["context", "recipient", "idempotency_key", "last_error"]
    readonly_fields = ["content", "masked_idempotency_key", "masked_last_error"]

    @admin.display(description=_("content"))
    def content(self, obj: Notification) -> str:
        # Names only: until the row is sent, failed or discarded a value may be a live
        # link or code, and after that it is gone.
        if obj.status == Notification.Status.SENT:
            removed = _("[removed after delivery]")
        else:
            removed = _("[removed]")
        return "; ".join(
            f"{name}: {removed if value == CONTEXT_REMOVED else _('[hidden]')}"
            for name, value in sorted(obj.context.items())
        )

    @admin.display(description=_("idempotency key"))
    def masked_idempotency_key(self, obj: Notification) -> str:
        # Some keys name the address or number they were sent to.
        return mask_contacts_in(obj.idempotency_key)

    @admin.display(description=_("last error"))
    def masked_last_error(self, obj: Notification) -> str:
        # A mail server that refuses a recipient names the address in its error.
        return mask_contacts_in(obj.last_error)
