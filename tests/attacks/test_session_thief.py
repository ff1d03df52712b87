"""The session thief: holds a signed-in, 2FA-verified session cookie of the customer, nothing
else (not the password, not the authenticator, not the inbox, not the phone).

With the cookie alone the thief cannot change the login email, the phone or a factor:
allauth's email page is closed, a new password needs the current one, new backup codes
need a current authenticator code, a second authenticator cannot be set up, and the
admin is out of reach. Every supported change needs a second factor, a wait and notices
to every contact, and none of them starts from a session alone.
"""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory, contacts_and_factors
from tests.support.conftest import customer_client

pytestmark = pytest.mark.django_db

ACCOUNT_EMAIL = "satoshi.nakamoto@gmx.net"
ACCOUNT_PHONE = "+4915123456789"
THIEF_EMAIL = "drainer@evil.example"
THIEF_PHONE = "+4915199999999"


def security_changes_recorded(user: User) -> list[str]:
    return list(
        SecurityEvent.objects.filter(account_id=user.pk)
        .exclude(type__in=[SecurityEvent.Type.SIGNED_UP, SecurityEvent.Type.TWO_FACTOR_ENABLED])
        .values_list("type", flat=True)
    )


@pytest.fixture
def account_and_codes() -> tuple[User, list[str]]:
    """The victim: 2FA on, backup codes, phone and email on file; and their backup codes."""
    user = UserFactory.create(email=ACCOUNT_EMAIL, phone=ACCOUNT_PHONE)
    _device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, codes


@pytest.fixture
def account(account_and_codes) -> User:
    """The victim."""
    return account_and_codes[0]


@pytest.fixture
def account_backup_codes(account_and_codes) -> list[str]:
    """The victim's backup codes in plain text (the database keeps only their hashes)."""
    return account_and_codes[1]


@pytest.fixture
def thief(account) -> Client:
    """The stolen cookie: a session that passed the password and the second factor."""
    return customer_client(account)


def test_allauth_email_page_is_closed_to_adding_and_making_primary(thief, account):
    """/accounts/email/ shows the login email masked and where a change is made; adding an
    address, making one primary or removing one is answered 403 and changes nothing."""
    before = contacts_and_factors(account)

    page = thief.get(reverse("account_email"))
    html = page.content.decode()
    assert page.status_code == 200
    assert ACCOUNT_EMAIL not in html and "s***o@g***.net" in html
    assert reverse("recover_help") in html

    for action in ("action_add", "action_primary", "action_remove", "action_send"):
        refused = thief.post(reverse("account_email"), {action: "", "email": THIEF_EMAIL})
        assert refused.status_code == 403
    refused = thief.post(reverse("account_email"), {"action_primary": "", "email": ACCOUNT_EMAIL})
    assert refused.status_code == 403

    assert contacts_and_factors(account) == before
    assert security_changes_recorded(account) == []
    assert not Notification.objects.filter(recipient=THIEF_EMAIL).exists()


def test_a_second_address_already_on_file_cannot_be_confirmed(thief, account):
    """An address that is not the login email (left from before the page was closed) is
    never confirmed: a confirmed second address would sign in and could become primary."""
    address = EmailAddress.objects.create(user=account, email=THIEF_EMAIL, verified=False)
    key = EmailConfirmationHMAC(address).key

    thief.post(reverse("account_confirm_email", args=[key]))

    address.refresh_from_db()
    assert address.verified is False and address.primary is False
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL


def test_a_new_password_needs_the_current_one(thief, account):
    """allauth's password change asks for the current password, which the thief lacks; the
    set-password page sends an account with a password there too."""
    before = contacts_and_factors(account)

    refused = thief.post(
        reverse("account_change_password"),
        {
            "oldpassword": "a-guess-1234",
            "password1": "thief-owns-it-99",
            "password2": "thief-owns-it-99",
        },
    )
    assert refused.status_code == 200
    assert "current password" in refused.content.decode().lower()

    set_page = thief.post(
        reverse("account_set_password"),
        {"password1": "thief-owns-it-99", "password2": "thief-owns-it-99"},
    )
    assert set_page.status_code == 302
    assert set_page["Location"] == reverse("account_change_password")

    assert contacts_and_factors(account) == before
    assert User.objects.get(pk=account.pk).check_password(PASSWORD)


def test_new_backup_codes_need_a_current_authenticator_code(thief, account, account_backup_codes):
    """Regenerating backup codes (a new factor) asks for a code from the authenticator app."""
    before = contacts_and_factors(account)

    for code in ("", "000000", account_backup_codes[0]):
        response = thief.post(reverse("backup_codes_regenerate"), {"code": code}, follow=True)
        assert "Backup codes were not changed" in response.content.decode()

    assert contacts_and_factors(account) == before
    assert security_changes_recorded(account) == []


def test_no_second_authenticator_can_be_set_up(thief, account):
    """The setup page refuses an account that has an authenticator: the thief cannot add
    or swap in an app of their own, by page or by a posted code."""
    before = contacts_and_factors(account)

    assert thief.get(reverse("two_factor_setup")).status_code == 302
    assert thief.post(reverse("two_factor_setup"), {"code": "123456"}).status_code == 302
    assert thief.get(reverse("recover_2fa_setup")).status_code == 302

    assert contacts_and_factors(account) == before
    assert not TOTPDevice.objects.filter(user=account, confirmed=False).exists()


def test_the_admin_is_out_of_reach(thief, account):
    """A customer's session opens no staff page: the admin sends it to the staff sign-in."""
    before = contacts_and_factors(account)

    response = thief.post(
        f"/admin/accounts/user/{account.pk}/change/",
        {"email": THIEF_EMAIL, "phone": THIEF_PHONE, "_save": "Save"},
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert contacts_and_factors(account) == before
