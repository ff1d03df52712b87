"""Recovery cases and their requesters, the append-only timeline, evidence, proofs and links.

Every request a customer submits is a `RecoveryCase` row, and that row is the request's
*requester*: its contact data, status links, verification codes (scoped to the row),
proofs, evidence files and replies all hang on it. The first request for an account is also
the case the agents work; a later request while that case is open joins it as a further
requester (`merged_into`, status `merged`) and never sees or acts on the case itself.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CaseStatus(models.TextChoices):
    NEW = "new", _("Received")
    WAITING = "waiting", _("Waiting for an agent")
    CLAIMED = "claimed", _("An agent is working on it")
    AWAITING_CUSTOMER = "awaiting_customer", _("Waiting for your answer")
    RESOLVED = "resolved", _("Resolved")
    REJECTED = "rejected", _("Closed without recovery")
    ESCALATED = "escalated", _("Passed to a specialist")
    CANCELLED = "cancelled", _("Cancelled")
    MERGED = "merged", _("Joined with an earlier request")


OPEN_STATUSES = [
    CaseStatus.NEW,
    CaseStatus.WAITING,
    CaseStatus.CLAIMED,
    CaseStatus.AWAITING_CUSTOMER,
    CaseStatus.ESCALATED,
]


class CasePriority(models.IntegerChoices):
    NORMAL = 0, _("normal")
    HIGH = 1, _("high")
    URGENT = 2, _("urgent")


class RecoveryCase(models.Model):
    """A customer's request for help getting back into an account, and its requester.

    A request that opened a case is that case (and its first requester); a request that
    joined an open case points at it with `merged_into` and holds only its own data.
    """

    class Resolution(models.TextChoices):
        WRONG_EMAIL_HINT_SENT = "wrong_email_hint_sent", _("Login email hint sent")
        LOGIN_EMAIL_TOLD = "login_email_told", _("Login email told after proof")
        REAUTHENTICATED = "reauthenticated", _("Re-authenticated")
        EMAIL_CHANGED = "email_changed", _("Login email changed")
        REJECTED = "rejected", _("Rejected")
        ACCOUNT_FROZEN = "account_frozen", _("Account frozen")
        SELF_SERVICE_OFFERED = "self_service_offered", _("Self-service recovery offered")
        NO_ANSWER = "no_answer", _("Closed without an answer from the customer")

    # Made by triage alone: not an agent's work (rates, ETA), and the customer can still
    # send such a request on to an agent.
    AUTOMATED_RESOLUTIONS = (Resolution.WRONG_EMAIL_HINT_SENT, Resolution.SELF_SERVICE_OFFERED)

    class Kind(models.TextChoices):
        HELP = "help", _("Help request")
        NOT_ME = "not_me", _('"This wasn\'t me" report')

    reference = models.CharField(max_length=12, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.HELP)
    status = models.CharField(max_length=20, choices=CaseStatus.choices, default=CaseStatus.NEW)
    priority = models.PositiveSmallIntegerField(
        choices=CasePriority.choices, default=CasePriority.NORMAL
    )
    contact_email = models.EmailField()
    contact_phone = models.CharField(max_length=20, blank=True)
    emails_tried = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="en")
    matched_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recovery_cases",
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claimed_cases",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=30, choices=Resolution.choices, blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="joined_requests",
        help_text=_("The open case of the same account that this request joined."),
    )
    # Take-next keeps a case back from one agent (`given_back_by`, for a while after they
    # gave it back) or for one agent (`returns_to`, who asked a supervisor about it).
    given_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    returns_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["matched_user"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="one_open_case_per_account",
            ),
            models.UniqueConstraint(
                fields=["claimed_by"],
                condition=models.Q(status="claimed"),
                name="one_active_claim_per_agent",
            ),
        ]
        indexes = [
            # Take-next: the highest priority, then the longest waiting.
            models.Index(
                models.F("priority").desc(),
                "queued_at",
                "id",
                name="case_take_next_idx",
                condition=models.Q(status="waiting"),
            ),
            models.Index(fields=["status", "closed_at"], name="case_status_closed_idx"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_joined(self) -> bool:
        """A request that joined another request's open case (a requester, not a case)."""
        return self.merged_into_id is not None

    @property
    def case_pk(self) -> int:
        """The case this request belongs to: the one it joined, or itself."""
        return self.merged_into_id or self.pk


