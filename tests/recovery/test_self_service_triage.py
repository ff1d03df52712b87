"""Triage sends help requests whose account can prove two methods to self-service first.

The status page words the offer for anyone ("if the account still has your password..."),
so a request that matched reads like one that did not; agents get the rest, each case noting
the proofs the account's data would allow.
"""

from __future__ import annotations

import re

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from accounts.models import BackupCode, User
from recovery.models import SelfServiceRecovery
from recovery.selectors import account_provable_methods, account_self_service_paths
from support.models import CaseEvent, CaseStatus, RecoveryCase
from tests.factories import UserFactory
from tests.recovery.self_service_helpers import customer_account

pytestmark = pytest.mark.django_db

Kind = SelfServiceRecovery.Kind
STATUS_LINK = re.compile(r'id="status-link" href="http://testserver(/recover/case/[^/"]+/)"')
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
REFERENCE = re.compile(rb"RC-[0-9A-Z]{4}-[0-9A-Z]{4}")
OFFER = "If the account you wrote about still has your password"


@pytest.fixture(autouse=True)
def self_service_triage(settings):
    settings.SELF_SERVICE_TRIAGE = True


def status_page(capture, **fields) -> tuple[Client, str]:
    """Open a help request and follow its private link; the status page's HTML."""
    client = Client()
    data = {
        "contact_email": "reach.me@example.org",
        "contact_phone": "",
        "emails_tried": "",
        "description": "I cannot sign in any more.",
        **fields,
    }
    with capture():
        response = client.post(reverse("recover_help"), data)
    assert response.status_code == 200
    link = STATUS_LINK.search(response.content.decode())
    assert link, response.content
    return client, client.get(link.group(1), follow=True).content.decode()


def comparable(html: str) -> bytes:
    return REFERENCE.sub(b"RC", CSRF.sub(b"", html.encode()))


def test_what_the_account_data_allows_decides_the_paths():
    """Password + phone: both paths. Backup codes + email, no password: lost 2FA only. No
    phone, no verified email: none. A frozen account: none."""
    full, _codes = customer_account()
    assert account_self_service_paths(user=full) == [Kind.LOST_FACTOR, Kind.NEW_EMAIL]

    no_password, _codes = customer_account(email="np@example.org", phone=None)
    no_password.set_unusable_password()
    no_password.save()
    assert BackupCode.objects.filter(device__user=no_password).exists()
    assert account_self_service_paths(user=no_password) == [Kind.LOST_FACTOR]

    bare = UserFactory.create(email="bare@example.org", phone=None)
    EmailAddress.objects.filter(user=bare).update(verified=False)
    assert account_provable_methods(user=bare) == ["password"]
    assert account_self_service_paths(user=bare) == []

    User.objects.filter(pk=full.pk).update(frozen_at="2026-01-01T00:00:00Z")
    full.refresh_from_db()
    assert account_self_service_paths(user=full) == []


def test_a_request_for_a_self_service_account_goes_there_and_not_to_the_agents(capture):
    user, _codes = customer_account()
    _client, page = status_page(capture, emails_tried=user.email)
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == RecoveryCase.Resolution.SELF_SERVICE_OFFERED
    assert not RecoveryCase.objects.filter(status=CaseStatus.WAITING).exists()
    offered = case.events.get(type=CaseEvent.Type.SELF_SERVICE_OFFERED)
    assert offered.details["self_service"] == ["lost_factor", "new_email"]
    assert not offered.visible_to_customer
    assert OFFER in page
    assert reverse("recover_lost_2fa") in page and reverse("recover_new_email") in page


def test_the_page_reads_the_same_whether_or_not_the_request_matched(capture):
    """Byte for byte (but for the reference): the same state, the same words, the same
    buttons for a request about a self-service account and one about nobody."""
    user, _codes = customer_account()
    with time_machine.travel("2026-06-01 10:00:00", tick=False):
        _c1, matched = status_page(capture, emails_tried=user.email)
        _c2, unknown = status_page(capture, emails_tried="nobody@example.org")
    assert RecoveryCase.objects.get(emails_tried=["nobody@example.org"]).status == (
        CaseStatus.WAITING
    )
    assert "Your place in the queue: 1." in matched
    assert comparable(matched) == comparable(unknown)


def test_none_of_this_works_sends_the_request_to_an_agent(capture):
    user, _codes = customer_account()
    client, _page = status_page(capture, emails_tried=user.email)
    with capture():
        response = client.post(reverse("recover_case"), {"action": "not_helped"})
    assert response.status_code == 302
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.WAITING and case.resolution == ""


def test_a_reply_instead_of_self_service_sends_the_request_to_an_agent(capture):
    user, _codes = customer_account()
    client, _page = status_page(capture, emails_tried=user.email)
    with capture():
        client.post(reverse("recover_case"), {"action": "reply", "message": "No phone, sorry."})
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.WAITING
    assert case.events.filter(type=CaseEvent.Type.CUSTOMER_MESSAGE).exists()


def test_agents_get_requests_that_cannot_prove_two_methods_with_what_they_could_prove(capture):
    """An account with only a password on file waits for an agent; the case notes it."""
    bare = UserFactory.create(email="bare@example.org", phone=None)
    EmailAddress.objects.filter(user=bare).update(verified=False)
    status_page(capture, emails_tried=bare.email)
    case = RecoveryCase.objects.get()
    assert case.status == CaseStatus.WAITING
    triaged = case.events.get(type=CaseEvent.Type.TRIAGED)
    assert triaged.details == {"could_prove": ["password"], "self_service": []}
    assert triaged.could_prove_in_words == "the current password"
    assert not triaged.visible_to_customer


def test_the_switch_sends_every_matched_request_to_the_agents(capture, settings):
    settings.SELF_SERVICE_TRIAGE = False
    user, _codes = customer_account()
    status_page(capture, emails_tried=user.email)
    assert RecoveryCase.objects.get().status == CaseStatus.WAITING


def test_the_hub_links_both_paths(client):
    html = client.get(reverse("recover_hub")).content.decode()
    assert reverse("recover_lost_2fa") in html and reverse("recover_new_email") in html


def test_only_a_passkey_is_an_authenticator_the_lost_2fa_path_can_take():
    """/recover/lost-2fa/ accepts a passkey as the second method, never the authenticator
    app the customer lost: password + app alone leads to no self-service path; password +
    a passkey leads to the lost-2fa path."""
    from tests.accounts.test_passkeys import passkey_for

    user, _codes = customer_account(email="app.only@example.org", phone=None)
    EmailAddress.objects.filter(user=user).update(verified=False)
    BackupCode.objects.filter(device__user=user).delete()
    assert set(account_provable_methods(user=user)) == {"password", "authenticator"}
    assert account_self_service_paths(user=user) == []

    passkey_for(user)
    assert account_self_service_paths(user=user) == [Kind.LOST_FACTOR]
