"""An FXO line's own settings from the browser (/ports/<name>/line), on a box with the simulated
analog board: what the form sets is exactly the port's ``line`` object; a bad value is refused
next to its field and changes nothing; reset removes the object; and the setting is real: with
two rings before answering (and not answering on caller ID) a ringing line reaches the SIP phone
only after the second ring, without them right after caller ID. A finished line test's proposal
is offered on the page and taken with one click."""
from __future__ import annotations

import json
import time

from board.regions import REGIONS
from firmware.api.localapi import LocalApi
from tests.peers.netutil import wait_until
from tests.web.conftest import create_admin


def co(box, *argv: str) -> dict:
    return json.loads(box.cli("sim", "co", "fxo1", *argv).stdout)


def ring_to_incoming(box, phone) -> tuple[float, float, dict]:
    """Rings fxo1 with caller ID; the seconds until the phone is offered the call, at least and
    at most (the ring starts somewhere within the `linebox sim` command), and the call."""
    wait_until(lambda: co(box, "status")["state"] == "idle", 10, what="fxo1 idle")
    before = time.monotonic()
    box.cli("sim", "co", "fxo1", "ring", "--cid", "5551234")
    after = time.monotonic()
    inc = phone.wait_incoming(timeout=20)
    now = time.monotonic()
    return now - after, now - before, inc


def test_fxo_line_settings_from_the_browser(box_factory, web_factory, page, phones, local_api):
    box = box_factory("box", extensions=("1002",), settings={"analog.driver": "sim", "analog.region": "us", "analog.sim_fxs": "1"})
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/ports"))
    page.fill("#port-fxo1", "1002")
    page.click("#save-ports")
    assert "region defaults" in page.inner_text("#line-summary-fxo1")

    # The ports page links to the line's page, which shows what the region (us) gives.
    page.click("#line-fxo1")
    assert page.url.endswith("/ports/fxo1/line")
    assert "region default: 250" in page.inner_text("#disconnect")
    assert "region default: off" in page.inner_text("#disconnect")  # us: no reversal on clear
    page.fill("#rings_before_answer", "2")
    page.check("#disconnect_polarity")
    page.fill("#loop_drop_ms", "300")
    page.click("#save-line")
    assert "Saved the line settings of fxo1" in page.inner_text("p.notice"), page.inner_text("main")
    want = {"inbound": "1002", "line": {"rings_before_answer": 2, "disconnect_polarity": True, "loop_drop_ms": 300}}
    assert api.export_document()["ports"]["fxo1"] == want
    assert "rings_before_answer 2" in page.inner_text("#line-summary-fxo1")

    # A non-number is refused without asking the box; bad numbers with the firmware's words.
    page.click("#line-fxo1")
    assert page.input_value("#loop_drop_ms") == "300" and page.is_checked("#disconnect_polarity")
    before, rev = api.export_document(), api.config_rev()
    page.fill("#silence_timeout", "soon")
    with page.expect_navigation() as nav:
        page.click("#save-line")
    assert nav.value.status == 400
    assert "a number" in page.inner_text("#silence_timeout-error")
    assert page.input_value("#silence_timeout") == "soon"
    page.fill("#silence_timeout", "")
    page.fill("#rings_before_answer", "0")
    page.fill("#loop_drop_ms", "5")
    page.uncheck("#disconnect_polarity")
    with page.expect_navigation() as nav:
        page.click("#save-line")
    assert nav.value.status == 400
    assert "a whole number of rings, 1-10" in page.inner_text("#rings_before_answer-error")
    assert "10-2000" in page.inner_text("#loop_drop_ms-error")
    assert "Nothing was changed" in page.inner_text("#failed")
    assert (page.input_value("#rings_before_answer"), page.input_value("#loop_drop_ms")) == ("0", "5")
    assert not page.is_checked("#disconnect_polarity")  # kept as the admin left it
    assert api.export_document() == before and api.config_rev() == rev

    # Two rings, not answering on caller ID: the phone is offered the call after the second ring.
    page.fill("#rings_before_answer", "2")
    page.fill("#loop_drop_ms", "300")
    page.check("#disconnect_polarity")
    page.uncheck("#answer_on_cid")
    page.click("#save-line")
    assert api.export_document()["ports"]["fxo1"]["line"] == {
        "rings_before_answer": 2, "answer_on_cid": False, "disconnect_polarity": True, "loop_drop_ms": 300}
    b = phones("b1002")
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    on, off = REGIONS["us"].ring_cadence
    second_ring_ends = on + off + on  # the box counts a ring when it stops
    least, most, inc = ring_to_incoming(box, b)
    assert "5551234" in inc["from"], inc
    assert co(box, "status")["state"] == "connected"
    assert most >= second_ring_ends and least < second_ring_ends + off, f"offered {least:.1f}-{most:.1f} s after"
    b.reject(486)

    # Reset: the line object goes, inbound stays, and the line is answered once caller ID is in
    # after the first ring again (us: FSK in the first silent interval).
    page.click("#line-fxo1")
    page.click("#reset-line")
    assert "region defaults" in page.inner_text("p.notice")
    assert api.export_document()["ports"]["fxo1"] == {"inbound": "1002"}
    least, most, inc = ring_to_incoming(box, b)
    assert "5551234" in inc["from"], inc
    assert least < on + off, f"offered {least:.1f}-{most:.1f} s after the ring, not after the first ring"
    b.reject(486)

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "fxo1 line: rings_before_answer - → 2, disconnect_polarity false → true, loop_drop_ms - → 300" in audit
    assert "fxo1 line: answer_on_cid true → false" in audit
    assert "fxo1 line: reset to region defaults; rings_before_answer 2 → -" in audit


