"""Admin behind django-otp, the health check and the operator commands."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, BackupCodeDevice, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from support.models import OPEN_STATUSES, RecoveryCase
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP
from tests.factories import PASSWORD, UserFactory, admin_sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = UserFactory.create(is_staff=True, is_superuser=True)
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device


def test_staff_without_otp_gets_the_otp_sign_in_not_the_admin(client, staff):
    user, _device = staff
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
    assert 'name="otp_token"' in response.content.decode()
    assert client.get("/admin/accounts/user/").status_code == 302


def test_staff_with_verified_otp_reaches_the_admin(staff):
    user, _device = staff
    client = Client()
    response = admin_sign_in(client, user)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    page = client.get("/admin/accounts/user/").content.decode()
    assert "c***1@e***.com" in page or "***" in page


def test_admin_login_refuses_a_wrong_code(staff):
    user, _device = staff
    client = Client()
    response = admin_sign_in(client, user, code="000000")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_healthz_reports_each_dependency(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["checks"]["redis"] == "down"


def seeded_counts() -> tuple[int, ...]:
    return (
        User.objects.count(),
        TOTPDevice.objects.count(),
        BackupCode.objects.count(),
        RecoveryCase.objects.count(),
    )


def test_healthz_reports_a_reachable_broker(client, settings, redis_url):
    """With the broker (Redis) configured and up, /healthz answers 200 naming both checks."""
    settings.REDIS_URL = redis_url
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_seed_demo_is_idempotent_and_prints_sign_ins(settings):
    """Customers, an agent, a supervisor (each in their role) and ten open cases; a second
    run adds nothing."""
    settings.DEBUG = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    counts = seeded_counts()
    call_command("seed_demo", stdout=StringIO())
    assert seeded_counts() == counts
    assert RecoveryCase.objects.filter(status__in=OPEN_STATUSES).count() == 10
    assert "10 open recovery cases" in out.getvalue()
    assert User.objects.get(email="agent@example.com").groups.filter(name=AGENTS_GROUP).exists()
    assert (
        User.objects.get(email="supervisor@example.com")
        .groups.filter(name=SUPERVISORS_GROUP)
        .exists()
    )
    assert User.objects.filter(is_staff=False).count() == 50
    assert User.objects.filter(reenrolment_required=True).count() == 5
    assert "agent@example.com" in out.getvalue() and "supervisor@example.com" in out.getvalue()
    assert re.search(r"key [A-Z2-7]{32}", out.getvalue())


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")


def test_create_agent_prints_enrolment_and_codes():
    out = StringIO()
    call_command("create_agent", "alice@desk.example", "--role", "supervisor", stdout=out)
    user = User.objects.get(email="alice@desk.example")
    assert user.is_staff and user.groups.filter(name="Supervisors").exists()
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert "otpauth://totp/" in out.getvalue()
    assert (
        len(
            re.findall(
                r"^  (?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}$",
                out.getvalue(),
                re.MULTILINE,
            )
        )
        == 10
    )
    assert set(SecurityEvent.objects.filter(account_id=user.pk).values_list("type", flat=True)) == {
        "signed_up",
        "permissions_changed",
        "two_factor_enabled",
    }
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_agent", "alice@desk.example", stdout=StringIO())


def test_create_agent_refuses_a_weak_password_and_creates_nothing():
    """The password validators run: `--password short` fails with their message, and no
    account, authenticator, backup code or event is left behind."""
    before = SecurityEvent.objects.count()
    out = StringIO()

    with pytest.raises(CommandError) as refused:
        call_command("create_agent", "bob@desk.example", "--password", "short", stdout=out)

    assert "This password is too short. It must contain at least 10 characters." in str(
        refused.value
    )
    assert out.getvalue() == ""
    assert not User.objects.filter(email="bob@desk.example").exists()
    assert not TOTPDevice.objects.exists() and not BackupCodeDevice.objects.exists()
    assert SecurityEvent.objects.count() == before
