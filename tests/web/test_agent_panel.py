"""The agent panel: the web user says which extension they are, logs it into its queue, and
when a queue call rings that desk phone (pjsua2) the panel pops the caller's record -- the
contact's name and note, the CRM link -- and the disposition noted on the call shows in the
history. Pause reasons and the box's refusals show their message."""
from __future__ import annotations

import time

import pytest

from tests.web.conftest import create_admin
from tests.web.test_wallboard import queue_box, text_is
from webui.contacts import (ContactsDb, Problems, check_contact, check_crm_template, check_note, check_pause_reason,
                            crm_link, normal_number)
from webui.pages.wallboard import clock, local_midnight, sl_class

CRM = "https://crm.example/search?q={number}"


def choose_extension(page, web, ext: str) -> None:
    page.goto(web.url("/agent"))
    page.select_option("#extension", ext)
    page.click("form.desk button[type=submit]")
    page.wait_for_selector("#agent-status")


def test_a_ringing_queue_call_pops_the_callers_record_and_the_disposition_lands_in_its_history(
        box_factory, web_factory, page, phones):
    box = queue_box(box_factory, ring_timeout=20, wrapup=1)
    web = web_factory(box, "--sse-interval", "0.5")
    create_admin(page, web)

    # The caller's record, and the CRM link template, made in the browser.
    page.goto(web.url("/contacts"))
    page.fill("#number", "1001")
    page.fill("#name", "Ada Lovelace")
    page.fill("#company", "Analytical Engines")
    page.fill("#notes", "VIP: prefers email, never call before 10.")
    page.click("#contact-add")
    page.wait_for_selector("#contact-name:has-text('Ada Lovelace')")
    contact_url = page.url
    page.goto(web.url("/contacts"))
    page.fill("#crm_url", CRM)
    page.click("#crm-save")
    assert "CRM link saved" in page.inner_text("p.notice")

    choose_extension(page, web, "1002")
    assert "not an agent" not in page.inner_text("#agent-status")
    page.click("#agent-login")
    assert "Logged in" in page.inner_text("p.notice")
    text_is(page, "#agent-status", "1002: available")
    assert "record shows here" in page.inner_text("#agent-pop")

    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    a.call("600")
    b.wait_incoming(timeout=10)
    # The pop arrives on the open page while the desk phone rings.
    page.wait_for_selector("#pop.pop-ringing #pop-name:text-is('Ada Lovelace')")
    assert page.inner_text("#pop-number") == "1001"
    assert "VIP: prefers email" in page.inner_text("#pop-notes")
    assert page.inner_text("#pop-company") == "Analytical Engines"
    assert page.get_attribute("#pop-crm", "href") == "https://crm.example/search?q=1001"
    text_is(page, "#agent-status", "1002: ringing")

    b.answer()
    b.wait_state("CONFIRMED")
    text_is(page, "#agent-status", "1002: on a call")
    call_id = page.get_attribute("#pop", "data-call")
    # A submit with no disposition shows its message and notes nothing.
    page.fill("#note", "Asked about invoice 42")
    page.click("#pop-save")
    assert "pick how the call ended" in page.inner_text("#disposition-error")
    assert page.input_value("#note") == "Asked about invoice 42"
    page.select_option("#disposition", "follow-up needed")
    page.click("#pop-save")
    assert "Noted" in page.inner_text("p.notice")
    row = page.locator(f"#pop-history tr[data-call='{call_id}']")
    assert "follow-up needed" in row.inner_text() and "Asked about invoice 42" in row.inner_text()

    a.hangup()
    b.wait_state("DISCONNECTED")
    # The contact's own page lists the call with the note (the CDR is the box's).
    page.goto(contact_url)
    row = page.locator(f"#contact-history tr[data-call='{call_id}']")
    assert "follow-up needed" in row.inner_text() and "Asked about invoice 42" in row.inner_text()
    assert "in" in row.inner_text() and "600" in row.inner_text()

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "added contact 1001 (Ada Lovelace)" in audit
    assert "agent 1002: login" in audit
    assert f"noted call {call_id} from 1001: follow-up needed" in audit


def test_pause_needs_a_good_reason_and_the_box_refuses_a_non_agent(box_factory, web_factory, page):
    box = queue_box(box_factory)
    web = web_factory(box, "--sse-interval", "0.5")
    create_admin(page, web)
    choose_extension(page, web, "1002")
    page.click("#agent-login")
    text_is(page, "#agent-status", "1002: available")

    for reason, message in (("", "say why you pause"), ("<b>lunch</b>", "letters, digits"), ("x" * 30, "1 to 24")):
        page.fill("#reason", reason)
        page.click("#agent-pause")
        assert message in page.inner_text("#reason-error"), reason
        assert page.get_attribute("#reason", "aria-invalid") == "true"
        text_is(page, "#agent-status", "1002: available")  # not paused
    assert box.http_get("/api/queues")[0]["agents"]["1002"] == "idle"

    page.fill("#reason", "lunch")
    page.click("#agent-pause")
    text_is(page, "#agent-status", "1002: paused (lunch)")
    assert box.http_get("/api/queues")[0]["agents"]["1002"] == "paused"
    page.click("#agent-unpause")
    text_is(page, "#agent-status", "1002: available")

    # An extension that does not exist (a forged option) is refused next to the field.
    page.eval_on_selector("#extension", "s => { s.add(new Option('9999', '9999')); s.value = '9999'; }")
    page.click("form.desk button[type=submit]")
    assert "pick your extension from the list" in page.inner_text("#extension-error")
    text_is(page, "#agent-status", "1002: available")

    # 1003 is nobody's agent: the box says so, next to the buttons.
    choose_extension(page, web, "1003")
    assert "1003 is not an agent of any queue" in page.inner_text("#agent-status")
    page.click("#agent-login")
    assert "not an agent of any queue" in page.inner_text("#action-error")
    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "agent 1002: pause (lunch)" in audit and "agent 1003" not in audit.replace("extension 1003", "")


