"""Fixtures of the web admin's browser tests: a real `linebox run` (tests/e2e fixtures), the web
admin as its own process on it, and Debian's chromium driven by Playwright.

The browser is launched once for tests/web (it is the slow part; package scope, because
Playwright's sync API holds an event loop on the main thread while it lives) and each test gets
a fresh context: its own cookies, so no test rides on another's session or lock-out.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from firmware.api.localapi import LocalApi
from tests.e2e.box import Box
from tests.e2e.conftest import box, box_factory, phones, pytest_runtest_makereport  # noqa: F401 (fixtures)
from tests.web.webproc import Web

CHROMIUM = os.environ.get("LINEBOX_CHROMIUM", "/usr/bin/chromium")
# The closed network here refuses Chromium's background connections; these flags stop it trying.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ADMIN = "admin"
PASSWORD = "Tr1cky-Harbour-42"


@pytest.fixture(scope="package")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def web_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """make(box, *args) -> a started web admin on that box; all stopped at the end (and their
    log tails added to a failure report)."""
    made: list[Web] = []

    def make(b: Box, *args: str) -> Web:
        w = Web(tmp_path / f"web{len(made)}", data=b.data, api=f"http://127.0.0.1:{b.http_port}",
                sip_port=b.sip_port, args=args)
        made.append(w)
        request.node._linebox_webs = made
        return w.start()

    try:
        yield make
    finally:
        for w in made:
            w.stop()


def create_admin(page, web: Web, password: str = PASSWORD) -> None:
    """The wizard's first step, as the admin would do it; leaves the page logged in."""
    page.goto(web.url("/"))
    page.fill("#username", ADMIN)
    page.fill("#password", password)
    page.fill("#confirm", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/setup/region")


def finish_wizard(page, web: Web, region: str = "us") -> None:
    """The whole first-boot wizard as an admin in a hurry walks it: the account, the region
    (network and analog ports left as found), no extensions, no backup. Leaves the page logged
    in, on the dashboard."""
    create_admin(page, web)
    page.select_option("#region", region)
    page.click("main button[type=submit]")
    skip_to_dashboard(page)


def skip_to_dashboard(page) -> None:
    """From the wizard's extensions step: skip it and the backup, finish, wait for the dashboard."""
    page.click("text=Skip")
    page.click("text=Finish and go to the dashboard")
    page.wait_for_selector("h1:has-text('Dashboard')")


def login(page, web: Web, password: str = PASSWORD) -> None:
    page.goto(web.url("/login"))
    page.fill("#username", ADMIN)
    page.fill("#password", password)
    page.click("main button[type=submit]")


def pytest_exception_interact(node, call, report):
    for w in getattr(node, "_linebox_webs", []) or []:
        report.sections.append((f"web admin log ({w.base})", w.log_tail()))


@pytest.fixture
def local_api():
    """make(box) -> LocalApi on its data directory: what the web reads, read by the test."""
    made: list[LocalApi] = []

    def make(box) -> LocalApi:
        made.append(LocalApi(box.data, None))
        return made[-1]

    yield make
    for api in made:
        api.close()
