"""Fixtures of the attacker tests: the staff and the victim's account of the support tests."""

from __future__ import annotations

import pytest

from tests.support.conftest import (  # noqa: F401 - fixtures
    account,
    agent,
    other_agent,
    second_supervisor,
    supervisor,
)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run after-commit work (eager Celery, outbox delivery) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
