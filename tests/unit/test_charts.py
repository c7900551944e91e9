"""The dashboard's server-drawn charts: scaled to their top, empty when there is nothing to draw."""
from __future__ import annotations

import re

from webui.charts import bars, sparkline


def test_sparkline_scales_to_the_top_and_skips_missing_samples():
    svg = sparkline([None, 0.0, 50.0, 100.0], top=100, width=30, height=12)
    pts = [tuple(map(float, p.split(","))) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    assert [x for x, _ in pts] == [10.0, 20.0, 30.0]  # the missing first sample leaves its slot
    assert pts[0][1] == 11.0 and pts[2][1] == 1.0  # 0 at the bottom, the top at the top
    assert sparkline([5.0]) == "" and sparkline([]) == ""


def test_bars_one_per_hour_with_titles():
    svg = bars([0, 3, 1], ["00", "01", "02"], width=30, height=10)
    assert svg.count("<rect") == 3 and "<title>01: 3</title>" in svg
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill', svg)]
    assert heights == [0.0, 8.0, round(8 / 3, 1)]
    assert "<script" not in svg and "style=" not in svg  # the page's CSP forbids both
