"""Staff actions validate their input: bad values answer 400 with a message and write nothing.

Setup: an agent holds a case matched to a customer account, with one uploaded document;
another agent and a supervisor are signed in to the admin as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from support.models import CaseApproval, CaseStatus, RecoveryCase
from support.services import actions
from support.services.queue import case_claim_next
from support.views import APPROVAL_ACTIONS, CASE_ACTIONS
from tests.conftest import database_state
from tests.factories import UserFactory
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    admin_client,
    claimed_case,
    fresh_code,
    png_upload,
    waiting_case,
)

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
TOO_LONG_NOTE = "n" * 1001
TOO_LONG_REASON = "r" * 501


@dataclass
class Desk:
    holder: User
    holder_client: Client
    case: RecoveryCase

    def work_url(self, case_id: int | str | None = None) -> str:
        return f"/admin/support/recoverycase/{case_id or self.case.pk}/work/"


@pytest.fixture
def desk(agent, account) -> Desk:
    case = claimed_case(
        agent,
        contact_email="new.inbox@example.org",
        emails_tried=[ACCOUNT_EMAIL],
        description="Lost my phone and my inbox.",
        files=[png_upload()],
    )
    return Desk(holder=agent, holder_client=admin_client(agent), case=case)


# action -> (POSTed fields, words of the message). Every action with input has rows here.
BAD_INPUT = [
    ("unknown-action", {"action": "delete_account"}, "This page has no such action."),
    ("no-action", {}, "Choose what to do."),
    (
        "reveal-unknown-field",
        {"action": "reveal", "field": "password_hash", "reason": "Customer on the phone"},
        "Pick the email or the phone.",
    ),
    (
        "reveal-empty-reason",
        {"action": "reveal", "field": "phone", "reason": "   "},
        "Say why you need the full value.",
    ),
    (
        "reveal-too-long-reason",
        {"action": "reveal", "field": "phone", "reason": TOO_LONG_REASON},
        "at most 500 characters",
    ),
    (
        "attest-empty-note",
        {"action": "attest_document", "note": ""},
        "Describe what you checked.",
    ),
    (
        "attest-too-long-note",
        {"action": "attest_document", "note": TOO_LONG_NOTE},
        "at most 1000 characters",
    ),
    (
        "document-approval-too-long-note",
        {"action": "request_document_approval", "note": TOO_LONG_NOTE},
        "at most 1000 characters",
    ),
    (
        "requester-not-a-number",
        {"action": "reauthenticate", "requester": "abc"},
        "Pick a requester of this case.",
    ),
    (
        "requester-negative",
        {"action": "send_phone_code", "requester": "-4"},
        "Pick a requester of this case.",
    ),
    (
        "email-change-malformed-email",
        {"action": "start_email_change", "new_email": "satoshi@@gmx"},
        "Enter a valid email address.",
    ),
    (
        "email-change-empty-email",
        {"action": "start_email_change", "new_email": " "},
        "Enter the new login email address.",
    ),
    (
        "email-change-too-long-email",
        {"action": "start_email_change", "new_email": "s" * 250 + "@gmx.net"},
        "at most 254 characters",
    ),
    (
        "email-change-approval-too-long-note",
        {"action": "request_email_change_approval", "email_change": "1", "note": TOO_LONG_NOTE},
        "at most 1000 characters",
    ),
    (
        "email-change-approval-names-no-change",
        {"action": "request_email_change_approval", "note": "New address proven"},
        "Pick a login email change of this case.",
    ),
    (
        "ask-unknown-canned-reply",
        {"action": "ask_customer", "canned": "send_us_your_seed_phrase", "message": ""},
        "Pick a canned reply from the list.",
    ),
    (
        "ask-neither-canned-nor-message",
        {"action": "ask_customer", "canned": "", "message": "  "},
        "Write a message or pick a canned reply.",
    ),
    (
        "ask-too-long-message",
        {"action": "ask_customer", "canned": "", "message": "m" * 4001},
        "at most 4000 characters",
    ),
    (
        "reject-unknown-reason",
        {"action": "reject", "reason": "customer_was_rude"},
        "Pick a reason from the list.",
    ),
    ("reject-no-reason", {"action": "reject"}, "Pick a reason."),
    ("escalate-empty-note", {"action": "escalate", "note": ""}, "Say why you escalate."),
    (
        "escalate-too-long-note",
        {"action": "escalate", "note": TOO_LONG_NOTE},
        "at most 1000 characters",
    ),
    (
        "release-empty-reason",
        {"action": "release", "reason": " "},
        "Say why you give the case back.",
    ),
    (
        "release-too-long-reason",
        {"action": "release", "reason": TOO_LONG_REASON},
        "at most 500 characters",
    ),
    ("note-empty", {"action": "note", "note": "  "}, "Write the note."),
    ("note-too-long", {"action": "note", "note": "n" * 4001}, "at most 4000 characters"),
]
# The button (and the requester it is for) is their whole input.
NO_INPUT_ACTIONS = {"send_phone_code", "send_email_code", "tell_login_email", "reauthenticate"}
# Tested with a supervisor below.
SUPERVISOR_ACTIONS = {"reassign", "approve", "deny"}

# A valid POST of every action, for the requests that must fail on the case, not the input.
VALID_INPUT = {
    "send_phone_code": {},
    "send_email_code": {},
    "attest_document": {"note": "Passport photo matches the account holder's name"},
    "reveal": {"field": "phone", "reason": "Customer reads the digits on the call"},
    "tell_login_email": {},
    "reauthenticate": {},
    "request_document_approval": {"note": "Passport photo matches"},
    "start_email_change": {"new_email": "satoshi.new@gmx.net"},
    "request_email_change_approval": {"email_change": "1", "note": "New address proven"},
    "ask_customer": {"canned": "prove_contacts", "message": ""},
    "reject": {"reason": "not_verified"},
    "escalate": {"note": "Looks like a SIM swap"},
    "release": {"reason": "Needs a Portuguese speaker"},
    "note": {"note": "Customer called; sounded like the account holder"},
    "reassign": {"assignee": ""},
    "approve": {"approval_id": "1"},
    "deny": {"approval_id": "1"},
}


def test_every_case_action_has_bad_input_tests():
    """The tables of this module cover every action of the case page, so a new action
    cannot arrive without validation tests."""
    with_input = {data["action"] for _name, data, _msg in BAD_INPUT if "action" in data}
    with_input.discard("delete_account")
    assert with_input | NO_INPUT_ACTIONS | SUPERVISOR_ACTIONS == set(CASE_ACTIONS)
    assert set(VALID_INPUT) == set(CASE_ACTIONS)


@pytest.mark.parametrize(
    ("data", "message"), [p[1:] for p in BAD_INPUT], ids=[p[0] for p in BAD_INPUT]
)
def test_bad_input_on_the_case_page_answers_400_and_writes_nothing(
    desk, nothing_written, data, message
):
    """Each bad value (unknown action or choice, empty or over-long text, malformed email)
    re-renders the case page with status 400 and the reason in words; the case, its
    timeline, the account and the outbox stay exactly as they were."""
    with nothing_written():
        response = desk.holder_client.post(desk.work_url(), data)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert desk.case.reference in html, "the case page itself, not an error page"
    assert "Traceback" not in html and "invalid literal" not in html


def test_over_long_text_comes_back_in_its_field(desk):
    """The refused text is kept in its field, so the agent can shorten it instead of typing
    it again, and the field is marked invalid."""
    note = "Looks like a SIM swap. " * 50
    response = desk.holder_client.post(desk.work_url(), {"action": "escalate", "note": note})

    assert response.status_code == 400
    found = re.search(r'<input[^>]*id="id_escalate_note"[^>]*>', response.content.decode())
    assert found, response.content.decode()
    field = found.group(0)
    assert 'aria-invalid="true"' in field
    assert 'value="Looks like a SIM swap.' in field


def test_a_refused_action_is_worded_in_german_for_a_german_agent(desk, nothing_written):
    """The validation messages follow the staff member's language."""
    User.objects.filter(pk=desk.holder.pk).update(language="de")
    with nothing_written():
        empty = desk.holder_client.post(
            desk.work_url(), {"action": "release", "reason": ""}, HTTP_ACCEPT_LANGUAGE="de"
        )
        unknown = desk.holder_client.post(
            desk.work_url(), {"action": "explode"}, HTTP_ACCEPT_LANGUAGE="de"
        )

    assert empty.status_code == unknown.status_code == 400
    assert "Geben Sie an, warum Sie den Fall zurückgeben." in empty.content.decode()
    assert "Diese Aktion gibt es auf dieser Seite nicht." in unknown.content.decode()


