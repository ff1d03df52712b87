"""What every benchmark shares: a result row, timing, and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}


@dataclass
class Result:
    """One figure: the measured value, its baseline from the same run, and the target."""

    benchmark: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    notes: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


@contextmanager
def timer() -> Iterator[dict]:
    box = {}
    start = time.perf_counter()
    yield box
    box["seconds"] = time.perf_counter() - start


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            PG["host"],
            "-p",
            PG["port"],
            "-U",
            PG["user"],
            "-d",
            database,
            "-q",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
    )


def fresh_database(name: str) -> str:
    """Create an empty PostgreSQL database, migrate it, and return its URL."""
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{name}"')
    url = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.bench"}
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return url


def drop_database(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
