"""Rate limits: several counted in one round trip, and a 429 that says when to retry."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.core import ratelimit
from allauth.core.internal import ratelimit as allauth_ratelimit
from django import forms
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic.edit import FormView
from redis.commands.core import Script

from accounts.durations import duration_in_words

# When the limit that refused cannot be read back (another process reset it meanwhile).
DEFAULT_RETRY_AFTER_SECONDS = 60


@functools.cache
def action_rates(action: str) -> tuple[allauth_ratelimit.Rate, ...]:
    """allauth's rates for `action` (ACCOUNT_RATE_LIMITS), parsed once per settings value.

    allauth rebuilds its whole table of limits and parses the action's rates on every
    call; the table only changes with the settings, which clear this on any change.
    """
    return tuple(allauth_ratelimit.get_rates(app="allauth.account", action=action))


@receiver(setting_changed)
def _action_rates_forget(**kwargs: Any) -> None:
    # Any setting, not only ACCOUNT_*: allauth reads its own through ALLAUTH_SETTING_GETTER.
    action_rates.cache_clear()


def retry_after_seconds(
    request: HttpRequest, *, action: str, key: str | None = None, user: Any = None
) -> int:
    """Seconds until `action` is allowed again for this request, from allauth's counters.

    Each rate keeps the times of its recent hits, newest first; a full rate frees a slot
    when its `amount`-th newest hit leaves the window.
    """
    now = time.time()
    wait = 0.0
    for rate in action_rates(action):
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


# --- Several limits in one round trip to Redis -------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A limit a page counts: one of ACCOUNT_RATE_LIMITS' actions, for `key` if per key."""

    action: str
    key: str | None = None


# Counts allauth's counters in place, with allauth's own rule (allauth.core.internal.ratelimit
# `apply_rate`), atomically: Redis runs a script alone, so two requests at the same instant
# never both take the last slot. A counter is what Django's Redis cache stores for allauth: a
# pickled list of hit times (floats), newest first. The script reads and writes that pickle
# itself, so allauth, `retry_after_seconds` and the SMS budget keep reading the same values.
# KEYS: each rate's counter, then its lock (allauth's `cache_lock`), rate after rate.
# ARGV: the time now (the web process's clock, as allauth stamps hits), then each rate's
# amount, duration in seconds and expiry (whole seconds, as Django's cache sets it).
# Returns {0}: every rate counted; {1, i}: rate i refused (those before it counted, as
# allauth counts one rate after another); {2, i}: allauth holds rate i's lock (nothing
# counted); {3, i}: rate i's value is not a list this script can read (nothing counted).
CONSUME_SCRIPT = rb"""
local function records_of(value)
    -- The hit times as 9-byte BINFLOAT records ("G" and a big-endian double), in order.
    if not value then
        return ""
    end
    local size = #value
    -- What this script writes: one frame, one batch. Python's pickler writes longer lists
    -- in batches of 1000 and frames of 64 KiB, which never have this shape.
    if size >= 16 and string.sub(value, 1, 3) == "\128\005\149"
        and struct.unpack("<I8", value, 4) == size - 11
        and string.sub(value, 12, 14) == "]\148(" and string.sub(value, -2) == "e."
        and (size - 16) % 9 == 0 then
        return string.sub(value, 15, size - 2)
    end
    -- Any pickle of a flat list of floats: its floats in stream order.
    local records, i = {}, 1
    while i <= size do
        local op = string.byte(value, i)
        if op == 71 then  -- BINFLOAT
            records[#records + 1] = string.sub(value, i, i + 8)
            i = i + 9
        elseif op == 128 or op == 113 then  -- PROTO, BINPUT: one byte of argument
            i = i + 2
        elseif op == 149 then  -- FRAME: eight bytes of length
            i = i + 9
        elseif op == 93 or op == 148 or op == 40 or op == 101 or op == 97 then
            i = i + 1  -- EMPTY_LIST, MEMOIZE, MARK, APPENDS, APPEND
        elseif op == 46 then  -- STOP
            return table.concat(records)
        else
            return nil
        end
    end
    return nil
end

local function pickled(records)
    local body = "]\148(" .. records .. "e."
    return "\128\005\149" .. struct.pack("<I8", #body) .. body
end

local rates = #KEYS / 2
for i = 1, rates do
    if redis.call("EXISTS", KEYS[2 * i]) == 1 then
        return {2, i}
    end
end
-- Every counter is read before any is written: one that cannot be read changes nothing.
local history = {}
for i = 1, rates do
    local key = KEYS[2 * i - 1]
    if history[key] == nil then
        history[key] = records_of(redis.call("GET", key))
        if history[key] == nil then
            return {3, i}
        end
    end
end
local now = tonumber(ARGV[1])
for i = 1, rates do
    local key = KEYS[2 * i - 1]
    local amount = tonumber(ARGV[3 * i - 1])
    local duration = tonumber(ARGV[3 * i])
    local expiry = tonumber(ARGV[3 * i + 1])
    local records = history[key]
    -- The oldest hits are last: drop those out of the window, then count the rest.
    local kept = #records / 9
    while kept > 0
        and struct.unpack(">d", records, 9 * (kept - 1) + 2) <= now - duration do
        kept = kept - 1
    end
    if kept >= amount then
        return {1, i}
    end
    if expiry > 0 then
        history[key] = "G" .. struct.pack(">d", now) .. string.sub(records, 1, 9 * kept)
        redis.call("SET", key, pickled(history[key]), "EX", expiry)
    else
        history[key] = ""
        redis.call("DEL", key)
    end
end
return {0}
"""
_consume_script = Script(None, CONSUME_SCRIPT)  # type: ignore[arg-type]
COUNTED, REFUSED, LOCKED, UNREADABLE = 0, 1, 2, 3


