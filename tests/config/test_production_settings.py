"""Production settings refuse to start without a secret and pass Django's deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.production", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_a_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_refuses_to_start_without_an_audit_key():
    """The audit chain's HMAC key lives outside the database and has no default."""
    for audit_key in ("", "too-short-for-an-audit-key"):
        result = manage(
            "check",
            DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-0123456789",
            DJANGO_AUDIT_KEY=audit_key,
        )
        assert result.returncode != 0
        assert "DJANGO_AUDIT_KEY must be set" in result.stderr


SECRETS = {
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-0123456789",
    "DJANGO_AUDIT_KEY": "y" * 20 + "a-long-random-audit-key-0123",
}
SERVICES = {
    "DATABASE_URL": "postgres://desk@db.internal:5432/recoverydesk",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def test_refuses_to_start_without_redis():
    """Without REDIS_URL production would run every task inside the web request, keep each
    process's rate-limit counters to itself and leave the broker out of /healthz: it stops
    at start instead."""
    result = manage("check", **SECRETS, **{**SERVICES, "REDIS_URL": ""})
    assert result.returncode != 0
    assert "REDIS_URL must be set" in result.stderr


def test_check_deploy_reports_nothing():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **SECRETS,
        **SERVICES,
        DJANGO_ALLOWED_HOSTS="desk.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_security_headers(client, settings):
    """Strict CSP, no framing, no sniffing, no referrer leaks, HSTS on HTTPS."""
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/", secure=True)
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_session_cookie_is_httponly_and_samesite(client):
    from tests.factories import PASSWORD, UserFactory

    user = UserFactory()
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
