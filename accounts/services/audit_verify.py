"""Walking the security-event hash chain to find the first broken link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import AuditChainHead, SecurityEvent
from accounts.services.audit import security_event_digest


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str


def audit_chain_length() -> int:
    """How many events the chain head says the chain holds (what a full check walks)."""
    return AuditChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def audit_chain_verify(
    *, chunk: int = 5000, progress: Callable[[int], None] | None = None
) -> tuple[int, ChainBreak | None]:
    """Return how many events were checked and the first break (None if the chain holds).

    `progress` is called with the number of events each chunk added to the checked ones.
    """
    expected_seq, prev_hash, checked = 1, "", 0
    while True:
        rows = list(SecurityEvent.objects.filter(seq__gte=expected_seq).order_by("seq")[:chunk])
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return checked, ChainBreak(expected_seq, "missing (deleted) event")
            if event.prev_hash != prev_hash:
                return checked, ChainBreak(event.seq, "does not link to the event before it")
            if security_event_digest(event, prev_hash) != event.hash:
                return checked, ChainBreak(event.seq, "content was changed after it was written")
            prev_hash, expected_seq = event.hash, expected_seq + 1
            checked += 1
        if progress:
            progress(len(rows))
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev_hash):
        return checked, ChainBreak(expected_seq, "newest events missing (deleted at the end)")
    return checked, None
