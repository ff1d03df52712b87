""" "This wasn't me": the link in every security notice freezes the account after a confirmation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import NotMeLink, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.two_factor import two_factor_provision
from support.models import CaseEvent, CasePriority, RecoveryCase
from tests.factories import PASSWORD, UserFactory, customer_sign_in

pytestmark = pytest.mark.django_db

NOT_ME_LINK = re.compile(r"https?://[^/\s]+(/recover/not-me/[A-Za-z0-9_-]+/)")


@pytest.fixture
def customer():
    user = UserFactory.create(email="alice@example.com")
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device


def notice_link(user, mailoutbox, capture) -> str:
    """Record a password change; return the not-me link path from the emailed notice."""
    mailoutbox.clear()
    with capture(execute=True):
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    notices = [m for m in mailoutbox if m.to == [user.email]]
    assert len(notices) == 1
    link = NOT_ME_LINK.search(notices[0].body)
    assert link, notices[0].body
    return link.group(1)


def signed_in_client(user, device) -> Client:
    client = customer_sign_in(Client(), user, device)
    assert client.get(reverse("account_security")).status_code == 200
    return client


def test_security_notice_carries_a_not_me_link(
    customer, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """The email and the text of a security notice both link to /recover/not-me/<token>/."""
    user, _device = customer
    link = notice_link(user, mailoutbox, django_capture_on_commit_callbacks)
    assert [m.to for m in sms_outbox] == [user.phone]
    assert link in sms_outbox[0].body
    assert NotMeLink.objects.filter(user=user, used_at__isnull=True).count() == 1


def test_following_the_link_only_asks_for_confirmation(
    client, customer, mailoutbox, django_capture_on_commit_callbacks
):
    """GET never freezes (mail scanners follow links): it leads to a token-free page that
    shows which account and asks to confirm."""
    user, device = customer
    other = signed_in_client(user, device)
    link = notice_link(user, mailoutbox, django_capture_on_commit_callbacks)
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("recover_not_me")
    page = client.get(reverse("recover_not_me"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Freeze your account?" in html
    assert "a***e@e***.com" in html
    assert "alice@example.com" not in html

    user.refresh_from_db()
    assert user.frozen_at is None
    assert NotMeLink.objects.get(user=user).used_at is None
    assert not RecoveryCase.objects.exists()
    assert other.get(reverse("account_security")).status_code == 200


def test_confirming_freezes_the_account(
    client, customer, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """POST freezes: every session ends, an urgent not_me case is opened, the freeze is
    recorded and told, and the right password no longer signs in."""
    user, device = customer
    other = signed_in_client(user, device)
    link = notice_link(user, mailoutbox, django_capture_on_commit_callbacks)
    client.get(link)
    mailoutbox.clear()
    sms_outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("recover_not_me"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your account is frozen" in html

    user = User.objects.get(pk=user.pk)
    assert user.frozen_at is not None
    assert abs(user.frozen_at - timezone.now()) < timedelta(minutes=1)

    case = RecoveryCase.objects.get()
    assert case.reference in html
    assert case.kind == RecoveryCase.Kind.NOT_ME
    assert case.priority == CasePriority.URGENT == 2
    assert case.matched_user == user
    assert case.is_open
    assert CaseEvent.objects.filter(case=case, type="frozen").exists()

    frozen = SecurityEvent.objects.get(account_id=user.pk, type="account_frozen")
    assert frozen.details["reported_event_id"] == (
        SecurityEvent.objects.get(account_id=user.pk, type="password_changed").pk
    )
    assert {m.to[0] for m in mailoutbox} == {user.email}
    assert any("frozen" in m.subject for m in mailoutbox)
    assert [m.to for m in sms_outbox] == [user.phone]
    assert "/recover/not-me/" not in sms_outbox[0].body

    # The other browser was signed out.
    after = other.get(reverse("account_security"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("account_login"))

    # The right password no longer signs in; it lands on the "frozen" page.
    fresh = Client()
    login = fresh.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert login.status_code == 302
    assert login["Location"] == reverse("recover_frozen")
    page = fresh.get(login["Location"])
    assert page.status_code == 403
    assert "This account is frozen" in page.content.decode()
    assert fresh.get(reverse("account_security"))["Location"].startswith(reverse("account_login"))


def test_link_is_single_use(client, customer, mailoutbox, django_capture_on_commit_callbacks):
    """After the freeze the link, and the confirmation page, answer 404 "not valid"."""
    user, _device = customer
    link = notice_link(user, mailoutbox, django_capture_on_commit_callbacks)
    client.get(link)
    assert client.post(reverse("recover_not_me")).status_code == 200

    again = client.get(link)
    assert again.status_code == 404
    assert "This link is not valid" in again.content.decode()
    assert Client().get(link).status_code == 404
    assert client.post(reverse("recover_not_me")).status_code == 404
    assert RecoveryCase.objects.count() == 1
    assert SecurityEvent.objects.filter(account_id=user.pk, type="account_frozen").count() == 1


def test_confirmation_page_needs_a_link(client, customer):
    """Without a link in the session there is nothing to confirm."""
    user, _device = customer
    assert client.get(reverse("recover_not_me")).status_code == 404
    assert client.post(reverse("recover_not_me")).status_code == 404
    assert client.get("/recover/not-me/not-a-real-token/").status_code == 404
    user.refresh_from_db()
    assert user.frozen_at is None


def test_link_expires_after_seven_days(
    client, customer, mailoutbox, django_capture_on_commit_callbacks
):
    """The link works for seven days; after that following it or confirming does nothing."""
    user, _device = customer
    with time_machine.travel("2026-07-01 12:00:00", tick=False) as clock:
        link = notice_link(user, mailoutbox, django_capture_on_commit_callbacks)
        clock.shift(timedelta(days=6, hours=23))
        assert client.get(link).status_code == 302  # still valid; kept in the session
        clock.shift(timedelta(hours=1, seconds=1))
        assert client.post(reverse("recover_not_me")).status_code == 404
        expired = Client().get(link)
        assert expired.status_code == 404
        assert "This link is not valid" in expired.content.decode()
    user.refresh_from_db()
    assert user.frozen_at is None
    assert not RecoveryCase.objects.exists()
