"""Makes docs/screenshots/: the wizard, dashboard and extensions pages at desktop (1280x800)
and phone (390x844) width, against a real box with registered phones and a call in progress;
then the routes, FXO line and voicemail pages on a box with a simulated HAT.

Kept out of CI (it rewrites committed files): `scripts/test -m slow tests/web/test_screenshots.py`.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from firmware.store.messages import Mailboxes
from tests.e2e.box import REPO
from tests.peers.audio import write_tone_wav
from tests.web.conftest import DESKTOP, PASSWORD, PHONE, create_admin

OUT = REPO / "docs" / "screenshots"


def _capture(page, path: Path, **kw) -> None:
    # Headless chromium now and then refuses a capture while a page is still settling (just
    # navigated or resized): let it paint and try again.
    for attempt in range(5):
        page.wait_for_load_state()
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        try:
            page.screenshot(path=str(path), **kw)
            return
        except PlaywrightError:
            if attempt == 4:
                raise
            page.wait_for_timeout(200)


def _shoot(page, name: str) -> None:
    """The page as it is now (a form's error included) at both widths."""
    OUT.mkdir(parents=True, exist_ok=True)
    _capture(page, OUT / f"{name}-desktop.png")
    page.set_viewport_size(PHONE)
    try:
        _capture(page, OUT / f"{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)


@pytest.mark.slow
def test_screenshots(box_factory, web_factory, browser, phones):
    box = box_factory("shots", extensions=())
    web = web_factory(box, "--sse-interval", "0.5")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(web.url("/"))
        page.fill("#username", "admin")
        page.fill("#password", "password123")
        page.fill("#confirm", "password123")
        page.click("main button[type=submit]")
        _shoot(page, "wizard-password")
        page.fill("#password", PASSWORD)
        page.fill("#confirm", PASSWORD)
        page.click("main button[type=submit]")
        page.select_option("#region", "de")
        page.click("main button[type=submit]")
        for i, (number, name) in enumerate((("1001", "Reception"), ("1002", "Sales"), ("1003", "Workshop"))):
            page.fill(f"#number{i}", number)
            page.fill(f"#name{i}", name)
        page.click("main button[type=submit]")
        page.wait_for_selector("#secret-1003")
        secrets = {n: page.inner_text(f"#secret-{n} .sip-secret") for n in ("1001", "1002", "1003")}
        _capture(page, OUT / "wizard-secrets-desktop.png", full_page=True)
        page.click("text=Next: backup")
        page.click("text=Finish and go to the dashboard")

        a, b, c = phones("a1001"), phones("b1002"), phones("c1003")
        for ph, n in ((a, "1001"), (b, "1002"), (c, "1003")):
            assert ph.register(server=box.sip_addr, user=n, password=secrets[n]) == 200
        a.call("1002")
        b.wait_incoming()
        b.answer()
        a.wait_state("CONFIRMED")
        page.wait_for_selector("#calls tr[data-call] td:text-is('answered')")
        page.wait_for_selector("#registrations td:text-is('1003')")
        _shoot(page, "dashboard")

        page.goto(web.url("/extensions"))
        page.fill("#number", "12ab")
        page.click("form.add button[type=submit]")
        _shoot(page, "extensions-error")
        page.goto(web.url("/extensions"))
        page.fill("#number", "1004")
        page.fill("#name", "Warehouse")
        page.click("form.add button[type=submit]")
        _capture(page, OUT / "extension-secret-desktop.png", full_page=True)
        page.goto(web.url("/extensions"))
        _shoot(page, "extensions")
        page.goto(web.url("/settings"))
        page.fill("#set-security-ban-failures", "lots")
        page.click("#settings button[type=submit]")
        page.locator("#set-security-ban-failures").scroll_into_view_if_needed()
        _capture(page, OUT / "settings-error-desktop.png")
    finally:
        context.close()
    assert sorted(p.name for p in OUT.glob("*.png"))


@pytest.mark.slow
def test_screenshots_of_lines_routes_and_voicemail(box_factory, web_factory, page, local_api):
    """The outbound routes, an FXO line's settings and the voicemail pages, on a box with a
    simulated HAT (one analog phone, two lines), two routes and a message waiting."""
    box = box_factory("box", extensions=("1001", "1002", "1003"),
                      settings={"analog.driver": "sim", "analog.sim_fxs": "1", "analog.sim_fxo": "2"})
    api = local_api(box)
    api.set_section("ports", {"fxs1": {"extension": "1003"}, "fxo1": {"inbound": "1001"},
                              "fxo2": {"inbound": "1001", "line": {"rings_before_answer": 3}}})
    api.set_section("routes", [
        {"name": "emergency", "pattern": "911", "lines": ["fxo1"]},
        {"name": "local", "pattern": "9NXXXXXX", "strip": 1, "lines": ["fxo2", "fxo1"]},
        {"name": "international", "pattern": "00X.", "strip": 2, "prepend": "011"}])
    api.set_section("voicemail", {"mailboxes": {"1001": {}, "1002": {"unanswered": False}},
                                  "max_seconds": 180})
    # a message as the recorder leaves one (the store's own call, a 4 s recording)
    wav = Mailboxes(box.data / "voicemail").new_message("1001", "5551234", "J Smith")
    write_tone_wav(wav, 440.0, 4.0)
    web = web_factory(box)
    create_admin(page, web)
    page.set_viewport_size(DESKTOP)
    page.goto(web.url("/routes"))
    page.fill("#try-number", "95551234")
    page.click("#try-button")
    page.wait_for_selector("#try-result:has-text('5551234')")
    _shoot(page, "routes")
    page.goto(web.url("/ports/fxo2/line"))
    _shoot(page, "port-line")
    page.goto(web.url("/voicemail"))
    _shoot(page, "voicemail")
