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
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.forms import StaffRecheckForm
from accounts.models import User
from accounts.requests import signed_in_user
from config.forms import ActionForm
from notifications.selectors import notification_last_id
from support import selectors
from support.charts import line_chart_svg
from support.forms import (
    ApprovalDecisionForm,
    AskCustomerForm,
    AttestDocumentForm,
    ConfirmationForm,
    DocumentApprovalRequestForm,
    EmailChangeApprovalRequestForm,
    EmailChangeStartForm,
    EscalateForm,
    NoteForm,
    ReassignForm,
    RejectForm,
    ReleaseForm,
    RequesterForm,
    RevealContactForm,
)
from support.models import CaseApproval, CaseEvidence, CaseProof, RecoveryCase
from support.roles import is_agent, is_supervisor
from support.services import actions
from support.services.queue import (
    CaseActionError,
    case_claim_expire,
    case_claim_next,
    case_held_by,
    case_lease_renew,
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
    "note": (NoteForm, actions.case_note_add),
    "reassign": (ReassignForm, case_reassign),
    "approve": (
        ApprovalDecisionForm,
        partial(actions.case_approval_decide_on_case, approve=True),
    ),
    "deny": (
        ApprovalDecisionForm,
        partial(actions.case_approval_decide_on_case, approve=False),
    ),
}
SUPERVISOR_ACTIONS = frozenset({"reassign", "approve", "deny"})

# What the summary after an action says was done, and the confirmation's button.
ACTION_DONE = {
    "send_phone_code": gettext_lazy("Code sent to the phone on file"),
    "send_email_code": gettext_lazy("Code sent to the email on file"),
    "attest_document": gettext_lazy("Document check recorded"),
    "tell_login_email": gettext_lazy("Login email told; case resolved"),
    "reauthenticate": gettext_lazy("Re-authenticated; case resolved"),
    "request_document_approval": gettext_lazy("Sent to a supervisor for approval"),
    "start_email_change": gettext_lazy("Login email change started"),
    "request_email_change_approval": gettext_lazy("Sent to a supervisor for approval"),
    "ask_customer": gettext_lazy("Question sent; the case waits for the customer"),
    "reject": gettext_lazy("Case rejected"),
    "escalate": gettext_lazy("Case escalated"),
    "release": gettext_lazy("Case given back to the queue"),
    "note": gettext_lazy("Internal note added"),
    "reassign": gettext_lazy("Case reassigned"),
    "approve": gettext_lazy("Approved"),
    "deny": gettext_lazy("Denied"),
}
CONFIRM_BUTTON = {
    "reauthenticate": gettext_lazy("Yes, re-authenticate"),
    "tell_login_email": gettext_lazy("Yes, tell the login email"),
    "reject": gettext_lazy("Yes, reject"),
    "approve": gettext_lazy("Yes, approve"),
}

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


def _previewed_action(
    request: HttpRequest, table: ActionTable
) -> tuple[str | None, forms.Form | None]:
    """The POSTed action and its input checked for the confirmation step, or (action, None).

    The preview never checks (nor spends) a fresh authenticator code: the confirmation
    asks for it, and the confirmed POST checks it with everything else.
    """
    chosen = ActionForm(request.POST, actions=table)
    if not chosen.is_valid():
        return None, None
    action = chosen.cleaned_data["action"]
    form = _action_form(table, action, request.POST)
    if form.is_valid():
        return action, form
    if isinstance(form, StaffRecheckForm):
        # Without a staff member bound, a code form answers "missing" once its fields are valid.
        errors = form.errors.as_data()
        if set(errors) == {NON_FIELD_ERRORS} and all(
            error.code == "missing" for error in errors[NON_FIELD_ERRORS]
        ):
            return action, form
    return action, None


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
    """The agent's start page (where staff land after sign-in): their current case, or the
    button to take the next one. Staff without a support role go on to the admin index."""
    if not is_agent(request.user):
        return redirect("admin:index")
    agent = signed_in_user(request)
    lapsed = case_claim_expire(agent=agent)
    if lapsed is not None:
        messages.warning(
            request,
            _("Your claim on %(reference)s ran out; it went back to the queue.")
            % {"reference": lapsed.reference},
        )
    return render(
        request,
        "admin/support/queue.html",
        _context(
            request,
            title=_("Support queue"),
            current=case_held_by(agent=agent),
            returning=selectors.case_list_returning_to(agent=agent),
            stats=selectors.queue_stats(hours=1),
            supervisor=is_supervisor(request.user),
        ),
    )


