"""Mass 2FA revocation on PostgreSQL: `manage.py revoke_2fa` against a naive loop and a SQL floor.

Every variant starts from the same freshly seeded customers (TRUNCATE, then set-based
INSERT … SELECT generate_series) and runs in its own Django process
(bench._revocation_worker) on a throwaway database; the timing leaves out seeding and the
process start-up, which every variant pays alike. Full mode also revokes 1,000,000 users
with the command alone.

The command runs with Redis as the Celery broker (a private Redis database number that is
emptied afterwards), as in production: without a broker Celery runs eagerly and the
benchmark would time email delivery instead of revocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg
import redis

from bench.common import ROOT, Result, drop_database, fresh_database

NAME = "rd_bench_revocation"
BATCH_SIZE = 2000
REPEATS = 3
# A quarter of the customers have a live session the revocation must end.
SESSION_EVERY = 4
REDIS = ("127.0.0.1", 6379)

FULL = {"users": 20_000, "naive_sample": 2_000, "million": 1_000_000}
QUICK = {"users": 2_000, "naive_sample": 200, "million": None}

TABLES = [
    "accounts_user",
    "accounts_securityevent",
    "notifications_notification",
    "accounts_auditchainhead",
    "accounts_revocationcampaign",
    "accounts_campaigntarget",
    "django_session",
]

SEED_SQL = [
    # Customers with unique emails, no phone, an unusable password.
    "INSERT INTO accounts_user (password, is_superuser, is_staff, is_active, date_joined,"
    " email, phone, language, reenrolment_required) "
    "SELECT '!', false, false, true, now() - make_interval(mins => i), "
    "'customer' || i || '@bench.example', NULL, "
    "CASE WHEN i %% 5 = 0 THEN 'de' ELSE 'en' END, false "
    "FROM generate_series(1, %(n)s) AS i",
    # One confirmed authenticator each, with a 40-hex key like django-otp's default.
    "INSERT INTO otp_totp_totpdevice (name, confirmed, key, step, t0, digits, tolerance, drift,"
    " last_t, user_id, throttling_failure_count, created_at) "
    "SELECT 'Authenticator app', true, left(encode(sha256(id::text::bytea), 'hex'), 40), "
    "30, 0, 6, 1, 0, -1, id, 0, now() FROM accounts_user",
    "INSERT INTO django_session (session_key, session_data, expire_date) "
    "SELECT 'bench' || lpad(id::text, 32, '0'), 'e30', now() + interval '14 days' "
    "FROM accounts_user WHERE id %% %(every)s = 0",
    "INSERT INTO usersessions_usersession (created_at, ip, last_seen_at, session_key,"
    " user_agent, data, user_id) "
    "SELECT now(), '127.0.0.1', now(), 'bench' || lpad(id::text, 32, '0'), 'bench', '{}', id "
    "FROM accounts_user WHERE id %% %(every)s = 0",
]


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _reseed(url: str, users: int) -> float:
    """Empty every table a variant touches and seed `users` customers; returns seconds."""
    start = time.perf_counter()
    with _connect(url) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        for statement in SEED_SQL:
            conn.execute(statement, {"n": users, "every": SESSION_EVERY})
        # Fresh statistics and a checkpoint, so no variant inherits the seeding's work.
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - start


def _private_redis_db() -> int:
    """A Redis database number nobody uses, so emptying it afterwards harms no one."""
    for db in range(15, 7, -1):
        if redis.Redis(host=REDIS[0], port=REDIS[1], db=db).dbsize() == 0:
            return db
    raise RuntimeError("no empty Redis database between 8 and 15")


def _django(url: str, redis_db: int, *argv: str) -> subprocess.CompletedProcess:
    """Run this repository's interpreter with Django pointed at the benchmark database."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/python"), *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )


