"""Fixtures of the attacker tests: the staff and the victim's account of the support tests."""

from __future__ import annotations

from tests.support.conftest import (  # noqa: F401 - fixtures
    account,
    agent,
    other_agent,
    second_supervisor,
    supervisor,
)
