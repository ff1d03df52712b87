"""Fixtures of the recovery-page tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run after-commit work (eager Celery, outbox delivery) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
