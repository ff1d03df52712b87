"""Run the benchmarks, print a table of figures with their targets, write JSON and a report.

python -m bench.run [--quick] [--only NAME ...] [--json bench/results.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, Result

BENCHMARKS = [
    "revocation",
    "take_next",
    "phone_lookup",
    "delivery",
    "code_flood",
    "crisis",
    "lockout",
    "timing",
]


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": len(
            [
                1
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("processor")
            ]
        ),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": postgres.strip(),
        "kernel": platform.release(),
    }


def table(results: list[Result]) -> str:
    rows = [("benchmark", "metric", "value", "baseline", "ratio", "target", "met")]
    for r in results:
        rows.append(
            (
                r.benchmark,
                r.metric,
                f"{r.value:,.2f} {r.unit}",
                f"{r.baseline:,.2f} ({r.baseline_label})" if r.baseline is not None else "",
                f"{r.ratio:,.2f}x" if r.ratio is not None else "",
                r.target,
                {True: "yes", False: "NO", None: ""}[r.met],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes, under 2 minutes.")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    results: list[Result] = []
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name} ==", flush=True)
        t0 = time.perf_counter()
        results.extend(module.run(quick=args.quick))
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(table(results))
    rows = [{**r.as_dict(), "mode": "quick" if args.quick else "full"} for r in results]
    if args.only and Path(args.json).exists():
        # A run of some sections keeps the other sections' figures from the last run.
        ran = {r.benchmark for r in results}
        earlier = json.loads(Path(args.json).read_text(encoding="utf-8"))["results"]
        rows = [r for r in earlier if r["benchmark"] not in ran] + rows
    payload = {
        "quick": args.quick,
        "machine": machine(),
        "seconds": round(time.perf_counter() - started, 1),
        "results": rows,
    }
    Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"\nWrote {args.json} ({payload['seconds']} s in all)")
    from bench.report import write_report

    write_report(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
