"""Code flood: status-page verification codes, sent by the task that sends what is due.

Customers ask for their codes on their case status pages ("send me a code", phone and email
in turn) through `case_proof_code_send`, the service the page calls, from 4 sender processes
at a fixed offered rate (all 4 together: 100 codes/s). Two real `celery worker` processes
(prefork, one child each) on Redis deliver them with the local-memory email and SMS backends,
on a fresh PostgreSQL database. Each round is one way of handing the codes to the workers:

* coalesced (the product): a committed code marks its row due and asks for one
  `notifications_deliver_due_task` unless one is already on its way; that task claims every
  due row (`FOR UPDATE SKIP LOCKED`) and sends them;
* one task per code (the baseline, the way codes went before): inside this benchmark's
  sender processes only, each committed code enqueues `notification_deliver_task` with its
  own id, and no due task is asked for (`_per_code_tasks`).

Quick runs one round of each (the baseline first); full runs baseline, coalesced, coalesced,
baseline, so a busy patch of the shared machine weighs on both sides alike, and sums them.

Figures, coalesced against one task per code in the same run:

* tasks per code: the tasks the workers ran (counted in the workers by a task_postrun hook,
  empty ones included) over the codes of the flood;
* worker CPU per code: user and system CPU of both workers' process groups (the consumer
  and its pool child) from the first code asked for to the last task finished, over the
  codes;
* delivery latency p50 and p99 of the flood's codes, from the sender's commit to the row
  marked sent (the worker marks it the moment the backend took the message);
* latency of a lone code in a quiet period: after each flood, one sender asks for codes one
  at a time, each once the last is sent and the workers are idle, so no task is on its way
  and none of them can share one;
* lost and duplicate codes: every reference a worker's backend took is recorded and checked
  against the rows (each code exactly once).

Targets: half the tasks and three quarters of the worker CPU of a task per code, p50 within
500 ms and p99 within 2 s of the commit. The saving depends on how busy the workers are: a due
task sends what committed since the last one, so with workers to spare each finds only a few
codes (a missed target then says how many, and how busy the workers were).

Run as `python -m bench.bench_code_flood seed|send ...` it is also the small Django program
the benchmark starts for the steps that need the app: the runner process stays free of
Django settings. `BENCH_CODE_FLOOD_DATABASE` names its database (default rd_bench_code_flood);
its Redis db is `BENCH_REDIS_URL`'s, as for the other sections.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from bench.bench_crisis import database_sessions
from bench.bench_delivery import celery_workers
from bench.bench_phone_lookup import (
    BENCH_REDIS_URL,
    PYTHON,
    django_env,
    log,
    redis_flush,
    seed_accounts,
    sql,
    stop_process_groups,
)
from bench.common import (
    ROOT,
    CpuMeter,
    Result,
    drop_database,
    fresh_database,
    percentile,
    process_group,
)

PROBE_ENV = "BENCH_CODE_FLOOD_PROBE_DIR"
SENDERS = 4
OFFERED_RATE = 100.0  # codes per second, all senders together
QUICK_CODES = 300
FULL_CODES = 1_000
QUICK_LONE = 6
FULL_LONE = 12
COALESCED = "coalesced"
PER_CODE = "per code"
QUICK_ROUNDS = (PER_CODE, COALESCED)
FULL_ROUNDS = (PER_CODE, COALESCED, COALESCED, PER_CODE)
# Targets: a code must still arrive promptly (the product's promise on the status page), and
# the coalescing must pay for itself.
TARGET_TASKS_RATIO = 0.5
TARGET_CPU_RATIO = 0.75
TARGET_P50_SECONDS = 0.5
TARGET_P99_SECONDS = 2.0
TEMPLATE = "support/proof_code"


@dataclass
class Round:
    """One flood and its lone codes, handed to the workers one way."""

    mode: str
    warm_cases: range  # one per sender: its first codes, before anything is measured
    cases: range  # the flood's cases: a phone code and an email code each
    lone_cases: range  # the lone codes' cases: one code each, phone and email in turn
    flood: dict = field(default_factory=dict)
    lone: dict = field(default_factory=dict)


# --- The benchmark ----------------------------------------------------------------------------


def run(quick: bool) -> list[Result]:
    codes = QUICK_CODES if quick else FULL_CODES
    lone = QUICK_LONE if quick else FULL_LONE
    modes = QUICK_ROUNDS if quick else FULL_ROUNDS
    name = os.environ.get("BENCH_CODE_FLOOD_DATABASE", "rd_bench_code_flood")
    started = time.perf_counter()
    database_url = fresh_database(name)
    rounds = []
    next_case = 1
    for mode in modes:
        warm_cases = range(next_case, next_case + SENDERS)
        cases = range(warm_cases.stop, warm_cases.stop + codes // 2)
        lone_cases = range(cases.stop, cases.stop + lone)
        rounds.append(Round(mode, warm_cases, cases, lone_cases))
        next_case = lone_cases.stop
    try:
        seed_accounts(database_url, next_case - 1)
        ids = sql(database_url, "SELECT min(id), max(id) FROM accounts_user")[0]
        if ids != (1, next_case - 1):
            raise RuntimeError(f"unexpected account ids {ids}")
        django_command(django_env(database_url), "seed", "1", str(next_case - 1))
        seconds = time.perf_counter() - started
        log(f"{next_case - 1:,} accounts with a case seeded ({seconds:.0f} s)")
        redis_flush()
        with tempfile.TemporaryDirectory() as probe_dir:
            env = django_env(database_url, **{PROBE_ENV: probe_dir})
            with (
                celery_workers(env, 2, name="bench-code-flood", include="bench.bench_code_flood")
                as workers,
                psycopg.connect(database_url, autocommit=True) as db,
            ):  # fmt: skip
                log(f"workers ready ({time.perf_counter() - started:.0f} s)")
                for one in rounds:
                    _round(env, one, workers, db, Path(probe_dir), name)
        return _results(rounds, codes)
    finally:
        redis_flush()
        drop_database(name)


def _round(env: dict, one: Round, workers, db, probe_dir: Path, database: str) -> None:
    """The flood from all senders, then the lone codes from one, in one way of handing over.

    Each sender first sends one case's two codes, unmeasured: the first code of a process
    (sender or worker) pays for its connections, imports and templates once.
    """
    with senders(env, one) as procs:
        for proc in procs:
            _say(proc, "warm")
        for proc in procs:
            _answer(proc)
        _wait_sent(db, one.warm_cases, 2 * len(one.warm_cases))
        _wait_idle()
        meter = CpuMeter(
            {
                "workers": lambda: [
                    pid for worker in workers.processes for pid in process_group(worker.pid)
                ],
                "senders": lambda: [p.pid for p in procs],
                # The database's sessions but this runner's own, which polls for the codes.
                "database": lambda: [
                    pid for pid in database_sessions(database) if pid != db.info.backend_pid
                ],
            }
        )
        tasks_before = _probe_tasks(probe_dir)
        meter.start()
        go = time.time() + 0.2
        for proc in procs:
            _say(proc, f"flood {go}")
        commits = [c for proc in procs for c in _answer(proc)["commits"]]
        _wait_sent(db, one.cases, 2 * len(one.cases))
        _wait_idle()
        spent = meter.stop()
        tasks = _tasks_since(tasks_before, probe_dir)
        lone_before = _probe_tasks(probe_dir)
        sent = _sent(db, one.cases)
        one.flood = {
            "commits": commits,
            "sent": sent,
            "tasks": tasks,
            "cpu": spent,
            "seconds": max(sent.values()) - go,
        }
        _say(procs[0], "lone")
        lone_commits = _answer(procs[0])["commits"]
        _wait_idle()
        one.lone = {"commits": lone_commits, "sent": _sent(db, one.lone_cases)}
        one.lone["tasks"] = _tasks_since(lone_before, probe_dir)
    _check_handed_over(one)
    flood = _latencies(one.flood)
    log(
        f"{one.mode}: {len(commits)} codes, {len(tasks)} tasks, "
        f"workers {spent['workers'] * 1000 / len(commits):.2f} ms CPU/code, "
        f"latency p50 {percentile(flood, 50) * 1000:.0f} ms, "
        f"p99 {percentile(flood, 99) * 1000:.0f} ms; lone codes p50 "
        f"{percentile(_latencies(one.lone), 50) * 1000:.0f} ms"
    )


# --- Senders ----------------------------------------------------------------------------------


@contextlib.contextmanager
def senders(env: dict, one: Round) -> Iterator[list[subprocess.Popen]]:
    """SENDERS Django processes, ready to send (settings loaded, cases read, connected)."""
    procs: list[subprocess.Popen] = []
    try:
        for index in range(SENDERS):
            procs.append(
                subprocess.Popen(
                    [
                        PYTHON, "-m", "bench.bench_code_flood", "send", one.mode,
                        str(one.warm_cases.start + index),
                        str(one.cases.start), str(one.cases.stop - 1),
                        str(one.lone_cases.start), str(one.lone_cases.stop - 1),
                        str(index),
                    ],
                    cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    text=True, start_new_session=True,
                )
            )  # fmt: skip
        for proc in procs:
            _answer(proc)  # "ready"
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(OSError, ValueError):
                _say(proc, "quit")
        stop_process_groups(procs, timeout=10)


def _say(proc: subprocess.Popen, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"sender {proc.pid} ended (exit {proc.wait()})")
    return json.loads(line)


# --- Waiting and reading back ----------------------------------------------------------------


def _codes_query(cases: range) -> tuple[str, dict]:
    # Case i belongs to account i (both seeded in order on fresh tables).
    return (
        "FROM notifications_notification WHERE template_key = %(t)s"
        " AND account_id >= %(first)s AND account_id < %(stop)s",
        {"t": TEMPLATE, "first": cases.start, "stop": cases.stop},
    )


def _wait_sent(db, cases: range, count: int, timeout: float = 120) -> None:
    where, params = _codes_query(cases)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = db.execute(f"SELECT count(*) {where} AND status = 'sent'", params).fetchone()[0]  # nosec B608
        if sent >= count:
            return
        time.sleep(0.02)
    raise RuntimeError(f"{count - sent} of {count} codes not sent after {timeout:.0f} s")


def _wait_idle(timeout: float = 60) -> None:
    """Until no task is queued or under way: the queues are empty and nothing is unacked
    (the tasks acknowledge late, once finished)."""
    broker = redis.Redis.from_url(BENCH_REDIS_URL)
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        queued = sum(broker.llen(key) for key in broker.scan_iter("messages*"))
        busy = queued + broker.hlen("unacked")
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:
            return
        time.sleep(0.02)
    raise RuntimeError("the workers did not become idle")


def _sent(db, cases: range) -> dict[tuple[int, str], float]:
    """When each code of the cases was marked sent, by (account, channel)."""
    where, params = _codes_query(cases)
    rows = db.execute(
        f"SELECT account_id, channel, extract(epoch FROM sent_at) {where} AND status = 'sent'",  # nosec B608
        params,
    ).fetchall()
    return {(account, channel): float(at) for account, channel, at in rows}


def _probe_tasks(directory: Path) -> dict[str, list[list[str]]]:
    """Every task each worker process ran so far, in order: its name, then the references its
    backends took."""
    return {
        path.name: [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
        for path in directory.glob("*.tasks")
    }


def _tasks_since(before: dict[str, list[list[str]]], directory: Path) -> list[list[str]]:
    """The tasks run since `before` was read, in every process."""
    return [
        task
        for name, tasks in _probe_tasks(directory).items()
        for task in tasks[len(before.get(name, [])) :]
    ]


def _check_handed_over(one: Round) -> None:
    """The round's codes went the way it measures: the due task alone, or one task each."""
    expected = {
        COALESCED: "notifications.tasks.notifications_deliver_due_task",
        PER_CODE: "notifications.tasks.notification_deliver_task",
    }[one.mode]
    tasks = one.flood["tasks"] + one.lone["tasks"]
    names = Counter(task[0] for task in tasks)
    if set(names) != {expected}:
        raise RuntimeError(f"{one.mode}: tasks {dict(names)}")
    codes = len(one.flood["commits"]) + len(one.lone["commits"])
    if one.mode == PER_CODE and len(tasks) != codes:
        raise RuntimeError(f"{one.mode}: {len(tasks)} tasks for {codes} codes")


