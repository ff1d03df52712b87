"""Canned replies and rejection reasons reach the customer in the case's language, whatever
language the agent works in."""

from __future__ import annotations

import pytest
from django.utils import translation

from support.canned import CANNED_REPLIES, REJECTION_REASONS, canned_text
from support.models import CaseEvent, RecoveryCase
from support.services.actions import case_ask_customer, case_reject
from support.services.cases import case_open
from support.services.queue import case_claim_next
from tests.support.conftest import png_upload, waiting_case

pytestmark = pytest.mark.django_db

ENGLISH_START = "To protect your account we need to confirm it is you."
GERMAN_START = "Zum Schutz Ihres Kontos müssen wir bestätigen, dass Sie es sind."
JOINS = {"en": "It joins this case.", "de": "Sie wird diesem Fall zugeordnet."}


def claimed_case_in(language: str, agent) -> RecoveryCase:
    case = waiting_case()
    case.language = language
    case.save(update_fields=["language"])
    assert case_claim_next(agent=agent) == case
    return case


@pytest.mark.parametrize("texts", [CANNED_REPLIES, REJECTION_REASONS], ids=["replies", "reasons"])
def test_every_canned_text_exists_in_english_and_german(texts):
    """Each canned reply and rejection reason has a German text of its own."""
    for key in texts:
        english, german = canned_text(texts, key, "en"), canned_text(texts, key, "de")
        assert english and german and english != german, key


@pytest.mark.parametrize(
    ("case_language", "agent_language", "start"),
    [("de", "en", GERMAN_START), ("en", "de", ENGLISH_START)],
    ids=["german-customer", "english-customer"],
)
def test_a_canned_reply_is_written_in_the_customers_language_not_the_agents(
    agent, case_language, agent_language, start
):
    """A German customer served by an English-speaking agent reads German, and the other
    way round: the reply the customer sees on the status page is in the case's language."""
    case = claimed_case_in(case_language, agent)
    with translation.override(agent_language):
        case_ask_customer(case_id=case.pk, agent=agent, canned="prove_contacts")

    message = case.events.get(type=CaseEvent.Type.AGENT_MESSAGE)
    assert message.visible_to_customer
    assert message.message.startswith(start)


def test_a_rejection_reason_is_written_in_the_customers_language(agent):
    """An agent working in English rejects a German customer's case: the reason is German."""
    case = claimed_case_in("de", agent)
    with translation.override("en"):
        case_reject(case_id=case.pk, agent=agent, reason="not_verified")

    rejected = case.events.get(type=CaseEvent.Type.REJECTED)
    assert rejected.visible_to_customer
    assert rejected.message.startswith(
        "Wir konnten nicht bestätigen, dass Sie Inhaber dieses Kontos sind"
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_document_request_does_not_promise_a_join_the_desk_does_not_make(
    agent, language, django_capture_on_commit_callbacks
):
    """A request joins a case only through the account's phone or email. A customer who
    writes from another address and follows the reply word for word (a new request, the
    same contact email, the photo attached) opens a case of its own: the reply must not
    say it joins this one."""
    case = claimed_case_in(language, agent)
    with django_capture_on_commit_callbacks(execute=True):
        case_ask_customer(case_id=case.pk, agent=agent, canned="need_document")
    reply = case.events.get(type=CaseEvent.Type.AGENT_MESSAGE).message

    with django_capture_on_commit_callbacks(execute=True):
        followed = case_open(
            contact_email=case.contact_email, language=language, files=[png_upload()]
        ).case
    followed.refresh_from_db()
    assert followed.merged_into_id != case.pk
    assert JOINS[language] not in reply
    assert case.reference in reply
