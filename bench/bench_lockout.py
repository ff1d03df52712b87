"""Lockout clearance: 100,000 customers locked out after a mass 2FA revocation, and who gets
back in with no agent.

The mix (per 100,000, `MIX`): 95% typed the wrong email; of the other 5%, 30% lost the login
inbox but kept the phone and the password (/recover/new-email/), 40% lost the phone or the
authenticator but kept the email and the password (/recover/lost-2fa/), 20% hold backup
codes (/recover/lost-2fa/ with a backup code and a code to the email on file) and 10% have
nothing left (an agent case through /recover/help/, after saying the self-service offer
did not help).

A sample of each kind is driven end to end through the real views under gunicorn (4 sync
workers, config.settings.bench: DEBUG off, rate limits lifted) and two real `celery worker`
processes, which deliver every code and notice into a development inbox (one JSON file per
message) where the simulated customers read them, as the browser tests do. Every customer
first asks for help at /recover/help/; triage offers the self-service path; the customer
takes it. The self-service waits are the real risk-scaled ones (24 h for a lost factor,
72 h for a new login email, longer per risk; the revocation campaign is an incident risk
for everyone) lived through `WAIT_COMPRESSION` times faster by the benchmark build's
`DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION` (production refuses to start with it); the
beat task that applies a due login email (`self_service_apply_due_task`, every 5 minutes in
production) is sent every second.

Today's baseline, in the same run: the same kinds of help requests with SELF_SERVICE_TRIAGE
off (gunicorn and workers restarted with it), where everything not on the wrong email waits
for an agent.

The agent's handling time comes from a browser walk: Playwright drives Debian's Chromium
through the staff sign-in (password and authenticator code) and the workspace, takes the
next case, reads it and re-authenticates it, for `AGENT_WALK_CASES` cases. The walk counts
page loads, key presses, clicks, characters typed and the words the case page shows, and a
keystroke-level model (`KLM`) turns them into human seconds, plus the machine time the walk
measured. The case's proofs are recorded before the walk (a "nothing left" requester proves
who they are with a document an agent checks): that check is the stated reading time
`EVIDENCE_READING_SECONDS`, not something the walk measures.

Figures, projected from the sample to 100,000 by the mix (the report says so): the share
back in with no agent (target >= 99%), the cases left for agents, and the hours 20 agents
need to clear them (target <= 4 h) beside today's. The burn-down (customers still locked
out, hour by hour, with and without self-service) goes into the notes for the report's chart.

`BENCH_LOCKOUT_REDIS_URL` names the Redis database it flushes and uses (default: the
benchmarks' own, db 7).

Run as `python -m bench.bench_lockout prepare|proofs ...` it is also the small Django
program the benchmark starts for the steps that need the app.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_delivery import celery_workers
from bench.bench_phone_lookup import (
    BENCH_REDIS_URL,
    PYTHON,
    collectstatic,
    django_env,
    gunicorn,
    known_phone,
    log,
    seed_accounts,
    sql,
)
from bench.common import (
    ROOT,
    CpuMeter,
    Result,
    drop_database,
    fresh_database,
    percentile,
    process_group,
)

LOCKOUT_SIZE = 100_000
# Customers per 100,000, by what they still hold.
MIX = {
    "wrong_email": 95_000,
    "lost_inbox": 1_500,
    "lost_phone": 2_000,
    "backup_codes": 1_000,
    "nothing_left": 500,
}
KIND_WORDS = {
    "wrong_email": "typed the wrong email: told their login email",
    "lost_inbox": "lost the login inbox, kept phone + password: /recover/new-email/",
    "lost_phone": "lost the phone, kept email + password: /recover/lost-2fa/",
    "backup_codes": "holds backup codes: /recover/lost-2fa/ with a backup code",
    "nothing_left": "nothing left: an agent case through /recover/help/",
}
SELF_SERVICE_KINDS = ("lost_inbox", "lost_phone", "backup_codes")
AGENTS = 20
TARGET_NO_AGENT = 0.99
TARGET_CLEAR_HOURS = 4.0
# One hour of a self-service wait passes in 1/43,200 of an hour (12 h a second): the longest
# risk-scaled wait (a new login email with three risks, 144 h) is over in 12 s.
WAIT_COMPRESSION = 43_200
BEAT_SECONDS = 1.0
CUSTOMERS_IN_FLIGHT = 8
PASSWORD = "a-Long-bench-passphrase-42"
HOME_BROWSER = "Mozilla/5.0 (X11; Linux x86_64) HomeBrowser/1.0"
NEW_BROWSER = "Mozilla/5.0 (Windows NT 10.0) BorrowedLaptop/2.0"
AGENT_EMAIL = "agent.lockout@desk.example"
AGENT_WALK_CASES = 10
# Keystroke-level model (Card, Moran and Newell): seconds per operator.
KLM = {"K": 0.28, "P": 1.1, "M": 1.35, "H": 0.4}
READING_WORDS_PER_MINUTE = 250
EVIDENCE_READING_SECONDS = 60.0
DESCRIPTION = "Since the 2FA reset I cannot sign in any more."

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STATUS_LINK = re.compile(r"/recover/case/([A-Za-z0-9_-]{40,})/")
MANUAL_KEY = re.compile(r'id="manual-key"[^>]*>([A-Z2-7 ]+)<')
BACKUP_CODE_ITEM = re.compile(r"<li[^>]*>\s*<code>([0-9A-Z-]{19})</code>")
CODE_IN_SMS = re.compile(r"recovery code: (\d{6})\.")
CODE_IN_EMAIL = re.compile(r"recover your account is (\d{6})\.")


# --- The customers ----------------------------------------------------------------------------


@dataclass
class Customer:
    """One locked-out customer of the sample: an account seeded as acct<i>@example.com."""

    index: int
    kind: str
    new_device: bool
    backup_code: str = ""
    outcome: str = "not run"
    requests: int = 0
    active_seconds: float = 0.0
    wait_hours: int | None = None

    @property
    def email(self) -> str:
        return f"acct{self.index}@example.com"

    @property
    def phone(self) -> str:
        return known_phone(self.index)

    @property
    def reach_me(self) -> str:
        return f"reach{self.index}@example.net"


class Inbox:
    """The development inbox the workers write: one JSON file per message, read once each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: set[str] = set()
        self.by_recipient: dict[tuple[str, str], list[str]] = {}
        self.lock = threading.Lock()

    def _scan(self) -> None:
        if not self.directory.exists():
            return
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".json") and entry.name not in self.seen:
                record = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                self.seen.add(entry.name)
                key = (record["kind"], record["to"])
                self.by_recipient.setdefault(key, []).append(record["body"])

    def find(self, kind: str, to: str, pattern: re.Pattern[str], timeout: float = 60) -> str:
        """The first group of `pattern` in a message of `kind` to `to`, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                self._scan()
                bodies = list(self.by_recipient.get((kind, to), []))
            for body in reversed(bodies):
                match = pattern.search(body)
                if match:
                    return match.group(1) if match.groups() else match.group(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind} to {to} matching {pattern.pattern}")
            time.sleep(0.2)


class Journey:
    """A customer's browser: a cookie jar, the CSRF token of the last page, a request count."""

    def __init__(self, port: int, customer: Customer, database_url: str, inbox: Inbox) -> None:
        import requests

        self.base = f"http://127.0.0.1:{port}"
        self.customer = customer
        self.database_url = database_url
        self.inbox = inbox
        self.session = requests.Session()
        agent = NEW_BROWSER if customer.new_device else HOME_BROWSER
        self.session.headers.update({"User-Agent": agent, "Accept-Language": "en"})
        self.token = ""
        self.active = 0.0

    def _page(self, response) -> str:
        self.customer.requests += len(response.history) + 1
        text = response.text
        match = CSRF.search(text)
        if match:
            self.token = match.group(1)
        return text

    def get(self, path: str) -> str:
        started = time.perf_counter()
        response = self.session.get(self.base + path, timeout=60)
        self.active += time.perf_counter() - started
        if response.status_code >= 400:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return self._page(response)

    def post(self, path: str, **fields: str) -> str:
        started = time.perf_counter()
        response = self.session.post(
            self.base + path, data={"csrfmiddlewaretoken": self.token, **fields}, timeout=60
        )
        self.active += time.perf_counter() - started
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path} {fields.get('action', '')}: {response.status_code}")
        return self._page(response)

    def code(self, kind: str, to: str, pattern: re.Pattern[str]) -> str:
        started = time.perf_counter()
        found = self.inbox.find(kind, to, pattern)
        self.active += time.perf_counter() - started
        return found

    # -- the paths --

    def ask_for_help(self) -> str:
        """/recover/help/; returns the private status link on the page that answers."""
        c = self.customer
        self.get("/recover/help/")
        if c.kind == "wrong_email":
            fields = {"contact_email": f"typed{c.index}@example.net", "contact_phone": c.phone}
        else:
            fields = {"contact_email": c.reach_me, "contact_phone": "", "emails_tried": c.email}
        page = self.post(
            "/recover/help/", **{"emails_tried": "", "description": DESCRIPTION, **fields}
        )
        match = STATUS_LINK.search(page)
        if not match:
            raise RuntimeError("no status link on the answer to a help request")
        return match.group(0)

    def wrong_email(self) -> bool:
        self.ask_for_help()
        # Told by SMS (and email) which address signs in.
        return bool(self.code("sms", self.customer.phone, re.compile(r"\S+@\S+")))

    def nothing_left(self, *, triage: bool) -> bool:
        link = self.ask_for_help()
        if triage:
            # The status page offers self-service; the customer can take none of it.
            self.get(link)
            deadline = time.monotonic() + 60
            while 'value="not_helped"' not in self.get("/recover/case/"):
                if time.monotonic() > deadline:
                    raise TimeoutError('the status page never offered "this did not help"')
                time.sleep(0.3)
            self.post("/recover/case/", action="not_helped")
        return False

    def lost_inbox(self) -> bool:
        c = self.customer
        self.ask_for_help()
        self.get("/recover/new-email/")
        self.post(
            "/recover/new-email/",
            action="start",
            identifier=c.email,
            password=PASSWORD,
            new_email=c.reach_me,
        )
        sms = self.code("sms", c.phone, CODE_IN_SMS)
        self.post("/recover/new-email/", action="verify_code", channel="phone", code=sms)
        mail = self.code("email", c.reach_me, CODE_IN_EMAIL)
        self.post("/recover/new-email/", action="verify_code", channel="new_email", code=mail)
        self._wait_out("new_email")
        # The beat task applies the change; the customer does not have to come back for it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = sql(
                self.database_url,
                ("SELECT email FROM accounts_user WHERE email = %(e)s", {"e": c.reach_me}),
            )
            if rows:
                return True
            time.sleep(0.5)
        return False

    def lost_factor(self, *, backup_code: str = "") -> bool:
        c = self.customer
        self.ask_for_help()
        self.get("/recover/lost-2fa/")
        first = {"backup_code": backup_code} if backup_code else {"password": PASSWORD}
        self.post("/recover/lost-2fa/", action="start", identifier=c.email, **first)
        self.post("/recover/lost-2fa/", action="send_code", channel="email")
        code = self.code("email", c.email, CODE_IN_EMAIL)
        self.post("/recover/lost-2fa/", action="verify_code", channel="email", code=code)
        self._wait_out("lost_factor")
        setup = self.post("/recover/lost-2fa/", action="finish")
        key = MANUAL_KEY.search(setup)
        if not key:
            return False
        done = self.post("/recover/lost-2fa/setup/", code=_totp(key.group(1)))
        return len(BACKUP_CODE_ITEM.findall(done)) == 10

    def _wait_out(self, kind: str) -> None:
        """The compressed wait: its real hours are the attempt's; its end is a few seconds on."""
        rows = sql(
            self.database_url,
            (
                """
                SELECT a.wait_hours, extract(epoch FROM a.wait_ends_at - now())
                FROM recovery_selfservicerecovery a JOIN accounts_user u ON u.id = a.user_id
                WHERE u.phone = %(p)s AND a.kind = %(k)s AND a.status = 'waiting'
                """,
                {"p": self.customer.phone, "k": kind},
            ),
        )
        if not rows:
            raise RuntimeError(f"no {kind} wait started for customer {self.customer.index}")
        hours, remaining = rows[0]
        self.customer.wait_hours = hours
        time.sleep(max(0.0, float(remaining)) + 0.1)


