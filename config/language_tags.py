"""`{% language_switch %}`: the footer's language links, rendered once per language and page."""

from __future__ import annotations

import functools
from typing import Any

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf
from django.utils.translation import get_language

register = template.Library()

TEMPLATE = "includes/language_switch.html"


def _render(next_url: str) -> str:
    # A template's rendering is already marked safe: the tag leaves it as it is.
    return render_to_string(TEMPLATE, {"next": next_url})


# What the links depend on: the active language (names, words, which one is current), where
# the site's URLs start, and the page to come back to. The last is the request's path and
# query, which anyone can vary: a bounded cache keeps the pages most asked for.
@functools.lru_cache(maxsize=512)
def _rendered(language: str | None, script_prefix: str, urlconf: Any, next_url: str) -> str:
    return _render(next_url)


@receiver(setting_changed)
def _rendered_forget(**kwargs: Any) -> None:
    # Languages, URLs, templates and catalogs all come from the settings.
    _rendered.cache_clear()


@register.simple_tag
def language_switch(next_url: str) -> str:
    """The links of includes/language_switch.html, back to `next_url`: the page rendered
    that include for every response, the same few strings for every customer of a page."""
    if settings.DEBUG:  # templates change under the development server
        return _render(next_url)
    return _rendered(get_language(), get_script_prefix(), get_urlconf(), next_url)
