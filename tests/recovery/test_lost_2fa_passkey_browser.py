"""A passkey as a proof inside /recover/lost-2fa/, with real WebAuthn ceremonies.

Chromium's virtual authenticator (CDP `WebAuthn.addVirtualAuthenticator`) holds real keys
and signs real assertions for the page's origin, as in tests/accounts/test_passkeys_browser.py.
"""

from __future__ import annotations

import json

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SecurityEvent, SignIn, User
from recovery.models import SelfServiceRecovery
from tests.accounts.test_passkeys_browser import (
    page_with_authenticator,
    register_passkey,
    sign_in_with_app,
    sign_out,
    wait_for_path,
)
from tests.factories import PASSWORD, UserFactory, totp_code
from tests.recovery.self_service_helpers import customer_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Status = SelfServiceRecovery.Status

# In the page: ask the lost-2fa begin endpoint for a challenge, drop the account's
# allowCredentials (so the browser's own passkey answers), sign, and post the assertion.
FORGED_ASSERTION = """async () => {
  const csrf = JSON.parse(document.getElementById('otp_webauthn_config').textContent).csrfToken;
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
      .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')
      + '==='.slice((s.length + 3) % 4)), c => c.charCodeAt(0));
  const post = (url, body) => fetch(url, {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf},
      body: JSON.stringify(body)});
  const options = await (await post('/recover/lost-2fa/passkey/begin/', {})).json();
  const assertion = await navigator.credentials.get({publicKey: {
      challenge: unb64(options.challenge), rpId: options.rpId, allowCredentials: [],
      userVerification: 'discouraged'}});
  const r = assertion.response;
  const answer = await post('/recover/lost-2fa/passkey/complete/', {
      id: assertion.id, rawId: b64(assertion.rawId), type: assertion.type,
      response: {clientDataJSON: b64(r.clientDataJSON),
                 authenticatorData: b64(r.authenticatorData),
                 signature: b64(r.signature),
                 userHandle: r.userHandle ? b64(r.userHandle) : null},
      clientExtensionResults: {}});
  return {status: answer.status, body: await answer.text()};
}"""


def owner_with_passkey(page) -> tuple[User, list[str]]:
    """The customer of the self-service tests, with a passkey made by `page`'s authenticator."""
    user, codes = customer_account(email="passkey.owner@example.com")
    device = TOTPDevice.objects.get(user=user)
    sign_in_with_app(page, user, device)
    register_passkey(page)
    sign_out(page)
    return user, codes


def start(page, **first: str) -> None:
    page.goto("/recover/lost-2fa/")
    page.fill("input[name=identifier]", "passkey.owner@example.com")
    for name, value in first.items():
        page.fill(f"input[name={name}]", value)
    page.click("main form:has(input[value=start]) button[type=submit]")
    page.locator("#self-service[data-state=proving]").wait_for()


def attempt() -> SelfServiceRecovery:
    newest = SelfServiceRecovery.objects.order_by("-pk").first()
    assert newest is not None, "no attempt was started"
    return newest


def test_password_and_passkey_replace_the_app_at_once(authenticator_page):
    """The customer lost the app but holds a passkey: password, then the passkey, in the
    lost-2fa flow is a sign-in; the new app is set up at once, with no wait and no agent."""
    page = authenticator_page
    user, _codes = owner_with_passkey(page)
    start(page, password=PASSWORD)
    page.click("#passkey-verification-button")
    wait_for_path(page, "/account/security/passkeys/replace-app/")

    # A sign-in like any with a second factor: in the history, and a passkey may be added.
    assert list(
        SignIn.objects.filter(user=user).order_by("created_at").values_list("outcome", flat=True)
    ) == [SignIn.Outcome.SIGNED_IN, SignIn.Outcome.SIGNED_IN]
    passkeys_tab = page.context.new_page()
    passkeys_tab.goto("/account/security/passkeys/")
    passkeys_tab.locator("#passkey-register-button").wait_for()
    assert passkeys_tab.locator("#passkey-sign-in-again").count() == 0
    passkeys_tab.close()

    done = attempt()
    assert done.status == Status.COMPLETED and done.wait_ends_at is None
    assert [p["method"] for p in done.proofs] == ["password", "authenticator"]
    proof = SecurityEvent.objects.filter(
        account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED
    ).get()
    assert proof.details["passkey_id"] == WebAuthnCredential.objects.get(user=user).pk

    new_device = TOTPDevice.objects.get(user=user, confirmed=False)
    page.fill("input[name=code]", totp_code(new_device))
    page.click("main form[method=post] button[type=submit]")
    page.locator("#backup-codes").wait_for()
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [
        new_device.pk
    ]


def test_a_backup_code_and_a_passkey_start_the_wait(authenticator_page):
    """Without the password, a backup code and the passkey are the two methods of the
    lost-factor rule: the wait starts, announced with a cancel link to every contact."""
    page = authenticator_page
    user, codes = owner_with_passkey(page)
    start(page, backup_code=codes[0])
    page.click("#passkey-verification-button")
    page.locator("#self-service[data-state=waiting]").wait_for()

    waiting = attempt()
    assert waiting.status == Status.WAITING
    assert waiting.wait_hours is not None and waiting.wait_hours >= 24
    assert [p["method"] for p in waiting.proofs] == ["backup_code", "authenticator"]
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    page.goto("/account/security/")
    wait_for_path(page, "/accounts/login/")


def test_the_password_without_the_passkey_proves_nothing_more(
    chromium_browser, authenticator_page, site
):
    """An attacker who has the owner's password but not the passkey, in a browser whose
    authenticator holds a passkey of the attacker's own account: the page's ceremony finds
    no passkey of the owner, and an assertion of the attacker's passkey posted to the
    complete endpoint is refused. The attempt keeps only the password; nobody signs in."""
    owner, _codes = owner_with_passkey(authenticator_page)
    owner_passkey = WebAuthnCredential.objects.values("sign_count", "last_used_at").get(user=owner)

    context = chromium_browser.new_context(base_url=site, locale="en-US")
    try:
        page = page_with_authenticator(context)
        attacker = UserFactory.create(email="attacker@example.net", phone="+4915112999777")
        attacker_app = TOTPDevice.objects.create(user=attacker, name="App", confirmed=True)
        sign_in_with_app(page, attacker, attacker_app)
        register_passkey(page)
        sign_out(page)

        start(page, password=PASSWORD)
        with page.expect_response(lambda r: "/lost-2fa/passkey/" in r.url):
            page.click("#passkey-verification-button")
        page.locator("#passkey-verification-status-message[data-status-enum]").wait_for()

        answer = page.evaluate(FORGED_ASSERTION)
        assert answer["status"] in (400, 403, 404, 422), answer
        assert "credential" in json.loads(answer["body"])["code"], answer

        tried = attempt()
        assert tried.status == Status.PROVING
        assert [p["method"] for p in tried.proofs] == ["password"]
        page.goto("/account/security/")
        wait_for_path(page, "/accounts/login/")
    finally:
        context.close()
    assert not SecurityEvent.objects.filter(
        account_id=owner.pk, type=SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED
    ).exists()
    assert (
        WebAuthnCredential.objects.values("sign_count", "last_used_at").get(user=owner)
        == owner_passkey
    )
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).count() == 1
    # The owner's password with a passkey that is not the owner's: a failed sign-in.
    failed = SignIn.objects.filter(user=owner, outcome=SignIn.Outcome.WRONG_SECOND_FACTOR)
    assert failed.count() == 1
