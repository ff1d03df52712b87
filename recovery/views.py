"""Customer self-service pages under /recover/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from allauth.core import ratelimit
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.http import require_http_methods
from django_otp_webauthn.templatetags.otp_webauthn import (
    get_configuration as otp_webauthn_configuration,
)

from accounts import selectors as account_selectors
from accounts.contacts import mask_email, mask_phone, texting_limits, texting_limits_consume
from accounts.middleware import fails_closed_itself
from accounts.models import OneTimeCode
from accounts.services.audit import AuditContext
from accounts.services.holds import hold_end_in_words, hold_running_until
from accounts.services.tokens import (
    CodeCheck,
    LinkNoLongerValid,
    not_me_link_find,
    one_time_code_check,
)
from accounts.views import TotpSetupView
from config.celery_app import enqueue_after_commit
from config.forms import ActionForm, NoInputForm
from config.ratelimits import Limit, limits_consume, too_many_response
from notifications.selectors import notification_find_sent
from recovery.forms import (
    CaseLinkResendForm,
    ChannelForm,
    HelpForm,
    LostFactorStartForm,
    NewEmailStartForm,
    PhoneForm,
    ProofCodeForm,
    ReferenceForm,
    ReplyForm,
    SelfServiceCodeForm,
    SixDigitCodeForm,
)
from recovery.models import SelfServiceRecovery
from recovery.selectors import ReenrolmentByEmailClosed, account_reenrolment_by_email_closed
from recovery.self_service import (
    CHANNEL_METHODS,
    PATH_CHANNELS,
    PhoneTextLimitReached,
    Risk,
    SelfServiceRefused,
    code_minutes,
    lost_factor_finish,
    lost_factor_reset,
    masked_contacts,
    new_email_apply,
    self_service_cancel,
    self_service_cancel_link_find,
    self_service_code_send,
    self_service_code_verify,
    self_service_missing,
    self_service_passkey_offered,
    self_service_start,
)
from recovery.services import (
    account_freeze,
    email_hint_request,
    reenrolment_code_send,
)
from recovery.session_attempts import (
    attempt_forget_in_session,
    attempt_keep_in_session,
    attempt_of_session,
)
from support import selectors as support_selectors
from support.models import CaseProof, RecoveryCase
from support.services import (
    case_customer_reply,
    case_link_redeem,
    case_open,
    case_proof_code_send,
    case_reopen_after_hint,
)
from support.services.actions import case_code_verify, email_change_cancel
from support.services.cases import recovery_link_find, recovery_password_set
from support.tasks import case_link_resend_task

CASE_SESSION_KEY = "recovery_case_id"
NOT_ME_SESSION_KEY = "recovery_not_me_token"
REENROL_SESSION_KEY = "recovery_reenrol_verified_user"
RECOVERY_LINK_SESSION_KEY = "recovery_link_token"
EMAIL_CHANGE_SESSION_KEY = "recovery_email_change_token"


def _too_many(
    request: HttpRequest,
    action: str | None = None,
    *,
    key: str | None = None,
    template: str = "429.html",
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    return too_many_response(request, action=action, key=key, template=template, context=context)


def hub(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/hub.html")


@require_http_methods(["GET", "POST"])
@fails_closed_itself
def email_hint(request: HttpRequest) -> HttpResponse:
    """Phone -> login email. Every valid number gets the same answer and the same work."""
    form = PhoneForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone"]
        if limits_consume(request, texting_limits(phone)) is not None:
            return _too_many(
                request,
                "recover_email",
                key=phone,
                template="recovery/email_hint.html",
                context={"form": form},
            )
        email_hint_request(
            phone=phone, ip_address=request.META.get("REMOTE_ADDR"), language=get_language() or "en"
        )
        return redirect("recover_email_sent")
    return render(
        request, "recovery/email_hint.html", {"form": form}, status=400 if form.errors else 200
    )


def email_hint_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/email_hint_sent.html")


def _reenrol_verified(request: HttpRequest) -> bool:
    return request.session.get(REENROL_SESSION_KEY) == request.user.pk


@require_http_methods(["GET", "POST"])
def reenrol(request: HttpRequest) -> HttpResponse:
    """2FA re-enrolment, step 2: after the password, a code sent to the account's email."""
    user = request.user
    if not user.is_authenticated:
        return HttpResponseRedirect(reverse("account_login") + "?next=" + reverse("recover_2fa"))
    if not user.reenrolment_required:
        if account_selectors.user_has_authenticator(user=user):
            return redirect("account_security")
        return redirect("two_factor_setup")
    closed = account_reenrolment_by_email_closed(user=user)
    if closed is not None:
        if closed == ReenrolmentByEmailClosed.PASSWORD_RESET_BY_EMAIL:
            messages.error(
                request,
                _(
                    "Your password was last set through a reset link to your email, so a code to "
                    "that same email cannot be the second proof. Set up your authenticator here "
                    "with a code to your phone instead, or contact support."
                ),
            )
        # Else a self-service recovery removed the app: the browser that waited sets up
        # the new one.
        return redirect("recover_lost_2fa")
    if _reenrol_verified(request):
        return redirect("recover_2fa_setup")
    form = SixDigitCodeForm()
    code_sent = False
    status = 200
    if request.method == "POST":
        chosen = ActionForm(request.POST, actions=("send", "verify"))
        action = chosen.cleaned_data["action"] if chosen.is_valid() else None
        if action == "send":
            if not ratelimit.consume(request, action="recover_send_code", key=f"user:{user.pk}"):
                return _too_many(request, "recover_send_code", key=f"user:{user.pk}")
            reenrolment_code_send(user=user)
            code_sent = True
        elif action == "verify":
            form = SixDigitCodeForm(request.POST)
            code_sent = True
            if form.is_valid():
                if not ratelimit.consume(request, action="recover_check_code"):
                    return _too_many(
                        request,
                        "recover_check_code",
                        template="recovery/reenrol_code.html",
                        context={
                            "form": form,
                            "code_sent": True,
                            "masked_email": mask_email(user.email),
                            "minutes": settings.ONE_TIME_CODE_MINUTES,
                        },
                    )
                result = one_time_code_check(
                    user=user,
                    purpose=OneTimeCode.Purpose.REENROLMENT,
                    code=form.cleaned_data["code"],
                )
                if result == CodeCheck.OK:
                    request.session[REENROL_SESSION_KEY] = user.pk
                    return redirect("recover_2fa_setup")
                form.add_error("code", _code_error(result))
            status = 400
        else:
            _errors_as_messages(request, chosen)
            status = 400
    return render(
        request,
        "recovery/reenrol_code.html",
        {
            "form": form,
            "code_sent": code_sent,
            "masked_email": mask_email(user.email),
            "minutes": settings.ONE_TIME_CODE_MINUTES,
        },
        status=status,
    )


