"""The wallboard follows a real queue without a reload: pjsua2 callers dial the queue while its
only agent is logged out, the board counts them and their wait grows; one hangs up and the
board shows one waiting and one abandoned today, with the service level in red; the box
stopping is said on the board."""
from __future__ import annotations

import pytest

from tests.e2e.box import Box
from tests.web.conftest import DESKTOP, PHONE, create_admin

QUEUE = {"id": "support", "name": "Support", "number": "600", "strategy": "ringall",
         "agents": [{"agent": "1002"}], "announce_every": 0, "service_level": 20}


def queue_box(box_factory, **queue) -> Box:
    """A box with 1001-1003 and the queue on 600 (dynamic agent 1002, logged out), imported
    before it starts."""
    return box_factory("box", extensions=("1001", "1002", "1003"), config={"queues": [dict(QUEUE, **queue)]})


def text_is(page, selector: str, want: str, timeout: float = 10_000) -> None:
    page.wait_for_function("([s, w]) => { const e = document.querySelector(s); return e && e.textContent.trim() === w; }",
                           arg=[selector, want], timeout=timeout)


def test_the_wallboard_counts_waiting_callers_live_and_an_abandoned_call(box_factory, web_factory, page, phones):
    box = queue_box(box_factory)
    web = web_factory(box, "--sse-interval", "0.5")
    create_admin(page, web)
    page.goto(web.url("/wallboard"))
    card = "#queue-support"
    assert page.inner_text(f"{card} h2").startswith("Support")
    assert page.inner_text(f"{card} .waiting-count") == "0"
    assert page.inner_text(f"{card} .agents-out") == "1" and page.inner_text(f"{card} .agents-available") == "0"
    assert "Nobody is waiting" in page.inner_text(card)
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads

    a, c = phones("a1001"), phones("c1003")
    for ph, ext in ((a, "1001"), (c, "1003")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    a.call("600")
    a.wait_state("CONFIRMED")
    text_is(page, f"{card} .waiting-count", "1")
    c.call("600")
    c.wait_state("CONFIRMED")
    text_is(page, f"{card} .waiting-count", "2")
    callers = page.locator(f"{card} ol.wb-waiting li .wb-caller").all_inner_texts()
    assert callers == ["1001", "1003"], callers  # in line order

    # The longest wait keeps growing on the open page.
    first = int(page.get_attribute(f"{card} .longest-wait", "data-seconds"))
    page.wait_for_function("([s, v]) => +document.querySelector(s).dataset.seconds >= v",
                           arg=[f"{card} .longest-wait", first + 2], timeout=10_000)
    assert ":" in page.inner_text(f"{card} .longest-wait")

    a.hangup()
    a.wait_state("DISCONNECTED")
    text_is(page, f"{card} .waiting-count", "1")
    text_is(page, f"{card} .abandoned", "1")
    assert page.locator(f"{card} ol.wb-waiting li .wb-caller").all_inner_texts() == ["1003"]
    assert page.inner_text(f"{card} .answered") == "0"
    # 2 offered today, none answered within 20 s: 0 %, in red.
    text_is(page, f"{card} .service-level", "0%")
    assert "sl-bad" in page.get_attribute(f"{card} .service-level", "class") + \
        page.eval_on_selector(f"{card} .service-level", "e => e.parentElement.className")
    assert page.evaluate("() => window.__sameDocument === true")
    c.hangup()
    text_is(page, f"{card} .waiting-count", "0")

    # The box going away is said on the board, which stays up.
    box.stop()
    page.wait_for_selector(".wb-error:has-text('The box does not answer')")
    assert page.locator(card).count() == 0


@pytest.mark.slow
def test_screenshots_of_the_wallboard_and_the_agent_panel(box_factory, web_factory, page, phones):
    """docs/screenshots/wallboard-*.png and agent-*.png (rewrites them; `-m slow`): two queues,
    callers waiting, agent 1002 on the panel with a returning caller's record popped."""
    from tests.web.test_screenshots import OUT, _capture

    box = box_factory("box", extensions=("1001", "1002", "1003", "1004", "1005"), config={"queues": [
        dict(QUEUE, agents=[{"agent": "1002"}, {"agent": "1003"}], wrapup=1),
        {"id": "sales", "name": "Sales", "number": "601", "agents": [{"agent": "1004"}],
         "announce_every": 0, "service_level": 30}]})
    web = web_factory(box, "--sse-interval", "0.5")
    create_admin(page, web)
    page.goto(web.url("/contacts"))
    for field, value in (("#number", "1001"), ("#name", "Ada Lovelace"), ("#company", "Analytical Engines"),
                         ("#notes", "Key account. Prefers email; never call before 10:00.")):
        page.fill(field, value)
    page.click("#contact-add")
    page.goto(web.url("/contacts"))
    page.fill("#crm_url", "https://crm.example/search?q={number}")
    page.click("#crm-save")
    page.goto(web.url("/agent"))
    page.select_option("#extension", "1002")
    page.click("form.desk button[type=submit]")
    page.click("#agent-login")

    ph = {n: phones(f"{'abcde'[i]}{n}") for i, n in enumerate(("1001", "1002", "1003", "1004", "1005"))}
    for n, p in ph.items():
        assert p.register(server=box.sip_addr, user=n, password=box.secret(n)) == 200
    # A first call, answered and noted: the caller's history when they call again.
    ph["1001"].call("600")
    ph["1002"].wait_incoming()
    ph["1002"].answer()
    page.wait_for_selector("#pop #pop-name")
    page.select_option("#disposition", "sale")
    page.fill("#note", "Ordered 3 handsets; wants a quote for a fourth.")
    page.click("#pop-save")
    ph["1001"].hangup()
    ph["1002"].wait_state("DISCONNECTED")
    text_is(page, "#agent-status", "1002: available")

    ph["1003"].call("601")
    ph["1005"].call("601")
    ph["1001"].call("600")
    ph["1002"].wait_incoming()
    page.wait_for_selector("#pop.pop-ringing #pop-name")
    page.wait_for_timeout(600)
    OUT.mkdir(parents=True, exist_ok=True)
    _capture(page, OUT / "agent-desktop.png")
    page.set_viewport_size(PHONE)
    _capture(page, OUT / "agent-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    ph["1002"].answer()
    ph["1004"].call("600")  # waits: the only free agent is on the call
    page.goto(web.url("/wallboard"))
    text_is(page, "#queue-support .waiting-count", "1")
    text_is(page, "#queue-sales .waiting-count", "2")
    page.wait_for_timeout(3000)  # a few seconds of waiting on the clocks
    _capture(page, OUT / "wallboard-desktop.png")
    page.set_viewport_size(PHONE)
    _capture(page, OUT / "wallboard-phone.png", full_page=True)

