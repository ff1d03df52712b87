"""Messages rendered once per template and language read exactly as rendered one by one."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from notifications.rendering import _skeleton, render_message

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Every template the outbox renders: <app>/email/<name>_{subject,message}.* and <app>/sms/.
OUTBOX_TEMPLATES = sorted(
    str(path.relative_to(TEMPLATES))
    for app in ("accounts", "notifications", "recovery", "support")
    for kind in ("email", "sms")
    for path in (TEMPLATES / app / kind).glob("*")
    if not path.name.startswith("_")
)
# Values with every character HTML escapes, and the marker's own characters.
HOSTILE = '<b>"O\'Brien" & co</b>\x1e\x1f'
NAMES = [
    "activate_url",
    "cancel_token",
    "case_reference",
    "close_days",
    "code",
    "effective_at",
    "explanation",
    "headline",
    "hours",
    "link_token",
    "login_email",
    "masked_email",
    "masked_new_email",
    "minutes",
    "not_me_url",
    "original_reference",
    "original_sent",
    "password_reset_url",
    "reference",
    "signup_url",
    "site_url",
    "wait_ends_at",
    "when",
]


def context(tag: str) -> dict[str, str]:
    return {name: f"{name}-{tag}-{HOSTILE}" for name in NAMES}


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("template_name", OUTBOX_TEMPLATES)
def test_every_outbox_template_reads_as_rendered_in_full(template_name, language):
    """Two messages in a row from one template (the second from the stored skeleton), with
    values HTML would have to escape: each exactly what Django renders for it."""
    with translation.override(language):
        for tag in ("first", "second"):
            values = context(tag)
            assert render_message(template_name, values) == render_to_string(template_name, values)


@pytest.mark.parametrize(
    "template_name",
    [
        "support/email/case_link_subject.txt",
        "support/email/case_link_message.txt",
        "support/email/case_link_message.html",
        "support/email/login_email_hint_message.html",
        "support/sms/login_email_hint.txt",
    ],
)
def test_the_crisis_messages_are_rendered_once_per_language(template_name):
    """The case link and the login-email hint go the short way, in German too, where the
    HTML escapes the values and the text does not."""
    with translation.override("de"):
        assert _skeleton(template_name, "de", frozenset(NAMES)) is not None
        text = render_message(template_name, context("x"))
    assert "Wiederherstellung" in text or "Recovery Desk" in text
    assert HOSTILE not in text or not template_name.endswith(".html"), "escaped in HTML"


def test_a_value_that_is_not_a_string_is_rendered_in_full():
    values: dict = {**context("x"), "minutes": 10}
    with translation.override("en"):
        assert render_message("recovery/sms/self_service_code.txt", values) == render_to_string(
            "recovery/sms/self_service_code.txt", values
        )