def _errors_as_messages(request: HttpRequest, form: forms.Form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))


def _code_error(result: CodeCheck) -> str:
    if result == CodeCheck.EXPIRED:
        return _("This code has expired. Ask for a new one.")
    if result in (CodeCheck.TOO_MANY_ATTEMPTS, CodeCheck.NONE):
        return _("This code can no longer be used. Ask for a new one.")
    return _("This code is not right. Check it and try again.")


@method_decorator(require_http_methods(["GET", "POST"]), name="dispatch")
class ReenrolSetupView(TotpSetupView):
    """2FA re-enrolment, step 3: a new authenticator, then new backup codes shown once.

    Only after the password and the emailed code (or a recovery link) of this flow; the
    confirmation records a re-enrolment and puts the account on hold.
    """

    reenrolment = True

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if user.is_authenticated and user.reenrolment_required and _reenrol_verified(request):
            return None
        return redirect("recover_2fa")

    def done(self, request: HttpRequest) -> None:
        del request.session[REENROL_SESSION_KEY]


reenrol_setup = ReenrolSetupView.as_view()


@require_http_methods(["GET", "POST"])
@fails_closed_itself
def help_request(request: HttpRequest) -> HttpResponse:
    """Open a recovery case: the same answer whether or not anything matched an account."""
    form = HelpForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        phone = data["contact_phone"]
        # A request naming an account's phone texts it the login-email hint (triage): the
        # number's own limit and the country's SMS budget of /recover/email/ apply, counted
        # for every number alike, after the form's own limit.
        refused = limits_consume(
            request, [Limit("recover_help"), *(texting_limits(phone) if phone else [])]
        )
        if refused is not None:
            by_form = refused.action == "recover_help"
            return _too_many(
                request,
                "recover_help" if by_form else "recover_email",
                key=None if by_form else phone,
                template="recovery/help.html",
                context={"form": form},
            )
        opened = case_open(
            contact_email=data["contact_email"],
            contact_phone=data["contact_phone"] or "",
            emails_tried=data["emails_tried"],
            description=data["description"],
            language=get_language() or "en",
            files=data["evidence"],
        )
        return render(
            request,
            "recovery/case_opened.html",
            {
                "reference": opened.case.reference,
                # Prefilled into the "send me my link again" form (CaseLinkResendForm).
                "contact_email": opened.case.contact_email,
                "status_url": request.build_absolute_uri(
                    reverse("recover_case_link", args=[opened.link_token])
                ),
            },
        )
    return render(request, "recovery/help.html", {"form": form}, status=400 if form.errors else 200)