def _totp(manual_key: str) -> str:
    from django_otp.oath import totp

    return f"{totp(_b32(manual_key), step=30, t0=0, digits=6):06d}"


def _b32(manual_key: str) -> bytes:
    import base64

    return base64.b32decode(manual_key.replace(" ", ""))


def drive(
    port: int, customers: list[Customer], database_url: str, inbox: Inbox, *, triage: bool
) -> None:
    """Every customer's path, `CUSTOMERS_IN_FLIGHT` at a time; outcomes go on the customers."""

    def one(customer: Customer) -> None:
        journey = Journey(port, customer, database_url, inbox)
        try:
            if customer.kind == "wrong_email":
                ok = journey.wrong_email()
            elif customer.kind == "nothing_left" or not triage:
                # Without self-service triage every customer not on the wrong email waits.
                ok = journey.nothing_left(triage=triage)
            elif customer.kind == "lost_inbox":
                ok = journey.lost_inbox()
            else:
                ok = journey.lost_factor(backup_code=customer.backup_code)
            customer.outcome = "back in, no agent" if ok else "agent case"
        except (RuntimeError, TimeoutError, OSError) as error:
            customer.outcome = f"failed: {error}"[:200]
        customer.active_seconds = journey.active

    with ThreadPoolExecutor(CUSTOMERS_IN_FLIGHT) as pool:
        list(pool.map(one, customers))


