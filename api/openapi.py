"""The OpenAPI 3.1 description of the service API, kept as openapi.json beside this module."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@cache
def openapi_bytes() -> bytes:
    return OPENAPI_PATH.read_bytes()


def openapi_document() -> dict:
    """A fresh copy of the schema as Python data (callers may change it)."""
    return json.loads(openapi_bytes())
