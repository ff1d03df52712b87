"""Return claims whose lease ran out to the queue (also run every minute by Celery beat)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from support.services.queue import case_claims_release_stale


class Command(BaseCommand):
    help = "Return expired case claims to the queue."

    def handle(self, *args, **options) -> None:
        count = case_claims_release_stale()
        self.stdout.write(f"Returned {count} expired claim(s) to the queue.")
