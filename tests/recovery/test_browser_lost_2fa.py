"""/recover/lost-2fa/ in a real browser, in German: password, a texted code, the countdown,
then (the wait made over) a new authenticator and new backup codes.

Playwright drives Debian's Chromium against the live server; the texted code is read from
the development inbox the SMS backend writes.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from accounts.models import User
from recovery.models import SelfServiceRecovery
from tests.accounts.test_browser import current_step, totp_code_at_step, wait_for_path
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import ACCOUNT_EMAIL, ACCOUNT_PHONE, customer_account
from tests.support.test_browser_queue import inbox_match

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SMS_CODE = re.compile(r"Kontowiederherstellung: (\d{6})\.")


@pytest.fixture
def dev_inbox(settings, dev_inbox_dir):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "notifications.mail.DevInboxEmailBackend"
    settings.SMS_BACKEND = "notifications.sms.backends.DevInboxBackend"
    return dev_inbox_dir


def de(message: str) -> str:
    with translation.override("de"):
        return translation.gettext(message)


def test_a_german_customer_replaces_a_lost_authenticator_without_an_agent(
    chromium_browser, live_server, dev_inbox
):
    user, old_codes = customer_account(language="de")
    context = chromium_browser.new_context(base_url=live_server.url, locale="de-DE")
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto("/recover/")
        page.click("main a[href='/recover/lost-2fa/']")
        wait_for_path(page, "/recover/lost-2fa/")
        assert page.locator("html").get_attribute("lang") == "de"
        assert page.locator("main h1").inner_text().strip() == "Authenticator-App verloren?"

        page.fill("input[name=identifier]", ACCOUNT_EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("main form:has(input[value=start]) button[type=submit]")
        page.locator("#self-service[data-state=proving]").wait_for()
        page.click("main form:has(input[name=channel][value=phone]) button")
        page.locator("p.notice").wait_for()
        assert page.locator("p.notice").inner_text().strip() == de(
            "The code is on its way. It works for %(minutes)s minutes."
        ) % {"minutes": 10}

        code = inbox_match(dev_inbox, kind="sms", to=ACCOUNT_PHONE, pattern=SMS_CODE)
        page.select_option("select[name=channel]", "phone")
        page.fill("input[name=code]", code)
        page.click("main form:has(input[value=verify_code]) button[type=submit]")
        page.locator("#self-service[data-state=waiting]").wait_for()
        countdown = page.locator("#countdown").inner_text()
        assert "Wartezeit bis" in countdown and "UTC" in countdown
        # Chromium on this machine is a device and a network the account never used.
        assert de("The wait is longer than usual because:") in countdown
        assert de("this device was never used with the account") in countdown

        attempt = SelfServiceRecovery.objects.get()
        assert attempt.status == SelfServiceRecovery.Status.WAITING
        assert attempt.wait_hours == 72
        SelfServiceRecovery.objects.filter(pk=attempt.pk).update(
            wait_ends_at=timezone.now() - timedelta(minutes=1)
        )

        page.reload()
        assert de("The waiting period is over.") in page.locator("#countdown").inner_text()
        page.click("main form:has(input[value=finish]) button[type=submit]")
        wait_for_path(page, "/recover/lost-2fa/setup/")
        assert page.locator(".qr svg").count() == 1
        manual_key = page.locator("#manual-key").inner_text().strip()
        page.fill("input[name=code]", totp_code_at_step(manual_key, current_step()))
        page.click("main form[method=post] button[type=submit]")
        page.locator("#backup-codes").wait_for()
        codes = [c.strip() for c in page.locator("#backup-codes li").all_inner_texts()]
        assert len(codes) == 10 and not set(codes) & set(old_codes)
        assert page.locator("html").get_attribute("lang") == "de"
    finally:
        context.close()

    attempt.refresh_from_db()
    assert attempt.status == SelfServiceRecovery.Status.COMPLETED
    user = User.objects.get(pk=user.pk)
    assert user.on_security_hold and not user.reenrolment_required