@contextlib.contextmanager
def beat(redis_url: str, stop_after: Callable[[], bool] | None = None):
    """Send the apply-self-service-due task every `BEAT_SECONDS`, as beat does every 5 min."""
    from celery import Celery

    app = Celery(broker=redis_url)
    stopping = threading.Event()

    def tick() -> None:
        while not stopping.wait(BEAT_SECONDS):
            app.send_task("recovery.tasks.self_service_apply_due_task", queue="sweeps")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()


# --- The agent's path in a browser ------------------------------------------------------------


@dataclass
class Walk:
    """What the agent did and saw on the path, per case, and the machine time it took."""

    cases: int = 0
    page_loads: int = 0
    keys: int = 0
    clicks: int = 0
    characters_typed: int = 0
    fields: int = 0
    words_read: int = 0
    machine_seconds: float = 0.0
    sign_in: dict = field(default_factory=dict)

    def per_case(self) -> dict[str, float]:
        n = max(1, self.cases)
        return {
            "page_loads": self.page_loads / n,
            "keys": self.keys / n,
            "clicks": self.clicks / n,
            "fields_typed": self.fields / n,
            "characters_typed": self.characters_typed / n,
            "words_read": self.words_read / n,
            "machine_seconds": round(self.machine_seconds / n, 2),
        }


