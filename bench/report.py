"""Write docs/benchmarks.md and its chart from one run's results."""

from __future__ import annotations

from html import escape

from bench.common import ROOT

DOCS = ROOT / "docs"


def _chart_svg(results: list[dict]) -> str:
    """Horizontal bars: each ratio against its same-run baseline, on a log-free linear scale."""
    rows = [r for r in results if r["ratio"] is not None]
    width, bar_area, row_height = 760, 380, 26
    height = 40 + row_height * len(rows)
    top = max([r["ratio"] for r in rows] + [1.0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="20" font-weight="bold">Each figure as a ratio to its baseline '
        "measured in the same run</text>",
    ]
    for i, r in enumerate(rows):
        y = 34 + i * row_height
        length = max(1.0, bar_area * r["ratio"] / top)
        colour = {True: "#1a7f37", False: "#b42318"}.get(r["met"], "#0b5cad")
        label = escape(f"{r['benchmark']}: {r['metric']}")[:60]
        parts += [
            f'<text x="10" y="{y + 14}">{label}</text>',
            f'<rect x="360" y="{y}" width="{length:.1f}" height="18" fill="{colour}"/>',
            f'<text x="{365 + length:.1f}" y="{y + 14}">{r["ratio"]:,.2f}x</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(payload: dict) -> None:
    results = payload["results"]
    DOCS.mkdir(exist_ok=True)
    chart = "benchmarks-ratios.svg"
    (DOCS / chart).write_text(_chart_svg(results), encoding="utf-8")
    machine = payload["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`; `--quick` for small sizes). Every figure",
        "is measured against a baseline from the same run, so the ratios hold on a noisy shared",
        "machine; the absolute numbers stand beside them. Raw data: `bench/results.json`.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"Python {machine['python']}; {machine['postgresql']}; Linux {machine['kernel']}. "
        f"Mode: {'quick' if payload['quick'] else 'full'}; the whole run took "
        f"{payload['seconds']:.0f} s.",
        "",
        f"![ratios]({chart})",
        "",
        "| benchmark | metric | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        baseline = (
            f"{r['baseline']:,.2f} ({r['baseline_label']})" if r["baseline"] is not None else ""
        )
        ratio = f"{r['ratio']:,.2f}x" if r["ratio"] is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(
            f"| {r['benchmark']} | {r['metric']} | {r['value']:,.2f} {r['unit']} | "
            f"{baseline} | {ratio} | {r['target']} | {met} |"
        )
    unmet = [r for r in results if r["met"] is False and "why_not_met" in r["notes"]]
    if unmet:
        lines += ["", "## Targets not met in this run", ""]
        lines += [
            f"- **{r['benchmark']} — {r['metric']}**: {r['notes']['why_not_met']}" for r in unmet
        ]
    notes = [(r["benchmark"], r["metric"], r["notes"]) for r in results if r["notes"]]
    if notes:
        lines += ["", "## Notes", ""]
        for benchmark, metric, note in notes:
            details = "; ".join(f"{k}: {v}" for k, v in note.items() if k != "why_not_met")
            lines.append(f"- **{benchmark} — {metric}**: {details}")
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
