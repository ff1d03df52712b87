"""Hostile input on every public form, link and status-page action (SPEC §7).

Property-based (hypothesis): whatever a stranger sends — any text, any length, markup,
control characters, a body in an unknown or a lying character set — the answer is never a
server error, never reflects the input unescaped, and a refused request writes nothing.
The fast run tries a few dozen requests; the slow-marked runs try 10,000 in all.
"""

from __future__ import annotations

import urllib.parse

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.services import case_open
from tests.conftest import database_fingerprint
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FAST_EXAMPLES = 40
SLOW_EXAMPLES = 10_000

MARKUP = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</textarea><b>x</b>"]
# Text a form may meet: anything, markup, the edges of the columns, and near-valid values.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=400),
    st.sampled_from(MARKUP),
    st.builds(lambda a, m: a + m, st.text(max_size=10), st.sampled_from(MARKUP)),
    st.sampled_from(["", " ", "+49 151 23456789", "x@example.com", "a" * 250 + "@example.com"]),
    st.builds(lambda n: "a" * n + "@example.com", st.integers(min_value=240, max_value=330)),
)
CHARSETS = ["utf-8", "latin-1", "utf-16", "x-unknown-charset", "utf-7", "ascii", ""]

FORMS = {
    "recover_email": ["phone"],
    "recover_help": ["contact_email", "contact_phone", "emails_tried", "description"],
    "recover_verify_message": ["reference"],
    "account_reset_password": ["email"],
    "account_signup": ["email", "phone", "password1", "password2"],
    "account_login": ["login", "password", "next"],
}
LINKS = [
    "recover_case_link",
    "recover_not_me_link",
    "recover_reset_link",
    "recover_email_change_cancel_link",
]
STATUS_ACTIONS = ["reply", "send_phone_code", "send_email_code", "verify_code", "not_helped"]
TOKEN_PAGES = ["recover_case", "recover_not_me", "recover_reset", "recover_email_change_cancel"]

REQUESTS = {
    "form": st.tuples(
        st.just("form"), st.sampled_from(sorted(FORMS)), st.fixed_dictionaries({}), hostile_text
    ),
    "link": st.tuples(st.just("link"), st.sampled_from(LINKS), st.just({}), hostile_text),
    "status": st.tuples(
        st.just("status"),
        st.one_of(st.sampled_from(STATUS_ACTIONS), hostile_text),
        st.fixed_dictionaries(
            {"message": hostile_text, "kind": hostile_text, "code": hostile_text}
        ),
        hostile_text,
    ),
    "page": st.tuples(st.just("page"), st.sampled_from(TOKEN_PAGES), st.just({}), hostile_text),
    "charset": st.tuples(
        st.just("charset"), st.sampled_from(sorted(FORMS)), st.just({}), hostile_text
    ),
}
request_strategy = st.one_of(*REQUESTS.values())


@pytest.fixture
def states() -> list:
    """The database as the previous example left it (hypothesis reruns the test body)."""
    return []


@pytest.fixture
def stranger(settings) -> Client:
    """A browser holding a status page of its own (a request for a registered phone)."""
    settings.ACCOUNT_RATE_LIMITS = {name: False for name in settings.ACCOUNT_RATE_LIMITS}
    user = UserFactory(email="holder@example.com", phone="+4915123456789")
    client = Client(raise_request_exception=True)
    assert user.phone is not None
    opened = case_open(contact_email="stranger@example.net", contact_phone=user.phone)
    assert client.get(reverse("recover_case_link", args=[opened.link_token])).status_code == 302
    return client


def _send(client: Client, kind: str, target: str, fields: dict, value: str, data):
    """One request; returns the answer and the values it carried."""
    if kind == "form":
        values = {name: data.draw(hostile_text) for name in FORMS[target]}
        values[FORMS[target][0]] = value
        return client.post(reverse(target), values), values.values()
    if kind == "link":
        token = urllib.parse.quote(value.replace("/", ""), safe="") or "x"
        return client.get(reverse(target, args=["T"]).replace("/T/", f"/{token}/")), [value]
    if kind == "status":
        values = {"action": target, **fields}
        return client.post(
            reverse("recover_case") + "?sent=" + urllib.parse.quote(value), values
        ), [
            *values.values(),
            value,
        ]
    if kind == "page":
        return client.post(reverse(target), {"password": value, "new_password1": value}), [value]
    charset = data.draw(st.sampled_from(CHARSETS))
    body = urllib.parse.urlencode({FORMS[target][0]: value}).encode("utf-8", "surrogatepass")
    content_type = "application/x-www-form-urlencoded" + (f"; charset={charset}" if charset else "")
    return client.generic("POST", reverse(target), body, content_type=content_type), [value]


def _check_one(client: Client, data, states: list, requests=request_strategy) -> None:
    kind, target, fields, value = data.draw(requests)
    # What the last example left is what this one starts from: one snapshot per example.
    before = states[-1] if states else database_fingerprint()
    states.clear()
    response, sent = _send(client, kind, target, fields, value, data)
    assert response.status_code < 500, (kind, target, response.status_code)
    body = response.content.decode("utf-8", "replace")
    for text in sent:
        if isinstance(text, str) and "<" in text and len(text) >= 8:
            assert text not in body, f"{kind} {target} reflects {text!r} unescaped"
    after = database_fingerprint()
    if response.status_code >= 400:
        assert after == before, f"{kind} {target} wrote before refusing"
    states.append(after)


@settings(
    max_examples=FAST_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_input_never_breaks_a_public_page(stranger, states, data):
    """A few dozen hostile requests: no 5xx, no unescaped echo, nothing half-written."""
    _check_one(stranger, data, states)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REQUESTS))
@settings(
    max_examples=SLOW_EXAMPLES // len(REQUESTS),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_ten_thousand_hostile_requests_never_break_a_public_page(stranger, states, kind, data):
    """10,000 hostile requests over every public form, link and status-page action, in five
    runs of one kind each (so `-n` can spread them over processes)."""
    _check_one(stranger, data, states, REQUESTS[kind])