def _latencies(phase: dict) -> list[float]:
    """Seconds from each code's commit to its row marked sent."""
    sent = phase["sent"]
    return [sent[(account, channel)] - at for account, channel, at in phase["commits"]]


# --- Results ----------------------------------------------------------------------------------


def flood_summary(rounds: list[Round], mode: str) -> dict:
    """One way's rounds summed: codes, tasks, worker CPU, latencies, losses and duplicates."""
    mine = [one for one in rounds if one.mode == mode]
    codes = sum(len(one.flood["commits"]) for one in mine)
    tasks = [task for one in mine for task in one.flood["tasks"]]
    taken = Counter(ref for one in mine for phase in (one.flood, one.lone)
                    for task in phase["tasks"] for ref in task[1:])  # fmt: skip
    committed = sum(len(phase["commits"]) for one in mine for phase in (one.flood, one.lone))
    latencies = [x for one in mine for x in _latencies(one.flood)]
    lone = [x for one in mine for x in _latencies(one.lone)]
    return {
        "codes": codes,
        "tasks": len(tasks),
        "tasks_by_name": dict(Counter(task[0].rsplit(".", 1)[-1] for task in tasks)),
        "empty_tasks": sum(1 for task in tasks if len(task) == 1),
        "cpu_ms": {
            part: round(sum(one.flood["cpu"][part] for one in mine) * 1000 / codes, 2)
            for part in ("workers", "senders", "database")
        },
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "lone_p50": percentile(lone, 50),
        "lone_max": max(lone),
        "flood_seconds": [round(one.flood["seconds"], 2) for one in mine],
        # The share of the two workers' time they spent on the CPU during the floods.
        "worker_busy_share": round(
            sum(one.flood["cpu"]["workers"] for one in mine)
            / (2 * sum(one.flood["seconds"] for one in mine)),
            2,
        ),
        "lost": committed - len(taken),
        "duplicates": sum(n - 1 for n in taken.values() if n > 1),
    }


