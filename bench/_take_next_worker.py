"""Agents of the take-next benchmark: threads that claim a case and close it, over and over.

    DATABASE_URL=... DJANGO_SETTINGS_MODULE=config.settings.bench \\
        .venv/bin/python -m bench._take_next_worker skip_locked --agents 1,2,3 --seconds 20

Each thread is one agent with its own database connection (Django keeps one per thread).
The process prints "ready" once every thread has connected, starts on a "go" line on
stdin, so all processes of a run start together, and prints one JSON line at the end:
the claimed case ids, the claim latencies, its CPU time and any errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from datetime import timedelta

import django
import psycopg

django.setup()

from django.conf import settings  # noqa: E402
from django.db import (  # noqa: E402
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from support.models import CaseEvent, CaseStatus, RecoveryCase  # noqa: E402
from support.roles import is_supervisor  # noqa: E402
from support.services.cases import case_event_add  # noqa: E402
from support.services.queue import (  # noqa: E402
    CLAIM_NEXT_SQL,
    case_claim_next,
    case_held_by,
    case_lease_renew,
    claim_next_params,
)

CLOSE_SQL = (
    "UPDATE support_recoverycase SET status = 'resolved', claimed_by_id = NULL,"
    " closed_at = now() WHERE id = %s"
)


def close_on(django_connection, case_id: int) -> None:
    """The smallest UPDATE that ends the claim, so the agent may claim again.

    Sent through a plain psycopg cursor on Django's connection, exactly as the floor sends
    it on its own (bound on the server, prepared after a few calls), so that the loop around
    the claim costs every variant the same. The connection's own `execute` would not do:
    Django makes its cursors bind on the client, which PostgreSQL parses and plans anew.
    """
    with psycopg.Cursor(django_connection.connection) as cursor:
        cursor.execute(CLOSE_SQL, [case_id])


def case_claim_next_naive(*, agent: User) -> RecoveryCase | None:
    """The claim as first written with the ORM: `select_for_update()` without `skip_locked`,
    then `save()` and the timeline event, in one transaction.

    Every agent then queues on the lock of the same first case, held across the round trips
    to the client until the commit; PostgreSQL rechecks the row once it is free, finds it
    claimed and moves on to the next, so claims stay correct but happen one at a time.
    """

    current = case_held_by(agent=agent)
    if current is not None:
        return case_lease_renew(case=current, agent=agent)
    statuses = [CaseStatus.WAITING]
    if is_supervisor(agent):
        statuses.insert(0, CaseStatus.ESCALATED)
    try:
        with transaction.atomic():
            case = (
                RecoveryCase.objects.select_for_update()
                .filter(status__in=statuses)
                .order_by("-priority", "queued_at", "pk")
                .first()
            )
            if case is None:
                return None
            case.status = CaseStatus.CLAIMED
            case.claimed_by = agent
            case.lease_expires_at = timezone.now() + timedelta(minutes=settings.CASE_LEASE_MINUTES)
            case.save(update_fields=["status", "claimed_by", "lease_expires_at", "updated_at"])
            case_event_add(case=case, type=CaseEvent.Type.CLAIMED, actor=agent)
            return case
    except IntegrityError:
        return case_held_by(agent=agent)


class DjangoAgent:
    """An agent through the application: `claim` (or the naive copy), then the ORM close."""

    def __init__(self, agent_id: int, claim) -> None:
        # Connect before the start, so the measured time is claims, not connecting.
        self.agent, self.claim_with = User.objects.get(pk=agent_id), claim
        # This thread's connection, looked up once: the close is the harness's, not the
        # product's, and the floor pays no look-up for it either.
        self.db = connections[DEFAULT_DB_ALIAS]

    def claim(self) -> int | None:
        case = self.claim_with(agent=self.agent)
        return None if case is None else case.pk

    def close(self, case_id: int) -> None:
        close_on(self.db, case_id)

    def disconnect(self) -> None:
        self.db.close()  # this thread's own connection


class PlainAgent:
    """The floor: the product's own claim statement, sent through plain psycopg.

    The same statement and parameters, but no ORM, no model instance, no supervisor look-up:
    what is left is the statement's cost in PostgreSQL and the round trip, which the
    product's claim cannot go below.
    """

    def __init__(self, agent_id: int) -> None:
        self.agent_id = agent_id
        self.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)

    def claim(self) -> int | None:
        params = claim_next_params(agent_id=self.agent_id)
        row = self.conn.execute(CLAIM_NEXT_SQL[False], params).fetchone()
        return None if row is None else row[0]

    def close(self, case_id: int) -> None:
        self.conn.execute(CLOSE_SQL, [case_id])

    def disconnect(self) -> None:
        self.conn.close()


AGENTS = {
    "skip_locked": lambda pk: DjangoAgent(pk, case_claim_next),
    "naive": lambda pk: DjangoAgent(pk, case_claim_next_naive),
    "floor": PlainAgent,
}


class PacedWorker(threading.Thread):
    """Agents at a human pace: each of its agents claims once every `interval` seconds.

    One connection serves several agents, as a web process serves many staff. Latency is
    measured from the moment a claim was due, so a claim that waited for the connection
    counts its wait too.
    """

    def __init__(self, agent_ids: list[int], interval: float, ready, go) -> None:
        super().__init__(daemon=True)
        self.agent_ids, self.interval, self.ready, self.go = agent_ids, interval, ready, go
        self.deadline = 0.0
        self.claimed: list[int] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        agents = {pk: User.objects.get(pk=pk) for pk in self.agent_ids}
        try:
            self.ready.wait()
            self.go.wait()
            started = time.monotonic()
            rng = random.Random(self.agent_ids[0])  # a schedule, not a secret
            due = sorted((started + rng.uniform(0, self.interval), pk) for pk in agents)
            while due:
                at, pk = due.pop(0)
                if at >= self.deadline:
                    break
                time.sleep(max(0.0, at - time.monotonic()))
                try:
                    case = case_claim_next(agent=agents[pk])
                except Exception as exc:  # a failed claim is a result, not a crash
                    self.errors.append(repr(exc)[:200])
                    continue
                self.latencies.append((time.monotonic() - at) * 1000)
                if case is not None:
                    self.claimed.append(case.pk)
                    close_on(connection, case.pk)
                due.append((at + self.interval, pk))
                due.sort()
        finally:
            connection.close()


class Worker(threading.Thread):
    """One agent's loop: claim, close, claim again, until the deadline or an empty queue."""

    def __init__(self, agent_id: int, variant: str, ready: threading.Barrier, go: threading.Event):
        super().__init__(daemon=True)
        self.agent_id, self.variant, self.ready, self.go = agent_id, variant, ready, go
        self.deadline = 0.0
        self.claimed: list[int] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        agent = AGENTS[self.variant](self.agent_id)
        try:
            self.ready.wait()
            self.go.wait()
            while time.monotonic() < self.deadline:
                start = time.perf_counter()
                try:
                    case_id = agent.claim()
                except Exception as exc:  # a failed claim is a result, not a crash
                    self.errors.append(repr(exc)[:200])
                    continue
                self.latencies.append((time.perf_counter() - start) * 1000)
                if case_id is None:
                    break  # the queue is empty
                self.claimed.append(case_id)
                agent.close(case_id)
        finally:
            agent.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=[*sorted(AGENTS), "paced"])
    parser.add_argument("--agents", required=True, help="Comma-separated user ids.")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--interval", type=float, default=30.0, help="paced: seconds per claim")
    parser.add_argument("--connections", type=int, default=4, help="paced: threads")
    args = parser.parse_args()
    agent_ids = [int(pk) for pk in args.agents.split(",")]
    if args.variant == "paced":
        groups = [agent_ids[i :: args.connections] for i in range(args.connections)]
        ready, go = threading.Barrier(len(groups) + 1), threading.Event()
        threads: list = [PacedWorker(group, args.interval, ready, go) for group in groups]
    else:
        ready, go = threading.Barrier(len(agent_ids) + 1), threading.Event()
        threads = [Worker(pk, args.variant, ready, go) for pk in agent_ids]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu_started = time.monotonic(), time.process_time()
    for thread in threads:
        thread.deadline = started + args.seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # This process's CPU time over the run, all its agent threads together.
    cpu_seconds = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "cpu_seconds": cpu_seconds,
                "claimed": [pk for t in threads for pk in t.claimed],
                "latencies_ms": [ms for t in threads for ms in t.latencies],
                "errors": [e for t in threads for e in t.errors],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
