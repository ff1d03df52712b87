"""Staff views of accounts and security events (read-only where it is audit)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.contacts import mask_email, mask_phone
from accounts.forms import PhoneNumberField
from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.holds import SecurityHoldActive, security_changes_check
from accounts.services.users import user_create, user_update


class UserAdminChangeForm(UserChangeForm):
    """The admin's account form: the phone cleaned to E.164; no password field at all.

    A new email or phone is refused on the form while the account is on a security hold,
    with the hold's end, before the service would refuse it.
    """

    password = None  # type: ignore[assignment]  # Django's way to drop an inherited field
    phone = PhoneNumberField(label=capfirst(_("phone number")), required=False)

    def clean(self) -> dict[str, Any] | None:
        cleaned_data = super().clean()
        if {"email", "phone"} & set(self.changed_data):
            try:
                security_changes_check(user=self.instance)
            except SecurityHoldActive as exc:
                raise ValidationError(str(exc), code="security_hold") from None
        return cleaned_data


class UserAdminCreationForm(AdminUserCreationForm):
    """The admin's form for a new account: email, phone (cleaned to E.164) and password."""

    phone = PhoneNumberField(label=capfirst(_("phone number")), required=False)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Staff edits of accounts, each saved through the service that records its events.

    A new login email, a new phone and a change of role or of the right to sign in have the
    same effects as anywhere else in the product (`accounts.services.users.user_update`).
    Holds, re-enrolment and freezes are only shown: their own flows set and clear them.
    Nobody sets another person's password here; its owner does, through a reset link.
    """

    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
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
    readonly_fields = [
        "password_state",
        "reenrolment_required",
        "security_hold_until",
        "frozen_at",
        "last_login",
        "date_joined",
    ]
    fieldsets = [
        (None, {"fields": ["email", "phone", "language", "password_state"]}),
        (
            _("Security"),
            {"fields": ["reenrolment_required", "security_hold_until", "frozen_at"]},
        ),
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

    @admin.display(description=_("password"))
    def password_state(self, obj: User) -> str:
        if obj.has_usable_password():
            return gettext("Set; only its owner can change it.")
        return gettext("Not set.")

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        raise PermissionDenied

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        context = AuditContext.from_request(request)
        if not change:
            created = user_create(
                email=obj.email,
                password=form.cleaned_data.get("password1") or None,
                phone=obj.phone,
                context=context,
            )
            # The admin goes on with the object it built (its log entry, its redirect).
            obj.pk, obj._state.adding, obj._state.db = created.pk, False, created._state.db
            return
        # The form has put its values on `obj`; the service compares them with the stored
        # row, so only what really changed is recorded.
        groups = form.cleaned_data.get("groups", obj.groups.all())
        user_update(
            user=obj,
            email=obj.email,
            phone=obj.phone,
            language=obj.language,
            is_active=obj.is_active,
            is_staff=obj.is_staff,
            is_superuser=obj.is_superuser,
            groups=groups,
            context=context,
        )
        obj.refresh_from_db()

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: list[Any], change: bool
    ) -> None:
        if not change:
            super().save_related(request, form, formsets, change)
            return
        # The groups were saved by `user_update` with the rest of the edit.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


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
