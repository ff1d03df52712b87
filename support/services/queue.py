"""The agent queue: take the next case, hold it on a lease, give it back, expire stale claims."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from functools import cache

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from support.models import CaseEvent, CasePriority, CaseStatus, RecoveryCase
from support.roles import is_supervisor
from support.selectors import agent_list_active
from support.services.cases import case_event_add


class CaseActionError(Exception):
    """An agent action that is not allowed now; the message is shown to the agent."""


def _lease_end():
    return timezone.now() + timedelta(minutes=settings.CASE_LEASE_MINUTES)


def case_held_by(*, agent: User) -> RecoveryCase | None:
    return RecoveryCase.objects.filter(claimed_by=agent, status=CaseStatus.CLAIMED).first()


# Pick, claim and record in one statement. The row lock then lives only inside the
# database, for the length of one statement, never across a round trip to the client.
# A case waits for the agent who asked a supervisor about it (`returns_to`) and is kept
# from the agent who gave it back (`given_back_by`), each for a while after it was queued.
# Cases that came back for this agent go first: COALESCE evaluates its second sub-select
# (and takes its row lock) only when the first found nothing. The statuses are written into
# the text rather than bound, so that the partial indexes on them (the waiting queue, one
# active claim per agent) serve the statement's prepared, generic plan too.
_CLAIM_NEXT_SQL = """
WITH next_case AS (
    SELECT COALESCE(
        (SELECT id FROM {case}
         WHERE status IN ({statuses}) AND returns_to_id = %(agent)s
           AND EXISTS (
               SELECT 1 FROM {case} WHERE status = '{waiting}' AND returns_to_id = %(agent)s
           )
         ORDER BY priority DESC, queued_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT id FROM {case}
         WHERE status IN ({statuses})
           AND (returns_to_id IS NULL OR returns_to_id = %(agent)s
                OR queued_at < %(reserved_before)s)
           AND (given_back_by_id IS NULL OR given_back_by_id <> %(agent)s
                OR queued_at < %(given_back_before)s)
         ORDER BY priority DESC, queued_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
    ) AS id
    WHERE NOT EXISTS (
        SELECT 1 FROM {case} WHERE claimed_by_id = %(agent)s AND status = '{claimed}'
    )
), claimed AS (
    UPDATE {case} AS c
    SET status = '{claimed}', claimed_by_id = %(agent)s, lease_expires_at = %(lease)s,
        returns_to_id = NULL, given_back_by_id = NULL, updated_at = %(now)s
    FROM next_case WHERE c.id = next_case.id
    RETURNING {columns}
), event AS (
    INSERT INTO {event} (case_id, type, actor_id, message, visible_to_customer, details,
                         created_at)
    SELECT id, '{event_type}', %(agent)s, '', false, '{{}}', %(now)s FROM claimed
)
SELECT * FROM claimed
"""
# The columns in the model's field order, so a row becomes a RecoveryCase without a
# look-up of names (what RawQuerySet does on every call).
_CASE_FIELDS = RecoveryCase._meta.concrete_fields
_CASE_FIELD_NAMES = [field.attname for field in _CASE_FIELDS]


def _claim_next_sql(statuses: list[CaseStatus]) -> str:
    return _CLAIM_NEXT_SQL.format(
        case=RecoveryCase._meta.db_table,
        event=CaseEvent._meta.db_table,
        columns=", ".join(f'c."{field.column}"' for field in _CASE_FIELDS),
        statuses=", ".join(f"'{status.value}'" for status in statuses),
        waiting=CaseStatus.WAITING.value,
        claimed=CaseStatus.CLAIMED.value,
        event_type=CaseEvent.Type.CLAIMED.value,
    )


# Supervisors take escalated cases first; agents only waiting ones.
CLAIM_NEXT_SQL = {
    False: _claim_next_sql([CaseStatus.WAITING]),
    True: _claim_next_sql([CaseStatus.ESCALATED, CaseStatus.WAITING]),
}


def claim_next_params(*, agent_id: int) -> dict:
    """The parameters of CLAIM_NEXT_SQL for one agent, now."""
    now = timezone.now()
    return {
        "agent": agent_id,
        "lease": now + timedelta(minutes=settings.CASE_LEASE_MINUTES),
        "now": now,
        "reserved_before": now - timedelta(minutes=settings.SUPPORT_RETURN_RESERVE_MINUTES),
        "given_back_before": now - timedelta(minutes=settings.SUPPORT_GIVE_BACK_MINUTES),
    }


@cache
def _case_converters() -> list[tuple[int, list]]:
    """Field converters (JSON decoding) by column position, worked out once per process."""
    return [
        (index, converters)
        for index, field in enumerate(_CASE_FIELDS)
        if (converters := field.get_db_converters(connection))
    ]


def _case_from_row(row: tuple, db: BaseDatabaseWrapper) -> RecoveryCase:
    values = list(row)
    for index, converters in _case_converters():
        for convert in converters:
            values[index] = convert(values[index], _CASE_FIELDS[index], db)
    return RecoveryCase.from_db(db.alias, _CASE_FIELD_NAMES, values)


def _claim_next_once(agent: User) -> RecoveryCase | None:
    statement = CLAIM_NEXT_SQL[is_supervisor(agent)]
    params = claim_next_params(agent_id=agent.pk)
    db = transaction.get_connection()  # this thread's connection, looked up once
    # Inside a request's transaction a savepoint keeps an IntegrityError from aborting it;
    # on its own the statement is a transaction already.
    guard = transaction.atomic() if db.in_atomic_block else nullcontext()
    db.ensure_connection()
    try:
        # The hottest statement of the queue goes to psycopg on Django's own connection (so
        # in its transaction) as a server-side prepared statement: Django's cursors quote
        # every parameter into the text and PostgreSQL parses and plans it anew each time,
        # which cost more than the claim itself. (Django turns preparing off by default;
        # database_settings in config/settings/base.py turns it back on.)
        with guard, psycopg.Cursor(db.connection) as cursor:
            row = cursor.execute(statement, params, prepare=True).fetchone()
    except (IntegrityError, psycopg.IntegrityError):
        return None  # a concurrent request of the same agent claimed first
    return None if row is None else _case_from_row(row, db)


def case_claim_next(*, agent: User) -> RecoveryCase | None:
    """Give the agent their current case, or claim the most urgent, longest-waiting one.

    A case a supervisor decided on comes back first to the agent who asked; a case an agent
    gave back does not go straight back to them. `FOR UPDATE SKIP LOCKED` lets many agents
    claim at once without waiting on each other's rows; the one-active-claim constraint
    stops a double click from claiming two cases. A claim is one statement and one round
    trip; the agent's current case is looked up only when it found nothing.
    """
    claimed = _claim_next_once(agent)
    if claimed is not None:
        return claimed
    current = case_held_by(agent=agent)
    if current is None:
        return None
    if current.lease_expires_at is not None and current.lease_expires_at <= timezone.now():
        # The agent's own claim ran out before the sweep: it goes back, then they take anew.
        case_claim_expire(agent=agent)
        return case_claim_next(agent=agent)
    return case_lease_renew(case=current, agent=agent)


def case_for_agent(*, case_id: int, agent: User, lapsed_ok: bool = False) -> RecoveryCase:
    """Lock the case for an action by the agent who holds it, and renew the lease.

    Call inside a transaction. Missing and held-by-someone-else answer alike. A claim whose
    lease has ended is no longer held, even before the sweep returns it to the queue: an
    action that arrives after the lease (a page checked a moment before it ended) neither
    acts nor revives the claim. `lapsed_ok` lets the holder end such a claim themselves
    (giving it back does what the sweep would do).
    """
    case = RecoveryCase.objects.select_for_update().filter(pk=case_id).first()
    if case is None or case.status != CaseStatus.CLAIMED:
        raise CaseActionError(_("This case is not claimed by you any more."))
    if case.claimed_by_id != agent.pk:
        raise CaseActionError(_("This case is held by another agent."))
    if not lapsed_ok and (case.lease_expires_at is None or case.lease_expires_at <= timezone.now()):
        raise CaseActionError(_("This case is not claimed by you any more."))
    case.lease_expires_at = _lease_end()
    case.save(update_fields=["lease_expires_at", "updated_at"])
    return case


def case_lease_renew(*, case: RecoveryCase, agent: User) -> RecoveryCase:
    with transaction.atomic():
        return case_for_agent(case_id=case.pk, agent=agent)


def case_release(*, case_id: int, agent: User, reason: str) -> RecoveryCase:
    """Give a case back to the queue; a reason is required and kept on the timeline.

    The case goes behind the others of its priority, and take-next does not hand it
    straight back to the same agent (`SUPPORT_GIVE_BACK_MINUTES`).
    """
    if not reason.strip():
        raise CaseActionError(_("Say why you give the case back."))
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent, lapsed_ok=True)
        case.given_back_by = agent
        case.queued_at = timezone.now()
        _back_to_queue(case, also=["given_back_by", "queued_at"])
        case_event_add(case=case, type=CaseEvent.Type.RELEASED, actor=agent, message=reason)
    return case


def _back_to_queue(case: RecoveryCase, *, also: list[str] | None = None) -> None:
    case.status = CaseStatus.WAITING
    case.claimed_by = None
    case.lease_expires_at = None
    case.save(
        update_fields=["status", "claimed_by", "lease_expires_at", "updated_at", *(also or [])]
    )


def case_claim_expire(*, agent: User) -> RecoveryCase | None:
    """Return the agent's own claim to the queue if its lease ran out (before the sweep)."""
    with transaction.atomic():
        case = (
            RecoveryCase.objects.select_for_update()
            .filter(
                claimed_by=agent, status=CaseStatus.CLAIMED, lease_expires_at__lte=timezone.now()
            )
            .first()
        )
        if case is None:
            return None
        _back_to_queue(case)
        case_event_add(case=case, type=CaseEvent.Type.LEASE_EXPIRED, details={"agent_id": agent.pk})
    return case


def case_claims_release_stale() -> int:
    """Return claims whose lease ran out to the queue, each with a timeline entry."""
    released = 0
    while True:
        with transaction.atomic():
            stale = list(
                RecoveryCase.objects.select_for_update(skip_locked=True)
                .filter(status=CaseStatus.CLAIMED, lease_expires_at__lt=timezone.now())
                .order_by("lease_expires_at")[:200]
            )
            for case in stale:
                agent_id = case.claimed_by_id
                _back_to_queue(case)
                case_event_add(
                    case=case, type=CaseEvent.Type.LEASE_EXPIRED, details={"agent_id": agent_id}
                )
        released += len(stale)
        if len(stale) < 200:
            return released


def case_reassign(*, case_id: int, agent: User, assignee: User | None) -> RecoveryCase:
    """A supervisor (`agent`, the staff member acting) moves a case to `assignee`, or back
    to the queue when `assignee` is None.

    The assignee must be able to work it: an active agent or supervisor with a confirmed
    authenticator (the admin's sign-in asks for it), holding no other case.
    """
    if not is_supervisor(agent):
        raise CaseActionError(_("Only supervisors can reassign cases."))
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case_id)
        if not case.is_open:
            raise CaseActionError(_("This case is closed."))
        if assignee is None:
            _back_to_queue(case)
        else:
            if not agent_list_active().filter(pk=assignee.pk).exists() or not (
                TOTPDevice.objects.filter(user=assignee, confirmed=True).exists()
            ):
                raise CaseActionError(
                    _(
                        "That staff member cannot take cases: only active agents and "
                        "supervisors who sign in with an authenticator can."
                    )
                )
            if case_held_by(agent=assignee) not in (None, case):
                raise CaseActionError(_("That agent already holds a case."))
            case.status = CaseStatus.CLAIMED
            case.claimed_by = assignee
            case.lease_expires_at = _lease_end()
            try:
                with transaction.atomic():
                    case.save(
                        update_fields=["status", "claimed_by", "lease_expires_at", "updated_at"]
                    )
            except IntegrityError:
                # The agent took a case themselves since the check above: one case each.
                raise CaseActionError("That agent already holds a case.") from None
        case_event_add(
            case=case,
            type=CaseEvent.Type.REASSIGNED,
            actor=agent,
            details={"agent_id": assignee.pk if assignee else None},
        )
    return case


def case_priority_raise(*, case: RecoveryCase, to: CasePriority) -> None:
    if to > case.priority:
        case.priority = to
        case.save(update_fields=["priority", "updated_at"])
