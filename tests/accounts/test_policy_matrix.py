"""The recovery policy as a matrix: every set of proven methods against every action.

The expectations below are SPEC §4a written out independently of `accounts.policy`'s table;
every action in the table must have one, so a new action cannot go untested.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.policy import POLICY, POSSESSION, Action, Method, Proof, policy_check

NOW = timezone.now()
ACCOUNT = {Method.PHONE_CODE, Method.EMAIL_CODE, Method.BACKUP_CODE, Method.AUTHENTICATOR}
ACCOUNT_OR_PASSWORD = ACCOUNT | {Method.PASSWORD}
EMAIL_CHANGE_ACCOUNT_PROOF = {
    Method.PHONE_CODE,
    Method.BACKUP_CODE,
    Method.PASSWORD,
    Method.AUTHENTICATOR,
}

EXPECTED = {
    Action.TELL_LOGIN_EMAIL: lambda s: Method.PHONE_CODE in s,
    Action.REAUTHENTICATE: lambda s: (
        bool(s & ACCOUNT) and (len(s & ACCOUNT_OR_PASSWORD) >= 2 or Method.DOCUMENT in s)
    ),
    Action.LOGIN_EMAIL_CHANGE: lambda s: (
        Method.NEW_EMAIL_CODE in s and bool(s & EMAIL_CHANGE_ACCOUNT_PROOF)
    ),
    Action.SELF_SERVICE_LOST_FACTOR: lambda s: (
        bool(s & {Method.PASSWORD, Method.BACKUP_CODE})
        and bool(s & {Method.PHONE_CODE, Method.EMAIL_CODE, Method.AUTHENTICATOR})
    ),
    Action.SELF_SERVICE_NEW_EMAIL: lambda s: (
        {
            Method.PASSWORD,
            Method.PHONE_CODE,
            Method.NEW_EMAIL_CODE,
        }
        <= s
    ),
    Action.SELF_SERVICE_APP_WITH_PASSKEY: lambda s: {Method.PASSWORD, Method.AUTHENTICATOR} <= s,
}

ALL_SETS = [
    frozenset(combination)
    for size in range(len(Method) + 1)
    for combination in itertools.combinations(Method, size)
]


def proofs_of(methods, *, age=timedelta(minutes=5), attested_by=1, approved_by=2):
    return [
        Proof(
            method=method,
            at=NOW - age,
            attested_by=attested_by if method == Method.DOCUMENT else None,
            approved_by=approved_by if method == Method.DOCUMENT else None,
        )
        for method in methods
    ]


def test_every_action_in_the_table_has_an_expectation_and_its_settings_exist():
    """The matrix covers the whole table; hold and wait lengths name real settings."""
    assert set(POLICY) == set(EXPECTED)
    for rule in POLICY.values():
        for name in filter(None, (rule.hold_setting, rule.wait_setting)):
            assert isinstance(getattr(settings, name), int)
    assert POSSESSION == ACCOUNT


@pytest.mark.parametrize("action", list(Action))
def test_matrix_of_proven_methods(action):
    """All 128 sets of proven methods are allowed or refused exactly as SPEC §4a says."""
    for methods in ALL_SETS:
        decision = policy_check(action, proofs_of(methods), now=NOW)
        assert decision.allowed == EXPECTED[action](methods), sorted(methods)
        assert decision.allowed or decision.missing, sorted(methods)


@pytest.mark.parametrize(
    "methods",
    [
        {Method.PHONE_CODE},
        {Method.EMAIL_CODE},
    ],
    ids=["SIM swapper", "inbox thief"],
)
def test_one_possession_alone_recovers_nothing_but_the_login_email_hint(methods):
    """A SIM swapper (phone code) or an inbox thief (email code) can neither re-authenticate
    nor change the login email, nor move the account to a new address."""
    for action in (
        Action.REAUTHENTICATE,
        Action.LOGIN_EMAIL_CHANGE,
        Action.SELF_SERVICE_LOST_FACTOR,
        Action.SELF_SERVICE_NEW_EMAIL,
    ):
        assert not policy_check(action, proofs_of(methods), now=NOW)


@pytest.mark.parametrize(
    ("attested_by", "approved_by"),
    [(7, None), (None, 7), (7, 7)],
    ids=["unapproved", "unattested", "one person"],
)
def test_a_document_counts_only_with_two_different_staff_members(attested_by, approved_by):
    """The lone agent: a phone code plus their own attestation (or one person both attesting
    and approving) does not re-authenticate."""
    proofs = proofs_of(
        {Method.PHONE_CODE, Method.DOCUMENT}, attested_by=attested_by, approved_by=approved_by
    )
    decision = policy_check(Action.REAUTHENTICATE, proofs, now=NOW)
    assert not decision
    assert decision.missing
    assert policy_check(
        Action.REAUTHENTICATE,
        proofs_of({Method.PHONE_CODE, Method.DOCUMENT}, attested_by=7, approved_by=8),
        now=NOW,
    )


def test_proofs_older_than_the_window_do_not_count():
    """Two proofs a day apart are not two proofs within 24 hours."""
    fresh = proofs_of({Method.PHONE_CODE})
    stale = proofs_of({Method.EMAIL_CODE}, age=timedelta(hours=24, minutes=1))
    assert not policy_check(Action.REAUTHENTICATE, fresh + stale, now=NOW)
    assert policy_check(Action.REAUTHENTICATE, fresh + proofs_of({Method.EMAIL_CODE}), now=NOW)


def test_the_refusal_says_what_is_missing_in_words():
    """With the phone proven, re-authentication names the second proof it still needs."""
    decision = policy_check(Action.REAUTHENTICATE, proofs_of({Method.PHONE_CODE}), now=NOW)
    words = [str(item) for item in decision.missing]
    assert len(words) == 1
    assert "email on file" in words[0] and "password" in words[0]
    assert "phone on file" not in words[0].split("one of:")[0]


def test_an_email_change_always_needs_an_approval_of_its_own():
    """Proofs never replace the supervisor's approval of a login-email change."""
    decision = policy_check(
        Action.LOGIN_EMAIL_CHANGE,
        proofs_of({Method.NEW_EMAIL_CODE, Method.PHONE_CODE}),
        now=NOW,
    )
    assert decision.allowed and decision.needs_approval
    assert not policy_check(
        Action.REAUTHENTICATE, proofs_of({Method.PHONE_CODE, Method.PASSWORD}), now=NOW
    ).needs_approval
