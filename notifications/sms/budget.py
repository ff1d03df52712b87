"""The daily SMS budget per country calling code, shared by the public forms and campaigns.

The public forms spend it one text at a time through allauth's rate limit
`recover_sms_country`; operator mailings spend it in bulk here, against the very same
counter, so a campaign and an SMS-pumping attack draw on one budget.
"""

from __future__ import annotations

import time

from allauth.core.internal import ratelimit as allauth_ratelimit
from django.core.cache import cache

SMS_BUDGET_ACTION = "recover_sms_country"


def _rate() -> allauth_ratelimit.Rate | None:
    rates = allauth_ratelimit.get_rates(app="allauth.account", action=SMS_BUDGET_ACTION)
    return rates[0] if rates else None


def _cache_key(rate: allauth_ratelimit.Rate, country_code: int) -> str:
    # Per-key rates never look at the request.
    return allauth_ratelimit.get_cache_key(
        None,
        app="allauth.account",
        action=SMS_BUDGET_ACTION,
        rate=rate,
        key=str(country_code),
    )


def sms_budget_left(*, country_code: int) -> int | None:
    """Texts still allowed today to numbers of this country code; None when unlimited."""
    rate = _rate()
    if rate is None:
        return None
    history = cache.get(_cache_key(rate, country_code), [])
    _allowed, history = allauth_ratelimit.apply_rate(history, time.time(), rate, dry_run=True)
    return max(rate.amount - len(history), 0)


def sms_budget_spend(*, country_code: int, count: int) -> int:
    """Spend up to `count` texts of today's budget; returns how many were granted.

    Under the same cache lock as allauth's own counting, so a web process answering a form
    at the same moment never sees a half-written budget. A lock not had in time grants
    nothing: the texts wait for an operator rather than overspend.
    """
    rate = _rate()
    if rate is None or count <= 0:
        return max(count, 0)
    key = _cache_key(rate, country_code)
    with allauth_ratelimit.cache_lock(key) as locked:
        if not locked:
            return 0
        now = time.time()
        history = cache.get(key, [])
        _allowed, history = allauth_ratelimit.apply_rate(history, now, rate, dry_run=True)
        granted = max(min(count, rate.amount - len(history)), 0)
        # allauth keeps the newest hit first; spreading the stamps a microsecond apart keeps
        # them distinct, as allauth's rollback expects.
        history = [now + i * 1e-6 for i in range(granted - 1, -1, -1)] + history
        cache.set(key, history, rate.duration)
    return granted
