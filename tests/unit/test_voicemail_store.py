"""Mailboxes on disk: a message is a WAV beside who left it; new -> old is one rename; a message
cut short by a stop is repaired at the next start; the section is validated with paths."""
from __future__ import annotations

from pathlib import Path

from firmware.media.recorder import CallRecorder
from firmware.config.pins import hash_pin, is_pin_hash, pin_matches, seal_pins
from firmware.config.voicemail import mailboxes_of, validate_voicemail
from firmware.store.messages import Mailboxes


def leave(boxes: Mailboxes, mailbox: str, caller: str, seconds: float, *, finish: bool = True) -> Path:
    path = boxes.new_message(mailbox, caller, "")
    rec = CallRecorder(str(path), mode="mono", sync_every=0.5)
    frame = (b"\x10\x00" * 160)
    for _ in range(int(seconds * 50)):
        rec.write(frame, None)
    rec.flush()
    if finish:
        rec.close()
    return path


def test_messages_new_first_then_heard_then_deleted(tmp_path: Path) -> None:
    boxes = Mailboxes(tmp_path / "voicemail")
    leave(boxes, "1001", "1002", 2.0)
    leave(boxes, "1001", "5551234", 1.0)
    msgs = boxes.messages("1001")
    assert [(m.caller, m.folder, round(m.seconds, 1)) for m in msgs] == [("1002", "new", 2.0), ("5551234", "new", 1.0)]
    assert boxes.new_count("1001") == 2 and boxes.messages("1009") == []
    boxes.move(msgs[0], "old")
    assert [(m.caller, m.folder) for m in boxes.messages("1001")] == [("5551234", "new"), ("1002", "old")]
    boxes.delete(boxes.messages("1001")[0])
    assert [m.caller for m in boxes.messages("1001")] == ["1002"]
    assert sorted(p.suffix for p in (tmp_path / "voicemail" / "1001" / "old").iterdir()) == [".json", ".wav"]


def test_a_message_cut_off_by_a_stop_is_repaired(tmp_path: Path) -> None:
    boxes = Mailboxes(tmp_path / "voicemail")
    path = leave(boxes, "1001", "1002", 1.5, finish=False)  # the power goes: only the .part is there
    assert boxes.messages("1001") == []
    assert Path(str(path) + ".part").exists()
    repaired = Mailboxes(tmp_path / "voicemail").recover()
    assert repaired == [str(path)]
    (msg,) = boxes.messages("1001")
    assert msg.caller == "1002" and msg.seconds >= 1.0


def test_validation() -> None:
    ok = {"mailboxes": {"1001": {}, "1002": {"unanswered": False}}, "max_seconds": 120}
    assert validate_voicemail(ok, extensions={"1001", "1002"}) == []
    assert mailboxes_of(ok) == {"1001", "1002"}
    assert validate_voicemail({"mailboxes": {"1001": {"pin": "0042"}}}, extensions={"1001"}) == []
    bad = {"mailboxes": {"1009": {}, "1001": {"unanswered": "yes"}, "1002": {"pin": 1}, "1003": {"pin": "12a4"},
                         "1004": {"pin": "123"}, "1005": {"greeting": "x"}}, "max_seconds": 5, "x": 1}
    errors = {e.path: e.message for e in validate_voicemail(bad, extensions={"1001", "1002", "1003", "1004", "1005"})}
    assert set(errors) == {"voicemail.x", "voicemail.max_seconds", "voicemail.mailboxes.1009",
                           "voicemail.mailboxes.1001.unanswered", "voicemail.mailboxes.1002.pin",
                           "voicemail.mailboxes.1003.pin", "voicemail.mailboxes.1004.pin", "voicemail.mailboxes.1005"}
    assert "no extension '1009'" in errors["voicemail.mailboxes.1009"]
    assert validate_voicemail([], extensions=None)[0].path == "voicemail"


def test_a_pin_opens_only_its_mailbox() -> None:
    box = seal_pins({"mailboxes": {"1001": {"pin": "4321"}}})["mailboxes"]["1001"]
    assert set(box) == {"pin_hash"} and "4321" not in box["pin_hash"]
    assert pin_matches(box, "4321")
    assert not pin_matches(box, "4322") and not pin_matches(box, "")
    assert not pin_matches({"pin": "4321"}, "4321")                  # digits are never compared as such
    assert not pin_matches({}, "") and not pin_matches({}, "4321")   # no PIN: never by *98
    assert not pin_matches(None, "4321")                              # no such mailbox


def test_a_pin_is_stored_as_a_salted_hash() -> None:
    one, two = hash_pin("4321"), hash_pin("4321")
    assert one != two and is_pin_hash(one) and is_pin_hash(two)  # a salt each: equal PINs hash apart
    section = {"mailboxes": {"1001": {"pin": "4321", "unanswered": False}, "1002": {"pin_hash": one}, "1003": {}},
               "max_seconds": 120}
    sealed = seal_pins(section)
    assert sealed["mailboxes"]["1001"]["unanswered"] is False and "pin" not in sealed["mailboxes"]["1001"]
    assert sealed["mailboxes"]["1002"] == {"pin_hash": one} and sealed["mailboxes"]["1003"] == {}
    assert sealed["max_seconds"] == 120 and section["mailboxes"]["1001"]["pin"] == "4321"  # a copy
    # a hash that would make every *98 try allocate a gigabyte is not one this box takes
    n, r, p, salt, digest = one.split("$")[1:]
    assert not is_pin_hash(f"scrypt${1 << 22}${r}${p}${salt}${digest}")
    assert not is_pin_hash(f"scrypt$1000${r}${p}${salt}${digest}")   # N a power of two
    assert not is_pin_hash("4321") and not is_pin_hash(None)


def test_validation_of_pins_and_their_hashes() -> None:
    ok = hash_pin("1234")
    assert validate_voicemail({"mailboxes": {"1001": {"pin_hash": ok}}}, extensions={"1001"}) == []
    bad = {"mailboxes": {"1001": {"pin": "1234", "pin_hash": ok}, "1002": {"pin_hash": "1234"}}}
    errors = {e.path: e.message for e in validate_voicemail(bad, extensions={"1001", "1002"})}
    assert "not both" in errors["voicemail.mailboxes.1001.pin"]
    assert 'give "pin"' in errors["voicemail.mailboxes.1002.pin_hash"]
