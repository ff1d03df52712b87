"""Staff views of accounts and security events: contact data masked, audit read-only."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.contacts import mask_contacts_in, mask_email, mask_phone
from accounts.forms import PhoneNumberField, StaffRecheckForm
from accounts.models import SecurityEvent, User
from accounts.selectors import user_list_by_contact
from accounts.services.audit import AuditContext
from accounts.services.holds import (
    REASON_MAX_LENGTH,
    HoldLiftRefused,
    hold_end_in_words,
    security_hold_lift,
)
from accounts.services.users import user_create, user_update
from support.roles import is_supervisor


class UserAdminChangeForm(UserChangeForm):
    """The admin's account form: language, the sign-in right and staff roles; no password.

    The login email and the phone are shown masked and cannot be edited here: a change of
    either goes through the recovery policy (proofs, a supervisor's approval bound to the
    change, a waiting period every contact can cancel), which a form field would bypass.
    """

    password = None  # type: ignore[assignment]  # Django's way to drop an inherited field

    class Meta(UserChangeForm.Meta):
        model = User
        fields = ("language", "is_active", "is_staff", "is_superuser", "groups")  # type: ignore[assignment]


class UserAdminCreationForm(AdminUserCreationForm):
    """The admin's form for a new account: email, phone (cleaned to E.164) and password."""

    phone = PhoneNumberField(label=capfirst(_("phone number")), required=False)


class HoldLiftForm(StaffRecheckForm):
    """Why a supervisor lifts a hold (required, kept in the audit), confirmed with a fresh
    authenticator code."""

    recheck_action = "security_hold_lift"

    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say why the hold is lifted.")},
    )


# The query-string parameters Django's list filters write: a choice or a flag (`exact`,
# `isnull`), a related row (`id__exact`), an empty field (`isempty`); the date drill-down
# writes a year, month and day.
FILTER_LOOKUPS = ("exact", "isnull", "id__exact", "isempty")
DATE_HIERARCHY_LOOKUPS = ("year", "month", "day")


def lookups_offered(model_admin: admin.ModelAdmin, request: HttpRequest | None) -> set[str]:
    """The query-string lookups the list's own filters and date drill-down produce."""
    offered: set[str] = set()
    list_filter = (
        model_admin.get_list_filter(request) if request is not None else model_admin.list_filter
    )
    for item in list_filter:
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            offered.add(str(item.parameter_name))
            continue
        name = item[0] if isinstance(item, (list, tuple)) else item
        offered.update(f"{name}__{lookup}" for lookup in FILTER_LOOKUPS)
    if model_admin.date_hierarchy:
        offered.update(f"{model_admin.date_hierarchy}__{part}" for part in DATE_HIERARCHY_LOOKUPS)
    return offered


class OfferedLookupsOnly(admin.ModelAdmin):
    """An admin list that filters only by the filters it shows.

    Django's list takes any lookup on the model's own fields from the query string
    (`?email__startswith=sa`, `?context__link_token__startswith=Qk`, `?key__startswith=3F`)
    and shows whether a row matched: a way to read a masked contact, a token kept in the
    outbox or an authenticator's secret a character at a time. Any other lookup answers
    400, whether the guess was right or wrong.
    """

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        return lookup in lookups_offered(self, request) and super().lookup_allowed(
            lookup, value, request
        )


