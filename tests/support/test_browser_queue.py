"""The whole recovery journey in two real browsers: a customer and a support agent.

The customer opens a case, the agent takes it from the queue and sends codes to the phone
and email on file, the customer proves both on the status page, the agent re-authenticates,
and the customer sets a new password and a new authenticator through the emailed link.

Playwright drives Debian's Chromium against pytest-django's live server; codes and links
are read from the development inbox (one JSON file per message in DEV_INBOX_DIR).
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from accounts.services.users import user_create
from support.models import CaseEvent, CaseStatus, RecoveryCase
from support.roles import AGENTS_GROUP
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACCOUNT_EMAIL = "hodl.hanna@example.com"
ACCOUNT_PHONE = "+4915123456700"
CONTACT_EMAIL = "hanna.new@example.org"
AGENT_EMAIL = "agent.queue@desk.example"
AGENT_PASSWORD = "agent-passphrase-long-enough-17"
NEW_PASSWORD = "a-brand-new-passphrase-after-recovery-91"
TOTP_STEP = 30

SMS_CODE = re.compile(r"case RC-[0-9A-Z]{4}-[0-9A-Z]{4}: (\d{6})\.")
EMAIL_CODE = re.compile(r"recovery case RC-[0-9A-Z]{4}-[0-9A-Z]{4} is (\d{6})\.")
RECOVERY_LINK = re.compile(r"(/recover/reset/[A-Za-z0-9_-]{40,}/)")


@pytest.fixture
def dev_inbox(settings, dev_inbox_dir) -> Path:
    """DEBUG plus the file-writing email and SMS backends: messages land in `dev_inbox_dir`."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "notifications.mail.DevInboxEmailBackend"
    settings.SMS_BACKEND = "notifications.sms.backends.DevInboxBackend"
    return dev_inbox_dir


@pytest.fixture
def browsers(chromium_browser, live_server):
    """Two separate browser contexts (cookie jars): the customer's and the agent's."""
    contexts = [
        chromium_browser.new_context(base_url=live_server.url, locale="en-US") for _ in range(2)
    ]
    pages = []
    for context in contexts:
        page = context.new_page()
        page.set_default_timeout(15000)
        pages.append(page)
    yield pages
    for context in contexts:
        context.close()


def inbox_match(directory: Path, *, kind: str, to: str, pattern: re.Pattern, seen=()) -> str:
    """The first group of `pattern` in the newest `kind` message to `to` not in `seen`."""
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(p.read_text()) for p in directory.glob("*.json")]
        records.sort(key=lambda r: r["sent_at"], reverse=True)
        for record in records:
            if record["kind"] == kind and record["to"] == to:
                match = pattern.search(record["body"])
                if match and match.group(1) not in seen:
                    return match.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind} to {to} matching {pattern.pattern}: {records}")
        time.sleep(0.1)


def totp_code_at_step(manual_key: str, step: int) -> str:
    """The code an authenticator app with `manual_key` shows during time step `step`."""
    generator = TOTP(base64.b32decode(manual_key.replace(" ", "")), step=TOTP_STEP, digits=6)
    generator.time = step * TOTP_STEP
    return f"{generator.token():06d}"


