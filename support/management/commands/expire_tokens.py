"""Delete expired and used codes and links (also run hourly by Celery beat)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from support.services.cleanup import tokens_expire


class Command(BaseCommand):
    help = "Delete one-time codes and links that expired or were used."

    def handle(self, *args, **options) -> None:
        counts = tokens_expire()
        self.stdout.write(", ".join(f"{label}: {n}" for label, n in counts.items()))
