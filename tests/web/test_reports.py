"""Reports: the figures of a known queue log (written into the box's database as the ACD would)
appear per hour, equal to `linebox queue stats --json`, with their charts drawn by uPlot; a bad
window is refused next to its field."""
from __future__ import annotations

import calendar
import json
import sqlite3
import time

from tests.web.conftest import finish_wizard
from tests.web.test_cdr_page import shoot

DAY = "2026-11-20"
T0 = calendar.timegm(time.strptime(DAY, "%Y-%m-%d"))
# (seconds after midnight UTC, kind, call, agent, wait, talk, wrapup, reason)
LOG = [
    (9 * 3600, "LOGIN", "", "1002", 0, 0, 0, ""),
    (9 * 3600 + 600, "ENTER", "c1", "", 0, 0, 0, "1001"),
    (9 * 3600 + 605, "CONNECT", "c1", "1002", 5, 0, 0, ""),
    (9 * 3600 + 665, "COMPLETE", "c1", "1002", 5, 60, 10, ""),
    (9 * 3600 + 1200, "ENTER", "c2", "", 0, 0, 0, "1003"),
    (9 * 3600 + 1230, "CONNECT", "c2", "1002", 30, 0, 0, ""),
    (9 * 3600 + 1350, "COMPLETE", "c2", "1002", 30, 120, 0, ""),
    (10 * 3600 + 300, "ENTER", "c3", "", 0, 0, 0, "1001"),
    (10 * 3600 + 312, "ABANDON", "c3", "", 12, 0, 0, ""),
]


def write_queue_log(data) -> None:
    with sqlite3.connect(data / "linebox.db", timeout=10) as db:
        db.executemany("INSERT INTO queue_log (time, queue, kind, call_id, agent, wait, talk, wrapup, position, reason)"
                       " VALUES (?, 'sales', ?, ?, ?, ?, ?, ?, 1, ?)",
                       [(T0 + t, k, c, a, w, tk, wr, r) for t, k, c, a, w, tk, wr, r in LOG])


def test_reports_show_the_queue_figures_with_charts(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001", "1002", "1003"))
    write_queue_log(box.data)
    web = web_factory(box)
    finish_wizard(page, web)
    expected = json.loads(box.cli("queue", "stats", "--period", "hour", "--since", DAY, "--until", "2026-11-21",
                                  "--agents", "--json").stdout)
    assert [r["offered"] for r in expected["queues"]] == [2, 1]  # the log says so; the page must agree

    page.goto(web.url(f"/reports?from={DAY}&to={DAY}&period=hour&queue="))
    rows = page.locator("#queue-figures tbody tr[data-queue]")
    assert rows.count() == 2
    for row, want in zip(rows.all(), expected["queues"]):
        assert row.get_attribute("data-period") == want["period_start"]
        for key in ("offered", "answered", "abandoned"):
            assert row.locator(f"[data-k={key}]").inner_text() == str(want[key])
    first, second = rows.all()
    assert first.locator("[data-k=service_level_pct]").inner_text().startswith("50.0%")
    assert first.locator("[data-k=aht]").inner_text() == "1:35"  # (70 + 120) / 2 s
    assert second.locator("[data-k=abandon_pct]").inner_text() == "100.0%"
    agent = page.locator("#agent-figures tr[data-agent='1002']")
    assert agent.count() == len([a for a in expected["agents"] if a["agent"] == "1002"])
    assert agent.first.locator("[data-k=answered]").inner_text() == "2"

    # The charts: uPlot drew one per figure (volume, service level, handle time, agents).
    page.wait_for_selector("#charts[data-charts='4']")
    assert page.locator("#charts figure.chart[data-drawn] canvas").count() == 4
    assert page.locator("#chart-volume-sales .u-legend").inner_text().count("offered") == 1
    shoot(page, "reports")

    # Per day, one agent: the day's row and that agent's only.
    page.goto(web.url(f"/reports?from={DAY}&to={DAY}&period=day&agent=1002"))
    day = page.locator("#queue-figures tr[data-queue='sales']")
    assert day.count() == 1 and day.locator("[data-k=offered]").inner_text() == "3"
    assert page.locator("#agent-figures tr[data-agent]").count() == 1
    assert page.locator("#agent-figures tr[data-agent='1002'] [data-k=answered]").inner_text() == "2"
    page.goto(web.url(f"/reports?from={DAY}&to={DAY}&period=day&agent=1099"))
    assert page.locator("#agent-figures tr[data-agent]").count() == 0

    page.goto(web.url(f"/reports?from={DAY}&to=2026-11-19&period=hour"))
    assert "before the start" in page.inner_text("#to-error")
    assert page.locator("#queue-figures tr[data-queue]").count() == 0
