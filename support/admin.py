"""Support queue in the admin: custom pages for agents, read-only lists for supervisors."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from accounts.contacts import mask_contacts_in
from support import selectors, views
from support.models import CaseApproval, CaseEvent, EmailChange, RecoveryCase
from support.roles import is_supervisor


class CaseRowsAdmin(ReadOnlyAdmin):
    """Rows that are cases or belong to one, shown only for cases the staff member may open.

    Lists, searches, the autocomplete JSON and every page of one row read through
    `selectors.case_rows_for_staff`; a row of a case that is not theirs answers 404, as an
    id that does not exist does.
    """

    case_field = "case"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.case_rows_for_staff(
            super().get_queryset(request),
            user=request.user,  # type: ignore[arg-type]
            case_field=self.case_field,
        )

    def _object_or_404(self, request: HttpRequest, object_id: str) -> None:
        if not re.fullmatch(r"[0-9]+", object_id) or self.get_object(request, object_id) is None:
            raise Http404

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._object_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._object_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)


@admin.register(RecoveryCase)
class RecoveryCaseAdmin(CaseRowsAdmin):
    """Supervisors browse cases; agents never pick from a list and land on the queue."""

    list_display = [
        "reference",
        "staff_status",
        "priority",
        "kind",
        "created_at",
        "claimed_by",
        "resolution",
    ]
    list_filter = ["status", "priority", "kind", "resolution"]
    search_fields = ["=reference"]
    fields = [
        "reference",
        "status",
        "priority",
        "kind",
        "resolution",
        "claimed_by",
        "lease_expires_at",
        "created_at",
        "queued_at",
        "closed_at",
    ]

    case_field = ""

    @admin.display(description=_("status"), ordering="status")
    def staff_status(self, obj: RecoveryCase) -> str:
        """The status in staff words (the model's labels are the customers')."""
        return str(selectors.status_for_staff(obj.status))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("queue/", wrap(views.queue), name="support_queue"),
            path("take-next/", wrap(views.take_next), name="support_take_next"),
            path("approvals/", wrap(views.approvals), name="support_approvals"),
            path("dashboard/", wrap(views.dashboard), name="support_dashboard"),
            path("<int:case_id>/work/", wrap(views.case_work), name="support_case_work"),
            path("<int:case_id>/renew/", wrap(views.case_renew), name="support_case_renew"),
            path(
                "<int:case_id>/evidence/<int:evidence_id>/",
                wrap(views.evidence_file),
                name="support_evidence",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not is_supervisor(request.user):
            return redirect("admin:support_queue")
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The admin sends any unmatched path here (`abc/work` included): only an id has a page.
        if not re.fullmatch(r"[0-9]+", object_id):
            raise Http404
        return redirect("admin:support_case_work", object_id)


CASE_EVENT_FIELDS = (
    "created_at",
    "case",
    "type",
    "actor",
    "visible_to_customer",
    "masked_message",
    "masked_details",
)


@admin.register(CaseEvent)
class CaseEventAdmin(CaseRowsAdmin):
    """The timeline rows, with every email address and phone number in them masked.

    A joined request's submission and a customer's message carry contacts typed by the
    customer; the case page's reveal with a reason is the one way to read them in full.
    """

    list_display = ["created_at", "case", "type", "actor"]
    list_filter = ["type"]
    search_fields = ["=case__reference"]
    fields = readonly_fields = CASE_EVENT_FIELDS

    @admin.display(description=_("message"))
    def masked_message(self, obj: CaseEvent) -> str:
        return mask_contacts_in(obj.message)

    @admin.display(description=_("details"))
    def masked_details(self, obj: CaseEvent) -> Any:
        return mask_contacts_in(obj.details)


@admin.register(CaseApproval)
class CaseApprovalAdmin(CaseRowsAdmin):
    list_display = ["case", "action", "requested_by", "decided_by", "approved", "created_at"]
    exclude = ["note"]
    readonly_fields = ["masked_note"]

    @admin.display(description=_("note"))
    def masked_note(self, obj: CaseApproval) -> str:
        return mask_contacts_in(obj.note)


@admin.register(EmailChange)
class EmailChangeAdmin(CaseRowsAdmin):
    list_display = ["case", "status", "effective_at", "created_at"]
    exclude = ["cancel_token_hash", "new_email"]
