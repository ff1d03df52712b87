"""A whole recovery through `make serve` leaves no token, code or link in any log.

The production process set (gunicorn with its access log, the Celery worker and beat, the
real log configuration) serves a customer who opens a help request, follows the status
link, proves the phone and the email on file with codes, is re-authenticated by an agent
signed in with password and authenticator code, follows the recovery link, sets a new
password, and follows the "this wasn't me" link of a notice. Mail goes to a local SMTP
server and texts to a local gateway, as in production. Every token, code and link issued
is collected from what was delivered; none may appear in the output of any process.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import socketserver
import subprocess
import threading
import urllib.parse
import urllib.request
from email import message_from_bytes, policy

import pytest
from django.urls import reverse
from django_otp.oath import totp

from tests.conftest import ROOT, free_port
from tests.test_production_stack import Gateway, _wait, stack  # noqa: F401 - fixture

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SMTP_PORT = free_port()
CUSTOMER = {"email": "log.customer@gmail.com", "phone": "+4915112349999"}
AGENT = {"email": "log.agent@desk.example", "password": "agent-passphrase-4711"}
URL_TOKEN = re.compile(r"/recover/[a-z-]+/([A-Za-z0-9_-]{20,})/")
CODE = re.compile(r"(?<![\d.])(\d{6})(?!\d)")
CODE_IN_SMS = re.compile(r"case RC-[0-9A-Z]{4}-[0-9A-Z]{4}: (\d{6})\.")
CODE_IN_EMAIL = re.compile(r"recovery case RC-[0-9A-Z]{4}-[0-9A-Z]{4} is (\d{6})\.")


class SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to take the worker's mail: each message is kept, parsed."""

    received: list = []

    def handle(self) -> None:
        self.wfile.write(b"220 sink\r\n")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith(b"DATA"):
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                SmtpSink.received.append(message_from_bytes(data, policy=policy.default))
                self.wfile.write(b"250 queued\r\n")
            elif command.startswith(b"QUIT"):
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_sink():
    SmtpSink.received = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", SMTP_PORT), SmtpSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SmtpSink.received
    server.shutdown()
    server.server_close()


def mail_text(message) -> str:
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


def mail_to(sink: list, address: str) -> list[str]:
    return [mail_text(m) for m in sink if address in str(m["To"])]


class Browser:
    """A browser on the stack: cookies kept, CSRF token from the cookie, redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict) -> tuple[int, str, str]:
        if not any(c.name == "csrftoken" for c in self.jar):
            self.get(path)
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode()
        return self._open(urllib.request.Request(self.base + path, data=body))

    def _open(self, request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()


def manage_shell(served: dict, code: str) -> str:
    env = {
        **served["env"],
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": (ROOT / "var" / "secret_key").read_text().strip(),
        "DJANGO_AUDIT_KEY": (ROOT / "var" / "audit_key").read_text().strip(),
    }
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


SETUP = f"""
import json
from accounts.services.users import user_create
from support.services.agents import agent_create
user_create(email={CUSTOMER["email"]!r}, password="old-password-x-1", phone={CUSTOMER["phone"]!r})
agent = agent_create(email={AGENT["email"]!r}, role="agent", password={AGENT["password"]!r})
print(json.dumps({{"key": agent.device.key}}))
"""

SCHEDULE_EMAIL_CHANGE = f"""
from django.db import transaction
from accounts.models import User
from support.models import EmailChange, RecoveryCase
from support.services.actions import _email_change_schedule
from support.services.agents import agent_create
supervisor = agent_create(email="log.boss@desk.example", role="supervisor").user
user = User.objects.get(email={CUSTOMER["email"]!r})
case = RecoveryCase.objects.get(matched_user=user, merged_into=None)
with transaction.atomic():
    change = EmailChange.objects.create(
        case=case, requester=case, user=user, new_email="log.new@example.org",
        requested_by=User.objects.get(email={AGENT["email"]!r}),
        status=EmailChange.Status.AWAITING_APPROVAL,
    )
    _email_change_schedule(change, supervisor=supervisor)
