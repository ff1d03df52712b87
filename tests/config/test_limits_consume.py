"""Several rate limits counted in one Redis script: allauth's rule, allauth's stored values,
allauth's lock respected, and never one slot too many when requests arrive together."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import time_machine
from allauth.core import ratelimit
from allauth.core.internal import ratelimit as allauth_ratelimit
from allauth.core.internal.ratelimit import Rate
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from config.ratelimits import Limit, limits_consume, retry_after_seconds
from notifications.sms.budget import sms_budget_left, sms_budget_spend
from tests.concurrency import run_together
from tests.conftest import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def limits(settings):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "t_ours": "3/h/ip,2/10m/key",
        "t_allauth": "3/h/ip,2/10m/key",
        "t_first": "1/h/ip",
        "t_second": "1/h/key",
        "t_budget": "20000/d/key",
    }


def post(ip: str = "192.0.2.1"):
    return RequestFactory().post("/", REMOTE_ADDR=ip)


def counter_key(action: str, rate: str, *, ip: str = "192.0.2.1", key: str | None = None) -> str:
    """Where allauth keeps the hits of one limit of `action` for this address or key."""
    return allauth_ratelimit.get_cache_key(
        post(ip),
        app="allauth.account",
        action=action,
        rate=allauth_ratelimit.parse_rate(rate),
        key=key,
    )


def history(action: str, rate: str, *, ip: str = "192.0.2.1", key: str | None = None):
    return cache.get(counter_key(action, rate, ip=ip, key=key))


def test_counts_and_stores_exactly_as_allauth_does(redis_cache, limits):
    """The same calls at the same clock through the script and through allauth, across
    refusals and hits leaving the window: the same answers and the same stored lists."""
    steps = [0, 1, 2, 3, 60, 700, 701, 702, 3500, 3601, 3602, 4300, 4301, 9000]
    with time_machine.travel(1_800_000_000.25, tick=False) as clock:
        start = time.time()
        for at in steps:
            clock.move_to(start + at)
            for key in ("alpha", "beta"):
                ours = limits_consume(post(), [Limit("t_ours", key=key)]) is None
                theirs = ratelimit.consume(post(), action="t_allauth", key=key)
                assert ours == theirs, (at, key)
                assert history("t_ours", "2/10m/key", key=key) == history(
                    "t_allauth", "2/10m/key", key=key
                )
            assert history("t_ours", "3/h/ip") == history("t_allauth", "3/h/ip")
    assert len(history("t_ours", "3/h/ip")) == 2, "the old hits left the window"


def test_a_refused_limit_stops_the_count_as_allauth_does(redis_cache, limits):
    """The limits before the one that refused are counted, those after it not."""
    pair = [Limit("t_first"), Limit("t_second", key="k")]
    assert limits_consume(post(), pair) is None
    assert limits_consume(post(), pair) == Limit("t_first")
    assert len(history("t_second", "1/h/key", key="k")) == 1, "not counted after a refusal"

    other_ip = post("192.0.2.2")
    assert limits_consume(other_ip, pair) == Limit("t_second", key="k")
    assert len(history("t_first", "1/h/ip", ip="192.0.2.2")) == 1, "counted before it"


@pytest.mark.parametrize("spent", [0, 1, 999, 1500, 9000])
def test_reads_and_extends_what_the_sms_budget_and_allauth_wrote(redis_cache, limits, spent):
    """Python's pickles of every length (batches of 1000, frames of 64 KiB) are counted on;
    what the script writes reads back as allauth's list, newest first."""
    with time_machine.travel(1_800_000_000.5, tick=False):
        assert sms_budget_spend_as("t_budget", spent) == spent
        before = history("t_budget", "20000/d/key", key="49")
        assert limits_consume(post(), [Limit("t_budget", key="49")]) is None
        after = history("t_budget", "20000/d/key", key="49")
        assert after == [time.time(), *(before or [])]
        assert ratelimit.consume(post(), action="t_budget", key="49"), "allauth reads it"
        assert len(history("t_budget", "20000/d/key", key="49")) == spent + 2


def sms_budget_spend_as(action: str, count: int) -> int:
    from notifications.sms import budget

    saved = budget.SMS_BUDGET_ACTION
    budget.SMS_BUDGET_ACTION = action
    try:
        return sms_budget_spend(country_code=49, count=count)
    finally:
        budget.SMS_BUDGET_ACTION = saved


def test_a_value_the_script_cannot_read_is_counted_by_allauth_once(redis_cache, limits):
    """A list pickled with an integer in it (not what allauth writes, but a list allauth
    reads): the script changes nothing and allauth counts every limit, each once."""
    with time_machine.travel(1_800_000_000.5, tick=False):
        now = time.time()
        cache_key = allauth_ratelimit.get_cache_key(
            post(), app="allauth.account", action="t_second", rate=Rate(1, 3600, "key"), key="k"
        )
        cache.set(cache_key, [now - 7200, 1], 3600)  # both out of the window
        assert limits_consume(post(), [Limit("t_first"), Limit("t_second", key="k")]) is None
        assert history("t_first", "1/h/ip") == [now]
        assert history("t_second", "1/h/key", key="k") == [now]


def test_one_limit_named_twice_is_counted_twice_as_allauth_would(redis_cache, limits):
    assert limits_consume(post(), [Limit("t_ours", key="k"), Limit("t_ours", key="k")]) is None
    assert len(history("t_ours", "2/10m/key", key="k")) == 2
    assert limits_consume(post(), [Limit("t_ours", key="k")]) == Limit("t_ours", key="k")


