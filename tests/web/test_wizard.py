"""First boot in a real browser: from a fresh data directory to the dashboard, through every
wizard step, with the checks an installer would trip over on the way."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.e2e.box import run_cli
from tests.web.conftest import ADMIN, PASSWORD
from webui import encrypted

BACKUP_PASSPHRASE = "Ferry at dawn, pier 9"


def test_wizard_from_a_fresh_data_directory(box_factory, web_factory, page):
    box = box_factory("fresh", extensions=())  # `linebox init` only: no extension, no admin
    web = web_factory(box)

    # No admin account: every page leads to the wizard, and no default password logs in.
    page.goto(web.url("/extensions"))
    assert page.url.endswith("/setup/admin")
    r = page.request.post(web.url("/login"), form={"username": "admin", "password": "admin"}, max_redirects=0)
    assert r.status in (303, 403), r.status

    # The strength rule is checked on the server, its message next to the field.
    for weak, why in (("short1", "at least 10 characters"), ("password123", "every attacker's list"),
                      ("admin-admin-1", "user name")):
        page.fill("#username", ADMIN)
        page.fill("#password", weak)
        page.fill("#confirm", weak)
        page.click("main button[type=submit]")
        assert why in page.inner_text("#password-error")
        assert page.get_attribute("#password", "aria-invalid") == "true"
    page.goto(web.url("/"))
    assert page.url.endswith("/setup/admin"), "a refused password must not create the account"

    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD + "x")
    page.click("main button[type=submit]")
    assert "differ" in page.inner_text("#confirm-error")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")

    # Region.
    page.wait_for_url("**/setup/region")
    page.click("main button[type=submit]")
    assert "country" in page.inner_text("#region-error")
    page.select_option("#region", "de")
    page.click("main button[type=submit]")

    # First extensions: a bad row refuses the whole batch, then two go in with generated secrets.
    page.wait_for_url("**/setup/extensions")
    page.fill("#number0", "1001")
    page.fill("#name0", "Reception")
    page.fill("#number1", "10x2")
    page.click("main button[type=submit]")
    assert "2 to 10 digits" in page.inner_text("#number1-error")
    assert "1001" not in run_cli(box.data, "ext", "list").stdout, "a refused batch added a row"
    page.fill("#number1", "1002")
    page.click("main button[type=submit]")
    page.wait_for_selector("#secret-1002")
    shown = {n: page.inner_text(f"#secret-{n} .sip-secret") for n in ("1001", "1002")}
    for n, secret in shown.items():
        assert run_cli(box.data, "ext", "secret", n).stdout.strip() == secret
        assert f"Password: {secret}" in page.inner_text(f"#secret-{n} pre.provisioning")
    assert page.locator("#secret-1001 figure.qr svg").count() == 1
    assert "Applied to the running box" in page.inner_text("p.notice")

    # Backup: the whole box's archive (as on the System page), encrypted with the passphrase
    # typed here; a passphrase typed differently twice is said on this page, and nothing comes.
    page.click("text=Next: backup")
    page.fill("#passphrase", BACKUP_PASSPHRASE)
    page.fill("#passphrase2", BACKUP_PASSPHRASE + " ")
    page.click("text=Download the backup")
    assert "differ" in page.inner_text("#passphrase2-error") and page.url.endswith("/setup/backup")
    page.fill("#passphrase", BACKUP_PASSPHRASE)
    page.fill("#passphrase2", BACKUP_PASSPHRASE)
    with page.expect_download() as dl:
        page.click("text=Download the backup")
    sealed = Path(dl.value.path()).read_bytes()
    assert all(secret.encode() not in sealed for secret in shown.values())
    with tarfile.open(fileobj=encrypted.Reader(io.BytesIO(sealed), BACKUP_PASSPHRASE), mode="r:gz") as tar:
        doc = json.load(tar.extractfile("config.json"))
    assert doc["version"] == 1
    assert {e["number"]: e["secret"] for e in doc["extensions"]} == shown
    page.click("text=Finish and go to the dashboard")
    page.wait_for_selector("h1:has-text('Dashboard')")

    page.goto(web.url("/audit"))
    audit = page.inner_text("#audit")
    for what in ("created the admin account", "set the region to DE", "added extension 1001 (Reception)",
                 "added extension 1002", "downloaded a full backup (", "finished the first-boot wizard"):
        assert what in audit, audit
    # The region is the box's setting where the firmware has one, else the web keeps it.
    settings = run_cli(box.data, "settings").stdout
    if "analog.region" in settings:
        assert "analog.region = de" in settings, settings
    else:
        assert "region" not in settings

    # The wizard does not run twice: its first step now leads away, and the account stands.
    page.goto(web.url("/setup/admin"))
    assert not page.url.endswith("/setup/admin")
