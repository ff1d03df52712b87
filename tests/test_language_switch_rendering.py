"""The footer's language links, rendered once per language and page, are the include's own
for every language, page and setting."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.template import engines
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import set_script_prefix
from django.utils import translation

# The include as base.html had it, in place of the tag, for the same page.
WITH_INCLUDE = (
    '{% extends "recovery/case_opened.html" %}{% block language_switch %}'
    '{% include "includes/language_switch.html" with next=request.get_full_path %}'
    "{% endblock %}"
)
CONTEXT = {
    "reference": "RC-4F7K-2M9Q",
    "contact_email": "typed@example.net",
    "status_url": "https://desk.example/recover/case/abc/",
}
PAGES = [
    "/recover/help/",
    "/recover/help/?next=/account/security/&x=%C3%BC",
    '/recover/help/?q="><script>alert(1)</script>',
    "/recover/email/?é=1#frag",
]


def request_for(path: str) -> HttpRequest:
    request = RequestFactory().post(path)
    request.user = AnonymousUser()
    request.session = SessionStore()
    return request


def without_csrf_token(html: str) -> str:
    # Django masks the token anew for each rendering.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def both(path: str) -> tuple[str, str]:
    request = request_for(path)
    tag = render_to_string("recovery/case_opened.html", CONTEXT, request=request)
    include = engines["django"].from_string(WITH_INCLUDE).render(CONTEXT, request=request)
    return without_csrf_token(tag), without_csrf_token(include)


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.parametrize("path", PAGES)
def test_the_page_is_the_same_as_with_the_include(language, path):
    """The whole page, in every language, for plain and hostile paths, first rendering and
    again from what was kept, is byte for byte the page the include rendered."""
    with translation.override(language):
        for _again in range(2):
            tag, include = both(path)
            assert tag == include
            assert 'class="language"' in tag


def test_languages_changed_in_the_settings_show_at_once(settings):
    """A language added to or removed from LANGUAGES shows in the very next page."""
    with translation.override("en"):
        first, _include = both("/recover/help/")
        assert 'hreflang="de"' in first
        settings.LANGUAGES = [("en", "English")]
        tag, include = both("/recover/help/")
        assert tag == include and 'hreflang="de"' not in tag


def test_each_script_prefix_links_under_its_own(settings):
    """A site served under a path prefix links the switch under that prefix."""
    with translation.override("en"):
        try:
            set_script_prefix("/desk/")
            tag, include = both("/recover/help/")
        finally:
            set_script_prefix("/")
        assert tag == include and 'href="/desk/language/de/' in tag
        tag, include = both("/recover/help/")
        assert tag == include and 'href="/language/de/' in tag


def test_debug_renders_every_time(settings):
    """Under DEBUG (the development server reloads templates) the links are rendered anew."""
    settings.DEBUG = True
    with translation.override("de"):
        tag, include = both("/recover/help/?a=1")
        assert tag == include
