"""Someone who reads the victim's inbox opens the password reset link in a browser of their
own while the owner has it open too, and both send a new password at the same instant.

A reset link is single use: one new password is set, the other request gets the page of a
used link (whether it lost the race under the row lock or came a moment late), and the
account records and notifies one reset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.test import Client
from django.urls import reverse

from accounts.models import SecurityEvent, User
from tests.concurrency import run_together
from tests.factories import UserFactory

if TYPE_CHECKING:
    from tests.factories import ClientResponse

PASSWORDS = ("the-thiefs-new-passphrase-1", "the-owners-new-passphrase-2")


def _browser_holding_the_link(user: User, key: str) -> tuple[Client, str]:
    """A browser that opened the emailed link, and the token-free URL of its form."""
    url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": key},
    )
    client = Client()
    response = client.get(url)
    assert response.status_code == 302, response.content
    return client, response["Location"]


@pytest.mark.django_db(transaction=True)
def test_one_reset_link_sets_one_password_when_used_twice_at_once():
    user = UserFactory(email="len.sassaman@posteo.de")
    key = default_token_generator.make_token(user)
    browsers = [_browser_holding_the_link(user, key) for _ in PASSWORDS]

    def sending(client: Client, url: str, password: str) -> Callable[[], ClientResponse]:
        return lambda: client.post(url, {"password1": password, "password2": password})

    responses = run_together(
        [
            sending(client, url, password)
            for (client, url), password in zip(browsers, PASSWORDS, strict=True)
        ]
    )

    statuses = [response.status_code for response in responses]
    assert sorted(statuses) == [200, 302], statuses
    loser = responses[statuses.index(200)]
    assert loser.context["token_fail"], loser.content
    winner = PASSWORDS[statuses.index(302)]
    assert User.objects.get(pk=user.pk).check_password(winner)
    assert SecurityEvent.objects.filter(account_id=user.pk, type="password_reset").count() == 1
