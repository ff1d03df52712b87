"""Phone lookup: POST /recover/email/ against allauth's password reset, under gunicorn.

The real `config.wsgi` runs in gunicorn (4 sync workers, config.settings.bench: DEBUG off,
PostgreSQL, Redis cache and broker) on a fresh database seeded with accounts that have phone
numbers. A Python load generator on loopback keeps a fixed number of requests in flight.

Figures:

* requests/s of the "which email did I use?" lookup against allauth's password reset, the
  page the lookup sits beside and must keep up with (target: ratio >= 1.0);
* median and p99 latency of the lookup for a number that belongs to an account against one
  that does not, interleaved in one run (target: medians within 3%), since a difference
  would tell an attacker which numbers are registered.

Rate limits are lifted for the run (but keep their counters, so both pages do the same
bookkeeping as in production). With REDIS_URL set Celery is not eager: the work after commit
is a task sent to Redis, as in production; no worker runs and the Redis db is flushed.

This module also holds the HTTP harness (gunicorn, form client, load generator) that
bench_crisis reuses.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import redis

from bench.common import ROOT, Result, drop_database, fresh_database, percentile

# One Redis db for these benchmarks only: it is flushed before and after each run. Another
# run on the same machine (a second checkout) picks its own with BENCH_REDIS_URL.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
PYTHON = str(ROOT / ".venv/bin/python")

# Limits high enough never to trip, written in the same shape as production's (an ip and a
# key counter) so every request still does the same rate-limit bookkeeping.
LIFTED_RATE_LIMITS = {
    "DJANGO_RATE_LIMIT_RECOVER_EMAIL": "1000000/m/ip,1000000/m/key",
    "DJANGO_RATE_LIMIT_SMS_COUNTRY": "1000000/d/key",
    "DJANGO_RATE_LIMIT_RECOVER_HELP": "1000000/m/ip",
    "DJANGO_RATE_LIMIT_RESET_PASSWORD": "1000000/m/ip,1000000/m/key",
}

CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
KNOWN_PREFIX = "+49151"  # seeded accounts: +49151 and an 8-digit number
UNKNOWN_PREFIX = "+49152"  # valid German mobile numbers no account has


# --- Environment, database and Redis ---------------------------------------------------------


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment of every Django process a benchmark starts (web, workers, helpers)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "DATABASE_URL": database_url,
        "REDIS_URL": BENCH_REDIS_URL,
        "DJANGO_LOG_LEVEL": "WARNING",
        **LIFTED_RATE_LIMITS,
        **extra,
    }


def redis_flush() -> None:
    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()


def sql(database_url: str, *statements: str | tuple[str, dict]) -> list[tuple]:
    """Run statements (text, or text and parameters) in one autocommit connection.

    Returns the rows of the last one.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows: list[tuple] = []
        for statement in statements:
            text, params = statement if isinstance(statement, tuple) else (statement, None)
            cursor = conn.execute(text, params)
            rows = cursor.fetchall() if cursor.description else []
        return rows


def seed_accounts(database_url: str, count: int, start: int = 1) -> None:
    """Accounts acct<i>@example.com with phone +49151<i:08d>, i in [start, start + count).

    Set-based. Each has a verified primary allauth EmailAddress, as a signed-up account
    would, so the password reset finds its user the way it does in production.
    """
    sql(
        database_url,
        (
            """
            INSERT INTO accounts_user (password, is_superuser, is_staff, is_active,
                date_joined, email, phone, language, reenrolment_required)
            SELECT 'md5$bench$0', false, false, true, now(), 'acct' || i || '@example.com',
                %(prefix)s || lpad(i::text, 8, '0'), 'en', false
            FROM generate_series(%(start)s::int, %(end)s::int) AS i
            """,
            {"prefix": KNOWN_PREFIX, "start": start, "end": start + count - 1},
        ),
        """
        INSERT INTO account_emailaddress (user_id, email, verified, "primary")
        SELECT id, email, true, true FROM accounts_user u
        WHERE NOT EXISTS (SELECT 1 FROM account_emailaddress e WHERE e.user_id = u.id)
        """,
        "ANALYZE",
    )


def known_phone(i: int) -> str:
    return f"{KNOWN_PREFIX}{i:08d}"


def unknown_phone(i: int) -> str:
    return f"{UNKNOWN_PREFIX}{i:08d}"


