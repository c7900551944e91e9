"""Backup and restore of the whole box through the System page: the archive's manifest vouches
for every file; a damaged, altered or foreign archive is refused with its reason and changes
nothing (the configuration export and the files stay as they were); a good backup brings back an
extension that was deleted, and the box applies it live."""
from __future__ import annotations

import hashlib
import html
import io
import json
import sqlite3
import tarfile
import wave
import zipfile
from pathlib import Path

from tests.web.conftest import finish_wizard


def _wav(path: Path, seconds: float = 0.5) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * int(seconds * 8000 * 2 / 256))
    return path.read_bytes()


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, blob in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out.getvalue()


def _export(box) -> dict:
    return json.loads(box.cli("config", "export").stdout)


def test_backup_restore_and_refusals(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001", "1002"))
    promo = box.data / "prompts" / "uploads" / "promo.wav"
    promo_bytes = _wav(promo)
    rec = box.data / "recordings" / "20261120-091000-1001-1002-abcd.wav"
    rec_bytes = _wav(rec, 1.0)
    (box.data / "recordings" / "20261120-092000-1001-1002-beef.wav.part").write_bytes(b"being written")
    # Some call history (as the box writes it; no calls are needed for a backup's sake).
    with sqlite3.connect(box.data / "linebox.db") as db:
        for cid, start in (("hist-1", 1795400000.0), ("hist-2", 1795400100.0)):
            db.execute("INSERT INTO cdr (id, call_id, caller, callee, start, answer, end, disposition, duration,"
                       " billsec, cause) VALUES (?, ?, '1001', '1002', ?, ?, ?, 'ANSWERED', 20, 18, 'caller-hangup')",
                       (cid, cid + "@x", start, start + 2, start + 20))
    web = web_factory(box)
    finish_wizard(page, web)

    page.goto(web.url("/system"))
    page.check("#recordings")
    with page.expect_download() as dl:
        page.click("#backup-form button[type=submit]")
    good = Path(dl.value.path()).read_bytes()
    files = _members(good)
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "linebox-backup" and manifest["version"] == 1 and manifest["box_version"]
    listed = {e["path"]: e for e in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    assert {"prompts/uploads/promo.wav", f"recordings/{rec.name}"} <= set(listed)
    assert not [p for p in listed if p.endswith(".part")]  # a recording being written is left out
    for path, e in listed.items():
        assert e["size"] == len(files[path]) and e["sha256"] == hashlib.sha256(files[path]).hexdigest(), path
    assert [x["number"] for x in json.loads(files["config.json"])["extensions"]] == ["1001", "1002"]
    original = _export(box)
    history = json.loads(files["history.json"])
    assert sorted(r["id"] for r in history["cdr"]) == ["hist-1", "hist-2"]

    box.cli("ext", "remove", "1002")
    with sqlite3.connect(box.data / "linebox.db") as db:
        db.execute("DELETE FROM cdr WHERE id = 'hist-1'")  # a call record lost since the backup
    promo.unlink()
    rec.unlink()
    before = _export(box)
    assert [x["number"] for x in before["extensions"]] == ["1001"]

    altered = dict(files)
    altered["prompts/uploads/promo.wav"] = promo_bytes[:-4] + b"\x00\x00\x00\x01"  # same size, other bytes
    bad_config = dict(files)
    doc = json.loads(files["config.json"])
    doc["extensions"][1]["number"] = "12ab"
    bad_config["config.json"] = json.dumps(doc).encode()
    m = json.loads(files["manifest.json"])
    for e in m["files"]:
        if e["path"] == "config.json":
            e["size"], e["sha256"] = len(bad_config["config.json"]), hashlib.sha256(bad_config["config.json"]).hexdigest()
    bad_config["manifest.json"] = json.dumps(m).encode()
    escape = dict(files)
    escape["../linebox.db"] = b"x"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("manifest.json", files["manifest.json"])
    foreign_manifest = dict(files)
    foreign_manifest["manifest.json"] = json.dumps({"format": "something-else", "version": 1, "files": []}).encode()
    bad_history = dict(files)
    hist = json.loads(files["history.json"])
    hist["cdr"][0]["start"] = "yesterday"
    bad_history["history.json"] = json.dumps(hist).encode()
    m = json.loads(files["manifest.json"])
    for e in m["files"]:
        if e["path"] == "history.json":
            e["size"], e["sha256"] = len(bad_history["history.json"]), hashlib.sha256(bad_history["history.json"]).hexdigest()
    bad_history["manifest.json"] = json.dumps(m).encode()
    cases = {
        "bad-history.tar.gz": (_tar(bad_history), "history.json: call record 0 has a bad start"),
        "truncated.tar.gz": (good[: len(good) // 2], "damaged"),
        "altered.tar.gz": (_tar(altered), "SHA-256"),
        "escape.tar.gz": (_tar(escape), "outside"),
        "bad-config.tar.gz": (_tar(bad_config), "extensions[1].number"),
        "backup.zip": (zipped.getvalue(), "not a gzip-compressed tar"),
        "foreign.tar.gz": (_tar(foreign_manifest), "another format"),
        "no-manifest.tar.gz": (_tar({"config.json": files["config.json"]}), "no manifest"),
    }
    # One through the form as an admin would, the rest posted as that form posts them.
    page.goto(web.url("/system"))
    page.set_input_files("#archive", files=[{"name": "altered.tar.gz", "mimeType": "application/gzip",
                                             "buffer": cases["altered.tar.gz"][0]}])
    page.click("#restore-form button[type=submit]")
    text = page.inner_text("#archive-error")
    assert "nothing was changed" in text and "SHA-256" in text, text
    csrf = page.get_attribute("#restore-form input[name=csrf]", "value")
    for name, (blob, reason) in cases.items():
        r = page.request.post(web.url("/system/restore"), multipart={
            "csrf": csrf, "archive": {"name": name, "mimeType": "application/gzip", "buffer": blob}})
        text = html.unescape(r.text())
        assert r.status == 400 and "nothing was changed" in text and reason in text, (name, r.status, text[-800:])
        assert not promo.exists() and not rec.exists(), name
        assert not list(box.data.glob(".restore-*")), name
    assert _export(box) == before

    page.goto(web.url("/system"))
    page.set_input_files("#archive", files=[{"name": "good.tar.gz", "mimeType": "application/gzip", "buffer": good}])
    page.click("#restore-form button[type=submit]")
    assert "Applied to the running box" in page.inner_text("[role=status]")
    assert _export(box) == original
    assert promo.read_bytes() == promo_bytes and rec.read_bytes() == rec_bytes
    ids = sorted(r["id"] for r in json.loads(box.cli("cdr", "--json").stdout))
    assert ids == ["hist-1", "hist-2"]  # the lost record is back, the other not doubled
    page.goto(web.url("/system/logs?source=audit&q=restore"))
    log = page.inner_text("#log")
    assert "restored a backup" in log and "refused to restore altered.tar.gz" in log
    assert "1 recording(s)" in log

    # A box log in the data directory joins the page, filtered like the rest.
    (box.data / "linebox.log").write_text("2026-11-20 09:00:00,000 INFO linebox: started\n"
                                          "2026-11-20 09:00:05,000 WARNING firmware.pbx.guard: banned 192.0.2.7\n")
    page.goto(web.url("/system/logs?q=192.0.2.7"))
    rows = page.locator("#log tbody tr[data-source]")
    assert rows.count() == 1 and rows.first.get_attribute("data-source") == "box"


def _entry(path: str, blob: bytes) -> dict:
    return {"path": path, "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


def _archive_with(members: list[tarfile.TarInfo | tuple[str, bytes]], listed: list[tuple[str, bytes]]) -> bytes:
    manifest = json.dumps({"format": "linebox-backup", "version": 1, "box_version": "t", "created": "x",
                           "files": [_entry(p, b) for p, b in listed]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for m in [("manifest.json", manifest), *members]:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return out.getvalue()


def test_check_refuses_links_absolute_paths_and_unlisted_files(tmp_path):
    from webui import backup

    config = json.dumps({"version": 1}).encode()
    link = tarfile.TarInfo("prompts/uploads/evil.wav")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases = {
        "link": ([("config.json", config), link], [("config.json", config)], "not a regular file"),
        "absolute": ([("config.json", config), ("/etc/cron.d/x", b"x")], [("config.json", config)], "outside"),
        "unlisted": ([("config.json", config), ("prompts/a.wav", b"x")], [("config.json", config)], "does not list"),
        "missing": ([("config.json", config)], [("config.json", config), ("prompts/a.wav", b"x")], "missing"),
        "hidden": ([("config.json", config), ("prompts/.x", b"x")], [("config.json", config)], "not part of"),
    }
    for name, (members, listed, reason) in cases.items():
        try:
            backup.check(io.BytesIO(_archive_with(members, listed)), tmp_path)
        except backup.Refused as exc:
            assert reason in str(exc), (name, exc)
        else:
            raise AssertionError(f"{name}: accepted")
        assert not list(tmp_path.glob(".restore-*")), name


def test_apply_puts_files_back_when_the_box_refuses_the_configuration(tmp_path):
    from firmware.api.localapi import Invalid
    from webui import backup

    data = tmp_path / "data"
    old = _wav(data / "prompts" / "uploads" / "a.wav")
    staging = data / ".restore-t"
    (staging / "prompts" / "uploads").mkdir(parents=True)
    (staging / "prompts" / "uploads" / "a.wav").write_bytes(b"new")
    (staging / "prompts" / "uploads" / "b.wav").write_bytes(b"new")

    class Refusing:
        def apply_document(self, doc):
            raise Invalid({"extensions[0].number": "taken meanwhile"})

    checked = backup.Checked({}, {"version": 1}, staging, ["prompts/uploads/a.wav", "prompts/uploads/b.wav"])
    try:
        backup.apply(checked, Refusing(), data)
    except Invalid:
        pass
    else:
        raise AssertionError("apply should re-raise")
    assert (data / "prompts" / "uploads" / "a.wav").read_bytes() == old
    assert not (data / "prompts" / "uploads" / "b.wav").exists() and not staging.exists()


PASSPHRASE = "Harbour lights at 6 bells"
PIN = "75318642"  # 8 digits: no timestamp or id in an archive holds them by chance


def test_encrypted_backup_download_and_restore_through_the_system_page(box_factory, web_factory, page):
    from firmware.config.pins import pin_matches

    box = box_factory("box", extensions=("1001", "1002"))
    box.cli("voicemail", "enable", "1002", "--pin", PIN)
    web = web_factory(box)
    finish_wizard(page, web)

    # A passphrase typed differently twice, or too short, is refused at its field: no download.
    page.goto(web.url("/system"))
    page.fill("#passphrase", PASSPHRASE)
    page.fill("#passphrase2", PASSPHRASE + "!")
    page.click("#backup-form button[type=submit]")
    assert "differ" in page.inner_text("#passphrase2-error")
    page.fill("#passphrase", "short")
    page.fill("#passphrase2", "short")
    page.click("#backup-form button[type=submit]")
    assert "at least 10 characters" in page.inner_text("#passphrase-error")

    page.fill("#passphrase", PASSPHRASE)
    page.fill("#passphrase2", PASSPHRASE)
    with page.expect_download() as dl:
        page.click("#backup-form button[type=submit]")
    assert dl.value.suggested_filename.endswith(".tar.gz.enc")
    sealed = Path(dl.value.path()).read_bytes()
    assert sealed.startswith(b"LINEBOX-ENCRYPTED-BACKUP\n")
    for secret in (box.secret("1001"), box.secret("1002"), PIN):  # nothing readable without the passphrase
        assert secret.encode() not in sealed, secret
    assert b"config.json" not in sealed and not sealed.startswith(b"\x1f\x8b")
    original = _export(box)
    assert pin_matches(original["voicemail"]["mailboxes"]["1002"], PIN)

    box.cli("ext", "remove", "1001")
    before = _export(box)
    assert [x["number"] for x in before["extensions"]] == ["1002"]

    def restore(passphrase: str | None) -> None:
        page.goto(web.url("/system"))
        page.set_input_files("#archive", files=[{"name": "linebox.tar.gz.enc", "mimeType": "application/octet-stream",
                                                 "buffer": sealed}])
        if passphrase is not None:
            page.fill("#restore-passphrase", passphrase)
        page.click("#restore-form button[type=submit]")

    for given, said in ((None, "This backup is encrypted: type the passphrase"),
                        ("Harbour lights at 7 bells", "The passphrase is wrong")):
        restore(given)
        text = page.inner_text("#restore-passphrase-error")
        assert "nothing was changed" in text and said in text, text
        assert page.input_value("#restore-passphrase") == ""  # a secret typed is not sent back
        assert _export(box) == before and not list(box.data.glob(".restore-*"))

    restore(PASSPHRASE)
    assert "Applied to the running box" in page.inner_text("[role=status]"), page.inner_text("main")
    assert _export(box) == original
    page.goto(web.url("/system/logs?source=audit&q=backup"))
    log = page.inner_text("#log")
    assert "downloaded a full backup (" in log and "encrypted)" in log, log
    assert "refused to restore linebox.tar.gz.enc: The passphrase is wrong" in log, log
