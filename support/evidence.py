"""Evidence files: the type is read from the content, never from the file name."""

from __future__ import annotations

SIGNATURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"%PDF-": "application/pdf",
}
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_EVIDENCE_FILES = 5


def sniff_content_type(head: bytes) -> str | None:
    """The content type from the file's first bytes, or None if it is not allowed."""
    for signature, content_type in SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    return None