@admin.register(User)
class UserAdmin(OfferedLookupsOnly, DjangoUserAdmin):
    """Staff edits of accounts, each saved through the service that records its events.

    A new login email, a new phone and a change of role or of the right to sign in have the
    same effects as anywhere else in the product (`accounts.services.users.user_update`).
    Holds, re-enrolment and freezes are only shown: their own flows set and clear them,
    except that a supervisor may lift a hold with a reason (`lift_hold_view`). Nobody sets
    another person's password here; its owner does, through a reset link.
    """

    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    # Not by email: the order of rows would place a masked address among known ones.
    ordering = ["-pk"]
    list_display = [
        "masked_email",
        "masked_phone",
        "is_staff",
        "reenrolment_required",
        "date_joined",
        "last_login",
    ]
    list_filter = ["is_staff", "is_active", "reenrolment_required"]
    # Only the search box and the autocomplete need this: `get_search_results` matches
    # whole values, never parts.
    search_fields = ["email"]
    readonly_fields = [
        "masked_email",
        "masked_phone",
        "password_state",
        "reenrolment_required",
        "hold_state",
        "frozen_at",
        "last_login",
        "date_joined",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "masked_email",
                    "masked_phone",
                    "language",
                    "password_state",
                ],
                "description": _(
                    "The login email and the phone change only through a recovery case: "
                    "proofs, a supervisor's approval and a waiting period the customer can "
                    "cancel."
                ),
            },
        ),
        (
            _("Security"),
            {"fields": ["reenrolment_required", "hold_state", "frozen_at"]},
        ),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "phone", "password1", "password2"]})]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[User], search_term: str
    ) -> tuple[QuerySet[User], bool]:
        return user_list_by_contact(queryset, term=search_term), False

    @admin.display(description=_("email"))
    def masked_email(self, obj: User) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: User) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("security hold until"))
    def hold_state(self, obj: User) -> str:
        if not obj.on_security_hold or obj.security_hold_until is None:
            return gettext("No hold.")
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            hold_end_in_words(obj.security_hold_until),
            reverse("admin:accounts_user_lift_hold", args=[obj.pk]),
            gettext("Lift the hold (supervisors)"),
        )

    def get_urls(self):
        return [
            path(
                "<int:user_id>/lift-hold/",
                self.admin_site.admin_view(self.lift_hold_view),
                name="accounts_user_lift_hold",
            ),
            *super().get_urls(),
        ]

    def lift_hold_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        """A supervisor ends an account's security hold, with a reason (audited, notified)."""
        if not is_supervisor(request.user):
            raise PermissionDenied
        account = get_object_or_404(User, pk=user_id)
        form = HoldLiftForm.for_request(request, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                security_hold_lift(
                    user=account,
                    supervisor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                    context=AuditContext.from_request(request),
                )
            except HoldLiftRefused as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, gettext("The security hold was lifted."))
                return HttpResponseRedirect(
                    reverse("admin:accounts_user_change", args=[account.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Lift the security hold"),
            "opts": self.opts,
            "original": account,
            "form": form,
            "hold_end": hold_end_in_words(account.security_hold_until)
            if account.on_security_hold and account.security_hold_until
            else "",
        }
        status = 400 if form.is_bound else 200
        return TemplateResponse(
            request, "admin/accounts/user/lift_hold.html", context, status=status
        )

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


class ReadOnlyAdmin(OfferedLookupsOnly):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


SECURITY_EVENT_FIELDS = (
    "created_at",
    "type",
    "account_id",
    "actor_id",
    "ip_address",
    "user_agent",
    "masked_details",
    "seq",
    "hash",
)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "account_id", "actor_id", "ip_address"]
    list_filter = ["type"]
    search_fields = ["=account_id"]
    date_hierarchy = "created_at"
    fields = readonly_fields = SECURITY_EVENT_FIELDS

    @admin.display(description=_("details"))
    def masked_details(self, obj: SecurityEvent) -> Any:
        return mask_contacts_in(obj.details)


# Third-party admins that would show a customer's contacts in full or change a factor or
# the login email outside the services: allauth's addresses (a verified second address
# signs in and can be made primary), django-otp's devices (adding one is a new factor,
# its pages show the secret) and allauth's sessions. Devices and sessions stay visible,
# read-only; the login email is on the account's page, masked.
for _model in (EmailAddress, TOTPDevice, UserSession):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    fields = ["name", "user", "confirmed", "created_at", "last_used_at"]
    list_select_related = ["user"]


@admin.register(WebAuthnCredential)
class PasskeyAdmin(ReadOnlyAdmin):
    """Passkeys, visible to staff; only their owner adds or removes one (services)."""

    list_display = ["name", "user", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    fields = ["name", "user", "confirmed", "created_at", "last_used_at"]
    list_select_related = ["user"]


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    list_display = ["user", "ip", "created_at", "last_seen_at"]
    fields = ["user", "ip", "user_agent", "created_at", "last_seen_at"]
    list_select_related = ["user"]
