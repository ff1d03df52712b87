"""Run work at the same instant in real threads, each with its own PostgreSQL connection.

The concurrency tests use these to prove single use: N callers pass a barrier together,
as a double click, two tabs or two staff members would, and the test counts the winners.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connection
from django.test import Client

if TYPE_CHECKING:
    from tests.factories import ClientResponse

T = TypeVar("T")


def run_together(functions: Sequence[Callable[[], T]], *, timeout: float = 300) -> list[T]:
    """Start every function at the same moment, each in its own thread (and DB connection);
    return their results in order, or raise the first exception in the calling thread."""
    barrier = threading.Barrier(len(functions))

    def run(function: Callable[[], T]) -> T:
        try:
            barrier.wait(timeout=10)
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(functions)) as pool:
        futures = [pool.submit(run, function) for function in functions]
        return [future.result(timeout=timeout) for future in futures]


def in_thread(function: Callable[[], object], results: dict, name: str) -> threading.Thread:
    """Start `function` in its own thread (and DB connection); its result lands in
    `results[name]`."""

    def run() -> None:
        try:
            results[name] = function()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def lock_waiters() -> int:
    """How many sessions of this database wait for a lock another one holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
        assert row is not None
        return row[0]


def until_lock_waiters(
    count: int, *, unless_ended: threading.Thread | None = None, timeout: float = 30
) -> None:
    """Wait until `count` sessions wait for a lock, or `unless_ended` ended without waiting."""
    deadline = time.monotonic() + timeout
    while lock_waiters() < count:
        if unless_ended is not None and not unless_ended.is_alive():
            return
        assert time.monotonic() < deadline, f"never {count} sessions waiting for a lock"
        time.sleep(0.01)


def requests_together(
    clients: Sequence[Client], method: str, path: str, data: dict[str, Any] | None = None
) -> list[ClientResponse]:
    """The same request from every client at the same instant; their responses in order."""
    return run_together([partial(getattr(client, method), path, data or {}) for client in clients])


def post_together(clients: Sequence[Client], path: str, data: dict[str, Any]) -> list[int]:
    """POST `data` to `path` from every client at the same instant; their status codes."""
    return [response.status_code for response in requests_together(clients, "post", path, data)]


def clients_holding(link_path: str, count: int) -> list[Client]:
    """Browsers that each opened the link (which moves its token into their session)."""
    clients = [Client() for _ in range(count)]
    for client in clients:
        assert client.get(link_path).status_code == 302
    return clients
