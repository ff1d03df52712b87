"""An agent's day in Chromium: sign in, queue, take next, resolve with the keyboard, next.

Also the claim that runs out (the countdown's warning, renewal by activity, the page in
words), a case given back, and an approval that returns to the agent who asked. Playwright
drives Debian's Chromium against pytest-django's live server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email
from accounts.models import User
from support.models import CaseApproval, CaseEvent, CaseProof, CaseStatus, RecoveryCase
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from tests.factories import PASSWORD, UserFactory, totp_code
from tests.support.conftest import fresh_code, staff_member, waiting_case

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUEUE = "/admin/support/recoverycase/queue/"


def wait_for_path(page: Page, path: str) -> None:
    page.wait_for_url(re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$"))


def work_path(case: RecoveryCase) -> str:
    return f"/admin/support/recoverycase/{case.pk}/work/"


@dataclass
class Agent:
    """A staff member's browser, counting the clicks and key presses that act."""

    page: Page
    user: User
    interactions: list[str] = field(default_factory=list)

    def click(self, selector: str) -> None:
        self.interactions.append(f"click {selector}")
        self.page.click(selector)

    def press(self, key: str) -> None:
        self.interactions.append(f"key {key}")
        self.page.keyboard.press(key)


@pytest.fixture
def open_browser(chromium_browser, live_server):
    contexts = []

    def open_for(user: User, *, locale: str = "en-US") -> Agent:
        context = chromium_browser.new_context(base_url=live_server.url, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        return Agent(page=page, user=user)

    yield open_for
    for context in contexts:
        context.close()


def sign_in(agent: Agent) -> None:
    """Password and authenticator code on the staff sign-in, with no page asked for."""
    page = agent.page
    page.goto("/admin/login/")
    page.fill("#id_username", agent.user.email)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", totp_code(TOTPDevice.objects.get(user=agent.user)))
    page.click("#login-form input[type=submit]")


def proofs_done_case(email: str, phone: str, *, minutes_ago: int) -> RecoveryCase:
    """A waiting case whose requester proved the phone and the email on file."""
    account = UserFactory(email=email, phone=phone)
    case = waiting_case(
        matched_user=account,
        queued_at=timezone.now() - timedelta(minutes=minutes_ago),
        contact_email=f"new.{email}",
    )
    for kind in (CaseProof.Kind.PHONE, CaseProof.Kind.EMAIL):
        CaseProof.objects.create(case=case, kind=kind)
    return case


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll the database until `condition()` is true (the event the test waits for)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the awaited change did not happen")
        time.sleep(0.05)


def lease_end(case: RecoveryCase) -> datetime:
    """When the claim on the case runs out, as stored now (a claimed case has an end)."""
    lease_expires_at = RecoveryCase.objects.get(pk=case.pk).lease_expires_at
    assert lease_expires_at is not None
    return lease_expires_at


def test_an_agents_day_resolves_a_proofs_done_case_in_two_key_presses(open_browser, agent):
    """Sign-in lands on the queue; "n" (Take next) opens the oldest case; "r" asks to confirm the
    re-authentication in words; Enter confirms and opens the next case, with a summary of
    what was sent where. Resolving takes 2 interactions including the confirmation."""
    first = proofs_done_case("first.customer@example.com", "+4915100000011", minutes_ago=30)
    second = proofs_done_case("second.customer@example.com", "+4915100000012", minutes_ago=5)
    desk = open_browser(agent)

    sign_in(desk)
    wait_for_path(desk.page, QUEUE)
    # "?" opens the shortcuts' help, Escape closes it; "n" takes the next case.
    help_overlay = desk.page.locator("#shortcuts-help")
    desk.page.keyboard.press("?")
    help_overlay.wait_for(state="visible")
    assert "Take the next case" in help_overlay.inner_text()
    desk.page.keyboard.press("Escape")
    help_overlay.wait_for(state="hidden")
    desk.press("n")
    wait_for_path(desk.page, work_path(first))
    if os.environ.get("WORKSPACE_SCREENSHOT"):
        desk.page.set_viewport_size({"width": 1280, "height": 1000})
        desk.page.screenshot(path=os.environ["WORKSPACE_SCREENSHOT"], full_page=False)
    # Only what the proofs allow is offered: no code to send, no email change approval.
    requester = f"#requester-{first.reference}"
    assert desk.page.locator(f"{requester} button[value=send_phone_code]").count() == 0
    assert desk.page.locator(f"{requester} button[value=reauthenticate]").is_visible()
    assert "left" in desk.page.locator("#lease-countdown").inner_text()

    desk.interactions.clear()
    desk.press("r")
    desk.page.locator("#consequences").wait_for()
    consequences = desk.page.locator("#consequences").inner_text()
    assert "Every session of the account ends" in consequences
    assert first.matched_user is not None
    masked = mask_email(first.matched_user.email)
    assert f"recovery link goes by email to {masked}, valid 24 hours" in consequences
    first.refresh_from_db()
    assert first.status == CaseStatus.CLAIMED, "nothing happens before the confirmation"
    desk.press("Enter")
    wait_for_path(desk.page, work_path(second))

    resolve_clicks = len(desk.interactions)
    print(f"interactions to resolve a proofs-done case: {resolve_clicks} {desk.interactions}")
    assert resolve_clicks <= 3
    first.refresh_from_db()
    assert first.status == CaseStatus.RESOLVED
    assert first.resolution == RecoveryCase.Resolution.REAUTHENTICATED
    summary = desk.page.locator("ul.messagelist").inner_text()
    assert f"Re-authenticated; case resolved: {first.reference}." in summary
    assert f"recovery link → email to {masked}" in summary
    assert "security notice →" in summary

    # The same with the mouse on the second case: the button, then the confirmation.
    desk.interactions.clear()
    desk.click(f"#ready-{second.reference} button[value=reauthenticate]")
    desk.click("#confirm-and-next")
    wait_for_path(desk.page, QUEUE)
    assert len(desk.interactions) == 2
    assert "The queue is empty." in desk.page.locator("ul.messagelist").inner_text()


def test_a_claim_that_runs_out_warns_renews_on_activity_and_then_says_so(
    open_browser, agent, settings
):
    """The countdown warns before the claim runs out; a key press renews it; once it ran
    out, the next action gets a page in words (not a bare 403) leading back to the queue."""
    settings.SUPPORT_LEASE_WARNING_MINUTES = 60  # every claim is within the warning at once
    case = proofs_done_case("lease.customer@example.com", "+4915100000021", minutes_ago=10)
    desk = open_browser(agent)
    sign_in(desk)
    wait_for_path(desk.page, QUEUE)
    desk.click("#take-next")
    wait_for_path(desk.page, work_path(case))
    desk.page.locator("#lease.lease-warning").wait_for()
    assert "runs out soon" in desk.page.locator("#lease-warning").inner_text()

    past = timezone.now() - timedelta(minutes=1)
    RecoveryCase.objects.filter(pk=case.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    # A key press (in no field) renews the claim on the server.
    desk.page.locator("body").press("Shift")
    wait_until(lambda: lease_end(case) > timezone.now() + timedelta(minutes=5))

    RecoveryCase.objects.filter(pk=case.pk).update(lease_expires_at=past)
    desk.page.fill("#internal-note textarea", "Customer will call back")
    desk.page.click("#internal-note input[type=submit]")
    desk.page.locator("#lease-expired").wait_for()
    text = desk.page.locator("#lease-expired").inner_text()
    assert f"Your claim on case {case.reference} ran out" in text
    assert "went back to the queue" in text
    assert not CaseEvent.objects.filter(case=case, type=CaseEvent.Type.NOTE).exists()
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING and case.claimed_by is None
    desk.page.click("#back-to-queue")
    wait_for_path(desk.page, QUEUE)


def test_a_case_given_back_goes_behind_the_others_and_not_to_the_same_agent(
    open_browser, agent, other_agent
):
    """Give back asks for a reason; the case queues behind the others and the agent's next
    Take next gives them another case, while a colleague can take it."""
    given_back = proofs_done_case("back.customer@example.com", "+4915100000031", minutes_ago=60)
    other = proofs_done_case("other.customer@example.com", "+4915100000032", minutes_ago=1)
    desk = open_browser(agent)
    sign_in(desk)
    wait_for_path(desk.page, QUEUE)
    desk.click("#take-next")
    wait_for_path(desk.page, work_path(given_back))
    desk.page.fill("#give-back input[name=reason]", "Needs a Portuguese speaker")
    desk.click("#give-back input[type=submit]")
    wait_for_path(desk.page, QUEUE)
    given_back.refresh_from_db()
    other.refresh_from_db()
    assert given_back.status == CaseStatus.WAITING
    assert given_back.queued_at > other.queued_at, "behind the others"

    desk.click("#take-next")
    wait_for_path(desk.page, work_path(other))

    colleague = open_browser(other_agent)
    sign_in(colleague)
    wait_for_path(colleague.page, QUEUE)
    colleague.click("#take-next")
    wait_for_path(colleague.page, work_path(given_back))


def test_an_approval_returns_the_case_to_the_agent_who_asked(
    open_browser, agent, other_agent, supervisor
):
    """The agent asks a supervisor to approve a document check; the supervisor sees the
    proofs, writes a note and approves from the case page after a confirmation; a colleague's
    Take next passes the case by, and the asking agent's gives it back to them."""
    case = proofs_done_case("doc.customer@example.com", "+4915100000041", minutes_ago=20)
    CaseProof.objects.filter(case=case, kind=CaseProof.Kind.EMAIL).delete()
    CaseProof.objects.create(
        case=case, kind=CaseProof.Kind.DOCUMENT, by_customer=False, attested_by=agent, note="ok"
    )
    desk = open_browser(agent)
    sign_in(desk)
    wait_for_path(desk.page, QUEUE)
    desk.click("#take-next")
    wait_for_path(desk.page, work_path(case))
    requester = f"#requester-{case.reference}"
    assert desk.page.locator(f"{requester} button[value=reauthenticate]").count() == 0
    desk.page.fill(f"{requester} input[name=note]", "Passport matches the name")
    desk.page.click(
        f"{requester} form:has(input[value=request_document_approval]) input[type=submit]"
    )
    wait_for_path(desk.page, QUEUE)
    assert CaseApproval.objects.filter(case=case, decided_at__isnull=True).exists()

    boss = open_browser(supervisor)
    sign_in(boss)
    wait_for_path(boss.page, QUEUE)
    boss.page.goto("/admin/support/recoverycase/approvals/")
    row = boss.page.locator("#approvals tbody tr", has_text=case.reference).inner_text()
    assert "Phone on file" in row and "Document check" in row
    boss.page.goto(work_path(case))
    boss.page.fill("#case-approvals input[name=note]", "Photo and name match")
    boss.page.click("#case-approvals button[value=approve]")
    assert "counts as a proof" in boss.page.locator("#consequences").inner_text()
    # The confirmation asks for a fresh code from the supervisor's authenticator.
    boss.page.fill("#confirm-code input[name=otp_code]", fresh_code(supervisor))
    boss.page.click("#confirm")
    boss.page.locator("ul.messagelist").wait_for()
    approval = CaseApproval.objects.get(case=case)
    assert approval.approved and approval.decision_note == "Photo and name match"

    colleague = open_browser(other_agent)
    sign_in(colleague)
    wait_for_path(colleague.page, QUEUE)
    colleague.click("#take-next")
    wait_for_path(colleague.page, QUEUE)
    assert "The queue is empty." in colleague.page.locator("ul.messagelist").inner_text()

    desk.page.goto(QUEUE)
    assert "back for you" in desk.page.locator("#returning").inner_text()
    desk.click("#take-next")
    wait_for_path(desk.page, work_path(case))
    timeline = desk.page.locator("#timeline").inner_text()
    assert "Supervisor approved: Approve a document check" in timeline
    assert "Photo and name match" in timeline
    assert desk.page.locator(f"{requester} button[value=reauthenticate]").is_visible()


def test_a_staff_member_in_german_works_in_german(open_browser, db):
    """The queue, the case page and the confirmation speak the staff member's language."""
    german = staff_member("agentin.greta@desk.example", AGENTS_GROUP)
    User.objects.filter(pk=german.pk).update(language="de")
    case = proofs_done_case("kunde@example.com", "+4915100000051", minutes_ago=3)
    desk = open_browser(german, locale="de-DE")
    sign_in(desk)
    wait_for_path(desk.page, QUEUE)
    assert desk.page.locator("#take-next").inner_text() == "Nächsten Fall nehmen"
    desk.click("#take-next")
    wait_for_path(desk.page, work_path(case))
    assert "Anfragende" in desk.page.locator("#content").inner_text()
    assert desk.page.locator("#timeline th").first.text_content() == "Wann"
    desk.press("r")
    desk.page.locator("#consequences").wait_for()
    assert "Jede Sitzung des Kontos endet" in desk.page.locator("#consequences").inner_text()


AXE = "/static/test-only/axe.min.js"


def axe_violations(page, axe_source: bytes) -> list[dict]:
    """Serious and critical axe-core findings on the page (axe served from our origin)."""
    page.route(
        f"**{AXE}",
        lambda route: route.fulfill(body=axe_source, content_type="application/javascript"),
    )
    page.add_script_tag(url=AXE)
    results = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_staff_pages_have_no_serious_accessibility_violations(open_browser, supervisor):
    """axe-core finds no serious or critical violation on the queue, the case page, the
    confirmation, the approvals page and the dashboard."""
    from tests.conftest import ROOT

    axe_source = (ROOT / "tests" / "static" / "axe" / "axe.min.js").read_bytes()
    case = proofs_done_case("axe.customer@example.com", "+4915100000061", minutes_ago=3)
    boss = open_browser(supervisor)
    sign_in(boss)
    wait_for_path(boss.page, QUEUE)
    found = {"queue": axe_violations(boss.page, axe_source)}
    boss.page.click("#take-next")
    wait_for_path(boss.page, work_path(case))
    found["case"] = axe_violations(boss.page, axe_source)
    boss.page.click(f"#requester-{case.reference} button[value=reauthenticate]")
    boss.page.locator("#consequences").wait_for()
    found["confirm"] = axe_violations(boss.page, axe_source)
    for name, path in (
        ("approvals", "/admin/support/recoverycase/approvals/"),
        ("dashboard", "/admin/support/recoverycase/dashboard/"),
    ):
        boss.page.goto(path)
        found[name] = axe_violations(boss.page, axe_source)
    assert found == {name: [] for name in found}
    assert SUPERVISORS_GROUP
