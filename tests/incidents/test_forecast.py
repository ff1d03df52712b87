"""`revoke_2fa --dry-run` forecasts the load, against a seeded population with known answers."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import BackupCode, BackupCodeDevice, User
from accounts.selectors import revocation_forecast
from support.models import CaseEvent, CaseStatus, RecoveryCase
from support.selectors import agent_handling_rate
from tests.incidents.helpers import bulk_customers

pytestmark = pytest.mark.django_db


def _group(prefix: str, count: int, *, phone: bool, verified: bool, password: bool, codes: bool):
    users = bulk_customers(count, prefix=prefix, backup_codes=codes)
    for number, user in enumerate(users):
        if phone:
            user.phone = f"+49151{ord(prefix):03d}{number:05d}"
        if not password:
            user.password = make_password(None)
    User.objects.bulk_update(users, ["phone", "password"])
    EmailAddress.objects.bulk_create(
        [EmailAddress(user=u, email=u.email, primary=True, verified=verified) for u in users]
    )
    return users


@pytest.fixture
def population():
    """31 customers in six groups whose answers are known by hand (and one staff member):

    | group | n  | phone | verified email | password | backup codes | alone? |
    | a     | 10 | yes   | yes            | yes      | yes          | yes    |
    | b     |  7 | yes   | no             | yes      | no           | yes: password, phone |
    | c     |  5 | no    | yes            | yes      | no           | yes: password, email |
    | d     |  4 | no    | no             | yes      | yes          | no: codes revoked too |
    | e     |  3 | yes   | yes            | no       | no           | no: no password |
    | f     |  2 | no    | no             | no       | no           | no     |
    """
    _group("a", 10, phone=True, verified=True, password=True, codes=True)
    _group("b", 7, phone=True, verified=False, password=True, codes=False)
    _group("c", 5, phone=False, verified=True, password=True, codes=False)
    _group("d", 4, phone=False, verified=False, password=True, codes=True)
    _group("e", 3, phone=True, verified=True, password=False, codes=False)
    _group("f", 2, phone=False, verified=False, password=False, codes=False)
    bulk_customers(1, prefix="staff", is_staff=True, backup_codes=True)


def _closed_case(number: int, *, handled: timedelta, days_ago: float, resolution: str) -> None:
    closed = timezone.now() - timedelta(days=days_ago)
    case = RecoveryCase.objects.create(
        reference=f"RC-TEST-{number:04d}",
        contact_email=f"case{number}@example.com",
        status=CaseStatus.RESOLVED,
        resolution=resolution,
        created_at=closed - handled - timedelta(hours=3),
        closed_at=closed,
    )
    # An earlier claim given back: the handling time runs from the last claim.
    CaseEvent.objects.create(
        case=case, type=CaseEvent.Type.CLAIMED, created_at=closed - handled - timedelta(hours=1)
    )
    CaseEvent.objects.create(case=case, type=CaseEvent.Type.CLAIMED, created_at=closed - handled)


@pytest.fixture
def queue_history():
    """Agents closed three cases in 4, 6 and 10 minutes (median 6: 10 cases an hour); an
    automated resolution and a case older than a week must not count."""
    reauthenticated = RecoveryCase.Resolution.REAUTHENTICATED
    for number, minutes in enumerate((4, 6, 10)):
        _closed_case(
            number, handled=timedelta(minutes=minutes), days_ago=1, resolution=reauthenticated
        )
    _closed_case(
        10,
        handled=timedelta(seconds=1),
        days_ago=1,
        resolution=RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT,
    )
    _closed_case(11, handled=timedelta(seconds=30), days_ago=8, resolution=reauthenticated)


EXPECTED = {
    "selected": 31,
    "with_phone": 20,
    "with_verified_email": 18,
    "with_backup_codes": 14,
    "self_service": 22,
    "self_service_share": round(22 / 31, 4),
    "agent_cases": 9,
}


def test_the_forecast_counts_the_population_by_the_policy_table(population, queue_history):
    """Every figure equals the hand count; the handling rate is the median of the agents'
    handling times in the last 7 days, without automated resolutions."""
    forecast = revocation_forecast(users=User.objects.filter(is_staff=False)).as_dict()
    assert {key: forecast[key] for key in EXPECTED} == EXPECTED
    assert forecast["cases_per_agent_hour"] == 10.0
    assert forecast["handling_rate_source"] == "queue"
    assert forecast["handling_rate_cases"] == 3
    assert forecast["agent_hours"] == 0.9
    assert forecast["texts_over_budget"] == 0


def test_without_queue_history_the_setting_gives_the_rate(population, settings):
    """No case closed by an agent in 7 days: the rate comes from the named setting."""
    settings.FORECAST_CASES_PER_AGENT_HOUR = 6
    rate = agent_handling_rate()
    assert (rate.cases_per_hour, rate.source) == (6.0, "FORECAST_CASES_PER_AGENT_HOUR")
    forecast = revocation_forecast(users=User.objects.filter(is_staff=False))
    assert forecast.agent_cases == 9
    assert forecast.agent_hours == 1.5


def test_dry_run_prints_the_same_figures_in_text_and_json(population, queue_history, settings):
    """`--dry-run --json` carries the forecast; the text says the same; nothing is written,
    and the texts beyond today's SMS budget are counted."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "recover_sms_country": "15/d/key",
    }
    devices_before = BackupCodeDevice.objects.count(), BackupCode.objects.count()
    out = StringIO()
    call_command("revoke_2fa", "--all", "--dry-run", "--json", stdout=out)
    forecast = json.loads(out.getvalue())["forecast"]
    assert {key: forecast[key] for key in EXPECTED} == EXPECTED
    assert forecast["agent_hours"] == 0.9
    assert forecast["texts_over_budget"] == 5

    out = StringIO()
    call_command("revoke_2fa", "--all", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "with a phone on file:     20" in text
    assert "with a verified email:    18" in text
    assert "with unused backup codes: 14" in text
    assert "can recover by themselves: 22 (71.0%)" in text
    assert "expected agent cases:     9" in text
    assert "agent-hours:              0.9 at 10.0 cases per agent-hour" in text
    assert "over today's SMS budget: 5" in text
    assert (BackupCodeDevice.objects.count(), BackupCode.objects.count()) == devices_before
    assert not User.objects.filter(reenrolment_required=True).exists()


def test_a_users_file_lists_the_lines_that_match_no_customer(tmp_path, population):
    """Unknown ids and emails, and staff accounts, are listed as written; the rest count."""
    staff = User.objects.get(is_staff=True)
    customer = User.objects.filter(is_staff=False).order_by("pk").first()
    assert customer is not None
    path = tmp_path / "users.txt"
    path.write_text(
        f"{customer.pk}\n{customer.email.upper()}\nnobody@example.com\n\n{staff.email}\n99999999\n",
        encoding="utf-8",
    )
    out, err = StringIO(), StringIO()
    call_command("revoke_2fa", "--users", str(path), "--dry-run", "--json", stdout=out, stderr=err)
    result = json.loads(out.getvalue())
    assert result["count"] == 1
    assert result["unmatched"] == ["nobody@example.com", staff.email, "99999999"]
    assert "3 lines of" in err.getvalue() and "nobody@example.com" in err.getvalue()


def _passkey(user: User) -> None:
    WebAuthnCredential.objects.create(
        user=user,
        name="Passkey 1",
        confirmed=True,
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        sign_count=0,
    )


@pytest.fixture
def kept_factor_groups(population):
    """Beside the 31: customers whose way back depends on what the revocation keeps.

    | group | n | phone | password | backup codes | passkey | alone when kept?        |
    | g     | 3 | no    | yes      | no           | yes     | passkey kept: password + passkey |
    | h     | 2 | yes   | no       | yes          | no      | codes kept: backup code + phone  |
    """
    for user in _group("g", 3, phone=False, verified=False, password=True, codes=False):
        _passkey(user)
    _group("h", 2, phone=True, verified=False, password=False, codes=True)


@pytest.mark.parametrize(
    ("factors", "self_service", "codes_kept", "passkeys_kept"),
    [
        ("totp,backup,passkey", 22, False, False),
        ("totp,backup", 25, False, True),
        ("totp,passkey", 24, True, False),
        ("totp", 27, True, True),
    ],
)
def test_backup_codes_and_passkeys_count_only_when_the_revocation_keeps_them(
    kept_factor_groups, queue_history, factors, self_service, codes_kept, passkeys_kept
):
    """revoke_2fa removes backup codes by default, so they never count toward self-service
    then (group d and h stay agent cases); how many had them is still reported, and the
    text says whether they count. The same figures in --json and in text."""
    out = StringIO()
    call_command("revoke_2fa", "--all", "--dry-run", "--json", "--factors", factors, stdout=out)
    forecast = json.loads(out.getvalue())["forecast"]
    assert forecast["selected"] == 36
    assert forecast["with_backup_codes"] == 16
    assert forecast["with_passkey"] == 3
    assert forecast["factors_removed"] == factors.split(",")
    assert (forecast["backup_codes_kept"], forecast["passkeys_kept"]) == (
        codes_kept,
        passkeys_kept,
    )
    assert forecast["self_service"] == self_service
    assert forecast["agent_cases"] == 36 - self_service

    out = StringIO()
    call_command("revoke_2fa", "--all", "--dry-run", "--factors", factors, stdout=out)
    text = out.getvalue()
    codes_words = "kept by this revocation" if codes_kept else "removed by this revocation"
    passkey_words = "kept by this revocation" if passkeys_kept else "removed by this revocation"
    assert f"with unused backup codes: 16 ({codes_words}" in text
    assert f"with a passkey:           3 ({passkey_words}" in text
    assert f"can recover by themselves: {self_service} ({self_service / 36:.1%})" in text
    assert f"expected agent cases:     {36 - self_service}" in text
