"""A small server-rendered SVG line chart: no chart library, nothing loaded from elsewhere."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD = 640, 200, 30


def line_chart_svg(
    series: dict[str, tuple[str, list[int]]],
    *,
    title: str,
    x_labels: list[str] | None = None,
    every: int = 6,
) -> SafeString:
    """`series` maps a label to (colour, values); every series has the same length.

    `x_labels` names each point on the time axis; every `every`-th one is written under it.
    """
    values = [v for _colour, points in series.values() for v in points]
    top = max([*values, 1])
    length = max(len(points) for _c, points in series.values())
    step = (WIDTH - 2 * PAD) / max(length - 1, 1)

    def polyline(points: list[int]) -> str:
        return " ".join(
            f"{PAD + i * step:.1f},{HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD):.1f}"
            for i, v in enumerate(points)
        )

    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title>'
        "</polyline>",
        ((colour, polyline(points), label) for label, (colour, points) in series.items()),
    )
    legend = format_html_join(
        "",
        '<text x="{}" y="16" fill="{}" font-size="12">{}</text>',
        ((PAD + 160 * i, colour, label) for i, (label, (colour, _p)) in enumerate(series.items())),
    )
    ticks = format_html_join(
        "",
        '<line x1="{x}" y1="{b}" x2="{x}" y2="{t}" stroke="#57606a"/>'
        '<text x="{x}" y="{y}" font-size="10" text-anchor="middle">{label}</text>',
        (
            {
                "x": f"{PAD + i * step:.1f}",
                "b": HEIGHT - PAD,
                "t": HEIGHT - PAD + 4,
                "y": HEIGHT - 8,
                "label": label,
            }
            for i, label in enumerate(x_labels or [])
            if i % every == 0
        ),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{title}" class="chart"><title>{title}</title>'
        '<line x1="{p}" y1="{b}" x2="{r}" y2="{b}" stroke="#57606a"/>{ticks}'
        '<text x="4" y="{tp}" font-size="11">{top}</text>{lines}{legend}</svg>',
        w=WIDTH,
        h=HEIGHT,
        p=PAD,
        b=HEIGHT - PAD,
        r=WIDTH - PAD,
        tp=PAD + 4,
        top=top,
        title=title,
        ticks=ticks,
        lines=lines,
        legend=legend,
    )