class CaseEvent(models.Model):
    """One entry of a case's timeline; append-only (a PostgreSQL trigger enforces it)."""

    class Type(models.TextChoices):
        OPENED = "opened", _("Case opened")
        JOINED = "joined", _("Another request joined this case")
        TRIAGED = "triaged", _("Checked automatically")
        HINT_SENT = "hint_sent", _("Login email hint sent")
        QUEUED = "queued", _("Waiting for an agent")
        REOPENED = "reopened", _("Reopened by the customer")
        CUSTOMER_MESSAGE = "customer_message", _("Message from the customer")
        AGENT_MESSAGE = "agent_message", _("Message from support")
        CODE_SENT = "code_sent", _("Verification code sent")
        PROOF_ADDED = "proof_added", _("Proof recorded")
        CODE_FAILED = "code_failed", _("Wrong verification code")
        LINK_ISSUED = "link_issued", _("Status link sent")
        EVIDENCE_ADDED = "evidence_added", _("Evidence uploaded")
        CLAIMED = "claimed", _("Taken by an agent")
        RELEASED = "released", _("Returned to the queue")
        LEASE_EXPIRED = "lease_expired", _("Claim expired")
        CONTACT_REVEALED = "contact_revealed", _("Full contact revealed to agent")
        RESOLVED = "resolved", _("Resolved")
        REJECTED = "rejected", _("Rejected")
        ESCALATED = "escalated", _("Escalated")
        FROZEN = "frozen", _("Account frozen")
        PRIORITY_RAISED = "priority_raised", _("Priority raised")
        DOCUMENT_CHECKED = "document_checked", _("Document checked by an agent")
        LOGIN_EMAIL_TOLD = "login_email_told", _("Login email told")
        REAUTHENTICATED = "reauthenticated", _("Re-authenticated: recovery link sent")
        APPROVAL_REQUESTED = "approval_requested", _("Supervisor approval requested")
        APPROVAL_DECIDED = "approval_decided", _("Supervisor decided")
        EMAIL_CHANGE_STARTED = "email_change_started", _("Login email change started")
        EMAIL_CHANGE_SCHEDULED = "email_change_scheduled", _("Login email change scheduled")
        EMAIL_CHANGE_CANCELLED = "email_change_cancelled", _("Login email change cancelled")
        EMAIL_CHANGE_APPLIED = "email_change_applied", _("Login email changed")
        REASSIGNED = "reassigned", _("Reassigned by a supervisor")
        SELF_SERVICE_OFFERED = "self_service_offered", _("Self-service recovery offered")
        SELF_SERVICE_STOPPED = (
            "self_service_stopped",
            _("Self-service recovery stopped from a contact on file"),
        )
        NOTE = "note", _("Internal note")
        REMINDER_SENT = "reminder_sent", _("Reminder sent to the customer")
        AUTO_CLOSED = "auto_closed", _("Closed: no answer from the customer")

    # The (case, created_at) index below serves lookups by case: no index of its own.
    case = models.ForeignKey(
        RecoveryCase, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    type = models.CharField(max_length=30, choices=Type.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    message = models.TextField(blank=True)
    visible_to_customer = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"])]

    def __str__(self) -> str:
        return f"{self.case} {self.type}"

    @property
    def could_prove_in_words(self) -> str:
        """For the agent: the proofs triage found the requester could make from the
        account's data (empty for other events)."""
        from accounts.policy import METHOD_LABELS, Method

        methods = self.details.get("could_prove") if isinstance(self.details, dict) else None
        if not isinstance(methods, list):
            return ""
        return "; ".join(str(METHOD_LABELS[Method(m)]) for m in methods if m in set(Method))


class CaseProof(models.Model):
    """Evidence that one requester controls something on file (or passed a document check).

    `case` is the request row of the requester who gave the proof, so a proof never counts
    for anyone else who wrote in about the same account.
    """

    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone on file")
        EMAIL = "email", _("Email on file")
        DOCUMENT = "document", _("Document check")
        NEW_EMAIL = "new_email", _("New email address")

    case = models.ForeignKey(
        RecoveryCase,
        on_delete=models.PROTECT,
        related_name="proofs",
        help_text=_("The request (requester) that gave this proof."),
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    by_customer = models.BooleanField(default=True)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "kind"], name="one_proof_per_kind")]

    def __str__(self) -> str:
        return f"{self.case} {self.kind}"


