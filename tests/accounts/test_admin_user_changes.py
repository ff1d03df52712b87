"""Account edits in the admin go through the services; the login email and phone are not edits."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory, admin_sign_in

pytestmark = pytest.mark.django_db

CUSTOMER_EMAIL = "hal.finney@posteo.de"
CUSTOMER_PHONE = "+4915123456780"


@pytest.fixture
def superuser() -> User:
    user = UserFactory.create(
        email="root@desk.example", phone=None, is_staff=True, is_superuser=True
    )
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user


@pytest.fixture
def staff_client(superuser) -> Client:
    """A superuser signed in to the admin with password and a verified authenticator code."""
    client = Client()
    response = admin_sign_in(client, superuser)
    assert response.status_code == 302
    return client


@pytest.fixture
def customer() -> User:
    return UserFactory.create(email=CUSTOMER_EMAIL, phone=CUSTOMER_PHONE, language="de")


def change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def save_in_admin(client: Client, user: User, **changes: Any):
    """Submit the admin's change form for `user` as shown, with `changes` typed over it."""
    assert client.get(change_url(user)).status_code == 200
    data: dict[str, Any] = {
        "email": user.email,
        "phone": user.phone or "",
        "language": user.language,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [group.pk for group in user.groups.all()],
        "_save": "Save",
        **changes,
    }
    # An unticked checkbox is simply missing from a browser's POST.
    form = {key: value for key, value in data.items() if value is not False}
    form = {key: "on" if value is True else value for key, value in form.items()}
    return client.post(change_url(user), form)


def events_of(user: User, type: SecurityEvent.Type) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(account_id=user.pk, type=type))


def test_the_admin_offers_no_way_to_change_a_customers_email_or_phone(staff_client, customer):
    """The login email and phone change only through the recovery policy: the admin page
    has no input for them and shows them masked, and values posted for them change nothing."""
    page = staff_client.get(change_url(customer)).content.decode()
    assert 'name="email"' not in page and 'name="phone"' not in page
    assert CUSTOMER_EMAIL not in page and CUSTOMER_PHONE not in page

    response = save_in_admin(
        staff_client, customer, email="someone.else@example.org", phone="0151 2345 6781"
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.phone) == (CUSTOMER_EMAIL, CUSTOMER_PHONE)
    assert list(EmailAddress.objects.filter(user=customer).values_list("email", flat=True)) == [
        CUSTOMER_EMAIL
    ]
    assert not SecurityEvent.objects.filter(
        account_id=customer.pk,
        type__in=[SecurityEvent.Type.EMAIL_CHANGED, SecurityEvent.Type.PHONE_CHANGED],
    ).exists()


def test_staff_role_changes_are_recorded_without_a_customer_notice(
    staff_client, superuser, customer
):
    """Making an account staff and putting it in a group records one event that says what
    changed (flags before and after, groups added); taking the role away records another."""
    agents, _created = Group.objects.get_or_create(name="Support agents")

    response = save_in_admin(staff_client, customer, is_staff=True, groups=[agents.pk])

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.is_staff and list(customer.groups.all()) == [agents]
    [granted] = events_of(customer, SecurityEvent.Type.PERMISSIONS_CHANGED)
    assert granted.actor_id == superuser.pk
    assert granted.details == {
        "is_staff": [False, True],
        "groups_added": ["Support agents"],
        "groups_removed": [],
    }
    assert not Notification.objects.filter(security_event=granted).exists()

    save_in_admin(staff_client, customer, is_staff=False, groups=[])

    customer.refresh_from_db()
    assert not customer.is_staff and not customer.groups.exists()
    revoked = events_of(customer, SecurityEvent.Type.PERMISSIONS_CHANGED)[0]
    assert revoked.details == {
        "is_staff": [True, False],
        "groups_added": [],
        "groups_removed": ["Support agents"],
    }


def test_deactivating_an_account_is_recorded(staff_client, customer):
    """Taking away the right to sign in is a recorded permission change."""
    save_in_admin(staff_client, customer, is_active=False)

    customer.refresh_from_db()
    assert customer.is_active is False
    [event] = events_of(customer, SecurityEvent.Type.PERMISSIONS_CHANGED)
    assert event.details == {"is_active": [True, False]}


def test_saving_without_changes_records_nothing(staff_client, customer):
    """Saving the form as shown writes no security event and queues no notice."""
    before = SecurityEvent.objects.count(), Notification.objects.count()

    response = save_in_admin(staff_client, customer)

    assert response.status_code == 302
    assert (SecurityEvent.objects.count(), Notification.objects.count()) == before


def test_hold_and_reenrolment_are_shown_but_not_editable(staff_client, customer):
    """The hold, the re-enrolment flag and the freeze have no inputs; values posted for
    them are ignored, because only their own flows set and clear them."""
    page = staff_client.get(change_url(customer)).content.decode()
    for field in ("reenrolment_required", "security_hold_until", "frozen_at"):
        assert f'name="{field}' not in page
    assert "2FA re-enrolment required" in page and "security hold until" in page.lower()

    response = save_in_admin(
        staff_client,
        customer,
        reenrolment_required="on",
        security_hold_until_0="2030-01-01",
        security_hold_until_1="00:00:00",
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.reenrolment_required is False and customer.security_hold_until is None


def test_the_admin_cannot_set_anybodys_password(staff_client, customer):
    """The change page offers no password form and the password page is refused: only the
    account's owner sets its password, so staff never know it."""
    page = staff_client.get(change_url(customer)).content.decode()
    assert "../password/" not in page and "pbkdf2" not in page and "md5$" not in page

    refused = staff_client.post(
        f"/admin/accounts/user/{customer.pk}/password/",
        {"password1": "a-new-password-123", "password2": "a-new-password-123"},
    )

    assert refused.status_code == 403
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_adding_an_account_creates_its_verified_address_and_signup_event(staff_client, superuser):
    """An account added in the admin is created by the signup service: a primary, verified
    allauth address and a signed-up event by the staff member."""
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Agent@desk.example",
            "phone": "",
            "password1": "a-long-enough-password-1",
            "password2": "a-long-enough-password-1",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="new.agent@desk.example")
    assert response["Location"] == change_url(user)
    assert user.check_password("a-long-enough-password-1")
    assert list(
        EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified")
    ) == [("new.agent@desk.example", True, True)]
    [event] = events_of(user, SecurityEvent.Type.SIGNED_UP)
    assert event.actor_id == superuser.pk
