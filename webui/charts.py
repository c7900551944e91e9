"""Small charts drawn on the server as inline SVG: sparklines of the box's health and the bars
of today's calls. No script and no inline style (the Content-Security-Policy allows neither);
the page stays readable with JavaScript off and costs the box nothing to draw."""

from __future__ import annotations

from html import escape
from typing import Sequence


def sparkline(values: Sequence[float | None], *, top: float | None = None, width: int = 120,
              height: int = 24, label: str = "") -> str:
    """A polyline of the last values (None: no sample), scaled to ``top`` (default: the max)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(pts) < 2:
        return ""
    hi = top if top else max(v for _, v in pts) or 1.0
    n = max(1, len(values) - 1)
    coords = " ".join(f"{i * width / n:.1f},{height - 1 - min(v, hi) / hi * (height - 2):.1f}" for i, v in pts)
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}"><polyline fill="none" stroke="currentColor" stroke-width="1.5" '
            f'points="{coords}"/></svg>')


def bars(counts: Sequence[int], labels: Sequence[str], *, width: int = 480, height: int = 90,
         label: str = "") -> str:
    """One bar per bucket (today's calls per hour), with the count as each bar's title."""
    n = len(counts)
    if n == 0:
        return ""
    hi = max(counts) or 1
    bw = width / n
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height + 14}" width="100%" role="img" '
             f'aria-label="{escape(label)}">']
    for i, (c, lab) in enumerate(zip(counts, labels)):
        h = c / hi * (height - 2)
        parts.append(f'<rect x="{i * bw + 1:.1f}" y="{height - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                     f'fill="currentColor"><title>{escape(lab)}: {c}</title></rect>')
        if i % 3 == 0:
            parts.append(f'<text x="{i * bw + bw / 2:.1f}" y="{height + 12}" font-size="9" text-anchor="middle" '
                         f'fill="currentColor">{escape(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)