def klm_seconds(p: dict[str, float]) -> dict[str, float]:
    """Human seconds per case: an M before each action, K per key, P + K per click (with an H
    to reach the mouse), H + P + K to focus each field and K per character, the words on the
    case page at `READING_WORDS_PER_MINUTE`, and the evidence check."""
    k, pp, m, h = KLM["K"], KLM["P"], KLM["M"], KLM["H"]
    acting = (
        p["keys"] * (m + k)
        + p["clicks"] * (m + h + pp + k)
        + p["fields_typed"] * (m + h + pp + k)
        + p["characters_typed"] * k
    )
    reading = p["words_read"] / READING_WORDS_PER_MINUTE * 60
    return {
        "operators": round(acting, 1),
        "reading_case_page": round(reading, 1),
        "evidence_check": EVIDENCE_READING_SECONDS,
        "machine": p["machine_seconds"],
        "total": round(acting + reading + EVIDENCE_READING_SECONDS + p["machine_seconds"], 1),
    }


def agent_walk(port: int, agent_key: str, cases: int) -> Walk:
    """Sign in to the staff workspace, then take the next case and re-authenticate it, `cases`
    times, counting what the agent does; the sign-in is counted apart (once a shift)."""
    from playwright.sync_api import sync_playwright

    walk = Walk()
    queue = "/admin/support/recoverycase/queue/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(base_url=f"http://127.0.0.1:{port}", locale="en-US")
            page = context.new_page()
            page.set_default_timeout(30000)
            loads = Counter()
            page.on("load", lambda _page: loads.update(["load"]))
            started = time.perf_counter()
            page.goto("/admin/login/")
            page.fill("#id_username", AGENT_EMAIL)
            page.fill("#id_password", PASSWORD)
            page.fill("#id_otp_token", _totp(agent_key))
            page.click("#login-form input[type=submit]")
            page.wait_for_url(re.compile(re.escape(queue)))
            walk.sign_in = {
                "page_loads": loads["load"],
                "fields_typed": 3,
                "characters_typed": len(AGENT_EMAIL) + len(PASSWORD) + 6,
                "clicks": 1,
                "machine_seconds": round(time.perf_counter() - started, 2),
            }
            loads.clear()
            work = re.compile(r"/admin/support/recoverycase/\d+/work/")
            for _ in range(cases):
                started = time.perf_counter()
                if not work.search(page.url):
                    # On the queue: take the next case. A confirmation opens the next case
                    # by itself, so this happens once a run of cases.
                    page.keyboard.press("n")
                    walk.keys += 1
                    page.wait_for_url(work)
                page.wait_for_load_state()
                case_url = page.url
                text = page.locator("#content").inner_text()
                page.keyboard.press("r")  # re-authenticate: the consequences, in words
                page.locator("#consequences").wait_for()
                consequences = page.locator("#consequences").inner_text()
                page.keyboard.press("Enter")  # confirm, and on to the next case
                page.wait_for_url(lambda url, left=case_url: url != left)
                page.wait_for_load_state()
                walk.machine_seconds += time.perf_counter() - started
                walk.keys += 2
                walk.words_read += len(text.split()) + len(consequences.split())
                walk.cases += 1
            walk.page_loads = loads["load"]
            context.close()
        finally:
            browser.close()
    return walk


