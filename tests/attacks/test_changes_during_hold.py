"""During a security hold every security change is refused: the customer's pages, the admin
and the services alike; re-enrolment never shortens a hold; only a supervisor lifts one.

The attacker here got in through a recovery (or holds the customer's session right after
one) and wants to lock the owner out before the owner notices: a new password, new backup
codes, another authenticator, another login email or phone.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.adapter import AccountAdapter
from accounts.models import BackupCode, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.holds import (
    HoldLiftRefused,
    SecurityHoldActive,
    security_hold_extend,
    security_hold_lift,
)
from accounts.services.two_factor import (
    backup_codes_regenerate,
    totp_device_confirm,
    totp_device_start,
    two_factor_provision,
)
from accounts.services.users import user_phone_change
from notifications.models import Notification
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from tests.factories import PASSWORD, UserFactory, totp_code
from tests.support.conftest import admin_client, customer_client, fresh_code, staff_member

pytestmark = pytest.mark.django_db

EMAIL = "hal.finney@posteo.de"
PHONE = "+4915123456780"
NEW_PASSWORD = "a-brand-new-passphrase-7"
BACKUP_CODE = re.compile(r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>")


@pytest.fixture
def held() -> User:
    """A customer with 2FA, on a 48-hour hold (as after an agent's recovery)."""
    user = UserFactory.create(email=EMAIL, phone=PHONE)
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    security_hold_extend(user=user, hours=48)
    return user


def factors(user: User) -> tuple:
    user = User.objects.get(pk=user.pk)
    return (
        user.email,
        user.phone,
        user.password,
        sorted(TOTPDevice.objects.filter(user=user).values_list("pk", "key", "confirmed")),
        sorted(BackupCode.objects.filter(device__user=user).values_list("code_hash", flat=True)),
    )


def assert_hold_page(response, *, until_text: str = "Security changes are on hold") -> str:
    html = response.content.decode()
    assert response.status_code == 403
    assert until_text in html
    assert "UTC" in html
    return html


def test_password_change_is_refused_with_the_hold_page_even_with_the_current_password(held):
    """The page itself answers 403 with the hold's end in UTC; a change posted with the
    right current password is refused as well and the password stays."""
    client = customer_client(held)
    before = factors(held)

    assert_hold_page(client.get(reverse("account_change_password")))
    assert_hold_page(
        client.post(
            reverse("account_change_password"),
            {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    )
    assert_hold_page(client.get(reverse("account_set_password")))

    assert factors(held) == before
    assert not SecurityEvent.objects.filter(account_id=held.pk, type="password_changed").exists()


def test_the_hold_page_speaks_german_with_the_end_in_utc(held):
    """A German page says so in German, with the end in UTC and how long is left."""
    client = customer_client(held)
    client.cookies.load({"django_language": "de"})

    html = assert_hold_page(
        client.get(reverse("account_change_password"), HTTP_ACCEPT_LANGUAGE="de"),
        until_text="Sicherheitsänderungen sind gesperrt",
    )
    assert "UTC (in 1" in html or "UTC (in 2" in html


def test_a_password_reset_link_cannot_set_a_password_during_a_hold(client, held):
    """A reset link (someone who reads the inbox) sets no password while the hold runs."""
    key = default_token_generator.make_token(held)
    url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(held), "key": key},
    )
    form_page = client.get(url, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else url,
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert_hold_page(response)
    assert User.objects.get(pk=held.pk).check_password(PASSWORD)


def test_new_backup_codes_are_refused_even_with_a_valid_authenticator_code(held):
    """Backup codes are a factor: with a correct current TOTP code, still the hold page."""
    client = customer_client(held)
    before = factors(held)
    device = TOTPDevice.objects.get(user=held, confirmed=True)

    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        response = client.post(reverse("backup_codes_regenerate"), {"code": totp_code(device)})

    assert_hold_page(response)
    assert factors(held) == before


def test_the_security_page_shows_the_hold_with_its_end(held):
    """The security page says what waits and until when, in UTC."""
    client = customer_client(held)

    html = client.get(reverse("account_security")).content.decode()

    assert "Security hold until" in html and "UTC" in html


def test_the_services_refuse_whoever_calls_them(held):
    """New backup codes, a replacement authenticator, a new password through allauth and a
    new email or phone through the staff service: each raises SecurityHoldActive."""
    before = factors(held)
    device = TOTPDevice.objects.get(user=held, confirmed=True)

    with pytest.raises(SecurityHoldActive):
        backup_codes_regenerate(user=held, code=totp_code(device), context=AuditContext())
    replacement = totp_device_start(user=held)
    with pytest.raises(SecurityHoldActive):
        totp_device_confirm(
            user=held,
            device_id=replacement.pk,
            code=totp_code(replacement),
            context=AuditContext(),
        )
    replacement.delete()
    with pytest.raises(SecurityHoldActive):
        AccountAdapter().set_password(held, NEW_PASSWORD)
    with pytest.raises(SecurityHoldActive):
        user_phone_change(user=held, new_phone="+4915123456781", context=AuditContext())

    assert factors(held) == before


def test_the_admin_changes_no_contact_but_staff_flags_are_no_security_change(held):
    """The admin has no way to a new email or phone (posted values change nothing, hold or
    not); deactivating the account (a staff decision, not the customer's security change)
    still saves during the hold."""
    root = UserFactory.create(
        email="root@desk.example", phone=None, is_staff=True, is_superuser=True
    )
    two_factor_provision(user=root, context=AuditContext(), notify=False)
    client = admin_client(root)
    url = f"/admin/accounts/user/{held.pk}/change/"

    saved = client.post(
        url,
        {
            "language": held.language,
            "email": "someone.else@example.org",
            "phone": "0151 2345 6781",
            "_save": "Save",
        },
    )

    assert saved.status_code == 302
    stored = User.objects.get(pk=held.pk)
    assert (stored.email, stored.phone) == (EMAIL, PHONE)
    assert stored.is_active is False


def test_re_enrolment_through_the_pages_keeps_the_longer_hold(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """An agent's 48-hour recovery hold, then the customer re-enrols (24-hour hold) on
    /recover/2fa/: the hold still ends at the agent's end."""
    user = UserFactory.create(email="revoked@example.com", reenrolment_required=True)
    agent_end = security_hold_extend(user=user, hours=48)
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("recover_2fa"), {"action": "send"})
    sent = re.search(r"again is (\d{6})\b", mailoutbox[-1].body)
    assert sent, mailoutbox[-1].body
    code = sent.group(1)
    assert (
        client.post(reverse("recover_2fa"), {"action": "verify", "code": code}).status_code == 302
    )
    client.get(reverse("recover_2fa_setup"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    done = client.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})

    assert done.status_code == 200 and len(BACKUP_CODE.findall(done.content.decode())) == 10
    user.refresh_from_db()
    assert user.reenrolment_required is False
    assert user.security_hold_until == agent_end


def test_a_supervisor_lifts_a_hold_with_a_reason_audited_and_notified(
    held, django_capture_on_commit_callbacks
):
    """The account's admin page (read-only for a supervisor, contacts masked) links the lift
    page; it asks for a reason; with one, the hold ends, the supervisor and the reason are
    in the audit, and every contact on file is told."""
    supervisor = staff_member("super.sue@desk.example", SUPERVISORS_GROUP)
    client = admin_client(supervisor)
    change_page = client.get(f"/admin/accounts/user/{held.pk}/change/").content.decode()
    lift_url = reverse("admin:accounts_user_lift_hold", args=[held.pk])
    assert lift_url in change_page
    assert EMAIL not in change_page and PHONE not in change_page

    no_reason = client.post(lift_url, {"reason": "  "})
    assert no_reason.status_code == 400
    assert User.objects.get(pk=held.pk).on_security_hold

    with django_capture_on_commit_callbacks(execute=True):
        lifted = client.post(
            lift_url,
            {
                "reason": "Owner verified by video call, ticket 4711",
                "otp_code": fresh_code(supervisor),
            },
        )

    assert lifted.status_code == 302
    assert User.objects.get(pk=held.pk).security_hold_until is None
    event = SecurityEvent.objects.get(account_id=held.pk, type="security_hold_lifted")
    assert event.actor_id == supervisor.pk
    assert event.details["reason"] == "Owner verified by video call, ticket 4711"
    notices = Notification.objects.filter(security_event=event)
    assert {(n.channel, n.recipient) for n in notices} == {("email", EMAIL), ("sms", PHONE)}

    customer = customer_client(held)
    assert customer.get(reverse("account_change_password")).status_code == 200


def test_an_agent_cannot_lift_a_hold(held):
    """The lift page and the service check the supervisor role on the server."""
    agent = staff_member("agent.anna@desk.example", AGENTS_GROUP)
    client = admin_client(agent)
    lift_url = reverse("admin:accounts_user_lift_hold", args=[held.pk])

    assert client.post(lift_url, {"reason": "customer asked nicely"}).status_code == 403
    with pytest.raises(HoldLiftRefused):
        security_hold_lift(user=held, supervisor=agent, reason="customer asked nicely")
    customer_self = User.objects.get(pk=held.pk)
    with pytest.raises(HoldLiftRefused):
        security_hold_lift(user=held, supervisor=customer_self, reason="let me out")

    assert User.objects.get(pk=held.pk).on_security_hold
    assert not SecurityEvent.objects.filter(type="security_hold_lifted").exists()
    assert Group.objects.filter(name=SUPERVISORS_GROUP).exists()


RESET_LINK = re.compile(r"/accounts/password/reset/key/")


def test_a_reset_asked_for_during_a_hold_sends_no_link_but_the_holds_end(
    client, held, capture, mailoutbox
):
    """The inbox gets no link the hold would refuse: the message says until when instead."""
    with capture():
        response = client.post(reverse("account_reset_password"), {"email": EMAIL})

    assert response.status_code == 302
    (message,) = [m for m in mailoutbox if m.to == [EMAIL]]
    assert not RESET_LINK.search(message.body)
    assert "cannot be changed until the hold ends" in message.body
    assert re.search(r"UTC \(in [12]\sday", message.body)

    User.objects.filter(pk=held.pk).update(security_hold_until=None)
    mailoutbox.clear()
    with capture():
        client.post(reverse("account_reset_password"), {"email": EMAIL})
    (message,) = [m for m in mailoutbox if m.to == [EMAIL]]
    assert RESET_LINK.search(message.body)
