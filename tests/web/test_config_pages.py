"""Analog ports, the recording policy and time conditions from the browser, on one box with the
simulated analog board: a line set in the browser routes a ringing FXO line to a real phone;
bad fields are refused next to themselves and change nothing; every change is audited."""
from __future__ import annotations

import pytest

from tests.e2e.box import REPO
from tests.web.conftest import create_admin


def test_ports_recording_and_time_conditions_from_the_browser(box_factory, web_factory, page, phones, local_api):
    box = box_factory("box", extensions=("1001", "1002", "1005"), settings={"analog.driver": "sim", "analog.sim_fxs": "1"})
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)

    # Ports: a number nothing answers is refused in place; nothing changes.
    page.goto(web.url("/ports"))
    assert page.locator("#port-list tbody tr").count() == 2
    assert "FXS" in page.inner_text("#row-fxs1") and "FXO" in page.inner_text("#row-fxo1")
    before = api.export_document()
    page.fill("#port-fxs1", "1005")
    page.fill("#port-fxo1", "999")
    page.click("#save-ports")
    assert "no extension, IVR or queue number" in page.inner_text("#port-fxo1-error")
    assert page.input_value("#port-fxs1") == "1005"
    assert api.export_document() == before

    # Then fixed: the FXO line goes to 1002, and a call on it rings 1002's phone.
    page.fill("#port-fxo1", "1002")
    page.click("#save-ports")
    assert "Saved the ports" in page.inner_text("p.notice"), page.inner_text("main")
    assert api.export_document()["ports"] == {"fxs1": {"extension": "1005"}, "fxo1": {"inbound": "1002"}}
    b = phones("b1002")
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    box.cli("sim", "co", "fxo1", "ring", "--cid", "5551234")
    assert "5551234" in b.wait_incoming(timeout=15)["from"]
    b.reject(486)

    # Call waiting off for the analog phone (a fax line), then on again: the stored section follows.
    assert page.is_checked("#cw-fxs1") and page.locator("#cw-fxo1").count() == 0
    page.uncheck("#cw-fxs1")
    page.click("#save-ports")
    assert "Saved the ports" in page.inner_text("p.notice")
    assert api.export_document()["ports"]["fxs1"] == {"extension": "1005", "call_waiting": False}
    assert not page.is_checked("#cw-fxs1")
    page.check("#cw-fxs1")
    page.click("#save-ports")
    assert api.export_document()["ports"]["fxs1"] == {"extension": "1005"}

    # Recording: per extension and per number.
    page.goto(web.url("/recording"))
    page.select_option("#ext-1001", "always")
    page.select_option("#ext-1005", "never")
    page.click("#save-recording")
    assert "Saved the recording policy" in page.inner_text("p.notice")
    assert api.export_document()["recording"] == {"extensions": {"1001": "always", "1005": "never"}, "numbers": {}}

    # Time condition: a bad time and an unknown zone are refused in place.
    page.goto(web.url("/ivr/conditions/new"))
    page.fill("#id", "office")
    page.fill("#timezone", "Mars/Olympus")
    page.fill("#hours-0-from", "8.30")
    page.select_option("#day-goto", "extension")
    page.fill("#day-target", "1001")
    page.select_option("#night-goto", "extension")
    page.fill("#night-target", "1002")
    page.click("#save-condition")
    assert "unknown time zone" in page.inner_text("#timezone-error")
    assert "8.30" in page.inner_text("#hours-0-from-error")
    assert "ivr" not in api.export_document() or not api.export_document()["ivr"].get("time_conditions")
    page.fill("#timezone", "Europe/Berlin")
    page.fill("#hours-0-from", "08:30")
    page.fill("#hol-0-from", "12-25")
    page.fill("#hol-1-from", "01-01")  # a holiday all year: callers get the night destination
    page.fill("#hol-1-to", "12-31")
    page.click("#save-condition")
    assert "Saved time condition office" in page.inner_text("p.notice"), page.inner_text("main")
    cond = api.export_document()["ivr"]["time_conditions"][0]
    assert cond == {"id": "office", "timezone": "Europe/Berlin",
                    "hours": [{"days": "mon-fri", "from": "08:30", "to": "17:00"}],
                    "holidays": [{"date": "12-25"}, {"from": "01-01", "to": "12-31"}],
                    "day": {"goto": "extension", "target": "1001"},
                    "night": {"goto": "extension", "target": "1002"}}, cond
    # A number enters it, and the number gets a recording policy of its own.
    page.goto(web.url("/ivr"))
    page.fill("#ivr-number", "700")
    page.select_option("#ivr-entry", "office")
    page.click("#add-number button[type=submit]")
    # Live: a call to 700 (a holiday today) goes to the night destination, 1002.
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("700")
    assert "1001" in b.wait_incoming()["from"]
    b.reject(486)
    a.wait_state("DISCONNECTED")

    page.goto(web.url("/recording"))
    page.select_option("#num-700", "on-demand")
    page.click("#save-recording")
    assert api.export_document()["recording"]["numbers"] == {"700": "on-demand"}

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "analog ports: fxo1 inbound - → 1002, fxs1 extension - → 1005" in audit
    assert "recording policy: 1001 default → always, 1005 default → never" in audit
    assert "IVR: added time condition office" in audit