def case_link(request: HttpRequest, token: str) -> HttpResponse:
    """Keep the link's request in the session, then show the page at a token-free URL.

    The link opens the page again on another device until its request has closed a while.
    """
    case = case_link_redeem(token=token)
    if case is None:
        return render(request, "recovery/link_invalid.html", status=404)
    request.session[CASE_SESSION_KEY] = case.pk
    return redirect("recover_case")


@require_http_methods(["GET", "POST"])
def case_link_resend_view(request: HttpRequest) -> HttpResponse:
    """ "Send me my link again": by case reference and contact email, to that email only.

    Every valid input gets the same page after the same work (a task is queued whatever
    matched); the task sends a new link only when both belong to one request.
    """
    form = CaseLinkResendForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reference = form.cleaned_data["reference"]
        if not ratelimit.consume(request, action="recover_case_resend", key=reference):
            return _too_many(
                request,
                "recover_case_resend",
                key=reference,
                template="recovery/case_resend.html",
                context={"form": form},
            )
        enqueue_after_commit(case_link_resend_task, reference, form.cleaned_data["contact_email"])
        return render(request, "recovery/case_resend.html", {"form": form, "sent": True})
    return render(
        request, "recovery/case_resend.html", {"form": form}, status=400 if form.errors else 200
    )


class StatusAction(NamedTuple):
    """One action of the status page: its form and its service, called as
    `service(case=<the requester's own request>, **form.cleaned_data)`; `ratelimit` names
    the limit a valid request uses up, `sent` the "a code is on its way" notice the page
    shows next; `texts` says the service may text a number, which then counts against the
    number's own limits (`texting_allowed`)."""

    form: type[forms.Form]
    service: Callable[..., object]
    ratelimit: str | None = None
    sent: str = ""
    texts: bool = False


STATUS_ACTIONS: dict[str, StatusAction] = {
    "reply": StatusAction(ReplyForm, case_customer_reply),
    "send_phone_code": StatusAction(
        NoInputForm,
        partial(case_proof_code_send, kind=CaseProof.Kind.PHONE),
        ratelimit="recover_send_code",
        sent=CaseProof.Kind.PHONE.value,
        texts=True,
    ),
    "send_email_code": StatusAction(
        NoInputForm,
        partial(case_proof_code_send, kind=CaseProof.Kind.EMAIL),
        ratelimit="recover_send_code",
        sent=CaseProof.Kind.EMAIL.value,
    ),
    "verify_code": StatusAction(ProofCodeForm, case_code_verify, ratelimit="recover_check_code"),
    "not_helped": StatusAction(NoInputForm, case_reopen_after_hint),
}


