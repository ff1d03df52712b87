"""Campaign notices by SMS: the masked login email, no link, once per user, within the budget."""

from __future__ import annotations

import json
import signal
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from accounts.models import RevocationCampaign, User
from accounts.services.revocation import CAMPAIGN_TEMPLATE, SMS_OVER_BUDGET
from notifications.models import Notification
from notifications.sms.budget import sms_budget_left
from tests.incidents.helpers import (
    Worker,
    bulk_customers,
    inbox_files,
    revoke_2fa_process,
    wait_for,
)
from tests.incidents.test_faults import deliver_everything, sends_in, with_phones

SMS, EMAIL = Notification.Channel.SMS, Notification.Channel.EMAIL


def revoke(*args: str) -> dict:
    out = StringIO()
    call_command("revoke_2fa", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_the_campaign_text_names_the_masked_login_email_in_the_users_language(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """Each customer with a phone gets one text, in their language, naming their login email
    masked and carrying no link; a customer without a phone gets the email alone."""
    john, anna, nophone = bulk_customers(3)
    User.objects.filter(pk=john.pk).update(email="john@gmail.com", phone="+4915112340001")
    User.objects.filter(pk=anna.pk).update(
        email="anna.schmidt@web.de", phone="+4915112340002", language="de"
    )

    with django_capture_on_commit_callbacks(execute=True):
        revoke("--all", "--reason", "Authenticator seed leak")

    texts = {message.to: message for message in sms_outbox}
    assert sorted(texts) == ["+4915112340001", "+4915112340002"]
    english, german = texts["+4915112340001"].body, texts["+4915112340002"].body
    assert "Your account signs in with j***n@g***.com" in english
    assert "Sie melden sich mit a***t@w***.de an" in german
    for body in (english, german):
        assert "http" not in body and "www." not in body
        assert "john@gmail.com" not in body and "anna.schmidt@web.de" not in body
    rows = Notification.objects.filter(template_key=CAMPAIGN_TEMPLATE)
    assert Counter(rows.values_list("channel", flat=True)) == {EMAIL: 3, SMS: 2}
    for row in rows.filter(channel=SMS):
        assert row.reference in texts[row.recipient].body
        assert row.status == Notification.Status.SENT
        assert row.security_event is not None
        assert row.security_event.account_id == row.account_id
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        ["john@gmail.com", "anna.schmidt@web.de", nophone.email]
    )


@pytest.mark.django_db
def test_the_database_refuses_a_second_campaign_text_for_one_user():
    """One SMS per user and campaign is a constraint, whatever the code does."""
    [user] = with_phones(bulk_customers(1))
    assert user.phone is not None
    revoke("--all", "--reason", "drill")
    text = Notification.objects.get(channel=SMS)
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            reference="AAAA-BBBB-CCCC",
            channel=SMS,
            recipient=user.phone,
            account_id=user.pk,
            template_key=CAMPAIGN_TEMPLATE,
            idempotency_key="another",
            campaign_id=text.campaign_id,
            security_event_id=text.security_event_id,
        )


@pytest.mark.django_db
def test_campaign_texts_spend_the_daily_sms_budget_and_wait_beyond_it(
    settings, client, sms_outbox, django_capture_on_commit_callbacks
):
    """The campaign draws on the same per-country budget as the public forms: within it the
    texts go, beyond it they are held for an operator; the public forms then find it spent."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "recover_sms_country": "3/d/key",
    }
    with_phones(bulk_customers(5))
    assert sms_budget_left(country_code=49) == 3

    with django_capture_on_commit_callbacks(execute=True):
        summary = revoke("--all", "--reason", "drill", "--batch-size", "2")

    assert summary["revoked_now"] == 5
    texts = Notification.objects.filter(channel=SMS)
    assert Counter(texts.values_list("status", flat=True)) == {"sent": 3, "held": 2}
    assert set(texts.filter(status="held").values_list("last_error", flat=True)) == {
        SMS_OVER_BUDGET
    }
    assert len(sms_outbox) == 3
    assert sms_budget_left(country_code=49) == 0
    response = client.post("/recover/email/", {"phone": "+4915112349999"})
    assert response.status_code == 429, "the campaign spent the budget the forms use"

    status = StringIO()
    call_command("notifications", "status", stdout=status)
    assert "OVER BUDGET: 2 campaign texts" in status.getvalue()
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications", "release", "--type", CAMPAIGN_TEMPLATE, stdout=out)
    assert "Released 2" in out.getvalue()
    assert len(sms_outbox) == 5
    assert len({message.to for message in sms_outbox}) == 5


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_killed_and_resumed_campaign_texts_every_user_exactly_once(
    db, broker, dev_inbox_dir, tmp_path
):
    """SIGKILL to a real `manage.py revoke_2fa` mid-campaign, then `--resume`, with a real
    Celery worker delivering: every customer with a phone gets exactly one campaign text
    (one row by constraint, one hand-over to the gateway), and nobody gets two."""
    total, batch = 1000, 25
    users = with_phones(bulk_customers(total))
    phones = {user.phone for user in users if user.phone is not None}
    assert len(phones) == total
    name = "campaign_sms_kill_test"
    worker = Worker(broker_url=broker.url, inbox_dir=dev_inbox_dir, log_path=tmp_path / "w.log")
    try:
        worker.start()
        first = revoke_2fa_process(
            "--all",
            "--reason",
            "Authenticator seed leak",
            "--confirm",
            str(total),
            "--batch-size",
            str(batch),
            broker_url=broker.url,
            inbox_dir=dev_inbox_dir,
            application_name=name,
        )
        texts = Notification.objects.filter(channel=SMS, campaign__isnull=False)
        try:
            assert wait_for(lambda: texts.count() > 0 or first.poll() is not None, timeout=90)
        finally:
            first.send_signal(signal.SIGKILL)
            _out, err = first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL, err
        done_before = texts.count()
        print(f"\nrevoke_2fa killed after {done_before} of {total} campaign texts were queued")
        assert 0 < done_before < total, "the kill should land mid-way"

        campaign = RevocationCampaign.objects.get()
        resumed = revoke_2fa_process(
            "--resume",
            str(campaign.pk),
            "--batch-size",
            str(batch),
            "--json",
            broker_url=broker.url,
            inbox_dir=dev_inbox_dir,
            application_name=name,
        )
        out, err = resumed.communicate(timeout=180)
        assert resumed.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["remaining"] == 0

        deliver_everything(broker.url, timeout=240)
        assert wait_for(
            lambda: len([m for m in inbox_files(dev_inbox_dir) if m["kind"] == "sms"]) >= total,
            timeout=60,
        )
    finally:
        worker.stop()

    assert Counter(texts.values_list("account_id", flat=True)) == Counter(u.pk for u in users)
    assert set(texts.values_list("status", flat=True)) == {Notification.Status.SENT}
    references = set(texts.values_list("reference", flat=True))
    at_gateway = [m for m in inbox_files(dev_inbox_dir) if m["kind"] == "sms"]
    assert sorted(m["to"] for m in at_gateway) == sorted(phones)
    handed_over = sends_in(worker.log())
    assert {ref: handed_over[ref] for ref in references} == dict.fromkeys(references, 1)
