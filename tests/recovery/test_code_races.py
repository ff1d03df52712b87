"""Single-use codes and links of the customer's pages under concurrency.

The same right code (or the same link) is sent by several tabs at the same instant, each
with its own session and its own PostgreSQL connection: exactly one use succeeds, the
others get the page's clean refusal (never a 500), and the effect happens once.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.hashing import HashPurpose, keyed_hash
from accounts.models import BackupCode, OneTimeCode, SecurityEvent
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from support.models import CaseEvent, CaseProof, EmailChange, RecoveryCase
from support.roles import AGENTS_GROUP
from support.services.actions import case_email_change_start
from support.services.cases import case_link_issue, case_open, case_proof_code_send
from tests.concurrency import clients_holding, requests_together
from tests.factories import UserFactory, totp_code
from tests.support.conftest import (
    PROOF_CODE_EMAIL,
    PROOF_CODE_SMS,
    claimed_case,
    password_only_client,
    staff_member,
)

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 4
ROUNDS = 3


def status_pages(case: RecoveryCase, count: int = RACERS) -> list[Client]:
    """Tabs that each opened a status link of the request (one link each: links are single use)."""
    clients = []
    for _ in range(count):
        token, _notice = case_link_issue(case=case)
        client = Client()
        assert client.get(f"/recover/case/{token}/").status_code == 302
        clients.append(client)
    return clients


def statuses(responses) -> list[int]:
    return sorted(response.status_code for response in responses)


def test_one_right_proof_code_typed_in_four_tabs_at_once_gives_one_proof(sms_outbox):
    """A requester's phone code, entered in four tabs together (3 rounds): one tab proves
    the phone, the others are told the code can no longer be used; one proof, one
    "proof recorded" entry."""
    for round_ in range(ROUNDS):
        user = UserFactory.create()
        case = case_open(contact_email=f"me{round_}@example.org", matched_user=user).case
        assert case_proof_code_send(case=case, kind=CaseProof.Kind.PHONE)
        sent = PROOF_CODE_SMS.search(sms_outbox[-1].body)
        assert sent, sms_outbox[-1].body
        code = sent.group(1)
        clients = status_pages(case)

        responses = requests_together(
            clients,
            "post",
            "/recover/case/",
            {"action": "verify_code", "kind": "phone", "code": code},
        )

        assert statuses(responses) == [302] + [400] * (RACERS - 1)
        for response in responses:
            if response.status_code == 400:
                assert b"This code can no longer be used" in response.content
        assert CaseProof.objects.filter(case=case, kind=CaseProof.Kind.PHONE).count() == 1
        assert case.events.filter(type=CaseEvent.Type.PROOF_ADDED).count() == 1
        assert case.events.filter(type=CaseEvent.Type.CODE_FAILED).count() == 0
        assert OneTimeCode.objects.filter(user=user, consumed_at__isnull=False).count() == 1


def test_one_new_address_code_typed_in_four_tabs_at_once_proves_the_change_once(mailoutbox):
    """The code of a login-email change's new address, entered in four tabs together: the
    change moves to "waiting for a supervisor" once, with one proof entry."""
    agent = staff_member("agent.race@desk.example", AGENTS_GROUP)
    for round_ in range(ROUNDS):
        user = UserFactory.create()
        case = claimed_case(agent, user=user, contact_email=f"me{round_}@example.org")
        new_email = f"fresh.start{round_}@example.org"
        change = case_email_change_start(case_id=case.pk, agent=agent, new_email=new_email)
        sent = next(PROOF_CODE_EMAIL.search(m.body) for m in mailoutbox if m.to == [new_email])
        assert sent, mailoutbox
        code = sent.group(1)
        clients = status_pages(case)

        responses = requests_together(
            clients,
            "post",
            "/recover/case/",
            {"action": "verify_code", "kind": "new_email", "code": code},
        )

        assert statuses(responses) == [302] + [400] * (RACERS - 1)
        change.refresh_from_db()
        assert change.status == EmailChange.Status.AWAITING_APPROVAL
        proofs = case.events.filter(type=CaseEvent.Type.PROOF_ADDED, details__kind="new_email")
        assert proofs.count() == 1
        RecoveryCase.objects.filter(pk=case.pk).update(status="rejected", claimed_by=None)


def test_one_status_link_opened_in_four_tabs_at_once_opens_it_in_each():
    """A status link opens its page on any device until the case has closed a while: four
    tabs opening it together each get the page (each through its own session), and its
    first use is recorded once."""
    for round_ in range(ROUNDS):
        case = case_open(contact_email=f"me{round_}@example.org").case
        token, _notice = case_link_issue(case=case)
        clients = [Client() for _ in range(RACERS)]

        responses = requests_together(clients, "get", f"/recover/case/{token}/")

        assert statuses(responses) == [302] * RACERS
        assert case.links.filter(used_at__isnull=False).count() == 1
        assert all(c.get("/recover/case/").status_code == 200 for c in clients)


def test_one_cancel_link_of_an_email_change_confirmed_in_four_tabs_at_once_cancels_once():
    """The old address's "stop this change" link, confirmed in four tabs together: one
    cancellation, one security event, one reopening of the case; the others get 404."""
    supervisor = staff_member("super.race@desk.example", AGENTS_GROUP)
    for round_ in range(ROUNDS):
        user = UserFactory.create()
        case = case_open(contact_email=f"me{round_}@example.org", matched_user=user).case
        RecoveryCase.objects.filter(pk=case.pk).update(status="resolved", closed_at=timezone.now())
        token = secrets.token_urlsafe(32)
        change = EmailChange.objects.create(
            case=case,
            requester=case,
            user=user,
            new_email=f"thief{round_}@example.org",
            requested_by=supervisor,
            status=EmailChange.Status.WAITING_PERIOD,
            effective_at=timezone.now() + timedelta(hours=24),
            cancel_token_hash=keyed_hash(token, purpose=HashPurpose.EMAIL_CHANGE_CANCEL),
        )
        clients = clients_holding(f"/recover/cancel-email-change/{token}/", RACERS)

        responses = requests_together(clients, "post", "/recover/cancel-email-change/")

        assert statuses(responses) == [200] + [404] * (RACERS - 1)
        change.refresh_from_db()
        assert change.status == EmailChange.Status.CANCELLED
        cancelled = SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.EMAIL_CHANGE_CANCELLED
        )
        assert cancelled.count() == 1
        assert case.events.filter(type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED).count() == 1
        assert case.events.filter(type=CaseEvent.Type.REOPENED).count() == 1
        RecoveryCase.objects.filter(pk=case.pk).update(status="rejected")


def signed_in_with_password(user, count: int) -> list[Client]:
    """Browsers past the password step of sign-in, each at the 2FA step."""
    return [password_only_client(user) for _ in range(count)]


def test_one_backup_code_in_four_sign_ins_at_once_signs_in_once():
    """Four sign-ins at the 2FA step use the same backup code together (3 rounds): one
    passes, the others are told the code is not valid or already used, or how long to wait
    before the next try (the throttle after the first refusal); the code is gone
    and its use is recorded once."""
    for _round in range(ROUNDS):
        user = UserFactory.create()
        _device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
        clients = signed_in_with_password(user, RACERS)

        responses = requests_together(clients, "post", "/accounts/2fa/", {"code": codes[0]})

        assert statuses(responses) == [302] + [400] * (RACERS - 1)
        for response in responses:
            if response.status_code == 400:
                # The first refusal counts as a failure, and django-otp's throttle then
                # answers the rest before looking at the code.
                assert (
                    b"already used" in response.content
                    or b"before you try another code" in response.content
                    or b"Too many wrong codes" in response.content
                )
        used = SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.BACKUP_CODE_USED
        )
        assert used.count() == 1
        assert BackupCode.objects.filter(device__user=user).count() == len(codes) - 1


def test_one_authenticator_code_in_four_sign_ins_at_once_signs_in_once():
    """Four sign-ins at the 2FA step send the same authenticator code together: django-otp
    keeps the last accepted time step under the device's row lock, so one passes and the
    others are refused as a replay."""
    user = UserFactory.create()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    clients = signed_in_with_password(user, RACERS)
    code = totp_code(device)

    responses = requests_together(clients, "post", "/accounts/2fa/", {"code": code})

    assert statuses(responses) == [302] + [400] * (RACERS - 1)
    signed_in = [r for r in responses if r.status_code == 302]
    assert re.search(r"/account/security/$", signed_in[0]["Location"])


def wrong_code_answers(case: RecoveryCase, code: str) -> Counter[str]:
    """Eight tabs of the request send the same wrong code at once; the answers they read."""
    clients = status_pages(case, count=8)
    responses = requests_together(
        clients,
        "post",
        "/recover/case/",
        {"action": "verify_code", "kind": "phone", "code": code},
    )
    answers: Counter[str] = Counter()
    for response in responses:
        assert response.status_code == 400
        body = response.content.decode()
        answers["wrong" if "This code is not right" in body else "used up"] += 1
    return answers


def test_wrong_codes_at_once_use_up_the_attempts_alike_with_and_without_an_account(sms_outbox):
    """A burst of wrong codes (eight at once) is counted under a lock whether or not the
    request matched an account: both answer "wrong" five times, then "can no longer be
    used", so a burst cannot tell a request with a real code from one without."""
    user = UserFactory.create()
    matched = case_open(contact_email="owner@example.org", matched_user=user).case
    unmatched = case_open(contact_email="nobody@example.org", contact_phone="+4915199999999").case
    assert case_proof_code_send(case=matched, kind=CaseProof.Kind.PHONE)
    assert not case_proof_code_send(case=unmatched, kind=CaseProof.Kind.PHONE)
    sent = PROOF_CODE_SMS.search(sms_outbox[-1].body)
    assert sent, sms_outbox[-1].body
    code = sent.group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    expected = Counter({"wrong": 5, "used up": 3})
    assert wrong_code_answers(matched, wrong) == expected
    assert wrong_code_answers(unmatched, wrong) == expected


