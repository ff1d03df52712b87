"""A module's private names (a leading underscore) stay in it: whatever another module
needs is public somewhere, under a name that says what it is, and tested as such."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "api", "config", "notifications", "recovery", "support")


def private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in APPS:
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
            ]
    return found


def test_no_module_imports_a_private_name_of_another():
    sources = [path for app in APPS for path in (ROOT / app).rglob("*.py")]
    assert len(sources) > 50
    assert [found for path in sources for found in private_imports(path)] == []
