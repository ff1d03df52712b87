"""SMS backends: console, local memory (tests), development inbox and an HTTP gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from notifications.devinbox import dev_inbox_store
from notifications.sms import SmsMessage

# Messages "sent" by LocmemBackend, like django.core.mail.outbox for email.
outbox: list[SmsMessage] = []


class ConsoleBackend:
    """Writes each message to standard output."""

    def send(self, message: SmsMessage) -> None:
        sys.stdout.write(f"SMS to {message.to} [{message.reference}]: {message.body}\n")
        sys.stdout.flush()


class LocmemBackend:
    """Keeps messages in `notifications.sms.backends.outbox` for tests."""

    def send(self, message: SmsMessage) -> None:
        outbox.append(message)


class DevInboxBackend(ConsoleBackend):
    """Prints the message and files it in the development inbox (/dev/inbox/)."""

    def send(self, message: SmsMessage) -> None:
        super().send(message)
        dev_inbox_store(
            kind="sms", to=message.to, subject="", body=message.body, reference=message.reference
        )


class GatewayError(Exception):
    """The SMS gateway refused the message or could not be reached."""


class HttpGatewayBackend:
    """POSTs JSON to SMS_GATEWAY_URL, signed with HMAC-SHA256 over the exact body.

    Network errors and 5xx answers are retried with exponential backoff; the message
    reference goes along as an idempotency key, so a retried POST is not sent twice. One
    backend keeps one HTTP session (kept-alive connection) until `close()`: the outbox uses
    one per chunk of messages.
    """

    def __init__(self) -> None:
        self.url = settings.SMS_GATEWAY_URL
        self.secret = settings.SMS_GATEWAY_SECRET.encode()
        self.timeout = settings.SMS_GATEWAY_TIMEOUT
        retry = Retry(
            total=settings.SMS_GATEWAY_RETRIES,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"POST"}),
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def send(self, message: SmsMessage) -> None:
        if not self.url or not self.secret:
            raise GatewayError("SMS_GATEWAY_URL and SMS_GATEWAY_SECRET must be set")
        body = json.dumps(
            {
                "to": message.to,
                "from": settings.SMS_SENDER_NAME,
                "text": message.body,
                "reference": message.reference,
            },
            separators=(",", ":"),
        ).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        try:
            response = self.session.post(
                self.url,
                data=body,
                timeout=self.timeout,
                headers={
                    "Content-Type": "application/json",
                    "X-Signature-SHA256": signature,
                    "Idempotency-Key": message.reference,
                },
            )
        except requests.RequestException as exc:
            raise GatewayError(str(exc)) from exc
        if response.status_code >= 300:
            raise GatewayError(f"gateway answered {response.status_code}")

    def close(self) -> None:
        self.session.close()
