"""Walking the security-event hash chain, and its signed checkpoints, to find the first break."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accounts.models import AuditChainHead, SecurityEvent
from accounts.services.audit import UnknownAuditKey, audit_keyring, security_event_digest
from accounts.services.audit_checkpoint import AuditCheckpoint


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str


@dataclass(frozen=True)
class ChainReport:
    """What a walk found: events checked, how many of them are legacy, the first break."""

    checked: int
    legacy: int
    broken: ChainBreak | None


def audit_chain_length() -> int:
    """How many events the chain head says the chain holds (what a full check walks)."""
    return AuditChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def audit_chain_verify(
    *,
    chunk: int = 5000,
    progress: Callable[[int], None] | None = None,
    checkpoints: Sequence[AuditCheckpoint] = (),
) -> ChainReport:
    """Walk the chain from its first event and report the first break (None if it holds).

    Each event must follow the one before it without a gap, link to its hash, and carry the
    HMAC its key id names (a plain SHA-256 only up to the legacy boundary). With
    `checkpoints` (already verified signatures), the chain must also reach each checkpoint,
    hold the checkpoint's hash and count at its position, and keep its legacy boundary: this
    is what reveals a truncated chain or a head moved back, which the database alone cannot.
    `progress` is called with the number of events each chunk added to the checked ones.
    """
    keyring = audit_keyring()
    head = AuditChainHead.objects.filter(pk=1).first()
    head_legacy_until = head.legacy_until if head else 0
    # The lowest boundary anyone vouched for: raising the head's value later does not let
    # rewritten events pass as legacy ones.
    legacy_until = min([head_legacy_until, *(c.legacy_until for c in checkpoints)])
    at_seq: dict[int, list[AuditCheckpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        at_seq[checkpoint.seq].append(checkpoint)

    expected_seq, prev_hash, checked, legacy = 1, "", 0, 0

    def report(seq: int, problem: str) -> ChainReport:
        return ChainReport(checked, legacy, ChainBreak(seq, problem))

    while True:
        rows = list(SecurityEvent.objects.filter(seq__gte=expected_seq).order_by("seq")[:chunk])
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return report(expected_seq, "missing (deleted) event")
            if event.prev_hash != prev_hash:
                return report(event.seq, "does not link to the event before it")
            if not event.key_id and event.seq > legacy_until:
                return report(
                    event.seq,
                    "carries a plain hash, not an HMAC with the audit key "
                    f"(only events up to #{legacy_until} predate the keyed chain)",
                )
            if not event.key_id and checked > legacy:
                return report(
                    event.seq, "carries a plain hash after keyed events (legacy ones come first)"
                )
            try:
                digest = security_event_digest(event, prev_hash, keyring=keyring)
            except UnknownAuditKey:
                return report(
                    event.seq,
                    f"made with an unknown audit key (key id {event.key_id}); "
                    "is its key missing from DJANGO_AUDIT_KEY_FALLBACKS?",
                )
            if digest != event.hash:
                return report(event.seq, "content was changed after it was written")
            for checkpoint in at_seq.get(event.seq, ()):
                if checkpoint.hash != event.hash:
                    return report(
                        event.seq,
                        f"differs from checkpoint {checkpoint.name} of {checkpoint.created_at}: "
                        "the chain up to it was rewritten",
                    )
                if checkpoint.count != checked + 1:
                    return report(
                        event.seq,
                        f"checkpoint {checkpoint.name} counted {checkpoint.count} events up to "
                        f"here, the chain has {checked + 1}",
                    )
            prev_hash, expected_seq = event.hash, expected_seq + 1
            checked += 1
            legacy += not event.key_id
        if progress:
            progress(len(rows))
    last = expected_seq - 1
    beyond = [checkpoint for checkpoint in checkpoints if checkpoint.seq > last]
    if beyond:
        newest = max(beyond, key=lambda checkpoint: checkpoint.seq)
        return report(
            expected_seq,
            f"missing: checkpoint {newest.name} of {newest.created_at} covers events up to "
            f"#{newest.seq}, the chain ends at #{last} (events deleted or truncated)",
        )
    if head is not None and (head.seq != last or head.hash != prev_hash):
        return report(expected_seq, "newest events missing (deleted at the end)")
    if head_legacy_until != legacy_until:
        return report(
            legacy_until + 1,
            f"the chain head claims events up to #{head_legacy_until} predate the keyed "
            f"chain, the checkpoints say up to #{legacy_until}",
        )
    return ChainReport(checked, legacy, None)
