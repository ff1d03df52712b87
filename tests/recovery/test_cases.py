"""/recover/help/ and the case status page: opening, triage, joining, evidence and proofs."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from pytest_django.asserts import assertInHTML

from notifications.models import Notification
from recovery.forms import CaseLinkResendForm
from support.models import (
    OPEN_STATUSES,
    CaseEvent,
    CaseEvidence,
    CaseProof,
    CaseStatus,
    RecoveryCase,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
REFERENCE = re.compile(r"RC-[0-9A-Z]{4}-[0-9A-Z]{4}")
STATUS_LINK = re.compile(r'id="status-link" href="http://testserver(/recover/case/([^/"]+)/)"')
PROOF_CODE_SMS = re.compile(r"case RC-[0-9A-Z]{4}-[0-9A-Z]{4}: (\d{6})\.")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

ACCOUNT_PHONE = "+4915123456789"
STRANGER_PHONE = "+4917698765432"  # belongs to no account


@pytest.fixture
def john():
    return UserFactory.create(email="john@gmail.com", phone=ACCOUNT_PHONE)


def open_case(client, *, capture, **fields):
    data = {
        "contact_email": "reach.me@example.org",
        "contact_phone": "",
        "emails_tried": "",
        "description": "I cannot sign in any more.",
        **fields,
    }
    with capture(execute=True):
        response = client.post(reverse("recover_help"), data)
    return response


def opened(response) -> tuple[str, str]:
    """The reference and the status link path shown on the "case opened" page."""
    assert response.status_code == 200, response.content
    html = response.content.decode()
    reference = re.search(r'id="case-reference">([^<]+)<', html)
    link = STATUS_LINK.search(html)
    assert reference and link, html
    return reference.group(1), link.group(1)


def follow_link(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("recover_case")
    return client.get(reverse("recover_case"))


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_opening_a_case_shows_reference_and_emails_the_status_link(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """The page shows an RC-XXXX-XXXX reference and a private link; the same link is emailed
    to the contact address."""
    response = open_case(client, capture=django_capture_on_commit_callbacks)
    reference, link = opened(response)
    assert REFERENCE.fullmatch(reference)
    case = RecoveryCase.objects.get()
    assert case.reference == reference
    assert case.contact_email == "reach.me@example.org"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["reach.me@example.org"]
    assert reference in mailoutbox[0].body
    assert link in mailoutbox[0].body
    assert case.links.count() == 1
    assert link.rstrip("/").rsplit("/", 1)[-1] not in case.links.get().token_hash


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_resend_form_on_the_page_is_the_form_its_view_reads(
    language, django_capture_on_commit_callbacks
):
    """The page writes the form's fields out itself: each is exactly what the form renders,
    labelled in the page's language and filled in with the request's reference and email."""
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    response = open_case(
        client, capture=django_capture_on_commit_callbacks, contact_email="Reach.Me@example.org"
    )
    reference, _link = opened(response)
    html = response.content.decode()
    case = RecoveryCase.objects.get()
    form = CaseLinkResendForm(initial={"reference": reference, "contact_email": case.contact_email})
    with translation.override(language):
        for field in form:
            assertInHTML(str(field), html)
            assertInHTML(f'<label for="{field.id_for_label}">{field.label}</label>', html)


def test_the_answer_does_not_tell_whether_an_account_matched(
    john, mailoutbox, django_capture_on_commit_callbacks
):
    """Same status, headers, page and work whether or not the data names an account."""
    answers = []
    for tried in (john.email, "nobody.here@example.com"):
        client = Client()
        client.get(reverse("recover_help"))
        before = (RecoveryCase.objects.count(), Notification.objects.count())
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(
                reverse("recover_help"),
                {
                    "contact_email": "reach.me@example.org",
                    "emails_tried": tried,
                    "description": "Locked out.",
                },
            )
        reference, link = opened(response)
        body = CSRF.sub(b"", response.content)
        body = body.replace(reference.encode(), b"REF").replace(link.encode(), b"LINK")
        after = (RecoveryCase.objects.count(), Notification.objects.count())
        answers.append(
            {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": body,
                "rows": (after[0] - before[0], after[1] - before[1]),
                "callbacks": len(callbacks),
            }
        )
    assert answers[0]["rows"] == (1, 1)
    assert answers[0] == answers[1]
    assert RecoveryCase.objects.filter(matched_user=john).count() == 1


def test_real_png_evidence_is_accepted_and_stored(client, django_capture_on_commit_callbacks):
    """A file that is a PNG by its content is kept, under a name that is not the customer's."""
    upload = SimpleUploadedFile("my passport.png", PNG, content_type="image/png")
    response = open_case(client, capture=django_capture_on_commit_callbacks, evidence=[upload])
    opened(response)
    evidence = CaseEvidence.objects.get()
    assert evidence.case == RecoveryCase.objects.get()
    assert evidence.content_type == "image/png"
    assert evidence.size == len(PNG)
    assert evidence.original_name == "my passport.png"
    assert evidence.file.name is not None
    assert "passport" not in evidence.file.name
    evidence.file.open("rb")
    assert evidence.file.read() == PNG
    assert CaseEvent.objects.filter(case=evidence.case, type="evidence_added").count() == 1


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("id-card.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)), "image/jpeg"),
        (
            "contract.pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "application/pdf",
        ),
        # The content decides, not the name the customer's device gave the file.
        ("scan.bin", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
    ],
    ids=["jpeg", "pdf", "pdf-named-bin"],
)
def test_jpeg_and_pdf_evidence_is_accepted_by_its_content(
    client, django_capture_on_commit_callbacks, name, content, content_type
):
    """JPEG images and PDF documents are the other evidence kinds; each is stored with the
    type its first bytes show."""
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    opened(open_case(client, capture=django_capture_on_commit_callbacks, evidence=[upload]))
    evidence = CaseEvidence.objects.get()
    assert evidence.content_type == content_type
    assert evidence.size == len(content)


