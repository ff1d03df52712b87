"""Staff views of accounts, security events and the outbox (read-only where it is audit)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.contacts import mask_email, mask_phone
from accounts.models import Notification, SecurityEvent, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = [
        "masked_email",
        "masked_phone",
        "is_staff",
        "reenrolment_required",
        "date_joined",
        "last_login",
    ]
    list_filter = ["is_staff", "is_active", "reenrolment_required"]
    search_fields = ["email", "phone"]
    readonly_fields = ["last_login", "date_joined", "password"]
    fieldsets = [
        (None, {"fields": ["email", "phone", "language", "password"]}),
        (_("Security"), {"fields": ["reenrolment_required", "security_hold_until"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "phone", "password1", "password2"]})]

    @admin.display(description=_("email"))
    def masked_email(self, obj: User) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: User) -> str:
        return mask_phone(obj.phone)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "account_id", "actor_id", "ip_address"]
    list_filter = ["type"]
    search_fields = ["=account_id"]
    date_hierarchy = "created_at"


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