def _take_next(request: HttpRequest, agent: User) -> HttpResponse:
    case = case_claim_next(agent=agent)
    if case is None:
        messages.info(request, _("The queue is empty. Well done."))
        return redirect("admin:support_queue")
    return redirect("admin:support_case_work", case.pk)


@transaction.non_atomic_requests
@require_POST
def take_next(request: HttpRequest) -> HttpResponse:
    """Take next outside ATOMIC_REQUESTS: the claim is one statement and its own transaction,
    so the request's BEGIN, savepoint and COMMIT around it would be four round trips more
    for nothing; the rarer paths (renewing the held case, an expired lease) open their own.
    """
    return _take_next(request, _require_agent(request))


def _lease_expired(request: HttpRequest, case_id: int) -> HttpResponse:
    """The page for a claim that ran out: what happened, in words, and the way back."""
    agent = signed_in_user(request)
    case_claim_expire(agent=agent)
    lapsed = selectors.case_claim_lapsed(case_id=case_id, user=agent)
    return render(
        request,
        "admin/support/lease_expired.html",
        _context(
            request,
            title=_("Your time on this case ran out"),
            lapsed=lapsed,
            lease_minutes=settings.CASE_LEASE_MINUTES,
        ),
        status=409,
    )


def case_work(request: HttpRequest, case_id: int) -> HttpResponse:
    """The case page (GET) and its actions (POST), for the case's holder or a supervisor."""
    agent = _require_agent(request)
    try:
        case = selectors.case_get_for_agent(case_id=case_id, user=agent)
    except RecoveryCase.DoesNotExist:
        if selectors.case_claim_lapsed(case_id=case_id, user=agent) is not None:
            return _lease_expired(request, case_id)
        return _case_unavailable(request)
    if request.method == "POST":
        return _case_action(request, case)
    return _case_page(request, case)


@require_POST
def case_renew(request: HttpRequest, case_id: int) -> HttpResponse:
    """Keep the claim: the page's activity (or its button) renews the lease."""
    agent = _require_agent(request)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if selectors.case_claim_lapsed(case_id=case_id, user=agent) is not None:
        if wants_json:
            case_claim_expire(agent=agent)
            return JsonResponse({"expired": True}, status=409)
        return _lease_expired(request, case_id)
    try:
        case = case_lease_renew(case=RecoveryCase(pk=case_id), agent=agent)
    except CaseActionError:
        # Not theirs (or no such case): the same answer as the case page gives.
        if wants_json:
            return JsonResponse({"expired": True}, status=404)
        return _case_unavailable(request)
    if wants_json:
        assert case.lease_expires_at is not None
        return JsonResponse({"expires_at": case.lease_expires_at.isoformat()})
    return redirect("admin:support_case_work", case.pk)


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
    user = signed_in_user(request)
    requesters = selectors.case_requesters_for_agent(case=case)
    offered = selectors.case_actions_offered(case=case, requesters=requesters, user=user)
    return render(
        request,
        "admin/support/case_work.html",
        _context(
            request,
            title=_("Case %(reference)s") % {"reference": case.reference},
            case=case,
            holds=selectors.case_lease_active(case=case, user=user),
            supervisor=is_supervisor(user),
            offered=offered,
            account=selectors.account_summary_for_agent(user=case.matched_user),
            history=selectors.account_history_for_agent(case=case),
            requester_rows=[(r, offered.for_requester(r.request.pk)) for r in requesters],
            status_words=selectors.status_for_staff(case.status),
            timeline=selectors.case_timeline_in_words(case=case),
            age=selectors.case_age_against_sla(case=case),
            forms=action_forms,
            revealed=request.session.pop("support_revealed", None),
            lease_warning_seconds=settings.SUPPORT_LEASE_WARNING_MINUTES * 60,
        ),
        status=status,
    )


