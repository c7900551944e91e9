"""Voicemail from the browser, on a real `linebox run`: a mailbox enabled in the page is exactly
the stored section; a bad length or removing a mailbox an IVR option sends callers to is
refused next to its field and changes nothing; a real message left by a pjsua2 phone is listed,
plays as the caller's tone through the page's own <audio> source, and "Mark heard" and
"Delete" change the files through the running box, so the owner's phone is told at once
(message-summary NOTIFY); forged and malformed requests are refused."""
from __future__ import annotations

import re
from pathlib import Path

from firmware.api.localapi import Invalid, LocalApi, is_message_id
from firmware.config.pins import pin_matches
from firmware.store.messages import Mailboxes
from tests.e2e.test_calls import HIGH, LOW
from tests.peers import audio
from tests.peers.netutil import wait_until
from tests.web.conftest import create_admin


PIN = "86427531"  # 8 digits: nothing else in the database file holds them by chance


def _save(page) -> None:
    page.click("#save-voicemail")
    page.wait_for_load_state()


def _mwi(phone, waiting: str) -> list[dict]:
    return [e for e in phone.events("mwi") if f"Messages-Waiting: {waiting}" in e["body"]]


def test_mailboxes_and_a_real_message_from_the_browser(box_factory, web_factory, page, phones, local_api,
                                                       tmp_path: Path):
    box = box_factory("box", extensions=("1001", "1002", "1003"))
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)

    # A mailbox for 1002, unanswered calls included: exactly that section is stored.
    page.goto(web.url("/voicemail"))
    assert page.locator("#mailboxes tbody tr").count() == 3
    assert not page.is_checked("#mb-1002") and page.input_value("#max_seconds") == "180"
    page.check("#mb-1002")
    _save(page)
    assert "Saved voicemail" in page.inner_text("p.notice"), page.inner_text("main")
    assert api.export_document()["voicemail"] == {"mailboxes": {"1002": {}}, "max_seconds": 180}
    assert "0 new, 0 old" in page.inner_text("#row-1002")

    # A message of 5 s at most is refused next to its field; what was typed stays; nothing changes.
    before = api.export_document()
    page.check("#mb-1003")
    page.fill("#max_seconds", "5")
    with page.expect_response(lambda resp: resp.request.method == "POST") as answer:
        page.click("#save-voicemail")
    assert answer.value.status == 400
    assert "10-3600" in page.inner_text("#max_seconds-error")
    assert page.is_checked("#mb-1003") and page.input_value("#max_seconds") == "5"
    assert api.export_document() == before

    # An IVR option sends callers to 1002's mailbox: unticking it is refused at its checkbox.
    api.set_section("ivr", {"menus": [{"id": "main", "greeting": ["welcome"],
                                       "options": {"9": {"goto": "voicemail", "target": "1002"}}}]})
    before = api.export_document()
    page.goto(web.url("/voicemail"))
    page.uncheck("#mb-1002")
    _save(page)
    assert "options[9]" in page.inner_text("#mb-1002-error"), page.inner_text("main")
    assert "sends callers to this mailbox" in page.inner_text("#mb-1002-error")
    assert api.export_document() == before

    # 1003 without unanswered calls, and a shorter limit.
    page.goto(web.url("/voicemail"))
    page.check("#mb-1003")
    page.uncheck("#un-1003")
    page.fill("#max_seconds", "120")
    _save(page)
    assert "Saved voicemail" in page.inner_text("p.notice"), page.inner_text("main")
    assert api.export_document()["voicemail"] == {"mailboxes": {"1002": {}, "1003": {"unanswered": False}},
                                                  "max_seconds": 120}
    assert page.is_checked("#mb-1003") and not page.is_checked("#un-1003")

    # A PIN for *98: a short one is refused at its field; a good one is stored but never shown;
    # saving with the field empty keeps it; "remove" removes it.
    before = api.export_document()
    page.fill("#pin-1002", "12")
    _save(page)
    assert "4 to 12 digits" in page.inner_text("#pin-1002-error"), page.inner_text("main")
    assert page.input_value("#pin-1002") == ""  # a secret typed is not sent back
    assert api.export_document() == before
    page.goto(web.url("/voicemail"))
    page.fill("#pin-1002", PIN)
    _save(page)
    stored = api.export_document()["voicemail"]["mailboxes"]["1002"]
    assert set(stored) == {"pin_hash"} and pin_matches(stored, PIN)  # only its salted hash is kept
    assert PIN.encode() not in b"".join(p.read_bytes() for p in box.data.glob("linebox.db*"))
    assert PIN not in page.content() and page.input_value("#pin-1002") == ""
    assert page.get_attribute("#pin-1002", "placeholder") == "set: type to change"
    _save(page)
    assert api.export_document()["voicemail"]["mailboxes"]["1002"] == stored  # the very same hash
    page.check("#nopin-1002")
    _save(page)
    assert api.export_document()["voicemail"]["mailboxes"]["1002"] == {}

    # A real message: 1002 has no phone, so 1001's call goes to its mailbox.
    a = phones("a1001")  # sends LOW
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("1002")
    a.wait_state("CONFIRMED", timeout=10)
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 400, timeout=15)  # greeting and tone: about 8 s
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)  # then 3 s of talking into the box
    a.hangup()
    a.wait_state("DISCONNECTED")
    wait_until(lambda: api.voicemail_messages("1002"), 10, what="the message stored")

    page.goto(web.url("/voicemail"))
    assert "1 new, 0 old" in page.inner_text("#row-1002")
    page.click("#open-1002")
    page.wait_for_url("**/voicemail/1002")
    rows = page.locator("#messages tbody tr[data-folder]")
    assert rows.count() == 1
    row = rows.first
    assert row.get_attribute("data-folder") == "new" and row.get_attribute("data-caller") == "1001"
    assert float(row.get_attribute("data-seconds")) >= 2.0, row.inner_text()
    assert "1001" in row.inner_text() and "new" in row.inner_text()

    # The page's own <audio> source, fetched with the page's session: the caller's tone.
    src = row.locator("audio").get_attribute("src")
    wav = page.request.get(web.url(src))
    assert wav.status == 200 and wav.headers["content-type"].startswith("audio/wav"), wav.headers
    (tmp_path / "message.wav").write_bytes(wav.body())
    rate, samples = audio.read_wav(tmp_path / "message.wav")
    assert audio.tone_present(samples, rate, LOW, min_seconds=1.5, others=(HIGH,)), \
        f"the message should hold the caller's tone: {audio.describe(samples, rate, (LOW, HIGH))}"
    ranged = page.request.get(web.url(src), headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body()) == 100  # the player can seek
    download = page.request.get(web.url(row.locator("a.download").get_attribute("href")))
    assert download.status == 200 and "attachment" in download.headers["content-disposition"]
    assert download.body() == wav.body()

    # The owner's phone registers: it is told a message waits.
    b = phones("b1002", tone=None)
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    wait_until(lambda: _mwi(b, "yes"), 10, what="message-summary NOTIFY: waiting")
    assert not _mwi(b, "no")

    # Mark heard: the file moves to old, through the running box, which tells the phone.
    ident = row.get_attribute("id").removeprefix("msg-")
    assert is_message_id(ident), ident
    row.locator("button.heard").click()
    page.wait_for_load_state()
    assert "Message marked heard" in page.inner_text("p.notice") and "lamps are updated" in page.inner_text("p.notice")
    assert page.locator(f"#msg-{ident}").get_attribute("data-folder") == "old"
    assert page.locator(f"#msg-{ident} button.heard").count() == 0
    assert [m.folder for m in api.voicemail_messages("1002")] == ["old"]
    assert (box.data / "voicemail" / "1002" / "old" / f"{ident}.wav").is_file()
    wait_until(lambda: _mwi(b, "no"), 10, what="message-summary NOTIFY: none waiting")

    # A POST without the page's CSRF token is refused and changes nothing.
    for form in ({"action": "delete"}, {"action": "delete", "csrf": "0" * 43}):
        r = page.request.post(web.url(f"/voicemail/1002/{ident}"), form=form, max_redirects=0)
        assert r.status == 403 and "CSRF" in r.text(), (form, r.status)
    assert len(api.voicemail_messages("1002")) == 1

    # Names that are not a mailbox or message are not found, whatever they point at.
    for path in (f"/voicemail/1002/{ident}x/audio", "/voicemail/1002/..%2F..%2Fwebui.db/audio",
                 f"/voicemail/1001/{ident}/audio", "/voicemail/9999", "/voicemail/10%2F02",
                 f"/voicemail/1002/{ident[:-1]}g/audio"):  # not hex (upper() may change nothing)
        assert page.request.get(web.url(path)).status == 404, path

    # Delete: gone from the disk and the page.
    page.locator(f"#msg-{ident} button.delete").click()
    page.wait_for_load_state()
    assert "Message deleted" in page.inner_text("p.notice")
    assert page.locator("#no-messages").is_visible()
    assert api.voicemail_messages("1002") == []
    assert not list((box.data / "voicemail" / "1002").rglob("*.wav"))
    assert page.request.get(web.url(src)).status == 404

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "voicemail: mailbox 1002 added" in audit
    assert "voicemail: mailbox 1003 added without unanswered calls, max_seconds 180 → 120" in audit
    assert re.search(r"voicemail 1002: marked heard the message from 1001 of \d{4}-\d\d-\d\d \d\d:\d\d", audit)
    assert "voicemail 1002: deleted the message from 1001" in audit


