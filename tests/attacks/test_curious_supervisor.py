"""The curious supervisor.

A supervisor signed in to the admin (password and authenticator), who may open every case
and every account's masked page, wants a customer's full login email or phone number
without giving the reason the case page's reveal asks for and logs. They know the admin's
search box matches parts of a value, and guess the address one character at a time on the
accounts list and on the autocomplete JSON behind every relation to an account.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE, admin_client

pytestmark = pytest.mark.django_db

# Beginnings, middles and ends of the victim's address and number (satoshi.nakamoto@gmx.net,
# +4915123456789) that a search matching parts of a value would find.
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