def current_step() -> int:
    return int(time.time() // TOTP_STEP)


def wait_for_path(page, path: str) -> None:
    page.wait_for_url(re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$"))


def enter_proof_code(page, *, kind_label: str, code: str) -> None:
    page.select_option("#id_kind_select", label=kind_label)
    page.fill("#proofs input[name=code]", code)
    page.click("#proofs form:has(input[name=action][value=verify_code]) button[type=submit]")
    wait_for_path(page, "/recover/case/")


def test_agent_works_the_queue_and_the_customer_recovers(browsers, dev_inbox):
    customer_page, agent_page = browsers

    # 1. Setup: the customer's account with 2FA; an agent with an authenticator.
    account = UserFactory(email=ACCOUNT_EMAIL, phone=ACCOUNT_PHONE)
    two_factor_provision(user=account, context=AuditContext(), notify=False)
    agent = user_create(email=AGENT_EMAIL, password=AGENT_PASSWORD, is_staff=True)
    agent.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    agent_device, _codes = two_factor_provision(user=agent, context=AuditContext(), notify=False)

    # 2. The customer opens a case, reachable at a new address; the old one is typed among
    # the addresses tried, so triage does not deflect the case and it waits for an agent.
    customer_page.goto("/recover/help/")
    customer_page.fill("#id_contact_email", CONTACT_EMAIL)
    customer_page.fill("#id_contact_phone", "+49 151 23456700")
    customer_page.fill("#id_emails_tried", f"hanna@old-provider.example\n{ACCOUNT_EMAIL}")
    customer_page.fill("#id_description", "I lost my phone with the authenticator app.")
    customer_page.click("main form[method=post] button[type=submit]")
    reference = customer_page.locator("#case-reference").inner_text().strip()
    assert re.fullmatch(r"RC-[0-9A-Z]{4}-[0-9A-Z]{4}", reference), reference
    customer_page.click("#status-link")
    wait_for_path(customer_page, "/recover/case/")
    assert reference in customer_page.locator("main h1").inner_text()
    assert "Waiting for an agent" in customer_page.locator("#case-state").inner_text()
    case = RecoveryCase.objects.get(reference=reference)
    assert case.status == CaseStatus.WAITING
    assert case.matched_user_id == account.pk

    # 3. The agent signs in to the admin with password and authenticator code, takes the case.
    agent_page.goto("/admin/login/?next=/admin/support/recoverycase/queue/")
    agent_page.fill("#id_username", AGENT_EMAIL)
    agent_page.fill("#id_password", AGENT_PASSWORD)
    agent_page.fill("#id_otp_token", totp_code(agent_device))
    agent_page.click("#login-form input[type=submit][value='Log in']")
    wait_for_path(agent_page, "/admin/support/recoverycase/queue/")
    agent_page.click("#take-next")
    case_path = f"/admin/support/recoverycase/{case.pk}/work/"
    wait_for_path(agent_page, case_path)
    assert agent_page.locator("#content h1").inner_text().strip() == f"Case {reference}"
    # The case's one requester, with what they submitted, their proofs and what each
    # action still needs.
    requester = f"#requester-{reference}"
    submitted = agent_page.locator(requester).inner_text()
    assert "= phone on file" in submitted
    assert "(one is the email on file)" in submitted
    # Re-authentication is not offered before the proofs allow it.
    assert agent_page.locator(f"{requester} button[value=reauthenticate]").count() == 0
    agent_page.click(f"{requester} button[value=send_phone_code]")
    wait_for_path(agent_page, case_path)

    # 4. The customer types the SMS code on the status page.
    sms_code = inbox_match(dev_inbox, kind="sms", to=ACCOUNT_PHONE, pattern=SMS_CODE)
    customer_page.reload()
    enter_proof_code(customer_page, kind_label="Text message", code=sms_code)
    assert "Phone on file proven" in customer_page.locator("#proofs").inner_text()

    # 5. The same with a code to the email on file; then the agent re-authenticates.
    agent_page.reload()
    proofs = f"{requester} .proofs li"
    assert "proven" in agent_page.locator(proofs, has_text="Phone on file").inner_text()
    agent_page.click(f"{requester} button[value=send_email_code]")
    wait_for_path(agent_page, case_path)
    email_code = inbox_match(dev_inbox, kind="email", to=ACCOUNT_EMAIL, pattern=EMAIL_CODE)
    enter_proof_code(customer_page, kind_label="Email", code=email_code)
    proofs_text = customer_page.locator("#proofs").inner_text()
    assert "Phone on file proven" in proofs_text
    assert "Email on file proven" in proofs_text

    agent_page.reload()
    for label in ("Phone on file", "Email on file"):
        item = agent_page.locator(proofs, has_text=label).inner_text()
        assert "proven" in item and "not yet" not in item, item
    reauth = agent_page.locator(f"{requester} button[value=reauthenticate]")
    assert reauth.is_enabled()
    reauth.click()
    # The confirmation says what will happen; nothing happened yet.
    assert "Every session of the account ends" in agent_page.locator("#consequences").inner_text()
    agent_page.click("#confirm")
    # Holding no case any more, the agent is back at the queue, free to take the next one.
    wait_for_path(agent_page, "/admin/support/recoverycase/queue/")
    agent_page.locator("#take-next").wait_for()

    customer_page.reload()
    assert "Resolved" in customer_page.locator("#case-state").inner_text()
    assert "Re-authenticated: recovery link sent" in customer_page.locator("#timeline").inner_text()

    # 6. The customer follows the recovery link from the email on file.
    link = inbox_match(dev_inbox, kind="email", to=ACCOUNT_EMAIL, pattern=RECOVERY_LINK)
    customer_page.goto(link)
    wait_for_path(customer_page, "/recover/reset/")
    customer_page.fill("#id_new_password1", NEW_PASSWORD)
    customer_page.fill("#id_new_password2", NEW_PASSWORD)
    customer_page.click("main form[method=post] button[type=submit]")
    wait_for_path(customer_page, "/recover/2fa/setup/")

    manual_key = customer_page.locator("#manual-key").inner_text().strip()
    setup_step = current_step()
    customer_page.fill("input[name=code]", totp_code_at_step(manual_key, setup_step))
    customer_page.click("main form[method=post] button[type=submit]")
    customer_page.locator("#backup-codes").wait_for()
    codes = [c.strip() for c in customer_page.locator("#backup-codes li").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    customer_page.click("main a.button[href='/account/security/']")
    wait_for_path(customer_page, "/account/security/")

    # The session still knows its case: the status page shows it resolved.
    customer_page.goto("/recover/case/")
    assert "Resolved" in customer_page.locator("#case-state").inner_text()
    assert customer_page.locator("#proofs").count() == 0

    # Sign out, then in again with the new password and a fresh (not replayed) code.
    customer_page.goto("/account/security/")
    customer_page.click("header form[action='/accounts/logout/'] button[type=submit]")
    customer_page.wait_for_load_state()
    if "/accounts/logout/" in customer_page.url:
        customer_page.click("main form[action='/accounts/logout/'] button[type=submit]")
    customer_page.locator("header a[href='/accounts/login/']").wait_for()

    customer_page.goto("/accounts/login/")
    customer_page.fill("input[name=login]", ACCOUNT_EMAIL)
    customer_page.fill("input[name=password]", NEW_PASSWORD)
    customer_page.click("form[action='/accounts/login/'] button[type=submit]")
    wait_for_path(customer_page, "/accounts/2fa/")
    login_step = max(setup_step + 1, current_step())
    customer_page.fill("input[name=code]", totp_code_at_step(manual_key, login_step))
    customer_page.click("main form[method=post]:not([action]) button[type=submit]")
    wait_for_path(customer_page, "/account/security/")
    assert "Security hold until" in customer_page.locator("main").inner_text()
    assert customer_page.locator("#two-factor .ok").inner_text() == (
        "On: an authenticator app protects your account."
    )
    assert "10 backup codes left." in customer_page.locator("#two-factor").inner_text()

    # 7. The case is resolved by re-authentication, with the whole journey on its timeline.
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == RecoveryCase.Resolution.REAUTHENTICATED
    assert case.claimed_by_id is None
    types = list(case.events.order_by("created_at", "id").values_list("type", flat=True))
    T = CaseEvent.Type
    assert types == [
        T.OPENED,
        T.TRIAGED,
        T.QUEUED,
        T.CLAIMED,
        T.CODE_SENT,
        T.PROOF_ADDED,
        T.CODE_SENT,
        T.PROOF_ADDED,
        T.REAUTHENTICATED,
    ], types
    assert set(case.proofs.values_list("kind", flat=True)) == {"phone", "email"}

    account = User.objects.get(pk=account.pk)
    assert account.check_password(NEW_PASSWORD)
    assert not account.check_password(PASSWORD)
    assert not account.reenrolment_required
    assert account.on_security_hold
    # Only the authenticator the customer set up themselves is left.
    device = TOTPDevice.objects.get(user=account)
    assert base64.b32encode(device.bin_key).decode().rstrip("=") == manual_key.replace(
        " ", ""
    ).rstrip("=")