@pytest.mark.parametrize("action", sorted(CASE_ACTIONS))
def test_an_action_on_a_case_someone_else_holds_answers_404_and_writes_nothing(
    desk, other_agent, nothing_written, action
):
    """Valid input on another agent's case: the same 404 as for a case that does not
    exist, for every action, and nothing changes."""
    client = admin_client(other_agent)
    with nothing_written():
        response = client.post(desk.work_url(), {"action": action, **VALID_INPUT[action]})

    assert response.status_code == 404
    assert desk.case.reference not in response.content.decode()


@pytest.mark.parametrize("case_id", ["abc", "-1", "0", "99999999999999999999999"])
def test_a_malformed_or_unknown_case_id_answers_404(desk, nothing_written, case_id):
    """A case id that is not a number, negative, zero or beyond any id: 404 (after the
    admin's own redirect for paths that are not ids), nothing written."""
    with nothing_written():
        page = desk.holder_client.get(desk.work_url(case_id), follow=True)
        action = desk.holder_client.post(
            desk.work_url(case_id),
            {"action": "release", "reason": "Needs a German speaker"},
            follow=True,
        )

    assert page.status_code == action.status_code == 404


def unavailable_answer(client: Client, method: str, path: str, data: dict) -> tuple[int, bytes]:
    response = getattr(client, method)(path, data)
    return response.status_code, CSRF.sub(b"", response.content)


