"""`notifications retract`: exactly the recipients of a batch sent in error hear so, once."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import SecurityEvent, User
from accounts.services.audit import security_event_record
from notifications.models import Notification, Retraction
from notifications.retraction import RETRACTION_TEMPLATE
from tests.factories import UserFactory
from tests.incidents.helpers import bulk_customers

pytestmark = pytest.mark.django_db

KEY = "security/password_changed"
SENT, HELD, PENDING = Notification.Status.SENT, Notification.Status.HELD, "pending"


def command(*args: str) -> str:
    out = StringIO()
    call_command("notifications", *args, stdout=out)
    return out.getvalue()


def window(minutes: int = 30) -> list[str]:
    now = timezone.now()
    return [
        "--since",
        (now - timedelta(minutes=minutes)).isoformat(),
        "--until",
        (now + timedelta(minutes=1)).isoformat(),
    ]


@pytest.fixture
def erroneous_batch(django_capture_on_commit_callbacks, mailoutbox, sms_outbox):
    """Three customers (one German) were told "your password was changed" by mistake, by email
    and SMS; a notice of the same type from yesterday and one still pending are also there."""
    customers = [
        UserFactory.create(),
        UserFactory.create(language="de"),
        UserFactory.create(phone=None),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for user in customers:
            security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    yesterday_user = UserFactory.create(phone=None)
    with django_capture_on_commit_callbacks(execute=True):
        security_event_record(user=yesterday_user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    Notification.objects.filter(account_id=yesterday_user.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    late_user = UserFactory.create(phone=None)
    with django_capture_on_commit_callbacks(execute=False):
        security_event_record(user=late_user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    originals = list(
        Notification.objects.filter(template_key=KEY, status=SENT).exclude(
            account_id=yesterday_user.pk
        )
    )
    assert len(originals) == 5  # two emails and SMS, one email alone
    mailoutbox.clear()
    sms_outbox.clear()
    return customers, originals, late_user


def test_dry_run_counts_and_writes_nothing(erroneous_batch):
    """The dry run says how many would be retracted and discarded, and changes nothing."""
    before = Notification.objects.count()
    result = json.loads(command("retract", "--type", KEY, *window(), "--dry-run", "--json"))
    assert result == {"dry_run": True, "to_retract": 5, "already_retracted": 0, "unsent": 1}
    assert Notification.objects.count() == before
    assert not Retraction.objects.exists()


def test_a_run_needs_the_exact_count(erroneous_batch):
    """Like revoke_2fa: no --confirm, or the wrong number, refuses and changes nothing."""
    before = Notification.objects.count()
    for confirm in ([], ["--confirm", "4"]):
        with pytest.raises(CommandError, match="--confirm 5"):
            command("retract", "--type", KEY, *window(), *confirm)
    assert Notification.objects.count() == before
    assert Notification.objects.filter(status=PENDING).count() == 1


def test_each_recipient_gets_one_retraction_by_the_same_channel_in_their_language(
    erroneous_batch, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """Every sent original gets exactly one "sent in error" message to the same address or
    number, in the recipient's language, quoting the original's reference and no link; the
    pending one is discarded; yesterday's is untouched; each is an audit event."""
    customers, originals, late_user = erroneous_batch
    with django_capture_on_commit_callbacks(execute=True):
        out = command("retract", "--type", KEY, *window(), "--confirm", "5")
    assert "Retracted 5 messages; discarded 1" in out

    retractions = {r.original_id: r for r in Retraction.objects.select_related("notice")}
    assert set(retractions) == {o.pk for o in originals}
    by_reference = {m.extra_headers["X-Recovery-Desk-Reference"]: m for m in mailoutbox}
    by_reference |= {s.reference: s for s in sms_outbox}
    assert len(by_reference) == 5
    german = customers[1]
    for original in originals:
        notice = retractions[original.pk].notice
        assert (notice.channel, notice.recipient) == (original.channel, original.recipient)
        assert notice.template_key == RETRACTION_TEMPLATE and notice.status == SENT
        message = by_reference[notice.reference]
        body = message.body
        assert original.reference in body and notice.reference in body
        assert "http" not in body.lower()
        if original.account_id == german.pk:
            assert "irrtümlich versandt" in body
        else:
            assert "sent in error" in body
    assert {m.subject for m in mailoutbox} == {
        "[Recovery Desk] Sent in error: nothing changed on your account",
        "[Recovery Desk] Irrtümlich versandt: an Ihrem Konto hat sich nichts geändert",
    }
    assert Notification.objects.get(account_id=late_user.pk).status == "discarded"
    events = SecurityEvent.objects.filter(type=SecurityEvent.Type.NOTICE_RETRACTED)
    assert Counter(events.values_list("account_id", flat=True)) == Counter(
        o.account_id for o in originals
    )
    assert not Notification.objects.filter(
        template_key=RETRACTION_TEMPLATE, account_id__in=[late_user.pk]
    ).exists()


