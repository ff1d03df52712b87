"""A customer (or an attacker) driving /recover/lost-2fa/ and /recover/new-email/."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from recovery.models import SelfServiceRecovery
from tests.factories import PASSWORD, UserFactory

if TYPE_CHECKING:
    from tests.factories import Capture, ClientResponse

CODE_IN_SMS = re.compile(r"recovery code: (\d{6})\.")
CODE_IN_EMAIL = re.compile(r"recover your account is (\d{6})\.")
CANCEL_LINK = re.compile(r"/recover/stop/([A-Za-z0-9_-]{40,})/")
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
HOME_BROWSER = "Mozilla/5.0 (X11; Linux x86_64) HomeBrowser/1.0"
HOME_IP = "198.51.100.7"

ACCOUNT_EMAIL = "hodl.forever@example.org"
ACCOUNT_PHONE = "+4915198765432"
NEW_EMAIL = "hodl.again@example.net"

_addresses = itertools.count(20)


def customer_account(**fields: Any) -> tuple[User, list[str]]:
    """A customer with an authenticator and backup codes, who signed in before from
    `HOME_BROWSER` at `HOME_IP` (so that device and network are known)."""
    fields.setdefault("email", ACCOUNT_EMAIL)
    fields.setdefault("phone", ACCOUNT_PHONE)
    user = UserFactory.create(**fields)
    _device, codes = two_factor_provision(
        user=user,
        context=AuditContext(ip_address=HOME_IP, user_agent=HOME_BROWSER),
        notify=False,
    )
    return user, codes


def browser(*, user_agent: str = HOME_BROWSER, ip: str = HOME_IP, language: str = "en") -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent, HTTP_ACCEPT_LANGUAGE=language)


def last_code(outbox: list, *, to: str | list[str], pattern: re.Pattern[str]) -> str:
    for message in reversed(outbox):
        if message.to == to:
            match = pattern.search(message.body)
            if match:
                return match.group(1)
    raise AssertionError(f"no code sent to {to}")


def cancel_token(outbox: list, *, to: str | list[str]) -> str:
    for message in reversed(outbox):
        if message.to == to:
            match = CANCEL_LINK.search(message.body)
            if match:
                return match.group(1)
    raise AssertionError(f"no cancel link sent to {to}")


def comparable(body: bytes) -> bytes:
    return CSRF.sub(b"", body)


@dataclass
class Path:
    """One self-service page in one browser."""

    client: Client
    url_name: str
    capture: Capture

    def get(self) -> ClientResponse:
        return self.client.get(reverse(self.url_name))

    def post(self, action: str, **data: str) -> ClientResponse:
        with self.capture():
            return self.client.post(reverse(self.url_name), {"action": action, **data})

    def start(self, **data: str) -> ClientResponse:
        return self.post("start", **data)

    def send(self, channel: str) -> ClientResponse:
        return self.post("send_code", channel=channel)

    def verify(self, channel: str, code: str) -> ClientResponse:
        return self.post("verify_code", channel=channel, code=code)

    def finish(self) -> ClientResponse:
        return self.post("finish")

    @property
    def attempt(self) -> SelfServiceRecovery:
        """The newest attempt (this page's, as tests start one at a time)."""
        attempt = SelfServiceRecovery.objects.order_by("-pk").first()
        assert attempt is not None, "no attempt was started"
        return attempt


def lost_2fa(capture: Capture, client: Client | None = None) -> Path:
    return Path(client or browser(), "recover_lost_2fa", capture)


def new_email(capture: Capture, client: Client | None = None) -> Path:
    return Path(client or browser(), "recover_new_email", capture)


def phisher_waiting(
    capture: Capture,
    *,
    holding: Literal["email", "phone"],
    ip: str,
    user_agent: str,
    mailoutbox: list,
    sms_outbox: list,
) -> tuple[Path, str]:
    """A phisher with the password and the customer's inbox (`holding="email"`) or SIM
    (`holding="phone"`) proves both on /recover/lost-2fa/ and reaches the wait. Their page,
    and the token of the stop link the owner got on the contact the phisher does not hold."""
    phisher = lost_2fa(capture, browser(ip=ip, user_agent=user_agent))
    by_email = holding == "email"
    identifier = ACCOUNT_EMAIL if by_email else ACCOUNT_PHONE
    assert phisher.start(identifier=identifier, password=PASSWORD).status_code == 302
    phisher.send(holding)
    if by_email:
        code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    else:
        code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    phisher.verify(holding, code)
    assert phisher.attempt.status == SelfServiceRecovery.Status.WAITING
    if by_email:
        return phisher, cancel_token(sms_outbox, to=ACCOUNT_PHONE)
    return phisher, cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])


def cancel(token: str, capture: Capture, client: Client | None = None) -> ClientResponse:
    """Open a cancel link and press its button, as the owner of that contact would."""
    client = client or Client(REMOTE_ADDR=f"192.0.2.{next(_addresses) % 250}")
    landing = client.get(reverse("recover_self_service_cancel_link", args=[token]))
    assert landing.status_code == 302
    assert client.get(landing["Location"]).status_code == 200
    with capture():
        return client.post(landing["Location"])


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
