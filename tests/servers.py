"""Servers the delivery tests start: an SMTP server (aiosmtpd) and an HTTP SMS gateway stub.

Both count what reaches them the way a receiving system would see it: connections
(sessions) and messages per reference, so a test can tell a lost message from a copy.
"""

from __future__ import annotations

import email
import json
import logging
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.conftest import free_port


class SmtpServer:
    """A real SMTP server on a free port; counts sessions and messages by Message-ID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sessions = 0
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.controller = _CountingController(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        # aiosmtpd narrates every command at INFO: thousands of lines per test.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller.start()
        with self.lock:
            self.sessions = 0  # the controller's own readiness probe is not a client

    def stop(self) -> None:
        self.controller.stop()

    def session_opened(self) -> None:
        with self.lock:
            self.sessions += 1

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        reference = message.get("X-Recovery-Desk-Reference", "")
        with self.lock:
            self.received[reference] += 1
        return "250 OK"

    def settings(self) -> dict[str, str]:
        """The environment that points a worker's email at this server."""
        return {
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_PORT": str(self.port),
        }


class _CountingController(Controller):
    def __init__(self, server: SmtpServer, **kwargs) -> None:
        super().__init__(server, **kwargs)
        self.counting = server

    def factory(self) -> SMTP:
        counting = self.counting

        class CountingSMTP(SMTP):
            def connection_made(self, transport) -> None:
                counting.session_opened()
                super().connection_made(transport)

        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class SmsGateway:
    """An HTTP SMS gateway stub (HTTP/1.1, keep-alive); counts connections and messages by
    their Idempotency-Key."""

    secret = "test-gateway-secret"

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                with gateway.lock:
                    gateway.connections += 1
                super().setup()

            def do_POST(self) -> None:  # http.server's hook
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reference = json.loads(body)["reference"]
                assert self.headers["Idempotency-Key"] == reference
                with gateway.lock:
                    gateway.received[reference] += 1
                answer = b'{"status":"queued"}'
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args) -> None:  # the base's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self) -> dict[str, str]:
        """The environment that points a worker's SMS at this gateway."""
        return {
            "DJANGO_SMS_BACKEND": "notifications.sms.backends.HttpGatewayBackend",
            "DJANGO_SMS_GATEWAY_URL": f"http://127.0.0.1:{self.port}/messages",
            "DJANGO_SMS_GATEWAY_SECRET": self.secret,
        }
