"""Security holds: after a recovery or a factor change, no further security change for a while.

A hold is the `security_hold_until` of the account. Holds only ever grow: a new hold keeps
the later of the two ends, so a self-service re-enrolment (24 h) never shortens an agent's
recovery hold (48 h). During a hold the customer cannot change the login email, the phone,
the password (outside the recovery itself) or an authenticator; staff cannot either, but a
supervisor may lift a hold with a reason (audited and notified).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record

REASON_MAX_LENGTH = 500


def hold_end_in_words(until: datetime) -> str:
    """The hold's end in UTC, with the zone named, and how long from now.

    The customer's time zone is not stored; a time that names its zone and a duration
    ("in 1 day, 23 hours") are true wherever the reader is, in their language.
    """
    return _("%(until)s UTC (in %(remaining)s)") % {
        "until": formats.date_format(timezone.localtime(until, UTC), "DATETIME_FORMAT"),
        "remaining": timeuntil(until, depth=2),
    }


class SecurityHoldActive(PermissionDenied):
    """A security change was asked for while the account is on hold.

    Raised by the services; the customer's pages answer it with the hold page (HTTP 403),
    the admin's forms with a form error.
    """

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            _("Security changes are on hold until %(until)s.") % {"until": hold_end_in_words(until)}
        )


def security_hold_extend(*, user: User, hours: int) -> datetime:
    """Put the account on hold for `hours` from now, unless it is already held longer.

    Runs inside the caller's transaction (the recovery or change it belongs to), which also
    records the event of that change. Returns the hold's end.
    """
    until = timezone.now() + timedelta(hours=hours)
    with transaction.atomic():
        current = (
            User.objects.select_for_update()
            .values_list("security_hold_until", flat=True)
            .get(pk=user.pk)
        )
        if current is not None and current >= until:
            until = current
        else:
            User.objects.filter(pk=user.pk).update(security_hold_until=until)
    user.security_hold_until = until
    return until


def hold_running_until(until: datetime | None) -> datetime | None:
    """A hold's end if that hold still runs, else None."""
    return until if until is not None and until > timezone.now() else None


def security_hold_active_until(*, user: User) -> datetime | None:
    """When the account's running hold ends, read from the database; None if none runs."""
    return hold_running_until(
        User.objects.filter(pk=user.pk).values_list("security_hold_until", flat=True).first()
    )


def security_changes_check(*, user: User) -> None:
    """Refuse a security change on an account on hold (SecurityHoldActive says until when)."""
    until = security_hold_active_until(user=user)
    if until is not None:
        raise SecurityHoldActive(until)


class HoldLiftRefused(ValidationError):
    """A hold lift that is not allowed: not a supervisor, no reason, or no hold to lift."""


# The staff actions whose hold protects the owner against those very staff members.
HOLD_SETTING_EVENTS = (
    SecurityEvent.Type.ACCOUNT_RECOVERED,
    SecurityEvent.Type.EMAIL_CHANGE_SCHEDULED,
    SecurityEvent.Type.EMAIL_CHANGED,
)


def _took_part_since_last_lift(*, account: User, staff: User) -> bool:
    """Whether `staff` recovered the account (or attested, asked for or approved a document
    check the recovery rested on), or started, asked to approve or approved a change of its
    login email, since its hold was last lifted.

    Four eyes: the hold is what keeps withdrawals closed after such a change, so the staff
    member who made it cannot also end it; a later hold (a re-enrolment, say) that extends
    it does not wash their part out.
    """
    events = SecurityEvent.objects.filter(account_id=account.pk)
    last_lift = (
        events.filter(type=SecurityEvent.Type.SECURITY_HOLD_LIFTED)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    # A recovery's or an email change's event names, besides its actor, every staff member
    # it rested on (`details["staff"]`).
    own = events.filter(
        Q(actor_id=staff.pk) | Q(details__staff__contains=[staff.pk]),
        type__in=HOLD_SETTING_EVENTS,
    )
    if last_lift is not None:
        own = own.filter(pk__gt=last_lift)
    return own.exists()


def _restrictions_left(account: User) -> list[str]:
    """The restrictions other than a hold that keep withdrawals closed (`account_restrictions`)."""
    from accounts.selectors import RestrictionReason

    left = []
    if account.frozen_at is not None:
        left.append(RestrictionReason.FROZEN)
    if account.reenrolment_required:
        left.append(RestrictionReason.TWO_FACTOR_REENROLMENT)
    return left


def security_hold_lift(
    *, user: User, supervisor: User, reason: str, context: AuditContext | None = None
) -> SecurityEvent:
    """End the account's security hold now; only a supervisor who had no part in the
    change that set it, and only with a reason.

    The role is checked here, on the server, whoever calls. The lift is a security event
    (who, why, and the end it cut short) notified to every contact on file, so an owner
    learns at once if somebody talked a supervisor into it.
    """
    from support.roles import is_supervisor

    if not is_supervisor(supervisor):
        raise HoldLiftRefused(_("Only a supervisor can lift a security hold."), code="role")
    reason = reason.strip()
    if not reason:
        raise HoldLiftRefused(_("Say why the hold is lifted."), code="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise HoldLiftRefused(
            _("Keep the reason under %(count)d characters.") % {"count": REASON_MAX_LENGTH},
            code="reason",
        )
    context = context or AuditContext(actor_id=supervisor.pk)
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        until = account.security_hold_until
        if until is None or until <= timezone.now():
            raise HoldLiftRefused(_("This account is not on a security hold."), code="no_hold")
        if _took_part_since_last_lift(account=account, staff=supervisor):
            raise HoldLiftRefused(
                _(
                    "You took part in this account's recovery or login-email change: "
                    "another supervisor decides on its hold."
                ),
                code="own_change",
            )
        account.security_hold_until = None
        account.save(update_fields=["security_hold_until"])
        event = security_event_record(
            user=account,
            type=SecurityEvent.Type.SECURITY_HOLD_LIFTED,
            context=context,
            details={
                "reason": reason,
                "hold_until": until.isoformat(),
                # What still closes withdrawals once the hold is gone: the notice says so
                # rather than "possible again".
                "restrictions_left": _restrictions_left(account),
            },
        )
    user.security_hold_until = None
    return event
