"""Writing security events: one row per security-relevant change, inside its transaction.

The events form one global hash chain: each row stores its position (`seq`), the hash of
the row before it and its own hash over its content. A global chain (rather than one per
account) makes every deletion visible as a gap, even of an account's only or last event,
and keeps working when an account is erased. The price is that adding an event takes a
short lock on the chain head, which is fine for the rate of security changes; mass
revocation adds a whole batch under one lock.

Each hash is an HMAC-SHA256 under the audit key (`settings.AUDIT_KEY`), which the database
never holds: whoever can rewrite the table (its owner, a restored dump, a superuser) can
still recompute plain hashes, but not these. Each event records the id of the key that made
it, so after a rotation the events made with an earlier key verify with that key from
`AUDIT_KEY_FALLBACKS`. Events written before the chain was keyed carry an empty key id and a
plain SHA-256 (see the migration `audit_key_id`); none may follow the first keyed one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import AuditChainHead, SecurityEvent, User
from accounts.services.pg_arrays import pg_int_array, pg_token_array


@dataclass(frozen=True)
class AuditContext:
    """Who acted and from where; services take this instead of the request."""

    actor_id: int | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> AuditContext:
        if request is None:
            return cls()
        user = getattr(request, "user", None)
        return cls(
            actor_id=user.pk if user is not None and user.is_authenticated else None,
            ip_address=request_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


def request_ip(request: HttpRequest) -> str | None:
    """The request's REMOTE_ADDR, normalised so a stored value reads back as it was hashed."""
    ip = request.META.get("REMOTE_ADDR") or None
    return str(ipaddress.ip_address(ip)) if ip else None


def security_event_record(
    *,
    user: User,
    type: SecurityEvent.Type,
    context: AuditContext | None = None,
    details: dict[str, Any] | None = None,
    notify: bool = True,
    former_emails: Sequence[str] = (),
    former_phones: Sequence[str] = (),
) -> SecurityEvent:
    """Record a security event and, for types that warrant one, queue the customer's notice.

    Callers run this inside the transaction of the change itself, after the change, so the
    event, the change and the notice commit together or not at all, and the event's
    fingerprint of the account (accounts.state) sees the state the change left.
    """
    from accounts.state import STATE_RECORDED, account_state_transition
    from notifications.services import SECURITY_NOTICE_TYPES, security_notice_queue

    context = context or AuditContext()
    with transaction.atomic():
        details = dict(details or {})
        if type in STATE_RECORDED:
            # What the event reports, checked again when its notice is sent (SPEC §5).
            details["state"] = account_state_transition(account_id=user.pk)
        event = SecurityEvent(
            account_id=user.pk,
            type=type,
            actor_id=context.actor_id,
            ip_address=context.ip_address,
            user_agent=context.user_agent,
            details=details,
        )
        security_events_chain_and_save([event])
        if notify and type in SECURITY_NOTICE_TYPES:
            security_notice_queue(
                event_id=event.pk, former_emails=former_emails, former_phones=former_phones
            )
    return event


@dataclass(frozen=True)
class AuditKey:
    """One audit key as the chain uses it: its public id and the keys derived from it.

    Separate derived keys for the chain and for checkpoints, so a value signed for one
    purpose is never accepted for the other.
    """

    key_id: str
    chain_key: bytes
    checkpoint_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> AuditKey:
        raw = secret.encode()
        return cls(
            key_id=_hmac_hex(raw, b"key-id")[:8],
            chain_key=hmac.digest(raw, b"recovery-desk.audit.chain", "sha256"),
            checkpoint_key=hmac.digest(raw, b"recovery-desk.audit.checkpoint", "sha256"),
        )

    def chain_hasher(self) -> Any:
        """An HMAC object to `.copy()` per event: the key's padding is hashed once, not per row."""
        return hmac.new(self.chain_key, digestmod=hashlib.sha256)


class UnknownAuditKey(LookupError):
    """An event or checkpoint names a key id that neither the key nor a fallback has."""


def _hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def audit_key_current() -> AuditKey:
    """The key new events and checkpoints are made with (read at call time, like SECRET_KEY)."""
    if not settings.AUDIT_KEY:
        raise ImproperlyConfigured("AUDIT_KEY (DJANGO_AUDIT_KEY) is not set.")
    return AuditKey.from_secret(settings.AUDIT_KEY)


def audit_keyring() -> dict[str, AuditKey]:
    """Every key that may have made an event: the current key and each fallback, by key id."""
    keys = [audit_key_current()]
    keys += [AuditKey.from_secret(secret) for secret in settings.AUDIT_KEY_FALLBACKS if secret]
    return {key.key_id: key for key in reversed(keys)}


