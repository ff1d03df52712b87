"""Outbox delivery: 125,000 pending notices sent by two Celery worker processes.

The notices (half email, half SMS, a fifth of them in German) are inserted set-based into
notifications_notification, handed to the broker with notifications_enqueue_batches (one task per
100 rows and channel, as the sweep and a released burst-guard hold do) and delivered by two
real `celery worker` processes on Redis with the local-memory email and SMS backends. The
batch tasks' per-worker rate limits are raised for the run: they are a brake for real
gateways, not part of the cost being measured.

Figures:

* throughput and the time to deliver them all, from the first batch handed to the broker to
  the last row marked sent (target: 125,000 within 60 s); baseline in the same run: one
  process calling notifications_deliver row by row on a separate sample, half of it before
  the workers run and half after;
* duplicates and losses: every message a worker's backend "sent" is recorded by reference
  in a file per process (see `_connect_probe`), and checked against the rows (target: none
  of either, and every row sent on its first attempt).

* lost and duplicates per fault: on a private PostgreSQL and Redis of the benchmark (never
  the machine's shared ones), 2,000 notices (full: 5,000) go to the fault tests' aiosmtpd
  server and HTTP SMS gateway stub (tests/servers.py) through their Celery workers
  (tests/processes.py); mid-delivery a pool process is killed with SIGKILL, a whole worker is,
  or PostgreSQL is stopped for 5 s; a successor worker and the sweep deliver the rest. Copies
  are counted by reference where they arrive (target: 0 lost, at most one duplicate per
  struck process).

Delivery stops at a time cap (full: 90 s, quick: 6 s) if rows are left: at the row-by-row
rates two shared cores reach, all 125,000 would take far longer than the benchmark budget.
The time for all of them is then projected from the measured rate (the table says so), the
rest stay pending as after any worker stop, and duplicates and losses are checked on every
message that was sent, including the batches the workers finish during their warm shutdown.

Run as `python -m bench.bench_delivery enqueue|baseline|faults FIRST LAST` it is also the small
Django program the benchmark starts for the steps that need the app: the runner process
stays free of Django settings, which other benchmarks configure for their own databases.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.bench_phone_lookup import (
    PYTHON,
    django_env,
    free_port,
    log,
    redis_flush,
    sql,
    stop_process_groups,
)
from bench.common import ROOT, Result, drop_database, fresh_database

PROBE_ENV = "BENCH_DELIVERY_PROBE_DIR"
LIFTED_BATCH_RATES = {
    "DJANGO_NOTIFICATION_BATCH_RATE_EMAIL": "1000/s",
    "DJANGO_NOTIFICATION_BATCH_RATE_SMS": "1000/s",
}
TARGET_SECONDS = 60.0
TARGET_COUNT = 125_000


# --- Celery workers ---------------------------------------------------------------------------


class Workers:
    """Started worker processes; `wait_ready()` blocks until each has said "ready."."""

    def __init__(self, processes: list[subprocess.Popen], logs: list) -> None:
        self.processes, self.logs = processes, logs

    def wait_ready(self) -> None:
        for process, worker_log in zip(self.processes, self.logs, strict=True):
            _wait_ready(process, worker_log)


@contextlib.contextmanager
def celery_workers(
    env: dict[str, str], count: int, *, name: str, include: str | None = None, wait: bool = True
) -> Iterator[Workers]:
    """`count` worker processes (prefork, one child each) on the broker in `env`.

    Each runs in its own process group, so stopping it reaches its pool child too. With
    `wait=False` the caller may start something else (gunicorn) while they boot.
    """
    processes: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(count)]
        # Registered before any worker starts, so whatever got started is stopped.
        stack.callback(stop_process_groups, processes, timeout=30)
        for index, worker_log in enumerate(logs):
            command = [
                PYTHON, "-m", "celery", "-A", "config.celery_app", "worker",
                "--pool", "prefork", "--concurrency", "1",
                "-n", f"{name}-{index}@%h", "--queues", "messages,bulk,sweeps",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                # INFO for the "ready." line; the task lines go to a temporary file.
                "--loglevel", "INFO",
            ]  # fmt: skip
            if include:
                command += ["--include", include]
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        workers = Workers(processes, logs)
        if wait:
            workers.wait_ready()
        yield workers


def _wait_ready(process: subprocess.Popen, worker_log, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker_log.seek(0)
        text = worker_log.read()
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited:\n{text[-3000:]}")
        if " ready." in text:
            return
        time.sleep(0.2)
    raise RuntimeError(f"Celery worker did not start:\n{text[-3000:]}")


def django_command(env: dict[str, str], *args: str) -> dict:
    """Run `python -m bench.bench_delivery ARGS` and return the JSON it prints last."""
    done = subprocess.run(
        [PYTHON, "-m", "bench.bench_delivery", *args],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- Seeding ----------------------------------------------------------------------------------


def seed_notices(database_url: str, first: int, last: int) -> None:
    """Pending notices `first`..`last` (ids follow i on the fresh table), set-based.

    Even i: the login-email hint by email; odd i: "an account already has this number" by
    SMS. Every fifth is in German. References and idempotency keys are unique.
    """
    sql(
        database_url,
        (
            """
            INSERT INTO notifications_notification (reference, channel, recipient, account_id,
                template_key, language, context, idempotency_key, status, attempts,
                next_attempt_at, last_error, created_at)
            SELECT 'BD' || lpad(i::text, 12, '0'),
                CASE WHEN i %% 2 = 0 THEN 'email' ELSE 'sms' END,
                CASE WHEN i %% 2 = 0 THEN 'acct' || i || '@example.com'
                     ELSE '+49151' || lpad(i::text, 8, '0') END,
                NULL,
                CASE WHEN i %% 2 = 0 THEN 'support/login_email_hint'
                     ELSE 'accounts/account_exists' END,
                CASE WHEN i %% 5 = 0 THEN 'de' ELSE 'en' END,
                CASE WHEN i %% 2 = 0 THEN jsonb_build_object('login_email',
                                                             'acct' || i || '@example.com')
                     ELSE '{"masked_email": "a***b@c***.com"}'::jsonb END,
                'bench-delivery:' || i, 'pending', 0, now(), '', now()
            FROM generate_series(%(first)s::int, %(last)s::int) AS i
            ORDER BY i
            """,
            {"first": first, "last": last},
        ),
        "VACUUM ANALYZE notifications_notification",
        # Write the seeding out now, so no checkpoint of it lands in the measured run.
        "CHECKPOINT",
    )


# --- The benchmark ----------------------------------------------------------------------------


def run(quick: bool) -> list[Result]:
    count = 10_000 if quick else TARGET_COUNT
    sample = 200 if quick else 2_000
    # The run stops at this cap even if rows are left (they stay pending, as after a worker
    # stop in production); the time for all of them is then projected from the rate.
    cap_seconds = 6.0 if quick else 90.0
    name = "rd_bench_delivery"
    started = time.perf_counter()
    database_url = fresh_database(name)
    try:
        # Ids 1..count for the workers, then the baseline's own sample after them.
        seed_notices(database_url, 1, count + sample)
        ids = sql(database_url, "SELECT min(id), max(id) FROM notifications_notification")[0]
        if ids != (1, count + sample):
            raise RuntimeError(f"unexpected ids {ids}")
        log(f"{count + sample:,} notices seeded ({time.perf_counter() - started:.0f} s)")
        redis_flush()
        with tempfile.TemporaryDirectory() as probe_dir:
            env = django_env(database_url, **LIFTED_BATCH_RATES, **{PROBE_ENV: probe_dir})
            # The baseline's sample is sent half before the workers run and half after, so
            # a busy patch on the shared machine weighs on both sides alike.
            middle = count + sample // 2
            before = django_command(env, "baseline", str(count + 1), str(middle))
            log(f"baseline, first half: {before['rate']:.0f} notices/s in one process")
            with celery_workers(env, 2, name="bench-delivery", include="bench.bench_delivery"):
                log(f"workers ready ({time.perf_counter() - started:.0f} s)")
                enqueued = django_command(env, "enqueue", "1", str(count))
                finished = _wait_delivered(database_url, count, enqueued["started_at"], cap_seconds)
            # The workers are stopped (warm shutdown): every probe file is complete.
            sent_refs = _probe_read(Path(probe_dir))
            after = django_command(env, "baseline", str(middle + 1), str(count + sample))
            log(f"baseline, second half: {after['rate']:.0f} notices/s in one process")
            baseline = {
                "seconds": before["seconds"] + after["seconds"],
                "rate": (before["sent"] + after["sent"]) / (before["seconds"] + after["seconds"]),
                "halves": [round(before["rate"], 1), round(after["rate"], 1)],
            }
        results = _results(database_url, count, sample, baseline, enqueued, finished, sent_refs)
    finally:
        redis_flush()
        drop_database(name)
    return results + run_faults(quick)


def _sent_count(database_url: str, count: int) -> int:
    return sql(
        database_url,
        (
            "SELECT count(*) FROM notifications_notification WHERE id <= %(n)s AND status = 'sent'",
            {"n": count},
        ),
    )[0][0]


def _wait_delivered(database_url: str, count: int, started_at: float, cap: float) -> dict:
    """Poll until every row is sent, the cap passes, or nothing moved for 30 s."""
    last_sent, last_change = -1, time.monotonic()
    while True:
        sent = _sent_count(database_url, count)
        if sent != last_sent:
            last_sent, last_change = sent, time.monotonic()
        if sent >= count or time.time() - started_at > cap or time.monotonic() - last_change > 30:
            break
        # The count scans the table; the end time comes from max(sent_at), not from this loop.
        time.sleep(2.0)
    finished_at = sql(
        database_url,
        (
            "SELECT extract(epoch FROM max(sent_at)) FROM notifications_notification"
            " WHERE id <= %(n)s",
            {"n": count},
        ),
    )[0][0]
    # Measured to the last row marked sent while the workers ran, so the rate holds only
    # what was counted (rows that a batch under way finishes during the stop come after).
    seconds = float(finished_at) - started_at if finished_at else float("nan")
    sent = sql(
        database_url,
        (
            "SELECT count(*) FROM notifications_notification "
            "WHERE id <= %(n)s AND status = 'sent' AND sent_at <= to_timestamp(%(t)s)",
            {"n": count, "t": float(finished_at or 0)},
        ),
    )[0][0]
    capped = time.time() - started_at > cap
    log(f"{sent:,} of {count:,} sent in {seconds:.1f} s" + (" (cap reached)" if capped else ""))
    return {"sent": sent, "seconds": seconds, "complete": sent >= count, "capped": capped}


def _results(
    database_url: str,
    count: int,
    sample: int,
    baseline: dict,
    enqueued: dict,
    finished: dict,
    sent_refs: dict[int, list[str]],
) -> list[Result]:
    # After the workers stopped: a batch they were in when told to stop has finished.
    sent_rows, repeated_attempts, failed_rows, untouched_rows = sql(
        database_url,
        (
            """
            SELECT count(*) FILTER (WHERE status = 'sent'),
                   count(*) FILTER (WHERE status = 'sent' AND attempts <> 1),
                   count(*) FILTER (WHERE status <> 'sent' AND attempts > 0),
                   count(*) FILTER (WHERE status = 'pending' AND attempts = 0)
            FROM notifications_notification WHERE id <= %(n)s
            """,
            {"n": count},
        ),
    )[0]
    sent_refs_in_db = {
        ref
        for (ref,) in sql(
            database_url,
            (
                "SELECT reference FROM notifications_notification"
                " WHERE id <= %(n)s AND status = 'sent'",
                {"n": count},
            ),
        )
    }
    recorded = Counter(ref for refs in sent_refs.values() for ref in refs)
    # Sent twice: a reference any backend recorded more than once.
    duplicates = sum(n - 1 for n in recorded.values() if n > 1)
    # Lost: a row marked sent that no backend sent. A message sent for a row not marked
    # sent would be sent again by the sweep: a duplicate in waiting, counted with them.
    lost = len(sent_refs_in_db - recorded.keys())
    # Rows nobody touched are lost too when delivery stalled before the cap, not after it.
    stalled = 0 if finished["complete"] or finished["capped"] else untouched_rows
    unmarked = len(recorded.keys() - sent_refs_in_db)
    rate = finished["sent"] / finished["seconds"] if finished["seconds"] else 0.0
    complete = finished["complete"]
    measured_all = complete and count == TARGET_COUNT
    full_time = finished["seconds"] if measured_all else TARGET_COUNT / rate if rate else 0.0
    notes = {
        "notices_enqueued": count,
        "complete": complete,
        "workers": "2 processes x prefork concurrency 1",
        "batch_size": 100,
        "batches": enqueued["batches"],
        "enqueue_seconds": round(enqueued["seconds"], 2),
        "rows_sent": sent_rows,
        "rows_left_pending_untouched": untouched_rows,
        "rows_failed_attempts": failed_rows,
        "messages_by_worker_process": {str(pid): len(refs) for pid, refs in sent_refs.items()},
        "baseline_sample": sample,
        "baseline_seconds": round(baseline["seconds"], 2),
        "baseline_rate_before_and_after": baseline["halves"],
    }
    label = f"time for {TARGET_COUNT:,}" + ("" if measured_all else " (projected from the rate)")
    return [
        Result(
            "delivery", "throughput, 2 workers", rate, "notices/s",
            baseline=baseline["rate"], baseline_label="1 process, row by row",
            target=f">= {TARGET_COUNT / TARGET_SECONDS:,.0f}/s",
            met=rate >= TARGET_COUNT / TARGET_SECONDS, notes=notes,
        ),
        Result(
            "delivery", label, full_time, "s",
            baseline=TARGET_COUNT / baseline["rate"], baseline_label="1 process, projected",
            target=f"<= {TARGET_SECONDS:.0f} s", met=full_time <= TARGET_SECONDS,
        ),
        Result(
            "delivery", "duplicates", float(duplicates), "messages", target="0",
            met=duplicates == 0 and repeated_attempts == 0 and unmarked == 0,
            notes={"sent_again_after_an_attempt": repeated_attempts,
                   "sent_but_row_not_marked": unmarked, "messages_checked": len(recorded)},
        ),
        Result(
            "delivery", "losses", float(lost + stalled), "messages", target="0",
            met=lost + stalled == 0 and failed_rows == 0,
            notes={"rows_failed_attempts": failed_rows, "rows_checked": sent_rows,
                   "rows_never_delivered_after_a_stall": stalled},
        ),
    ]  # fmt: skip


# --- Faults -----------------------------------------------------------------------------------

FAULTS = ("pool process killed", "worker killed", "PostgreSQL stopped")
# At most the one message each struck process was sending comes twice: one pool process;
# a whole worker (prefork, 2 pool processes); every pool process of the one worker when
# PostgreSQL stops under them (2).
FAULT_DUPLICATES_ALLOWED = {"pool process killed": 1, "worker killed": 2, "PostgreSQL stopped": 2}
FAULT_QUICK_MESSAGES = 2_000
FAULT_FULL_MESSAGES = 5_000
POSTGRES_DOWN_SECONDS = 5.0
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL server of this benchmark alone, so a fault may stop it: the machine's
    shared server is never touched. Run as the `postgres` user when we are root, since
    PostgreSQL refuses to run as root."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.data = directory / "data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres", group="postgres")
        self._run(
            str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def private_postgres(database: str) -> Iterator[PrivatePostgres]:
    """A fresh private server with `database` created and migrated; deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="rd-bench-pg-") as directory:
        server = PrivatePostgres(Path(directory), free_port())
        server.init()
        server.start()
        try:
            sql(server.url("postgres"), f'CREATE DATABASE "{database}"')
            env = django_env(server.url(database))
            subprocess.run(
                [PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
            )  # fmt: skip
            yield server
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                server.stop("immediate")


def run_faults(quick: bool) -> list[Result]:
    """Each fault on a fresh batch of notices through a real SMTP server and SMS gateway
    stub: lost messages and duplicates per fault, counted where the messages arrive."""
    count = FAULT_QUICK_MESSAGES if quick else FAULT_FULL_MESSAGES
    database = "rd_bench_delivery_faults"
    with private_postgres(database) as server:
        env = django_env(
            server.url(database),
            REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
            BENCH_PRIVATE_POSTGRES=f"{server.directory}:{server.port}",
        )
        faults = django_command(env, "faults", "1", str(count))["faults"]
    results = []
    for fault in FAULTS:
        outcome = faults[fault]
        allowed = FAULT_DUPLICATES_ALLOWED[fault]
        log(f"{fault}: {outcome['lost']} lost, {outcome['duplicates']} duplicate(s)")
        notes = {"messages": count, **outcome}
        results += [
            Result(
                "delivery", f"lost, {fault}", float(outcome["lost"]), "messages",
                target="0", met=outcome["lost"] == 0,
            ),
            Result(
                "delivery", f"duplicates, {fault}", float(outcome["duplicates"]), "messages",
                baseline=float(allowed), baseline_label="1 per struck process",
                target=f"<= {allowed}", met=outcome["duplicates"] <= allowed, notes=notes,
            ),
        ]  # fmt: skip
    return results


# --- Inside the worker processes --------------------------------------------------------------


def _connect_probe(directory: Path) -> None:
    """Record, per worker process, the reference of every message its backends "sent".

    The local-memory backends keep messages in module-level lists of the process that
    sent them; after each task the new references are appended to `<pid>.refs` and the
    lists emptied, so 125,000 messages do not pile up in memory. A reference recorded twice,
    in one process or two, is a message sent twice.
    """
    from celery.signals import task_postrun

    def record(**_kwargs) -> None:
        from django.core import mail

        from notifications.sms import backends

        outbox = getattr(mail, "outbox", [])
        refs = [m.extra_headers["X-Recovery-Desk-Reference"] for m in outbox]
        refs += [m.reference for m in backends.outbox]
        if refs:
            with open(directory / f"{os.getpid()}.refs", "a", encoding="utf-8") as file:
                file.write("\n".join(refs) + "\n")
        outbox.clear()
        backends.outbox.clear()

    task_postrun.connect(record, weak=False)


def _probe_read(directory: Path) -> dict[int, list[str]]:
    return {
        int(path.stem): path.read_text(encoding="utf-8").split()
        for path in directory.glob("*.refs")
    }


# A worker imports this module (--include) with the probe directory in its environment;
# the benchmark runner imports it without, and nothing is connected there.
if os.environ.get(PROBE_ENV) and __name__ != "__main__":
    _connect_probe(Path(os.environ[PROBE_ENV]))


# --- The Django steps, run in a subprocess ----------------------------------------------------


def _faults(count: int) -> dict:
    """Each fault in turn, on notices 1..count seeded afresh for each."""
    database_url = os.environ["DATABASE_URL"]
    directory, port = os.environ["BENCH_PRIVATE_POSTGRES"].rsplit(":", 1)
    postgres = PrivatePostgres(Path(directory), int(port))
    outcomes = {}
    for fault in FAULTS:
        sql(database_url, "TRUNCATE notifications_notification RESTART IDENTITY CASCADE")
        seed_notices(database_url, 1, count)
        with tempfile.TemporaryDirectory() as tmp:
            outcomes[fault] = _fault_once(fault, count, postgres, Path(tmp))
    return outcomes


def _fault_once(fault: str, count: int, postgres: PrivatePostgres, tmp: Path) -> dict:
    """One fault mid-delivery with a private Redis, a real SMTP server and SMS gateway stub
    and Celery workers, as the fault tests start them; then the sweep delivers the rest."""
    import signal

    from django.db import connection

    from notifications.models import Notification
    from notifications.services import notifications_enqueue_batches
    from tests.incidents.helpers import RedisServer, Worker, deliver_everything, wait_for
    from tests.servers import SmsGateway, SmtpServer

    broker_port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    smtp, gateway = SmtpServer(), SmsGateway()
    # A fresh broker per fault: messages a killed worker left unacknowledged must not come
    # back in the next fault's run.
    broker = RedisServer(broker_port, tmp / "redis.log")
    workers: list[Worker] = []

    def worker_start(name: str) -> Worker:
        worker = Worker(
            broker_url=broker.url, inbox_dir=tmp / "inbox", log_path=tmp / f"{name}.log",
            name=f"faults-{name}", env={**smtp.settings(), **gateway.settings()},
        )  # fmt: skip
        workers.append(worker)
        worker.start()
        return worker

    def arrived() -> int:
        return sum(smtp.received.values()) + sum(gateway.received.values())

    with contextlib.ExitStack() as stack:
        for server in (smtp, gateway):
            server.start()
            stack.callback(server.stop)
        broker.start()
        stack.callback(broker.kill)
        stack.callback(lambda: [worker.stop() for worker in workers])
        first = worker_start("first")
        notifications_enqueue_batches(list(range(1, count + 1)))
        wait_for(lambda: arrived() >= count // 5, timeout=300)
        at_fault = arrived()
        if fault == "pool process killed":
            os.kill(first.pool_pids()[0], signal.SIGKILL)
        elif fault == "worker killed":
            first.kill()
            worker_start("successor")
        else:
            postgres.stop("fast")
            time.sleep(POSTGRES_DOWN_SECONDS)
            postgres.start()
            connection.close()  # this process's connection died with the server
        stalled = ""
        try:
            sweeps = deliver_everything(broker.url, timeout=600)
        except AssertionError as exc:  # rows still pending at the timeout: lost, below
            sweeps, stalled = -1, str(exc)
        for worker in workers:
            worker.stop()
        copies = smtp.received + gateway.received
    references = set(Notification.objects.values_list("reference", flat=True))
    return {
        "lost": len(references - copies.keys()),
        "duplicates": sum(n - 1 for n in copies.values() if n > 1),
        "arrived_before_the_fault": at_fault,
        "sweeps": sweeps,
        "stalled": stalled,
        "smtp_sessions": smtp.sessions,
        "http_connections": gateway.connections,
    }


def _main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.conf import settings

    from notifications.models import Notification
    from notifications.services import notifications_deliver, notifications_enqueue_batches

    command, first, last = argv[0], int(argv[1]), int(argv[2])
    ids = list(range(first, last + 1))
    if command == "faults":
        print(json.dumps({"faults": _faults(last)}))
    elif command == "enqueue":
        started_at = time.time()
        start = time.perf_counter()
        notifications_enqueue_batches(ids)
        seconds = time.perf_counter() - start
        size = settings.NOTIFICATION_BATCH_SIZE
        per_channel = Counter(
            Notification.objects.filter(pk__in=ids).values_list("channel", flat=True)
        )
        batches = sum(-(-n // size) for n in per_channel.values())
        print(json.dumps({"started_at": started_at, "seconds": seconds, "batches": batches}))
    elif command == "baseline":
        # The first tenth warms up (connection, template loading) and is not timed.
        warm = max(10, len(ids) // 10)
        for pk in ids[:warm]:
            notifications_deliver(notification_ids=[pk])
        start = time.perf_counter()
        sent = sum(notifications_deliver(notification_ids=[pk]) for pk in ids[warm:])
        seconds = time.perf_counter() - start
        if sent != len(ids) - warm:
            raise SystemExit(f"baseline sent {sent} of {len(ids) - warm}")
        print(json.dumps({"seconds": seconds, "sent": sent, "rate": sent / seconds}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    _main(sys.argv[1:])