def test_retracting_twice_sends_nobody_a_second_message(
    erroneous_batch, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """A second run finds nothing left; the database refuses a second retraction anyway."""
    with django_capture_on_commit_callbacks(execute=True):
        command("retract", "--type", KEY, *window(), "--confirm", "5")
    sent = len(mailoutbox) + len(sms_outbox)
    with django_capture_on_commit_callbacks(execute=True):
        again = command("retract", "--type", KEY, *window(), "--confirm", "0")
    assert "Nothing to retract" in again
    assert len(mailoutbox) + len(sms_outbox) == sent == 5
    assert Retraction.objects.count() == 5
    first = Retraction.objects.first()
    assert first is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Retraction.objects.create(
            original=first.original, notice=first.notice, operator="again", batch={}
        )


def test_the_message_check_answers_sent_in_error_with_when(
    erroneous_batch, client, django_capture_on_commit_callbacks
):
    """The verify page says "sent in error" and when for a retracted reference, in English
    and German; the retraction itself and other messages stay "genuine"."""
    _customers, originals, _late = erroneous_batch
    with django_capture_on_commit_callbacks(execute=True):
        command("retract", "--type", KEY, *window(), "--confirm", "5")
    original = originals[0]
    retraction = Retraction.objects.get(original=original)

    page = client.post("/recover/verify-message/", {"reference": original.reference})
    text = page.content.decode()
    assert page.status_code == 200
    match = re.search(r'id="verdict">(.*?)</p>', text, re.S)
    assert match, text
    verdict = match.group(1)
    assert verdict.startswith("Sent in error")
    assert "Nothing changed on your account" in verdict
    assert f"{retraction.retracted_at:%Y}" in verdict

    german = client.post(
        "/recover/verify-message/",
        {"reference": original.reference},
        HTTP_ACCEPT_LANGUAGE="de",
    ).content.decode()
    assert "Irrtümlich versandt" in german

    own = client.post("/recover/verify-message/", {"reference": retraction.notice.reference})
    assert "Genuine: we sent this" in own.content.decode()


def test_a_campaign_is_retracted_by_email_and_by_sms(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """`--campaign N` retracts the campaign's emails and texts, each by its own channel."""
    users = bulk_customers(3)
    User.objects.filter(pk=users[0].pk).update(phone="+4915112345000")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("revoke_2fa", "--all", "--reason", "drill", stdout=StringIO())
    notice = Notification.objects.filter(campaign__isnull=False).first()
    assert notice is not None
    campaign_id = notice.campaign_id
    mailoutbox.clear()
    sms_outbox.clear()

    dry = json.loads(command("retract", "--campaign", str(campaign_id), "--dry-run", "--json"))
    assert dry["to_retract"] == 4
    with django_capture_on_commit_callbacks(execute=True):
        command("retract", "--campaign", str(campaign_id), "--confirm", "4")
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in users)
    assert [s.to for s in sms_outbox] == ["+4915112345000"]


def test_bad_selections_are_refused_with_a_clear_message(erroneous_batch):
    """A type without a window, a window backwards, both selections, an unknown type."""
    with pytest.raises(CommandError, match="--campaign N, or --type T"):
        command("retract", "--type", KEY)
    now = timezone.now()
    with pytest.raises(CommandError, match="end after it starts"):
        command(
            "retract",
            "--type",
            KEY,
            "--since",
            now.isoformat(),
            "--until",
            (now - timedelta(hours=1)).isoformat(),
            "--dry-run",
        )
    with pytest.raises(CommandError, match="No campaign 424242"):
        command("retract", "--campaign", "424242", "--dry-run")
    with pytest.raises(CommandError, match="not both"):
        command("retract", "--campaign", "1", "--type", KEY, *window(), "--dry-run")
    with pytest.raises(CommandError, match="security/password_changed"):
        command("retract", "--type", "security/pasword_changed", *window(), "--dry-run")
    with pytest.raises(CommandError, match="Not a date"):
        command("retract", "--type", KEY, "--since", "yesterday", "--until", "now")


def test_release_with_an_unknown_type_fails_listing_the_valid_ones():
    """A typo in `release --type` is an error that lists the types, not "released 0"."""
    for verb in ("release", "discard"):
        with pytest.raises(CommandError) as refused:
            command(verb, "--type", "security/two_factor_enabeld")
        assert "security/two_factor_enabled" in str(refused.value)
        assert "accounts/campaign_revocation" in str(refused.value)