def _confirmation_page(
    request: HttpRequest,
    case: RecoveryCase,
    action: str,
    form: forms.Form,
    *,
    back: str | None = None,
) -> HttpResponse:
    """The step before an irreversible action: what it will do, and the buttons to do it."""
    return render(
        request,
        "admin/support/case_confirm.html",
        _context(
            request,
            title=_("Confirm: %(action)s") % {"action": CONFIRM_BUTTON[action]},
            case=case,
            action=action,
            form=form,
            consequences=selectors.case_action_consequences(
                case=case, action=action, cleaned_data=form.cleaned_data
            ),
            confirm_label=CONFIRM_BUTTON[action],
            offers_next=action in selectors.CLOSING_ACTIONS,
            back_url=back or reverse("admin:support_case_work", args=[case.pk]),
        ),
    )


def _case_action(request: HttpRequest, case: RecoveryCase) -> HttpResponse:
    """Check the POSTed action's form, then run its service; a refusal comes back in words.

    Input the form refuses answers 400 with the page and the errors, and nothing is
    written; a service that refuses (the policy, the case's state) is shown as a message.
    """
    action, preview = _previewed_action(request, CASE_ACTIONS)
    if action in SUPERVISOR_ACTIONS:
        _require_supervisor(request)
    step = ConfirmationForm(request.POST)
    if not step.is_valid():
        return _case_page(request, case, refused=(None, step), status=400)
    agent = signed_in_user(request)
    if (
        action in selectors.CONFIRMED_ACTIONS
        and not step.cleaned_data["confirmed"]
        and preview is not None
        and selectors.case_action_is_offered(
            case=case, user=agent, action=action, cleaned_data=preview.cleaned_data
        )
    ):
        # An action the page would not offer goes straight to its service, which refuses
        # it in words; only one that would act asks to be confirmed first.
        return _confirmation_page(request, case, action, preview)
    action, form = _posted_action(request, CASE_ACTIONS)
    if action is None or not form.is_valid():
        return _case_page(request, case, refused=(action, form), status=400)
    mark = notification_last_id()
    service = CASE_ACTIONS[action][1]
    try:
        result = service(case_id=case.pk, agent=agent, **form.cleaned_data)
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
    sent = selectors.case_notifications_sent_after(case=case, after_id=mark)
    summary = _("%(done)s: %(reference)s.") % {
        "done": ACTION_DONE[action],
        "reference": case.reference,
    }
    summary += " " + (
        _("Sent: %(sent)s.") % {"sent": "; ".join(sent)} if sent else _("Nothing was sent.")
    )
    messages.success(request, summary)
    if case_held_by(agent=agent) is None:
        if step.cleaned_data["then"] == "next":
            return _take_next(request, agent)
        if not is_supervisor(agent):
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
        action, preview = _previewed_action(request, APPROVAL_ACTIONS)
        step = ConfirmationForm(request.POST)
        if (
            action in selectors.CONFIRMED_ACTIONS
            and preview is not None
            and step.is_valid()
            and not step.cleaned_data["confirmed"]
        ):
            approval = CaseApproval.objects.select_related("case").get(
                pk=preview.cleaned_data["approval_id"]
            )
            if selectors.case_action_is_offered(
                case=approval.case,
                user=signed_in_user(request),
                action=action,
                cleaned_data=preview.cleaned_data,
            ):
                return _confirmation_page(
                    request, approval.case, action, preview, back=reverse("admin:support_approvals")
                )
        action, form = _posted_action(request, APPROVAL_ACTIONS)
        if action is not None and form.is_valid() and step.is_valid():
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
            title=_("Pending approvals"),
            approvals=selectors.approval_list_pending_with_proofs(),
            form=ApprovalDecisionForm(auto_id="id_approval_%s"),
        ),
        status=status,
    )


def dashboard(request: HttpRequest) -> HttpResponse:
    """The supervisor's figures (each defined in `selectors.queue_stats`)."""
    _require_supervisor(request)
    stats = selectors.queue_stats()
    chart = line_chart_svg(
        {
            _("arrivals"): ("#0b5cad", stats["arrivals_hourly"]),
            _("resolutions"): ("#1a7f37", stats["resolutions_hourly"]),
        },
        title=_("Arrivals and resolutions per hour, last 48 hours (UTC)"),
        x_labels=[hour[11:16] for hour in stats["hours"]],
    )
    return render(
        request,
        "admin/support/dashboard.html",
        _context(request, title=_("Supervisor dashboard"), stats=stats, chart=chart),
    )
