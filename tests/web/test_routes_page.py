"""Outbound routes from the browser, on a box with two simulated FXO lines: the default route is
shown until routes are added; routes added, reordered and removed in the table are exactly the
section the box stores; a bad pattern, strip or line is refused next to its field and changes
nothing; "Try a number" answers as the box routes; and a real call leaves on the line and with
the number the page set."""
from __future__ import annotations

import json

from tests.peers.netutil import wait_until
from tests.web.conftest import create_admin

SIM = {"analog.driver": "sim", "analog.sim_fxo": "2", "analog.sim_fxs": "0"}
LOCAL = {"name": "local", "pattern": "9NXXXXXX", "strip": 1, "lines": ["fxo2", "fxo1"]}
INTERNATIONAL = {"name": "international", "pattern": "00X.", "strip": 2, "prepend": "011"}
EMERGENCY = {"name": "emergency", "pattern": "911", "lines": ["fxo1"]}


def _row(page, i: int, **fields: str) -> None:
    for key, value in fields.items():
        page.fill(f"#route-{i}-{key}", value)


def _save(page) -> int:
    """Saves the table; the status of the page that comes back (after a redirect: 200)."""
    with page.expect_navigation() as nav:
        page.click("#save-routes")
    return nav.value.status


def test_routes_edited_in_the_browser_send_a_call_out_on_the_right_line(box_factory, web_factory, page, phones,
                                                                        local_api):
    box = box_factory("box", extensions=("1001",), settings=SIM)
    api = local_api(box)
    api.set_section("ports", {"fxo1": {"inbound": "1001"}, "fxo2": {"inbound": "1001"}})
    web = web_factory(box)
    create_admin(page, web)

    # Nothing configured: the trunk-prefix route is in force, and the page says so.
    page.goto(web.url("/routes"))
    default = page.inner_text("#default-route")
    assert "analog.trunk_prefix" in default and "9X." in default and "strip 1" in default, default
    assert "fxo1, fxo2" in page.inner_text("#trunk-lines")
    assert page.locator("#route-list tbody tr").count() == 1  # the blank row
    page.fill("#try-number", "95551234")
    page.click("#try-button")
    assert "5551234 is dialled on any FXO line" in page.inner_text("#try-result"), page.inner_text("#try-result")

    # Two routes added one after the other; the second with no lines: any line.
    _row(page, 0, name="local", pattern="9NXXXXXX", strip="1", lines="fxo2,fxo1")
    assert _save(page) == 200
    assert "Saved the outbound routes" in page.inner_text("p.notice"), page.inner_text("main")
    assert page.locator("#default-route").count() == 0
    _row(page, 1, name="international", pattern="00X.", strip="2", prepend="011")
    _save(page)
    assert api.export_document()["routes"] == [LOCAL, INTERNATIONAL]
    assert page.input_value("#route-0-lines") == "fxo2, fxo1"

    # Refused in place, typed values kept, nothing changed: a bad pattern...
    before = api.export_document()
    _row(page, 2, name="bad", pattern="9Q", lines="fxo1")
    assert _save(page) == 400
    assert "'Q' at position 2" in page.inner_text("#route-2-pattern-error")
    assert page.input_value("#route-2-pattern") == "9Q" and page.input_value("#route-2-name") == "bad"
    assert "Nothing was changed" in page.inner_text("#failed")
    assert api.export_document() == before
    # ... a strip that is no number (the page's own check) ...
    _row(page, 2, pattern="8X.", strip="one")
    assert _save(page) == 400
    assert "not 'one'" in page.inner_text("#route-2-strip-error")
    assert api.export_document() == before
    # ... and a line the ports page does not configure.
    _row(page, 2, strip="1", lines="fxo1, fxo7")
    assert _save(page) == 400
    assert "'fxo7' is no configured FXO line" in page.inner_text("#route-2-lines-error")
    assert page.locator("#route-2-pattern-error").count() == 0
    assert api.export_document() == before

    # Try a number: the route, the number sent down the line, the lines; and the box's own numbers.
    page.goto(web.url("/routes?try=0044207946"))
    result = page.inner_text("#try-result")
    assert "international" in result and "01144207946 is dialled on any FXO line" in result, result
    page.fill("#try-number", "95551234")
    page.click("#try-button")
    result = page.inner_text("#try-result")
    assert "local" in result and "5551234 is dialled on fxo2, fxo1" in result, result
    page.goto(web.url("/routes?try=1001"))
    assert "extension of this box" in page.inner_text("#try-result")
    page.goto(web.url("/routes?try=8123"))
    assert "No route matches 8123" in page.inner_text("#try-result")

    # Reordering: a new route put first; then international moved to the top.
    _row(page, 2, order="1", name="emergency", pattern="911", lines="fxo1")
    _save(page)
    assert api.export_document()["routes"] == [EMERGENCY, LOCAL, INTERNATIONAL]
    _row(page, 2, order="1")
    _save(page)
    assert api.export_document()["routes"] == [INTERNATIONAL, EMERGENCY, LOCAL]
    # Removal.
    page.check("#route-1-remove")
    _save(page)
    assert api.export_document()["routes"] == [INTERNATIONAL, LOCAL]

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "outbound routes: added local (9NXXXXXX)" in audit, audit
    assert "outbound routes: added emergency (911)" in audit, audit
    assert "order now international (00X.) → emergency (911) → local (9NXXXXXX)" in audit, audit
    assert "outbound routes: removed emergency (911)" in audit, audit

    # Rows are routes by position: a form made before someone else changed the list saves nothing.
    page.goto(web.url("/routes"))
    api.set_section("routes", [LOCAL])  # international removed behind the page's back
    page.check("#route-0-remove")  # meant for international, now local's place
    assert _save(page) == 409
    assert "changed elsewhere" in page.inner_text("#failed")
    assert api.export_document()["routes"] == [LOCAL]

    # A real call: 95551234 takes "local", hunts fxo2 first, and the exchange hears 5551234.
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("95551234")
    wait_until(lambda: json.loads(box.cli("sim", "co", "fxo2", "status").stdout)["calls"] == ["5551234"], 15,
               interval=0.5, what="5551234 dialled on fxo2")
    assert json.loads(box.cli("sim", "co", "fxo1", "status").stdout)["calls"] == []
    a.hangup()

    # The last route removed: the default route is back in force.
    page.goto(web.url("/routes"))
    page.check("#route-0-remove")
    _save(page)
    assert api.export_document()["routes"] == []
    assert "9X." in page.inner_text("#default-route")
