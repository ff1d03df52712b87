"""The curious supervisor.

A supervisor signed in to the admin (password and authenticator), who may open every case
and every account's masked page, wants a customer's full login email or phone number
without giving the reason the case page's reveal asks for and logs. They know the admin's
search box matches parts of a value, and guess the address one character at a time on the
accounts list and on the autocomplete JSON behind every relation to an account.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecurityEvent, User
from accounts.services.audit import security_event_record
from api.models import Scope, ServiceToken
from api.services import service_token_create
from notifications.models import Notification
from support.models import CaseEvent, EmailChange, RecoveryCase
from support.roles import SUPERVISORS_GROUP
from support.services.cases import case_event_add
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    admin_client,
    staff_member,
    waiting_case,
)

pytestmark = pytest.mark.django_db

# Beginnings, middles and ends of the victim's address and number (satoshi.nakamoto@gmx.net,
# +4915123456789) that a search matching parts of a value would find.
LINK_TOKEN = "Qk3v9-recovery-link-token-of-forty-three-chars"
PARTS = ["satoshi", "nakamoto", "s", "i.nak", "@gmx", "gmx.net", "151234", "6789", "+49"]


def _account_rows(client, term: str) -> str:
    response = client.get(reverse("admin:accounts_user_changelist"), {"q": term})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("term", PARTS)
def test_a_part_of_an_address_or_number_finds_no_account(account: User, supervisor, term):
    """A search for part of the login email or the phone lists nothing: the list would
    otherwise confirm each guessed character and spell the value out, unlogged."""
    client = admin_client(supervisor)
    html = _account_rows(client, term)

    assert f"/admin/accounts/user/{account.pk}/change/" not in html, term


@pytest.mark.parametrize("term", PARTS)
def test_the_autocomplete_of_accounts_answers_a_part_with_nothing(account: User, supervisor, term):
    """The autocomplete JSON (reachable for any relation to an account, declared or not)
    searches like the list and must not confirm a part either."""
    client = admin_client(supervisor)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "otp_totp", "model_name": "totpdevice", "field_name": "user", "term": term},
    )

    assert response.status_code in (200, 403, 404)
    if response.status_code == 200:
        ids = [row["id"] for row in response.json()["results"]]
        assert str(account.pk) not in ids, term


def test_the_whole_address_or_number_still_finds_the_account(account: User, supervisor):
    """Staff still find an account by the full address or number a customer gives them
    (any letter case, the number as stored): a guess of the whole value is a look-up,
    not a way to read it."""
    client = admin_client(supervisor)
    change = f"/admin/accounts/user/{account.pk}/change/"

    assert change in _account_rows(client, ACCOUNT_EMAIL.upper())
    assert change in _account_rows(client, ACCOUNT_PHONE)


# The supervisor's guess, as a query-string lookup on an admin list, with the true
# beginning of a value and a wrong one; the list then shows the row or not.
LOOKUP_GUESSES = [
    ("accounts_user", "email__startswith", "satoshi", "zzz"),
    ("accounts_user", "phone__startswith", "+491512", "+4917"),
    ("accounts_user", "email__regex", "^s", "^z"),
    ("support_recoverycase", "contact_email__startswith", "satoshi", "zzz"),
    ("support_recoverycase", "contact_phone__contains", "1234", "9999"),
    ("support_recoverycase", "description__icontains", "passport", "zzz"),
    ("support_caseevent", "message__icontains", "call me", "zzz"),
    ("support_emailchange", "new_email__startswith", "fresh", "zzz"),
    ("notifications_notification", "recipient__startswith", "satoshi", "zzz"),
    ("notifications_notification", "context__link_token__startswith", LINK_TOKEN[:3], "~~~"),
]


@pytest.fixture
def rows_with_secrets(account: User, supervisor: User) -> None:
    """A case with its contacts, a timeline message, an email change, an outbox row that
    carries a recovery link's token, and a service token."""
    case = waiting_case(matched_user=account, contact_email=ACCOUNT_EMAIL)
    RecoveryCase.objects.filter(pk=case.pk).update(
        contact_phone=ACCOUNT_PHONE, description="My passport is attached"
    )
    case_event_add(case=case, type=CaseEvent.Type.CUSTOMER_MESSAGE, message="Please call me")
    EmailChange.objects.create(
        case=case,
        requester=case,
        user=account,
        new_email="fresh.address@example.org",
        requested_by=supervisor,
    )
    Notification.objects.create(
        reference="N-GUESS-0001",
        channel=Notification.Channel.EMAIL,
        recipient=ACCOUNT_EMAIL,
        account_id=account.pk,
        template_key="support/recovery_link",
        context={"link_token": LINK_TOKEN},
        idempotency_key="curious-supervisor",
    )
    service_token_create(name="exchange", scopes=[Scope.RESTRICTIONS_READ])


