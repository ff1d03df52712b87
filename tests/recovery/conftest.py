"""Fixtures of the recovery-page tests."""

from __future__ import annotations

import pytest

# The passkey ceremonies of /recover/lost-2fa/ run in the same browser set-up as the
# sign-in ones: SITE_URL on the live server, a page with a virtual authenticator.
from tests.accounts.test_passkeys_browser import (  # noqa: F401 - fixtures, used by name
    authenticator_page,
    browser_context,
    site,
)
from tests.config.conftest import redis_cache  # noqa: F401 - a fixture, used by name


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run after-commit work (eager Celery, outbox delivery) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
