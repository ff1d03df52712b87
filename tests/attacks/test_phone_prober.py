"""The stranger who probes phone numbers on the help form.

They hold a list of phone numbers and want to learn which ones have an account here (a
target list for SIM swaps), plus an inbox and a browser of their own; nothing of the
victims'. For each number they open a help request with their own email, follow the status
link and read every page they can reach by themselves: the request's answer, the status
page after auto-triage, "this did not help", codes sent to the contacts on file, a guessed
code and a reply. A victim's number is answered by the login-email hint to the victim's
own phone and email; a number nobody has waits for an agent. Both must read the same.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from support.models import CaseStatus, RecoveryCase
from tests.attacks.helpers import CSRF
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE, waiting_case

if TYPE_CHECKING:
    from tests.factories import ClientResponse

pytestmark = pytest.mark.django_db

UNKNOWN_PHONE = "+4917698765432"  # belongs to no account
STRANGER_EMAIL = "prober@example.net"
REFERENCE = re.compile(rb"RC-[0-9A-Z]{4}-[0-9A-Z]{4}")
STATUS_LINK = re.compile(r'id="status-link" href="http://testserver(/recover/case/[^/"]+/)"')
LINK_TOKEN = re.compile(rb"/recover/case/[A-Za-z0-9_-]{20,}/")
MESSAGE_REFERENCE = re.compile(rb"Message reference: [0-9A-Z-]+")


def comparable_text(text: bytes) -> bytes:
    return LINK_TOKEN.sub(b"/recover/case/TOKEN/", REFERENCE.sub(b"RC-REF", text))


def comparable(response: ClientResponse) -> tuple:
    """What the stranger can observe of an answer, less what differs between any two
    requests (the case reference, the status-link token and the CSRF token)."""
    body = comparable_text(response.content)
    cookies = {
        name: {key: value for key, value in morsel.items() if value}
        for name, morsel in response.cookies.items()
    }
    return (response.status_code, dict(response.headers), cookies, CSRF.sub(b"", body))


def probe(phone: str, capture, mailoutbox, address: str) -> list[tuple]:
    """Everything the stranger sees when they try `phone`, step by step."""
    client = Client(REMOTE_ADDR=address)
    seen: list[tuple] = []

    def step(name: str, response: ClientResponse) -> ClientResponse:
        seen.append((name, *comparable(response)))
        return response

    step("help form", client.get(reverse("recover_help")))
    with capture():
        opened = step(
            "request sent",
            client.post(
                reverse("recover_help"),
                {
                    "contact_email": STRANGER_EMAIL,
                    "contact_phone": phone,
                    "emails_tried": "",
                    "description": "I cannot sign in any more.",
                },
            ),
        )
    link = STATUS_LINK.search(opened.content.decode())
    assert link, opened.content
    step("status link", client.get(link.group(1)))
    page = reverse("recover_case")
    step("status page", client.get(page))
    for action, data in (
        ("not_helped", {}),
        ("send_phone_code", {}),
        ("send_email_code", {}),
        ("verify_code", {"kind": "phone", "code": "000000"}),
        ("verify_code", {"kind": "email", "code": "111111"}),
        ("reply", {"message": "Still locked out."}),
    ):
        with capture():
            answer = step(action, client.post(page, {"action": action, **data}))
        step(f"page after {action}", client.get(answer.get("Location", page)))
    inbox = [m for m in mailoutbox if m.to == [STRANGER_EMAIL]]
    seen.append(
        (
            "stranger's inbox",
            [
                (
                    REFERENCE.sub(b"RC-REF", m.subject.encode()),
                    MESSAGE_REFERENCE.sub(b"", comparable_text(m.body.encode())),
                )
                for m in inbox
            ],
        )
    )
    return seen


def test_a_victims_phone_reads_like_a_number_nobody_has_at_every_step(
    account, capture, mailoutbox, sms_outbox
):
    """From the same queue, the stranger's pages for a victim's number (answered by the
    automatic hint) and for an unknown one are the same bytes, headers and cookies at every
    step, queue place and wait estimate included; only the victim hears of it."""
    with time_machine.travel("2026-06-01 08:00:00+00:00", tick=False):
        for _ in range(13):
            waiting_case()
        for hours in (1, 3, 5):
            resolved = waiting_case()
            RecoveryCase.objects.filter(pk=resolved.pk).update(
                status=CaseStatus.RESOLVED,
                closed_at=timezone.now() - timedelta(hours=hours),
            )
        worlds: dict[str, Any] = {}
        for name, phone, address in (
            ("victim", ACCOUNT_PHONE, "198.51.100.7"),
            ("nobody", UNKNOWN_PHONE, "198.51.100.8"),
        ):
            # Each probe starts from the same queue and leaves it as it found it.
            with transaction.atomic():
                mailoutbox.clear()
                sms_outbox.clear()
                worlds[name] = probe(phone, capture, mailoutbox, address)
                worlds[f"{name} state"] = RecoveryCase.objects.get(
                    contact_email=STRANGER_EMAIL
                ).status
                worlds[f"{name} heard"] = sorted(
                    [to for m in mailoutbox for to in m.to] + [m.to for m in sms_outbox]
                )
                transaction.set_rollback(True)

    assert worlds["victim state"] == CaseStatus.WAITING, "'did not help' reopened the hint"
    assert worlds["nobody state"] == CaseStatus.WAITING
    # The victim was told, on their own phone and email; the stranger heard nothing of it.
    assert ACCOUNT_PHONE in worlds["victim heard"] and ACCOUNT_EMAIL in worlds["victim heard"]
    assert ACCOUNT_PHONE not in worlds["nobody heard"]
    status_page = dict((step[0], step[-1]) for step in worlds["nobody"])["status page"].decode()
    assert "Your place in the queue: 14." in status_page
    assert "Estimated wait: between" in status_page
    assert "If this phone number belongs to an account" in status_page
    for victim_step, nobody_step in zip(worlds["victim"], worlds["nobody"], strict=True):
        assert victim_step == nobody_step, victim_step[0]
