"""Each message to a customer is true in the case it is sent in, in English and in German."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from accounts.models import User
from accounts.services.holds import security_hold_extend, security_hold_lift
from notifications.models import Notification
from notifications.services import notifications_deliver
from support.roles import SUPERVISORS_GROUP
from tests.factories import UserFactory
from tests.support.conftest import staff_member

pytestmark = pytest.mark.django_db

POSSIBLE_AGAIN = {
    "en": "Security changes and withdrawals are possible again.",
    "de": "Sicherheitsänderungen und Auszahlungen sind wieder möglich.",
}


def _deliver_all() -> None:
    ids = list(Notification.objects.order_by("pk").values_list("pk", flat=True))
    notifications_deliver(notification_ids=ids)


def _held_account(*, language: str = "en", **fields: object) -> User:
    user = UserFactory.create(language=language, phone="+4915112345678")
    User.objects.filter(pk=user.pk).update(**fields)
    user.refresh_from_db()
    security_hold_extend(user=user, hours=48)
    return user


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_lifted_hold_on_an_account_still_to_set_up_2fa_does_not_promise_withdrawals(
    language, mailoutbox
):
    """After an agent's recovery the account must set up 2FA again, and the exchange keeps
    withdrawals closed until it has (`account_restrictions`). A supervisor who lifts the
    hold before then must not have the notice tell the owner withdrawals work again."""
    user = _held_account(language=language, reenrolment_required=True)
    supervisor = staff_member("super.sue@desk.example", SUPERVISORS_GROUP)

    security_hold_lift(user=user, supervisor=supervisor, reason="Owner verified by phone")
    _deliver_all()

    [mail] = [m for m in mailoutbox if m.to == [user.email]]
    assert POSSIBLE_AGAIN[language] not in mail.body
    with translation.override(language):
        expected = translation.gettext(
            "A supervisor of our support team ended the security hold on your account early. "
            "Withdrawals stay closed until two-factor authentication is set up again on your "
            "account."
        )
    assert expected in mail.body
    assert language == "en" or expected.startswith("Eine Teamleitung")


def test_a_lifted_hold_on_a_frozen_account_says_it_stays_frozen(mailoutbox):
    """A freeze outlasts the hold: nobody signs in and nothing is withdrawn until support
    clears it, so the lift's notice says so instead of "possible again"."""
    user = _held_account(frozen_at=timezone.now() - timedelta(minutes=5))
    supervisor = staff_member("super.sue@desk.example", SUPERVISORS_GROUP)

    security_hold_lift(user=user, supervisor=supervisor, reason="Duplicate hold")
    _deliver_all()

    [mail] = [m for m in mailoutbox if m.to == [user.email]]
    assert POSSIBLE_AGAIN["en"] not in mail.body
    assert "Your account stays frozen" in mail.body


def test_a_lifted_hold_on_an_unrestricted_account_says_changes_are_possible_again(mailoutbox):
    """With nothing else restricting the account, the lift does reopen everything."""
    user = _held_account()
    supervisor = staff_member("super.sue@desk.example", SUPERVISORS_GROUP)

    security_hold_lift(user=user, supervisor=supervisor, reason="Owner verified by phone")
    _deliver_all()

    [mail] = [m for m in mailoutbox if m.to == [user.email]]
    assert POSSIBLE_AGAIN["en"] in mail.body
