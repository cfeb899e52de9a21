"""Small inline SVG charts: drawn here, so the page needs no chart library, no script and no network.

Every chart carries ``role="img"`` and an ``aria-label`` that states its numbers, for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT, PAD = 360, 150, 28


def bars(title: str, labels: Sequence[str], values: Sequence[float], *, fmt: str = "{:g}") -> str:
    """A vertical bar chart of ``values`` with a label under each bar."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = (WIDTH - 2 * PAD) / len(values)
    parts: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (HEIGHT - 2 * PAD) * value / top
        x = PAD + i * step
        y = HEIGHT - PAD - height
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{height:.1f}" class="bar">'
            f"<title>{escape(label)}: {escape(fmt.format(value))}</title></rect>"
        )
        if len(values) <= 16 or i % math.ceil(len(values) / 16) == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - PAD + 14}" class="tick">{escape(label)}</text>')
    summary = "; ".join(f"{label}: {fmt.format(value)}" for label, value in zip(labels, values, strict=True))
    return _svg(title, summary, "".join(parts))


def curves(title: str, series: Mapping[str, Sequence[tuple[float, float]]], *, ylabel: str) -> str:
    """Lines of (k, value) points on a log2 k axis, one per series, with a legend."""
    points = [p for line in series.values() for p in line]
    if not points:
        return ""
    xs = [math.log2(max(x, 1.0)) for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x: float, y: float) -> tuple[float, float]:
        px = PAD + (math.log2(max(x, 1.0)) - x0) / (x1 - x0) * (WIDTH - 2 * PAD)
        return px, HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    parts: list[str] = []
    for n, (name, line) in enumerate(series.items()):
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (at(x, y) for x, y in line))
        parts.append(f'<polyline points="{coords}" class="line s{n}"/>')
        for x, y in line:
            a, b = at(x, y)
            parts.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" class="dot s{n}"><title>{escape(name)} k={x:g}: '
                f"{y:.1f}</title></circle>"
            )
        legend_x = WIDTH - PAD - 80 * (len(series) - 1 - n)
        parts.append(f'<text x="{legend_x}" y="{PAD - 12}" class="legend s{n}">{escape(name)}</text>')
    for x in sorted({x for x, _ in points}):
        parts.append(f'<text x="{at(x, y0)[0]:.1f}" y="{HEIGHT - PAD + 14}" class="tick">{x:g}</text>')
    parts.append(f'<text x="2" y="{PAD - 12}" class="tick start">{escape(ylabel)}</text>')
    parts.append(f'<text x="2" y="{at(1.0, y1)[1] + 4:.1f}" class="tick start">{y1:.1f}</text>')
    parts.append(f'<text x="2" y="{HEIGHT - PAD}" class="tick start">{y0:.1f}</text>')
    summary = "; ".join(f"{name}: " + ", ".join(f"k={x:g} {y:.1f}" for x, y in line) for name, line in series.items())
    return _svg(title, summary, "".join(parts))


def histogram(values: Sequence[float], *, bins: int = 10) -> tuple[list[str], list[float]]:
    """Equal-width bins of ``values``: their labels (lower edges) and counts."""
    if not values:
        return [], []
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0.0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [f"{low + i * width:.1f}" for i in range(bins)], counts


def _svg(title: str, summary: str, body: str) -> str:
    label = escape(f"{title}. {summary}")
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>{body}</svg>'
        "</figure>"
    )
