"""The agents' and supervisors' pages inside the OTP-protected admin.

Every view is wrapped by `admin.site.admin_view` (staff with a verified second factor).
The role check happens here, the case check in `selectors.case_get_for_agent`, and both
again in the services. Each action of a page is one form and one service: the view checks
the form and hands its `cleaned_data` to the service, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.forms import StaffRecheckForm
from accounts.models import User
from accounts.requests import signed_in_user
from config.forms import ActionForm
from support import selectors
from support.charts import line_chart_svg
from support.forms import (
    ApprovalDecisionForm,
    AskCustomerForm,
    AttestDocumentForm,
    DocumentApprovalRequestForm,
    EmailChangeApprovalRequestForm,
    EmailChangeStartForm,
    EscalateForm,
    ReassignForm,
    RejectForm,
    ReleaseForm,
    RequesterForm,
    RevealContactForm,
)
from support.models import CaseApproval, CaseEvidence, CaseProof, CaseStatus, RecoveryCase
from support.roles import is_agent, is_supervisor
from support.services import actions
from support.services.queue import (
    CaseActionError,
    case_claim_next,
    case_held_by,
    case_reassign,
    case_release,
)

ActionTable = Mapping[str, tuple[type[forms.Form], Callable[..., object]]]

# The case page: service(case_id=<case>, agent=<the staff member>, **form.cleaned_data).
# Actions that rest on proofs name the requester they are for (`requester`).
CASE_ACTIONS: ActionTable = {
    "send_phone_code": (
        RequesterForm,
        partial(actions.case_send_proof_code, kind=CaseProof.Kind.PHONE),
    ),
    "send_email_code": (
        RequesterForm,
        partial(actions.case_send_proof_code, kind=CaseProof.Kind.EMAIL),
    ),
    "attest_document": (AttestDocumentForm, actions.case_attest_document),
    "reveal": (RevealContactForm, actions.case_reveal_contact),
    "tell_login_email": (RequesterForm, actions.case_tell_login_email),
    "reauthenticate": (RequesterForm, actions.case_reauthenticate),
    "request_document_approval": (
        DocumentApprovalRequestForm,
        partial(actions.case_approval_request, action=CaseApproval.Action.DOCUMENT),
    ),
    "start_email_change": (EmailChangeStartForm, actions.case_email_change_start),
    "request_email_change_approval": (
        EmailChangeApprovalRequestForm,
        partial(actions.case_approval_request, action=CaseApproval.Action.CHANGE_EMAIL),
    ),
    "ask_customer": (AskCustomerForm, actions.case_ask_customer),
    "reject": (RejectForm, actions.case_reject),
    "escalate": (EscalateForm, actions.case_escalate),
    "release": (ReleaseForm, case_release),
    "reassign": (ReassignForm, case_reassign),
}
SUPERVISOR_ACTIONS = frozenset({"reassign"})

# The approvals page: service(supervisor=<the supervisor>, **form.cleaned_data).
APPROVAL_ACTIONS: ActionTable = {
    "approve": (ApprovalDecisionForm, partial(actions.case_approval_decide, approve=True)),
    "deny": (ApprovalDecisionForm, partial(actions.case_approval_decide, approve=False)),
}


def _require_agent(request: HttpRequest) -> User:
    """The signed-in agent or supervisor; anyone else is refused."""
    if not is_agent(request.user):
        raise PermissionDenied
    return signed_in_user(request)


def _require_supervisor(request: HttpRequest) -> None:
    if not is_supervisor(request.user):
        raise PermissionDenied


def _context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


def _action_form(
    table: ActionTable, action: str, data=None, *, request: HttpRequest | None = None
) -> forms.Form:
    """The action's form; its own ids, since one page shows the forms of many actions.

    A form that asks for a fresh authenticator code is bound to the signed-in staff member.
    """
    form_class = table[action][0]
    auto_id = f"id_{action}_%s"
    if request is not None and issubclass(form_class, StaffRecheckForm):
        return form_class.for_request(request, data, auto_id=auto_id)
    return form_class(data, auto_id=auto_id)


def _posted_action(request: HttpRequest, table: ActionTable) -> tuple[str | None, forms.Form]:
    """The POSTed action and its bound form, or (None, the form that refused the action)."""
    chosen = ActionForm(request.POST, actions=table)
    if not chosen.is_valid():
        return None, chosen
    action = chosen.cleaned_data["action"]
    return action, _action_form(table, action, request.POST, request=request)


def _errors_as_messages(request: HttpRequest, form: forms.Form) -> None:
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        for error in errors:
            if field is None or isinstance(form, ActionForm):
                messages.error(request, str(error))
            else:
                messages.error(request, f"{field.label}: {error}")


def _case_unavailable(request: HttpRequest) -> HttpResponse:
    """One answer for a case that does not exist and for one the staff member may not open."""
    return render(
        request,
        "admin/support/case_unavailable.html",
        _context(request, title=_("Case not available")),
        status=404,
    )


def queue(request: HttpRequest) -> HttpResponse:
    """The agent's start page: their current case, or the button to take the next one."""
    agent = _require_agent(request)
    return render(
        request,
        "admin/support/queue.html",
        _context(
            request,
            title="Support queue",
            current=case_held_by(agent=agent),
            stats=selectors.queue_stats(hours=1),
            supervisor=is_supervisor(request.user),
        ),
    )


