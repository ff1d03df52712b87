"""Staff sign-in: a right password with a wrong code, a wrong password and an unknown email
give the same answer in the same time, so neither tells a stolen staff password is right."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.factories import PASSWORD, totp_code
from tests.timing import PRODUCTION_HASHERS, assert_posts_take_the_same_time, lift_rate_limits

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
WRONG_PASSWORD = "not-the-password-77"


def wrong_code(user: User) -> str:
    """A six-digit code that is not the one the staff member's authenticator shows now."""
    current = totp_code(TOTPDevice.objects.get(user=user, confirmed=True))
    return f"{(int(current) + 500_000) % 1_000_000:06d}"


def answer(email: str, password: str, code: str) -> tuple:
    """Everything a browser gets back for one attempt, CSRF token and the email the form
    shows again aside."""
    response = Client().post(LOGIN, {"username": email, "password": password, "otp_token": code})
    return (
        response.status_code,
        sorted((name, value) for name, value in response.headers.items()),
        sorted(response.cookies),
        CSRF.sub(b"", response.content).replace(email.encode(), b"EMAIL"),
    )


def test_a_right_password_with_a_wrong_code_answers_as_a_wrong_password(agent):
    """Status, headers, cookies and page are the same whether only the code or the password
    was wrong: someone holding a staff password learns nothing from trying it."""
    code = wrong_code(agent)
    assert answer(agent.email, PASSWORD, code) == answer(agent.email, WRONG_PASSWORD, code)


def test_an_unknown_email_answers_as_a_known_staff_email(agent):
    """A wrong password for a staff email and any password for an email nobody has get the
    same status, headers, cookies and page: the answer does not list the staff."""
    code = wrong_code(agent)
    unknown = agent.email.replace("anna", "anne")  # as long, so Content-Length may agree
    assert answer(agent.email, WRONG_PASSWORD, code) == answer(unknown, WRONG_PASSWORD, code)


@pytest.fixture
def production_hashing(settings, agent):
    """The production hasher's cost, and the agent's password stored under it (the factory
    stored it under the tests' fast hasher), and no rate limit: one run makes 102 attempts."""
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    lift_rate_limits(settings, "staff_login_failed")
    agent.set_password(PASSWORD)
    agent.save(update_fields=["password"])


@pytest.mark.slow
@pytest.mark.parametrize("throttle_factor", [1, 0], ids=["code-throttled", "code-checked"])
def test_a_right_password_with_a_wrong_code_takes_the_time_of_a_wrong_password(
    settings, agent, production_hashing, throttle_factor
):
    """The code is checked only after a right password: the password check must cost the
    same either way, or the time tells an attacker the password is right. Both the
    authenticator's throttled answer (the production factor, after the first wrong code)
    and a full check of each code with its failure count written are timed."""
    settings.OTP_TOTP_THROTTLE_FACTOR = throttle_factor
    code = wrong_code(agent)

    assert_posts_take_the_same_time(
        LOGIN,
        known=lambda n: {"username": agent.email, "password": PASSWORD, "otp_token": code},
        unknown=lambda n: {"username": agent.email, "password": WRONG_PASSWORD, "otp_token": code},
        status=200,
    )


@pytest.mark.slow
def test_a_known_staff_email_takes_the_time_of_an_unknown_one(agent, production_hashing):
    """A wrong password for a staff email costs what any password for an unknown one does."""
    assert_posts_take_the_same_time(
        LOGIN,
        known=lambda n: {"username": agent.email, "password": WRONG_PASSWORD, "otp_token": ""},
        unknown=lambda n: {
            "username": f"nobody{n}@desk.example",
            "password": WRONG_PASSWORD,
            "otp_token": "",
        },
        status=200,
    )