def test_the_ports_save_keeps_line_settings_and_wants_an_inbound_number_for_them(box_factory, web_factory, page,
                                                                                  local_api):
    box = box_factory("box", extensions=("1002", "1003"), settings={"analog.driver": "sim", "analog.sim_fxs": "1"})
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/ports/fxo1/line"))
    page.fill("#rings_before_answer", "3")
    with page.expect_navigation() as nav:
        page.click("#save-line")
    assert nav.value.status == 400 and "no inbound number" in page.inner_text("#form-error")
    page.goto(web.url("/ports"))
    page.fill("#port-fxo1", "1002")
    page.click("#save-ports")
    page.goto(web.url("/ports/fxo1/line"))
    page.fill("#rings_before_answer", "3")
    page.click("#save-line")
    # /ports changes the inbound number and keeps the line object ...
    page.fill("#port-fxo1", "1003")
    page.click("#save-ports")
    assert api.export_document()["ports"]["fxo1"] == {"inbound": "1003", "line": {"rings_before_answer": 3}}
    # ... and will not drop the number while the line has settings (they would be lost).
    page.fill("#port-fxo1", "")
    page.click("#save-ports")
    assert "Line settings page" in page.inner_text("#port-fxo1-error")
    assert api.export_document()["ports"]["fxo1"]["inbound"] == "1003"
    assert page.goto(web.url("/ports/fxs1/line")).status == 404
    assert page.goto(web.url("/ports/fxo9/line")).status == 404


def installer_plays_the_line_test(box, running) -> None:
    """Starts the line test of fxo1 and does what its prompts say on the simulated exchange:
    call the line, then answer the box's test call, press a key and hang up."""
    running.line_test("fxo1", "5551234")
    prompts = lambda n: len(running.line_tests()["fxo1"]["prompts"]) >= n  # noqa: E731
    wait_until(lambda: prompts(1), 15, what="the first prompt (call the line)")
    co(box, "ring", "--cid", "01632960123", "--name", "INSTALLER")
    wait_until(lambda: prompts(2), 60, what="the second prompt (answer the test call)")
    wait_until(lambda: co(box, "status")["state"] == "connected", 60, what="the test call")
    time.sleep(1.0)
    co(box, "key", "5")
    time.sleep(5.0)
    co(box, "hangup")
    wait_until(lambda: running.line_tests()["fxo1"]["finished"], 60, what="the report")


def test_the_last_line_tests_proposal_is_offered_and_taken(box_factory, web_factory, page, local_api):
    """The installer runs the line test (here: started through the box's API and played on the
    simulated exchange, as tests/e2e/test_linetest.py does); its proposal shows on the line page
    and one click stores it as the line object."""
    from firmware.config.ports import proposal_line

    box = box_factory("box", extensions=("1002",), settings={"analog.driver": "sim", "analog.region": "us", "analog.sim_fxs": "0"})
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/ports"))
    page.fill("#port-fxo1", "1002")
    page.click("#save-ports")

    running = LocalApi(box.data, f"http://127.0.0.1:{box.http_port}")  # the box's own API, as the web's
    try:
        installer_plays_the_line_test(box, running)
        state = running.line_tests()["fxo1"]
    finally:
        running.close()
    assert state["finished"], state

    page.goto(web.url("/ports/fxo1/line"))
    assert "proposes" in page.inner_text("#line-proposal")
    page.click("#apply-proposal")
    assert "Saved the line settings of fxo1" in page.inner_text("p.notice"), page.inner_text("main")
    assert api.export_document()["ports"]["fxo1"] == {"inbound": "1002", "line": proposal_line(state["settings"])}
    page.goto(web.url("/audit"))
    assert "fxo1 line: took the line test's proposal" in page.inner_text("#audit")


def test_the_form_writes_only_what_the_admin_chose():
    """The pure parts: one field per firmware setting, defaults from FxoConfig and the region,
    the object a form gives, and the audit text."""
    from firmware.config.ports import LINE_FIELDS
    from webui.pages.ports import LINE_HELP, line_changes, line_defaults, line_form, line_from_form

    assert list(LINE_HELP) == list(LINE_FIELDS)
    us, fr = line_defaults("us"), line_defaults("fr")
    assert (us["disconnect_polarity"], fr["disconnect_polarity"], us["loop_drop_ms"]) == (False, True, 250)
    assert us["silence_timeout"] is None and us["disconnect_tones"] == ["busy", "congestion", "dial"]

    form = line_form({}, us)
    assert line_from_form(form, {}, us) == ({}, {})  # as it came: nothing written
    form.update(rings_before_answer="2", loop_drop_ms="300", silence_timeout="7.5", disconnect_polarity=True,
                disconnect_tones=["busy"])
    line, bad = line_from_form(form, {}, us)
    assert bad == {} and line == {"rings_before_answer": 2, "disconnect_polarity": True, "loop_drop_ms": 300,
                                  "disconnect_tones": ["busy"], "silence_timeout": 7.5}
    # A measured value stays explicit even where it is the default; a bad number stays home.
    measured = {"answer_polarity": False, "disconnect_polarity": True, "loop_drop_ms": None,
                "disconnect_tones": ["busy", "congestion", "dial"]}
    assert line_from_form(line_form(measured, fr), measured, fr) == (
        {"answer_polarity": False, "disconnect_polarity": True, "disconnect_tones": ["busy", "congestion", "dial"]}, {})
    assert line_from_form({**line_form({}, us), "loop_drop_ms": "3OO"}, {}, us)[1] == {
        "loop_drop_ms": "a number, not '3OO'"}
    assert line_changes({}, line, us) == ["rings_before_answer - → 2", "disconnect_polarity false → true",
                                          "loop_drop_ms - → 300", "disconnect_tones busy+congestion+dial → busy",
                                          "silence_timeout - → 7.5"]
