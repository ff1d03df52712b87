"""Staff sign-in: rate-limited like the customers', one answer for every kind of failure."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def attempt(client: Client, email: str, password: str, code: str) -> bytes:
    response = client.post(LOGIN, {"username": email, "password": password, "otp_token": code})
    assert response.status_code == 200
    return CSRF.sub(b"", response.content)


def test_a_wrong_password_and_a_wrong_code_get_the_same_answer(agent):
    """Someone with a stolen staff password learns nothing from the code step's answer."""
    for code in ("000000", ""):
        wrong_password = attempt(Client(), agent.email, "not-the-password", code)
        right_password = attempt(Client(), agent.email, PASSWORD, code)
        assert wrong_password == right_password
        assert b"is not correct" in wrong_password
        assert PASSWORD.encode() not in right_password


def test_failed_staff_sign_ins_are_limited_per_account(agent):
    """After five failures for one account even the right password and code are refused."""
    device = TOTPDevice.objects.get(user=agent, confirmed=True)
    for number in range(5):
        attempt(Client(REMOTE_ADDR=f"198.51.100.{number}"), agent.email, "guess", "123456")
    refused = attempt(Client(), agent.email, PASSWORD, totp_code(device))
    assert b"Too many failed sign-ins" in refused
    assert "_auth_user_id" not in Client().session


def test_failed_staff_sign_ins_are_limited_per_ip(agent):
    """Ten failures from one address, spread over accounts, stop that address."""
    client = Client(REMOTE_ADDR="203.0.113.50")
    for number in range(10):
        attempt(client, f"staff{number}@desk.example", "guess", "123456")
    device = TOTPDevice.objects.get(user=agent, confirmed=True)
    refused = attempt(client, agent.email, PASSWORD, totp_code(device))
    assert b"Too many failed sign-ins" in refused