def test_missing_and_not_yours_look_the_same_to_an_agent(desk, other_agent, account):
    """For an agent, a case id that does not exist, a case another agent holds, a case
    waiting in the queue and a closed case give byte-for-byte the same answer on the case
    page, its actions and its evidence: nothing tells which ids exist or what they hold."""
    client = admin_client(other_agent)
    waiting = waiting_case()
    closed = waiting_case(contact_email="closed@example.org")
    RecoveryCase.objects.filter(pk=closed.pk).update(status=CaseStatus.RESOLVED)
    evidence_id = desk.case.evidence.get().pk
    newest = RecoveryCase.objects.order_by("-pk").first()
    assert newest is not None
    missing_id = newest.pk + 1000
    before = database_state()

    for method, path, data in [
        ("get", "/admin/support/recoverycase/{}/work/", {}),
        ("post", "/admin/support/recoverycase/{}/work/", {"action": "release", "reason": "x"}),
        ("post", "/admin/support/recoverycase/{}/work/", {"action": "reveal", "field": "email"}),
        ("get", "/admin/support/recoverycase/{}/evidence/" + f"{evidence_id}/", {}),
    ]:
        answers = {
            name: unavailable_answer(client, method, path.format(case_id), data)
            for name, case_id in [
                ("missing", missing_id),
                ("held by another agent", desk.case.pk),
                ("waiting", waiting.pk),
                ("closed", closed.pk),
            ]
        }
        assert {status for status, _body in answers.values()} == {404}, (method, path)
        assert len({body for _status, body in answers.values()}) == 1, (method, path)
        assert b"not open to you" in answers["missing"][1]
    assert database_state() == before


def test_supervisors_keep_seeing_every_case(desk, supervisor):
    """The access check leaves supervisors their right to open any case and its evidence."""
    client = admin_client(supervisor)
    page = client.get(desk.work_url())
    evidence = client.get(
        reverse("admin:support_evidence", args=[desk.case.pk, desk.case.evidence.get().pk])
    )

    assert page.status_code == 200 and desk.case.reference in page.content.decode()
    assert evidence.status_code == 200


@pytest.fixture
def customer_id(db) -> int:
    return UserFactory(email="not.staff@example.com").pk


@pytest.mark.parametrize(
    "assignee", ["abc", "-1", "0", "99999999", "99999999999999999999999", "customer"]
)
def test_reassign_to_anything_but_an_agent_answers_400_and_writes_nothing(
    desk, supervisor, customer_id, nothing_written, assignee
):
    """A supervisor's reassignment to a malformed id, a negative one, one that does not
    exist or a customer's account is refused with a message; the case stays with its
    holder."""
    client = admin_client(supervisor)
    value = str(customer_id) if assignee == "customer" else assignee
    with nothing_written():
        response = client.post(desk.work_url(), {"action": "reassign", "assignee": value})

    assert response.status_code == 400
    assert "Pick an agent from the list." in response.content.decode()


