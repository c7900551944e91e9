"""Extensions from the browser, applied live to a running box and proven with a real phone."""
from __future__ import annotations

from tests.e2e.box import run_cli
from tests.web.conftest import create_admin


def _ext_list(box) -> str:
    return run_cli(box.data, "ext", "list").stdout


def test_a_new_extension_registers_a_pjsua2_phone_with_the_secret_shown(box_factory, web_factory, page, phones):
    box = box_factory("box", extensions=())
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/extensions"))
    page.fill("#number", "1004")
    page.fill("#name", "Sales desk")
    page.click("form.add button[type=submit]")
    secret = page.inner_text("#secret-1004 .sip-secret").strip()
    assert len(secret) >= 20
    provisioning = page.inner_text("#secret-1004 pre.provisioning")
    assert f"SIP server: 127.0.0.1\nPort: {box.sip_port}" in provisioning
    assert "User name: 1004" in provisioning
    assert page.locator("#secret-1004 figure.qr svg").count() == 1
    assert "Applied to the running box" in page.inner_text("p.notice")

    d = phones("d1004")
    assert d.register(server=box.sip_addr, user="1004", password=secret) == 200, box.log_tail()

    # Listed, seen registered, and its secret never rendered again.
    page.goto(web.url("/extensions"))
    row = page.inner_text("#ext-1004")
    assert "Sales desk" in row and "yes" in row
    assert secret not in page.content()
    page.goto(web.url("/"))
    assert secret not in page.content()

    # A new password takes effect at once: the old one no longer registers.
    page.goto(web.url("/extensions"))
    page.click("#ext-1004 button:has-text('New password')")
    renewed = page.inner_text("#secret-1004 .sip-secret").strip()
    assert renewed != secret
    assert "Applied to the running box" in page.inner_text("p.notice")
    e, f = phones("e1004"), phones("f1004")
    assert e.register(server=box.sip_addr, user="1004", password=secret) != 200
    assert f.register(server=box.sip_addr, user="1004", password=renewed) == 200, box.log_tail()

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "added extension 1004 (Sales desk)" in audit
    assert "generated a new SIP secret for extension 1004" in audit


def test_a_bad_number_shows_its_message_next_to_the_field_and_adds_nothing(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",))
    web = web_factory(box)
    create_admin(page, web)
    before = _ext_list(box)
    rev_before = box.cli("settings").stdout  # unrelated settings stay as they were too
    page.goto(web.url("/extensions"))
    rows_before = page.locator("#extensions tbody tr").count()
    for number, message in (("12ab", "2 to 10 digits"), ("1", "2 to 10 digits"), ("1001", "already exists")):
        page.fill("#number", number)
        page.fill("#name", "Nobody")
        page.click("form.add button[type=submit]")
        assert message in page.inner_text("#number-error"), number
        assert page.get_attribute("#number", "aria-invalid") == "true"
        assert page.get_attribute("#number", "value") == number  # what was typed stays, to be fixed
        assert page.locator("#extensions tbody tr").count() == rows_before
    page.fill("#number", "1005")
    page.fill("#name", 'Quote " me')
    page.click("form.add button[type=submit]")
    assert "quotes" in page.inner_text("#name-error")
    assert _ext_list(box) == before
    assert box.cli("settings").stdout == rev_before
    page.goto(web.url("/audit"))
    assert "added extension" not in page.inner_text("#audit")


def test_removing_an_extension_applies_live(box_factory, web_factory, page, phones):
    box = box_factory("box", extensions=("1003",))
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/extensions"))
    page.click("#ext-1003 button:has-text('Remove')")
    assert "Remove extension 1003?" in page.inner_text("h1")
    assert "1003" in _ext_list(box), "asking is not removing"
    page.click("#confirm-remove button")
    assert "Removed extension 1003" in page.inner_text("p.notice")
    assert page.locator("#ext-1003").count() == 0
    assert "1003" not in _ext_list(box)
    c = phones("c1003")
    assert c.register(server=box.sip_addr, user="1003", password=box.secret("1003")) != 200