@pytest.mark.parametrize(("model", "lookup", "right", "wrong"), LOOKUP_GUESSES)
def test_a_lookup_in_the_query_string_tells_nothing_of_a_hidden_value(
    supervisor, rows_with_secrets, model, lookup, right, wrong
):
    """A lookup the list does not offer as a filter (on a contact, a message, a token or
    a hash) is refused as a bad request, whether the guess is right or wrong: no answer
    tells the two apart."""
    client = admin_client(supervisor)
    url = reverse(f"admin:{model}_changelist")

    answers = [client.get(url, {lookup: guess}) for guess in (right, wrong)]

    assert [answer.status_code for answer in answers] == [400, 400], lookup


def test_a_superuser_cannot_read_a_secret_or_a_hash_through_a_lookup(account, rows_with_secrets):
    """Not even a superuser (who may open every list) learns an authenticator's secret, a
    service token's hash or a login email a character at a time."""
    root = staff_member("root@desk.example", SUPERVISORS_GROUP)
    User.objects.filter(pk=root.pk).update(is_superuser=True)
    client = admin_client(root)
    secret = TOTPDevice.objects.get(user=account).key
    token_hash = ServiceToken.objects.get().token_hash

    for model, lookup, right in [
        ("otp_totp_totpdevice", "key__startswith", secret[:4]),
        ("api_servicetoken", "token_hash__startswith", token_hash[:4]),
        ("accounts_user", "email__startswith", "satoshi"),
    ]:
        url = reverse(f"admin:{model}_changelist")
        answers = [client.get(url, {lookup: guess}) for guess in (right, "~~~~")]
        assert [answer.status_code for answer in answers] == [400, 400], lookup


def test_the_filters_the_lists_offer_still_work(rows_with_secrets):
    """The side filters (status, type, staff flag, dates, revoked tokens) keep working."""
    root = staff_member("root@desk.example", SUPERVISORS_GROUP)
    User.objects.filter(pk=root.pk).update(is_superuser=True)
    client = admin_client(root)
    for model, query in [
        ("accounts_user", {"is_staff__exact": "1"}),
        ("support_recoverycase", {"status__exact": "waiting", "priority__exact": "0"}),
        ("support_caseevent", {"type__exact": "customer_message"}),
        ("notifications_notification", {"status__exact": "pending", "channel__exact": "email"}),
        ("notifications_notification", {"template_key__exact": "support/recovery_link"}),
        ("accounts_securityevent", {"created_at__year": "2026", "type__exact": "signed_up"}),
        ("api_servicetoken", {"revoked_at__isempty": "0"}),
        ("api_servicecall", {"status_code__exact": "200", "token__id__exact": "1"}),
        ("otp_totp_totpdevice", {"confirmed__exact": "1"}),
    ]:
        response = client.get(reverse(f"admin:{model}_changelist"), query)
        assert response.status_code == 200, (model, query)


def test_a_delivery_error_naming_the_address_shows_it_masked(account: User, supervisor):
    """A mail server that refused a recipient names the address in its error, which the
    outbox keeps: the notification's page shows the error with the address masked."""
    notice = Notification.objects.create(
        reference="N-REFUSED-001",
        channel=Notification.Channel.EMAIL,
        recipient=ACCOUNT_EMAIL,
        account_id=account.pk,
        template_key="support/case_updated",
        idempotency_key="refused-recipient",
        status=Notification.Status.FAILED,
        attempts=5,
        last_error=f"{{'{ACCOUNT_EMAIL}': (550, b'5.1.1 <{ACCOUNT_EMAIL}>: user unknown')}}",
    )
    client = admin_client(supervisor)

    page = client.get(reverse("admin:notifications_notification_change", args=[notice.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert ACCOUNT_EMAIL not in html
    assert "user unknown" in html and "s***o@g***.net" in html


def test_the_outbox_page_shows_a_link_was_sent_but_not_the_link(
    account: User, supervisor, capture, mailoutbox
):
    """Once sent, a notice's page names what it carried (`not_me_token`), not the token."""
    with capture():
        security_event_record(user=account, type=SecurityEvent.Type.PASSWORD_CHANGED)
    found = re.search(r"/recover/not-me/([^/\s]+)/", mailoutbox[-1].body)
    assert found is not None
    notice = Notification.objects.get(channel=Notification.Channel.EMAIL)
    client = admin_client(supervisor)

    page = client.get(reverse("admin:notifications_notification_change", args=[notice.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "not_me_token: [removed after delivery]" in html
    assert found.group(1) not in html


def test_the_accounts_list_is_not_ordered_by_the_hidden_addresses(supervisor):
    """Rows sorted by email would place a masked address between two known ones, letter by
    letter, as the supervisor creates probe accounts. The list is newest first instead."""
    older = User.objects.create_user(email="aa.older@example.org", password=None)
    newer = User.objects.create_user(email="zz.newer@example.org", password=None)
    html = admin_client(supervisor).get(reverse("admin:accounts_user_changelist")).content.decode()
    rows = re.findall(r"/admin/accounts/user/(\d+)/change/", html)
    assert rows.index(str(newer.pk)) < rows.index(str(older.pk)), rows