def test_a_stopped_box_has_its_messages_changed_on_disk(tmp_path: Path):
    """No box answers: LocalApi changes the files itself (the box sets the lamps when it starts)."""
    boxes = Mailboxes(tmp_path / "voicemail")
    made = [boxes.new_message("1002", "1001", "Front desk") for _ in range(2)]
    for path in made:
        audio.write_tone_wav(path, LOW, 2.0)
    api = LocalApi(tmp_path, None)
    try:
        first, second = (m.id for m in api.voicemail_messages("1002"))
        done = api.voicemail_action("1002", first, "heard")
        assert done["live"] is False and done["caller"] == "1001" and done["caller_name"] == "Front desk"
        assert [(m.id, m.folder) for m in api.voicemail_messages("1002")] == [(second, "new"), (first, "old")]
        api.voicemail_action("1002", second, "delete")
        assert [m.id for m in api.voicemail_messages("1002")] == [first]
        for mailbox, ident, action in (("1002", second, "delete"), ("1002", first, "play"),
                                       ("../1002", first, "delete"), ("1002", "../" + first, "delete")):
            try:
                api.voicemail_action(mailbox, ident, action)
            except Invalid as exc:
                assert set(exc.errors) == {"message"}, exc.errors
            else:
                raise AssertionError(f"{(mailbox, ident, action)} should be refused")
        assert api.voicemail_message("1002", first) is not None
        assert api.voicemail_message("1002", first + "/") is None and api.voicemail_messages("../etc") == []
    finally:
        api.close()


