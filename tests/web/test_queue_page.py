"""A queue made in the browser is live at once: the CLI lists it, the box runs it, and a pjsua2
caller dialling its number is offered to its member; then a bad field changes nothing."""
from __future__ import annotations


from tests.e2e.box import run_cli
from tests.web.conftest import create_admin


def _agent(page, row: int, ext: str, role: str, skills: str = "") -> None:
    page.fill(f"#agent-{row}-agent", ext)
    page.select_option(f"#agent-{row}-role", role)
    page.fill(f"#agent-{row}-skills", skills)


def test_a_queue_made_in_the_browser_answers_callers_and_refuses_bad_fields(box_factory, web_factory, page, phones, local_api):
    box = box_factory("box", extensions=("1001", "1002", "1003"))
    api = local_api(box)
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/queues"))
    page.click("#new-queue")
    page.fill("#id", "sales")
    page.fill("#number", "600")
    page.fill("#name", "Sales")
    page.select_option("#strategy", "skills")
    _agent(page, 0, "1002", "member", "french=3")
    _agent(page, 1, "1003", "agent")
    page.fill("#ring_timeout", "12")
    page.fill("#wrapup", "3")
    page.fill("#max_wait", "120")
    page.select_option("#overflow-goto", "extension")
    page.fill("#overflow-target", "1001")
    page.fill("#callback_key", "1")
    page.fill("#priority_callers", "1001, +441632960000")
    page.select_option("#recording", "on-demand")
    page.click("#save-queue")
    assert "Saved queue sales" in page.inner_text("p.notice"), page.inner_text("main")
    assert "Applied to the running box" in page.inner_text("p.notice")

    q = api.export_document()["queues"][0]
    assert q == {"id": "sales", "number": "600", "name": "Sales", "strategy": "skills",
                 "members": [{"agent": "1002", "skills": {"french": 3}}], "agents": [{"agent": "1003"}],
                 "ring_timeout": 12, "wrapup": 3, "max_wait": 120, "overflow": {"goto": "extension", "target": "1001"},
                 "callback_key": "1", "priority_callers": ["1001", "+441632960000"], "recording": "on-demand"}, q
    listed = run_cli(box.data, "queue", "list").stdout
    assert "sales" in listed and "600" in listed, listed
    live = {x["queue"]: x for x in box.http_get("/api/queues")}
    assert live["sales"]["number"] == "600" and live["sales"]["agents"].get("1002") == "idle", live

    # A caller dialling 600 is queued and offered to the member, 1002.
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    b = phones("b1002")
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    a.call("600")
    a.wait_state("CONFIRMED")  # the queue answers the caller
    b.wait_incoming()
    b.answer()
    b.wait_state("CONFIRMED")
    page.goto(web.url("/queues"))
    assert "1002" in page.inner_text("#queue-sales")
    a.hangup()
    b.wait_state("DISCONNECTED")

    # A bad field on the live queue: each message next to its field, nothing changed.
    before = api.export_document()
    page.goto(web.url("/queues/sales"))
    page.fill("#ring_timeout", "abc")
    page.fill("#agent-2-agent", "1099")
    page.fill("#exit_key", "1")  # the callback key already
    page.click("#save-queue")
    assert "not 'abc'" in page.inner_text("#ring_timeout-error")
    assert page.get_attribute("#ring_timeout", "aria-invalid") == "true"
    assert page.input_value("#ring_timeout") == "abc"  # what was typed stays, to be fixed
    assert "no extension '1099'" in page.inner_text("#agent-2-agent-error")
    assert "already asks for a callback" in page.inner_text("#exit_key-error")
    assert "go together" in page.inner_text("#exit-goto-error")  # an exit key needs its destination
    assert "Nothing was changed" in page.inner_text("#failed")
    assert api.export_document() == before

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    assert "added queue sales (number 600, skills)" in audit
    assert "changed queue" not in audit

    # Removed (asked first): gone from the document and from the running box.
    page.goto(web.url("/queues"))
    page.click("#queue-sales button:has-text('Remove')")
    assert "Remove queue sales?" in page.inner_text("h1")
    page.click("#confirm-remove button")
    assert "Removed queue sales" in page.inner_text("p.notice")
    assert api.export_document()["queues"] == []
    assert [q["queue"] for q in box.http_get("/api/queues")] == []
