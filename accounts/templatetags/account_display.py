"""Filters for the customer's security page: readable devices and durations in words."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django import template
from django.utils.translation import gettext as _
from ua_parser import parse

from accounts.durations import time_since_in_words, time_until_in_words

register = template.Library()


@lru_cache(maxsize=512)
def _device_parts(user_agent: str) -> tuple[str, str, str]:
    result = parse(user_agent[:1000])
    browser = result.user_agent.family if result.user_agent else ""
    system = result.os.family if result.os else ""
    device = result.device.family if result.device else ""
    return browser, system, "" if device in {"Other", "Generic Smartphone"} else device


@register.filter
def device_name(user_agent: str | None) -> str:
    """ "Chrome on Windows", "Mobile Safari on iOS (iPhone)", or "Unknown device"."""
    browser, system, device = _device_parts(user_agent or "")
    if browser in {"", "Other"}:
        return _("Unknown device")
    if system in {"", "Other"}:
        return browser
    name = _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return f"{name} ({device})" if device and device not in {"Mac", "Other"} else name


@register.filter
def ago(moment: datetime | None) -> str:
    """How long ago, in words, never "0 minutes"."""
    return time_since_in_words(moment) if moment else ""


@register.filter
def from_now(moment: datetime | None) -> str:
    """How long from now, in words (at least "1 second")."""
    return time_until_in_words(moment) if moment else ""
