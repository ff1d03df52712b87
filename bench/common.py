"""What every benchmark shares: a result row, timing, a throwaway database, CPU accounting."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


# --- CPU accounting ----------------------------------------------------------------------------


def _proc_stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 once it is gone)."""
    fields = _proc_stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_group(pgid: int) -> list[int]:
    """The processes of a process group: a server started in its own session and its children."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat_fields(entry.name)
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds the machine has spent busy, and in all, summed over its cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds that named sets of processes spend between `start()` and `stop()`.

    Each source names its processes when asked, at the start and again at the end, so a
    process that appears in between (a new worker child, a new database session) counts
    from zero; one that ends in between is not counted.
    """

    def __init__(self, sources: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.sources = sources
        self.before: dict[str, dict[int, float]] = {}
        self.machine_before = (0.0, 0.0)

    def start(self) -> None:
        self.before = {
            name: {pid: process_cpu_seconds(pid) for pid in pids()}
            for name, pids in self.sources.items()
        }
        self.machine_before = machine_cpu_seconds()

    def stop(self) -> dict[str, float]:
        spent = {
            name: sum(
                max(0.0, process_cpu_seconds(pid) - self.before[name].get(pid, 0.0))
                for pid in pids()
            )
            for name, pids in self.sources.items()
        }
        busy, total = machine_cpu_seconds()
        spent["machine, busy"] = busy - self.machine_before[0]
        spent["machine, all cores"] = total - self.machine_before[1]
        return spent