def test_reassign_stays_a_supervisors_action(desk, other_agent, nothing_written):
    """The holder cannot reassign their own case to another agent: 403, nothing written."""
    with nothing_written():
        response = desk.holder_client.post(
            desk.work_url(), {"action": "reassign", "assignee": str(other_agent.pk)}
        )

    assert response.status_code == 403


def test_a_supervisor_reassigns_to_an_agent(desk, supervisor, other_agent, settings):
    """The valid choice still works: the case moves to the chosen agent."""
    settings.SUPPORT_GIVE_BACK_MINUTES = 0
    desk.holder_client.post(desk.work_url(), {"action": "release", "reason": "Going home"})
    assert case_claim_next(agent=desk.holder) == desk.case
    client = admin_client(supervisor)

    response = client.post(
        desk.work_url(),
        {"action": "reassign", "assignee": other_agent.pk, "otp_code": fresh_code(supervisor)},
    )

    assert response.status_code == 302
    desk.case.refresh_from_db()
    assert desk.case.claimed_by == other_agent


@pytest.fixture
def pending_approval(desk) -> CaseApproval:
    """The holder attested the uploaded document and asks a supervisor to approve it."""
    actions.case_attest_document(
        case_id=desk.case.pk, agent=desk.holder, note="Passport photo matches the name"
    )
    return actions.case_approval_request(
        case_id=desk.case.pk,
        agent=desk.holder,
        action=CaseApproval.Action.DOCUMENT,
        note="Phone proven, inbox closed",
    )


@pytest.fixture
def decided_approval(supervisor, second_supervisor) -> CaseApproval:
    """Another case's approval that a supervisor already denied."""
    return CaseApproval.objects.create(
        case=waiting_case(contact_email="someone.else@example.org"),
        action=CaseApproval.Action.REAUTHENTICATE,
        requested_by=second_supervisor,
        decided_by=supervisor,
        decided_at=timezone.now(),
        approved=False,
    )


def test_every_approvals_action_is_tested():
    """Approve and deny are the approvals page's actions, both covered below."""
    assert set(APPROVAL_ACTIONS) == {"approve", "deny"}


@pytest.mark.parametrize("decision", ["approve", "deny"])
@pytest.mark.parametrize(
    "approval_id", ["abc", "-3", "0", "", "99999999", "99999999999999999999999", "decided"]
)
def test_a_bad_approval_id_answers_400_and_decides_nothing(
    supervisor, pending_approval, decided_approval, nothing_written, decision, approval_id
):
    """An approval id that is not a number, negative, zero, missing, unknown, or of an
    approval already decided: 400 with a message on the approvals page (no "invalid
    literal for int()"), and no approval is decided."""
    client = admin_client(supervisor)
    value = str(decided_approval.pk) if approval_id == "decided" else approval_id
    with nothing_written():
        response = client.post(
            reverse("admin:support_approvals"), {"action": decision, "approval_id": value}
        )

    assert response.status_code == 400
    html = response.content.decode()
    assert "This approval does not exist or was already decided." in html
    assert "invalid literal" not in html
    assert pending_approval.case.reference in html, "the approvals page with the list"


@pytest.mark.parametrize("decision", ["", "maybe", "approve_all"])
def test_an_unknown_decision_answers_400_and_decides_nothing(
    supervisor, pending_approval, nothing_written, decision
):
    """Only "approve" and "deny" decide; anything else is refused with a message."""
    client = admin_client(supervisor)
    with nothing_written():
        response = client.post(
            reverse("admin:support_approvals"),
            {"action": decision, "approval_id": pending_approval.pk},
        )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose what to do." in html or "This page has no such action." in html


def test_a_valid_decision_is_recorded(supervisor, pending_approval):
    """The approvals form still decides a pending approval that another staff member asked."""
    client = admin_client(supervisor)
    response = client.post(
        reverse("admin:support_approvals"),
        {
            "action": "deny",
            "approval_id": pending_approval.pk,
            "otp_code": fresh_code(supervisor),
        },
    )

    assert response.status_code == 302
    pending_approval.refresh_from_db()
    assert (pending_approval.approved, pending_approval.decided_by) == (False, supervisor)
