"""Fixtures of the incident tests: a private Redis and the test process's Celery producer."""

from __future__ import annotations

import shutil

import kombu.pools
import pytest

from tests.conftest import free_port, service_missing
from tests.incidents.helpers import RedisServer


def _reset_producer_pools(app) -> None:
    """Drop every producer and connection pool, so the next task opens fresh ones.

    kombu keeps pools in a process-wide registry keyed by broker; closing only the app's
    pool would leave a closed pool there for the next test that uses the same broker.
    """
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture
def private_redis(redis_url, tmp_path):
    """A redis-server of this test alone, so it can be stopped without harming anyone else.

    `redis_url` keeps the usual skip (or failure under REQUIRE_SERVICES) when Redis is absent.
    """
    if shutil.which("redis-server") is None:
        service_missing("redis-server binary not installed")
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def broker(private_redis):
    """Point this process's Celery producer at the private Redis, for real (not eager) tasks."""
    from config.celery_app import app

    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf["broker_url"] = private_redis.url
    app.conf.task_always_eager = False
    _reset_producer_pools(app)
    try:
        yield private_redis
    finally:
        app.conf["broker_url"], app.conf.task_always_eager = saved
        _reset_producer_pools(app)
