"""Check the security-event hash chain and signed checkpoints; non-zero exit at the first break."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.management.progress import progress_argument_add, progress_bar
from accounts.services.audit_checkpoint import (
    AuditCheckpoint,
    CheckpointRefused,
    audit_checkpoints_load,
)
from accounts.services.audit_verify import audit_chain_length, audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify that no security event was edited or deleted, and that the chain still holds "
        "every signed checkpoint (no truncation, no rewrite)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument(
            "--checkpoints",
            nargs="?",
            const="",
            default=None,
            metavar="DIR",
            help=(
                "Directory of signed checkpoints that must exist and hold some (default: "
                "DJANGO_AUDIT_CHECKPOINT_DIR). Without this option the checkpoints in "
                "DJANGO_AUDIT_CHECKPOINT_DIR are used when there are any."
            ),
        )
        choice.add_argument(
            "--no-checkpoints",
            action="store_true",
            help="Check the chain alone (it cannot show a truncation or a rewrite by its owner).",
        )
        progress_argument_add(parser)

    def handle(
        self, *args, checkpoints: str | None, no_checkpoints: bool, no_progress: bool, **options
    ) -> None:
        loaded: list[AuditCheckpoint] = []
        unanchored: Path | None = None
        if checkpoints is not None:
            directory = Path(checkpoints or settings.AUDIT_CHECKPOINT_DIR)
            loaded = self._checkpoints(directory)
            if not loaded:
                raise CommandError(f"No checkpoints in {directory}.")
        elif not no_checkpoints:
            # The checkpoints beat writes are what shows a truncated chain or one its owner
            # rewrote: a plain run uses them too, and says so when there are none yet.
            directory = Path(settings.AUDIT_CHECKPOINT_DIR)
            loaded = self._checkpoints(directory) if directory.is_dir() else []
            if not loaded:
                unanchored = directory
        with progress_bar(
            self,
            total=audit_chain_length(),
            description="Audit chain",
            unit="events",
            hidden=no_progress,
        ) as bar:
            report = audit_chain_verify(progress=bar.update, checkpoints=loaded)
        if report.broken is not None:
            raise CommandError(
                f"Audit chain broken at event #{report.broken.seq}: {report.broken.problem} "
                f"({report.checked} events before it are intact)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} events."))
        if report.legacy:
            self.stdout.write(
                f"{report.legacy} legacy events (written before the chain was keyed) are "
                "protected by plain SHA-256 only; the keyed chain starts after them."
            )
        if unanchored is not None:
            self.stdout.write(
                f"No checkpoints in {unanchored}: a truncated chain or one rewritten by the "
                "database owner cannot be detected without them."
            )
        if loaded:
            newest = max(loaded, key=lambda checkpoint: checkpoint.seq)
            self.stdout.write(
                f"Holds all {len(loaded)} checkpoints; the newest covers events up to "
                f"#{newest.seq} ({newest.created_at})."
            )

    def _checkpoints(self, directory: Path) -> list[AuditCheckpoint]:
        try:
            return audit_checkpoints_load(directory=directory)
        except FileNotFoundError:
            raise CommandError(f"No checkpoint directory {directory}.") from None
        except CheckpointRefused as refused:
            raise CommandError(
                f"Checkpoint refused: {refused.name} in {directory}: {refused.reason}."
            ) from None
