"""Email backend for development: prints to the console and files into the dev inbox."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

from notifications.devinbox import dev_inbox_store


class DevInboxEmailBackend(ConsoleEmailBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            html = next(
                (
                    content
                    for content, mime in getattr(message, "alternatives", [])
                    if mime == "text/html"
                ),
                "",
            )
            for recipient in message.to:
                dev_inbox_store(
                    kind="email",
                    to=recipient,
                    subject=message.subject,
                    body=message.body,
                    html=html,
                    reference=message.extra_headers.get("X-Recovery-Desk-Reference", ""),
                )
        return super().send_messages(email_messages)
