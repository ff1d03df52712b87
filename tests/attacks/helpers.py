"""The public pages and the staff pages as an attacker (or their victim) drives them."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import User
from support.models import CaseApproval, RecoveryCase
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE, PNG, admin_client, fresh_code

if TYPE_CHECKING:
    from tests.factories import Capture, ClientResponse

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
STATUS_LINK = re.compile(r'id="status-link" href="http://testserver(/recover/case/[^/"]+/)"')
CODE_IN_SMS = re.compile(r"case (RC-[0-9A-Z]{4}-[0-9A-Z]{4}): (\d{6})\.")
CODE_IN_EMAIL = re.compile(r"recovery case (RC-[0-9A-Z]{4}-[0-9A-Z]{4}) is (\d{6})\.")


def section(html: str | bytes, name: str) -> str:
    """One `<section id=...>` of a page, as text (empty when the page has none)."""
    text = html.decode() if isinstance(html, bytes) else html
    match = re.search(rf'<section[^>]*id="{name}".*?</section>', text, re.S)
    return match.group(0) if match else ""


@dataclass
class Requester:
    """Someone who opened a request on /recover/help/ and keeps its status page open."""

    client: Client
    reference: str
    capture: Capture

    @property
    def request(self) -> RecoveryCase:
        return RecoveryCase.objects.get(reference=self.reference)

    def page(self) -> ClientResponse:
        return self.client.get(reverse("recover_case"))

    def post(self, action: str, **data: str) -> ClientResponse:
        with self.capture():
            return self.client.post(reverse("recover_case"), {"action": action, **data})

    def verify(self, kind: str, code: str) -> ClientResponse:
        return self.post("verify_code", kind=kind, code=code)

    def comparable(self, body: bytes) -> bytes:
        """A page without what differs between any two requests: the token and reference."""
        return CSRF.sub(b"", body).replace(self.reference.encode(), b"RC-REF")


_addresses = itertools.count(10)


def open_request(
    *,
    capture: Capture,
    contact_email: str,
    contact_phone: str = "",
    emails_tried: str = "",
    description: str = "I cannot sign in any more.",
    files: list[bytes] | None = None,
) -> Requester:
    """Fill in /recover/help/, then follow the private link it shows to the status page.

    Each requester browses from an address of their own (per-IP rate limits apply).
    """
    client = Client(REMOTE_ADDR=f"203.0.113.{next(_addresses) % 250}")
    data: dict[str, Any] = {
        "contact_email": contact_email,
        "contact_phone": contact_phone,
        "emails_tried": emails_tried,
        "description": description,
    }
    if files:
        data["evidence"] = [
            SimpleUploadedFile(f"scan{i}.png", content, content_type="image/png")
            for i, content in enumerate(files)
        ]
    with capture():
        response = client.post(reverse("recover_help"), data)
    assert response.status_code == 200, response.content
    html = response.content.decode()
    reference = re.search(r'id="case-reference">([^<]+)<', html)
    link = STATUS_LINK.search(html)
    assert reference and link, html
    assert client.get(link.group(1)).status_code == 302
    return Requester(client=client, reference=reference.group(1), capture=capture)


def passport() -> bytes:
    return PNG


def last_code(outbox: list, *, to: str | list[str], pattern: re.Pattern[str]) -> str:
    """The code of the newest message to `to` (an SMS number or an email's `to` list)."""
    for message in reversed(outbox):
        if message.to == to:
            match = pattern.search(message.body)
            if match:
                return match.group(2)
    raise AssertionError(f"no code sent to {to}")


@dataclass
class Desk:
    """A staff member signed in to the OTP admin, working cases through its pages."""

    staff: User
    capture: Capture
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = admin_client(self.staff)

    def take_next(self) -> int:
        response = self.client.post(reverse("admin:support_take_next"))
        assert response.status_code == 302, response.content
        case_id = re.search(r"/(\d+)/work/", response["Location"])
        assert case_id, response["Location"]
        return int(case_id.group(1))

    def case_page(self, case_id: int) -> str:
        response = self.client.get(reverse("admin:support_case_work", args=[case_id]))
        assert response.status_code == 200
        return response.content.decode()

    def act(self, case_id: int, action: str, **data: Any) -> str:
        """POST one action of the case page; returns the page shown next, messages included."""
        with self.capture():
            response = self.client.post(
                reverse("admin:support_case_work", args=[case_id]),
                # The staff member confirms what the page asks them to confirm.
                {"action": action, "confirmed": "on", **data},
                follow=True,
            )
        return response.content.decode()

    def decide(self, approval_id: int, decision: str) -> ClientResponse:
        """POST a decision on the approvals page; returns the page shown next."""
        with self.capture():
            return self.client.post(
                reverse("admin:support_approvals"),
                {
                    "action": decision,
                    "approval_id": approval_id,
                    "otp_code": fresh_code(self.staff),
                    "confirmed": "on",
                },
                follow=True,
            )


def phone_proven(desk: Desk, requester: Requester, *, sms_outbox: list) -> int:
    """`desk` takes the next case, the requester's, and sends a code to the phone on file
    for them; whoever holds that phone types it on the status page. Returns the case id."""
    case_id = desk.take_next()
    assert case_id == requester.request.pk
    desk.act(case_id, "send_phone_code", requester=case_id)
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert requester.verify("phone", code).status_code == 302
    return case_id


def passport_request_phone_proven(desk: Desk, *, sms_outbox: list) -> int:
    """A requester on a new inbox asks for help with a passport scan; `desk` takes the case
    and the phone on file is proven (`phone_proven`). Returns the case id."""
    requester = open_request(
        capture=desk.capture,
        contact_email="new.inbox@example.net",
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
        description="Inbox and app gone. Passport attached.",
        files=[passport()],
    )
    return phone_proven(desk, requester, sms_outbox=sms_outbox)


def recovered_on_a_document(desk: Desk, approver: Desk, *, sms_outbox: list) -> int:
    """The phone on file proven, and the passport `desk` attests and `approver` approves:
    `desk` re-authenticates the account on those two proofs. Returns the case id."""
    case_id = passport_request_phone_proven(desk, sms_outbox=sms_outbox)
    desk.act(case_id, "attest_document", requester=case_id, note="Passport matches")
    desk.act(case_id, "request_document_approval", requester=case_id, note="Please check")
    assert approver.decide(CaseApproval.objects.get().pk, "approve").status_code == 200
    assert desk.take_next() == case_id
    desk.act(case_id, "reauthenticate", requester=case_id)
    return case_id


def email_change_proven(desk: Desk, *, new_email: str, sms_outbox: list, mailoutbox: list) -> int:
    """A requester on another inbox asks for help; `desk` takes the case, the requester
    proves the phone on file, and the login-email change `desk` starts to `new_email` is
    proven by its code. Returns the case id."""
    requester = open_request(
        capture=desk.capture,
        contact_email="other.inbox@example.net",
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
    )
    case_id = phone_proven(desk, requester, sms_outbox=sms_outbox)
    desk.act(case_id, "start_email_change", requester=case_id, new_email=new_email)
    new_code = last_code(mailoutbox, to=[new_email], pattern=CODE_IN_EMAIL)
    assert requester.verify("new_email", new_code).status_code == 302
    return case_id
