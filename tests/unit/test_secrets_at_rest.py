"""Secrets at rest: the data directory and the database are the box's user's alone (0700 and
0600, -wal and -shm too), voicemail PINs are stored only as salted hashes (the bytes of the
database file never hold one: not after a PIN is set, not after an old box's plain PINs are
migrated, not in free pages left by an older PIN), and a loosened directory is reported with the
command that fixes it.

PINs here have 8 digits, so no timestamp or id in the file contains one by chance."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from firmware.config import document as configdoc
from firmware.store import document as stored
from firmware.store.datadir import loose, private_dir, warn_loose
from firmware.config.pins import is_pin_hash, pin_matches
from firmware.store.db import DB_NAME, MIGRATIONS, Store, _statements
from firmware.store.messages import Mailboxes

OLD_PIN, PIN, NEW_PIN = "31415926", "27182818", "16180339"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def raw_bytes(data: Path) -> bytes:
    """Every byte of the database as it lies on the disk: the file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(data.glob(DB_NAME + "*")))


def test_the_data_directory_and_database_are_created_private(tmp_path: Path) -> None:
    data = tmp_path / "box" / "data"  # two levels that do not exist yet

    async def go() -> None:
        store = await Store.open(data)
        try:
            await store.set_setting("sip.realm", "office")  # something in the write-ahead log
            files = {p.name: mode(p) for p in data.iterdir()}
            # checked while open: the -wal and -shm exist only as long as a connection does
            assert files == {"linebox.db": 0o600, "linebox.db-wal": 0o600, "linebox.db-shm": 0o600}, files
        finally:
            await store.close()

    run(go())
    assert mode(data) == 0o700 and mode(data.parent) == 0o700
    boxes = Mailboxes(data / "voicemail")
    boxes.new_message("1001", "1002", "")
    for d in (data / "voicemail", data / "voicemail" / "1001", data / "voicemail" / "1001" / "new"):
        assert mode(d) == 0o700, d
    assert loose(data) == []


def test_a_loosened_directory_or_file_is_reported_with_its_fix(tmp_path: Path, caplog) -> None:
    data = tmp_path / "data"

    async def create() -> None:
        await (await Store.open(data)).close()

    run(create())
    private_dir(data / "recordings")
    (data / "recordings").chmod(0o750)
    data.chmod(0o755)
    (data / DB_NAME).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="linebox"):
        found = warn_loose(data, logging.getLogger("linebox"))
    assert {f.path for f in found} == {data, data / "recordings", data / DB_NAME}
    text = caplog.text
    assert f"directory {data} is open to other users (mode 0755)" in text, text
    assert f"fix with `chmod 700 {data}`" in text and f"`chmod 700 {data / 'recordings'}`" in text, text
    assert f"`chmod 600 {data / DB_NAME}`" in text, text


def schema4_database(data: Path, voicemail: dict) -> None:
    """A database as the release before PIN hashing left it, with PINs in the clear. SQLite's
    secure_delete is off, as on a build without it: an older PIN stays in the freed space."""
    private_dir(data)
    conn = sqlite3.connect(data / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA secure_delete=OFF")
    for script in MIGRATIONS[:4]:
        for stmt in _statements(script):
            conn.execute(stmt)
    conn.execute("PRAGMA user_version=4")
    conn.execute("INSERT INTO extensions (number, name, secret, created_at) VALUES ('1001', '', 'x', 0), "
                 "('1002', '', 'y', 0)")
    old = {"mailboxes": {"1001": {"pin": OLD_PIN}}}
    conn.execute("INSERT INTO documents (name, document) VALUES ('queues', '[]'), ('voicemail', ?), ('routes', '[]')",
                 (json.dumps(old),))
    # the PIN changed once: the new, longer row goes elsewhere in the page, the old one stays as free space
    conn.execute("UPDATE documents SET document = ? WHERE name = 'voicemail'", (json.dumps(voicemail),))
    conn.execute("PRAGMA wal_checkpoint")  # the old page version is in the main file now
    conn.close()


def test_plain_pins_of_an_older_box_become_hashes_and_leave_no_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    schema4_database(data, {"mailboxes": {"1001": {"pin": PIN, "unanswered": False}, "1002": {}},
                            "max_seconds": 120})
    before = raw_bytes(data)
    assert PIN.encode() in before and OLD_PIN.encode() in before  # what the migration must clear

    async def go() -> dict:
        store = await Store.open(data)
        try:
            (version,) = await (await store.conn.execute("PRAGMA user_version")).fetchone()
            assert version == len(MIGRATIONS) == 5
            return await store.document("voicemail")
        finally:
            await store.close()

    section = run(go())
    box = section["mailboxes"]["1001"]
    assert set(box) == {"pin_hash", "unanswered"} and box["unanswered"] is False and is_pin_hash(box["pin_hash"])
    assert section["mailboxes"]["1002"] == {} and section["max_seconds"] == 120
    assert pin_matches(box, PIN) and not pin_matches(box, OLD_PIN)
    after = raw_bytes(data)
    assert PIN.encode() not in after and OLD_PIN.encode() not in after
    raw = sqlite3.connect(data / DB_NAME)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()
    assert run(go()) == section  # opened again: nothing migrated twice


def test_a_pin_imported_in_the_clear_is_stored_and_exported_as_its_hash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    doc = {"version": 1, "extensions": [{"number": "1001", "name": "", "secret": "Lb-a-long-Secret-7!"}],
           "voicemail": {"mailboxes": {"1001": {"pin": PIN}}}}

    async def go() -> tuple[dict, dict]:
        store = await Store.open(data)
        try:
            assert configdoc.validate(doc) == []
            await stored.apply(store, doc)
            exported = await stored.export(store)
            # the export goes back in as it is (a backup restored): the hash is kept, not re-hashed
            assert configdoc.validate(exported) == []
            await stored.apply(store, exported)
            again = await stored.export(store)
            # a new PIN typed over it replaces the hash
            exported["voicemail"]["mailboxes"]["1001"] = {"pin": NEW_PIN}
            await stored.apply(store, exported)
            return again, await stored.export(store)
        finally:
            await store.close()

    first, changed = run(go())
    box = first["voicemail"]["mailboxes"]["1001"]
    assert set(box) == {"pin_hash"} and pin_matches(box, PIN)
    assert set(changed["voicemail"]["mailboxes"]["1001"]) == {"pin_hash"}
    assert pin_matches(changed["voicemail"]["mailboxes"]["1001"], NEW_PIN)
    assert PIN not in json.dumps(first) and NEW_PIN not in json.dumps(changed)
    on_disk = raw_bytes(data)
    assert PIN.encode() not in on_disk and NEW_PIN.encode() not in on_disk


@pytest.mark.parametrize("both", [True, False])
def test_an_import_refuses_a_pin_it_cannot_store(both: bool) -> None:
    from firmware.config.pins import hash_pin

    box = {"pin": PIN, "pin_hash": hash_pin(PIN)} if both else {"pin_hash": "md5$abc"}
    doc = {"version": 1, "extensions": [{"number": "1001", "name": "", "secret": "Lb-a-long-Secret-7!"}],
           "voicemail": {"mailboxes": {"1001": box}}}
    problems = {p.path for p in configdoc.validate(doc)}
    assert problems == {"voicemail.mailboxes.1001.pin" if both else "voicemail.mailboxes.1001.pin_hash"}
