"""The live dashboard: registrations and calls appear without a reload (Server-Sent Events),
and the hang-up button ends a real call between two pjsua2 phones."""
from __future__ import annotations

from tests.web.conftest import finish_wizard


def test_dashboard_updates_live_and_hangs_up_a_call(box_factory, web_factory, page, phones):
    box = box_factory("box", extensions=("1001", "1002"))
    web = web_factory(box, "--sse-interval", "0.5")
    finish_wizard(page, web)
    assert "No phone is registered" in page.inner_text("#registrations")
    assert page.inner_text("#cpu")  # system health is there from the first paint
    assert "of" in page.inner_text("#health")

    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    # No reload: the rows arrive over the page's event stream.
    page.wait_for_selector("#registrations td:text-is('1002')")
    page.wait_for_selector("#health dd:has-text('2 registrations')")

    a.call("1002")
    b.wait_incoming()
    b.answer()
    a.wait_state("CONFIRMED")
    row = page.wait_for_selector("#calls tr[data-call]")
    assert "1001" in row.inner_text() and "1002" in row.inner_text()
    page.wait_for_selector("#calls tr[data-call] td:text-is('answered')")

    page.click("#calls tr[data-call] button:has-text('Hang up')")
    for ph in (a, b):
        ph.wait_state("DISCONNECTED")
    page.wait_for_selector("#calls td:has-text('No calls in progress')")
    assert box.calls() == []
    # The health sparklines have drawn from the samples so far, and today's chart counts the
    # call just ended (the CDR is recounted every 30 s: a reload shows it at once).
    page.wait_for_selector("#cpu svg.spark polyline")
    page.reload()
    page.wait_for_selector("#volume svg.bars")
    assert "1 call since midnight" in page.inner_text("#volume")
    page.goto(web.url("/audit"))
    assert "hung up call" in page.inner_text("#audit")


def test_the_dashboard_says_when_the_box_is_down_and_the_web_stays_up(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",))
    web = web_factory(box, "--sse-interval", "0.5")
    finish_wizard(page, web)
    box.stop()
    page.wait_for_selector("#calls td:has-text('The box does not answer')")
    page.goto(web.url("/extensions"))  # configuration still readable from the database
    assert page.locator("#ext-1001").count() == 1


def test_killing_the_web_process_drops_no_call(box_factory, web_factory, page, phones):
    box = box_factory("box", extensions=("1001", "1002"))
    web = web_factory(box, "--sse-interval", "0.5")
    finish_wizard(page, web)
    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    a.call("1002")
    b.wait_incoming()
    b.answer()
    a.wait_state("CONFIRMED")
    page.wait_for_selector("#calls tr[data-call]")  # the web is watching the call

    web.proc.kill()  # SIGKILL: a crash, no clean-up
    web.proc.wait()
    assert len(box.calls()) == 1
    box.wait_health(lambda h: h.get("calls") == 1 and h.get("registrations") == 2, 3, "the call still up")
    assert not [e for ph in (a, b) for e in ph.events("call_state") if e.get("state") == "DISCONNECTED"]

    # A new web process picks up where the old one was: same account, the call on its dashboard.
    web2 = web_factory(box)
    page.goto(web2.url("/"))
    page.wait_for_selector("#calls tr[data-call]")
