"""Where an anonymous POST to /recover/help/ spends its CPU: each middleware, the view.

python -m bench.profile_public_post [--requests N] [--json PATH]

In one process, on a fresh database (config.settings.bench, the benchmarks' Redis db), the
real WSGI handler serves N browser-like POSTs (CSRF cookie and token, rate limits counted).
Each middleware's own CPU time (the thread's, so waiting for PostgreSQL or Redis does not
count, nor other processes on a shared machine) is its time minus the time of everything
it calls; `process_view` hooks are timed apart. Also counted per request: SQL statements
and Redis commands. BENCH_CPROFILE=cumulative (or tottime) adds a cProfile listing of
another N requests, BENCH_CPROFILE_LINES=N lines of it (110 unless set).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from bench.bench_phone_lookup import collectstatic, django_env, redis_flush, seed_accounts
from bench.common import drop_database, fresh_database

NAME = os.environ.get("BENCH_PROFILE_DATABASE", "rd_bench_profile")
HELP = "/recover/help/"


def _clock() -> float:
    return time.thread_time()


def profile(requests: int) -> dict:
    import redis
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    handler = client.handler
    handler.load_middleware()
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, call: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = _clock()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] += _clock() - start

        return wrapper

    # Django's chain: each link wraps (functools.wraps) a middleware, whose get_response
    # is the next link; the last wraps the handler's own view step. Timing each
    # get_response gives everything under that middleware.
    layers = []
    link = handler._middleware_chain
    while hasattr(link.__wrapped__, "get_response"):
        layers.append(link.__wrapped__)
        link = link.__wrapped__.get_response
    handler._middleware_chain = timed("under:-1", handler._middleware_chain)
    for index, middleware in enumerate(layers):
        middleware.get_response = timed(f"under:{index}", middleware.get_response)
    hooks = []
    for hook in handler._view_middleware:
        name = f"{_name(hook.__self__)}.process_view"
        hooks.append(name)
    handler._view_middleware = [
        timed(name, hook) for name, hook in zip(hooks, handler._view_middleware, strict=True)
    ]

    commands = [0]
    original_execute = redis.Redis.execute_command

    def counting(self, *args, **kwargs):
        commands[0] += 1
        return original_execute(self, *args, **kwargs)

    redis.Redis.execute_command = counting  # type: ignore[method-assign]
    try:
        client.get(HELP)
        token = client.cookies["csrftoken"].value
        for i in range(20):  # warm: imports, templates, connections
            _post(client, token, 5000 - i)
        spent.clear()
        commands[0] = 0
        with CaptureQueriesContext(connection) as queries:
            start = _clock()
            for i in range(requests):
                _post(client, token, i + 1)
            total = _clock() - start
        measured = dict(spent)
        statements = [q["sql"][:160] for q in queries.captured_queries]
        per_request_commands = commands[0] / requests
        if os.environ.get("BENCH_CPROFILE"):
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for i in range(requests):
                _post(client, token, requests + i + 1)
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ["BENCH_CPROFILE"])
            stats.print_stats(int(os.environ.get("BENCH_CPROFILE_LINES", "110")))
        # The same requests with Django's stock cache client (a new Redis client per call),
        # interleaved in rounds with ours so a busy patch of the machine hits both alike.
        stock = _stock_cache_client_cpu(client, token, requests)
    finally:
        redis.Redis.execute_command = original_execute  # type: ignore[method-assign]

    def ms(seconds: float) -> float:
        return round(seconds * 1000 / requests, 3)

    spent = measured
    own = {
        _name(middleware): ms(spent[f"under:{i - 1}"] - spent[f"under:{i}"])
        for i, middleware in enumerate(layers)
    }
    hooks_total = sum(spent[name] for name in hooks)
    own.update({name: ms(spent[name]) for name in hooks})
    own["URL resolving, the view, its form, templates and SQL"] = ms(
        spent[f"under:{len(layers) - 1}"] - hooks_total
    )
    return {
        "requests": requests,
        "cpu_ms_per_request": ms(total),
        "cpu_ms_per_request_by_part": own,
        "cpu_ms_per_request_ours_vs_stock_cache_client": stock,
        "sql_statements_per_request": round(len(statements) / requests, 2),
        "redis_commands_per_request": round(per_request_commands, 2),
        "sql_statements_of_one_request": statements[-_per(len(statements), requests) :],
    }


def _stock_cache_client_cpu(client, token: str, requests: int) -> dict[str, float]:
    from django.core.cache import cache
    from django.core.cache.backends.redis import RedisCacheClient

    backend = cache._cache  # type: ignore[attr-defined]
    ours = backend.get_client
    spent = {"ours": 0.0, "stock": 0.0}
    rounds, n = 5, 0
    for _ in range(rounds):
        for kind in spent:
            backend.get_client = (
                ours if kind == "ours" else RedisCacheClient.get_client.__get__(backend)
            )
            start = _clock()
            for _ in range(requests // rounds):
                n += 1
                _post(client, token, 10_000 + n)
            spent[kind] += _clock() - start
    backend.get_client = ours
    return {
        kind: round(seconds * 1000 / (requests // rounds * rounds), 3)
        for kind, seconds in spent.items()
    }


def _per(count: int, requests: int) -> int:
    return max(1, round(count / requests))


def _name(middleware: object) -> str:
    return f"{type(middleware).__module__}.{type(middleware).__qualname__}"


def _post(client, token: str, i: int) -> None:
    # Form-encoded, as the benchmark's clients and browsers send a form without files.
    response = client.post(
        HELP,
        urlencode(
            {
                "csrfmiddlewaretoken": token,
                "contact_email": f"typed{i}@example.net",
                "contact_phone": f"+49151{i:08d}",
                "emails_tried": "",
                "description": "I cannot sign in any more.",
            }
        ),
        content_type="application/x-www-form-urlencoded",
        REMOTE_ADDR=f"10.0.{i // 250 % 250}.{i % 250 + 1}",
    )
    if response.status_code != 200:
        raise RuntimeError(f"POST {HELP} answered {response.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--json")
    args = parser.parse_args()
    database_url = fresh_database(NAME)
    try:
        seed_accounts(database_url, 5000)
        env = django_env(database_url)
        collectstatic(env)
        os.environ.update(env)
        redis_flush()
        import django

        django.setup()
        result = profile(args.requests)
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    finally:
        redis_flush()
        drop_database(NAME)


if __name__ == "__main__":
    main()
