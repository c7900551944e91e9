"""The settings page, generated from the firmware's settings table: validated as a whole (one
bad field changes nothing), applied live, audited."""
from __future__ import annotations

from tests.e2e.box import RawRegistrar, SipSocket, run_cli
from tests.web.conftest import create_admin


def _settings(box) -> str:
    return run_cli(box.data, "settings").stdout


def test_settings_all_or_nothing_then_live(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",))
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/settings"))
    before = _settings(box)
    page.fill("#set-sip-realm", "office")
    page.fill("#set-security-ban-failures", "lots")
    page.select_option("#set-recording-mode", "mono")
    page.click("#settings button[type=submit]")
    assert "whole number" in page.inner_text("#set-security-ban-failures-error")
    assert page.get_attribute("#set-security-ban-failures", "aria-invalid") == "true"
    assert page.input_value("#set-sip-realm") == "office"  # kept for the retry
    assert _settings(box) == before, "a form with a bad field changed something"

    page.fill("#set-security-ban-failures", "7")
    page.click("#settings button[type=submit]")
    assert "Applied to the running box" in page.inner_text("p.notice")
    after = _settings(box)
    for line in ("sip.realm = office", "security.ban_failures = 7", "recording.mode = mono"):
        assert line in after, after
    assert "rtp.timeout = 60.0" in after  # untouched settings are not written
    # Live: the next digest challenge carries the new realm, with no restart.
    with SipSocket(box.sip_hostport) as sock:
        ch = RawRegistrar(sock, "1001").challenge()
        assert ch is not None and 'realm="office"' in ch.get("www-authenticate"), ch and ch.text()
    assert box.starts == 1

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "set sip.realm to office" in audit and "set security.ban_failures to 7" in audit
    assert "rtp.timeout" not in audit
