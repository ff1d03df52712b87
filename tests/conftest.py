"""Shared fixtures: Redis, a Celery worker and Chromium when present (PostgreSQL always is).

Set REQUIRE_SERVICES=1 (CI does) to turn "service not available" skips into failures.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.utils import translation

from notifications.sms import backends as sms_backends

if TYPE_CHECKING:
    from tests.factories import Capture

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def service_missing(reason: str) -> None:
    """Skip, or fail when the run requires every service (CI)."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service not available: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a German request earlier in the same
    thread would otherwise leave German active for services called directly."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _clean_outboxes():
    sms_backends.outbox.clear()
    cache.clear()
    yield
    sms_backends.outbox.clear()


@pytest.fixture
def capture(django_capture_on_commit_callbacks) -> Capture:
    """Run after-commit work (eager Celery, outbox delivery) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def sms_outbox() -> list:
    return sms_backends.outbox


def _redis_url() -> str:
    url = settings.TEST_REDIS_URL
    if not url:
        service_missing("Redis not configured (set REDIS_URL)")
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1).close()
    except OSError:
        service_missing(f"Redis not reachable at {url}")
    return url


@pytest.fixture
def redis_url() -> str:
    return _redis_url()


@pytest.fixture
def dev_inbox_dir(tmp_path, settings) -> Path:
    settings.DEV_INBOX_DIR = tmp_path / "dev-inbox"
    return settings.DEV_INBOX_DIR


@pytest.fixture
def celery_worker(transactional_db, redis_url, dev_inbox_dir, tmp_path, settings):
    """A real `celery worker` process on Redis, using the test database and file backends.

    The worker's email and SMS backends write into `dev_inbox_dir`, so a test counts what
    was really sent. The test process shares the worker's cache on Redis, as web processes
    do in production.
    """
    from kombu.transport import redis as redis_transport

    from config.celery_app import app
    from notifications.services import DELIVERY_DUE_KEY
    from tests.processes import ALL_QUEUES, Worker

    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": redis_url}}
    cache.delete(DELIVERY_DUE_KEY)

    worker = Worker(broker_url=redis_url, inbox_dir=dev_inbox_dir, log_path=tmp_path / "worker.log")
    app.conf.task_always_eager = False
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            assert isinstance(channel, redis_transport.Channel), channel
            for queue in ALL_QUEUES.split(","):
                channel.queue_purge(queue)
        worker.start()
        yield worker
    finally:
        worker.stop()
        app.conf.task_always_eager = True
        print("--- celery worker log ---\n" + worker.log()[-5000:])


@pytest.fixture(scope="session")
def chromium_browser():
    if not Path(CHROMIUM).exists():
        service_missing(f"Chromium not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("playwright not installed")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, live_server):
    context = chromium_browser.new_context(base_url=live_server.url, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATE_APPS = ("accounts", "notifications", "recovery", "support", "otp_totp", "django_otp_webauthn")


def database_state() -> dict[str, list[tuple]]:
    """Every row of the product's own tables and of the authenticators, by model."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values_list())
        for model in apps.get_models()
        if model._meta.app_label in STATE_APPS
    }


def database_fingerprint() -> dict[str, tuple[int, str]]:
    """`database_state` in one query: per table, its row count and a digest of its rows.

    For tests that compare the database thousands of times (the fuzz test).
    """
    from django.db import connection

    tables = sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.app_label in STATE_APPS and model._meta.managed
    )
    digest = "coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '')"
    # Table names come from the models, never from input.
    query = " UNION ALL ".join(
        f"""SELECT '{table}', count(*), {digest} FROM "{table}" t"""  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(query)
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


@pytest.fixture
def nothing_written(django_capture_on_commit_callbacks, mailoutbox, sms_outbox):
    """Run the request with after-commit work on; then the database and the outbox are as
    they were before it."""

    class Check:
        def __enter__(self):
            self.before = database_state()
            self.capture = django_capture_on_commit_callbacks(execute=True)
            self.capture.__enter__()
            return self

        def __exit__(self, *exc_info):
            self.capture.__exit__(*exc_info)
            if exc_info[0] is None:
                assert database_state() == self.before
                assert mailoutbox == [] and sms_outbox == []

    return Check
