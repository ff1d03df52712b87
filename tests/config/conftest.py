"""Fixtures of the configuration tests, also used by the request-cost tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache, caches

from config.cache import RedisCache


@pytest.fixture
def redis_cache(settings, redis_url) -> Iterator[RedisCache]:
    """The production cache backend on the test Redis: rate limits, their script, the
    triage key."""
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": redis_url}}
    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    cache.clear()
    yield backend
    cache.clear()
