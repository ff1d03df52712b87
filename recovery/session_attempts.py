"""The self-service attempt a browser session started, kept in the session with its secret.

The pages of /recover/lost-2fa/ and /recover/new-email/ and the passkey endpoints of the
lost-factor path all act on this attempt only: another browser, without the secret, finds
none.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from accounts.policy import POLICY
from recovery.models import SelfServiceRecovery
from recovery.self_service import ACTIONS, Started, self_service_attempt_find

SESSION_KEYS = {
    SelfServiceRecovery.Kind.LOST_FACTOR: "recovery_lost_factor_attempt",
    SelfServiceRecovery.Kind.NEW_EMAIL: "recovery_new_email_attempt",
}


def attempt_of_session(
    request: HttpRequest, kind: SelfServiceRecovery.Kind
) -> SelfServiceRecovery | None:
    """The attempt of this path that this browser session started, if it still counts.

    An attempt that never finished proving is forgotten after the policy's window.
    """
    held = request.session.get(SESSION_KEYS[kind]) or {}
    attempt = self_service_attempt_find(
        attempt_id=held.get("id"), session_token=held.get("token", "")
    )
    if attempt is None:
        return None
    window = POLICY[ACTIONS[SelfServiceRecovery.Kind(kind)]].window
    if attempt.status == SelfServiceRecovery.Status.PROVING and (
        attempt.created_at + window <= timezone.now()
    ):
        return None
    return attempt


def attempt_keep_in_session(request: HttpRequest, started: Started) -> None:
    """Bind the new attempt to this browser session (its id and the secret only it holds)."""
    kind = SelfServiceRecovery.Kind(started.attempt.kind)
    request.session[SESSION_KEYS[kind]] = {
        "id": started.attempt.pk,
        "token": started.session_token,
    }


def attempt_forget_in_session(request: HttpRequest, kind: SelfServiceRecovery.Kind) -> None:
    """This browser session lets go of its attempt (to start another)."""
    request.session.pop(SESSION_KEYS[kind], None)
