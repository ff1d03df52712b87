"""PostgreSQL array literals for the set-based statements of mass operations.

Django's client-side binding quotes a Python list element by element, which for the
thousands of ids, hashes and references of one batch costs more than the statement. These
build one `{…}` literal for a `%s::bigint[]` or `%s::text[]` parameter instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLAIN_TOKENS = re.compile(r"[0-9A-Za-z-]*")


def pg_int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, map(int, values))) + "}"


def pg_token_array(values: Iterable[str]) -> str:
    """Strings drawn from `[0-9A-Za-z-]` (hashes, references), which need no escaping."""
    tokens = list(values)
    if not _PLAIN_TOKENS.fullmatch("".join(tokens)):
        raise ValueError("only plain tokens can go into an array literal")
    return '{"' + '","'.join(tokens) + '"}' if tokens else "{}"
