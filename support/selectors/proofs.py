"""What a requester or an email change has proven, and what the recovery policy decides on it."""

from __future__ import annotations

from django.utils import timezone

from accounts.policy import Action, Decision, Method, Proof, policy_check
from support.models import (
    CaseApproval,
    CaseProof,
    EmailChange,
    RecoveryCase,
)

PROOF_METHODS = {
    CaseProof.Kind.PHONE: Method.PHONE_CODE,
    CaseProof.Kind.EMAIL: Method.EMAIL_CODE,
    CaseProof.Kind.DOCUMENT: Method.DOCUMENT,
}


def document_approver(proof: CaseProof) -> int | None:
    """The supervisor who approved this document proof, or None while none has."""
    # Uses the prefetched approvals when there are any.
    for approval in proof.approvals.all():
        if approval.action == CaseApproval.Action.DOCUMENT and approval.approved:
            return approval.decided_by_id
    return None


def requester_proofs(*, requester: RecoveryCase) -> list[Proof]:
    """The proofs ONE requester gave, as the policy reads them.

    A document counts with the staff member who attested it and the supervisor who approved
    it; the policy refuses a document that one person both attested and approved.
    """
    proofs = []
    for proof in requester.proofs.all():
        method = PROOF_METHODS.get(CaseProof.Kind(proof.kind))
        if method is None:
            continue
        proofs.append(
            Proof(
                method=method,
                at=proof.created_at,
                attested_by=proof.attested_by_id if method == Method.DOCUMENT else None,
                approved_by=document_approver(proof) if method == Method.DOCUMENT else None,
            )
        )
    return proofs


def email_change_proofs(*, change: EmailChange) -> list[Proof]:
    """The proofs for one login-email change: its requester's, and the new address's code."""
    proofs = requester_proofs(requester=change.requester)
    if change.proven_at is not None:
        proofs.append(Proof(method=Method.NEW_EMAIL_CODE, at=change.proven_at))
    return proofs


def requester_decision(*, requester: RecoveryCase, action: Action) -> Decision:
    return policy_check(action, requester_proofs(requester=requester), now=timezone.now())


def email_change_decision(*, change: EmailChange) -> Decision:
    return policy_check(
        Action.LOGIN_EMAIL_CHANGE, email_change_proofs(change=change), now=timezone.now()
    )