@require_http_methods(["GET", "POST"])
def case_status(request: HttpRequest) -> HttpResponse:
    """A requester's page and its actions; refused input answers 400 and changes nothing.

    Everything here is about the requester's own request: a request that joined an
    account's open case sees, and acts on, nothing of that case.
    """
    own = support_selectors.request_find(request_id=request.session.get(CASE_SESSION_KEY))
    if own is None:
        return render(request, "recovery/link_invalid.html", status=404)
    page_forms: dict[str, forms.Form] = {"reply": ReplyForm(), "verify_code": ProofCodeForm()}
    if request.method == "GET":
        return _case_status_page(request, own=own, page_forms=page_forms)
    chosen = ActionForm(request.POST, actions=STATUS_ACTIONS)
    if not chosen.is_valid():
        _errors_as_messages(request, chosen)
        return _case_status_page(request, own=own, page_forms=page_forms, status=400)
    action = STATUS_ACTIONS[chosen.cleaned_data["action"]]
    form = action.form(request.POST)
    if form.is_valid():
        if action.ratelimit and not ratelimit.consume(
            request, action=action.ratelimit, key=f"case:{own.pk}"
        ):
            return _too_many(request, action.ratelimit, key=f"case:{own.pk}")
        texting = {"texting_allowed": partial(texting_limits_consume, request)}
        result = action.service(case=own, **form.cleaned_data, **(texting if action.texts else {}))
        if action.service is case_customer_reply:
            messages.success(request, _("We have your message. It is on this page below."))
        if not isinstance(result, CodeCheck) or result == CodeCheck.OK:
            return redirect(
                reverse("recover_case") + (f"?sent={action.sent}" if action.sent else "")
            )
        form.add_error("code", _code_error(result))
    page_forms[chosen.cleaned_data["action"]] = form
    return _case_status_page(request, own=own, page_forms=page_forms, status=400)


def _case_status_page(
    request: HttpRequest,
    *,
    own: RecoveryCase,
    page_forms: dict[str, forms.Form],
    status: int = 200,
) -> HttpResponse:
    own.refresh_from_db()
    place = support_selectors.case_queue_place(case=own)
    return render(
        request,
        "recovery/case_status.html",
        {
            "case": own,
            "state": support_selectors.request_state_for_customer(request=own),
            "accepts_input": support_selectors.request_accepts_input(request=own),
            "offers_hint": support_selectors.request_offers_hint(request=own),
            "place": place,
            # Moments, so the template can word the wait ("1 day") in the page's language.
            "wait_range": [timezone.now() + bound for bound in place.wait_range]
            if place and place.wait_range
            else None,
            "reference": own.reference,
            "timeline": support_selectors.case_timeline_for_customer(case=own),
            "evidence": support_selectors.request_evidence_for_customer(request=own),
            "proofs": set(own.proofs.values_list("kind", flat=True)),
            "email_change_proving": support_selectors.request_email_change_proving(request=own),
            "offers_self_service": support_selectors.request_offers_self_service(request=own),
            "reply_form": page_forms["reply"],
            "code_form": page_forms["verify_code"],
            "sent": request.GET.get("sent"),
        },
        status=status,
    )


def _link_into_session(
    request: HttpRequest, token: str, *, valid: bool, session_key: str, page: str
) -> HttpResponse:
    """Keep a link's token in the session and go on at a token-free URL.

    The token then never reaches the Referer header of anything the page loads or links to.
    """
    if not valid:
        return render(request, "recovery/link_invalid.html", status=404)
    request.session[session_key] = token
    return redirect(page)


def not_me_link(request: HttpRequest, token: str) -> HttpResponse:
    return _link_into_session(
        request,
        token,
        valid=not_me_link_find(token=token) is not None,
        session_key=NOT_ME_SESSION_KEY,
        page="recover_not_me",
    )