def collectstatic(env: dict[str, str]) -> None:
    """The manifest static storage needs collected files to render any page with DEBUG off.

    Skipped when the manifest is newer than the project's static files and requirements
    (the packages' own static files change only with them): it takes seconds per run.
    """
    manifest = ROOT / "var" / "staticfiles" / "staticfiles.json"
    sources = [ROOT / "requirements.txt", *(ROOT / "static").rglob("*")]
    if manifest.exists() and all(p.stat().st_mtime < manifest.stat().st_mtime for p in sources):
        return
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def log(message: str) -> None:
    """Progress on stdout, indented under the runner's "== name ==" line."""
    print(f"   {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Processes --------------------------------------------------------------------------------


def stop_process_groups(processes: list[subprocess.Popen], timeout: float = 15) -> None:
    """TERM each master for a graceful stop, then KILL whatever is left of its group.

    Only the masters are told: they let their children finish what they are doing (a
    Celery warm shutdown completes the batch under way). A TERM sent to a pool child
    directly would cut a delivery between "sent" and "committed". All are told first and
    waited for after, so they stop side by side.
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # The master may be gone while a child lingers: the group must be empty either way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_process_group(process: subprocess.Popen, timeout: float = 15) -> None:
    stop_process_groups([process], timeout)


@dataclass(frozen=True)
class Server:
    port: int
    # The master's pid, which is also its process group's: the workers are in it too.
    pid: int


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 4) -> Iterator[Server]:
    """Serve config.wsgi with gunicorn sync workers on a free loopback port."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "config.wsgi",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                # Import the app once in the master: boot takes seconds rather than tens of
                # seconds on two busy cores, and requests are served the same way.
                "--preload",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so a stop reaches the workers too.
            start_new_session=True,
        )
        try:
            wait_http_ok(port, "/healthz", process, log)
            yield Server(port, process.pid)
        finally:
            stop_process_group(process)


def wait_http_ok(port: int, path: str, process: subprocess.Popen, log, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"gunicorn exited:\n{log.read()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"gunicorn did not answer {path}:\n{log.read()[-3000:]}")


# --- Load generator ---------------------------------------------------------------------------


class FormClient:
    """One browser-like client: GETs the form once, then POSTs with that cookie and token.

    gunicorn's sync workers close the connection after each response; http.client reopens
    it, as a browser would. The CSRF cookie and token stay valid across connections.

    Each client connects from its own loopback address (all of 127/8 is local), so the
    server sees distinct customers rather than one IP whose rate-limit counter, and the
    cache lock allauth takes around it, every request would share.
    """

    def __init__(self, port: int, path: str, source_ip: str = "127.0.0.1") -> None:
        self.path = path
        self.conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=60, source_address=(source_ip, 0)
        )
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        cookie = response.getheader("Set-Cookie", "")
        match = re.search(r"csrftoken=([^;]+)", cookie)
        token = CSRF_INPUT.search(body)
        if not (match and token):
            raise RuntimeError(f"GET {path}: no CSRF cookie or token")
        self.headers = {
            "Cookie": f"csrftoken={match.group(1)}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self.token = token.group(1).decode()

    def post(self, fields: dict[str, str]) -> tuple[int, float]:
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.token, **fields})
        start = time.perf_counter()
        self.conn.request("POST", self.path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start


@dataclass
class LoadResult:
    seconds: float
    ok: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


# A request: (label for the latency split, form fields).
Request = tuple[str, dict[str, str]]


def load(
    port: int,
    path: str,
    next_request: Callable[[random.Random], Request | None],
    *,
    concurrency: int,
    seconds: float | None = None,
    ok_status: int = 302,
) -> LoadResult:
    """Keep `concurrency` POSTs in flight until `seconds` pass or `next_request` says stop.

    `next_request` is called under a lock, so it may hand out items of a shared sequence.
    """
    lock = threading.Lock()
    result = LoadResult(seconds=0.0)
    deadline = time.perf_counter() + seconds if seconds else None
    failures: list[BaseException] = []

    def client(worker: int) -> None:
        rng = random.Random(worker)  # the load mix, not security
        try:
            form = FormClient(port, path, source_ip=f"127.0.{worker // 250}.{worker % 250 + 2}")
            while deadline is None or time.perf_counter() < deadline:
                with lock:
                    request = next_request(rng)
                if request is None:
                    return
                label, fields = request
                status, elapsed = form.post(fields)
                with lock:
                    if status == ok_status:
                        result.ok += 1
                        result.latencies.setdefault(label, []).append(elapsed)
                    else:
                        result.errors[status] = result.errors.get(status, 0) + 1
        except BaseException as exc:  # reported by the caller: a silent thread would skew rates
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"load client failed: {failures[0]!r}") from failures[0]
    return result


# --- The benchmark ----------------------------------------------------------------------------