def test_one_authenticator_confirmed_from_four_tabs_at_once_is_set_up_once():
    """The re-enrolment's last step sent from four tabs with the same code: one tab sets the
    authenticator up and gets the backup codes, the others are refused (the account no
    longer needs a re-enrolment); one re-enrolment is recorded, one set of backup codes
    exists."""
    from accounts.models import User
    from accounts.services.two_factor import (
        TotpSetupRefused,
        totp_device_confirm,
        totp_device_start,
    )
    from tests.concurrency import run_together

    user = UserFactory.create()
    User.objects.filter(pk=user.pk).update(reenrolment_required=True)
    device = totp_device_start(user=user)
    code = totp_code(device)

    def confirm():
        try:
            return totp_device_confirm(
                user=user, device_id=device.pk, code=code, context=AuditContext(), reenrolment=True
            )
        except TotpSetupRefused:
            # The page then sends the tab on to where the account is now.
            return "refused"

    results = run_together([confirm] * RACERS)

    codes = [result for result in results if isinstance(result, list)]
    assert len(codes) == 1
    assert sorted(map(str, results)).count("refused") == RACERS - 1
    assert BackupCode.objects.filter(device__user=user).count() == len(codes[0])
    reenrolled = SecurityEvent.objects.filter(
        account_id=user.pk, type=SecurityEvent.Type.TWO_FACTOR_REENROLLED
    )
    assert reenrolled.count() == 1
