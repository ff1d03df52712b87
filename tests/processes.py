"""Processes the tests start: a real Celery worker on the test database, and waiting on them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Every queue of the Procfile's workers (config/settings/base.py routes the tasks).
ALL_QUEUES = "messages,bulk,sweeps"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def database_url(database: str | None = None, **options: str) -> str:
    """A URL of `database` (default: the test database) on the server the tests run on.

    For processes a test starts; the server may be the machine's (host and port) or the
    run's embedded one (a Unix socket directory, passed as the `host` option).
    """
    db = connection.settings_dict
    name = database or db["NAME"]
    if db["HOST"]:
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}"
    else:
        url = f"postgres://{db['USER']}@/{name}"
        options = {"host": db["OPTIONS"]["host"], **options}
    if options:
        url += "?" + "&".join(f"{k}={v}" for k, v in options.items())
    return url


def database_execute(statement: str) -> None:
    """Run one statement outside any transaction (CREATE/DROP DATABASE) on the test server."""
    import psycopg

    db = connection.settings_dict
    params = {"host": db["HOST"], "port": db["PORT"], **db["OPTIONS"]}
    with psycopg.connect(
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
        **{key: value for key, value in params.items() if value},
    ) as server:
        server.execute(statement)


class Worker:
    """A real `celery worker` process group on the test database, killable with SIGKILL."""

    def __init__(
        self,
        *,
        broker_url: str,
        inbox_dir: Path,
        log_path: Path,
        queues: str = ALL_QUEUES,
        env: dict[str, str] | None = None,
        name: str = "tests",
        concurrency: int = 2,
    ) -> None:
        self.broker_url = broker_url
        self.inbox_dir = inbox_dir
        self.log_path = log_path
        self.queues = queues
        self.extra_env = env or {}
        self.name = name
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test_worker",
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.broker_url,
            "DJANGO_DEV_INBOX_DIR": str(self.inbox_dir),
            **self.extra_env,
        }
        self.log_path.write_text("")
        log = open(self.log_path, "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--queues",
                self.queues,
                "--hostname",
                f"{self.name}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool too
        )
        log.close()
        deadline = time.monotonic() + timeout
        while "ready." not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Celery worker did not start:\n" + self.log_path.read_text())
            time.sleep(0.1)

    def pool_pids(self) -> list[int]:
        """The pool processes, which run the tasks (the main process only hands them out)."""
        import psutil

        if self.process is None:
            return []
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def kill(self) -> None:
        """SIGKILL the main process and every pool child at once, as the OOM killer would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        wait_for(lambda: not _group_alive(self.process.pid), timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
