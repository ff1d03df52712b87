"""One measured variant of the revocation benchmark, run in its own Django process.

    DATABASE_URL=... DJANGO_SETTINGS_MODULE=config.settings.bench \\
        .venv/bin/python -m bench._revocation_worker command --users N --batch-size 2000
    ... naive --sample 2000
    ... floor

The benchmark (bench.bench_revocation) seeds the database and starts this module once per
variant, so every variant pays the same interpreter and Django start-up, which is left out
of the timing. The last line on stdout is a JSON object with the measured seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import BackupCodeDevice, SecurityEvent, User  # noqa: E402
from accounts.services.audit import security_event_record  # noqa: E402
from notifications.models import Notification  # noqa: E402
from notifications.services import notification_reference_new  # noqa: E402

CAMPAIGN_TEMPLATE = "accounts/campaign_revocation"


def variant_command(users: int, batch_size: int) -> dict:
    """The real `manage.py revoke_2fa`, called in-process so start-up is not timed."""
    out = io.StringIO()
    start = time.perf_counter()
    call_command(
        "revoke_2fa",
        "--all",
        "--reason",
        "bench",
        "--confirm",
        str(users),
        "--batch-size",
        str(batch_size),
        "--json",
        stdout=out,
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "summary": json.loads(out.getvalue().strip().splitlines()[-1])}


def variant_naive(sample: int) -> dict:
    """What an admin would type into `manage.py shell`: one user, one device, one row at a time.

    Autocommit, as in a shell session: every statement outside `security_event_record` is
    its own transaction. It does less than the command (sessions stay, no campaign records),
    so the speed-up it yields is on the low side.
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    users = list(User.objects.filter(is_staff=False).order_by("pk")[:sample])
    start = time.perf_counter()
    for user in users:
        for device in TOTPDevice.objects.filter(user=user):
            device.delete()
        for device in BackupCodeDevice.objects.filter(user=user):
            device.delete()
        user.reenrolment_required = True
        user.save()
        event = security_event_record(
            user=user, type=SecurityEvent.Type.TWO_FACTOR_REVOKED, notify=False
        )
        Notification.objects.create(
            reference=notification_reference_new(),
            channel=Notification.Channel.EMAIL,
            recipient=user.email,
            account_id=user.pk,
            template_key=CAMPAIGN_TEMPLATE,
            language=user.language,
            idempotency_key=f"naive:{user.pk}",
            security_event=event,
        )
    return {"seconds": time.perf_counter() - start, "users": len(users)}


# The same row changes as the command in one transaction of set-based statements, with
# the shortcuts a floor may take: no hash chain (seq only, empty hashes), deterministic
# notice references instead of random ones, no work queue of targets, no
# hand-over of the notices to the broker. %(c)s is the campaign id.
FLOOR_SQL = [
    "CREATE TEMP TABLE floor_users ON COMMIT DROP AS "
    "SELECT id, email, language FROM accounts_user WHERE NOT is_staff",
    "DELETE FROM otp_totp_totpdevice WHERE user_id IN (SELECT id FROM floor_users)",
    "DELETE FROM accounts_backupcode WHERE device_id IN (SELECT id FROM accounts_backupcodedevice"
    " WHERE user_id IN (SELECT id FROM floor_users))",
    "DELETE FROM accounts_backupcodedevice WHERE user_id IN (SELECT id FROM floor_users)",
    "DELETE FROM django_session WHERE session_key IN (SELECT session_key FROM "
    "usersessions_usersession WHERE user_id IN (SELECT id FROM floor_users))",
    "DELETE FROM usersessions_usersession WHERE user_id IN (SELECT id FROM floor_users)",
    "UPDATE accounts_user SET reenrolment_required = true WHERE id IN (SELECT id FROM floor_users)",
    "INSERT INTO accounts_securityevent "
    "(account_id, type, actor_id, ip_address, user_agent, details, created_at, seq, prev_hash,"
    " hash) "
    "SELECT id, 'two_factor_revoked', NULL, NULL, '', jsonb_build_object('campaign', %(c)s), "
    "now(), row_number() OVER (ORDER BY id), '', '' FROM floor_users",
    "INSERT INTO notifications_notification "
    "(reference, channel, recipient, account_id, template_key, language, context,"
    " idempotency_key, status, attempts, next_attempt_at, last_error, created_at, sent_at,"
    " security_event_id, campaign_id) "
    "SELECT 'FL' || lpad(u.id::text, 12, '0'), 'email', u.email, u.id, "
    "%(template)s, u.language, '{}', 'floor:' || u.id, 'pending', 0, now(), '', "
    "now(), NULL, e.id, %(c)s "
    "FROM floor_users u JOIN accounts_securityevent e "
    "ON e.account_id = u.id AND e.type = 'two_factor_revoked'",
]


def variant_floor() -> dict:
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_revocationcampaign "
            "(reason, operator, selection, total, status, created_at, finished_at) "
            "VALUES ('floor', 'bench', '{}', 0, 'finished', now(), now()) RETURNING id"
        )
        params = {"c": cursor.fetchone()[0], "template": CAMPAIGN_TEMPLATE}
        for statement in FLOOR_SQL:
            cursor.execute(statement, params)
    return {"seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=["command", "naive", "floor"])
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr.")
    args = parser.parse_args()
    run = {
        "command": lambda: variant_command(args.users, args.batch_size),
        "naive": lambda: variant_naive(args.sample),
        "floor": variant_floor,
    }[args.variant]
    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(run)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        result = run()
    connection.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
