"""Staff sessions are short: hours, not the weeks a customer's session may last."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD, UserFactory
from tests.support.conftest import admin_client

pytestmark = pytest.mark.django_db


def test_a_staff_session_ends_after_the_staff_hours_a_customers_does_not(settings, agent):
    """Staff sign-in sets the session to STAFF_SESSION_HOURS; a customer's keeps Django's age."""
    settings.STAFF_SESSION_HOURS = 3
    staff = admin_client(agent)
    assert staff.session.get_expiry_age() == 3 * 3600

    customer = UserFactory()
    client = Client()
    assert client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
