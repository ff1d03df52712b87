"""The owner who stops a recovery just after the attacker pressed "set up my authenticator".

The phisher holds the password and the SIM: they prove two methods on /recover/lost-2fa/,
sit out the wait and press "finish", which removes the owner's authenticator and backup
codes and signs the phisher's browser in to set up their own app. At that moment the owner
opens the cancel link from their inbox. The cancel must stop the phisher for real (no
setup page of any path, the signed-in browser signed out) and tell the owner the truth:
their authenticator is already gone and how they get back in.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from recovery.models import SelfServiceRecovery
from tests.factories import totp_code
from tests.recovery.self_service_helpers import cancel, customer_account, phisher_waiting

pytestmark = pytest.mark.django_db
Status = SelfServiceRecovery.Status


def test_a_cancel_after_the_reset_leaves_the_phisher_no_setup_page(capture, sms_outbox, mailoutbox):
    """The owner cancels while the attempt is ready: the phisher's browser, signed in by
    "finish", can set up an authenticator neither on /recover/lost-2fa/setup/ nor on the
    re-enrolment page /recover/2fa/setup/; it is signed out; the owner reads that the
    authenticator was already removed and that signing in sets 2FA up again."""
    user, _codes = customer_account()
    phisher, owners_link = phisher_waiting(
        capture,
        holding="phone",
        ip="203.0.113.90",
        user_agent="Phish/3",
        mailoutbox=mailoutbox,
        sms_outbox=sms_outbox,
    )

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        finished = phisher.finish()
        assert finished["Location"] == reverse("recover_lost_2fa_setup")
        assert phisher.client.get(finished["Location"]).status_code == 200
        assert phisher.attempt.status == Status.READY

        stopped = cancel(owners_link, capture)
        assert stopped.status_code == 200
        page = stopped.content.decode()
        assert "Nothing was changed on your account" not in page
        assert "authenticator app and backup codes were already removed" in page
        assert phisher.attempt.status == Status.CANCELLED
        stopped_notices = [m.body for m in [*mailoutbox, *sms_outbox] if "was stopped" in m.body]
        assert len(stopped_notices) == 2
        assert not any("Nothing was changed" in body for body in stopped_notices)
        assert all("already removed" in body for body in stopped_notices)

        for setup in ("recover_lost_2fa_setup", "recover_2fa_setup"):
            shown = phisher.client.get(reverse(setup))
            assert shown.status_code == 302, setup
            device = TOTPDevice.objects.filter(user=user).first()
            if device is not None:
                posted = phisher.client.post(reverse(setup), {"code": totp_code(device)})
                assert posted.status_code == 302, setup
        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        user = User.objects.get(pk=user.pk)
        assert user.reenrolment_required
        # The phisher's browser is no longer signed in to the account.
        assert "_auth_user_id" not in phisher.client.session