def test_more_than_five_files_are_refused_and_nothing_is_written(
    client, django_capture_on_commit_callbacks
):
    """Six files are one more than the form takes: a clear message, no case and no file."""
    uploads = [SimpleUploadedFile(f"page-{i}.png", PNG, content_type="image/png") for i in range(6)]
    response = open_case(client, capture=django_capture_on_commit_callbacks, evidence=uploads)
    assert response.status_code == 400
    assert "Attach at most 5 files." in response.content.decode()
    assert not RecoveryCase.objects.exists()
    assert not CaseEvidence.objects.exists()


def test_text_named_png_is_refused_and_nothing_is_written(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """The type comes from the content, not the name: a text file called .png is refused
    with a clear message, and no case, file or message is created."""
    upload = SimpleUploadedFile("photo.png", b"hello, this is not an image\n", "image/png")
    response = open_case(client, capture=django_capture_on_commit_callbacks, evidence=[upload])
    assert response.status_code == 400
    assert "Only JPEG or PNG images and PDF documents" in response.content.decode()
    assert not RecoveryCase.objects.exists()
    assert not CaseEvidence.objects.exists()
    assert not Notification.objects.exists()
    assert mailoutbox == []


def test_file_over_ten_megabytes_is_refused(client, django_capture_on_commit_callbacks):
    """An 11 MB PNG is refused with the size limit in the message; nothing is written."""
    big = PNG + b"\0" * (11 * 1024 * 1024)
    upload = SimpleUploadedFile("scan.png", big, content_type="image/png")
    response = open_case(client, capture=django_capture_on_commit_callbacks, evidence=[upload])
    assert response.status_code == 400
    assert "at most 10 MB" in response.content.decode()
    assert not RecoveryCase.objects.exists()
    assert not CaseEvidence.objects.exists()


def test_bad_input_is_a_400_not_a_500(client):
    """Missing description, a bad email and a bad phone each get a form error."""
    response = client.post(
        reverse("recover_help"),
        {
            "contact_email": "nope",
            "contact_phone": "12",
            "emails_tried": "a@example.com, not-an-email",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address" in html
    assert "Enter a valid phone number" in html
    assert "not-an-email is not a valid email address" in html
    assert not RecoveryCase.objects.exists()


def test_wrong_email_case_is_deflected_with_the_login_email_hint(
    client, john, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """Account phone + emails that are not the account's: the account's own phone and email
    are told which address signs in, and the case is resolved as wrong_email_hint_sent."""
    response = open_case(
        client,
        capture=django_capture_on_commit_callbacks,
        contact_email="john.doe@example.org",
        contact_phone="0151 23456789",
        emails_tried="john@gmail.de\njohnny@gmail.com",
    )
    opened(response)
    case = RecoveryCase.objects.get()
    assert case.matched_user == john
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == "wrong_email_hint_sent"
    assert case.closed_at is not None
    assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE]
    assert "j***n@g***.com" in sms_outbox[0].body
    hint = [m for m in mailoutbox if m.to == ["john@gmail.com"]]
    assert len(hint) == 1 and "john@gmail.com" in hint[0].body
    assert [m.to for m in mailoutbox if m not in hint] == [["john.doe@example.org"]]
    assert CaseEvent.objects.filter(case=case, type="hint_sent").exists()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {"contact_phone": ACCOUNT_PHONE, "emails_tried": "john@gmail.com"},
            id="account-email-typed",
        ),
        pytest.param({"contact_email": "john@gmail.com"}, id="email-only"),
        pytest.param({"contact_phone": STRANGER_PHONE}, id="no-account"),
    ],
)
def test_other_cases_wait_for_an_agent(
    client, john, fields, sms_outbox, django_capture_on_commit_callbacks
):
    """Without the wrong-email pattern nothing is sent by itself and the case is queued."""
    opened(open_case(client, capture=django_capture_on_commit_callbacks, **fields))
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.WAITING
    assert case.resolution == ""
    assert sms_outbox == []
    assert not Notification.objects.filter(template_key="support/login_email_hint").exists()


