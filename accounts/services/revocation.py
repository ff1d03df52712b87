"""Mass 2FA revocation: a declared campaign, worked in set-based, resumable batches.

Each batch is one transaction that removes the devices, flags the users, ends their
sessions, writes one security event and queues one campaign email per user (and one SMS
to each phone on file), and deletes its targets. A run killed half way leaves whole
batches done and the rest untouched; resuming picks up the targets still there, so nobody
is revoked or notified twice (the database also refuses a second notice per campaign,
account and channel).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.lookups import In
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.contacts import InvalidPhoneNumber, mask_email, phone_country_code
from accounts.models import (
    BackupCode,
    BackupCodeDevice,
    CampaignTarget,
    RevocationCampaign,
    SecurityEvent,
    User,
)
from accounts.selectors import REVOCABLE_FACTORS
from accounts.services.audit import security_events_append_many
from accounts.services.pg_arrays import pg_int_array, pg_token_array
from notifications.models import Notification
from notifications.services import (
    notification_references_new,
    notifications_enqueue_via_worker,
)
from notifications.sms.budget import sms_budget_spend

logger = logging.getLogger(__name__)

CAMPAIGN_TEMPLATE = "accounts/campaign_revocation"
# Why a campaign text is held: kept on the row so `notifications status` can say so.
SMS_OVER_BUDGET = "over the daily SMS budget of its country"
# The second factors a campaign can remove (`revoke_2fa --factors`); all by default. An
# incident that exposed TOTP secrets leaves the passkeys, whose private keys never left
# the customers' devices: `--factors totp,backup`.
FACTORS = REVOCABLE_FACTORS


def revocation_factors_parse(value: str | None) -> tuple[str, ...]:
    """The factors named in `value` ("totp,backup"), in canonical order; all when empty."""
    if not value or not value.strip():
        return FACTORS
    named = {part.strip().lower() for part in value.split(",") if part.strip()}
    unknown = named - set(FACTORS)
    if unknown or not named:
        raise ValueError(
            f"Unknown factor(s): {', '.join(sorted(unknown))}. Choose from {', '.join(FACTORS)}."
        )
    return tuple(factor for factor in FACTORS if factor in named)


def revocation_campaign_factors(campaign: RevocationCampaign) -> tuple[str, ...]:
    """The factors a campaign removes (campaigns from before `--factors` removed all)."""
    return tuple(campaign.selection.get("factors") or FACTORS)


class _IdsIn(In):
    """`field IN (ids)`, sent to PostgreSQL as `field = ANY(%s)` with the ids as one array.

    Every statement of a batch names its users; as thousands of separate parameters, or
    even as a list the driver quotes element by element, the ids cost more to quote on the
    client than the statement costs the server. One array literal is quoted as one string.
    """

    def get_prep_lookup(self):
        # Ids need no preparation through the field, which would cost a call per element;
        # pg_int_array turns each one into an int.
        return self.rhs

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", (*lhs_params, pg_int_array(self.rhs))


def _ids_in(field: str, ids: list[int]) -> _IdsIn:
    return _IdsIn(F(field), ids)


def revocation_selection(
    *,
    all_users: bool = False,
    identifiers: Iterable[str] | None = None,
    joined_before: datetime | None = None,
    last_login_before: datetime | None = None,
) -> QuerySet[User]:
    """The customers a campaign covers: everyone, a list of ids/emails, or filters."""
    users = User.objects.filter(is_staff=False)
    if identifiers is not None:
        ids: list[str] = []
        emails: list[str] = []
        for raw in identifiers:
            value = raw.strip()
            if value:
                (ids if value.isdigit() else emails).append(value)
        users = users.filter(
            Q(pk__in=[int(i) for i in ids]) | Q(email__in=[e.lower() for e in emails])
        )
    elif not (all_users or joined_before or last_login_before):
        raise ValueError("Choose --all, --users FILE or a filter.")
    if joined_before:
        users = users.filter(date_joined__lt=joined_before)
    if last_login_before:
        users = users.filter(Q(last_login__lt=last_login_before) | Q(last_login__isnull=True))
    return users


def revocation_identifiers_unmatched(*, identifiers: Iterable[str]) -> list[str]:
    """The lines of a users file that name no customer (an unknown id or email, a staff
    account, a typo), as written, so the operator can see whom the campaign will miss."""
    lines = [raw.strip() for raw in identifiers if raw.strip()]
    found = revocation_selection(identifiers=lines).values_list("pk", "email")
    ids = {str(pk) for pk, _email in found}
    emails = {email for _pk, email in found}
    return [line for line in lines if line not in ids and line.lower() not in emails]


def revocation_campaign_start(
    *, reason: str, operator: str, users: QuerySet[User], selection: dict
) -> RevocationCampaign:
    """Record the campaign and freeze whom it covers (one INSERT … SELECT)."""
    if not reason.strip():
        raise ValueError("A reason is required.")
    with transaction.atomic():
        campaign = RevocationCampaign.objects.create(
            reason=reason, operator=operator, selection=selection
        )
        select_sql, params = users.values_list("id", flat=True).query.sql_with_params()
        # The SELECT is compiled by the ORM and every value is a bound parameter.
        insert = (
            f"INSERT INTO {CampaignTarget._meta.db_table} (campaign_id, user_id) "  # noqa: S608 # nosec B608
            f"SELECT %s, pk_source.id FROM ({select_sql}) AS pk_source"
        )
        with connection.cursor() as cursor:
            cursor.execute(insert, [campaign.pk, *params])
            total = cursor.rowcount
        campaign.total = total
        campaign.save(update_fields=["total"])
    # Without statistics on the targets just written, PostgreSQL takes the table for
    # tiny and sorts every remaining target for each batch: quadratic at a million.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CampaignTarget._meta.db_table}")
    return campaign


def revocation_batch_run(*, campaign: RevocationCampaign, batch_size: int) -> int:
    """Revoke the next batch of targets; returns how many (0 when finished)."""
    with transaction.atomic():
        targets = list(
            CampaignTarget.objects.select_for_update(skip_locked=True)
            .filter(campaign=campaign)
            .order_by("user_id")
            .values_list("pk", "user_id")[:batch_size]
        )
        if not targets:
            return 0
        target_ids = [pk for pk, _user in targets]
        user_ids = [user_id for _pk, user_id in targets]
        users = User.objects.filter(_ids_in("pk", user_ids)).order_by("pk")

        factors = revocation_campaign_factors(campaign)
        if "totp" in factors:
            TOTPDevice.objects.filter(_ids_in("user_id", user_ids)).delete()
        if "backup" in factors:
            BackupCode.objects.filter(_ids_in("device__user_id", user_ids)).delete()
            BackupCodeDevice.objects.filter(_ids_in("user_id", user_ids)).delete()
        if "passkey" in factors:
            WebAuthnCredential.objects.filter(_ids_in("user_id", user_ids)).delete()
        # Whoever still has a passkey signs in with it and sets up a new app from the
        # security page; everyone else goes through the re-enrolment.
        User.objects.filter(_ids_in("pk", user_ids)).exclude(
            pk__in=WebAuthnCredential.objects.filter(
                _ids_in("user_id", user_ids), confirmed=True
            ).values("user_id")
        ).update(reenrolment_required=True)
        sessions = UserSession.objects.filter(_ids_in("user_id", user_ids))
        Session.objects.filter(session_key__in=sessions.values("session_key")).delete()
        sessions.delete()

        emails, texts = _events_and_notices(campaign, list(users.values_list("pk", flat=True)))
        CampaignTarget.objects.filter(_ids_in("pk", target_ids)).delete()

        # Each list shares one channel: the hand-over needs no lookup of the channels.
        def hand_over() -> None:
            notifications_enqueue_via_worker(emails, channel=Notification.Channel.EMAIL)
            notifications_enqueue_via_worker(texts, channel=Notification.Channel.SMS)

        transaction.on_commit(hand_over)
    return len(targets)


def _events_and_notices(
    campaign: RevocationCampaign, user_ids: list[int]
) -> tuple[list[int], list[int]]:
    """One security event and one campaign email per user, in two INSERT … SELECT statements,
    and one campaign SMS per user with a phone on file; the ids of the emails and of the
    texts to send now.

    At a million users, building and preparing two model instances per user costs more than
    the database work; here Python only hashes the chain and draws the references. The
    columns are the model's fields with their defaults: keep them in step with
    `Notification` (a new NOT NULL field fails here loudly).
    """
    event_ids = security_events_append_many(
        account_ids=user_ids,
        type=SecurityEvent.Type.TWO_FACTOR_REVOKED,
        details={"campaign": campaign.pk, "factors": list(revocation_campaign_factors(campaign))},
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {Notification._meta.db_table} "  # noqa: S608 # nosec B608 - table names only
            "(reference, channel, recipient, account_id, template_key, language, context,"
            " security_event_id, idempotency_key, campaign_id, status, attempts,"
            " next_attempt_at, last_error, created_at, sent_at) "
            "SELECT r.reference, %s, u.email, u.id, %s, u.language, '{}', r.event_id,"
            " %s || u.id, %s, %s, 0, %s, '', %s, NULL "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[])"
            " AS r(user_id, event_id, reference) "
            f"JOIN {User._meta.db_table} u ON u.id = r.user_id ORDER BY r.user_id RETURNING id) "
            "SELECT coalesce(array_agg(id), '{}') FROM inserted",
            [
                Notification.Channel.EMAIL,
                CAMPAIGN_TEMPLATE,
                f"campaign:{campaign.pk}:",
                campaign.pk,
                Notification.Status.PENDING,
                now,
                now,
                pg_int_array(user_ids),
                pg_int_array(event_ids),
                pg_token_array(notification_references_new(len(user_ids))),
            ],
        )
        emails = cursor.fetchone()[0]
    texts = _campaign_texts_queue(campaign, user_ids, event_ids, created_at=now)
    return emails, texts


def _campaign_texts_queue(
    campaign: RevocationCampaign, user_ids: list[int], event_ids: list[int], *, created_at
) -> list[int]:
    """The campaign SMS of each user with a phone on file; the ids of those to send now.

    The SMS names the masked login email, because a customer who types the wrong address
    never reads the right inbox, and carries no link. Texts beyond today's SMS budget of
    their country are written held: an operator sends them with `notifications release`.
    """
    event_of = dict(zip(user_ids, event_ids, strict=True))
    rows = list(
        User.objects.filter(_ids_in("pk", user_ids), phone__isnull=False)
        .order_by("pk")
        .values_list("pk", "email", "phone", "language")
    )
    by_country: dict[int, list[tuple[int, str, str, str]]] = {}
    for user_id, email, phone, language in rows:
        try:
            country = phone_country_code(phone or "")
        except InvalidPhoneNumber:
            continue  # nothing can be sent to it
        by_country.setdefault(country, []).append((user_id, email, phone or "", language))
    texts: list[Notification] = []
    references = iter(notification_references_new(len(rows)))
    for country, members in by_country.items():
        granted = sms_budget_spend(country_code=country, count=len(members))
        if granted < len(members):
            logger.warning(
                "Campaign %s: %d texts to +%d exceed today's SMS budget and are held",
                campaign.pk,
                len(members) - granted,
                country,
            )
        for position, (user_id, email, phone, language) in enumerate(members):
            texts.append(
                Notification(
                    reference=next(references),
                    channel=Notification.Channel.SMS,
                    recipient=phone,
                    account_id=user_id,
                    template_key=CAMPAIGN_TEMPLATE,
                    language=language,
                    context={"masked_email": mask_email(email)},
                    security_event_id=event_of[user_id],
                    idempotency_key=f"campaign:{campaign.pk}:sms:{user_id}",
                    campaign=campaign,
                    status=Notification.Status.PENDING
                    if position < granted
                    else Notification.Status.HELD,
                    last_error="" if position < granted else SMS_OVER_BUDGET,
                    created_at=created_at,
                    next_attempt_at=created_at,
                )
            )
    Notification.objects.bulk_create(texts, batch_size=1000)
    return [text.pk for text in texts if text.status == Notification.Status.PENDING]


def revocation_campaign_run(
    *,
    campaign: RevocationCampaign,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Work all remaining batches; returns how many users this run revoked.

    The campaign is marked finished only when no target is left: batches still locked by a
    dying or parallel run stay to be done by a `--resume`.
    """
    revoked = 0
    while True:
        done = revocation_batch_run(campaign=campaign, batch_size=batch_size)
        if not done:
            break
        revoked += done
        if progress:
            progress(done)
    if revocation_campaign_remaining(campaign=campaign) == 0:
        campaign.status = RevocationCampaign.Status.FINISHED
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at"])
    return revoked


def revocation_campaign_remaining(*, campaign: RevocationCampaign) -> int:
    return CampaignTarget.objects.filter(campaign=campaign).count()
