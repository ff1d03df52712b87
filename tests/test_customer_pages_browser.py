"""Every customer page, in English and German, at desktop and phone widths: nothing wider
than the screen, and no serious or critical accessibility violation (axe-core).

Chromium walks the pages as customers reach them: anonymous pages and forms, the links of
confirmation and reset emails, a case opened and its status page, a first authenticator set up
with its backup codes, the security page, allauth's less-used pages (sessions, confirming it is
you by password or by code, signing out), and the second step of a sign-in. axe-core is
loaded from `tests/static/axe/` (a copy of the npm package) into each page through the
DevTools protocol, so the site's CSP stays as it is. With `SCREENSHOTS_DIR` set, the main
pages are also saved as PNGs there (the README's pictures in docs/screenshots/ come from this).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.conftest import ROOT
from tests.factories import PASSWORD, UserFactory, totp_code

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AXE = (ROOT / "tests" / "static" / "axe" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = {1280: 900, 375: 740, 320: 640}
AXE_WIDTHS = (1280, 375)
SCREENSHOT_WIDTH = 375
# The README's table of pictures, one PNG per page and language.
SCREENSHOT_PAGES = {
    "sign-in",
    "recovery-hub",
    "lost-2fa",
    "new-email",
    "help",
    "case-status",
    "backup-codes",
    "security",
}
BLOCKING_IMPACTS = {"serious", "critical"}


@dataclass
class Walk:
    """One language's walk: what each page showed wrong, at every width."""

    page: Page
    language: str
    screenshots: Path | None
    problems: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def check(self, name: str) -> None:
        """Check the page now open at every width; keep what is wrong."""
        page = self.page
        self.visited.append(name)
        shown_in = page.evaluate("() => document.documentElement.lang")
        if shown_in != self.language:
            self.problems.append(f"{name}: page in {shown_in!r}, not {self.language!r}")
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                wide = page.evaluate(WIDEST_ELEMENT)
                self.problems.append(f"{name} @{width}px: {overflow}px too wide ({wide})")
            if width in AXE_WIDTHS:
                for violation in run_axe(page):
                    self.problems.append(f"{name} @{width}px: axe {violation}")
            if name in SCREENSHOT_PAGES and self.screenshots and width == SCREENSHOT_WIDTH:
                page.screenshot(
                    path=str(self.screenshots / f"{name}-{self.language}.png"), full_page=True
                )
        page.set_viewport_size({"width": 1280, "height": 900})


WIDEST_ELEMENT = """() => {
  const limit = document.documentElement.clientWidth;
  let worst = null;
  for (const el of document.querySelectorAll('body *')) {
    const right = el.getBoundingClientRect().right;
    if (right > limit + 0.5 && (!worst || right > worst.right)) {
      worst = {right, tag: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
               + (el.className && typeof el.className === 'string' ? '.' + el.className : '')};
    }
  }
  return worst ? worst.tag : 'unknown';
}"""


def run_axe(page: Page) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    results = page.evaluate("async () => (await window.axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['target'] if v['nodes'] else ''}"
        for v in results
        if v["impact"] in BLOCKING_IMPACTS
    ]


