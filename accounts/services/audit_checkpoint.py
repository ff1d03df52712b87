"""Signed checkpoints of the audit chain head, kept outside the database.

The keyed chain stops anyone without the audit key from rewriting events unseen, but the
database alone cannot show that events are *missing* at its end: truncate the table and
reset the head, or delete the newest events and move the head back, and what is left is a
shorter chain that verifies. A checkpoint is the head as it was (position, hash, number of
events, the legacy boundary, time) signed with the audit key and written as a small JSON
file to a directory outside the database (ideally a write-once store or another host).
`verify_audit --checkpoints DIR` then requires the chain to reach every checkpoint and to
hold, at each checkpoint's position, the hash it recorded.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditChainHead, SecurityEvent
from accounts.services.audit import AuditKey, audit_key_current, audit_keyring

CHECKPOINT_VERSION = 1
CHECKPOINT_SUFFIX = ".json"


@dataclass(frozen=True)
class AuditCheckpoint:
    """The chain head at one moment, as signed (`name` is the file it was read from)."""

    seq: int
    hash: str
    count: int
    legacy_until: int
    created_at: str
    key_id: str
    name: str = ""

    def signed_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["name"]
        return {"version": CHECKPOINT_VERSION, **fields}


class CheckpointRefused(ValueError):
    """A checkpoint file that cannot be trusted: unreadable, malformed or badly signed."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _signature(fields: dict[str, Any], key: AuditKey) -> str:
    message = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.checkpoint_key, message, "sha256").hexdigest()


def audit_checkpoint_write(*, directory: Path | None = None) -> tuple[Path, AuditCheckpoint]:
    """Sign the current chain head and write it as a new file in `directory`; file and content.

    Reads without locking the chain: the head row commits together with the events up to
    its position, so counting the events up to that position afterwards counts exactly
    those. A file is never overwritten (exclusive create, then renamed into place whole).
    """
    directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)
    key = audit_key_current()
    with transaction.atomic():
        head = AuditChainHead.objects.filter(pk=1).first()
        seq, head_hash, legacy_until = (
            (head.seq, head.hash, head.legacy_until) if head else (0, "", 0)
        )
        count = SecurityEvent.objects.filter(seq__lte=seq).count()
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        seq=seq,
        hash=head_hash,
        count=count,
        legacy_until=legacy_until,
        created_at=now.isoformat(),
        key_id=key.key_id,
    )
    fields = checkpoint.signed_fields()
    document = json.dumps({**fields, "signature": _signature(fields, key)}, indent=2) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    name = f"audit-{now:%Y%m%dT%H%M%S%fZ}-{seq}{CHECKPOINT_SUFFIX}"
    path = directory / name
    partial = directory / f".{name}.partial"
    with open(partial, "x", encoding="utf-8") as handle:
        handle.write(document)
        handle.flush()
        os.fsync(handle.fileno())
    if path.exists():
        partial.unlink()
        raise FileExistsError(path)
    partial.rename(path)
    return path, AuditCheckpoint(**{**asdict(checkpoint), "name": name})


def audit_checkpoint_parse(
    text: str, *, name: str, keyring: dict[str, AuditKey] | None = None
) -> AuditCheckpoint:
    """The checkpoint in `text` if its signature holds under a configured audit key.

    Raises `CheckpointRefused` for anything else: a file edited or forged without the key,
    one signed with a key that is neither the current one nor a fallback, or not a
    checkpoint at all.
    """
    try:
        document = json.loads(text)
    except ValueError:
        raise CheckpointRefused(name, "not valid JSON") from None
    if not isinstance(document, dict) or document.get("version") != CHECKPOINT_VERSION:
        raise CheckpointRefused(name, "not an audit checkpoint (version 1)")
    signature = document.pop("signature", None)
    try:
        checkpoint = AuditCheckpoint(
            seq=_int(document, "seq"),
            hash=_str(document, "hash"),
            count=_int(document, "count"),
            legacy_until=_int(document, "legacy_until"),
            created_at=_str(document, "created_at"),
            key_id=_str(document, "key_id"),
            name=name,
        )
    except (KeyError, TypeError) as error:
        raise CheckpointRefused(name, f"missing or malformed field {error.args[0]}") from None
    if set(document) != set(checkpoint.signed_fields()):
        raise CheckpointRefused(name, "unexpected fields")
    key = (keyring if keyring is not None else audit_keyring()).get(checkpoint.key_id)
    if key is None:
        raise CheckpointRefused(
            name,
            f"signed with an unknown audit key (key id {checkpoint.key_id!r}); "
            "is it missing from DJANGO_AUDIT_KEY_FALLBACKS?",
        )
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, _signature(checkpoint.signed_fields(), key)
    ):
        raise CheckpointRefused(name, "bad signature (the file was edited or forged)")
    return checkpoint


def _int(document: dict[str, Any], field: str) -> int:
    value = document[field]
    if type(value) is not int or value < 0:
        raise TypeError(field)
    return value


def _str(document: dict[str, Any], field: str) -> str:
    value = document[field]
    if not isinstance(value, str):
        raise TypeError(field)
    return value


def audit_checkpoints_load(*, directory: Path) -> list[AuditCheckpoint]:
    """Every checkpoint in `directory`, oldest position first; refuses the first bad file.

    Raises `FileNotFoundError` if there is no such directory and `CheckpointRefused` for a
    file that does not verify, so one forged or edited file fails the whole check.
    """
    if not directory.is_dir():
        raise FileNotFoundError(directory)
    keyring = audit_keyring()
    checkpoints = []
    for path in sorted(directory.glob(f"*{CHECKPOINT_SUFFIX}")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CheckpointRefused(path.name, f"unreadable ({error})") from None
        checkpoints.append(audit_checkpoint_parse(text, name=path.name, keyring=keyring))
    return sorted(checkpoints, key=lambda checkpoint: (checkpoint.seq, checkpoint.created_at))
