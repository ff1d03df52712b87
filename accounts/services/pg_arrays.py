"""PostgreSQL array literals for the set-based statements of mass operations."""

from __future__ import annotations

from collections.abc import Iterable


def pg_array(values: Iterable[int | str]) -> str:
    """One `{…}` literal for a `%s::bigint[]` or `%s::text[]` parameter.

    Django's client-side binding quotes a Python list element by element, which for the
    thousands of ids, hashes and references of one batch costs more than the statement.
    Integers are written as digits; strings must be drawn from `[0-9A-Za-z-]` (hashes,
    references), which need no escaping inside the quotes, and anything else is refused.
    """
    items = []
    for value in values:
        if isinstance(value, int):
            items.append(str(value))
        elif value == "" or (value.isascii() and value.replace("-", "").isalnum()):
            items.append(f'"{value}"')
        else:
            raise ValueError(f"not a plain token: {value!r}")
    return "{" + ",".join(items) + "}"
