"""Security holds only grow, refuse security changes while they run, and tell the exchange."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.selectors import RestrictionReason, account_restrictions
from accounts.services.holds import (
    SecurityHoldActive,
    security_changes_check,
    security_hold_extend,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_shorter_hold_never_shortens_one_already_running():
    """Re-enrolment's 24 h after an agent's 48 h recovery keeps the 48 h end."""
    user = UserFactory.create()
    long_end = security_hold_extend(user=user, hours=48)
    kept = security_hold_extend(user=user, hours=24)
    user.refresh_from_db()
    assert kept == long_end == user.security_hold_until
    longer = security_hold_extend(user=user, hours=72)
    user.refresh_from_db()
    assert longer > long_end and user.security_hold_until == longer


def test_security_changes_are_refused_during_a_hold_and_allowed_after():
    """The check reads the stored hold, so a stale user object cannot slip past it."""
    user = UserFactory.create()
    security_changes_check(user=user)
    stale = type(user).objects.get(pk=user.pk)
    security_hold_extend(user=user, hours=24)
    with pytest.raises(SecurityHoldActive) as refused:
        security_changes_check(user=stale)
    assert refused.value.until == type(user).objects.get(pk=user.pk).security_hold_until
    type(user).objects.filter(pk=user.pk).update(
        security_hold_until=timezone.now() - timedelta(seconds=1)
    )
    security_changes_check(user=user)


def test_restrictions_of_a_free_account_a_held_one_a_frozen_one_and_a_revoked_one():
    """The exchange's answer for each state: what is allowed, until when, and why."""
    user = UserFactory.create()
    free = account_restrictions(user=user)
    assert free.withdrawals_allowed and free.security_changes_allowed
    assert free.until is None and free.reasons == ()

    until = security_hold_extend(user=user, hours=48)
    held = account_restrictions(user=user)
    assert not held.withdrawals_allowed and not held.security_changes_allowed
    assert held.until == until and held.reasons == (RestrictionReason.SECURITY_HOLD,)

    user.frozen_at = timezone.now()
    frozen = account_restrictions(user=user)
    assert not frozen.withdrawals_allowed and not frozen.security_changes_allowed
    assert frozen.until is None
    assert frozen.reasons == (RestrictionReason.FROZEN, RestrictionReason.SECURITY_HOLD)

    revoked = account_restrictions(user=UserFactory.create(reenrolment_required=True))
    assert not revoked.withdrawals_allowed and revoked.security_changes_allowed
    assert revoked.reasons == (RestrictionReason.TWO_FACTOR_REENROLMENT,)
