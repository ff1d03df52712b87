"""The agents' and supervisors' pages inside the OTP-protected admin.

Every view is wrapped by `admin.site.admin_view` (staff with a verified second factor);
the role and case-holder checks happen here and again in the services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import User
from support import selectors
from support.canned import CANNED_REPLIES, REJECTION_REASONS
from support.charts import line_chart_svg
from support.models import CaseApproval, CaseProof, CaseStatus
from support.roles import is_agent, is_supervisor
from support.services import actions
from support.services.queue import (
    CaseActionError,
    case_claim_next,
    case_held_by,
    case_reassign,
    case_release,
)


def _require_agent(request: HttpRequest) -> None:
    if not is_agent(request.user):
        raise PermissionDenied


def _require_supervisor(request: HttpRequest) -> None:
    if not is_supervisor(request.user):
        raise PermissionDenied


def _context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


def queue(request: HttpRequest) -> HttpResponse:
    """The agent's start page: their current case, or the button to take the next one."""
    _require_agent(request)
    return render(
        request,
        "admin/support/queue.html",
        _context(
            request,
            title="Support queue",
            current=case_held_by(agent=request.user),
            stats=selectors.queue_stats(hours=1),
            supervisor=is_supervisor(request.user),
        ),
    )


@require_POST
def take_next(request: HttpRequest) -> HttpResponse:
    _require_agent(request)
    case = case_claim_next(agent=request.user)
    if case is None:
        messages.info(request, "The queue is empty. Well done.")
        return redirect("admin:support_queue")
    return redirect("admin:support_case_work", case.pk)


def _case_visible(request: HttpRequest, case_id: int):
    """The case if this staff member may see it: its holder, or any supervisor."""
    case = selectors.case_for_staff(case_id=case_id)
    if case is None:
        raise Http404
    if is_supervisor(request.user) or (
        case.status == CaseStatus.CLAIMED and case.claimed_by_id == request.user.pk
    ):
        return case
    raise PermissionDenied


def case_work(request: HttpRequest, case_id: int) -> HttpResponse:
    _require_agent(request)
    # The holder check happens here for actions too, not only in the services.
    case = _case_visible(request, case_id)
    if request.method == "POST":
        return _case_action(request, case_id)
    holds = case.status == CaseStatus.CLAIMED and case.claimed_by_id == request.user.pk
    return render(
        request,
        "admin/support/case_work.html",
        _context(
            request,
            title=f"Case {case.reference}",
            case=case,
            holds=holds,
            account=selectors.account_summary_for_agent(user=case.matched_user),
            submitted=selectors.case_submission_for_agent(case=case),
            proofs={p.kind: p for p in case.proofs.all()},
            timeline=selectors.case_timeline_for_staff(case=case),
            reauth_allowed=actions.reauthentication_allowed(case),
            canned=CANNED_REPLIES,
            reasons=REJECTION_REASONS,
            revealed=request.session.pop("support_revealed", None),
            agents=User.objects.filter(is_staff=True, is_active=True).order_by("email")
            if is_supervisor(request.user)
            else [],
        ),
    )


def _case_action(request: HttpRequest, case_id: int) -> HttpResponse:
    """Dispatch one POSTed action to its service; errors come back as a clear message."""
    agent, post = request.user, request.POST
    action = post.get("action", "")
    handlers = {
        "send_phone_code": lambda: actions.case_send_proof_code(
            case_id=case_id, agent=agent, kind=CaseProof.Kind.PHONE
        ),
        "send_email_code": lambda: actions.case_send_proof_code(
            case_id=case_id, agent=agent, kind=CaseProof.Kind.EMAIL
        ),
        "attest_document": lambda: actions.case_attest_document(
            case_id=case_id, agent=agent, note=post.get("note", "")
        ),
        "tell_login_email": lambda: actions.case_tell_login_email(case_id=case_id, agent=agent),
        "reauthenticate": lambda: actions.case_reauthenticate(case_id=case_id, agent=agent),
        "ask_customer": lambda: actions.case_ask_customer(
            case_id=case_id,
            agent=agent,
            message=post.get("message", ""),
            canned=post.get("canned", ""),
        ),
        "reject": lambda: actions.case_reject(
            case_id=case_id, agent=agent, reason=post.get("reason", "")
        ),
        "escalate": lambda: actions.case_escalate(
            case_id=case_id, agent=agent, note=post.get("note", "")
        ),
        "release": lambda: case_release(
            case_id=case_id, agent=agent, reason=post.get("reason", "")
        ),
        "request_reauth_approval": lambda: actions.case_approval_request(
            case_id=case_id,
            agent=agent,
            action=CaseApproval.Action.REAUTHENTICATE,
            note=post.get("note", ""),
        ),
        "start_email_change": lambda: actions.case_email_change_start(
            case_id=case_id, agent=agent, new_email=post.get("new_email", "")
        ),
        "request_email_change_approval": lambda: actions.case_approval_request(
            case_id=case_id,
            agent=agent,
            action=CaseApproval.Action.CHANGE_EMAIL,
            note=post.get("note", ""),
        ),
    }
    if action == "reveal":
        try:
            value = actions.case_reveal_contact(
                case_id=case_id,
                agent=agent,
                field=post.get("field", ""),
                reason=post.get("reason", ""),
            )
        except CaseActionError as exc:
            messages.error(request, str(exc))
        else:
            request.session["support_revealed"] = {"field": post.get("field"), "value": value}
        return redirect("admin:support_case_work", case_id)
    if action == "reassign":
        _require_supervisor(request)
        target = User.objects.filter(pk=post.get("agent") or 0, is_staff=True).first()
        handlers["reassign"] = lambda: case_reassign(
            case_id=case_id, supervisor=agent, agent=target
        )
    handler = handlers.get(action)
    if handler is None:
        messages.error(request, "Unknown action.")
        return redirect("admin:support_case_work", case_id)
    try:
        handler()
    except CaseActionError as exc:
        messages.error(request, str(exc))
        return redirect("admin:support_case_work", case_id)
    messages.success(request, "Done.")
    if case_held_by(agent=agent) is None and not is_supervisor(agent):
        return redirect("admin:support_queue")
    return redirect("admin:support_case_work", case_id)


def evidence_file(request: HttpRequest, case_id: int, evidence_id: int) -> FileResponse:
    """Evidence is served only here, to the case's holder or a supervisor, never publicly."""
    _require_agent(request)
    case = _case_visible(request, case_id)
    evidence = case.evidence.filter(pk=evidence_id).first()
    if evidence is None:
        raise Http404
    response = FileResponse(evidence.file.open("rb"), content_type=evidence.content_type)
    response["Content-Disposition"] = f'inline; filename="evidence-{evidence.pk}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


def approvals(request: HttpRequest) -> HttpResponse:
    """The supervisor's own step: pending four-eyes decisions."""
    _require_supervisor(request)
    if request.method == "POST":
        try:
            actions.case_approval_decide(
                approval_id=int(request.POST.get("approval", 0)),
                supervisor=request.user,
                approve=request.POST.get("decision") == "approve",
            )
        except (CaseActionError, ValueError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Decision recorded.")
        return redirect("admin:support_approvals")
    return render(
        request,
        "admin/support/approvals.html",
        _context(
            request,
            title="Pending approvals",
            approvals=selectors.approval_list_pending(),
        ),
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