"""


@pytest.mark.parametrize(
    "stack",
    [
        {
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_PORT": str(SMTP_PORT),
        }
    ],
    indirect=True,
)
def test_no_token_code_or_link_of_a_whole_recovery_reaches_a_log(smtp_sink, stack):  # noqa: F811
    """Every secret issued during the recovery was delivered, and is in no process's log."""
    agent_key = bytes.fromhex(json.loads(manage_shell(stack, SETUP).splitlines()[-1])["key"])
    base = f"http://127.0.0.1:{stack['port']}"
    customer, desk = Browser(base), Browser(base)
    log = stack["log"]

    def mailed(pattern: re.Pattern, what: str, group: int = 0) -> str:
        """The first match of `pattern` in the customer's mail, once it has arrived."""
        _wait(
            lambda: any(pattern.search(t) for t in mail_to(smtp_sink, CUSTOMER["email"])),
            60,
            what,
            log,
        )
        texts = mail_to(smtp_sink, CUSTOMER["email"])
        return next(m.group(group) for t in texts if (m := pattern.search(t)))

    # The help request; the worker mails the status link after triage.
    status, _url, page = customer.post(
        "/recover/help/",
        {
            "contact_email": CUSTOMER["email"],
            "contact_phone": CUSTOMER["phone"],
            "description": "Lost my authenticator.",
        },
    )
    assert status == 200, page
    found = re.search(r'id="status-link" href="[^"]*(/recover/case/[^"]+/)"', page)
    assert found, page
    status_link = found.group(1)
    _wait(lambda: mail_to(smtp_sink, CUSTOMER["email"]), 60, "the status-link email", log)
    assert customer.get(status_link)[1].endswith("/recover/case/")
    # Triage led the request to self-service; the customer asks for an agent instead.
    customer.post("/recover/case/", {"action": "not_helped"})

    # Codes to the phone and the email on file, typed on the status page.
    customer.post("/recover/case/", {"action": "send_phone_code"})
    _wait(lambda: Gateway.received, 60, "the phone code", log)
    found = CODE_IN_SMS.search(Gateway.received[-1]["text"])
    assert found, Gateway.received[-1]
    phone_code = found.group(1)
    assert customer.post(
        "/recover/case/", {"action": "verify_code", "kind": "phone", "code": phone_code}
    )[1].endswith("/recover/case/")
    customer.post("/recover/case/", {"action": "send_email_code"})
    email_code = mailed(CODE_IN_EMAIL, "the email code", group=1)
    assert customer.post(
        "/recover/case/", {"action": "verify_code", "kind": "email", "code": email_code}
    )[1].endswith("/recover/case/")

    # The agent signs in (password and authenticator code), takes the case, re-authenticates.
    otp_code = f"{totp(agent_key):06d}"
    status, url, page = desk.post(
        "/admin/login/?next=/admin/",
        {"username": AGENT["email"], "password": AGENT["password"], "otp_token": otp_code},
    )
    assert status == 200 and not url.startswith(base + "/admin/login/"), page[-2000:]
    status, url, page = desk.post(reverse("admin:support_take_next"), {})
    found = re.search(r"/(\d+)/work/", url)
    assert found, url
    case_id = int(found.group(1))
    desk.post(
        reverse("admin:support_case_work", args=[case_id]),
        {"action": "reauthenticate", "requester": case_id, "confirmed": "on"},
    )
    recovery = re.compile(r"/recover/reset/[A-Za-z0-9_-]{20,}/")
    link = mailed(recovery, "the recovery link")
    report = mailed(re.compile(r"/recover/not-me/[A-Za-z0-9_-]{20,}/"), "a not-me link")

    # The customer follows the recovery link and sets a password; then a notice's not-me link.
    assert customer.get(link)[1].endswith("/recover/reset/")
    status, url, _page = customer.post(
        "/recover/reset/",
        {"new_password1": "brand-new-passphrase-93", "new_password2": "brand-new-passphrase-93"},
    )
    assert url.endswith("/recover/2fa/setup/"), (status, url)
    assert Browser(base).get(report)[1].endswith("/recover/not-me/")

    # A login-email change of the account is scheduled (its four-eyes steps have tests of
    # their own); the old address follows the cancel link it is sent, and cancels.
    manage_shell(stack, SCHEDULE_EMAIL_CHANGE)
    link = mailed(re.compile(r"/recover/cancel-email-change/[A-Za-z0-9_-]{20,}/"), "cancel link")
    owner = Browser(base)
    assert owner.get(link)[1].endswith("/recover/cancel-email-change/")
    assert owner.post("/recover/cancel-email-change/", {})[0] == 200

    # Everything delivered, by mail and by text: every token in a link, every code.
    delivered = [mail_text(m) for m in smtp_sink] + [sms["text"] for sms in Gateway.received]
    secrets_issued = {token for text in delivered for token in URL_TOKEN.findall(text)}
    codes = {phone_code, email_code, otp_code}
    # The status link, the recovery link, not-me links and the cancel link.
    assert len(secrets_issued) >= 4, delivered
    # The last request's access-log line is written: the log holds the whole run.
    customer.get("/healthz")
    _wait(lambda: log.read_text().count("GET /healthz") >= 2, 30, "the access log", log)
    text = log.read_text()
    assert "GET /recover/reset/[redacted]/" in text, "the access log has the link lines"
    assert "case_triage_task" in text and "succeeded" in text, "the worker's log is in it"
    leaked = [token for token in secrets_issued if token in text]
    leaked += [code for code in codes if re.search(rf"(?<![\d.]){code}(?!\d)", text)]
    assert not leaked, f"in the logs: {leaked}"