def run(quick: bool) -> list[Result]:
    accounts = 2_000 if quick else 20_000
    seconds = 3.0 if quick else 10.0  # per round; full mode runs two rounds of each page
    rounds = 1 if quick else 2
    concurrency = 8
    name = "rd_bench_lookup"
    started = time.perf_counter()
    database_url = fresh_database(name)
    try:
        seed_accounts(database_url, accounts)
        env = django_env(database_url)
        collectstatic(env)
        redis_flush()
        log(f"{accounts:,} accounts seeded ({time.perf_counter() - started:.0f} s)")
        with gunicorn(env, workers=4) as server:
            log(f"gunicorn up ({time.perf_counter() - started:.0f} s)")
            results = _measure(server.port, accounts, seconds, rounds, concurrency)
        # Evidence that the 302s did the work: a hint request per lookup, a queued email
        # per reset (allauth's, through the outbox), a task per row waiting in Redis.
        hint_requests, reset_notices = sql(
            database_url,
            "SELECT (SELECT count(*) FROM recovery_emailhintrequest),"
            " (SELECT count(*) FROM notifications_notification)",
        )[0]
        queued = redis.Redis.from_url(BENCH_REDIS_URL).llen("messages")
        results[0].notes.update(
            hint_requests_recorded=hint_requests,
            reset_emails_queued=reset_notices,
            tasks_waiting_in_redis=queued,
        )
        return results
    finally:
        redis_flush()
        drop_database(name)


def _measure(
    port: int, accounts: int, seconds: float, rounds: int, concurrency: int
) -> list[Result]:
    def lookup(rng: random.Random) -> Request:
        # Half the numbers belong to an account, half do not: the page must not care.
        if rng.random() < 0.5:
            return "known", {"phone": known_phone(rng.randint(1, accounts))}
        return "unknown", {"phone": unknown_phone(rng.randint(1, accounts))}

    def reset(rng: random.Random) -> Request:
        # The same mix for the reset page: an account's email, or one nobody uses.
        if rng.random() < 0.5:
            return "known", {"email": f"acct{rng.randint(1, accounts)}@example.com"}
        return "unknown", {"email": f"nobody{rng.randint(1, accounts)}@example.net"}

    pages = {"lookup": ("/recover/email/", lookup), "reset": ("/accounts/password/reset/", reset)}
    # Warm every worker (imports, template cache) before anything is timed.
    for path, make in pages.values():
        load(port, path, make, concurrency=concurrency, seconds=min(1.0, seconds / 4))

    # Throughput: alternate the pages round by round, so a slow patch on the shared machine
    # or the growing tables hit both alike.
    totals = {key: LoadResult(seconds=0.0) for key in pages}
    for _ in range(rounds):
        for key, (path, make) in pages.items():
            part = load(port, path, make, concurrency=concurrency, seconds=seconds)
            log(f"{path}: {part.rate:.1f} req/s over {part.seconds:.1f} s")
            totals[key].seconds += part.seconds
            totals[key].ok += part.ok
            for status, n in part.errors.items():
                totals[key].errors[status] = totals[key].errors.get(status, 0) + n
    # Latency: known and unknown numbers interleaved at random in one run, at a concurrency
    # the two cores can serve without much queueing, so the medians show the page's own work.
    timing = load(port, "/recover/email/", lookup, concurrency=2, seconds=seconds * rounds)

    lookup_total, reset_total = totals["lookup"], totals["reset"]
    known, unknown = timing.latencies.get("known", []), timing.latencies.get("unknown", [])
    known_median, unknown_median = percentile(known, 50), percentile(unknown, 50)
    median_ratio = known_median / unknown_median if unknown_median else 0.0
    errors = {
        "lookup_errors": lookup_total.errors,
        "reset_errors": reset_total.errors,
        "timing_errors": timing.errors,
    }
    common = {"concurrency": concurrency, "gunicorn_workers": 4, "accounts": accounts, **errors}
    return [
        Result(
            "phone_lookup",
            "POST /recover/email/ throughput",
            lookup_total.rate,
            "req/s",
            baseline=reset_total.rate,
            baseline_label="POST /accounts/password/reset/",
            target="ratio >= 1.0",
            met=lookup_total.rate >= reset_total.rate and not lookup_total.errors,
            notes={
                **common,
                "lookup_requests": lookup_total.ok,
                "reset_requests": reset_total.ok,
                "seconds_each": round(lookup_total.seconds, 1),
            },
        ),
        Result(
            "phone_lookup",
            "median latency, known phone",
            known_median * 1000,
            "ms",
            baseline=unknown_median * 1000,
            baseline_label="unknown phone",
            target="within 3%",
            met=abs(median_ratio - 1) <= 0.03 and not timing.errors,
            notes={
                "requests_known": len(known),
                "requests_unknown": len(unknown),
                "concurrency": 2,
                **errors,
            },
        ),
        Result(
            "phone_lookup",
            "p99 latency, known phone",
            percentile(known, 99) * 1000,
            "ms",
            baseline=percentile(unknown, 99) * 1000,
            baseline_label="unknown phone",
            notes={
                "p90_known_ms": percentile(known, 90) * 1000,
                "p90_unknown_ms": percentile(unknown, 90) * 1000,
            },
        ),
    ]
