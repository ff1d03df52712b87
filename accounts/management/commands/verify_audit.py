"""Check the security-event hash chain; exit non-zero at the first broken link."""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from accounts.management.progress import progress_argument_add, progress_bar
from accounts.services.audit_verify import audit_chain_length, audit_chain_verify


class Command(BaseCommand):
    help = "Verify that no security event was edited or deleted."

    def add_arguments(self, parser: ArgumentParser) -> None:
        progress_argument_add(parser)

    def handle(self, *args, no_progress: bool, **options) -> None:
        with progress_bar(
            self,
            total=audit_chain_length(),
            description="Audit chain",
            unit="events",
            hidden=no_progress,
        ) as bar:
            checked, broken = audit_chain_verify(progress=bar.update)
        if broken is not None:
            raise CommandError(
                f"Audit chain broken at event #{broken.seq}: {broken.problem} "
                f"({checked} events before it are intact)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events."))