def test_audit_text_and_where_a_refusal_is_shown():
    from webui.pages.voicemail import MailboxFieldMap, changes

    assert changes({"mailboxes": {"1002": {}}}, {"mailboxes": {"1002": {"unanswered": False}, "1003": {}},
                                                 "max_seconds": 120}) == [
        "1002 unanswered off", "mailbox 1003 added", "max_seconds 180 → 120"]
    assert changes({"mailboxes": {"1002": {}}, "max_seconds": 60}, {"mailboxes": {}, "max_seconds": 60}) == [
        "mailbox 1002 removed"]
    # the page sends a typed PIN as digits and keeps an untouched one as the hash it was
    hashed = {"mailboxes": {"1002": {"pin_hash": "scrypt$16384$8$1$" + "ab" * 16 + "$" + "cd" * 32}}}
    typed = {"mailboxes": {"1002": {"pin": "86427531"}}}
    assert changes({"mailboxes": {"1002": {}}}, typed) == ["1002 PIN set"]
    assert changes(hashed, typed) == ["1002 PIN changed"]
    assert changes(hashed, hashed) == []
    assert changes(hashed, {"mailboxes": {"1002": {}}}) == ["1002 PIN removed"]
    fm = MailboxFieldMap()
    fm.add("voicemail.mailboxes.1002", "mb-1002")
    fm.add("voicemail.max_seconds", "max_seconds")
    assert fm.place({"ivr.menus[main].options[9].target": "no voicemail '1002'",
                     "queues[sales].overflow.target": "no voicemail '1009'",
                     "voicemail.max_seconds": "whole seconds, 10-3600"}) == {
        "mb-1002": "ivr.menus[main].options[9].target sends callers to this mailbox; change that first",
        "max_seconds": "whole seconds, 10-3600",
        "form": "queues[sales].overflow.target: no voicemail '1009'"}
