"""Sign the audit chain head and write it as a checkpoint file outside the database."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from accounts.services.audit_checkpoint import audit_checkpoint_write


class Command(BaseCommand):
    help = "Write a signed checkpoint of the security-event chain head (for verify_audit)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dir",
            dest="directory",
            metavar="DIR",
            help="Where to write it (default: DJANGO_AUDIT_CHECKPOINT_DIR).",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print the checkpoint as JSON."
        )

    def handle(self, *args, directory: str | None, as_json: bool, **options) -> None:
        try:
            path, checkpoint = audit_checkpoint_write(
                directory=Path(directory) if directory else None
            )
        except (ImproperlyConfigured, OSError) as error:
            raise CommandError(f"No checkpoint written: {error}") from None
        if as_json:
            self.stdout.write(json.dumps({"file": str(path), **checkpoint.signed_fields()}))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoint {path}: event #{checkpoint.seq}, {checkpoint.count} events, "
                f"key {checkpoint.key_id}."
            )
        )