# --- The run ----------------------------------------------------------------------------------


def django_program(env: dict[str, str], *args: str) -> dict:
    """Run `python -m bench.bench_lockout ARGS` and return the JSON it prints last."""
    done = subprocess.run(
        [PYTHON, "-m", "bench.bench_lockout", *args],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def sample(per_kind: int, wrong_email: int, first: int) -> list[Customer]:
    """Customers of every kind, half of each on a device the account never used."""
    customers = []
    index = first
    for kind in MIX:
        for j in range(wrong_email if kind == "wrong_email" else per_kind):
            customers.append(Customer(index=index, kind=kind, new_device=j % 2 == 1))
            index += 1
    return customers


def run(quick: bool) -> list[Result]:
    per_kind = 6 if quick else 100
    wrong_email = 30 if quick else 300
    baseline_per_kind = 4 if quick else 25
    baseline_wrong_email = 20 if quick else 100
    walk_cases = 2 if quick else AGENT_WALK_CASES
    name = "rd_lockout_bench"
    redis_url = os.environ.get("BENCH_LOCKOUT_REDIS_URL", BENCH_REDIS_URL)
    started = time.perf_counter()
    database_url = fresh_database(name)
    try:
        lockout = sample(per_kind, wrong_email, first=1)
        today = sample(baseline_per_kind, baseline_wrong_email, first=len(lockout) + 1)
        seed_accounts(database_url, len(lockout) + len(today))
        with tempfile.TemporaryDirectory(prefix="rd-lockout-inbox-") as inbox_dir:
            env = django_env(
                database_url,
                REDIS_URL=redis_url,
                DJANGO_EMAIL_BACKEND="notifications.mail.DevInboxEmailBackend",
                DJANGO_SMS_BACKEND="notifications.sms.backends.DevInboxBackend",
                DJANGO_DEV_INBOX_DIR=inbox_dir,
                DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION=str(WAIT_COMPRESSION),
                DJANGO_RATE_LIMIT_SELF_SERVICE="1000000/m/ip,1000000/m/key",
                DJANGO_RATE_LIMIT_SEND_CODE="1000000/m/ip,1000000/m/key",
                DJANGO_RATE_LIMIT_CHECK_CODE="1000000/m/ip",
                DJANGO_RATE_LIMIT_STAFF_LOGIN="1000000/m/ip,1000000/m/key",
            )
            prepared = django_program(
                # The wrong-email customers' path never looks at their factors: only the
                # others get an authenticator and backup codes (a second each to set up).
                env, "prepare",
                json.dumps([c.index for c in lockout + today if c.kind != "wrong_email"]),
                json.dumps([c.index for c in lockout + today if c.kind == "backup_codes"]),
                HOME_BROWSER,
            )  # fmt: skip
            for customer in lockout + today:
                customer.backup_code = prepared["backup_codes"].get(str(customer.index), "")
            collectstatic(env)
            _redis_flush(redis_url)
            log(f"{len(lockout) + len(today):,} customers seeded "
                f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
            inbox = Inbox(Path(inbox_dir))

            # Today: no self-service triage; every request not on the wrong email waits.
            off = {**env, "DJANGO_SELF_SERVICE_TRIAGE": "false"}
            with gunicorn(off, workers=4) as server, celery_workers(off, 2, name="lockout-0"):
                drive(server.port, today, database_url, inbox, triage=False)
                today_waiting = _agent_cases(database_url, today)
            log(f"today: {_outcomes(today)} ({time.perf_counter() - started:.0f} s)")
            _redis_flush(redis_url)

            # With self-service triage, the paths, the compressed waits and the beat task.
            on = {**env, "DJANGO_SELF_SERVICE_TRIAGE": "true"}
            with contextlib.ExitStack() as stack:
                server = stack.enter_context(gunicorn(on, workers=4))
                workers = stack.enter_context(celery_workers(on, 2, name="lockout-1"))
                stack.enter_context(beat(redis_url))
                meter = CpuMeter(
                    {
                        "web (gunicorn)": lambda: process_group(server.pid),
                        "workers (Celery)": lambda: [
                            pid for w in workers.processes for pid in process_group(w.pid)
                        ],
                        "customers (load generator)": lambda: [os.getpid()],
                    }
                )
                meter.start()
                t0 = time.perf_counter()
                drive(server.port, lockout, database_url, inbox, triage=True)
                drive_seconds = time.perf_counter() - t0
                cpu = meter.stop()
                waiting = _agent_cases(database_url, lockout)
                log(f"with self-service: {_outcomes(lockout)} in {drive_seconds:.0f} s")
                left = [c.phone for c in lockout if c.outcome == "agent case"]
                django_program(env, "proofs", json.dumps(left))
                walk = agent_walk(server.port, prepared["agent_key"], walk_cases)
                log(f"agent walk: {walk.per_case()} ({time.perf_counter() - started:.0f} s)")
        return _results(lockout, today, waiting, today_waiting, walk, cpu, drive_seconds, quick)
    finally:
        _redis_flush(redis_url)
        drop_database(name)


def _redis_flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def _agent_cases(database_url: str, customers: list[Customer], cap: float = 120) -> int:
    """Once triage has seen every request of these customers: how many wait for an agent.

    A customer whose path ended with an agent case counts as one only if the case really
    waits in the queue.
    """
    phones = [c.phone for c in customers]
    query = """
        SELECT u.phone, c.status FROM support_recoverycase c
        JOIN accounts_user u ON u.id = c.matched_user_id
        WHERE u.phone = ANY(%(phones)s)
    """
    deadline = time.monotonic() + cap
    while True:
        rows = sql(database_url, (query, {"phones": phones}))
        if all(status != "new" for _phone, status in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    waiting = {phone for phone, status in rows if status == "waiting"}
    for c in customers:
        if c.outcome == "agent case" and c.phone not in waiting:
            c.outcome = "failed: no case waits for an agent"
    return len(waiting)


def _outcomes(customers: list[Customer]) -> dict[str, dict[str, int]]:
    by_kind: dict[str, Counter] = {}
    for c in customers:
        outcome = c.outcome if not c.outcome.startswith("failed") else "failed"
        by_kind.setdefault(c.kind, Counter())[outcome] += 1
    return {kind: dict(counts) for kind, counts in by_kind.items()}


def _share_back_in(customers: list[Customer], kind: str) -> float:
    of_kind = [c for c in customers if c.kind == kind]
    return sum(c.outcome == "back in, no agent" for c in of_kind) / len(of_kind)


def burn_down(
    agent_cases: float, seconds_per_case: float, waits: list[tuple[float, float]], hours: int
) -> list[float]:
    """Customers still locked out at each whole hour: self-service customers until their
    wait ends (`waits`: customers and hours), agent cases cleared one after another by
    `AGENTS` agents from hour 0, the wrong-email ones told at once (minutes)."""
    per_hour = AGENTS * 3600 / seconds_per_case
    points = []
    for t in range(hours + 1):
        still = max(0.0, agent_cases - per_hour * t)
        still += sum(count for count, wait in waits if wait > t)
        points.append(round(still))
    return points


def _results(
    lockout: list[Customer],
    today: list[Customer],
    waiting: int,
    today_waiting: int,
    walk: Walk,
    cpu: dict[str, float],
    drive_seconds: float,
    quick: bool,
) -> list[Result]:
    share = {kind: _share_back_in(lockout, kind) for kind in MIX}
    share_today = {kind: _share_back_in(today, kind) for kind in MIX}
    back_in = sum(MIX[kind] * share[kind] for kind in MIX)
    back_in_today = sum(MIX[kind] * share_today[kind] for kind in MIX)
    agent_cases = LOCKOUT_SIZE - back_in
    agent_cases_today = LOCKOUT_SIZE - back_in_today
    per_case = walk.per_case()
    handling = klm_seconds(per_case)
    seconds_per_case = handling["total"]
    clear_hours = agent_cases * seconds_per_case / AGENTS / 3600
    clear_hours_today = agent_cases_today * seconds_per_case / AGENTS / 3600
    # Self-service customers stay locked out through their wait: each sampled wait stands
    # for its share of its kind's 100,000-scale count.
    waits = []
    for kind in SELF_SERVICE_KINDS:
        done = [c for c in lockout if c.kind == kind and c.outcome == "back in, no agent"]
        for c in done:
            waits.append((MIX[kind] * share[kind] / len(done), float(c.wait_hours or 0)))
    longest_wait = max((w for _n, w in waits), default=0.0)
    hours = max(math.ceil(longest_wait) + 6, math.ceil(clear_hours_today) + 2)
    chart = {
        "hours": list(range(hours + 1)),
        "with self-service": burn_down(agent_cases, seconds_per_case, waits, hours),
        "today (agents for all but wrong email)": burn_down(
            agent_cases_today, seconds_per_case, [], hours
        ),
    }
    per_kind = {
        kind: {
            "what": KIND_WORDS[kind],
            "sampled": sum(c.kind == kind for c in lockout),
            "back_in_no_agent": round(share[kind], 4),
            "per_100k": MIX[kind],
            "requests_median": percentile([c.requests for c in lockout if c.kind == kind], 50),
            "active_seconds_median": round(
                percentile([c.active_seconds for c in lockout if c.kind == kind], 50), 2
            ),
            "wait_hours": sorted(
                Counter(c.wait_hours for c in lockout if c.kind == kind and c.wait_hours).items()
            ),
        }
        for kind in MIX
    }
    failures = [c.outcome for c in lockout + today if c.outcome.startswith("failed")]
    busy = cpu["machine, busy"]
    sampled = len(lockout)
    projection = "projected to 100,000 by the mix from a sample of " + ", ".join(
        f"{per_kind[k]['sampled']} {k.replace('_', ' ')}" for k in MIX
    )
    notes = {
        "mix_per_100k": MIX,
        "per_kind": per_kind,
        "today_per_kind_back_in_no_agent": {k: round(v, 4) for k, v in share_today.items()},
        "today_sampled": len(today),
        "failed_journeys": failures[:5],
        "failed_journeys_count": len(failures),
        "projection": projection,
        "wait_compression": f"{WAIT_COMPRESSION:,}x (12 h of wait a second); beat task every "
        f"{BEAT_SECONDS:.0f} s",
        "drive_seconds": round(drive_seconds, 1),
        "customers_in_flight": CUSTOMERS_IN_FLIGHT,
        "cpu_ms_per_customer": {
            name: round(s * 1000 / sampled, 1) for name, s in cpu.items() if sampled
        },
        "machine_busy_share": round(busy / cpu["machine, all cores"], 3)
        if cpu["machine, all cores"]
        else None,
    }
    model = {
        "walk_per_case": per_case,
        "agent_sign_in_once_a_shift": walk.sign_in,
        "klm_seconds": KLM,
        "reading_words_per_minute": READING_WORDS_PER_MINUTE,
        "evidence_check_seconds": EVIDENCE_READING_SECONDS,
        "handling_seconds_per_case": handling,
        "cases_walked": walk.cases,
        "model": "per case: (M + K) per key press, (M + H + P + K) per click and per field "
        "focused, K per character typed, the words on the case page and its confirmation at "
        f"{READING_WORDS_PER_MINUTE} words/min, {EVIDENCE_READING_SECONDS:.0f} s to check the "
        "evidence, plus the machine time the walk measured",
    }
    kinds_sampled = all(per_kind[k]["sampled"] for k in MIX)
    share_no_agent = back_in / LOCKOUT_SIZE
    return [
        Result(
            "lockout", "customers back in with no agent", share_no_agent * 100, "%",
            baseline=back_in_today / LOCKOUT_SIZE * 100,
            baseline_label="today: no self-service triage",
            target=f">= {TARGET_NO_AGENT:.0%}",
            met=share_no_agent >= TARGET_NO_AGENT and kinds_sampled, notes=notes,
        ),
        Result(
            "lockout", f"cases left for agents of {LOCKOUT_SIZE:,} (projected)",
            agent_cases, "cases", baseline=agent_cases_today, baseline_label="today",
            notes={"sampled_cases_waiting": waiting, "today_sampled_cases_waiting": today_waiting},
        ),
        Result(
            "lockout", f"hours for {AGENTS} agents to clear the lockout's cases (projected)",
            clear_hours, "h", baseline=clear_hours_today, baseline_label="today",
            target=f"<= {TARGET_CLEAR_HOURS:.0f} h", met=clear_hours <= TARGET_CLEAR_HOURS,
            notes={**model, "burn_down": chart,
                   "last_self_service_customer_back_in_hours": longest_wait},
        ),
        Result(
            "lockout", "hours until the last customer is back in (waits included, projected)",
            max(longest_wait, clear_hours), "h", baseline=clear_hours_today,
            baseline_label="today",
            notes={"why": "a self-service customer is locked out through the risk-scaled "
                   "wait (the revocation campaign counts as an incident for every account, a "
                   "device the account never used adds another 24 h); today's agents recover "
                   "an account at once (a lost-inbox customer's email change by an agent "
                   "waits 24 h more, not counted)"},
        ),
        Result(
            "lockout", "agent handling time per case (browser walk + KLM)",
            seconds_per_case / 60, "min", notes={"quick": quick},
        ),
    ]  # fmt: skip


# --- The Django side --------------------------------------------------------------------------


def _prepare(indexes: list[int], backup_indexes: list[int], home_browser: str) -> dict:
    """The sample's password, authenticator and backup codes (set up from the customer's home
    browser), the revocation campaign, and an agent with an authenticator."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import RevocationCampaign, User
    from accounts.services.audit import AuditContext
    from accounts.services.two_factor import two_factor_provision
    from support.roles import AGENTS_GROUP

    User.objects.filter(email__in=[f"acct{i}@example.com" for i in indexes]).update(
        password=make_password(PASSWORD)
    )
    home = AuditContext(ip_address="127.0.0.1", user_agent=home_browser)
    backup_codes = {}
    wanted = set(backup_indexes)
    for i in indexes:
        user = User.objects.get(email=f"acct{i}@example.com")
        _device, codes = two_factor_provision(user=user, context=home, notify=False)
        if i in wanted:
            backup_codes[str(i)] = codes[0]
    RevocationCampaign.objects.create(
        reason="Mass 2FA revocation (lockout benchmark)", operator="bench", total=len(indexes)
    )
    agent = User.objects.create_user(
        email=AGENT_EMAIL, password=PASSWORD, is_staff=True, phone=None
    )
    agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
    two_factor_provision(user=agent, context=AuditContext(), notify=False)
    key = TOTPDevice.objects.get(user=agent, confirmed=True).bin_key
    import base64

    return {"backup_codes": backup_codes, "agent_key": base64.b32encode(key).decode()}


def _proofs(phones: list[str]) -> dict:
    """The cases the lockout left for agents get the proofs an agent's check records, so the
    walk can re-authenticate them; today's cases leave the queue (the walk takes the
    lockout's)."""
    import django

    django.setup()
    from support.models import CaseProof, CaseStatus, RecoveryCase

    waiting = RecoveryCase.objects.filter(status=CaseStatus.WAITING)
    waiting.exclude(matched_user__phone__in=phones).update(status=CaseStatus.RESOLVED)
    chosen = list(waiting.filter(matched_user__phone__in=phones))
    for case in chosen:
        for kind in (CaseProof.Kind.PHONE, CaseProof.Kind.EMAIL):
            CaseProof.objects.create(case=case, kind=kind)
    return {"cases": [c.reference for c in chosen]}


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "prepare":
        answer = _prepare(json.loads(arguments[0]), json.loads(arguments[1]), arguments[2])
    else:
        answer = _proofs(json.loads(arguments[0]))
    print(json.dumps(answer))
