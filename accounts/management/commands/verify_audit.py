"""Check the security-event hash chain; exit non-zero at the first broken link."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.services.audit_verify import audit_chain_verify


class Command(BaseCommand):
    help = "Verify that no security event was edited or deleted."

    def handle(self, *args, **options) -> None:
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(
                f"Audit chain broken at event #{broken.seq}: {broken.problem} "
                f"({checked} events before it are intact)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events."))