@dataclass(frozen=True)
class _CountedRate:
    limit: Limit
    rate: allauth_ratelimit.Rate
    cache_key: str


def _rates_of(request: HttpRequest, limits: Sequence[Limit]) -> list[_CountedRate]:
    return [
        _CountedRate(
            limit,
            rate,
            allauth_ratelimit.get_cache_key(
                request, app="allauth.account", action=limit.action, rate=rate, key=limit.key
            ),
        )
        for limit in limits
        for rate in action_rates(limit.action)
    ]


def limits_consume(request: HttpRequest, limits: Sequence[Limit]) -> Limit | None:
    """Count `limits` in order, as `allauth.core.ratelimit.consume` would one after another:
    the first limit refused is returned (those before it are counted, those after it not);
    None when every limit allowed the request and counted it.

    On Redis, every rate of every limit is counted by one script in one round trip; allauth
    takes a lock and sends four commands per rate. Redis down raises, as allauth does.
    """
    if request.method == "GET":  # allauth leaves GET uncounted
        return None
    backend = caches["default"]
    if not isinstance(backend, DjangoRedisCache):
        return _limits_consume_by_allauth(request, limits)
    rates = _rates_of(request, limits)
    if not rates:
        return None
    keys: list[str] = []
    args: list[float | int] = []
    for counted in rates:
        keys += [
            backend.make_and_validate_key(counted.cache_key),
            backend.make_and_validate_key(f"{counted.cache_key}:lock"),
        ]
        duration = counted.rate.duration
        args += [counted.rate.amount, duration, max(0, int(duration))]
    client = backend._cache.get_client(write=True)
    # allauth's own wait for its lock: a few short retries within a second, then refused.
    deadline = time.monotonic() + allauth_ratelimit.CACHE_LOCK_WAIT_TIMEOUT
    retry_interval = allauth_ratelimit.CACHE_LOCK_RETRY_INTERVAL
    while True:
        outcome, *index = _consume_script(keys=keys, args=[time.time(), *args], client=client)
        if outcome == COUNTED:
            return None
        refusing = rates[index[0] - 1].limit
        if outcome == REFUSED:
            return refusing
        if outcome == UNREADABLE:
            return _limits_consume_by_allauth(request, limits)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return refusing
        time.sleep(min(retry_interval, remaining))
        retry_interval = min(retry_interval * 2, allauth_ratelimit.CACHE_LOCK_MAX_RETRY_INTERVAL)


def _limits_consume_by_allauth(request: HttpRequest, limits: Sequence[Limit]) -> Limit | None:
    for limit in limits:
        if not ratelimit.consume(request, action=limit.action, key=limit.key):
            return limit
    return None
