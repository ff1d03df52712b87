"""Status links open a request's page on every device until it has closed a while, and a
lost link is sent again by reference and contact email, to that email only."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from support.models import CaseLink, CaseStatus, RecoveryCase
from tests.recovery.test_cases import follow_link, open_case, opened

pytestmark = pytest.mark.django_db

EMAILED_LINK = re.compile(r"https?://[^/\s]+(/recover/case/[^/\s\"<]+/)")


def resend(client, *, reference: str, contact_email: str, capture):
    with capture(execute=True):
        return client.post(
            reverse("recover_case_resend"),
            {"reference": reference, "contact_email": contact_email},
        )


def test_the_link_opens_the_page_on_a_second_device(client, django_capture_on_commit_callbacks):
    """The button's link and the emailed link open the page in any browser, each time
    moving into that browser's session so the address bar is token-free."""
    reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    assert reference in follow_link(client, link).content.decode()
    phone = Client()
    assert reference in follow_link(phone, link).content.decode()
    emailed = EMAILED_LINK.search(str(mail.outbox[-1].body))
    assert emailed, mail.outbox[-1].body
    assert reference in follow_link(Client(), emailed.group(1)).content.decode()
    assert client.get(reverse("recover_case")).status_code == 200
    assert CaseLink.objects.get().used_at is not None


def test_the_link_still_opens_days_after_its_first_use_and_the_hourly_cleanup(
    client, django_capture_on_commit_callbacks
):
    """A status link is for the whole life of the request, not single use: opened once,
    it still opens the page on another device days later, after `expire_tokens` ran."""
    reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    assert reference in follow_link(client, link).content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        call_command("expire_tokens", stdout=StringIO())
        assert reference in follow_link(Client(), link).content.decode()


def test_expire_tokens_removes_a_link_once_it_can_no_longer_open_its_page(
    client, django_capture_on_commit_callbacks
):
    """The cleanup deletes a status link when the page would refuse it anyway: its request
    closed longer ago than the links stay open after closing."""
    _reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    RecoveryCase.objects.update(
        status=CaseStatus.REJECTED, resolution="rejected", closed_at=timezone.now()
    )
    with time_machine.travel(timezone.now() + timedelta(days=6)):
        call_command("expire_tokens", stdout=StringIO())
        assert CaseLink.objects.count() == 1
        assert Client().get(link).status_code == 302
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        out = StringIO()
        call_command("expire_tokens", stdout=out)
    assert "case_links: 1" in out.getvalue()
    assert not CaseLink.objects.exists()


def test_the_link_stops_a_while_after_the_case_closed(client, django_capture_on_commit_callbacks):
    """A closed request's link still opens its page for the outcome, then no more."""
    _reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    RecoveryCase.objects.update(
        status=CaseStatus.REJECTED, resolution="rejected", closed_at=timezone.now()
    )
    assert Client().get(link).status_code == 302
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        late = Client().get(link)
    assert late.status_code == 404
    assert "This link is not valid" in late.content.decode()


def test_a_wrong_link_is_not_valid_and_offers_a_new_one(client):
    response = client.get(reverse("recover_case_link", args=["x" * 43]))
    assert response.status_code == 404
    assert reverse("recover_case_resend") in response.content.decode()


def test_resend_by_reference_and_contact_email(client, django_capture_on_commit_callbacks):
    """A new link goes to the contact email on file and opens the page on a new device."""
    reference, _link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    mail.outbox.clear()
    answer = resend(
        Client(),
        reference=reference.lower().replace("-", " "),
        contact_email="Reach.Me@example.org",
        capture=django_capture_on_commit_callbacks,
    )
    assert answer.status_code == 200
    assert [m.to for m in mail.outbox] == [["reach.me@example.org"]]
    new_link = EMAILED_LINK.search(str(mail.outbox[0].body))
    assert new_link, mail.outbox[0].body
    assert reference in follow_link(Client(), new_link.group(1)).content.decode()


def test_resend_answers_alike_and_sends_nothing_for_a_wrong_pair(
    client, django_capture_on_commit_callbacks
):
    """A wrong email for a real reference and an unknown reference get the real answer's
    bytes, and nothing is sent: the form tells nobody which references exist."""
    reference, _link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    mail.outbox.clear()
    real = resend(
        Client(),
        reference=reference,
        contact_email="reach.me@example.org",
        capture=django_capture_on_commit_callbacks,
    )
    sent = len(mail.outbox)
    wrong_email = resend(
        Client(),
        reference=reference,
        contact_email="attacker@example.org",
        capture=django_capture_on_commit_callbacks,
    )
    unknown = resend(
        Client(),
        reference="RC-ZZZZ-ZZZZ",
        contact_email="reach.me@example.org",
        capture=django_capture_on_commit_callbacks,
    )
    strip = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    bodies = {strip.sub(b"", r.content) for r in (real, wrong_email, unknown)}
    assert len(bodies) == 1
    assert {r.status_code for r in (real, wrong_email, unknown)} == {200}
    assert sent == 1 and len(mail.outbox) == 1


def test_resend_from_the_confirmation_page(client, django_capture_on_commit_callbacks):
    """The "case opened" page offers the resend form already filled in."""
    response = open_case(client, capture=django_capture_on_commit_callbacks)
    reference, _link = opened(response)
    html = response.content.decode()
    assert f'value="{reference}"' in html
    assert 'value="reach.me@example.org"' in html
    assert f'action="{reverse("recover_case_resend")}"' in html


def test_resend_refuses_a_malformed_reference_in_words(client):
    response = client.post(
        reverse("recover_case_resend"), {"reference": "hello", "contact_email": "a@example.org"}
    )
    assert response.status_code == 400
    assert "RC-4F7K-2M9Q" in response.content.decode()


def test_resend_is_rate_limited_with_retry_after_and_keeps_the_input(
    client, settings, django_capture_on_commit_callbacks
):
    """Over the limit: 429, a Retry-After in seconds, the wait in words, the input kept."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "recover_case_resend": "2/h/ip",
    }
    for _ in range(2):
        resend(
            client,
            reference="RC-AAAA-BBBB",
            contact_email="a@example.org",
            capture=django_capture_on_commit_callbacks,
        )
    refused = resend(
        client,
        reference="RC-AAAA-BBBB",
        contact_email="kept@example.org",
        capture=django_capture_on_commit_callbacks,
    )
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    html = refused.content.decode()
    assert 'value="kept@example.org"' in html
    assert "Please try again in 59\xa0minutes" in html or "again in 1\xa0hour" in html


def test_the_timeline_names_the_time_zone_of_its_times(client, django_capture_on_commit_callbacks):
    """Times on the page are UTC, as on the security page, and each says so."""
    _reference, link = opened(open_case(client, capture=django_capture_on_commit_callbacks))
    html = follow_link(client, link).content.decode()
    shown = re.findall(r"<time datetime=\"[^\"]+\">([^<]+)</time>", html)
    assert shown, html
    assert all(text.endswith(" UTC") for text in shown), shown
