"""The README's settings table names exactly the environment variables the settings read."""

from __future__ import annotations

import re

from tests.conftest import ROOT

SETTINGS_MODULES = ("base.py", "local.py", "production.py")
READ = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
NAME = re.compile(r"`((?:DJANGO_)?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`")
SUFFIX = re.compile(r"`(_[A-Z0-9_]+)`")
# Read by Django itself (manage.py, wsgi) rather than through the settings' `env`.
READ_BY_DJANGO = {"DJANGO_SETTINGS_MODULE"}


def names_read() -> set[str]:
    folder = ROOT / "config" / "settings"
    return {
        name for module in SETTINGS_MODULES for name in READ.findall((folder / module).read_text())
    }


def settings_table() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def names_documented() -> set[str]:
    """Every name of the table, with a row's `_SUFFIX` shorthand spelled out against the
    full names before it (`DJANGO_EMAIL_HOST`, `_PORT` is DJANGO_EMAIL_PORT)."""
    names: set[str] = set()
    for row in settings_table():
        full = [n for n in NAME.findall(row) if not n.startswith("_")]
        names.update(full)
        for name in full:
            parts = name.split("_")
            for suffix in SUFFIX.findall(row):
                names.update("_".join(parts[:k]) + suffix for k in range(1, len(parts)))
    return names


def test_every_variable_the_settings_read_is_in_the_table():
    undocumented = names_read() - names_documented()
    # A benchmark-only knob the production settings read only to refuse it has its own
    # paragraph in the README instead of a row.
    undocumented.discard("DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION")
    assert undocumented == set()


def test_every_variable_in_the_table_is_read():
    written_out = {n for row in settings_table() for n in NAME.findall(row)}
    variables = {n for n in written_out if n.startswith("DJANGO_") or n.endswith("_URL")}
    unread = variables - names_read() - READ_BY_DJANGO
    assert unread == set()
