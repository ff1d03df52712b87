"""The benchmarks' floor for a worker: a Celery task that does nothing."""

from __future__ import annotations

from celery import shared_task


@shared_task
def bench_noop() -> None:
    return None
