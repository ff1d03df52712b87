"""The page after a password reset tells every customer a true next step."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RESET_LINK = re.compile(r"/accounts/password/reset/key/[^\s]+/")
NEW_PASSWORD = "a whole new passphrase 4711"


def test_after_a_reset_a_customer_whose_2fa_was_revoked_is_not_sent_to_an_app_they_lack(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """After a revocation campaign the account has no authenticator: the next sign-in sets
    one up. The done page of a password reset must not tell that customer to sign in with
    their authenticator app, and the sign-in indeed leads to the set-up."""
    user = UserFactory.create(email="revoked@example.com", reenrolment_required=True)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": user.email})
    link = RESET_LINK.search(mailoutbox[-1].body)
    assert link is not None
    form_url = client.get(link.group(0))["Location"]
    done = client.post(
        form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True
    )

    page = done.content.decode()
    assert "Your password is changed" in page
    assert "Sign in with your new password and your authenticator app." not in page
    assert "if two-factor authentication was reset, you set it up again" in page
    signed_in = client.post(
        reverse("account_login"), {"login": user.email, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 302
    next_step = client.get(reverse("account_security"), follow=True)
    # Set-up again, by the re-enrolment or, right after a reset through the inbox, by the
    # lost-factor path: never a code from an app.
    assert next_step.redirect_chain[-1][0] in {reverse("recover_2fa"), reverse("recover_lost_2fa")}
