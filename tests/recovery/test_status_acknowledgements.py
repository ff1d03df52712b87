"""The status page acknowledges what the customer sent: their replies shown as theirs,
their files listed as received."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.recovery.test_cases import PNG, follow_link, open_case, opened

pytestmark = pytest.mark.django_db


def test_a_reply_is_confirmed_and_shown_as_the_customer_s_own(
    client, django_capture_on_commit_callbacks
):
    _reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    follow_link(client, link)
    sent = client.post(
        reverse("recover_case"),
        {"action": "reply", "message": "I still have my passport."},
        follow=True,
    )
    html = sent.content.decode()
    assert "We have your message. It is on this page below." in html
    assert "You wrote" in html
    assert "I still have my passport." in html
    assert "Message from the customer" not in html


def test_files_are_listed_as_received(client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("passport.png", PNG, content_type="image/png")
    response = open_case(client, capture=django_capture_on_commit_callbacks, evidence=[upload])
    _reference, link = opened(response)
    html = follow_link(client, link).content.decode()
    assert "We received 1 file." in html
    assert "passport.png" in html


def test_the_file_limit_is_stated_before_anything_is_attached(client):
    html = client.get(reverse("recover_help")).content.decode()
    assert "Up to 5 files" in html
