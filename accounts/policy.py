"""The recovery policy (SPEC §4a): what each recovery action needs, as one table.

Every path that recovers an account, changes a sign-in factor or the login email asks
`policy_check` with the proofs of ONE requester; agents, supervisors, self-service pages,
the admin and commands alike. The table is data, so tests enumerate it and the agent's page
can say in words what is still missing.

Methods follow NIST SP 800-63B-4 §4.2. A proof is possession of something on file
(`phone_code`, `email_code`, `backup_code`, `authenticator`), knowledge (`password`), or
`document`: identity evidence that counts only when one staff member attested it and a
different one, a supervisor, approved it — never one person alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


class Method(StrEnum):
    PHONE_CODE = "phone_code"
    EMAIL_CODE = "email_code"
    BACKUP_CODE = "backup_code"
    PASSWORD = "password"  # noqa: S105 - a method's name, not a secret
    AUTHENTICATOR = "authenticator"
    DOCUMENT = "document"
    # Not a proof about the account: the requester controls the address they want to use.
    NEW_EMAIL_CODE = "new_email_code"


METHOD_LABELS: dict[Method, Promise] = {
    Method.PHONE_CODE: _("a code sent to the phone on file"),
    Method.EMAIL_CODE: _("a code sent to the email on file"),
    Method.BACKUP_CODE: _("a backup code"),
    Method.PASSWORD: _("the current password"),
    Method.AUTHENTICATOR: _("the authenticator app or a passkey"),
    Method.DOCUMENT: _("a document check attested by one staff member and approved by another"),
    Method.NEW_EMAIL_CODE: _("a code sent to the new email address"),
}

POSSESSION = frozenset(
    {Method.PHONE_CODE, Method.EMAIL_CODE, Method.BACKUP_CODE, Method.AUTHENTICATOR}
)
ACCOUNT_PROOFS = POSSESSION | {Method.PASSWORD}
# Codes sent by SMS (and links sent by SMS) live at most this long (NIST SP 800-63B-4).
SMS_SECRET_LIFETIME = timedelta(minutes=10)


class Action(StrEnum):
    TELL_LOGIN_EMAIL = "tell_login_email"
    REAUTHENTICATE = "reauthenticate"
    LOGIN_EMAIL_CHANGE = "login_email_change"
    SELF_SERVICE_LOST_FACTOR = "self_service_lost_factor"
    SELF_SERVICE_NEW_EMAIL = "self_service_new_email"
    SELF_SERVICE_APP_WITH_PASSKEY = "self_service_app_with_passkey"


@dataclass(frozen=True)
class Proof:
    """One thing one requester proved, when, and for a document who attested and approved."""

    method: Method
    at: datetime
    attested_by: int | None = None
    approved_by: int | None = None

    @property
    def counts(self) -> bool:
        if self.method != Method.DOCUMENT:
            return True
        return (
            self.attested_by is not None
            and self.approved_by is not None
            and self.attested_by != self.approved_by
        )


Slot = frozenset[Method]


@dataclass(frozen=True)
class Rule:
    """What an action needs: any one of `alternatives`, each a tuple of slots.

    Every slot is filled by a proof of one of its methods, each slot by a proof of a
    different method, all within `window` of now. `approval` asks in addition for a
    supervisor's approval bound to the very change; `hold_setting` names the setting with
    the hours of the security hold the action starts; `wait_setting` the hours of the
    waiting period every contact on file can cancel before it takes effect.
    """

    alternatives: tuple[tuple[Slot, ...], ...]
    description: Promise
    window: timedelta = timedelta(hours=24)
    approval: bool = False
    hold_setting: str = ""
    wait_setting: str = ""


POLICY: dict[Action, Rule] = {
    Action.TELL_LOGIN_EMAIL: Rule(
        alternatives=((frozenset({Method.PHONE_CODE}),),),
        description=_("Tell the login email: the phone on file is proven."),
    ),
    Action.REAUTHENTICATE: Rule(
        alternatives=(
            (POSSESSION, ACCOUNT_PROOFS),
            (POSSESSION, frozenset({Method.DOCUMENT})),
        ),
        hold_setting="SECURITY_HOLD_HOURS_RECOVERY",
        description=_(
            "Re-authenticate: two proofs of different kinds, at least one of something on "
            "file; or one such proof and a document check by two different staff members."
        ),
    ),
    Action.LOGIN_EMAIL_CHANGE: Rule(
        alternatives=(
            (
                frozenset({Method.NEW_EMAIL_CODE}),
                frozenset(
                    {Method.PHONE_CODE, Method.BACKUP_CODE, Method.PASSWORD, Method.AUTHENTICATOR}
                ),
            ),
        ),
        approval=True,
        hold_setting="SECURITY_HOLD_HOURS_EMAIL_CHANGE",
        wait_setting="EMAIL_CHANGE_WAIT_HOURS",
        description=_(
            "Change the login email: the new address proven by code, one proof about the "
            "account, a supervisor's approval of this change, then the waiting period."
        ),
    ),
    # A passkey still on the account is the second proof like a code to a contact on file
    # (SPEC §4a: two methods, one of them possession); with the password it is a sign-in,
    # which `SELF_SERVICE_APP_WITH_PASSKEY` lets through at once.
    Action.SELF_SERVICE_LOST_FACTOR: Rule(
        alternatives=(
            (
                frozenset({Method.PASSWORD, Method.BACKUP_CODE}),
                frozenset({Method.PHONE_CODE, Method.EMAIL_CODE, Method.AUTHENTICATOR}),
            ),
        ),
        hold_setting="SECURITY_HOLD_HOURS_REENROLMENT",
        wait_setting="SELF_SERVICE_WAIT_HOURS",
        description=_(
            "Recover a lost second factor: the password or a backup code, and a code to the "
            "phone or email on file or a passkey."
        ),
    ),
    Action.SELF_SERVICE_NEW_EMAIL: Rule(
        alternatives=(
            (
                frozenset({Method.PASSWORD}),
                frozenset({Method.PHONE_CODE}),
                frozenset({Method.NEW_EMAIL_CODE}),
            ),
        ),
        hold_setting="SECURITY_HOLD_HOURS_EMAIL_CHANGE",
        wait_setting="NEW_EMAIL_WAIT_HOURS",
        description=_(
            "Move to a new login email: the password, a code to the phone on file and a "
            "code to the new address, then the waiting period."
        ),
    ),
    # The passkey is the strongest proof on file (it cannot be phished or read out): a
    # customer who signed in with the password and a still-bound passkey replaces a lost
    # authenticator app at once, with neither a wait nor a hold.
    Action.SELF_SERVICE_APP_WITH_PASSKEY: Rule(
        alternatives=((frozenset({Method.PASSWORD}), frozenset({Method.AUTHENTICATOR})),),
        window=timedelta(minutes=30),
        description=_(
            "Replace a lost authenticator app: the password and a passkey still on the "
            "account, used in this sign-in; no waiting period."
        ),
    ),
}


@dataclass(frozen=True)
class Decision:
    """The answer for one action: allowed, or what is still missing (in words)."""

    action: Action
    allowed: bool
    missing: tuple[Promise, ...] = ()
    needs_approval: bool = False

    def __bool__(self) -> bool:
        return self.allowed


def policy_check(
    action: Action,
    proofs: Iterable[Proof],
    *,
    now: datetime,
    unavailable: frozenset[Method] = frozenset(),
) -> Decision:
    """Whether `proofs` (all of ONE requester) satisfy `action`'s rule at `now`.

    Proofs outside the rule's window and documents without two different staff members do
    not count. Approval is not a proof: a rule with `approval` answers `needs_approval`,
    and the service that acts checks the approval bound to its change. `unavailable`
    methods (those the requester's path cannot take) are left out of what is missing.
    """
    rule = POLICY[action]
    methods = frozenset(p.method for p in proofs if p.counts and now - p.at <= rule.window)
    best: tuple[Slot, ...] | None = None
    for alternative in rule.alternatives:
        unfilled = _unfilled_slots(alternative, methods, methods)
        if not unfilled:
            return Decision(action=action, allowed=True, needs_approval=rule.approval)
        if best is None or len(unfilled) < len(best):
            best = unfilled
    assert best is not None
    return Decision(
        action=action,
        allowed=False,
        missing=tuple(
            _slot_in_words((slot - methods - unavailable) or (slot - methods)) for slot in best
        ),
        needs_approval=rule.approval,
    )


def _unfilled_slots(
    slots: tuple[Slot, ...], available: frozenset[Method], proven: frozenset[Method]
) -> tuple[Slot, ...]:
    """The fewest slots left empty when each slot takes a different proven method.

    Among equally short answers, the one that leaves the requester the most ways to go on.
    """
    if not slots:
        return ()
    first, rest = slots[0], slots[1:]
    candidates = [(first, *_unfilled_slots(rest, available, proven))]
    candidates += [
        _unfilled_slots(rest, available - {method}, proven) for method in first & available
    ]
    return min(candidates, key=lambda c: (len(c), -sum(len(slot - proven) for slot in c)))


def _slot_in_words(slot: Slot) -> Promise:
    """The proofs that could fill `slot`, without those already given (it needs another)."""
    labels = [METHOD_LABELS[method] for method in Method if method in slot]
    if len(labels) == 1:
        return labels[0]
    return format_lazy(
        _("one of: {methods}"), methods=format_lazy("; ".join(["{}"] * len(labels)), *labels)
    )
