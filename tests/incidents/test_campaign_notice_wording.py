"""A campaign notice says what the campaign did to this account, and only that."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.incidents.helpers import bulk_customers

pytestmark = pytest.mark.django_db

EVERY_ACCOUNT = ("every account", "alle Konten", "aller Konten")
NOTHING_ELSE = {
    "en": "signed it out on every device. Nothing else on your account was changed.",
    "de": "auf allen Geräten abgemeldet. Sonst wurde an Ihrem Konto nichts geändert.",
}


def revoke(*args: str) -> dict:
    out = StringIO()
    call_command("revoke_2fa", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _campaign_over(
    tmp_path: Path, users: list[User], *extra: str, capture, language: str = "en"
) -> None:
    listed = tmp_path / "phished.txt"
    listed.write_text("".join(f"{user.pk}\n" for user in users))
    User.objects.filter(pk__in=[u.pk for u in users]).update(language=language)
    with capture(execute=True):
        revoke("--users", str(listed), "--reason", "Phished customers", *extra)


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_campaign_over_some_accounts_does_not_say_every_account_and_tells_the_sign_out(
    language, tmp_path, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """A campaign over a list of phished customers is not a reset of every account, and it
    signed each of them out everywhere: the email and the text say what happened to this
    account, in its language, and no more."""
    phished, untouched = bulk_customers(2)
    User.objects.filter(pk=phished.pk).update(phone="+4915112340001")
    _campaign_over(
        tmp_path, [phished], capture=django_capture_on_commit_callbacks, language=language
    )

    assert [m.to for m in mailoutbox] == [[phished.email]]
    [mail] = mailoutbox
    [text] = sms_outbox
    html = str(mail.alternatives[0][0])
    for body in (mail.subject, mail.body, html, text.body):
        assert not any(claim in body for claim in EVERY_ACCOUNT), body
    assert NOTHING_ELSE[language] in mail.body and NOTHING_ELSE[language] in html
    assert ("signed it out" if language == "en" else "abgemeldet") in text.body
    assert User.objects.get(pk=untouched.pk).reenrolment_required is False


def test_a_campaign_that_keeps_passkeys_says_they_still_work(
    tmp_path, mailoutbox, django_capture_on_commit_callbacks
):
    """`--factors totp,backup` leaves passkeys, and a customer with one is not asked to set
    up an app at the next sign-in: the notice says a passkey still signs in."""
    [customer] = bulk_customers(1)
    _campaign_over(
        tmp_path, [customer], "--factors", "totp,backup", capture=django_capture_on_commit_callbacks
    )

    [mail] = mailoutbox
    assert "If your account has a passkey, it still works" in mail.body
    assert "passkeys on your account were removed" not in mail.body


def test_a_campaign_that_removes_passkeys_says_so(
    tmp_path, mailoutbox, django_capture_on_commit_callbacks
):
    """A campaign over every factor removed the passkeys too: the notice does not let the
    customer count on one."""
    [customer] = bulk_customers(1)
    _campaign_over(tmp_path, [customer], capture=django_capture_on_commit_callbacks)

    [mail] = mailoutbox
    assert "Any passkeys on your account were removed as well." in mail.body
    assert "it still works" not in mail.body
