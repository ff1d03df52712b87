"""Print the support metrics: backlog, waits, response and resolution times, SLA, rates."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from support.selectors import queue_stats


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


class Command(BaseCommand):
    help = (
        "Backlog, oldest wait, first response, resolution time without automated cases, "
        "SLA attainment per priority, reopen and deflection rates, resolutions per agent, "
        "held notifications."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--days", type=int, default=7, help="window of the rates (days)")

    def handle(self, *args, **options) -> None:
        stats = queue_stats(hours=24, days=options["days"])
        if options["json"]:
            self.stdout.write(json.dumps(stats))
            return
        self.stdout.write(f"Waiting: {stats['waiting']}  oldest: {stats['oldest_waiting_words']}")
        for key, count in stats["backlog"].items():
            self.stdout.write(f"  {key:<32} {count}")
        self.stdout.write(
            f"Last {stats['window_days']} days: first response (median) "
            f"{stats['first_response_median_words']}, resolution by agents (median) "
            f"{stats['resolution_median_words']}"
        )
        for priority, row in stats["sla"].items():
            self.stdout.write(
                f"  SLA {priority:<7} {row['hours']:>3} h: {_percent(row['attainment'])} "
                f"of {row['closed']} closed by agents"
            )
        self.stdout.write(
            f"Reopen rate: {_percent(stats['reopen_rate'])}  "
            f"deflection: {_percent(stats['deflection_rate'])} "
            f"({stats['deflected']} of {stats['requests']} requests)  "
            f"pending approvals: {stats['pending_approvals']}"
        )
        for email, counts in stats["per_agent"].items():
            self.stdout.write(f"  {email:<40} {counts['total']}")
        self.stdout.write(f"Held notifications: {stats['held_notifications_total']}")
        for template_key, count in stats["held_notifications"].items():
            self.stdout.write(f"  {template_key:<40} {count}")
