"""What self-service tells the contacts on file: every start notice names the proofs really
used, in English and German, and every code sent is a security event with a masked target."""

from __future__ import annotations

import re

import pytest

from accounts.models import SecurityEvent
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    NEW_EMAIL,
    customer_account,
    last_code,
    lost_2fa,
    new_email,
)

pytestmark = pytest.mark.django_db

START_NOTICES = {
    # language, first proof -> words the SMS and the email must carry, and must not
    ("en", "password"): (
        ["Someone entered your password", "Change your password"],
        ["entered the password of your account", "change your password now"],
        ["backup code"],
    ),
    ("en", "backup_code"): (
        ["used one of your backup codes", "Contact support"],
        ["used one of your backup codes", "contact support"],
        ["change your password", "entered"],
    ),
    ("de", "password"): (
        ["Jemand hat Ihr Passwort eingegeben", "Ändern Sie Ihr Passwort"],
        ["das Passwort Ihres Kontos eingegeben", "ändern Sie jetzt Ihr Passwort"],
        ["backup-code"],
    ),
    ("de", "backup_code"): (
        ["einen Ihrer Backup-Codes verwendet", "Wenden Sie sich an den Support"],
        ["einen Ihrer Backup-Codes verwendet", "wenden Sie sich an den Support"],
        ["ändern sie", "passwort eingegeben"],
    ),
}


@pytest.mark.parametrize(("language", "first"), list(START_NOTICES))
def test_the_start_notice_names_the_proof_that_was_used(
    language, first, capture, sms_outbox, mailoutbox
):
    """A backup code never leads to "change your password" (the password was not used), and
    a password never to "backup code"; both by SMS and by email, in the user's language."""
    _user, codes = customer_account(language=language)
    secret = {"password": PASSWORD} if first == "password" else {"backup_code": codes[0]}
    assert lost_2fa(capture).start(identifier=ACCOUNT_EMAIL, **secret).status_code == 302

    sms_words, email_words, never = START_NOTICES[(language, first)]
    (sms,) = [m for m in sms_outbox if m.to == ACCOUNT_PHONE]
    (email,) = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
    for word in sms_words:
        assert word in sms.body, sms.body
    for word in email_words:
        assert word in email.body, email.body
    for words in never:
        assert words not in sms.body.lower(), sms.body
        assert words not in email.body.lower(), email.body


def test_sending_a_code_records_an_event_with_the_masked_target_and_no_code(
    capture, sms_outbox, mailoutbox
):
    """/recover/lost-2fa/: each code sent (phone, then email) is one event naming the
    channel and the masked contact; the code itself is nowhere in the audit."""
    user, _codes = customer_account()
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    assert path.send("phone").status_code == 302
    assert path.send("email").status_code == 302
    codes = [
        last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS),
        last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL),
    ]

    events = list(
        SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_CODE_SENT
        ).order_by("seq")
    )
    assert [(e.details["channel"], e.details["to"]) for e in events] == [
        ("phone", "+49 ••• ••• 32"),
        ("email", "h***r@e***.org"),
    ]
    assert all(e.details["attempt"] == path.attempt.pk for e in events)
    for event in events:
        for code in codes:
            assert code not in str(event.details)
        assert ACCOUNT_PHONE not in str(event.details) and ACCOUNT_EMAIL not in str(event.details)


def test_the_new_email_path_records_both_codes_it_sends(capture, sms_outbox, mailoutbox):
    """/recover/new-email/ sends a code to the phone on file and one to the new address at
    the start: two events, masked."""
    user, _codes = customer_account()
    path = new_email(capture)
    assert (
        path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NEW_EMAIL).status_code
        == 302
    )
    sent = SecurityEvent.objects.filter(
        account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_CODE_SENT
    ).order_by("seq")
    assert [(e.details["channel"], e.details["to"]) for e in sent] == [
        ("phone", "+49 ••• ••• 32"),
        ("new_email", "h***n@e***.net"),
    ]


def test_a_refused_send_records_nothing(capture, sms_outbox):
    """A send after the proofs are complete sends nothing and records nothing."""
    user, _codes = customer_account()
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    path.send("phone")
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    before = len(sms_outbox)
    path.send("phone")
    assert len(sms_outbox) == before
    assert (
        SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_CODE_SENT
        ).count()
        == 1
    )


SIX_DIGITS = re.compile(r"\b(\d{6})\b")
WAIT_NOTICE_PROOFS = {
    # language, first proof, code channel -> the proofs the wait notice must name
    ("en", "password", "phone"): "Your password and a code sent to your phone were proven.",
    ("en", "backup_code", "email"): (
        "One of your backup codes and a code sent to your email address were proven."
    ),
    ("de", "backup_code", "phone"): (
        "Nachgewiesen wurden einer Ihrer Backup-Codes und ein Code an Ihr Telefon."
    ),
}


@pytest.mark.parametrize(("language", "first", "channel"), list(WAIT_NOTICE_PROOFS))
def test_the_wait_notice_names_the_two_proofs_that_were_given(
    language, first, channel, capture, sms_outbox, mailoutbox
):
    """The notice that starts the wait tells the owner which two secrets the asker holds
    (the password or a backup code, the phone or the inbox), so they know what leaked."""
    _user, codes = customer_account(language=language)
    secret = {"password": PASSWORD} if first == "password" else {"backup_code": codes[0]}
    path = lost_2fa(capture)
    assert path.start(identifier=ACCOUNT_EMAIL, **secret).status_code == 302
    path.send(channel)
    if channel == "phone":
        code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=SIX_DIGITS)
    else:
        code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=SIX_DIGITS)
    assert path.verify(channel, code).status_code == 302

    notice = mailoutbox[-1]
    assert notice.to == [ACCOUNT_EMAIL] and "/recover/stop/" in notice.body
    assert WAIT_NOTICE_PROOFS[(language, first, channel)] in notice.body
