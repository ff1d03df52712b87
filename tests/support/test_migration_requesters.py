"""The requesters migration keeps existing cases, joined requests, changes and approvals
working, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("support", "0006_case_event_one_case_index")]
AFTER = [("support", "0009_requesters_constraints")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_afterwards(transactional_db):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield
    finally:
        MigrationExecutor(connection).migrate(latest)
        ContentType.objects.clear_cache()


def test_existing_rows_find_their_requesters(latest_schema_afterwards):
    """An email change belongs to the request that opened its case (proven ones keep a
    proof time); a change-email approval is bound to the change it was asked for; a file
    that a joined request uploaded (stored on the open case until now) moves to that request,
    while the opener's own file stays."""
    old = migrate(BEFORE)
    User = old.get_model("accounts", "User")
    Case = old.get_model("support", "RecoveryCase")
    Event = old.get_model("support", "CaseEvent")
    Evidence = old.get_model("support", "CaseEvidence")
    Change = old.get_model("support", "EmailChange")
    Approval = old.get_model("support", "CaseApproval")
    owner = User.objects.create(email="owner@example.com", phone="+4915100000001")
    agent = User.objects.create(email="agent@desk.example", is_staff=True)
    case = Case.objects.create(
        reference="RC-AAAA-0001",
        contact_email="owner@example.com",
        matched_user=owner,
        status="waiting",
    )
    joined = Case.objects.create(
        reference="RC-BBBB-0002",
        contact_email="other@example.net",
        matched_user=owner,
        status="merged",
        merged_into=case,
    )
    own_file = Evidence.objects.create(
        case=case, file="evidence/1/a", content_type="image/png", size=1, sha256="a" * 64
    )
    Event.objects.create(case=case, type="evidence_added", details={"evidence_id": own_file.pk})
    Event.objects.create(case=case, type="joined", details={"request": joined.reference})
    joined_file = Evidence.objects.create(
        case=case, file="evidence/1/b", content_type="image/png", size=1, sha256="b" * 64
    )
    Event.objects.create(case=case, type="evidence_added", details={"evidence_id": joined_file.pk})
    Event.objects.create(case=case, type="claimed")
    proven = Change.objects.create(
        case=case,
        user=owner,
        new_email="new@example.com",
        status="awaiting_approval",
        requested_by=agent,
    )
    later = Change.objects.create(
        case=case,
        user=owner,
        new_email="later@example.com",
        status="proving",
        requested_by=agent,
        created_at=timezone.now() + timedelta(minutes=5),
    )
    approval = Approval.objects.create(
        case=case,
        action="change_email",
        requested_by=agent,
        created_at=timezone.now() + timedelta(minutes=1),
    )

    # The models as of that migration: later migrations add columns the table lacks yet.
    new = migrate(AFTER)
    EmailChange = new.get_model("support", "EmailChange")
    CaseApproval = new.get_model("support", "CaseApproval")
    CaseEvidence = new.get_model("support", "CaseEvidence")

    assert EmailChange.objects.get(pk=proven.pk).requester_id == case.pk
    assert EmailChange.objects.get(pk=proven.pk).proven_at is not None
    assert EmailChange.objects.get(pk=later.pk).proven_at is None
    assert CaseApproval.objects.get(pk=approval.pk).email_change_id == proven.pk
    assert CaseEvidence.objects.get(pk=own_file.pk).case_id == case.pk
    assert CaseEvidence.objects.get(pk=joined_file.pk).case_id == joined.pk
