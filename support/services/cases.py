"""Writes on recovery cases: opening, triage, links, customer replies and self-made proofs."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from accounts.contacts import mask_email
from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates
from accounts.models import OneTimeCode, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.tokens import (
    CodeCheck,
    LinkNoLongerValid,
    one_time_code_check,
    one_time_code_issue,
)
from config.celery_app import enqueue_after_commit
from config.sql import insert_parts, mark_inserted
from notifications.models import Notification
from notifications.services import (
    REFERENCE_ALPHABET,
    notification_queue,
    notifications_deliver_after_commit,
    notifications_queue_many,
)
from recovery.selectors import (
    account_self_service_paths,
    accounts_provable_methods,
    accounts_with_passkey,
)
from support.models import (
    OPEN_STATUSES,
    CaseEvent,
    CaseEvidence,
    CaseLink,
    CasePriority,
    CaseProof,
    CaseStatus,
    RecoveryCase,
    RecoveryLink,
)
from support.tasks import case_triage_task

logger = logging.getLogger(__name__)

# Set while a triage task is on its way: the requests meanwhile need not ask for another.
TRIAGE_DUE_KEY = "support:case-triage-due"
TRIAGE_DUE_KEY_SECONDS = 10

# Resolutions made by triage alone, which the customer can send on to an agent.
DEFLECTIONS = RecoveryCase.AUTOMATED_RESOLUTIONS


@dataclass(frozen=True)
class CaseOpened:
    case: RecoveryCase
    link_token: str


def case_reference_new() -> str:
    raw = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"RC-{raw[:4]}-{raw[4:]}"


def case_event_add(
    *,
    case: RecoveryCase,
    type: CaseEvent.Type,
    actor: User | None = None,
    message: str = "",
    visible_to_customer: bool = False,
    details: dict[str, Any] | None = None,
) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case,
        type=type,
        actor=actor,
        message=message,
        visible_to_customer=visible_to_customer,
        details=details or {},
    )


# An open case looked up for a request matching no account: an id none has, so the lookup
# does the same work whatever the contact data matched.
_NO_ACCOUNT = 0

# How often a request looks for the account's open case again when its insert was skipped
# (a concurrent request's case came first); each look sees what committed meanwhile.
CASE_OPEN_ATTEMPTS = 3


def _account_and_open_case(
    *, account: User | None, phone: str, emails: list[str]
) -> tuple[int | None, int | None]:
    """The id of the account a request is for, and of that account's open case, locked.

    The account is `account`, or the one the contact data points at: the phone first, then
    any email (stored emails are lower case: an exact match on lowered input uses the
    index). One statement whatever matches, so the help form's time does not tell.
    """
    if account is None:
        account_sql = (
            f"SELECT id FROM {User._meta.db_table}"  # noqa: S608 # nosec B608 - table name only
            " WHERE phone = %(phone)s OR email = ANY(%(emails)s)"
            " ORDER BY coalesce(phone = %(phone)s, false) DESC, id LIMIT 1"
        )
    else:
        account_sql = "SELECT %(account)s::bigint"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH account AS MATERIALIZED (SELECT ({account_sql}) AS id) "  # noqa: S608 # nosec B608 - table names only
            "SELECT account.id, open_case.id FROM account LEFT JOIN LATERAL ("
            f" SELECT id FROM {RecoveryCase._meta.db_table}"
            " WHERE matched_user_id = coalesce(account.id, %(no_account)s)"
            " AND status = ANY(%(open)s) FOR UPDATE"
            ") AS open_case ON true",
            {
                "account": account.pk if account else None,
                "phone": phone or None,
                "emails": emails,
                "no_account": _NO_ACCOUNT,
                "open": [status.value for status in OPEN_STATUSES],
            },
        )
        account_id, open_case_id = cursor.fetchone()
    return account_id, open_case_id


def _case_link_new(case: RecoveryCase) -> tuple[str, CaseLink]:
    """A private status link for the case, unsaved, and its token (stored only hashed)."""
    token = secrets.token_urlsafe(32)
    link = CaseLink(
        case=case,
        token_hash=keyed_hash(token, purpose=HashPurpose.CASE_LINK),
        expires_at=timezone.now() + timedelta(days=settings.CASE_LINK_DAYS),
    )
    return token, link


def _case_link_email(
    *, case: RecoveryCase, link: CaseLink, token: str, email_to: str, enqueue: bool
) -> Notification:
    return notification_queue(
        channel=Notification.Channel.EMAIL,
        recipient=email_to,
        template_key="support/case_link",
        idempotency_key=f"case-link:{link.pk}",
        language=case.language,
        account_id=None,
        context={"case_reference": case.reference, "link_token": token},
        enqueue=enqueue,
    )


def case_link_issue(
    *, case: RecoveryCase, email_to: str | None = None, enqueue: bool = True
) -> tuple[str, Notification | None]:
    """Create a private status link for the case; email it when `email_to` is given.

    Returns the token and the email's outbox row (`enqueue` as for `notification_queue`).
    """
    token, link = _case_link_new(case)
    link.save()
    notice = None
    if email_to:
        notice = _case_link_email(
            case=case, link=link, token=token, email_to=email_to, enqueue=enqueue
        )
    return token, notice


def case_open(
    *,
    contact_email: str,
    contact_phone: str = "",
    emails_tried: list[str] | None = None,
    description: str = "",
    language: str = "en",
    files: list[UploadedFile] | None = None,
    kind: RecoveryCase.Kind = RecoveryCase.Kind.HELP,
    priority: CasePriority = CasePriority.NORMAL,
    matched_user: User | None = None,
) -> CaseOpened:
    """Open a case, or join the account's open case, and return it with a fresh status link.

    The answer is the same whether or not the contact data matched an account, and whether
    the request opened a case or joined one: the customer learns nothing about the account.

    Two requests for one account at the same moment both find no open case; the
    one-open-case constraint lets only one insert win. The other's insert is skipped (ON
    CONFLICT DO NOTHING, which leaves the transaction usable: no savepoint is needed around
    it, in the request's transaction or not), and it looks again and joins that case.
    """
    emails_tried = [e.lower() for e in (emails_tried or []) if e]
    emails = [contact_email.lower(), *emails_tried]
    # A customer's request does the same work whatever it matched: it records the request
    # and leaves the rest (joining the open case, triage, the status-link email) to a worker.
    public = matched_user is None
    # All or nothing: the request, its timeline, its link and its email commit together.
    with transaction.atomic(savepoint=False):
        for _attempt in range(CASE_OPEN_ATTEMPTS):
            user_id, open_case_id = _account_and_open_case(
                account=matched_user, phone=contact_phone, emails=emails
            )
            # Every request is its own requester: its own reference, link, codes, proofs,
            # files and replies. A request for an account with an open case joins that case
            # as a further requester; the case stays the only one in the queue, and the new
            # request's page shows nothing of it.
            case = RecoveryCase(
                reference=case_reference_new(),
                kind=kind,
                priority=priority,
                contact_email=contact_email.lower(),
                contact_phone=contact_phone,
                emails_tried=emails_tried,
                description=description,
                language=language,
                matched_user_id=user_id,
                status=CaseStatus.MERGED if open_case_id else CaseStatus.NEW,
                merged_into_id=open_case_id,
            )
            opened = CaseEvent(case=case, type=CaseEvent.Type.OPENED, details={"kind": kind})
            token, link = _case_link_new(case)
            if _request_insert(case=case, event=opened, link=link):
                break
        else:
            raise IntegrityError("No case opened: each insert met a conflicting row")
        if matched_user is not None:
            case.matched_user = matched_user
        if open_case_id is not None and not public:
            existing = RecoveryCase.objects.get(pk=open_case_id)
            case.merged_into = existing
            _case_join_record(request=case, case=existing)
        for upload in files or []:
            _evidence_store(case=case, upload=upload)
        _case_link_email(
            case=case,
            link=link,
            token=token,
            email_to=contact_email,
            enqueue=open_case_id is not None and not public,
        )
        if open_case_id is None or public:
            # Triage is the first thing a worker does with the case: it records a join, or
            # sends the status link together with its own messages, in one delivery.
            case_triage_request()
    return CaseOpened(case=case, link_token=token)


def not_me_case_open(*, user: User, priority: CasePriority) -> CaseOpened:
    """The case of a customer's "this wasn't me" for their own account, on their contacts on
    file: agents check who asks before anyone gets back in."""
    return case_open(
        contact_email=user.email,
        contact_phone=user.phone or "",
        description="",
        language=user.language,
        kind=RecoveryCase.Kind.NOT_ME,
        priority=priority,
        matched_user=user,
    )


def _request_insert(*, case: RecoveryCase, event: CaseEvent, link: CaseLink) -> bool:
    """Write a request, its first event and its status link in one statement; True when
    written.

    False when the request's insert met a conflicting row (an open case of the account that
    committed meanwhile, or, once in ages, its reference taken): then nothing was written.
    """
    request = insert_parts(case)
    first_event = insert_parts(event, sql={"case_id": "request.id"})
    status_link = insert_parts(link, sql={"case_id": "request.id"})
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH request AS (INSERT INTO {request.table} ({request.columns})"  # noqa: S608 # nosec B608 - columns from the models
            f" VALUES ({request.values}) ON CONFLICT DO NOTHING RETURNING id),"
            f" first_event AS (INSERT INTO {first_event.table} ({first_event.columns})"
            f" SELECT {first_event.values} FROM request RETURNING id),"
            f" status_link AS (INSERT INTO {status_link.table} ({status_link.columns})"
            f" SELECT {status_link.values} FROM request RETURNING id)"
            " SELECT request.id, first_event.id, status_link.id"
            " FROM request, first_event, status_link",
            [*request.params, *first_event.params, *status_link.params],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    for instance, pk in zip((case, event, link), inserted, strict=True):
        mark_inserted(instance, pk)
    event.case_id = link.case_id = case.pk
    return True


def _case_join_record(*, request: RecoveryCase, case: RecoveryCase) -> None:
    """A request joined the account's open case: its timeline and the case's say so.

    The joined request's page reads as a request waiting for an agent, the words a request
    for an unknown account gets too.
    """
    case_event_add(case=request, type=CaseEvent.Type.QUEUED, visible_to_customer=True)
    case_event_add(
        case=case,
        type=CaseEvent.Type.JOINED,
        details={"request": request.reference, "kind": request.kind},
    )
    if request.priority > case.priority:
        case.priority = request.priority
        case.save(update_fields=["priority", "updated_at"])


def _evidence_store(*, case: RecoveryCase, upload: UploadedFile) -> CaseEvidence:
    from support.evidence import sniff_content_type

    content = b"".join(upload.chunks())
    evidence = CaseEvidence(
        case=case,
        content_type=sniff_content_type(content[:16]) or "",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        original_name=(upload.name or "")[:200],
    )
    upload.seek(0)
    evidence.file.save("evidence", upload, save=False)
    evidence.save()
    case_event_add(
        case=case,
        type=CaseEvent.Type.EVIDENCE_ADDED,
        details={"evidence_id": evidence.pk, "content_type": evidence.content_type},
    )
    return evidence


def case_triage(*, case_id: int, also_send: Sequence[int] = ()) -> str:
    """Triage one case (see `_cases_triage_locked`); the sweep's way for a lost task.

    Triage runs in a worker, which sends the case's messages and the outbox rows
    `also_send` (the opening request's status link) itself, in one delivery after the commit.
    """
    with transaction.atomic():
        cases = list(_untriaged_for_update().filter(pk=case_id))
        outcomes, notices = _cases_triage_locked(cases)
        notifications_deliver_after_commit([*also_send, *(n.pk for n in notices)])
    return outcomes.get(case_id, "skipped")


def case_triage_request() -> None:
    """Ask a worker to triage what is waiting, once the current transaction commits.

    In a flood of requests one task triages many cases: a request that finds a triage
    already asked for (a key in the cache, which the task clears before it looks) asks for
    none. The task starts `CASE_TRIAGE_GATHER_SECONDS` later, so the requests of that while
    share its batch. A key whose task was lost ends with its timeout, and the sweep triages
    whatever waited meanwhile.
    """
    gather = float(settings.CASE_TRIAGE_GATHER_SECONDS)

    def ask() -> None:
        try:
            if cache.add(TRIAGE_DUE_KEY, 1, timeout=TRIAGE_DUE_KEY_SECONDS):
                case_triage_task.apply_async(countdown=gather)
        except Exception:
            logger.warning("Could not ask for triage; the sweep will triage the cases")

    transaction.on_commit(ask)


def cases_triage_due(*, batch_size: int | None = None) -> dict[str, int]:
    """Triage the cases waiting for it a batch at a time, until none is left.

    Each batch is one transaction of a few statements whatever its size; two workers take
    different cases (SKIP LOCKED). The batch's messages and its requests' status-link
    emails are sent by this worker after the batch commits. Returns the count per outcome.
    """
    size = batch_size or settings.CASE_TRIAGE_BATCH_SIZE
    # Cleared before looking: a case opened from now on asks for a triage of its own.
    cache.delete(TRIAGE_DUE_KEY)
    counts: Counter[str] = Counter()
    while True:
        with transaction.atomic():
            cases = list(_untriaged_for_update(skip_locked=True).order_by("pk")[:size])
            outcomes, notices = _cases_triage_locked(cases, skip_locked=True)
            links = _status_link_notices(case.pk for case in cases if case.pk in outcomes)
            notifications_deliver_after_commit([*links, *(n.pk for n in notices)])
        counts.update(outcomes.values())
        # A request whose open case another worker holds is left for the next batch, or,
        # after the last, triaged alone (it waits for that case's lock, holding no other).
        left = [case.pk for case in cases if case.pk not in outcomes]
        if len(cases) < size:
            for case_id in left:
                with transaction.atomic():
                    links = _status_link_notices([case_id])
                    counts[case_triage(case_id=case_id, also_send=links)] += 1
            break
    return dict(counts)


def _untriaged_for_update(*, skip_locked: bool = False) -> QuerySet[RecoveryCase]:
    # Lock the case rows only: matched_user is a nullable (outer) join, which PostgreSQL
    # refuses to lock.
    return (
        RecoveryCase.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("matched_user")
        .filter(_untriaged())
    )


def _status_link_notices(case_ids: Iterable[int]) -> list[int]:
    """The status-link emails of these requests still waiting to be sent (`case_open`
    leaves them to triage)."""
    keys = Concat(Value("case-link:"), Cast("pk", CharField()))
    links = CaseLink.objects.filter(case_id__in=list(case_ids)).annotate(key=keys).values("key")
    return list(
        Notification.objects.filter(
            idempotency_key__in=links, status=Notification.Status.PENDING
        ).values_list("pk", flat=True)
    )


def _cases_triage_locked(
    cases: Sequence[RecoveryCase], *, skip_locked: bool = False
) -> tuple[dict[int, str], list[Notification]]:
    """Triage locked untriaged cases together, in a few statements whatever their number.

    A request that joined an open case records the join. A phone that belongs to an account
    whose email the customer did not type means they are on the wrong address: the
    account's own phone and email are told which one it is. A matched account whose data
    allows a self-service path is led there. Everything else waits for an agent.
    Returns each case's outcome and the messages to send; with `skip_locked`, a joined
    request whose open case another transaction holds is left out.
    """
    joined = _joined_cases_lock(
        [case for case in cases if case.merged_into_id is not None], skip_locked=skip_locked
    )
    hinted = [case for case in cases if case.merged_into_id is None and _on_the_wrong_email(case)]
    hinted_ids = {case.pk for case in hinted}
    matched = [
        case
        for case in cases
        if case.merged_into_id is None
        and case.pk not in hinted_ids
        and case.kind == RecoveryCase.Kind.HELP
        and case.matched_user is not None
    ]
    matched_users = [case.matched_user for case in matched if case.matched_user is not None]
    passkey_holders = accounts_with_passkey(user_ids=[user.pk for user in matched_users])
    methods = accounts_provable_methods(users=matched_users, passkey_holders=passkey_holders)
    matched_ids = {case.pk for case in matched}
    outcomes: dict[int, str] = {}
    updates: dict[str, list[RecoveryCase]] = {"deflected": [], "self_service": [], "queued": []}
    raised: dict[int, int] = {}
    events: list[CaseEvent] = []

    def event(case: RecoveryCase, type: CaseEvent.Type, **fields: Any) -> None:
        events.append(CaseEvent(case=case, type=type, **{"details": {}, **fields}))

    # One case after another, as triaging them one at a time would: the events (and their
    # times) come in the same order.
    for case in cases:
        if case.merged_into_id is not None:
            target = joined.get(case.merged_into_id)
            if target is None:
                continue
            event(case, CaseEvent.Type.QUEUED, visible_to_customer=True)
            event(
                target,
                CaseEvent.Type.JOINED,
                details={"request": case.reference, "kind": case.kind},
            )
            if case.priority > target.priority:
                target.priority = raised[target.pk] = case.priority
            outcomes[case.pk] = "joined"
            continue
        if case.pk in hinted_ids:
            # Whoever typed the number reads what a request for a number nobody has reads:
            # the hint reached the account's own phone and email, and the page words it
            # for both.
            event(case, CaseEvent.Type.HINT_SENT)
            outcomes[case.pk] = "deflected"
        elif case.pk in matched_ids:
            user = case.matched_user
            assert user is not None  # matched
            found = methods[user.pk]
            paths = account_self_service_paths(
                user=user, methods=found, has_passkey=user.pk in passkey_holders
            )
            details = {"could_prove": [str(m) for m in found], "self_service": paths}
            if paths and settings.SELF_SERVICE_TRIAGE:
                # The account's own data lets its owner prove two methods: the page leads
                # there (in words for anyone), and the request reaches an agent only if the
                # customer says it did not help. It reads as waiting, like a request nobody
                # matched.
                event(case, CaseEvent.Type.SELF_SERVICE_OFFERED, details=details)
                outcomes[case.pk] = "self_service"
            else:
                # What the requester could still prove, for the agent who takes the case.
                event(case, CaseEvent.Type.TRIAGED, details=details)
                outcomes[case.pk] = "queued"
        else:
            outcomes[case.pk] = "queued"
        updates[outcomes[case.pk]].append(case)
        event(case, CaseEvent.Type.QUEUED, visible_to_customer=True)

    notices = _login_email_hints_queue(hinted)
    now = timezone.now()
    closed = {"closed_at": now, "queued_at": now, "updated_at": now}
    _cases_update(
        updates["deflected"],
        status=CaseStatus.RESOLVED,
        resolution=RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT,
        **closed,
    )
    _cases_update(
        updates["self_service"],
        status=CaseStatus.RESOLVED,
        resolution=RecoveryCase.Resolution.SELF_SERVICE_OFFERED,
        **closed,
    )
    _cases_update(updates["queued"], status=CaseStatus.WAITING, queued_at=now, updated_at=now)
    for priority in set(raised.values()):
        RecoveryCase.objects.filter(
            pk__in=[pk for pk, value in raised.items() if value == priority]
        ).update(priority=priority, updated_at=now)
    CaseEvent.objects.bulk_create(events)
    return outcomes, notices


def _joined_cases_lock(
    requests: Sequence[RecoveryCase], *, skip_locked: bool
) -> dict[int, RecoveryCase]:
    """Lock the open cases these requests joined, in one statement."""
    ids = {case.merged_into_id for case in requests if case.merged_into_id is not None}
    if not ids:
        return {}
    locked = RecoveryCase.objects.select_for_update(skip_locked=skip_locked).filter(pk__in=ids)
    return {case.pk: case for case in locked.order_by("pk")}


def _on_the_wrong_email(case: RecoveryCase) -> bool:
    """The phone typed belongs to the matched account, whose login email was not typed."""
    user = case.matched_user
    return (
        case.kind == RecoveryCase.Kind.HELP
        and user is not None
        and bool(case.contact_phone)
        and user.phone == case.contact_phone
        and user.email not in {case.contact_email, *case.emails_tried}
    )


def _cases_update(cases: Sequence[RecoveryCase], **fields: Any) -> None:
    if cases:
        RecoveryCase.objects.filter(pk__in=[case.pk for case in cases]).update(**fields)
        for case in cases:
            for name, value in fields.items():
                setattr(case, name, value)


def _login_email_hints_queue(cases: Sequence[RecoveryCase]) -> list[Notification]:
    """`login_email_hint_send` for the accounts of many requests, in two statements."""
    rows = [
        row
        for case in cases
        if case.matched_user is not None
        for row in _login_email_hint_rows(
            user=case.matched_user, idempotency_prefix=f"case:{case.pk}"
        )
    ]
    return notifications_queue_many(rows)


def login_email_hint_send(
    *, user: User, idempotency_prefix: str, enqueue: bool = True
) -> list[Notification]:
    """Tell an account's own phone (masked) and email (in full) which address signs in.

    `enqueue` as for `notification_queue`: a worker passes False and sends them itself.
    """
    return [
        notification_queue(
            channel=Notification.Channel(row.channel),
            recipient=row.recipient,
            template_key=row.template_key,
            idempotency_key=row.idempotency_key,
            language=row.language,
            account_id=row.account_id,
            context=row.context,
            enqueue=enqueue,
        )
        for row in _login_email_hint_rows(user=user, idempotency_prefix=idempotency_prefix)
    ]


def _login_email_hint_rows(*, user: User, idempotency_prefix: str) -> list[Notification]:
    """The hint's outbox rows, unsaved: to the account's email, and to its phone if any."""
    rows = [
        Notification(
            channel=Notification.Channel.EMAIL,
            recipient=user.email,
            template_key="support/login_email_hint",
            idempotency_key=f"{idempotency_prefix}:hint:email",
            language=user.language,
            account_id=user.pk,
            context={"login_email": user.email},
        )
    ]
    if user.phone:
        rows.append(
            Notification(
                channel=Notification.Channel.SMS,
                recipient=user.phone,
                template_key="support/login_email_hint",
                idempotency_key=f"{idempotency_prefix}:hint:sms",
                language=user.language,
                account_id=user.pk,
                context={"masked_email": mask_email(user.email)},
            )
        )
    return rows


def _case_link_usable(case: RecoveryCase) -> bool:
    """A request's links open its page while it is open, and for a while after it closed
    (to read the outcome, or say that an automatic answer did not help)."""
    if case.closed_at is None:
        return True
    return case.closed_at > timezone.now() - timedelta(days=settings.CASE_LINK_DAYS_AFTER_CLOSE)


def case_link_redeem(*, token: str) -> RecoveryCase | None:
    """The request a status link opens, or None for a wrong or expired link, or one whose
    request closed too long ago.

    A link opens its page on any number of devices (the views move it into the session at
    once, so it never stays in the address bar or a Referer); the first use is recorded.
    """
    link = (
        CaseLink.objects.select_related("case")
        .filter(
            token_hash__in=keyed_hash_candidates(token, purpose=HashPurpose.CASE_LINK),
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    if link is None or not _case_link_usable(link.case):
        return None
    CaseLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=timezone.now())
    return link.case


def case_link_resend(*, reference: str, contact_email: str) -> bool:
    """Email a new status link to a request's contact address, when the reference and that
    address belong to one request whose links still open; True when one was sent.

    Runs in a task: the form that asks for it answers at once and alike for every input.
    """
    with transaction.atomic():
        case = (
            RecoveryCase.objects.select_for_update()
            .filter(reference=reference.upper(), contact_email=contact_email.lower())
            .first()
        )
        if case is None or not _case_link_usable(case):
            return False
        _token, notice = case_link_issue(case=case, email_to=case.contact_email, enqueue=False)
        if notice is not None:
            notifications_deliver_after_commit([notice.pk])
    return True


def case_customer_reply(*, case: RecoveryCase, message: str) -> CaseEvent:
    """Record a requester's message on their own request.

    The requester who opened the case answers the case: if it waited for them, it goes
    back to the queue. A requester who joined an open case writes on their own request
    only (the agent reads it as theirs); it moves nothing on the case.
    """
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        event = case_event_add(
            case=case,
            type=CaseEvent.Type.CUSTOMER_MESSAGE,
            message=message,
            visible_to_customer=True,
        )
        if case.status == CaseStatus.AWAITING_CUSTOMER and not case.is_joined:
            case.status = CaseStatus.WAITING
            case.priority = max(case.priority, CasePriority.HIGH)
            case.save(update_fields=["status", "priority", "updated_at"])
            case_event_add(case=case, type=CaseEvent.Type.QUEUED, visible_to_customer=True)
        elif case.resolution in DEFLECTIONS:
            # Writing to us after the hint or instead of the self-service path asks for an
            # agent.
            _case_reopen_deflected(case)
        elif _closed_for_no_answer(case) and not _account_has_open_case(case):
            # The answer that never came: the case opens again, ahead of new arrivals.
            case.status = CaseStatus.WAITING
            case.resolution = ""
            case.closed_at = None
            case.queued_at = timezone.now()
            case.priority = max(case.priority, CasePriority.HIGH)
            case.save(
                update_fields=[
                    "status",
                    "resolution",
                    "closed_at",
                    "queued_at",
                    "priority",
                    "updated_at",
                ]
            )
            case_event_add(case=case, type=CaseEvent.Type.REOPENED, visible_to_customer=True)
    return event


def _closed_for_no_answer(case: RecoveryCase) -> bool:
    return (
        case.status == CaseStatus.CANCELLED
        and case.resolution == RecoveryCase.Resolution.NO_ANSWER
        and not case.is_joined
    )


def _account_has_open_case(case: RecoveryCase) -> bool:
    return bool(case.matched_user_id) and (
        RecoveryCase.objects.filter(matched_user_id=case.matched_user_id, status__in=OPEN_STATUSES)
        .exclude(pk=case.pk)
        .exists()
    )


def case_reopen_after_hint(*, case: RecoveryCase) -> bool:
    """ "This did not help": a case deflected to the login-email hint or to self-service goes
    to an agent after all."""
    with transaction.atomic():
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        return _case_reopen_deflected(case)


def _case_reopen_deflected(case: RecoveryCase) -> bool:
    if case.resolution not in DEFLECTIONS:
        return False
    if (
        case.matched_user_id
        and RecoveryCase.objects.filter(
            matched_user_id=case.matched_user_id, status__in=OPEN_STATUSES
        ).exists()
    ):
        return False
    # A deflected request read as waiting all along: it keeps the place in the queue its page
    # showed (queued at triage), and its page does not change.
    case.status = CaseStatus.WAITING
    case.resolution = ""
    case.closed_at = None
    case.save(update_fields=["status", "resolution", "closed_at", "updated_at"])
    case_event_add(case=case, type=CaseEvent.Type.REOPENED)
    return True


def proof_code_notify(
    *,
    case: RecoveryCase,
    account: User,
    channel: Notification.Channel,
    recipient: str,
    code: str,
    idempotency_key: str,
) -> Notification:
    """Send a case's verification code; the text tells the customer never to pass it on."""
    return notification_queue(
        channel=channel,
        recipient=recipient,
        template_key="support/proof_code",
        idempotency_key=idempotency_key,
        language=case.language,
        account_id=account.pk,
        context={
            "code": code,
            "case_reference": case.reference,
            "minutes": settings.ONE_TIME_CODE_MINUTES,
        },
    )


PROOF_PURPOSES = {
    CaseProof.Kind.PHONE: OneTimeCode.Purpose.PROVE_PHONE,
    CaseProof.Kind.EMAIL: OneTimeCode.Purpose.PROVE_EMAIL,
}


PROOF_CHANNELS = {
    CaseProof.Kind.PHONE: Notification.Channel.SMS,
    CaseProof.Kind.EMAIL: Notification.Channel.EMAIL,
}


def _proof_scope(case: RecoveryCase) -> str:
    # Codes belong to one request: its attempts count against that requester alone.
    return f"case:{case.pk}"


def case_proof_code_send(
    *,
    case: RecoveryCase,
    kind: CaseProof.Kind,
    agent: User | None = None,
    texting_allowed: Callable[[str], bool] | None = None,
) -> bool:
    """Send a code for one requester (`case`, their request) to the phone or email *on file*.

    Never to a contact the customer typed: only the real owner can receive it. A requester
    asks for codes themselves only on a request that opened its case; for a requester who
    joined an open case only the agent sends them. A requester's text to the phone on file
    counts against that number's limits (`texting_allowed`, as every form that texts a
    number), so a stranger who knows the email cannot flood the phone. Returns False (and
    sends nothing) when there is no such contact, the requester may not ask or the number's
    limit is used up; a requester's own request is recorded all the same (for staff only),
    so neither the status page nor the code check tells whether the request matched an
    account or joined a case.
    """
    with transaction.atomic():
        user = case.matched_user
        destination = _proof_destination(case=case, kind=kind)
        if (
            user is None
            or not destination
            or (agent is None and case.is_joined)
            # Counted only for a text that would go out: the last check, by design.
            or (
                agent is None
                and kind == CaseProof.Kind.PHONE
                and texting_allowed is not None
                and not texting_allowed(destination)
            )
        ):
            if agent is None:
                case_event_add(
                    case=case,
                    type=CaseEvent.Type.CODE_SENT,
                    details={"kind": kind, "delivered": False},
                )
            return False
        _row, code = one_time_code_issue(
            user=user, purpose=PROOF_PURPOSES[kind], scope=_proof_scope(case)
        )
        proof_code_notify(
            case=case,
            account=user,
            channel=PROOF_CHANNELS[kind],
            recipient=destination,
            code=code,
            idempotency_key=f"proof:{_row.pk}",
        )
        case_event_add(
            case=case,
            type=CaseEvent.Type.CODE_SENT,
            actor=agent,
            details={"kind": kind, "channel": PROOF_CHANNELS[kind].value},
            # The customer sees the codes support sends; one they asked for themselves would
            # show up only when the case matched an account with that contact.
            visible_to_customer=agent is not None,
        )
    return True


def _proof_destination(*, case: RecoveryCase, kind: CaseProof.Kind) -> str | None:
    user = case.matched_user
    if user is None:
        return None
    return (user.phone if kind == CaseProof.Kind.PHONE else user.email) or None


def _code_check_without_destination(*, case: RecoveryCase, kind: CaseProof.Kind) -> CodeCheck:
    """Answer as a real check of a wrong code would, from the request's own timeline.

    No code exists (no account, no such contact on file, or none sent for this requester),
    yet the customer sees what they would see for a mistyped code: "wrong", then too many
    attempts, then expired.

    Call inside a transaction: the request's row lock counts simultaneous tries one after
    another, as the code row's lock does for a real code, so a burst of tries reads alike.
    """
    RecoveryCase.objects.select_for_update().filter(pk=case.pk).first()
    sent = (
        case.events.filter(type=CaseEvent.Type.CODE_SENT, details__kind=kind)
        .order_by("-created_at", "-id")
        .first()
    )
    if sent is None:
        return CodeCheck.NONE
    if sent.created_at + timedelta(minutes=settings.ONE_TIME_CODE_MINUTES) <= timezone.now():
        return CodeCheck.EXPIRED
    failures = case.events.filter(
        type=CaseEvent.Type.CODE_FAILED, details__kind=kind, pk__gt=sent.pk
    ).count()
    if failures >= settings.ONE_TIME_CODE_ATTEMPTS:
        return CodeCheck.TOO_MANY_ATTEMPTS
    case_event_add(case=case, type=CaseEvent.Type.CODE_FAILED, details={"kind": kind})
    return CodeCheck.WRONG


def case_proof_verify(*, case: RecoveryCase, kind: CaseProof.Kind, code: str) -> CodeCheck:
    """Check a code a requester typed on their status page; a right one becomes their proof.

    Only codes sent for this very request count, and wrong tries use up this request's
    attempts only.
    """
    user = case.matched_user
    has_code = (
        user is not None
        and _proof_destination(case=case, kind=kind) is not None
        and OneTimeCode.objects.filter(
            user=user, purpose=PROOF_PURPOSES[kind], scope=_proof_scope(case)
        ).exists()
    )
    if user is None or not has_code:
        with transaction.atomic():
            return _code_check_without_destination(case=case, kind=kind)
    with transaction.atomic():
        result = one_time_code_check(
            user=user,
            purpose=PROOF_PURPOSES[kind],
            code=code,
            scope=_proof_scope(case),
        )
        if result == CodeCheck.OK:
            # A proof counts for a while (the policy's window); proving again renews it.
            CaseProof.objects.update_or_create(
                case=case, kind=kind, defaults={"by_customer": True, "created_at": timezone.now()}
            )
            case_event_add(
                case=case,
                type=CaseEvent.Type.PROOF_ADDED,
                details={"kind": kind, "channel": PROOF_CHANNELS[kind].value},
                visible_to_customer=True,
            )
        elif result == CodeCheck.WRONG:
            case_event_add(case=case, type=CaseEvent.Type.CODE_FAILED, details={"kind": kind})
    return result


def recovery_link_find(*, token: str) -> RecoveryLink | None:
    """The unused, unexpired recovery link for this token (None for anything else)."""
    return (
        RecoveryLink.objects.select_related("user", "case")
        .filter(
            token_hash__in=keyed_hash_candidates(token, purpose=HashPurpose.RECOVERY_LINK),
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


def recovery_password_set(*, link: RecoveryLink, password: str, context: AuditContext) -> User:
    """Set the customer's new password through their recovery link, which is then used up."""
    with transaction.atomic():
        link = RecoveryLink.objects.select_for_update().select_related("user").get(pk=link.pk)
        if link.used_at is not None or link.expires_at <= timezone.now():
            raise LinkNoLongerValid
        # Frozen after the link was sent: the owner said someone else is at work.
        if User.objects.filter(pk=link.user_id, frozen_at__isnull=False).exists():
            raise LinkNoLongerValid
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
        user = link.user
        user.set_password(password)
        user.save(update_fields=["password"])
        security_event_record(
            user=user,
            type=SecurityEvent.Type.PASSWORD_RESET,
            context=context,
            details={"case": link.case.reference},
        )
    return user


def _untriaged() -> Q:
    """New cases, and requests that joined an open case whose join is not yet recorded."""
    return Q(status=CaseStatus.NEW) | Q(
        ~Exists(CaseEvent.objects.filter(case=OuterRef("pk"), type=CaseEvent.Type.QUEUED)),
        status=CaseStatus.MERGED,
    )


def case_triage_sweep() -> int:
    """Enqueue triage again for cases still untriaged a while after they were opened (lost
    task)."""
    overdue = (
        RecoveryCase.objects.filter(_untriaged())
        .filter(created_at__lte=timezone.now() - settings.NOTIFICATION_SWEEP_AGE)
        .values_list("pk", flat=True)[:5000]
    )
    if overdue:
        enqueue_after_commit(case_triage_task)
    return len(overdue)
