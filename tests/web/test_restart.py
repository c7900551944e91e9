"""The System page's restart: the box hangs up, starts itself again in the same process, and
answers again; the restart is in the audit log."""
from __future__ import annotations

import time

from tests.web.conftest import create_admin


def test_restart_button_restarts_the_pbx_service(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",))
    pid = box.proc.pid
    web = web_factory(box)
    create_admin(page, web)
    page.goto(web.url("/system"))
    before = box.log_text().count("linebox: ready")
    page.click("#restart")
    assert "restarting" in page.inner_text("#restarting")
    deadline = time.monotonic() + 20
    while box.log_text().count("linebox: ready") <= before:
        assert time.monotonic() < deadline, box.log_tail()
        time.sleep(0.2)
    assert box.health()["status"] == "ok"
    assert box.proc.pid == pid and box.running()  # the same process, started afresh
    page.goto(web.url("/audit"))
    assert "restarted the PBX service" in page.inner_text("#audit")