def _worker(url: str, redis_db: int, *args: str) -> tuple[dict, float]:
    """Run one variant in its own process; returns its JSON report and the process's wall time."""
    start = time.perf_counter()
    done = _django(url, redis_db, "-m", "bench._revocation_worker", *args)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"revocation worker {args[0]} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _verify(url: str, users: int, campaign: int) -> dict:
    """What the command must have done, counted in SQL; `ok` is true when all of it holds."""
    checks = {
        "users": "SELECT count(*) FROM accounts_user WHERE NOT is_staff",
        "not_flagged": "SELECT count(*) FROM accounts_user WHERE NOT reenrolment_required",
        "devices_left": "SELECT (SELECT count(*) FROM otp_totp_totpdevice)"
        " + (SELECT count(*) FROM accounts_backupcodedevice)",
        "sessions_left": "SELECT (SELECT count(*) FROM usersessions_usersession)"
        " + (SELECT count(*) FROM django_session)",
        # Accounts without exactly one revocation event / one campaign notice.
        "users_without_one_event": "SELECT count(*) FROM accounts_user u LEFT JOIN "
        "(SELECT account_id, count(*) AS n FROM accounts_securityevent "
        "WHERE type = 'two_factor_revoked' GROUP BY account_id) e ON e.account_id = u.id "
        "WHERE coalesce(e.n, 0) <> 1",
        "users_without_one_notice": "SELECT count(*) FROM accounts_user u LEFT JOIN "
        "(SELECT account_id, count(*) AS n FROM notifications_notification"
        " WHERE campaign_id = %(c)s GROUP BY account_id) m ON m.account_id = u.id"
        " WHERE coalesce(m.n, 0) <> 1",
        "notices_not_linked_to_own_event": "SELECT count(*) FROM notifications_notification m "
        "JOIN accounts_securityevent e ON e.id = m.security_event_id "
        "WHERE e.account_id IS DISTINCT FROM m.account_id",
        "targets_left": "SELECT count(*) FROM accounts_campaigntarget",
        "chain_gaps": "SELECT (SELECT coalesce(max(seq), 0) FROM accounts_securityevent)"
        " - (SELECT count(*) FROM accounts_securityevent)",
    }
    with _connect(url) as conn:
        found = {k: conn.execute(sql, {"c": campaign}).fetchone()[0] for k, sql in checks.items()}
    found["ok"] = found.pop("users") == users and not any(found.values())
    return found


def _verify_chain(url: str, redis_db: int) -> str:
    """The project's own hash-chain check (`manage.py verify_audit`), run after the command."""
    done = _django(url, redis_db, "manage.py", "verify_audit")
    return (done.stdout or done.stderr).strip()


