"""The dashboard's health panel and security table while the box refuses calls for overload
(firmware.pbx.admission): the templates rendered with the /health the box gives, no browser."""
from __future__ import annotations

import bottle

from webui import sysinfo
from webui.app import VIEWS, Helpers

HEALTH = sysinfo.Health(cpu_percent=97.0, mem_total=2 << 30, mem_used=1 << 30, disk_total=8 << 30,
                        disk_used=2 << 30, load1=1.5, uptime=3600.0, temperature=None)


def render(name: str, **live: object) -> str:
    snap = {"health": HEALTH, "box_error": None, "history": [], "box": {}, "events": [], **live}
    return bottle.template(name, template_lookup=[str(VIEWS)], h=Helpers, live=snap)


def admission(state: str, reason: str | None, refused: int) -> dict[str, object]:
    return {"state": state, "reason": reason, "seconds": 75.0, "refused_recently": refused,
            "recent_seconds": 300.0, "refused": {}, "measures": {}, "max_setups_per_second": 200.0}


def test_the_health_panel_warns_while_the_box_refuses_calls():
    html = render("live_health", box={"calls": 40, "registrations": 50, "banned": 0,
                                       "admission": admission("refusing", "media-clock", 12)})
    assert 'id="admission"' in html and 'class="warn"' in html
    assert "Refusing new calls: the box is overloaded (media-clock) for 1:15" in html
    assert "12 calls refused in the last 5 minutes" in html


def test_the_health_panel_names_the_setup_rate_and_then_the_recent_refusals():
    html = render("live_health", box={"admission": admission("limiting", "setup-rate", 1)})
    assert "beyond 200 new calls a second" in html and "1 call refused" in html
    html = render("live_health", box={"admission": admission("admitting", None, 3)})
    assert 'class="warn"' not in html and "admitting again" in html and "3 calls refused" in html
    html = render("live_health", box={"admission": admission("admitting", None, 0)})
    assert 'id="admission"' not in html
    assert 'id="admission"' not in render("live_health", box={})  # a box from before admission control


def test_the_security_table_says_why_the_box_was_overloaded():
    ev = {"time": 0.0, "event": "overload", "source": "box", "user": None, "method": None,
          "reason": "refusing new calls: cpu (cpu 99%)"}
    html = render("live_security", events=[ev])
    assert "overload: refusing new calls: cpu (cpu 99%)" in html