def _results(rounds: list[Round], codes: int) -> list[Result]:
    new, old = flood_summary(rounds, COALESCED), flood_summary(rounds, PER_CODE)
    label = "1 task per code"
    shared = {
        "codes_per_round": codes,
        "rounds": [one.mode for one in rounds],
        "senders": SENDERS,
        "offered_rate_codes_per_s": OFFERED_RATE,
        "workers": "2 processes x prefork concurrency 1",
    }

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    def note(summary: dict) -> dict:
        return {
            "codes": summary["codes"],
            "tasks": summary["tasks"],
            "tasks_by_name": summary["tasks_by_name"],
            "empty_tasks": summary["empty_tasks"],
            "cpu_ms_per_code": summary["cpu_ms"],
            "latency_ms_p50_p99_max": [ms(summary[k]) for k in ("p50", "p99", "max")],
            "lone_code_ms_p50_max": [ms(summary["lone_p50"]), ms(summary["lone_max"])],
            "flood_seconds_first_ask_to_last_sent": summary["flood_seconds"],
            "worker_busy_share": summary["worker_busy_share"],
        }

    tasks_new, tasks_old = new["tasks"] / new["codes"], old["tasks"] / old["codes"]
    cpu_new, cpu_old = new["cpu_ms"]["workers"], old["cpu_ms"]["workers"]
    lost = new["lost"] + old["lost"]
    # Coalescing saves work only while codes commit faster than a task sends them: with
    # workers to spare, each task finds the few codes committed since the last one.
    spare = {
        "why_not_met": (
            f"the workers kept up: a due task found {new['codes'] / new['tasks']:.1f} codes on "
            f"average, and the workers were on the CPU {new['worker_busy_share']:.0%} of the "
            f"flood with coalescing ({old['worker_busy_share']:.0%} with a task per code)"
        )
    }
    tasks_met = tasks_new <= TARGET_TASKS_RATIO * tasks_old
    cpu_met = cpu_new <= TARGET_CPU_RATIO * cpu_old
    duplicates = new["duplicates"] + old["duplicates"]
    return [
        Result(
            "code_flood", "tasks per code", tasks_new, "tasks", baseline=tasks_old,
            baseline_label=label, target=f"ratio <= {TARGET_TASKS_RATIO}",
            met=tasks_met,
            notes={
                **shared,
                "coalesced": note(new),
                "one_task_per_code": note(old),
                **({} if tasks_met else spare),
            },
        ),
        Result(
            "code_flood", "worker CPU per code", cpu_new, "ms", baseline=cpu_old,
            baseline_label=label, target=f"ratio <= {TARGET_CPU_RATIO}",
            met=cpu_met, notes={} if cpu_met else spare,
        ),
        Result(
            "code_flood", "latency p50, commit to sent", new["p50"] * 1000, "ms",
            baseline=old["p50"] * 1000, baseline_label=label,
            target=f"<= {TARGET_P50_SECONDS * 1000:.0f} ms",
            met=new["p50"] <= TARGET_P50_SECONDS,
        ),
        Result(
            "code_flood", "latency p99, commit to sent", new["p99"] * 1000, "ms",
            baseline=old["p99"] * 1000, baseline_label=label,
            target=f"<= {TARGET_P99_SECONDS * 1000:.0f} ms",
            met=new["p99"] <= TARGET_P99_SECONDS,
        ),
        Result(
            "code_flood", "lone code in a quiet period, p50", new["lone_p50"] * 1000, "ms",
            baseline=old["lone_p50"] * 1000, baseline_label=label,
            target=f"<= {TARGET_P50_SECONDS * 1000:.0f} ms",
            met=new["lone_p50"] <= TARGET_P50_SECONDS,
        ),
        Result(
            "code_flood", "codes lost or sent twice", float(lost + duplicates), "codes",
            target="0", met=lost + duplicates == 0,
            notes={"lost": lost, "sent_twice": duplicates},
        ),
    ]  # fmt: skip


