"""Helpers of the incident tests: many customers fast, real worker and Redis processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, BackupCodeDevice, User
from notifications.models import Notification
from notifications.services import notification_sweep
from tests.factories import PASSWORD
from tests.processes import ALL_QUEUES, ROOT, Worker, database_url, wait_for  # noqa: F401


def revoke_2fa_process(
    *args: str,
    application_name: str,
    broker_url: str | None = None,
    inbox_dir: Path | None = None,
) -> subprocess.Popen:
    """`manage.py revoke_2fa` in a process of its own on the test database, named
    `application_name` in pg_stat_activity. Without `broker_url` Celery is eager and the
    notices are sent in-process (locmem backends); with it they are queued there for a
    worker that writes into `inbox_dir`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(application_name=application_name),
    }
    env.pop("REDIS_URL", None)
    if broker_url is not None:
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test_worker",
            REDIS_URL=broker_url,
            DJANGO_DEV_INBOX_DIR=str(inbox_dir),
        )
    return subprocess.Popen(
        [sys.executable, "manage.py", "revoke_2fa", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def bulk_customers(
    count: int,
    *,
    prefix: str = "bulk",
    joined: datetime | None = None,
    backup_codes: bool = False,
    is_staff: bool = False,
) -> list[User]:
    """`count` customers with a confirmed authenticator, inserted in a few statements."""
    password = make_password(PASSWORD)
    joined = joined or timezone.now()
    users = User.objects.bulk_create(
        [
            User(
                email=f"{prefix}{i}@example.com",
                password=password,
                date_joined=joined,
                is_staff=is_staff,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    TOTPDevice.objects.bulk_create(
        [TOTPDevice(user=user, name="Authenticator app", confirmed=True) for user in users],
        batch_size=1000,
    )
    if backup_codes:
        devices = BackupCodeDevice.objects.bulk_create(
            [BackupCodeDevice(user=user, name="Backup codes", confirmed=True) for user in users]
        )
        BackupCode.objects.bulk_create(
            [BackupCode(device=device, code_hash=f"{device.pk:064d}") for device in devices]
        )
    return users


def inbox_files(directory: Path) -> list[dict]:
    """What the worker really sent: the dev inbox keeps one file per message reference."""
    if not directory.exists():
        return []
    records = []
    for path in directory.glob("*.json"):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, FileNotFoundError):
            continue  # being written right now; counted on the next look
    return records


def inbox_count(directory: Path) -> int:
    return len(list(directory.glob("*.json"))) if directory.exists() else 0


class RedisServer:
    """A private `redis-server` (no persistence): stopping it never touches the shared one."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        log = open(self.log_path, "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        if not wait_for(answers, timeout=10):
            raise RuntimeError("redis-server did not start:\n" + self.log_path.read_text())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def pending() -> int:
    return Notification.objects.filter(status=Notification.Status.PENDING).count()


def deliver_everything(broker_url: str, *, timeout: float = 120) -> int:
    """Wait for the worker to empty the queue, then do what the periodic sweep does once a
    minute (with the minute skipped): re-enqueue the rows still pending, until none is left.
    Returns how many sweeps were needed."""
    import redis

    queue = redis.Redis.from_url(broker_url)
    deadline = time.monotonic() + timeout
    sweeps, last, last_change = 0, -1, time.monotonic()
    while (waiting := pending()) > 0:
        assert time.monotonic() < deadline, f"{waiting} notices still pending"
        now = time.monotonic()
        if waiting != last:
            last, last_change = waiting, now
        elif now - last_change > 2 and not any(queue.llen(q) for q in ALL_QUEUES.split(",")):
            # The worker is idle and rows are still pending: their tasks were lost.
            Notification.objects.filter(status=Notification.Status.PENDING).update(
                next_attempt_at=timezone.now() - timedelta(minutes=5)
            )
            notification_sweep()
            sweeps, last_change = sweeps + 1, now
        time.sleep(0.2)
    return sweeps
