"""Print the support queue's figures: backlog, oldest wait, rates."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from support.selectors import queue_stats


class Command(BaseCommand):
    help = "Backlog by status and priority, oldest wait, resolution and deflection rates."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        stats = queue_stats(hours=24)
        if options["json"]:
            self.stdout.write(json.dumps(stats))
            return
        self.stdout.write(
            f"Waiting: {stats['waiting']}  oldest: {stats['oldest_waiting_seconds']} s"
        )
        for key, count in stats["backlog"].items():
            self.stdout.write(f"  {key:<32} {count}")
        deflection = stats["deflection_rate"]
        self.stdout.write(
            f"Resolved per hour (24 h): {stats['resolutions_per_hour']}  "
            f"median resolution: {stats['median_resolution_seconds'] or '-'} s  "
            f"deflection (7 d): {'-' if deflection is None else f'{deflection:.1%}'}  "
            f"pending approvals: {stats['pending_approvals']}"
        )
