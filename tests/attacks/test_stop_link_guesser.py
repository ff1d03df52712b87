"""The stranger who guesses stop links: every page that checks a link's secret on POST
is rate-limited per address, the login-email change's stop page as the others."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

STOP_PAGES = [
    ("recover_email_change_cancel_link", "recover_email_change_cancel"),
    ("recover_self_service_cancel_link", "recover_self_service_cancel"),
]


@pytest.mark.parametrize(("link", "page"), STOP_PAGES)
def test_guessed_stop_links_meet_a_limit(link, page):
    guesser = Client(REMOTE_ADDR="203.0.113.160")
    answers = []
    for _ in range(25):
        assert guesser.get(reverse(link, args=[secrets.token_urlsafe(32)])).status_code == 302
        answers.append(guesser.post(reverse(page)).status_code)
    assert set(answers[:20]) == {404}
    assert answers[20:] == [429] * 5
