"""Fixtures of the recovery-page tests."""

from __future__ import annotations

# The passkey ceremonies of /recover/lost-2fa/ run in the same browser set-up as the
# sign-in ones: SITE_URL on the live server, a page with a virtual authenticator.
from tests.accounts.test_passkeys_browser import (  # noqa: F401 - fixtures, used by name
    authenticator_page,
    browser_context,
    site,
)
from tests.config.conftest import redis_cache  # noqa: F401 - a fixture, used by name
