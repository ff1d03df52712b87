"""The development inbox: copies of sent emails and SMS as JSON files, listed at /dev/inbox/."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone


def dev_inbox_store(
    *, kind: str, to: str, subject: str, body: str, reference: str = "", html: str = ""
) -> Path:
    directory = Path(settings.DEV_INBOX_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    # One file per message reference, like a gateway that honours idempotency keys: a
    # message delivered again (a worker killed after sending) replaces its own copy.
    name = f"{kind}-{reference}" if reference else f"{kind}-{secrets.token_hex(8)}"
    path = directory / f"{name}.json"
    record = {
        "kind": kind,
        "to": to,
        "subject": subject,
        "body": body,
        "html": html,
        "reference": reference,
        "sent_at": now.isoformat(),
    }
    # Written aside and renamed into place: a reader (the page, a test) never sees half a file.
    partial = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    partial.write_text(json.dumps(record), encoding="utf-8")
    partial.replace(path)
    return path


def dev_inbox_list(limit: int = 200) -> list[dict[str, Any]]:
    """Newest first."""
    directory = Path(settings.DEV_INBOX_DIR)
    if not directory.exists():
        return []
    records = [json.loads(p.read_text(encoding="utf-8")) for p in directory.glob("*.json")]
    return sorted(records, key=lambda r: r["sent_at"], reverse=True)[:limit]