def go(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("load")


def submit(page: Page, form_selector: str) -> None:
    with page.expect_navigation():
        page.click(f"{form_selector} button[type=submit]")


def walk_anonymous_pages(walk: Walk) -> None:
    page = walk.page
    for name, path in [
        ("home", "/"),
        ("sign-in", "/accounts/login/"),
        ("sign-up", "/accounts/signup/"),
        ("password-reset", "/accounts/password/reset/"),
        ("recovery-hub", "/recover/"),
        ("email-hint", "/recover/email/"),
        ("email-hint-sent", "/recover/email/sent/"),
        ("help", "/recover/help/"),
        ("case-resend", "/recover/case/resend/"),
        ("verify-message", "/recover/verify-message/"),
        ("frozen", "/recover/frozen/"),
        ("link-invalid", "/recover/case/not-a-real-link/"),
        ("not-found", "/no-such-page/"),
        ("lost-2fa", "/recover/lost-2fa/"),
        ("new-email", "/recover/new-email/"),
        ("account-inactive", "/accounts/inactive/"),
        ("email-confirm-invalid", "/accounts/confirm-email/not-a-key/"),
        ("password-reset-link-invalid", "/accounts/password/reset/key/1-not-a-key/"),
        ("password-reset-done", "/accounts/password/reset/key/done/"),
    ]:
        response = page.goto(path)
        assert response is not None, path
        if name in {"lost-2fa", "new-email"} and response.status == 404:
            continue  # pages of another flow, checked once they exist
        page.wait_for_load_state("load")
        walk.check(name)

    go(page, "/accounts/login/")
    page.fill("input[name=login]", "someone@gmail.con")
    page.fill("input[name=password]", "not-the-password")
    submit(page, "main form[method=post]")
    walk.check("sign-in-failed")

    go(page, "/recover/email/")
    page.fill("input[name=phone]", "not a number")
    submit(page, "main form[method=post]")
    walk.check("email-hint-error")

    go(page, "/accounts/password/reset/")
    page.fill("input[name=email]", "someone@example.com")
    submit(page, "main form[method=post]")
    walk.check("password-reset-sent")

    stranger = UserFactory()
    EmailAddress.objects.filter(user=stranger).update(verified=False)
    address = EmailAddress.objects.get(user=stranger)
    go(page, f"/accounts/confirm-email/{EmailConfirmationHMAC(address).key}/")
    walk.check("email-confirm")

    go(page, password_reset_link(stranger))
    page.locator("input[name=password1]").wait_for()
    walk.check("password-reset-new-password")

    go(page, "/accounts/signup/")
    page.fill("input[name=email]", f"walker.{walk.language}@example.com")
    page.fill("input[name=phone]", "+4915100000" + ("101" if walk.language == "en" else "202"))
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    submit(page, "main form[method=post]")
    walk.check("sign-up-sent")


def password_reset_link(user: User) -> str:
    """The link of a password-reset email, as allauth makes it."""
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str

    uid = user_pk_to_url_str(user)
    return f"/accounts/password/reset/key/{uid}-{default_token_generator.make_token(user)}/"


def walk_case_pages(walk: Walk) -> None:
    page = walk.page
    go(page, "/recover/help/")
    page.fill("input[name=contact_email]", "reach.me@example.org")
    page.fill("textarea[name=description]", "Mein Telefon wurde gestohlen. My phone was stolen.")
    submit(page, "main form[method=post]")
    walk.check("case-opened")
    with page.expect_navigation():
        page.click("#status-link")
    walk.check("case-status")
    page.fill("textarea[name=message]", "Ich habe noch meinen Ausweis. I still have my ID.")
    submit(page, "#reply form")
    walk.check("case-status-replied")


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    go(page, "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    submit(page, "main form[method=post]")


def walk_account_pages(walk: Walk) -> None:
    page = walk.page
    newcomer = UserFactory()
    # A refused attempt first, so the security page's history shows a failed sign-in too.
    sign_in(page, newcomer.email, password="not-the-password-0")
    sign_in(page, newcomer.email)
    page.locator("#manual-key").wait_for()
    walk.check("two-factor-setup")
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=newcomer, confirmed=False)
    page.fill("input[name=code]", totp_code(device))
    submit(page, "main form[method=post]")
    page.locator("#backup-codes").wait_for()
    walk.check("backup-codes")
    go(page, "/account/security/")
    walk.check("security")
    assert page.locator("#sign-ins strong.warn").count() == 1
    go(page, "/accounts/email/")
    walk.check("email-closed")
    go(page, "/accounts/password/change/")
    walk.check("password-change")
    go(page, "/accounts/sessions/")
    walk.check("sessions")
    go(page, "/accounts/reauthenticate/")
    walk.check("reauthenticate")
    go(page, "/accounts/reauthenticate/code/")
    walk.check("reauthenticate-code-request")
    submit(page, "main form[method=post]")
    page.locator("input[name=code]").wait_for()
    walk.check("reauthenticate-code")
    go(page, "/accounts/logout/")
    walk.check("sign-out")
    submit(page, "main form[method=post]")

    returning = UserFactory()
    two_factor_provision(user=returning, context=AuditContext(), notify=False)
    sign_in(page, returning.email)
    walk.check("two-factor-verify")


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_customer_page_fits_the_screen_and_passes_axe(
    chromium_browser, live_server, language, settings
):
    settings.ACCOUNT_RATE_LIMITS = {key: "" for key in settings.ACCOUNT_RATE_LIMITS}
    screenshots = None
    if os.environ.get("SCREENSHOTS_DIR"):
        screenshots = Path(os.environ["SCREENSHOTS_DIR"])
        screenshots.mkdir(parents=True, exist_ok=True)
    context = chromium_browser.new_context(
        base_url=live_server.url, locale="de-DE" if language == "de" else "en-US"
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        walk = Walk(page=page, language=language, screenshots=screenshots)
        page.on(
            "response",
            lambda response: (
                walk.failed_requests.append(f"{response.status} {response.url}")
                if response.status >= 400 and response.request.resource_type != "document"
                else None
            ),
        )
        walk_anonymous_pages(walk)
        walk_case_pages(walk)
        walk_account_pages(walk)
    finally:
        context.close()
    assert len(walk.visited) >= 39, walk.visited
    assert walk.failed_requests == []
    assert walk.problems == [], "\n".join(walk.problems)
