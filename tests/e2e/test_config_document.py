"""The configuration as one document: export, import elsewhere, refuse a bad field by its path
and change nothing, and apply a good one to a running box at once."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.e2e.box import Box, run_cli
from tests.e2e.test_ivr import MENUS


def test_export_import_round_trip_into_a_new_box(box: Box, tmp_path: Path) -> None:
    box.set("rtp.timeout", 30)
    doc_path = tmp_path / "ivr.json"
    doc_path.write_text(json.dumps(MENUS))
    box.cli("ivr", "import", str(doc_path))
    box.cli("ivr", "number", "500", "main")
    out = tmp_path / "config.json"
    box.cli("config", "export", str(out))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # it holds the SIP secrets
    exported = json.loads(out.read_text())
    assert [e["number"] for e in exported["extensions"]] == ["1001", "1002", "1003"]

    other = tmp_path / "other"
    assert run_cli(other, "init").returncode == 0
    r = run_cli(other, "config", "import", str(out))
    assert r.returncode == 0, r.describe()
    again = run_cli(other, "config", "export")
    assert json.loads(again.stdout) == exported


def test_a_bad_field_is_named_and_nothing_changes(box: Box, tmp_path: Path) -> None:
    before = box.cli("config", "export").stdout
    doc = json.loads(before)
    doc["extensions"].append({"number": "1004", "name": "Weak", "secret": "short"})
    doc["settings"]["rtp.timeout"] = "soon"
    doc["ivr_numbers"] = {"500": "nowhere"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    r = box.cli("config", "import", str(bad), check=False)
    assert r.returncode != 0
    for path in ("extensions[3].secret", "settings.rtp.timeout", "ivr_numbers.500"):
        assert path in r.stderr, (path, r.stderr)
    assert "nothing was changed" in r.stderr
    assert box.cli("config", "export").stdout == before


def test_import_applies_to_a_running_box_at_once(box: Box, phones, tmp_path: Path) -> None:
    doc = json.loads(box.cli("config", "export").stdout)
    doc["extensions"].append({"number": "2001", "name": "New Desk", "secret": "Fresh-Secret-Qz9w"})
    path = tmp_path / "new.json"
    path.write_text(json.dumps(doc))
    box.cli("config", "import", str(path))
    ph = phones("new2001")
    assert ph.register(server=box.sip_addr, user="2001", password=doc["extensions"][-1]["secret"]) == 200