def run(quick: bool) -> list[Result]:
    sizes = QUICK if quick else FULL
    users, sample, million = sizes["users"], sizes["naive_sample"], sizes["million"]
    url = fresh_database(NAME)
    redis_db = _private_redis_db()
    commands, floors = [], []
    try:
        # (a) and (c) REPEATS times each, alternating, keeping the fastest of each: the machine
        # is shared, and a burst of someone else's work should not decide the ratio.
        for _ in range(REPEATS):
            seed_s = _reseed(url, users)
            command, command_wall = _worker(
                url, redis_db, "command", "--users", str(users), "--batch-size", str(BATCH_SIZE)
            )
            verified = _verify(url, users, command["summary"]["campaign"])
            chain = _verify_chain(url, redis_db)
            commands.append({**command, "wall": command_wall, "verified": verified, "chain": chain})
            print(f"   command {users:,}: {command['seconds']:.2f} s, verified {verified['ok']}")
            _reseed(url, users)
            floor, _ = _worker(url, redis_db, "floor")
            floors.append(floor["seconds"])
            print(f"   floor {users:,}: {floor['seconds']:.2f} s")

        # (b) the naive loop on a sample of the same data, extrapolated linearly.
        _reseed(url, users)
        naive, _ = _worker(url, redis_db, "naive", "--sample", str(sample))
        naive_s = naive["seconds"] * users / naive["users"]
        print(f"   naive {naive['users']:,}: {naive['seconds']:.2f} s (x{users / sample:g})")

        big = None
        if million:
            big_seed = _reseed(url, million)
            result, wall = _worker(
                url, redis_db, "command", "--users", str(million), "--batch-size", str(BATCH_SIZE)
            )
            big = {
                "seconds": result["seconds"],
                "wall": wall,
                "seed": big_seed,
                "verified": _verify(url, million, result["summary"]["campaign"]),
            }
            print(f"   command {million:,}: {result['seconds']:.1f} s")
    finally:
        redis.Redis(host=REDIS[0], port=REDIS[1], db=redis_db).flushdb()
        drop_database(NAME)

    best = min(commands, key=lambda c: c["seconds"])
    command_s, floor_s = best["seconds"], min(floors)
    verified_all = all(c["verified"]["ok"] for c in commands)
    common = {
        **(
            {
                "size": "quick mode: one batch of 2,000, where the command's fixed start (broker"
                " connection, counting, ANALYZE) weighs; the targets are set for 20,000"
            }
            if quick
            else {}
        ),
        "users": users,
        "batch_size": BATCH_SIZE,
        "sessions": f"1 in {SESSION_EVERY} users has a session",
        "seed_seconds": round(seed_s, 2),
        "timing": "inside the variant's process after Django start-up; seeding excluded",
    }
    speedup = naive_s / command_s
    results = [
        Result(
            "revocation",
            f"revoke_2fa vs naive loop, {users:,} users",
            speedup,
            "x faster",
            target="≥ 50x",
            met=speedup >= 50,
            notes={
                **common,
                "command_seconds": round(command_s, 3),
                "naive_seconds_extrapolated": round(naive_s, 2),
                "naive_measured": f"{naive['users']:,} users in {naive['seconds']:.2f} s, "
                f"scaled linearly to {users:,}",
                "naive_loop": "per user: TOTPDevice/BackupCodeDevice .delete() each, user.save(),"
                " security_event_record(notify=False), Notification.objects.create();"
                " autocommit; no session ending, no campaign rows (less work than the command)",
            },
        ),
        Result(
            "revocation",
            f"revoke_2fa vs SQL floor, {users:,} users",
            command_s / floor_s,
            "x floor",
            target="≤ 2x",
            met=command_s / floor_s <= 2,
            notes={
                **common,
                "command_runs_seconds": [round(c["seconds"], 3) for c in commands],
                "floor_runs_seconds": [round(f, 3) for f in floors],
                "kept": f"the fastest of {REPEATS} runs each, alternating command and floor",
                "command_process_wall_seconds": round(best["wall"], 2),
                "floor": "one transaction: temp table of users, DELETE devices, backup codes,"
                " sessions, UPDATE users, INSERT events, INSERT notices. Skips the hash chain"
                " (seq only, empty hashes), random references (deterministic ones), batching"
                " and its work queue of targets, and the hand-over to the broker.",
                "why_not_met": "the floor leaves out work the command must do: it hashes each"
                " event into the audit chain in Python, draws a random reference per notice,"
                " commits every batch (resumable) and hands each batch's notices to the broker"
                + (
                    "; in quick mode one batch of 2,000 also pays the command's fixed start."
                    if quick
                    else "."
                ),
            },
        ),
    ]
    for label, seconds in (
        ("revoke_2fa", command_s),
        ("naive loop (extrapolated)", naive_s),
        ("SQL floor", floor_s),
    ):
        results.append(
            Result(
                "revocation",
                f"seconds, {label}, {users:,} users",
                seconds,
                "s",
                baseline=floor_s,
                baseline_label="SQL floor",
            )
        )
    results[0].notes["verified_after_command"] = {
        "all_runs_ok": verified_all,
        **best["verified"],
        "audit_chain": best["chain"],
    }
    if big is not None:
        results.append(
            Result(
                "revocation",
                f"revoke_2fa, {million:,} users",
                big["seconds"],
                "s",
                target="≤ 120 s",
                met=big["seconds"] <= 120,
                notes={
                    "batch_size": BATCH_SIZE,
                    "process_wall_seconds": round(big["wall"], 1),
                    "seed_seconds": round(big["seed"], 1),
                    "users_per_second": round(million / big["seconds"]),
                    "verified": big["verified"],
                    "why_not_met": f"the {users:,}-user runs scale linearly to"
                    f" {command_s * million / users:,.0f} s for the command and"
                    f" {floor_s * million / users:,.0f} s for the SQL floor; at a million rows"
                    " the tables and their indexes outgrow the server's default shared_buffers"
                    " (128 MB) and the writes pass max_wal_size (1 GB) many times over, so"
                    " checkpoints run during the command and every batch costs more than at"
                    " 20,000",
                },
            )
        )
    return results
