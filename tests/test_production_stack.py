"""`make serve` — gunicorn, a Celery worker and beat on PostgreSQL and Redis — drives a recovery.

The production wiring is tested over HTTP: a customer asks which email their phone number
belongs to; the web process records it, the worker answers through the SMS gateway (a
local HTTP server here) and the email backend.
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT, free_port
from tests.processes import database_execute, database_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]

GATEWAY_SECRET = "stack-test-gateway-secret"


class Gateway(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signature = hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature, self.headers.get("X-Signature-SHA256", "")):
            Gateway.received.append(json.loads(body))
            self.send_response(202)
        else:
            self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(
        f"timed out waiting for {what}\n--- make serve ---\n" + log.read_text()[-6000:]
    )


@pytest.fixture
def stack(tmp_path, redis_url, request):
    """`make serve` on a database of its own; a test may pass environment overrides as the
    fixture's parameter (indirect parametrization)."""
    database = f"rd_stack_{os.getpid()}"
    database_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    database_execute(f'CREATE DATABASE "{database}"')
    Gateway.received = []
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    port = free_port()
    # The stack works in the Redis database this run was given, as the cache and worker
    # tests do: a checkout running its suite at the same time has a database of its own.
    # Rate-limit counters of an earlier run would otherwise refuse this run's requests.
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "PORT": str(port),
        "DATABASE_URL": database_url(database),
        "REDIS_URL": redis_url,
        "DJANGO_EMAIL_BACKEND": "notifications.mail.DevInboxEmailBackend",
        "DJANGO_DEV_INBOX_DIR": str(tmp_path / "inbox"),
        "DJANGO_SMS_GATEWAY_URL": f"http://127.0.0.1:{gateway.server_address[1]}/send",
        "DJANGO_SMS_GATEWAY_SECRET": GATEWAY_SECRET,
        "WEB_CONCURRENCY": "2",
        **getattr(request, "param", {}),
    }
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["make", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait(
            lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
            120,
            "gunicorn to answer /healthz",
            log,
        )
        _wait(
            lambda: "beat: Starting" in log.read_text() and "ready." in log.read_text(),
            60,
            "the Celery worker and beat",
            log,
        )
        yield {"port": port, "env": env, "log": log, "inbox": tmp_path / "inbox"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        gateway.shutdown()
        database_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        # Beat's queued tasks and the stack's counters are not left to the tests after it.
        redis.Redis.from_url(redis_url).flushdb()


def _get(url: str, opener=None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_phone_to_login_email_through_the_production_process_set(stack):
    """A real request to gunicorn is answered by the worker: SMS via the gateway, and email."""
    env = {
        **stack["env"],
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": (ROOT / "var" / "secret_key").read_text().strip(),
        "DJANGO_AUDIT_KEY": (ROOT / "var" / "audit_key").read_text().strip(),
    }
    subprocess.run(
        [
            str(ROOT / ".venv/bin/python"),
            "manage.py",
            "shell",
            "-c",
            "from accounts.services.users import user_create; "
            "user_create(email='stack.customer@gmail.com', password='x-long-password-1', "
            "phone='+4915112340000')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{stack['port']}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = _get(f"{base}/recover/email/", opener)
    assert status == 200
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, page
    token = found.group(1)
    request = urllib.request.Request(
        f"{base}/recover/email/",
        data=urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "phone": "0151 12340000"}
        ).encode(),
        headers={"Referer": f"{base}/recover/email/"},
    )
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
        assert response.geturl().endswith("/recover/email/sent/")

    _wait(lambda: Gateway.received, 60, "the SMS at the gateway", stack["log"])
    sms = Gateway.received[0]
    assert sms["to"] == "+4915112340000"
    assert "s***r@g***.com" in sms["text"]
    _wait(lambda: list(stack["inbox"].glob("email-*.json")), 60, "the email", stack["log"])
    email = json.loads(next(stack["inbox"].glob("email-*.json")).read_text())
    assert email["to"] == "stack.customer@gmail.com"
    assert "stack.customer@gmail.com" in email["body"]

    # Links carry their token in the path: the access log keeps the page, never the token.
    token = secrets.token_urlsafe(32)
    for path in (f"/recover/not-me/{token}/", f"/recover/case/{token}/?next={token}"):
        _get(f"{base}{path}", opener)
    _wait(
        lambda: "GET /recover/case/[redacted]/" in stack["log"].read_text(),
        30,
        "the access log line",
        stack["log"],
    )
    assert token not in stack["log"].read_text()
