"""The passkey buttons work from their first click: the translation catalog they call runs
before the passkey module.

django-otp-webauthn's own snippets load the catalog `async`, which may run after the
module; a click in between calls an undefined gettext() and does nothing. A deferred
classic script and a module script run in document order, so the catalog comes first.
"""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

SNIPPETS: list[tuple[str, dict[str, object]]] = [
    ("django_otp_webauthn/auth_scripts.html", {"configuration": {}}),
    ("django_otp_webauthn/register_scripts.html", {"configuration": {}}),
    ("recovery/includes/passkey_proof.html", {"passkey_config": {}}),
]
SCRIPT = re.compile(r"<script\b([^>]*)>")


@pytest.mark.parametrize(("template", "context"), SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_the_catalog_runs_before_the_passkey_module(template, context):
    scripts = SCRIPT.findall(render_to_string(template, context))
    sources = [attributes for attributes in scripts if "src=" in attributes]
    catalog = next(i for i, a in enumerate(sources) if "jsi18n" in a)
    module = next(i for i, a in enumerate(sources) if 'type="module"' in a)
    assert catalog < module, sources
    assert " defer" in sources[catalog] and " async" not in sources[catalog], sources[catalog]
