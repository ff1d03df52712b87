"""Timing of every public form: a known identifier against an unknown one, under gunicorn.

SPEC §7: the answer's time must not tell whether an email, a phone number or a message
reference is known. For each public form the load generator sends known and unknown
requests alternately, one at a time, to the real `config.wsgi` in gunicorn
(config.settings.bench with the production password hasher) on a fresh database, and
compares the medians (target: within 20%, as the slow-marked timing tests demand).

Forms: the phone lookup, password reset, sign-up (taken email), the help form (registered
phone), sign-in (known email, wrong password) and "did we really send this?" (a genuine
reference). The 2FA re-enrolment at /recover/2fa/ starts from the sign-in and takes no
identifier of its own.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import secrets
import time

from bench.bench_phone_lookup import (
    LIFTED_RATE_LIMITS,
    Request,
    collectstatic,
    django_env,
    gunicorn,
    known_phone,
    load,
    log,
    redis_flush,
    seed_accounts,
    sql,
    unknown_phone,
)
from bench.common import Result, drop_database, fresh_database, percentile

PBKDF2_ITERATIONS = 1_000_000  # Django 5.2's default for pbkdf2_sha256
TOLERANCE = 0.2
PASSWORD = "a-long-enough-passphrase-91"
REFERENCE = "7K2M-9QXA-B4TZ"  # a message the seeded outbox really sent

PRODUCTION_HASHER = {"DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.PBKDF2PasswordHasher"}
# The rest of every form's rate limits lifted too (the counters still count).
TIMING_RATE_LIMITS = {
    **LIFTED_RATE_LIMITS,
    "DJANGO_RATE_LIMIT_SIGNUP": "1000000/m/ip",
    "DJANGO_RATE_LIMIT_LOGIN_FAILED": "1000000/m/ip,1000000/m/key",
    "DJANGO_RATE_LIMIT_VERIFY_MESSAGE": "1000000/m/ip",
}


def pbkdf2_hash(password: str) -> str:
    """The hash Django stores for `password`: signing in must cost what production costs."""
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${base64.b64encode(digest).decode()}"


def forms(accounts: int) -> dict[str, tuple[str, int, dict, dict]]:
    """Per form: path, the status both answers have, and a known and an unknown request
    (each a function of the sample number, for values that must be fresh)."""
    fresh = itertools.count()
    return {
        "phone lookup": (
            "/recover/email/",
            302,
            lambda n: {"phone": known_phone(n % accounts + 1)},
            lambda n: {"phone": unknown_phone(n)},
        ),
        "password reset": (
            "/accounts/password/reset/",
            302,
            lambda n: {"email": f"acct{n % accounts + 1}@example.com"},
            lambda n: {"email": f"nobody{n}@example.net"},
        ),
        "sign-up (taken email)": (
            "/accounts/signup/",
            302,
            lambda n: {
                "email": f"acct{n % accounts + 1}@example.com",
                "phone": unknown_phone(500_000 + next(fresh)),
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
            lambda n: {
                "email": f"fresh{next(fresh)}@example.net",
                "phone": unknown_phone(500_000 + next(fresh)),
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        ),
        "help form (registered phone)": (
            "/recover/help/",
            200,
            lambda n: {
                "contact_email": f"someone{n}@example.net",
                "contact_phone": known_phone(n % accounts + 1),
                "description": "I cannot sign in any more.",
            },
            lambda n: {
                "contact_email": f"someone{n}@example.net",
                "contact_phone": unknown_phone(100_000 + n),
                "description": "I cannot sign in any more.",
            },
        ),
        "sign-in (known email, wrong password)": (
            "/accounts/login/",
            200,
            lambda n: {"login": f"acct{n % accounts + 1}@example.com", "password": "wrong-pass-1"},
            lambda n: {"login": f"nobody{n}@example.net", "password": "wrong-pass-1"},
        ),
        "verify-message (genuine reference)": (
            "/recover/verify-message/",
            200,
            lambda n: {"reference": REFERENCE},
            lambda n: {"reference": f"7K2M-9QXA-{n % 10000:04d}"},
        ),
    }


def seed(database_url: str, accounts: int) -> None:
    seed_accounts(database_url, accounts)
    sql(
        database_url,
        ("UPDATE accounts_user SET password = %(hash)s", {"hash": pbkdf2_hash("the-password")}),
        (
            """
            INSERT INTO notifications_notification (reference, channel, recipient, account_id,
                template_key, language, context, idempotency_key, status, attempts,
                next_attempt_at, last_error, created_at, sent_at)
            VALUES (%(reference)s, 'email', 'acct1@example.com', NULL, 'support/case_link', 'en',
                '{}', 'bench-timing', 'sent', 1, now(), '', now(), now())
            """,
            {"reference": REFERENCE},
        ),
    )


def run(quick: bool) -> list[Result]:
    samples = 10 if quick else 50
    accounts = 200
    name = "rd_bench_timing"
    started = time.perf_counter()
    database_url = fresh_database(name)
    try:
        seed(database_url, accounts)
        env = django_env(
            database_url,
            **TIMING_RATE_LIMITS,
            **PRODUCTION_HASHER,
        )
        collectstatic(env)
        redis_flush()
        results = []
        with gunicorn(env, workers=2) as server:
            log(f"gunicorn up ({time.perf_counter() - started:.0f} s)")
            for form, (path, status, known, unknown) in forms(accounts).items():
                results.append(_measure(server.port, form, path, status, known, unknown, samples))
        return results
    finally:
        redis_flush()
        drop_database(name)


def _measure(port, form, path, status, known, unknown, samples) -> Result:
    # A warm-up pair, then alternating pairs whose order alternates too.
    order = ["warm-known", "warm-unknown"]
    for n in range(samples):
        order += ["known", "unknown"] if n % 2 == 0 else ["unknown", "known"]
    labels = iter(enumerate(order))

    def next_request(_rng: random.Random) -> Request | None:
        step = next(labels, None)
        if step is None:
            return None
        number, label = step
        make = unknown if label.endswith("unknown") else known
        return label, make(number)

    result = load(port, path, next_request, concurrency=1, ok_status=status)
    known_ms = percentile(result.latencies.get("known", []), 50) * 1000
    unknown_ms = percentile(result.latencies.get("unknown", []), 50) * 1000
    ratio = known_ms / unknown_ms if unknown_ms else 0.0
    log(f"{form}: known {known_ms:.1f} ms, unknown {unknown_ms:.1f} ms, ratio {ratio:.2f}")
    return Result(
        "timing",
        f"{form}: median, known",
        known_ms,
        "ms",
        baseline=unknown_ms,
        baseline_label="unknown",
        target="ratio 0.8-1.2",
        met=abs(ratio - 1) <= TOLERANCE and not result.errors,
        notes={
            "path": path,
            "samples_known": len(result.latencies.get("known", [])),
            "samples_unknown": len(result.latencies.get("unknown", [])),
            "errors": result.errors,
        },
    )