SHOW_IVR = {"menus": [
    {"id": "main", "name": "Main menu",
     "greeting": [{"say": "Thank you for calling Acme Widgets."}, "press", "1", "to-speak-to-an-operator"],
     "options": {"1": {"goto": "menu", "target": "sales"}, "2": {"goto": "queue", "target": "support"},
                 "0": {"goto": "extension", "target": "1001"}, "9": {"goto": "repeat"}},
     "timeout": 5, "retries": 2, "on_timeout": {"goto": "extension", "target": "1001"},
     "fallback": {"goto": "hangup"}, "dial_by_extension": True},
    {"id": "sales", "greeting": ["press", "2"], "options": {"2": {"goto": "extension", "target": "1002"},
                                                            "0": {"goto": "back"}}}],
    "time_conditions": [{"id": "office", "timezone": "Europe/Berlin",
                         "hours": [{"days": "mon-fri", "from": "08:30", "to": "17:30"}],
                         "holidays": [{"date": "12-25"}], "day": {"goto": "menu", "target": "main"},
                         "night": {"goto": "extension", "target": "1003"}}]}
SHOW_QUEUE = {"id": "support", "name": "Support", "number": "600", "strategy": "skills",
              "members": [{"agent": "1002", "skills": {"french": 3}}], "agents": [{"agent": "1003"}],
              "ring_timeout": 12, "max_wait": 300, "overflow": {"goto": "extension", "target": "1001"},
              "callback_key": "1", "exit_key": "0", "exit": {"goto": "menu", "target": "main"},
              "recording": "on-demand"}


@pytest.mark.slow
def test_config_screenshots(box_factory, web_factory, browser):
    """docs/screenshots/ivr-*.png and queues-*.png (rewrites committed files: -m slow)."""
    from tests.web.conftest import DESKTOP, PHONE

    box = box_factory("shots", extensions={"1001": "Reception", "1002": "Sales desk", "1003": "Support"},
                      config={"ivr": SHOW_IVR, "ivr_numbers": {"500": "office"}, "queues": [SHOW_QUEUE]})
    web = web_factory(box)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    out = REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> None:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_load_state()
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.screenshot(path=str(out / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

    try:
        create_admin(page, web)
        page.goto(web.url("/ivr"))
        shoot("ivr-list")
        page.goto(web.url("/ivr/menus/main"))
        page.fill("#opt-4-key", "3")
        page.select_option("#opt-4-goto", "extension")
        page.fill("#opt-4-target", "1099")
        page.click("#save-menu")
        shoot("ivr-menu-error")
        page.goto(web.url("/ivr/conditions/office"))
        shoot("ivr-condition")
        page.goto(web.url("/queues"))
        shoot("queues-list")
        page.goto(web.url("/queues/support"))
        shoot("queues-edit")
    finally:
        context.close()


def test_firmware_paths_find_their_form_fields():
    """The pure parts: paths back to fields, typed numbers, and a queue form as a document."""
    from webui.pages.ivr import FieldMap, number
    from webui.pages.queues import form_values, queue_from_form

    fm = FieldMap()
    fm.add("ivr.menus[main].options[1]", "opt-0-key")
    fm.add("ivr.menus[main].options[1].target", "opt-0-target")
    fm.add("ivr.menus[main].timeout", "timeout")
    placed = fm.place({"ivr.menus[main].options[1].target": "no extension '1099'",
                       "ivr.menus[main].options[1].extension_prefix": "the menu does not have dial_by_extension",
                       "ivr.menus[main].timeout": "must be a number", "ivr_numbers.500": "no menu 'x'"})
    assert placed == {"opt-0-target": "no extension '1099'", "opt-0-key": "the menu does not have dial_by_extension",
                      "timeout": "must be a number", "form": "ivr_numbers.500: no menu 'x'"}
    assert [number(t) for t in ("", "15", "2.5", "abc", "nan", "-3")] == [None, 15, 2.5, "abc", "nan", -3]

    # A queue round-trips through its form, writing only what differs from the defaults.
    doc = {"id": "sales", "number": "600", "strategy": "skills", "members": [{"agent": "1002", "skills": {"fr": 3}}],
           "agents": [{"agent": "1003"}], "ring_timeout": 12, "max_wait": 300, "join_empty": False,
           "overflow": {"goto": "extension", "target": "1001"}, "callback_key": "1",
           "priority_callers": ["+441632960000"], "skills": {"fr": 2}, "recording": "always"}
    fm = FieldMap()
    assert queue_from_form(form_values(doc), 0, fm) == doc
    assert queue_from_form(form_values({"id": "q", "number": "61"}), 0, FieldMap()) == {"id": "q", "number": "61"}
    form = form_values(doc)
    form["ring_timeout"] = "abc"
    form["agents"][0] = ("1002", "member", "fr=high")
    bad = queue_from_form(form, 0, fm)
    assert bad["ring_timeout"] == "abc" and bad["members"][0]["skills"] == {"fr": "high"}
    assert fm.place({"queues[sales].members[0].skills.fr": "a level is a whole number",
                     "queues[0].id": "missing id", "queues[sales].exit": "exit_key and exit go together"}) == {
        "agent-0-skills": "a level is a whole number", "id": "missing id", "exit-goto": "exit_key and exit go together"}