def test_status_link_moves_into_the_session_and_the_page_is_token_free(
    client, django_capture_on_commit_callbacks
):
    """The link puts the request into the session and redirects to a token-free page; a
    browser without the link or the session gets "not valid"."""
    reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    page = follow_link(client, link)
    assert page.status_code == 200
    assert reference in page.content.decode()
    assert Client().get(reverse("recover_case")).status_code == 404
    assert "This link is not valid" in Client().get(reverse("recover_case")).content.decode()
    assert client.get(reverse("recover_case")).status_code == 200


def test_status_page_shows_state_and_place_in_queue(client, django_capture_on_commit_callbacks):
    """A waiting case shows its state and how many cases are ahead of it."""
    opened(open_case(Client(), capture=django_capture_on_commit_callbacks))
    reference, link = opened(
        open_case(client, capture=django_capture_on_commit_callbacks, contact_email="b@ex.org")
    )
    html = follow_link(client, link).content.decode()
    assert f"Case {reference}" in html
    assert "Waiting for an agent" in html
    assert "Your place in the queue: 2." in html

    RecoveryCase.objects.exclude(reference=reference).update(status=CaseStatus.CLAIMED)
    html = client.get(reverse("recover_case")).content.decode()
    assert "Your place in the queue: 1." in html


def test_status_page_estimates_the_wait_in_words(client, django_capture_on_commit_callbacks):
    """The estimate comes from the agents' recent resolution rate (automated resolutions
    left out) and reads as a range in words in the page's language, not a raw duration."""
    with time_machine.travel("2026-06-01 08:00:00", tick=False):
        # One case an agent closed in the last 4 hours (k = 1, so the rate is 1 ± 1 per 4 h,
        # never below half); this case is second in line: between 4 and 16 hours. An
        # automated resolution does not make the agents look faster.
        RecoveryCase.objects.create(
            reference="RC-0000-0001",
            contact_email="done@example.org",
            status=CaseStatus.RESOLVED,
            closed_at=timezone.now(),
        )
        RecoveryCase.objects.create(
            reference="RC-0000-0002",
            contact_email="auto@example.org",
            status=CaseStatus.RESOLVED,
            resolution=RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT,
            closed_at=timezone.now(),
        )
        opened(open_case(Client(), capture=django_capture_on_commit_callbacks))
        _reference, link = opened(
            open_case(client, capture=django_capture_on_commit_callbacks, contact_email="b@ex.org")
        )
        html = follow_link(client, link).content.decode().replace("\xa0", " ")
        assert "Your place in the queue: 2." in html
        assert "Estimated wait: between 4 hours and 16 hours." in html
        german = client.get(reverse("recover_case"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
        german = german.replace("\xa0", " ")
        assert "zwischen 4 Stunden und 16 Stunden" in german
        assert "0:00:00" not in html + german


def test_this_did_not_help_reopens_a_deflected_case(
    client, john, django_capture_on_commit_callbacks
):
    """After the automatic hint the customer can still ask for an agent; the page reads as
    a waiting request before and after, and keeps its place in the queue."""
    _reference, link = opened(
        open_case(client, capture=django_capture_on_commit_callbacks, contact_phone=ACCOUNT_PHONE)
    )
    html = follow_link(client, link).content.decode()
    assert RecoveryCase.objects.get().status == CaseStatus.RESOLVED
    assert "Resolved" not in html and "Waiting for an agent" in html
    assert "Your place in the queue: 1." in html
    assert "None of this works for me" in html

    response = client.post(reverse("recover_case"), {"action": "not_helped"})
    assert response.status_code == 302
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.WAITING
    assert case.resolution == ""
    assert case.closed_at is None
    assert CaseEvent.objects.filter(case=case, type="reopened").count() == 1
    html = client.get(reverse("recover_case")).content.decode()
    assert "Waiting for an agent" in html
    assert "Your place in the queue: 1." in html


def test_second_request_for_the_same_account_joins_the_open_case(
    john, mailoutbox, django_capture_on_commit_callbacks
):
    """One open case per account: another request joins its timeline, not the queue.

    The second requester gets a reference and a status page of their own, so typing an
    account's contacts never opens someone else's case page.
    """
    first_ref, _link = opened(
        open_case(Client(), capture=django_capture_on_commit_callbacks, contact_email=john.email)
    )
    mailoutbox.clear()
    second_ref, second_link = opened(
        open_case(
            Client(),
            capture=django_capture_on_commit_callbacks,
            contact_email="second@example.org",
            contact_phone=ACCOUNT_PHONE,
            emails_tried=john.email,
            description="Me again, from my work address.",
        )
    )
    case = RecoveryCase.objects.get(status__in=OPEN_STATUSES)
    assert case.reference == first_ref
    assert case.status == CaseStatus.WAITING
    assert second_ref != first_ref
    request = RecoveryCase.objects.get(reference=second_ref)
    assert request.status == CaseStatus.MERGED and request.merged_into == case
    assert request.description == "Me again, from my work address."
    assert request.contact_email == "second@example.org"
    joined = CaseEvent.objects.get(case=case, type="joined")
    assert joined.details["request"] == second_ref
    assert [m.to for m in mailoutbox] == [["second@example.org"]]

    second = Client()
    second.get(second_link)
    page = second.get(reverse("recover_case")).content.decode()
    assert second_ref in page and first_ref not in page


def test_a_closed_case_does_not_absorb_a_new_request(john, django_capture_on_commit_callbacks):
    """Joining is only for open cases: after resolution a new request opens a new case."""
    opened(
        open_case(Client(), capture=django_capture_on_commit_callbacks, contact_email=john.email)
    )
    RecoveryCase.objects.update(status=CaseStatus.RESOLVED, resolution="login_email_told")
    opened(
        open_case(Client(), capture=django_capture_on_commit_callbacks, contact_email=john.email)
    )
    assert RecoveryCase.objects.filter(matched_user=john).count() == 2
    assert RecoveryCase.objects.filter(matched_user=john, status=CaseStatus.WAITING).count() == 1


def stranger_phone_case_page(client, contact_email: str, *, capture) -> str:
    """`client` asks for help from `contact_email` with a typed phone that is nobody's, and
    follows the status link to the case page; returns the request's reference."""
    reference, link = opened(
        open_case(
            client, capture=capture, contact_email=contact_email, contact_phone=STRANGER_PHONE
        )
    )
    follow_link(client, link)
    return reference


@pytest.fixture
def matched_case_page(client, john, django_capture_on_commit_callbacks):
    """A case matched by the email on file, with a typed phone that is nobody's."""
    stranger_phone_case_page(client, john.email, capture=django_capture_on_commit_callbacks)
    case = RecoveryCase.objects.get()
    assert case.matched_user == john
    assert case.status == CaseStatus.WAITING
    return case


def send_phone_code(client, capture):
    with capture(execute=True):
        response = client.post(reverse("recover_case"), {"action": "send_phone_code"})
    assert response.status_code == 302
    assert response["Location"] == reverse("recover_case") + "?sent=phone"
    return response


def verify(client, code, kind="phone"):
    return client.post(
        reverse("recover_case"), {"action": "verify_code", "kind": kind, "code": code}
    )


def test_phone_code_goes_to_the_phone_on_file_and_proves_it(
    client, matched_case_page, sms_outbox, django_capture_on_commit_callbacks
):
    """The code is texted to the account's phone, never the typed one; typing it in records
    a phone proof for the agent."""
    case = matched_case_page
    send_phone_code(client, django_capture_on_commit_callbacks)
    assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE]
    sent = PROOF_CODE_SMS.search(sms_outbox[0].body)
    assert sent, sms_outbox[0].body
    code = sent.group(1)

    response = verify(client, code)
    assert response.status_code == 302
    proof = CaseProof.objects.get(case=case)
    assert proof.kind == CaseProof.Kind.PHONE
    assert proof.by_customer
    assert "Phone on file proven" in client.get(reverse("recover_case")).content.decode()


def test_wrong_and_reused_phone_codes_are_refused(
    client, matched_case_page, sms_outbox, django_capture_on_commit_callbacks
):
    """A wrong code and a code already used give 400 with a message and no proof."""
    case = matched_case_page
    send_phone_code(client, django_capture_on_commit_callbacks)
    sent = PROOF_CODE_SMS.search(sms_outbox[0].body)
    assert sent, sms_outbox[0].body
    code = sent.group(1)

    wrong = verify(client, other_code(code))
    assert wrong.status_code == 400
    assert "This code is not right" in wrong.content.decode()
    assert not CaseProof.objects.filter(case=case).exists()

    assert verify(client, code).status_code == 302
    reused = verify(client, code)
    assert reused.status_code == 400
    assert "can no longer be used" in reused.content.decode()
    assert CaseProof.objects.filter(case=case).count() == 1

    email_code = verify(client, code, kind="email")
    assert email_code.status_code == 400, "a phone code proves nothing about the email"
    assert not CaseProof.objects.filter(case=case, kind="email").exists()


def test_send_code_answers_the_same_for_a_case_without_an_account(
    john, sms_outbox, mailoutbox, django_capture_on_commit_callbacks
):
    """ "Text a code" on a case that matched no account sends nothing, but its answer and the
    page after it are the same as for a matched case: the page does not reveal the match."""
    answers = []
    with time_machine.travel("2026-06-01 08:00:00", tick=False):
        for contact_email in (john.email, "ghost@example.com"):
            RecoveryCase.objects.update(status=CaseStatus.CANCELLED)
            client = Client()
            reference = stranger_phone_case_page(
                client, contact_email, capture=django_capture_on_commit_callbacks
            )
            sms_outbox.clear()
            response = send_phone_code(client, django_capture_on_commit_callbacks)
            page = client.get(response["Location"])
            answers.append(
                {
                    "status": response.status_code,
                    "location": response["Location"],
                    "page_status": page.status_code,
                    "page": CSRF.sub(b"", page.content).replace(reference.encode(), b"REF"),
                    "texts": [m.to for m in sms_outbox],
                }
            )
    matched, unmatched = answers
    assert matched["texts"] == [ACCOUNT_PHONE]
    assert unmatched["texts"] == []
    assert {k: v for k, v in matched.items() if k != "texts"} == {
        k: v for k, v in unmatched.items() if k != "texts"
    }
    ghost_case = RecoveryCase.objects.get(contact_email="ghost@example.com")
    assert ghost_case.matched_user is None
    assert not Notification.objects.filter(channel="sms").exclude(recipient=ACCOUNT_PHONE).exists()


def test_code_check_answers_the_same_for_a_case_without_an_account(
    john, sms_outbox, django_capture_on_commit_callbacks
):
    """Typing codes on a case that matched no account gets the answers a matched case gets
    for wrong codes: "not right", then "no longer usable" after five, "expired" after ten
    minutes. Otherwise the code check would reveal whether the typed email has an account."""
    answers = []
    for contact_email in (john.email, "ghost@example.com"):
        RecoveryCase.objects.update(status=CaseStatus.CANCELLED)
        seen = []
        with time_machine.travel("2026-06-01 08:00:00", tick=False) as clock:
            client = Client()
            reference = stranger_phone_case_page(
                client, contact_email, capture=django_capture_on_commit_callbacks
            )
            sms_outbox.clear()
            attempts = [verify(client, "123456")]  # before any code was sent
            send_phone_code(client, django_capture_on_commit_callbacks)
            sent = [PROOF_CODE_SMS.findall(m.body)[0] for m in sms_outbox]
            typed = "123456" if sent != ["123456"] else "654321"
            attempts += [verify(client, typed) for _ in range(6)]
            send_phone_code(client, django_capture_on_commit_callbacks)
            clock.shift(10 * 60 + 1)
            attempts.append(verify(client, typed))
            for response in attempts:
                seen.append(
                    (
                        response.status_code,
                        CSRF.sub(b"", response.content).replace(reference.encode(), b"REF"),
                    )
                )
        answers.append(seen)
    matched, unmatched = answers
    messages = [
        re.findall(rb'<p class="error">([^<]+)</p>', body)[0].decode() for _status, body in matched
    ]
    assert messages == [
        "This code can no longer be used. Ask for a new one.",
        *["This code is not right. Check it and try again."] * 5,
        "This code can no longer be used. Ask for a new one.",
        "This code has expired. Ask for a new one.",
    ]
    assert {status for status, _body in matched} == {400}
    assert matched == unmatched
    assert not CaseProof.objects.exists()
