"""Rotating SECRET_KEY: stored codes and link hashes verify while the old key is a fallback."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import pytest

from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates, keyed_hash_matches
from accounts.models import BackupCode, OneTimeCode
from accounts.services.audit import AuditContext
from accounts.services.tokens import (
    CodeCheck,
    not_me_link_find,
    not_me_link_issue,
    one_time_code_check,
    one_time_code_issue,
)
from accounts.services.two_factor import two_factor_provision, two_factor_verify
from support.services.cases import case_link_redeem, case_open
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

KEY_A = "rotation-test-key-a-" + "a" * 40
KEY_B = "rotation-test-key-b-" + "b" * 40


@pytest.fixture
def rotate(settings) -> Callable[..., None]:
    """Start on key A; `rotate(keep_a=...)` makes B the key, with or without A as a fallback."""
    settings.SECRET_KEY = KEY_A
    settings.SECRET_KEY_FALLBACKS = []

    def to_key_b(*, keep_a: bool) -> None:
        settings.SECRET_KEY = KEY_B
        settings.SECRET_KEY_FALLBACKS = [KEY_A] if keep_a else []

    return to_key_b


def test_backup_codes_made_with_key_a_sign_in_while_a_is_a_fallback(rotate):
    """A backup code stored under key A signs in after SECRET_KEY became B with A kept as a
    fallback; once A is dropped, another code of the same set is refused and stays unused."""
    user = UserFactory.create()
    _device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)

    rotate(keep_a=True)
    used = two_factor_verify(user=user, code=codes[0], context=AuditContext())
    assert used.device is not None
    assert BackupCode.objects.filter(device__user=user).count() == 9

    rotate(keep_a=False)
    refused = two_factor_verify(user=user, code=codes[1], context=AuditContext())
    assert refused.device is None
    assert BackupCode.objects.filter(device__user=user).count() == 9


def test_one_time_codes_made_with_key_a_pass_while_a_is_a_fallback(rotate):
    """A six-digit code sent before the rotation is accepted with A as a fallback and counted
    as a wrong code once A is gone."""
    user = UserFactory.create()
    purpose = OneTimeCode.Purpose.PROVE_PHONE
    _row, kept = one_time_code_issue(user=user, purpose=purpose, scope="kept")
    dropped_row, dropped = one_time_code_issue(user=user, purpose=purpose, scope="dropped")

    rotate(keep_a=True)
    assert one_time_code_check(user=user, purpose=purpose, code=kept, scope="kept") == CodeCheck.OK

    rotate(keep_a=False)
    check = one_time_code_check(user=user, purpose=purpose, code=dropped, scope="dropped")
    assert check == CodeCheck.WRONG
    dropped_row.refresh_from_db()
    assert dropped_row.attempts == 1 and dropped_row.consumed_at is None


def test_not_me_link_made_with_key_a_opens_while_a_is_a_fallback(rotate):
    """The "this wasn't me" link of a notice sent under key A still opens after the rotation
    with A as a fallback, and no longer opens once A is removed."""
    user = UserFactory.create()
    token = not_me_link_issue(user=user, security_event=None)

    rotate(keep_a=True)
    link = not_me_link_find(token=token)
    assert link is not None and link.user == user

    rotate(keep_a=False)
    assert not_me_link_find(token=token) is None


def test_case_status_link_made_with_key_a_opens_while_a_is_a_fallback(rotate):
    """A case status link emailed under key A is refused once A is dropped, and redeems when
    A is listed as a fallback again."""
    opened = case_open(contact_email="someone@example.net", description="Lost my phone.")

    rotate(keep_a=False)
    assert case_link_redeem(token=opened.link_token) is None

    rotate(keep_a=True)
    assert case_link_redeem(token=opened.link_token) == opened.case


@pytest.mark.parametrize("purpose", list(HashPurpose))
def test_every_purpose_checks_the_current_key_then_each_fallback(rotate, purpose):
    """For each kind of stored secret, a hash made under A is among the lookup candidates and
    matches while A is a fallback, and neither once A is gone; new hashes use the current key."""
    stored = keyed_hash("value", purpose=purpose)

    rotate(keep_a=True)
    assert keyed_hash_candidates("value", purpose=purpose) == [
        keyed_hash("value", purpose=purpose),
        stored,
    ]
    assert keyed_hash_matches("value", stored, purpose=purpose)
    assert not keyed_hash_matches("other value", stored, purpose=purpose)

    rotate(keep_a=False)
    assert stored not in keyed_hash_candidates("value", purpose=purpose)
    assert not keyed_hash_matches("value", stored, purpose=purpose)


def test_each_purpose_derives_its_own_key():
    """The same value hashes differently per purpose, so a token of one kind of link never
    matches a lookup for another kind."""
    for first, second in combinations(HashPurpose, 2):
        assert keyed_hash("same", purpose=first) != keyed_hash("same", purpose=second)