@require_POST
def take_next(request: HttpRequest) -> HttpResponse:
    agent = _require_agent(request)
    case = case_claim_next(agent=agent)
    if case is None:
        messages.info(request, "The queue is empty. Well done.")
        return redirect("admin:support_queue")
    return redirect("admin:support_case_work", case.pk)


def case_work(request: HttpRequest, case_id: int) -> HttpResponse:
    """The case page (GET) and its actions (POST), for the case's holder or a supervisor."""
    agent = _require_agent(request)
    try:
        case = selectors.case_get_for_agent(case_id=case_id, user=agent)
    except RecoveryCase.DoesNotExist:
        return _case_unavailable(request)
    if request.method == "POST":
        return _case_action(request, case)
    return _case_page(request, case)


def _case_page(
    request: HttpRequest,
    case: RecoveryCase,
    *,
    refused: tuple[str | None, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The case page; after refused input, with that action's form bound and its errors."""
    action_forms = {action: _action_form(CASE_ACTIONS, action) for action in CASE_ACTIONS}
    if refused is not None:
        action, form = refused
        _errors_as_messages(request, form)
        if action is not None:
            action_forms[action] = form
    holds = case.status == CaseStatus.CLAIMED and case.claimed_by_id == request.user.pk
    return render(
        request,
        "admin/support/case_work.html",
        _context(
            request,
            title=f"Case {case.reference}",
            case=case,
            holds=holds,
            supervisor=is_supervisor(request.user),
            account=selectors.account_summary_for_agent(user=case.matched_user),
            requesters=selectors.case_requesters_for_agent(case=case),
            timeline=selectors.case_timeline_for_staff(case=case),
            forms=action_forms,
            revealed=request.session.pop("support_revealed", None),
        ),
        status=status,
    )


def _case_action(request: HttpRequest, case: RecoveryCase) -> HttpResponse:
    """Check the POSTed action's form, then run its service; a refusal comes back in words.

    Input the form refuses answers 400 with the page and the errors, and nothing is
    written; a service that refuses (the policy, the case's state) is shown as a message.
    """
    action, form = _posted_action(request, CASE_ACTIONS)
    if action in SUPERVISOR_ACTIONS:
        _require_supervisor(request)
    if action is None or not form.is_valid():
        return _case_page(request, case, refused=(action, form), status=400)
    service = CASE_ACTIONS[action][1]
    try:
        result = service(case_id=case.pk, agent=signed_in_user(request), **form.cleaned_data)
    except CaseActionError as exc:
        messages.error(request, str(exc))
        return redirect("admin:support_case_work", case.pk)
    if action == "reveal":
        # Shown on the next view of the page only, never kept in the URL.
        request.session["support_revealed"] = {
            "field": form.cleaned_data["field"],
            "requester": form.cleaned_data["requester"],
            "value": result,
        }
        return redirect("admin:support_case_work", case.pk)
    messages.success(request, _("Done."))
    if case_held_by(agent=signed_in_user(request)) is None and not is_supervisor(request.user):
        return redirect("admin:support_queue")
    return redirect("admin:support_case_work", case.pk)


def evidence_file(
    request: HttpRequest, case_id: int, evidence_id: int
) -> FileResponse | HttpResponse:
    """Evidence is served only here, to the case's holder or a supervisor, never publicly."""
    agent = _require_agent(request)
    try:
        case = selectors.case_get_for_agent(case_id=case_id, user=agent)
    except RecoveryCase.DoesNotExist:
        return _case_unavailable(request)
    try:
        evidence = selectors.case_evidence_get(case=case, evidence_id=evidence_id)
    except CaseEvidence.DoesNotExist:
        raise Http404 from None
    response = FileResponse(evidence.file.open("rb"), content_type=evidence.content_type)
    response["Content-Disposition"] = f'inline; filename="evidence-{evidence.pk}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


def approvals(request: HttpRequest) -> HttpResponse:
    """The supervisor's own step: pending four-eyes decisions."""
    _require_supervisor(request)
    status = 200
    if request.method == "POST":
        action, form = _posted_action(request, APPROVAL_ACTIONS)
        if action is not None and form.is_valid():
            service = APPROVAL_ACTIONS[action][1]
            try:
                service(supervisor=request.user, **form.cleaned_data)
            except CaseActionError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("Decision recorded."))
            return redirect("admin:support_approvals")
        _errors_as_messages(request, form)
        status = 400
    return render(
        request,
        "admin/support/approvals.html",
        _context(
            request,
            title="Pending approvals",
            approvals=selectors.approval_list_pending(),
        ),
        status=status,
    )


def dashboard(request: HttpRequest) -> HttpResponse:
    _require_supervisor(request)
    stats = selectors.queue_stats()
    chart = line_chart_svg(
        {
            "arrivals": ("#0b5cad", stats["arrivals_hourly"]),
            "resolutions": ("#1a7f37", stats["resolutions_hourly"]),
        },
        title="Arrivals and resolutions per hour, last 48 hours",
    )
    return render(
        request,
        "admin/support/dashboard.html",
        _context(
            request,
            title="Supervisor dashboard",
            stats=stats,
            chart=chart,
        ),
    )
