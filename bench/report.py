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


def _burn_down_svg(chart: dict[str, list[float]]) -> str:
    """Customers still locked out, hour by hour: one line per way of clearing the lockout."""
    hours = chart["hours"]
    series = {name: points for name, points in chart.items() if name != "hours"}
    width, height, left, right, top, bottom = 760, 340, 70, 20, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = max([max(points) for points in series.values()] + [1])
    x_max = max(hours[-1], 1)

    def x(hour: float) -> float:
        return left + plot_w * hour / x_max

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="20" font-weight="bold">Customers still locked out, by hour since the '
        "lockout (20 agents)</text>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 10}" text-anchor="middle">hours</text>',
    ]
    step = 6 if x_max <= 48 else 12 if x_max <= 120 else 24
    for hour in range(0, x_max + 1, step):
        parts.append(
            f'<text x="{x(hour):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{hour}</text>'
        )
    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )
    colours = ["#1a7f37", "#b42318", "#0b5cad", "#8250df"]
    for i, (name, points) in enumerate(series.items()):
        path = [f"{x(hour):.1f},{y(value):.1f}" for hour, value in zip(hours, points, strict=True)]
        colour = colours[i % len(colours)]
        parts += [
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(path)}"/>',
            f'<rect x="{left + plot_w - 270}" y="{top + 4 + i * 18}" width="12" height="12" '
            f'fill="{colour}"/>',
            f'<text x="{left + plot_w - 252}" y="{top + 14 + i * 18}">{escape(name)}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def _sections_and_modes(payload: dict) -> str:
    default = "quick" if payload["quick"] else "full"
    modes = {r["benchmark"]: r.get("mode", default) for r in payload["results"]}
    return ", ".join(f"{name} ({mode})" for name, mode in modes.items())


def _code_flood_section(results: list[dict]) -> list[str]:
    """What the code flood's figures say, in words: coalesced delivery against a task per code."""
    flood = {r["metric"]: r for r in results if r["benchmark"] == "code_flood"}
    if "tasks per code" not in flood:
        return []
    notes = flood["tasks per code"]["notes"]
    new, old = notes["coalesced"], notes["one_task_per_code"]
    cpu, p50, p99 = (
        flood[m]
        for m in (
            "worker CPU per code",
            "latency p50, commit to sent",
            "latency p99, commit to sent",
        )
    )
    lone = flood["lone code in a quiet period, p50"]

    def seconds(summary: dict) -> str:
        return ", ".join(f"{x:.1f}" for x in summary["flood_seconds_first_ask_to_last_sent"])

    return [
        "",
        "## Code flood: one task per burst against one task per code",
        "",
        f"{notes['codes_per_round']:,} status-page codes per round (phone and email in turn) from "
        f"{notes['senders']} senders at {notes['offered_rate_codes_per_s']:.0f} codes/s, "
        f"delivered by {notes['workers']}; rounds: {', '.join(notes['rounds'])}. "
        f"The task that sends what is due ran {new['tasks']:,} tasks for {new['codes']:,} codes "
        f"({new['empty_tasks']} found nothing left), against {old['tasks']:,} tasks, one a code; "
        "the workers spent "
        f"{cpu['value']:.2f} ms CPU a code against {cpu['baseline']:.2f} ({cpu['ratio']:.2f}x). "
        f"A code reached the backend {p50['value']:,.0f} ms after its commit at the median and "
        f"{p99['value']:,.0f} ms at p99; one task per code took {p50['baseline']:,.0f} and "
        f"{p99['baseline']:,.0f} ms. From the first code asked for to the last one sent: "
        f"{seconds(new)} s, against {seconds(old)} s; the senders asked for "
        f"{notes['codes_per_round'] / notes['offered_rate_codes_per_s']:.1f} s a round. "
        "A lone code in a quiet period, with no task on its way, left after "
        f"{lone['value']:,.0f} ms ({lone['baseline']:,.0f} ms with a task of its own): "
        "the first ask of a quiet period is sent at once, with no wait for others to join it.",
    ]


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
        f"Sections and modes: {_sections_and_modes(payload)}; the last run took "
        f"{payload['seconds']:.0f} s (a run of some sections keeps the others' last figures).",
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
    burn_downs = [r for r in results if "burn_down" in r["notes"]]
    for r in burn_downs:
        image = f"benchmarks-{r['benchmark']}-burndown.svg"
        (DOCS / image).write_text(_burn_down_svg(r["notes"]["burn_down"]), encoding="utf-8")
        lines += [
            "",
            f"## {r['benchmark'].capitalize()}: burn-down",
            "",
            "Customers still locked out, hour by hour, with the self-service paths and today "
            "(an agent for everyone not on the wrong email), at the handling time the browser "
            "walk measured; projected to 100,000 customers from the sample by the mix.",
            "",
            f"![burn-down]({image})",
        ]
    lines += _code_flood_section(results)
    notes = [(r["benchmark"], r["metric"], r["notes"]) for r in results if r["notes"]]
    if notes:
        lines += ["", "## Notes", ""]
        for benchmark, metric, note in notes:
            details = "; ".join(
                f"{k}: {v}" for k, v in note.items() if k not in ("why_not_met", "burn_down")
            )
            lines.append(f"- **{benchmark} — {metric}**: {details}")
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