def test_the_sms_budget_sees_what_the_forms_spent(redis_cache, settings):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "recover_sms_country": "5/d/key",
    }
    for _ in range(2):
        assert limits_consume(post(), [Limit("recover_sms_country", key="49")]) is None
    assert sms_budget_left(country_code=49) == 3
    assert sms_budget_spend(country_code=49, count=10) == 3
    assert limits_consume(post(), [Limit("recover_sms_country", key="49")]) is not None


def test_waits_for_allauths_lock_and_counts_once_it_is_given_back(redis_cache, limits):
    lock = f"{counter_key('t_first', '1/h/ip')}:lock"
    assert cache.add(lock, True, timeout=10)
    release = threading.Timer(0.3, cache.delete, [lock])
    started = time.monotonic()
    release.start()
    assert limits_consume(post(), [Limit("t_first")]) is None
    assert time.monotonic() - started >= 0.3, "nothing counted while the lock was held"
    assert len(history("t_first", "1/h/ip")) == 1


def test_a_lock_held_past_allauths_wait_refuses_and_counts_nothing(redis_cache, limits):
    pair = [Limit("t_second", key="k"), Limit("t_first")]
    assert cache.add(f"{counter_key('t_first', '1/h/ip')}:lock", True, timeout=10)
    assert limits_consume(post(), pair) == Limit("t_first")
    assert history("t_second", "1/h/key", key="k") is None
    assert history("t_first", "1/h/ip") is None


@pytest.mark.parametrize("amount", [1, 3])
def test_requests_at_the_same_instant_never_share_the_last_slot(redis_cache, settings, amount):
    """Twelve requests at once, half counted by the script and half by allauth's own lock
    and four commands, on one counter: exactly `amount` pass, each counted once."""
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "t_race": f"{amount}/h/key",
        "t_other": "100/h/ip",
    }
    ours = [
        lambda: limits_consume(post(), [Limit("t_other"), Limit("t_race", key="k")]) is None
    ] * 6
    theirs = [lambda: ratelimit.consume(post(), action="t_race", key="k")] * 6
    for _round in range(5):
        cache.clear()
        passed = run_together([*ours, *theirs])
        assert sum(passed) == amount, passed
        assert len(history("t_race", f"{amount}/h/key", key="k")) == amount


def test_redis_down_raises_rather_than_letting_the_request_through(settings, limits):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}
    }
    with pytest.raises(redis.exceptions.ConnectionError):
        limits_consume(post(), [Limit("t_first")])


def help_post(ip: str, phone: str):
    return Client(REMOTE_ADDR=ip).post(
        reverse("recover_help"),
        {
            "contact_email": "someone@example.net",
            "contact_phone": phone,
            "emails_tried": "",
            "description": "I cannot sign in any more.",
        },
    )


@pytest.mark.django_db
def test_the_help_form_refuses_on_redis_with_the_wait_of_the_limit_that_refused(redis_cache):
    """Five requests an hour per address, three per number: the 429 says how long the
    refusing counter really has left."""
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        for n in range(5):
            clock.shift(60)
            assert help_post("198.51.100.7", f"+4917620000{n:03d}").status_code == 200
        clock.shift(600)
        by_address = help_post("198.51.100.7", "+4917620000999")
        assert by_address.status_code == 429
        assert by_address["Retry-After"] == str(3600 - 600 - 4 * 60)

        for n in range(3):
            assert help_post(f"203.0.113.{n + 1}", "+4917620000042").status_code == 200
        clock.shift(100)
        by_number = help_post("203.0.113.9", "+4917620000042")
        assert by_number.status_code == 429
        assert by_number["Retry-After"] == str(3600 - 100)
        request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9")
        assert retry_after_seconds(request, action="recover_help") == 60, "not full"
        assert len(cache.get(first_key(request, "recover_help"))) == 1, "the form counted it"


def first_key(request, action: str) -> str:
    rate = allauth_ratelimit.get_rates(app="allauth.account", action=action)[0]
    return allauth_ratelimit.get_cache_key(request, app="allauth.account", action=action, rate=rate)


def test_a_changed_rate_setting_is_honoured_at_once(redis_cache, settings):
    """The parsed rates follow ACCOUNT_RATE_LIMITS: a limit raised or lowered while the
    process runs counts with its new rate from the next request on."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "t_changing": "1/h/ip"}
    assert limits_consume(post(), [Limit("t_changing")]) is None
    assert limits_consume(post(), [Limit("t_changing")]) == Limit("t_changing")
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "t_changing": "3/h/ip"}
    assert limits_consume(post(), [Limit("t_changing")]) is None
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "t_changing": "1/h/key"}
    assert limits_consume(post(), [Limit("t_changing", key="k")]) is None
    assert limits_consume(post(), [Limit("t_changing", key="k")]) == Limit("t_changing", key="k")


def test_each_request_is_counted_under_its_own_client_address(settings):
    """The client address, worked out once per request, is allauth's for each request,
    behind a trusted proxy too: one address's requests never count against another's."""
    from allauth.account.adapter import DefaultAccountAdapter

    from accounts.adapter import AccountAdapter

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for forwarded, remote in [("198.51.100.7", "10.0.0.1"), ("203.0.113.9", "10.0.0.1")]:
        request = RequestFactory().post(
            "/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=f"{forwarded}"
        )
        expected = DefaultAccountAdapter().get_client_ip(request)
        assert expected == forwarded
        assert AccountAdapter().get_client_ip(request) == expected
        assert AccountAdapter().get_client_ip(request) == expected
        assert allauth_ratelimit.get_ip(request) == expected
