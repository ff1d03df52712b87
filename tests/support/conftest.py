"""Fixtures of the support-queue tests: staff in their roles, a customer account, cases.

Transactional tests (the PostgreSQL concurrency tests) empty every table when they end,
including the staff groups a data migration created, so the groups are fetched or made
again here with the migration's own permission lists.
"""

from __future__ import annotations

import importlib
import re
import time
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from support.models import (
    CaseApproval,
    CasePriority,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from support.services import actions
from support.services.cases import case_open, case_reference_new
from support.services.queue import case_claim_next
from tests.factories import PASSWORD, UserFactory, admin_sign_in, customer_sign_in, totp_code

if TYPE_CHECKING:
    from tests.factories import Capture

ROLES = importlib.import_module("support.migrations.0003_roles")
# Permissions that moved app with their model after that migration (the row stays the same).
MOVED_PERMISSIONS = {("accounts", "view_notification"): "notifications"}

ACCOUNT_EMAIL = "satoshi.nakamoto@gmx.net"
ACCOUNT_PHONE = "+4915123456789"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

PROOF_CODE_SMS = re.compile(r"case RC-[0-9A-Z]{4}-[0-9A-Z]{4}: (\d{6})\.")
PROOF_CODE_EMAIL = re.compile(r"recovery case RC-[0-9A-Z]{4}-[0-9A-Z]{4} is (\d{6})\.")
RECOVERY_LINK = re.compile(r"/recover/reset/([A-Za-z0-9_-]{40,})/")
# The account's backup codes as shown to its owner, kept with the test that made them.
ACCOUNT_BACKUP_CODES = pytest.StashKey[list[str]]()


def first_group(pattern: re.Pattern[str], text: str) -> str:
    """The first group of `pattern`'s first match in `text`, which must have one."""
    found = pattern.search(text)
    assert found, text
    return found.group(1)


def role_group(name: str) -> Group:
    group, _created = Group.objects.get_or_create(name=name)
    perms = ROLES.SUPERVISOR_PERMISSIONS if name == SUPERVISORS_GROUP else ROLES.AGENT_PERMISSIONS
    for app_label, codename in perms:
        app_label = MOVED_PERMISSIONS.get((app_label, codename), app_label)
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group


def staff_member(email: str, role: str) -> User:
    """A staff user in the role's group, with a confirmed authenticator."""
    user = UserFactory(email=email, is_staff=True, phone=None)
    user.groups.add(role_group(role))
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user


@pytest.fixture
def agent(db) -> User:
    return staff_member("agent.anna@desk.example", AGENTS_GROUP)


@pytest.fixture
def other_agent(db) -> User:
    return staff_member("agent.bert@desk.example", AGENTS_GROUP)


@pytest.fixture
def supervisor(db) -> User:
    return staff_member("super.sue@desk.example", SUPERVISORS_GROUP)


@pytest.fixture
def second_supervisor(db) -> User:
    return staff_member("super.sam@desk.example", SUPERVISORS_GROUP)


@pytest.fixture
def account(db, request: pytest.FixtureRequest) -> User:
    """The customer the cases are about: 2FA on, backup codes, phone and email on file."""
    user = UserFactory(email=ACCOUNT_EMAIL, phone=ACCOUNT_PHONE)
    _device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    request.node.stash[ACCOUNT_BACKUP_CODES] = codes
    return user


@pytest.fixture
def account_backup_codes(account: User, request: pytest.FixtureRequest) -> list[str]:
    """The account's backup codes in plain text (the database keeps only their hashes)."""
    return request.node.stash[ACCOUNT_BACKUP_CODES]


def admin_client(user: User) -> Client:
    """A browser signed in to the OTP admin: password and a current authenticator code."""
    client = Client()
    response = admin_sign_in(client, user)
    assert response.status_code == 302, response.content.decode()
    return client


def fresh_code(user: User) -> str:
    """The code a staff member's authenticator shows next, after every code already used.

    django-otp accepts a time step once (the sign-in's included), so each sensitive step
    needs the next code; staff wait for it (30 s), a test reads it ahead. The device's
    tolerance is widened just enough for that, as a phone whose clock runs ahead would be.
    """
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    now_t = int((time.time() - device.t0) // device.step)
    next_t = max(now_t, device.last_t) + 1
    if next_t - now_t > device.tolerance:
        TOTPDevice.objects.filter(pk=device.pk).update(tolerance=next_t - now_t)
    return totp_code(device, at=device.t0 + next_t * device.step + 1)


def password_only_client(user: User) -> Client:
    """Signed in with the password through the customer sign-in, second factor not passed."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def customer_client(user: User) -> Client:
    """Signed in through the customer flow: password, then the 2FA step with a TOTP code."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    client = customer_sign_in(Client(), user, device)
    assert client.get(reverse("account_security")).status_code == 200
    return client


def waiting_case(
    *,
    matched_user: User | None = None,
    priority: CasePriority = CasePriority.NORMAL,
    queued_at=None,
    contact_email: str = "reach.me@example.org",
) -> RecoveryCase:
    return RecoveryCase.objects.create(
        reference=case_reference_new(),
        status=CaseStatus.WAITING,
        priority=priority,
        contact_email=contact_email,
        matched_user=matched_user,
        queued_at=queued_at or timezone.now(),
    )


def png_upload(name: str = "passport.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def claimed_case(
    agent: User,
    *,
    user: User | None = None,
    files: list[UploadedFile] | None = None,
    contact_email: str = "race.requester@example.org",
    emails_tried: list[str] | None = None,
    description: str = "",
) -> RecoveryCase:
    """A waiting case (for `user`'s account, or the one the request's emails match, with
    `files`) that `agent` has just taken, as the database now holds it."""
    case = case_open(
        contact_email=contact_email,
        emails_tried=emails_tried,
        description=description,
        matched_user=user,
        files=files,
    ).case
    RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.WAITING)
    assert case_claim_next(agent=agent) == case
    return RecoveryCase.objects.get(pk=case.pk)


def inbox_lost_case(
    capture: Capture, *, description: str, files: list[UploadedFile] | None = None
) -> RecoveryCase:
    """The request of a customer who lost their inbox: a new contact address, the account's
    email among those tried, the phone on file; its after-commit work (triage) done."""
    with capture():
        opened = case_open(
            contact_email="new.inbox@example.org",
            contact_phone=ACCOUNT_PHONE,
            emails_tried=[ACCOUNT_EMAIL],
            description=description,
            files=files,
        )
    return RecoveryCase.objects.get(pk=opened.case.pk)


def email_change_approval(agent: User, round_: int) -> CaseApproval:
    """A pending approval of a login-email change that has every proof but the approval."""
    user = UserFactory()
    case = claimed_case(agent, user=user)
    CaseProof.objects.create(case=case, kind=CaseProof.Kind.PHONE)
    change = EmailChange.objects.create(
        case=case,
        requester=case,
        user=user,
        new_email=f"new.address{round_}@example.org",
        requested_by=agent,
        status=EmailChange.Status.AWAITING_APPROVAL,
        proven_at=timezone.now(),
    )
    return actions.case_approval_request(
        case_id=case.pk,
        agent=agent,
        action=CaseApproval.Action.CHANGE_EMAIL,
        email_change=change.pk,
    )