@require_http_methods(["GET", "POST"])
def not_me(request: HttpRequest) -> HttpResponse:
    """Confirm (GET shows, POST acts): freeze the account and open an urgent case."""
    link = not_me_link_find(token=request.session.get(NOT_ME_SESSION_KEY, ""))
    if link is None:
        return render(request, "recovery/link_invalid.html", status=404)
    if request.method == "GET":
        return render(
            request, "recovery/not_me_confirm.html", {"masked_email": mask_email(link.user.email)}
        )
    if not ratelimit.consume(request, action="recover_not_me"):
        return _too_many(request, "recover_not_me")
    try:
        case = account_freeze(link=link, context=AuditContext.from_request(request))
    except LinkNoLongerValid:
        return render(request, "recovery/link_invalid.html", status=404)
    del request.session[NOT_ME_SESSION_KEY]
    return render(request, "recovery/not_me_done.html", {"reference": case.reference})


@require_http_methods(["GET", "POST"])
def verify_message(request: HttpRequest) -> HttpResponse:
    """ "Did we really send this?" — answered from the outbox by the message's reference."""
    form = ReferenceForm(request.POST or None)
    result: dict[str, Any] | None = None
    if request.method == "POST" and form.is_valid():
        if not ratelimit.consume(request, action="recover_verify_message"):
            return _too_many(
                request,
                "recover_verify_message",
                template="recovery/verify_message.html",
                context={"form": form, "result": None},
            )
        notification = notification_find_sent(reference=form.cleaned_data["reference"])
        result = {"genuine": notification is not None}
        if notification is not None:
            result.update(
                sent_at=notification.sent_at,
                retracted_at=notification.retracted_at,  # type: ignore[attr-defined]
                channel=notification.get_channel_display(),
                recipient=mask_email(notification.recipient)
                if notification.channel == "email"
                else mask_phone(notification.recipient),
            )
    return render(
        request,
        "recovery/verify_message.html",
        {"form": form, "result": result},
        status=400 if form.errors else 200,
    )