def test_a_bad_contact_or_crm_link_shows_its_message_and_stores_nothing(box_factory, web_factory, page, tmp_path):
    box = box_factory("box", start=False, extensions=())  # contacts are the web's own: no box call
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/contacts"))
    for number, name, field, message in (("12ab", "Bob", "number", "2 to 20 digits"), ("+44 1632 960000", "", "name", "a name is needed")):
        page.fill("#number", number)
        page.fill("#name", name)
        page.click("#contact-add")
        assert message in page.inner_text(f"#{field}-error")
        assert page.input_value("#number") == number  # what was typed stays, to be fixed
    assert "No contacts yet" in page.inner_text("#contacts")
    page.fill("#name", "Bob Dobbs")
    page.click("#contact-add")
    assert page.input_value("#number") == "+441632960000"  # spaces dropped, as callers show
    # A second contact with the same number is refused next to the field.
    page.goto(web.url("/contacts?number=%2B441632960000"))
    page.fill("#name", "Someone else")
    page.click("#contact-add")
    assert "already another contact's number" in page.inner_text("#number-error")

    for url, message in (("javascript:alert(1)", "http:// or https://"), ("https://crm.example/search", "{number}")):
        page.fill("#crm_url", url)
        page.click("#crm-save")
        assert message in page.inner_text("#crm_url-error")
    page.goto(web.url("/contacts"))
    assert page.input_value("#crm_url") == ""
    assert page.locator("#contacts tbody tr").count() == 1
    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "added contact +441632960000 (Bob Dobbs)" in audit and "Someone else" not in audit and "CRM" not in audit


def test_the_rules_behind_the_forms(tmp_path):
    """Pure parts: number normalising, field rules, the CRM link, the board's clock and colours."""
    assert normal_number(" +44 (1632) 960-000 ") == "+441632960000"
    assert check_contact({"number": "1001", "name": " Ada "})["name"] == "Ada"
    with pytest.raises(Problems) as exc:
        check_contact({"number": "+", "name": "x" * 65, "notes": "n" * 2001})
    assert set(exc.value.errors) == {"number", "name", "notes"}
    with pytest.raises(Problems):
        check_contact({"number": "1001", "name": "two\nlines"})
    assert check_note({"disposition": "sale", "note": " ok "}) == {"disposition": "sale", "note": "ok"}
    with pytest.raises(Problems):
        check_note({"disposition": "made up"})
    assert check_pause_reason(" lunch ") == "lunch" and check_pause_reason("7") == "7"
    for bad in ("", " ", "-x", "a;b", "x" * 25):
        with pytest.raises(Problems):
            check_pause_reason(bad)
    assert check_crm_template("") == ""
    for bad in ("ftp://x/{number}", "https://x/{numbr}", "https://x/?q={number}&id={id}", 'https://x/"{number}'):
        with pytest.raises(Problems):
            check_crm_template(bad)
    assert crm_link("https://crm.example/s?q={number}", "+44 1632&x") == "https://crm.example/s?q=+44%201632%26x"
    assert crm_link("", "1001") is None
    assert (clock(7), clock(205), clock(3730), clock(None)) == ("0:07", "3:25", "1:02:10", "–")
    assert (sl_class(80), sl_class(79.9), sl_class(60), sl_class(59.9), sl_class(None)) == \
        ("sl-good", "sl-fair", "sl-fair", "sl-bad", "sl-none")
    now = time.time()
    assert 0 <= now - local_midnight(now) < 86400 + 3600 and time.localtime(local_midnight(now))[3:6] == (0, 0, 0)

    db = ContactsDb(tmp_path)
    cid = db.save_contact(check_contact({"number": "1001", "name": "Ada"}), now)
    with pytest.raises(Problems) as exc:
        db.save_contact(check_contact({"number": "1001", "name": "Bob"}), now)
    assert "number" in exc.value.errors
    db.note_call("c1", "1001", "1002", {"disposition": "sale", "note": "a"}, "admin", now)
    db.note_call("c1", "1001", "1002", {"disposition": "resolved", "note": "b"}, "admin", now + 1)
    assert [(n.disposition, n.note) for n in db.call_notes("1001").values()] == [("resolved", "b")]
    assert db.by_number("10 01").id == cid and db.names(["1001", "1003"]) == {"1001": "Ada"}
    db.set_extension("admin", "1002")
    db.set_last_call("admin", "c1", "1001", "support", now)
    assert db.desk("admin").last_call == "c1"
    db.set_extension("admin", "1003")  # another desk: the last call was not theirs
    assert db.desk("admin").extension == "1003" and db.desk("admin").last_call is None
    assert db.remove_contact(cid) and not db.remove_contact(cid)
