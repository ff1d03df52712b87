"""End-to-end journeys in a real browser: signup, email verification, 2FA setup and sign-in.

Playwright drives Debian's Chromium against pytest-django's live server. Emails are read
from the development inbox page (/dev/inbox/), which needs DEBUG and the dev-inbox backends.
"""

from __future__ import annotations

import base64
import re
import time

import pytest
from django_otp.oath import TOTP

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-enough-passphrase-42"
TOTP_STEP = 30


@pytest.fixture
def dev_inbox(settings, dev_inbox_dir):
    """Turn on the development inbox: DEBUG plus the file-writing email and SMS backends."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "notifications.mail.DevInboxEmailBackend"
    settings.SMS_BACKEND = "notifications.sms.backends.DevInboxBackend"
    return dev_inbox_dir


def totp_code_at_step(manual_key: str, step: int) -> str:
    """The code an authenticator app with `manual_key` shows during time step `step`."""
    key = base64.b32decode(manual_key.replace(" ", ""))
    generator = TOTP(key, step=TOTP_STEP, t0=0, digits=6)
    generator.time = step * TOTP_STEP
    return f"{generator.token():06d}"


def current_step() -> int:
    return int(time.time() // TOTP_STEP)


def path_of(page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def wait_for_path(page, path: str) -> None:
    page.wait_for_url(re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$"))


def sign_up(page, email: str, phone: str) -> None:
    page.goto("/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=phone]", phone)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form[action='/accounts/signup/'] button[type=submit]")
    wait_for_path(page, "/accounts/confirm-email/")


def confirm_email_from_inbox(page, email: str) -> None:
    """Open the confirmation link of the newest email to `email` and press the confirm button."""
    page.goto("/dev/inbox/")
    message = (
        page.locator("article.message-email")
        .filter(has=page.locator("span.to", has_text=email))
        .first
    )
    link = message.locator("pre.body a[href*='/accounts/confirm-email/']").first
    href = link.get_attribute("href")
    assert href, "no confirmation link in the verification email"
    page.goto(href)
    # allauth asks for a POST: the confirm page has one form with one submit button.
    page.click("main form[method=post][action*='/accounts/confirm-email/'] button[type=submit]")
    wait_for_path(page, "/accounts/2fa/setup/")


def set_up_authenticator(page) -> tuple[str, int, list[str]]:
    """Enter the code for the key shown; return the key, the step used and the backup codes."""
    manual_key = page.locator("#manual-key").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7=]{1,4}( [A-Z2-7=]{1,4})*", manual_key), manual_key
    step = current_step()
    page.fill("input[name=code]", totp_code_at_step(manual_key, step))
    page.click("main form[method=post] button[type=submit]")
    page.locator("#backup-codes").wait_for()
    codes = [c.strip() for c in page.locator("#backup-codes li").all_inner_texts()]
    return manual_key, step, codes


def next_code_step(setup_step: int) -> int:
    """A time step the server still accepts but has not seen: django-otp refuses replays.

    The setup code was for `setup_step`, so the device's last accepted step is that one.
    The following step is within the default tolerance of one step while we are at most
    a step further on; later than that, the current step is fresh and within tolerance.
    """
    return max(setup_step + 1, current_step())


def sign_out(page) -> None:
    page.click("header form[action='/accounts/logout/'] button[type=submit]")
    page.wait_for_load_state()
    if path_of(page).startswith("/accounts/logout/"):
        # allauth's own confirmation page, if it is shown.
        page.click("main form[action='/accounts/logout/'] button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/logout/" not in url)
    page.locator("header a[href='/accounts/login/']").wait_for()


def test_signup_verify_set_up_2fa_sign_out_and_sign_in_again(page, dev_inbox):
    email = "browser.customer@example.com"
    sign_up(page, email, "0151 23456780")
    confirm_email_from_inbox(page, email)

    manual_key, setup_step, codes = set_up_authenticator(page)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(
        re.fullmatch(r"(?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", code) for code in codes
    ), codes

    page.click("main a.button[href='/account/security/']")
    wait_for_path(page, "/account/security/")

    sign_out(page)

    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    wait_for_path(page, "/accounts/2fa/")
    page.fill("input[name=code]", totp_code_at_step(manual_key, next_code_step(setup_step)))
    page.click("main form[method=post]:not([action]) button[type=submit]")
    wait_for_path(page, "/account/security/")

    assert page.locator("#two-factor .ok").inner_text() == (
        "On: an authenticator app protects your account."
    )
    assert "10 backup codes left." in page.locator("#two-factor").inner_text()
    events = page.locator("#events li").all_inner_texts()
    assert any("Two-factor authentication set up" in event for event in events), events
    assert any("Account created" in event for event in events), events


def test_german_signup_verify_and_2fa_setup(chromium_browser, live_server, dev_inbox):
    from django.utils import translation

    context = chromium_browser.new_context(base_url=live_server.url, locale="de-DE")
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        email = "kundin@example.de"

        page.goto("/accounts/signup/")
        assert page.locator("html").get_attribute("lang") == "de"
        # The sign-up page is ours (sentence case), in German.
        assert page.locator("main h1").inner_text().strip() == "Konto erstellen"
        sign_up(page, email, "+49 151 23456781")
        confirm_email_from_inbox(page, email)

        _key, _step, codes = set_up_authenticator(page)
        assert len(codes) == 10
        page.click("main a.button[href='/account/security/']")
        wait_for_path(page, "/account/security/")
        assert page.locator("html").get_attribute("lang") == "de"

        # Our own strings are checked in German only once their translation exists.
        with translation.override("de"):
            expected = {
                "heading": translation.gettext("Security"),
                "on": translation.gettext("On: an authenticator app protects your account."),
                "event": translation.gettext("Two-factor authentication set up"),
            }
        assert page.locator("main h1").inner_text().strip() == expected["heading"]
        assert page.locator("#two-factor .ok").inner_text().strip() == expected["on"]
        events = page.locator("#events li").all_inner_texts()
        assert any(expected["event"] in event for event in events), events
    finally:
        context.close()
