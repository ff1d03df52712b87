"""Operate the notification outbox: see what the burst guard holds, release or discard it."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from notifications.selectors import notification_status_summary
from notifications.services import (
    held_notifications_discard,
    held_notifications_release,
)


class Command(BaseCommand):
    help = "notifications status | release --type T | discard --type T"

    def add_arguments(self, parser) -> None:
        parser.add_argument("verb", choices=["status", "release", "discard"])
        parser.add_argument(
            "--type", dest="template_key", help="Notice type, e.g. security/two_factor_enabled"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, verb: str, template_key: str | None, **options) -> None:
        if verb == "status":
            summary = notification_status_summary()
            if options["json"]:
                self.stdout.write(json.dumps(summary, default=str))
                return
            for hold in summary["holds"]:
                self.stdout.write(
                    self.style.ERROR(
                        f"HELD {hold['template_key']}: {hold['held']} waiting since "
                        f"{hold['held_at']:%Y-%m-%d %H:%M} UTC"
                    )
                )
            if not summary["holds"]:
                self.stdout.write("No notice type is held.")
            for status, count in sorted(summary["by_status"].items()):
                self.stdout.write(f"{status:>10}: {count}")
            return
        if not template_key:
            raise CommandError(f"{verb} needs --type")
        if verb == "release":
            count = held_notifications_release(template_key=template_key)
            self.stdout.write(self.style.SUCCESS(f"Released {count} {template_key} notices."))
        else:
            count = held_notifications_discard(template_key=template_key)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Discarded {count} {template_key} notices (kept as records, not sent)."
                )
            )