def security_event_digest(
    event: SecurityEvent, prev_hash: str, *, keyring: dict[str, AuditKey] | None = None
) -> str:
    """The hash of `event` after `prev_hash`, under the key its `key_id` names.

    An HMAC-SHA256 over the previous hash and every field an auditor relies on, the key id
    included; a legacy event (empty key id) keeps its plain SHA-256 over the fields it was
    written with. Raises `UnknownAuditKey` if the event names a key that is not configured.
    """
    fields = [
        event.seq,
        event.account_id,
        event.type,
        event.actor_id,
        event.ip_address,
        event.user_agent,
        event.details,
        event.created_at.isoformat(),
    ]
    if not event.key_id:
        return _legacy_digest(prev_hash, fields)
    key = (keyring if keyring is not None else audit_keyring()).get(event.key_id)
    if key is None:
        raise UnknownAuditKey(event.key_id)
    hasher = key.chain_hasher()
    hasher.update(_chain_message(prev_hash, _canonical_json([*fields, event.key_id])))
    return hasher.hexdigest()


def _chain_message(prev_hash: str, content: str) -> bytes:
    return f"{prev_hash}|{content}".encode()


def _legacy_digest(prev_hash: str, fields: list[Any]) -> str:
    return hashlib.sha256(_chain_message(prev_hash, _canonical_json(fields))).hexdigest()


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _chain_head_locked() -> AuditChainHead:
    AuditChainHead.objects.get_or_create(pk=1)
    return AuditChainHead.objects.select_for_update().get(pk=1)


def security_events_chain_and_save(events: list[SecurityEvent]) -> list[SecurityEvent]:
    """Append events to the chain in one locked step and insert them in one statement."""
    key = audit_key_current()
    keyring = {key.key_id: key}
    with transaction.atomic():
        head = _chain_head_locked()
        for event in events:
            head.seq += 1
            event.seq = head.seq
            event.key_id = key.key_id
            event.prev_hash = head.hash
            event.hash = security_event_digest(event, head.hash, keyring=keyring)
            head.hash = event.hash
        created = SecurityEvent.objects.bulk_create(events)
        head.save(update_fields=["seq", "hash"])
    return created


def security_events_append_many(
    *, account_ids: Sequence[int], type: SecurityEvent.Type, details: dict[str, Any]
) -> list[int]:
    """Append one event of `type` per account (no actor, no request); their ids, in order.

    The mass-revocation path: the same rows and hashes as `security_events_chain_and_save`,
    but without a model instance per row, in one INSERT … SELECT FROM unnest.
    At a million accounts the instances and Django's per-field preparation would cost more
    than the database does. The events of one call share one timestamp (one transaction).
    """
    created_at = timezone.now()
    type_value = str(type)
    key = audit_key_current()
    hasher = key.chain_hasher()
    # The fields of security_event_digest, in its order; actor, IP and user agent are empty.
    # Only the first two differ from row to row: the rest of the JSON is encoded once.
    # (JSON writes an int as its str(); verify_audit recomputes every digest field by field.)
    shared_tail = _canonical_json(
        [type_value, None, None, "", details, created_at.isoformat(), key.key_id]
    ).removeprefix("[")
    seqs, prev_hashes, hashes = [], [], []
    with transaction.atomic():
        head = _chain_head_locked()
        for account_id in account_ids:
            head.seq += 1
            content = f"[{int(head.seq)},{int(account_id)},{shared_tail}"
            row_hasher = hasher.copy()
            row_hasher.update(_chain_message(head.hash, content))
            digest = row_hasher.hexdigest()
            seqs.append(head.seq)
            prev_hashes.append(head.hash)
            hashes.append(digest)
            head.hash = digest
        with connection.cursor() as cursor:
            # The new ids come back as one array, in chain order: one value to decode,
            # not a row each.
            cursor.execute(
                f"WITH inserted AS (INSERT INTO {SecurityEvent._meta.db_table} "  # noqa: S608 # nosec B608 - table name only
                "(account_id, type, actor_id, ip_address, user_agent, details, created_at,"
                " seq, prev_hash, hash, key_id) "
                "SELECT r.account_id, %s, NULL, NULL, '', %s::jsonb, %s, r.seq, r.prev_hash,"
                " r.hash, %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[])"
                " AS r(account_id, seq, prev_hash, hash) ORDER BY r.seq RETURNING id, seq) "
                "SELECT coalesce(array_agg(id ORDER BY seq), '{}') FROM inserted",
                [
                    type_value,
                    json.dumps(details),
                    created_at,
                    key.key_id,
                    pg_int_array(account_ids),
                    pg_int_array(seqs),
                    pg_token_array(prev_hashes),
                    pg_token_array(hashes),
                ],
            )
            (event_ids,) = cursor.fetchone()
        head.save(update_fields=["seq", "hash"])
    return event_ids
