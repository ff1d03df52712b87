"""Staff views of service tokens and their calls: read-only, and never a token or its hash."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from api.models import ServiceCall, ServiceToken


@admin.register(ServiceToken)
class ServiceTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued and revoked with `manage.py service_token`, which shows a token once."""

    list_display = ["name", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    fields = ["name", "scopes", "created_at", "last_used_at", "revoked_at"]


@admin.register(ServiceCall)
class ServiceCallAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "token", "account_id", "status_code", "ip_address"]
    list_filter = ["status_code", "token"]
    search_fields = ["=account_id"]
    date_hierarchy = "created_at"
    list_select_related = ["token"]
