"""No admin page shows a customer's email address or phone number in full: not the lists,
not the change pages, not the JSON of events, not the names of related accounts.

A supervisor and a superuser walk every registered admin model's list and the change page
of every row, and look for the customer's contacts in any of their usual spellings. The
case page's reveal with a reason stays the one way to read a full value.
"""

from __future__ import annotations

import pytest
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.urls import reverse

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import security_hold_extend
from accounts.services.two_factor import two_factor_provision
from support.models import CaseApproval, CaseEvent, CaseStatus, EmailChange, RecoveryCase
from support.roles import SUPERVISORS_GROUP
from support.services.cases import case_event_add
from tests.factories import UserFactory
from tests.support.conftest import admin_client, staff_member, waiting_case

pytestmark = pytest.mark.django_db

EMAIL = "hal.finney@posteo.de"
PHONE = "+4915123456780"
JOINED_EMAIL = "stranger.requester@gmail.com"
JOINED_PHONE = "+4917612345678"
NEW_EMAIL = "hal.new.address@example.org"
FULL_VALUES = (
    EMAIL,
    PHONE,
    "15123456780",
    JOINED_EMAIL,
    JOINED_PHONE,
    "17612345678",
    "0176 1234 5678",
    NEW_EMAIL,
)


@pytest.fixture
def customer_data(supervisor) -> User:
    """A customer with every kind of row staff can open in the admin."""
    customer = UserFactory(email=EMAIL, phone=PHONE)
    two_factor_provision(user=customer, context=AuditContext(), notify=False)
    security_hold_extend(user=customer, hours=48)
    security_event_record(
        user=customer, type=SecurityEvent.Type.PASSWORD_CHANGED, context=AuditContext()
    )
    UserSession.objects.create(
        user=customer, ip="203.0.113.7", session_key="k" * 32, user_agent="Firefox"
    )
    case = waiting_case(matched_user=customer, contact_email=EMAIL)
    case_event_add(
        case=case,
        type=CaseEvent.Type.JOINED,
        message=f"Please write to {JOINED_EMAIL} or call 0176 1234 5678",
        details={
            "contact_email": JOINED_EMAIL,
            "contact_phone": JOINED_PHONE,
            "emails_tried": [EMAIL, JOINED_EMAIL],
        },
    )
    CaseApproval.objects.create(
        case=case,
        action=CaseApproval.Action.REAUTHENTICATE,
        requested_by=supervisor,
        note=f"Customer proved {PHONE}",
    )
    EmailChange.objects.create(
        case=case, requester=case, user=customer, new_email=NEW_EMAIL, requested_by=supervisor
    )
    RecoveryCase.objects.create(
        reference="RC-JOIN-0001",
        status=CaseStatus.MERGED,
        merged_into=case,
        matched_user=customer,
        contact_email=JOINED_EMAIL,
        contact_phone=JOINED_PHONE,
        emails_tried=[EMAIL],
    )
    return customer


def admin_pages() -> list[str]:
    """Every registered model's list and the change page of each of its rows."""
    pages = []
    for model, _model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model._default_manager.values_list("pk", flat=True):
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
            pages.append(reverse("admin:{}_{}_history".format(*info), args=[pk]))
    return pages


@pytest.mark.parametrize("who", ["supervisor", "superuser"])
def test_no_admin_page_shows_a_full_customer_contact(who, supervisor, customer_data):
    """Lists, change pages and histories as a supervisor and as a superuser: every
    customer address and number appears masked, if at all."""
    if who == "superuser":
        viewer = staff_member("root@desk.example", SUPERVISORS_GROUP)
        viewer.is_superuser = True
        viewer.save(update_fields=["is_superuser"])
    else:
        viewer = supervisor
    client = admin_client(viewer)
    opened = 0

    for page in admin_pages():
        # A case's change page redirects to the agent's case page, tested on its own.
        response = client.get(page)
        html = response.content.decode()
        for value in FULL_VALUES:
            assert value not in html, (page, value)
        opened += response.status_code == 200

    assert opened > 20
    account_page = client.get(f"/admin/accounts/user/{customer_data.pk}/change/")
    assert "h***y@p***.de" in account_page.content.decode()
    assert "+49 ••• ••• 80" in account_page.content.decode()