def frozen(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/frozen.html", {"support_url": settings.SITE_URL}, status=403)


def recovery_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link support sent after re-authentication."""
    return _link_into_session(
        request,
        token,
        valid=recovery_link_find(token=token) is not None,
        session_key=RECOVERY_LINK_SESSION_KEY,
        page="recover_reset",
    )


@require_http_methods(["GET", "POST"])
def recovery_reset(request: HttpRequest) -> HttpResponse:
    """Set a new password through the recovery link, then set up 2FA again."""
    link = recovery_link_find(token=request.session.get(RECOVERY_LINK_SESSION_KEY, ""))
    if link is None:
        return render(request, "recovery/link_invalid.html", status=404)
    form = SetPasswordForm(link.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = recovery_password_set(
                link=link,
                password=form.cleaned_data["new_password1"],
                context=AuditContext.from_request(request),
            )
        except LinkNoLongerValid:
            return render(request, "recovery/link_invalid.html", status=404)
        del request.session[RECOVERY_LINK_SESSION_KEY]
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # The link reached a channel support proved: it stands in for the emailed code.
        request.session[REENROL_SESSION_KEY] = user.pk
        return redirect("recover_2fa_setup")
    return render(
        request, "recovery/reset_password.html", {"form": form}, status=400 if form.errors else 200
    )


def email_change_cancel_link(request: HttpRequest, token: str) -> HttpResponse:
    # Checked on the POST that cancels, so an expired link still shows the same page first.
    return _link_into_session(
        request,
        token,
        valid=True,
        session_key=EMAIL_CHANGE_SESSION_KEY,
        page="recover_email_change_cancel",
    )


def _hold_end(until: datetime | None) -> str:
    """A running hold's end as every customer page words it (`hold_end_in_words`), or ""."""
    running = hold_running_until(until)
    return hold_end_in_words(running) if running else ""


@require_http_methods(["GET", "POST"])
def email_change_cancel_view(request: HttpRequest) -> HttpResponse:
    token = request.session.get(EMAIL_CHANGE_SESSION_KEY, "")
    if request.method == "GET":
        return render(request, "recovery/email_change_cancel.html", {"done": False})
    # A stop link's secret is checked here: guesses meet the limit of the other stop pages.
    if not ratelimit.consume(request, action="recover_not_me"):
        return _too_many(request, "recover_not_me")
    change = email_change_cancel(token=token)
    if change is None:
        return render(request, "recovery/link_invalid.html", status=404)
    del request.session[EMAIL_CHANGE_SESSION_KEY]
    return render(
        request,
        "recovery/email_change_cancel.html",
        {"done": True, "until": _hold_end(change.user.security_hold_until)},
    )


SELF_SERVICE_CANCEL_SESSION_KEY = "recovery_self_service_cancel_token"

RISK_WORDS = {
    Risk.RECENT_CHANGE: gettext_lazy(
        "a contact or the password of the account changed in the last days"
    ),
    Risk.NEW_DEVICE: gettext_lazy("this device was never used with the account"),
    Risk.NEW_NETWORK: gettext_lazy("this network was never used with the account"),
    Risk.INCIDENT: gettext_lazy("we are handling a security incident"),
}


def _passkey_configuration(request: HttpRequest) -> dict[str, Any]:
    """django-otp-webauthn's script settings, pointed at the lost-2fa passkey endpoints."""
    return otp_webauthn_configuration(
        request,
        {
            "beginAuthenticationUrl": reverse("recover_lost_2fa_passkey_begin"),
            "completeAuthenticationUrl": reverse("recover_lost_2fa_passkey_complete"),
        },
    )


class SelfServiceAction(NamedTuple):
    """One button of a self-service page: its form, and whether it needs a started attempt."""

    form: type[forms.Form]
    needs_attempt: bool = True


@method_decorator(require_http_methods(["GET", "POST"]), name="dispatch")
class SelfServiceView(View):
    """/recover/lost-2fa/ and /recover/new-email/: prove, wait (cancellable), then finish.

    The page shows the attempt this session started, in whatever state it is: the proofs
    still needed, the countdown and what happens at its end, or the outcome.
    """

    kind: SelfServiceRecovery.Kind
    start_form: type[forms.Form]
    template_name = "recovery/self_service.html"

    def actions(self) -> dict[str, SelfServiceAction]:
        return {
            "start": SelfServiceAction(self.start_form, needs_attempt=False),
            "send_code": SelfServiceAction(ChannelForm),
            "verify_code": SelfServiceAction(SelfServiceCodeForm),
            "finish": SelfServiceAction(NoInputForm),
            "restart": SelfServiceAction(NoInputForm, needs_attempt=False),
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        attempt = attempt_of_session(request, self.kind)
        # The sweep applies a due change within minutes; a visit does not wait for it.
        if (
            attempt is not None
            and attempt.kind == SelfServiceRecovery.Kind.NEW_EMAIL
            and attempt.status == SelfServiceRecovery.Status.WAITING
            and attempt.wait_over
        ):
            new_email_apply(attempt_id=attempt.pk)
            attempt.refresh_from_db()
        return self.page(request, attempt)

    def post(self, request: HttpRequest) -> HttpResponse:
        actions = self.actions()
        chosen = ActionForm(request.POST, actions=actions)
        attempt = attempt_of_session(request, self.kind)
        if not chosen.is_valid():
            _errors_as_messages(request, chosen)
            return self.page(request, attempt, status=400)
        name = chosen.cleaned_data["action"]
        action = actions[name]
        if action.needs_attempt and attempt is None:
            return redirect(request.path)
        form = action.form(request.POST)
        if not form.is_valid():
            return self.page(request, attempt, forms_shown={name: form}, status=400)
        handler = getattr(self, f"do_{name}")
        try:
            return handler(request, attempt, form)
        except SelfServiceRefused as refused:
            return self.refused(request, refused.reason)

    def do_start(self, request: HttpRequest, attempt: object, form: forms.Form) -> HttpResponse:
        data = form.cleaned_data
        if not ratelimit.consume(request, action="recover_self_service", key=data["identifier"]):
            return _too_many(request)
        started = self_service_start(
            kind=self.kind,
            identifier=data["identifier"],
            password=data.get("password") or "",
            backup_code=data.get("backup_code") or "",
            new_email=data.get("new_email") or "",
            context=AuditContext.from_request(request),
            texting_allowed=partial(texting_limits_consume, request),
        )
        if started is None:
            form.add_error(
                None,
                _(
                    "These details do not match an account. Check the email address or phone "
                    "number and the password (or backup code), then try again."
                ),
            )
            return self.page(request, None, forms_shown={"start": form}, status=400)
        attempt_keep_in_session(request, started)
        return redirect(request.path)

    def do_send_code(
        self, request: HttpRequest, attempt: SelfServiceRecovery, form: forms.Form
    ) -> HttpResponse:
        # Per account, not per attempt: the password alone starts attempt after attempt.
        if not ratelimit.consume(
            request, action="recover_send_code", key=f"account:{attempt.user_id}"
        ):
            return _too_many(request)
        channel = form.cleaned_data["channel"]
        try:
            self_service_code_send(
                attempt=attempt,
                channel=channel,
                context=AuditContext.from_request(request),
                texting_allowed=partial(texting_limits_consume, request),
            )
        except PhoneTextLimitReached as limited:
            return _too_many(request, "recover_email", key=limited.phone)
        return redirect(f"{request.path}?sent={channel}")

    def do_verify_code(
        self, request: HttpRequest, attempt: SelfServiceRecovery, form: forms.Form
    ) -> HttpResponse:
        if (
            limits_consume(
                request,
                [
                    Limit("recover_check_code"),
                    Limit("recover_check_code_account", key=f"account:{attempt.user_id}"),
                ],
            )
            is not None
        ):
            return _too_many(request)
        result = self_service_code_verify(
            attempt=attempt,
            channel=form.cleaned_data["channel"],
            code=form.cleaned_data["code"],
            context=AuditContext.from_request(request),
        )
        if result == CodeCheck.OK:
            return redirect(request.path)
        form.add_error("code", _code_error(result))
        return self.page(request, attempt, forms_shown={"verify_code": form}, status=400)

    def do_finish(
        self, request: HttpRequest, attempt: SelfServiceRecovery, form: forms.Form
    ) -> HttpResponse:
        user = lost_factor_reset(attempt=attempt, context=AuditContext.from_request(request))
        if user is None:
            return redirect(request.path)
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # No re-enrolment grant in the session: the setup page asks the attempt itself on
        # every step, so an attempt stopped from a contact on file ends this browser's way.
        return redirect("recover_lost_2fa_setup")

    def do_restart(self, request: HttpRequest, attempt: object, form: forms.Form) -> HttpResponse:
        attempt_forget_in_session(request, self.kind)
        return redirect(request.path)

    def refused(self, request: HttpRequest, reason: str) -> HttpResponse:
        if reason == SelfServiceRefused.FROZEN:
            return frozen(request)
        return render(
            request,
            "recovery/self_service_refused.html",
            {"reason": reason, "kind": self.kind},
            status=409,
        )

    def page(
        self,
        request: HttpRequest,
        attempt: SelfServiceRecovery | None,
        *,
        forms_shown: dict[str, forms.Form] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        if attempt is not None and attempt.user.frozen_at is not None:
            return frozen(request)
        shown = {"start": self.start_form(), "verify_code": SelfServiceCodeForm()}
        shown.update(forms_shown or {})
        context: dict[str, Any] = {
            "kind": self.kind,
            "attempt": attempt,
            "start_form": shown["start"],
            "code_form": shown["verify_code"],
            "sent": request.GET.get("sent"),
        }
        if attempt is not None and context["sent"] in PATH_CHANNELS[self.kind]:
            context["sent_minutes"] = code_minutes(context["sent"])
        if attempt is not None:
            proven = {p["method"] for p in attempt.proofs}
            context.update(
                contacts=masked_contacts(attempt),
                channels=[
                    (channel, CHANNEL_METHODS[channel] in proven)
                    for channel in PATH_CHANNELS[SelfServiceRecovery.Kind(attempt.kind)]
                ],
                missing=self_service_missing(attempt=attempt),
                passkey_offered=self_service_passkey_offered(attempt=attempt),
                passkey_config=_passkey_configuration(request)
                if self_service_passkey_offered(attempt=attempt)
                else None,
                risks=[RISK_WORDS[risk] for risk in attempt.risk_factors if risk in RISK_WORDS],
                wait_end=hold_end_in_words(attempt.wait_ends_at) if attempt.wait_ends_at else "",
                hold_end=hold_end_in_words(attempt.user.security_hold_until)
                if attempt.user.on_security_hold and attempt.user.security_hold_until
                else "",
            )
        return render(request, self.template_name, context, status=status)


class LostFactorView(SelfServiceView):
    kind = SelfServiceRecovery.Kind.LOST_FACTOR
    start_form = LostFactorStartForm


class NewEmailView(SelfServiceView):
    kind = SelfServiceRecovery.Kind.NEW_EMAIL
    start_form = NewEmailStartForm


lost_2fa = LostFactorView.as_view()
new_email = NewEmailView.as_view()


@method_decorator(require_http_methods(["GET", "POST"]), name="dispatch")
class LostFactorSetupView(ReenrolSetupView):
    """/recover/lost-2fa/setup/: after the wait, the new authenticator and backup codes.

    The /recover/2fa/ setup page and service, for the session whose attempt reached its end.
    """

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        attempt = attempt_of_session(request, SelfServiceRecovery.Kind.LOST_FACTOR)
        if (
            attempt is None
            or attempt.status != SelfServiceRecovery.Status.READY
            or not request.user.is_authenticated
            or request.user.pk != attempt.user_id
            or not request.user.reenrolment_required
        ):
            return redirect("recover_lost_2fa")
        return None

    def done(self, request: HttpRequest) -> None:
        attempt = attempt_of_session(request, SelfServiceRecovery.Kind.LOST_FACTOR)
        if attempt is not None:
            lost_factor_finish(attempt=attempt)


lost_2fa_setup = LostFactorSetupView.as_view()


def self_service_cancel_link(request: HttpRequest, token: str) -> HttpResponse:
    # Checked on the POST that cancels, so a used link shows the same page first.
    return _link_into_session(
        request,
        token,
        valid=True,
        session_key=SELF_SERVICE_CANCEL_SESSION_KEY,
        page="recover_self_service_cancel",
    )


@require_http_methods(["GET", "POST"])
def self_service_cancel_view(request: HttpRequest) -> HttpResponse:
    """ "Stop this recovery": the attempt ends, the account goes on hold, support steps in."""
    if request.method == "GET":
        link = self_service_cancel_link_find(
            token=request.session.get(SELF_SERVICE_CANCEL_SESSION_KEY, "")
        )
        # Past its wait the recovery may already have removed the authenticator: the page
        # must not promise that stopping it leaves everything as it was.
        factor_removed = (
            link is not None and link.attempt.status == SelfServiceRecovery.Status.READY
        )
        return render(
            request,
            "recovery/self_service_cancel.html",
            {"done": False, "factor_removed": factor_removed},
        )
    if not ratelimit.consume(request, action="recover_not_me"):
        return _too_many(request)
    attempt = self_service_cancel(
        token=request.session.get(SELF_SERVICE_CANCEL_SESSION_KEY, ""),
        context=AuditContext.from_request(request),
    )
    if attempt is None:
        return render(request, "recovery/link_invalid.html", status=404)
    del request.session[SELF_SERVICE_CANCEL_SESSION_KEY]
    user = attempt.user
    return render(
        request,
        "recovery/self_service_cancel.html",
        {
            "done": True,
            "factor_removed": user.reenrolment_required,
            "hold_end": hold_end_in_words(user.security_hold_until)
            if user.security_hold_until
            else "",
        },
    )