def django_command(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [PYTHON, "-m", "bench.bench_code_flood", *args],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip


# --- Inside the worker processes --------------------------------------------------------------


def _connect_probe(directory: Path) -> None:
    """Record each task a worker process runs, with the reference of every message its
    backends took, one line per task in `<pid>.tasks`; the local-memory outboxes are emptied
    after each task."""
    from celery.signals import task_postrun

    def record(task=None, **_kwargs) -> None:
        from django.core import mail

        from notifications.sms import backends

        outbox = getattr(mail, "outbox", [])
        refs = [m.extra_headers["X-Recovery-Desk-Reference"] for m in outbox]
        refs += [m.reference for m in backends.outbox]
        with open(directory / f"{os.getpid()}.tasks", "a", encoding="utf-8") as file:
            file.write(" ".join([task.name if task else "?", *refs]) + "\n")
        outbox.clear()
        backends.outbox.clear()

    task_postrun.connect(record, weak=False)


# A worker imports this module (--include) with the probe directory in its environment;
# the benchmark runner imports it without, and nothing is connected there.
if os.environ.get(PROBE_ENV) and __name__ != "__main__":
    _connect_probe(Path(os.environ[PROBE_ENV]))


# --- The Django steps, run in a subprocess ----------------------------------------------------


def _seed(first: int, last: int) -> None:
    """A waiting help case for each account `first`..`last`, matched to it; every fifth in
    German."""
    from support.models import CaseStatus, RecoveryCase

    RecoveryCase.objects.bulk_create(
        [
            RecoveryCase(
                reference=f"RC-{i // 10_000:04d}-{i % 10_000:04d}",
                status=CaseStatus.WAITING,
                contact_email=f"acct{i}@example.com",
                language="de" if i % 5 == 0 else "en",
                matched_user_id=i,
            )
            for i in range(first, last + 1)
        ],
        batch_size=1000,
    )


@contextlib.contextmanager
def _per_code_tasks() -> Iterator[None]:
    """Hand each committed code to the workers in a task of its own, as before the due task:
    its row is not marked due, and after the commit `notification_deliver_task` is enqueued
    with its id. For this process only, while the block runs."""
    from config.celery_app import enqueue_after_commit
    from notifications import services
    from notifications.models import Notification
    from notifications.tasks import notification_deliver_task

    insert, request = services._notification_insert, services.notifications_deliver_due_request

    def insert_and_enqueue(row: Notification) -> bool:
        due = row.delivery == Notification.Delivery.DUE
        if due:
            row.delivery = Notification.Delivery.HANDED
        inserted = insert(row)
        if inserted and due:
            enqueue_after_commit(notification_deliver_task, row.pk)
        return inserted

    services._notification_insert = insert_and_enqueue
    services.notifications_deliver_due_request = lambda: None
    try:
        yield
    finally:
        services._notification_insert = insert
        services.notifications_deliver_due_request = request


@contextlib.contextmanager
def _commit_times() -> Iterator[list[float]]:
    """The moments this process's transactions commit, recorded before their after-commit
    work runs (in which a code is handed over, and may be sent before the call returns)."""
    from django.db import connections

    wrapper = connections["default"]
    run_hooks = wrapper.run_and_clear_commit_hooks
    times: list[float] = []

    def record_then_run_hooks() -> None:
        times.append(time.time())
        run_hooks()

    wrapper.run_and_clear_commit_hooks = record_then_run_hooks  # type: ignore[method-assign]
    try:
        yield times
    finally:
        del wrapper.run_and_clear_commit_hooks


def _send(
    mode: str, warm: int, first: int, last: int, lone_first: int, lone_last: int, index: int
) -> None:
    """A sender: reads commands on stdin, answers each with a JSON line on stdout."""
    from notifications.models import Notification
    from support.models import CaseProof, RecoveryCase
    from support.services import case_proof_code_send

    kinds = {CaseProof.Kind.PHONE: "sms", CaseProof.Kind.EMAIL: "email"}
    cases = list(
        RecoveryCase.objects.select_related("matched_user")
        .filter(pk__gte=first, pk__lte=last)
        .order_by("pk")
    )[index::SENDERS]
    lone_cases = list(
        RecoveryCase.objects.select_related("matched_user")
        .filter(pk__gte=lone_first, pk__lte=lone_last)
        .order_by("pk")
    )
    warm_case = RecoveryCase.objects.select_related("matched_user").get(pk=warm)

    def answer(payload: dict) -> None:
        print(json.dumps(payload), flush=True)

    def send(case: RecoveryCase, kind: CaseProof.Kind) -> list:
        committed.clear()
        if not case_proof_code_send(case=case, kind=kind):
            raise SystemExit(f"no code sent for case {case.pk}")
        # The request's one transaction commits once.
        (at,) = committed
        return [case.matched_user_id, kinds[kind], at]

    with (
        _per_code_tasks() if mode == PER_CODE else contextlib.nullcontext(),
        _commit_times() as committed,
    ):
        answer({"ready": True})
        for line in sys.stdin:
            command, *args = line.split()
            if command == "warm":
                answer({"commits": [send(warm_case, kind) for kind in kinds]})
            elif command == "flood":
                # This sender's codes, interleaved with the others' on one schedule.
                go = float(args[0])
                commits = []
                for k, (case, kind) in enumerate((case, kind) for case in cases for kind in kinds):
                    wait = go + (k * SENDERS + index) / OFFERED_RATE - time.time()
                    if wait > 0:
                        time.sleep(wait)
                    commits.append(send(case, kind))
                answer({"commits": commits})
            elif command == "lone":
                commits = []
                for n, case in enumerate(lone_cases):
                    kind = list(kinds)[n % 2]
                    commits.append(send(case, kind))
                    sent = Notification.objects.filter(
                        account_id=case.matched_user_id, status=Notification.Status.SENT
                    )
                    while not sent.exists():
                        time.sleep(0.01)
                    # Quiet: the task that sent it, and any it asked for, have finished.
                    time.sleep(0.3)
                answer({"commits": commits})
            elif command == "quit":
                return


def _main(argv: list[str]) -> None:
    import django

    django.setup()
    command = argv[0]
    if command == "seed":
        _seed(int(argv[1]), int(argv[2]))
    elif command == "send":
        warm, first, last, lone_first, lone_last, index = (int(a) for a in argv[2:])
        _send(argv[1], warm, first, last, lone_first, lone_last, index)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    _main(sys.argv[1:])
