"""Answers over a rate limit: a 429 that says when to retry and keeps what was typed."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.core.internal import ratelimit as allauth_ratelimit
from django import forms
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic.edit import FormView

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
    template: str | Sequence[str] = "429.html",
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


@dataclass(frozen=True)
class AllauthLimit:
    """One of allauth's own limits, as a page of allauth consumes it.

    `key_field` is the form field whose typed value, lower-cased, allauth keys the limit
    by; `keeps_input` says the page is shown again with what was typed (passwords never).
    """

    action: str
    key_field: str | None = None
    keeps_input: bool = False


# allauth's pages that answer 429 through handler429, by URL name, with the limit each
# consumes: the handler is given only the request, and reads the limit that refused here.
ALLAUTH_LIMITED_PAGES: dict[str, AllauthLimit] = {
    "account_login": AllauthLimit(action="login", keeps_input=True),
    "account_signup": AllauthLimit(action="signup", keeps_input=True),
    "account_reset_password": AllauthLimit(
        action="reset_password", key_field="email", keeps_input=True
    ),
    "account_reset_password_from_key": AllauthLimit(action="reset_password_from_key"),
    "account_change_password": AllauthLimit(action="change_password"),
    "account_reauthenticate": AllauthLimit(action="reauthenticate"),
}


def typed_input_form(view: FormView) -> forms.Form:
    """The view's form again, unbound, filled with what was typed except any password."""
    form_kwargs = view.get_form_kwargs()
    typed = form_kwargs.pop("data", None) or {}
    form_kwargs.pop("files", None)
    form_class = view.get_form_class()
    kept = {
        name: typed.get(name)
        for name, field in form_class(**form_kwargs).fields.items()
        if name in typed and not isinstance(field.widget, forms.PasswordInput)
    }
    form_kwargs["initial"] = {**form_kwargs.get("initial", {}), **kept}
    return form_class(**form_kwargs)


def allauth_form_page_too_many(
    view: FormView, *, action: str, key: str | None = None
) -> HttpResponse:
    """One of allauth's form pages over `action`'s limit: 429, the page with what was typed."""
    return too_many_response(
        view.request,
        action=action,
        key=key,
        template=view.get_template_names(),
        context=view.get_context_data(form=typed_input_form(view)),
    )


def allauth_too_many_response(request: HttpRequest) -> HttpResponse:
    """handler429: allauth's refusal, with the wait of the limit that refused and, on the
    sign-in, sign-up and reset pages, the page again with what was typed."""
    match = request.resolver_match
    limit = ALLAUTH_LIMITED_PAGES.get(match.url_name or "") if match else None
    if match is None or limit is None:
        return too_many_response(request)
    key = None
    if limit.key_field:
        key = str(request.POST.get(limit.key_field, "")).strip().lower()
    view_class = getattr(match.func, "view_class", None)
    if limit.keeps_input and view_class is not None and issubclass(view_class, FormView):
        view = view_class()
        view.setup(request, *match.args, **match.kwargs)
        return allauth_form_page_too_many(view, action=limit.action, key=key)
    return too_many_response(request, action=limit.action, key=key)
