"""Agents of the take-next benchmark: threads that claim a case and close it, over and over.

    DATABASE_URL=... DJANGO_SETTINGS_MODULE=config.settings.bench \\
        .venv/bin/python -m bench._take_next_worker skip_locked --agents 1,2,3 --seconds 20

Each thread is one agent with its own database connection (Django keeps one per thread).
The process prints "ready" once every thread has connected, starts on a "go" line on
stdin, so all processes of a run start together, and prints one JSON line at the end:
the claimed case ids, the claim latencies and any errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import timedelta

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from support.models import CaseEvent, CaseStatus, RecoveryCase  # noqa: E402
from support.roles import is_supervisor  # noqa: E402
from support.services.cases import case_event_add  # noqa: E402
from support.services.queue import (  # noqa: E402
    case_claim_next,
    case_held_by,
    case_lease_renew,
)


def case_claim_next_naive(*, agent: User) -> RecoveryCase | None:
    """`case_claim_next` with a plain FOR UPDATE: the same query without SKIP LOCKED.

    Every agent then queues on the lock of the same first case; PostgreSQL rechecks the row
    once it is free, finds it claimed and moves on to the next, so claims stay correct but
    happen one at a time.
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


CLAIM = {"skip_locked": case_claim_next, "naive": case_claim_next_naive}


class Agent(threading.Thread):
    def __init__(self, agent_id: int, claim, ready: threading.Barrier, go: threading.Event):
        super().__init__(daemon=True)
        self.agent_id, self.claim, self.ready, self.go = agent_id, claim, ready, go
        self.deadline = 0.0
        self.claimed: list[int] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            # Connect before the start, so the measured time is claims, not connecting.
            agent = User.objects.get(pk=self.agent_id)
            self.ready.wait()
            self.go.wait()
            while time.monotonic() < self.deadline:
                start = time.perf_counter()
                try:
                    case = self.claim(agent=agent)
                except Exception as exc:  # a failed claim is a result, not a crash
                    self.errors.append(repr(exc)[:200])
                    continue
                self.latencies.append((time.perf_counter() - start) * 1000)
                if case is None:
                    break  # the queue is empty
                self.claimed.append(case.pk)
                # Close it at once with the smallest UPDATE, so the agent may claim again.
                RecoveryCase.objects.filter(pk=case.pk).update(
                    status=CaseStatus.RESOLVED, claimed_by=None, closed_at=timezone.now()
                )
        finally:
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(CLAIM))
    parser.add_argument("--agents", required=True, help="Comma-separated user ids.")
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    agent_ids = [int(pk) for pk in args.agents.split(",")]
    ready, go = threading.Barrier(len(agent_ids) + 1), threading.Event()
    threads = [Agent(pk, CLAIM[args.variant], ready, go) for pk in agent_ids]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.monotonic()
    for thread in threads:
        thread.deadline = started + args.seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "elapsed": elapsed,
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
