"""Passkeys in a real browser: Chromium's virtual authenticator through the DevTools protocol.

The authenticator (CDP `WebAuthn.addVirtualAuthenticator`) holds real keys and signs real
assertions for the page's origin, so these tests exercise django-otp-webauthn's JavaScript
under the site's CSP and the server's checks of challenge, origin and relying party.
"""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SecurityEvent, User
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_path(page, path: str) -> None:
    page.wait_for_url(re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$"))


@pytest.fixture
def site(settings, live_server):
    """SITE_URL is the live server's address: the relying party and the accepted origin."""
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def browser_context(chromium_browser, site):
    context = chromium_browser.new_context(base_url=site, locale="en-US")
    yield context
    context.close()


def page_with_authenticator(context):
    """A new page of `context` with a virtual platform authenticator that verifies the user
    by itself."""
    page = context.new_page()
    page.set_default_timeout(15000)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.cdp = cdp
    page.authenticator_id = added["authenticatorId"]
    return page


@pytest.fixture
def authenticator_page(browser_context):
    return page_with_authenticator(browser_context)


@pytest.fixture
def customer():
    user = UserFactory.create(email="passkey.owner@example.com", phone="+4915112999001")
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return user, device


def sign_in_with_password(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    wait_for_path(page, "/accounts/2fa/")


def sign_in_with_app(page, user: User, device: TOTPDevice) -> None:
    sign_in_with_password(page, user.email)
    page.fill("input[name=code]", totp_code(device))
    page.click("main form[method=post]:not([action]) button[type=submit]")
    wait_for_path(page, "/account/security/")


def sign_in_with_passkey(page, email: str) -> None:
    sign_in_with_password(page, email)
    page.click("#passkey-verification-button")
    wait_for_path(page, "/account/security/")


def sign_out(page) -> None:
    page.click("header form[action='/accounts/logout/'] button[type=submit]")
    page.wait_for_load_state()
    if "/accounts/logout/" in page.url:
        page.click("main form[action='/accounts/logout/'] button[type=submit]")
    page.locator("header a[href='/accounts/login/']").wait_for()


def register_passkey(page) -> None:
    page.goto("/account/security/")
    page.click("#passkeys-summary a[href='/account/security/passkeys/']")
    wait_for_path(page, "/account/security/passkeys/")
    before = page.locator("li.passkey").count()
    page.click("#passkey-register-button")
    page.locator("li.passkey").nth(before).wait_for()


def notices_of(event_type: str, user: User) -> set[tuple[str, str]]:
    return set(
        Notification.objects.filter(
            account_id=user.pk, template_key=f"security/{event_type}"
        ).values_list("channel", "recipient")
    )


def test_register_sign_out_sign_in_with_passkey_rename_and_remove(authenticator_page, customer):
    """A customer adds a passkey, signs in with it as the second factor, names it and
    removes it; every change is an event and a notice to the email and the phone."""
    page = authenticator_page
    user, device = customer
    sign_in_with_app(page, user, device)

    register_passkey(page)
    passkey = WebAuthnCredential.objects.get(user=user)
    assert passkey.confirmed
    credentials = page.cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": page.authenticator_id}
    )["credentials"]
    assert len(credentials) == 1
    assert credentials[0]["rpId"] == "localhost"
    everyone = {("email", user.email), ("sms", user.phone)}
    assert notices_of(SecurityEvent.Type.PASSKEY_ADDED, user) == everyone

    sign_out(page)
    sign_in_with_passkey(page, user.email)
    assert page.locator("#replace-app").count() == 1
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None
    assert passkey.sign_count >= 1

    page.goto("/account/security/passkeys/")
    page.fill(f"#passkey-name-{passkey.pk}", "Work laptop")
    page.click("form.passkey-rename button[type=submit]")
    page.locator("p.message.success").wait_for()
    assert page.locator(".passkey-name").inner_text() == "Work laptop"
    assert notices_of(SecurityEvent.Type.PASSKEY_RENAMED, user) == everyone

    page.click("form.passkey-remove button[type=submit]")
    page.locator("p.message.success").wait_for()
    assert page.locator("li.passkey").count() == 0
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert notices_of(SecurityEvent.Type.PASSKEY_REMOVED, user) == everyone

    sign_out(page)
    sign_in_with_password(page, user.email)
    assert page.locator("#passkey-verification-button").count() == 0


def test_assertion_from_another_origin_is_refused(authenticator_page, customer, settings):
    """A look-alike site relays the login: the browser signs for the origin it is on, and
    the server, expecting only SITE_URL's origin, refuses the assertion."""
    page = authenticator_page
    user, device = customer
    sign_in_with_app(page, user, device)
    register_passkey(page)
    sign_out(page)
    sign_in_with_password(page, user.email)
    before = WebAuthnCredential.objects.values("sign_count", "last_used_at").get(user=user)

    settings.SITE_URL = "http://localhost:1"
    with page.expect_response(lambda r: "/passkey/authentication/complete/" in r.url) as answer:
        page.click("#passkey-verification-button")
    assert answer.value.status == 422
    page.locator("#passkey-verification-status-message[data-status-enum]").wait_for()
    page.goto("/account/security/")
    wait_for_path(page, "/accounts/2fa/")
    assert WebAuthnCredential.objects.values("sign_count", "last_used_at").get(user=user) == before


def test_lost_authenticator_app_replaced_with_passkey_and_no_wait(authenticator_page, customer):
    """A customer who lost the authenticator app signs in with the password and a passkey
    and sets up a new app at once: no wait, no hold, the old app stops working."""
    page = authenticator_page
    user, device = customer
    sign_in_with_app(page, user, device)
    register_passkey(page)
    sign_out(page)

    sign_in_with_passkey(page, user.email)
    page.click("#replace-app a")
    wait_for_path(page, "/account/security/passkeys/replace-app/")
    manual_key = page.locator("#manual-key").inner_text().replace(" ", "")
    new_device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert manual_key.rstrip("=")
    page.fill("input[name=code]", totp_code(new_device))
    page.click("main form[method=post] button[type=submit]")
    page.locator("#backup-codes").wait_for()

    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [
        new_device.pk
    ]
    user.refresh_from_db()
    assert not user.on_security_hold
    assert notices_of(SecurityEvent.Type.TWO_FACTOR_ENABLED, user) == {
        ("email", user.email),
        ("sms", user.phone),
    }


def test_revocation_keeps_passkeys_with_factors_and_removes_them_without(
    authenticator_page, customer
):
    """`revoke_2fa --factors totp,backup` leaves the passkey, which still signs in; a
    campaign without `--factors` removes it too and sends the customer to re-enrolment."""
    page = authenticator_page
    user, device = customer
    sign_in_with_app(page, user, device)
    register_passkey(page)
    sign_out(page)

    call_command(
        "revoke_2fa",
        "--all",
        "--reason",
        "TOTP seeds exposed",
        "--factors",
        "totp,backup",
        "--no-progress",
    )
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert WebAuthnCredential.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert not user.reenrolment_required
    sign_in_with_passkey(page, user.email)
    sign_out(page)

    call_command("revoke_2fa", "--all", "--reason", "Second wave", "--no-progress")
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert user.reenrolment_required
    page.goto("/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    wait_for_path(page, "/recover/2fa/")


def test_staff_reach_the_admin_with_a_passkey(authenticator_page):
    """The admin's OTP sign-in offers a passkey: password, then the passkey, then the admin
    itself, with no code typed."""
    page = authenticator_page
    staff = UserFactory.create(email="agent.passkey@desk.example", phone=None, is_staff=True)
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    sign_in_with_app(page, staff, device)
    register_passkey(page)
    sign_out(page)

    page.goto("/admin/login/?next=/admin/")
    page.click("#staff-passkey-sign-in a")
    wait_for_path(page, "/accounts/login/")
    page.fill("input[name=login]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    wait_for_path(page, "/accounts/2fa/")
    page.click("#passkey-verification-button")
    wait_for_path(page, "/admin/")
    assert page.locator("#site-name").inner_text().strip() == "Recovery Desk"
