"""Answers over a rate limit: a 429 that says when to retry and keeps what was typed."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from allauth.core.internal import ratelimit as allauth_ratelimit
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.durations import duration_in_words

# When the limit that refused cannot be read back (another process reset it meanwhile).
DEFAULT_RETRY_AFTER_SECONDS = 60


def retry_after_seconds(
    request: HttpRequest, *, action: str, key: str | None = None, user: Any = None
) -> int:
    """Seconds until `action` is allowed again for this request, from allauth's counters.

    Each rate keeps the times of its recent hits, newest first; a full rate frees a slot
    when its `amount`-th newest hit leaves the window.
    """
    now = time.time()
    wait = 0.0
    for rate in allauth_ratelimit.get_rates(app="allauth.account", action=action):
        if rate.per == "key" and key is None:
            continue
        if rate.per == "user" and user is None and not request.user.is_authenticated:
            continue
        cache_key = allauth_ratelimit.get_cache_key(
            request, app="allauth.account", action=action, rate=rate, key=key, user=user
        )
        history = [ts for ts in cache.get(cache_key, []) if ts > now - rate.duration]
        if len(history) >= rate.amount:
            freed_at = history[rate.amount - 1] if rate.amount else now
            wait = max(wait, freed_at + rate.duration - now)
    return max(math.ceil(wait), 1) if wait else DEFAULT_RETRY_AFTER_SECONDS


def too_many_response(
    request: HttpRequest,
    *,
    action: str | None = None,
    key: str | None = None,
    user: Any = None,
    template: str = "429.html",
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """HTTP 429 with `Retry-After`; given a form page's template and context, that page
    again (with what the customer typed) under a notice saying how long to wait."""
    seconds = (
        retry_after_seconds(request, action=action, key=key, user=user)
        if action
        else DEFAULT_RETRY_AFTER_SECONDS
    )
    response = render(
        request,
        template,
        {**(context or {}), "too_many": {"wait": duration_in_words(timedelta(seconds=seconds))}},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
