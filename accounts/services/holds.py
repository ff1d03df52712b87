"""Security holds: after a recovery or a factor change, no further security change for a while.

A hold is the `security_hold_until` of the account. Holds only ever grow: a new hold keeps
the later of the two ends, so a self-service re-enrolment (24 h) never shortens an agent's
recovery hold (48 h). During a hold the customer cannot change the login email, the phone,
the password (outside the recovery itself) or an authenticator; staff cannot either, but a
supervisor may lift a hold with a reason (audited and notified).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import User


class SecurityHoldActive(PermissionDenied):
    """A security change was asked for while the account is on hold."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            _("Security changes are on hold until %(until)s.")
            % {"until": formats.date_format(timezone.localtime(until), "DATETIME_FORMAT")}
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


def security_changes_check(*, user: User) -> None:
    """Refuse a security change on an account on hold (SecurityHoldActive says until when)."""
    until = User.objects.filter(pk=user.pk).values_list("security_hold_until", flat=True).first()
    if until is not None and until > timezone.now():
        raise SecurityHoldActive(until)