def evidence_path(instance: CaseEvidence, filename: str) -> str:
    # The stored name never comes from the customer.
    return f"evidence/{instance.case_id}/{timezone.now():%Y%m%d%H%M%S}-{instance.sha256[:16]}"


class CaseEvidence(models.Model):
    """A file a requester uploaded; kept outside static files and served only to staff."""

    case = models.ForeignKey(
        RecoveryCase,
        on_delete=models.PROTECT,
        related_name="evidence",
        help_text=_("The request (requester) that uploaded the file."),
    )
    file = models.FileField(upload_to=evidence_path)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=200, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"evidence #{self.pk} of {self.case}"


class CaseLink(models.Model):
    """A requester's private status link: single use (it moves into the session), expiring,
    hashed. It opens the page of that request only."""

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"status link of {self.case}"


class CaseApproval(models.Model):
    """A four-eyes step: an agent asks, a supervisor other than the agent decides.

    An approval names what it approves: a document check (`proof`, never approved by the
    staff member who attested it) or one login-email change (`email_change`); approving
    it can never act on anything else.
    """

    class Action(models.TextChoices):
        DOCUMENT = "document", _("Approve a document check")
        CHANGE_EMAIL = "change_email", _("Change the login email")
        # Requests of an earlier policy; kept for their history, never asked for again.
        REAUTHENTICATE = "reauthenticate", _("Re-authenticate with one proof (former policy)")

    case = models.ForeignKey(RecoveryCase, on_delete=models.PROTECT, related_name="approvals")
    action = models.CharField(max_length=20, choices=Action.choices)
    proof = models.ForeignKey(
        CaseProof, null=True, blank=True, on_delete=models.PROTECT, related_name="approvals"
    )
    email_change = models.ForeignKey(
        "EmailChange", null=True, blank=True, on_delete=models.PROTECT, related_name="approvals"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    approved = models.BooleanField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "action"],
                condition=models.Q(decided_at__isnull=True),
                name="one_pending_approval_per_action",
            ),
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by")),
                name="approver_is_not_requester",
            ),
            models.CheckConstraint(
                condition=~models.Q(action="change_email") | models.Q(email_change__isnull=False),
                name="email_change_approval_names_its_change",
            ),
            models.CheckConstraint(
                condition=~models.Q(action="document") | models.Q(proof__isnull=False),
                name="document_approval_names_its_proof",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} for {self.case}"


class EmailChange(models.Model):
    """A change of login email for one requester: the new address proven by a code typed on
    that requester's page, approved, then a waiting period to cancel."""

    class Status(models.TextChoices):
        PROVING = "proving", _("New address not yet proven")
        AWAITING_APPROVAL = "awaiting_approval", _("Waiting for a supervisor")
        WAITING_PERIOD = "waiting_period", _("Waiting period (can be cancelled)")
        APPLIED = "applied", _("Applied")
        CANCELLED = "cancelled", _("Cancelled")

    case = models.ForeignKey(RecoveryCase, on_delete=models.PROTECT, related_name="email_changes")
    requester = models.ForeignKey(
        RecoveryCase,
        on_delete=models.PROTECT,
        related_name="requested_email_changes",
        help_text=_("The request (requester) who asked for this address and proves it."),
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    new_email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVING)
    proven_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    effective_at = models.DateTimeField(null=True, blank=True)
    cancel_token_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "effective_at"])]

    def __str__(self) -> str:
        return f"email change for {self.case}"


class RecoveryLink(models.Model):
    """Single-use link after re-authentication: set a new password, then set up 2FA again."""

    case = models.ForeignKey(RecoveryCase, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"recovery link for {self.case}"
