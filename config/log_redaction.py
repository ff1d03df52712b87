"""Keep secrets out of logs: tokens in URL paths and every query string are redacted.

Links we send carry single-use tokens in their path (status, "this wasn't me", recovery and
cancel links; allauth's reset and confirmation keys). An access log that kept them would let
its reader use a link before its owner does. The gunicorn access log and Django's own
request logging both pass through here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

REDACTED = "[redacted]"
# A path segment that long in the URL alphabet is a token (ours are 43 characters), never
# a word of one of our paths.
_TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_:.-]{20,}(?=/|$|\?|\s)")
_QUERY = re.compile(r"\?[^\s\"]*")


def redact(text: str) -> str:
    """`text` with every query string dropped and every token-like path segment replaced."""
    return _TOKEN_SEGMENT.sub(REDACTED, _QUERY.sub("", text))


class RedactingAccessLogger(GunicornLogger):
    """gunicorn's logger with the request line, path, query and referer redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{raw_uri}e", "{path_info}e", "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        for key in ("q", "{query_string}e"):
            if key in atoms:
                atoms[key] = ""
        return atoms


class RedactSecretsFilter(logging.Filter):
    """Redact tokens in the arguments of a log record (e.g. django.request's "Not Found: %s")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
        return True
