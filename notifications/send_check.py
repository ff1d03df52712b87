"""The send-time check (SPEC §5): a security notice goes out only if its account shows the change.

Its event recorded a fingerprint of the account before and after the change it reports
(accounts.state). Right before delivery the account must still differ from "before" in
what the event reports; a notice whose event is not borne out is a false alarm in the
making (a bug, or a forged event) and is held as suspect instead of sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from accounts.state import account_states, event_borne_out
from notifications.models import SUSPECT_PREFIX, Notification

logger = logging.getLogger(__name__)

SUSPECT_REASON = f"{SUSPECT_PREFIX} the account does not show the change its event reports"


def security_notices_suspect(rows: Iterable[Notification]) -> set[int]:
    """Hold the security notices among `rows` whose event the account does not bear out.

    Runs in the delivery's transaction, on rows it has locked. Returns the ids held. Each
    hold is an alert for the supervisors (the admin banner, `notifications status`), and
    the held rows stay in the burst guard's count, which is asked again at once: a flood of
    false alarms stops the whole type. An operator can only discard them: a release sends
    them back through this same check.
    """
    from notifications.services import burst_guard_trips

    notices = [
        row
        for row in rows
        if row.template_key.startswith("security/") and row.security_event is not None
    ]
    if not notices:
        return set()
    current = account_states(row.security_event.account_id for row in notices)  # type: ignore[union-attr]
    suspect = [
        row
        for row in notices
        if not event_borne_out(row.security_event, current.get(row.security_event.account_id))  # type: ignore[arg-type,union-attr]
    ]
    if not suspect:
        return set()
    ids = {row.pk for row in suspect}
    Notification.objects.filter(pk__in=ids).update(
        status=Notification.Status.HELD, last_error=SUSPECT_REASON
    )
    for row in suspect:
        logger.error(
            "Send-time check: holding %s (%s, event %s): the account does not show the change",
            row.reference,
            row.template_key,
            row.security_event_id,
        )
    for template_key in {row.template_key for row in suspect if row.campaign_id is None}:
        burst_guard_trips(template_key=template_key)
    return ids
