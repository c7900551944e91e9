"""Encrypted backups (webui.encrypted, webui.backup): what goes in comes out with the right
passphrase, at every size around the segment boundaries and read in any order; another
passphrase is refused before anything is unpacked; a file altered, cut short (also exactly at a
segment boundary), with segments swapped or dropped is refused; the encrypted file shows no SIP
secret and no PIN, and a plain backup shows no PIN either."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import pytest

from firmware.config.pins import hash_pin, pin_matches
from webui import backup, encrypted
from webui.encrypted import HEADER, SEGMENT, TAG

PASSPHRASE = "correct horse battery staple"
SECRET = "Lb-Sip-Secret-kQ7zWm!x"
PIN = "86420975"


def seal(plain: bytes, passphrase: str = PASSPHRASE, writes: int = 7) -> bytes:
    out = io.BytesIO()
    w = encrypted.Writer(out, passphrase)
    step = max(1, len(plain) // writes)
    for i in range(0, len(plain), step):  # in pieces, as gzip writes
        w.write(plain[i:i + step])
    w.finish()
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 17])
def test_what_goes_in_comes_out(size: int) -> None:
    plain = random.Random(size).randbytes(size)
    sealed = seal(plain)
    assert sealed.startswith(b"LINEBOX-ENCRYPTED-BACKUP\n") and encrypted.is_encrypted(sealed)
    segments = max(1, -(-size // SEGMENT))
    assert len(sealed) == HEADER + size + segments * TAG
    r = encrypted.Reader(io.BytesIO(sealed), PASSPHRASE)
    assert r.size == size and r.read() == plain
    # random access, as tarfile and gzip seek
    rng = random.Random(1)
    for _ in range(20):
        at = rng.randrange(size + 1)
        r.seek(at)
        n = rng.randrange(1, 2 * SEGMENT)
        assert r.read(n) == plain[at:at + n]
    r.seek(-min(size, 1), io.SEEK_END)
    assert r.read() == plain[-1:]


def test_each_file_has_its_own_salt_so_equal_backups_differ() -> None:
    a, b = seal(b"same"), seal(b"same")
    assert a != b and a[:len(encrypted.MAGIC)] == b[:len(encrypted.MAGIC)]


def test_another_passphrase_is_refused_at_once() -> None:
    sealed = seal(b"x" * (2 * SEGMENT))
    with pytest.raises(encrypted.WrongPassphrase):
        encrypted.Reader(io.BytesIO(sealed), PASSPHRASE + "!")
    with pytest.raises(encrypted.WrongPassphrase):
        encrypted.Reader(io.BytesIO(sealed), "")


def _cases(sealed: bytes) -> dict[str, bytes]:
    body = HEADER
    seg = SEGMENT + TAG
    flipped = bytearray(sealed)
    flipped[body + seg + 100] ^= 1
    return {
        "one bit flipped": bytes(flipped),
        "cut at a segment boundary": sealed[:body + 2 * seg],
        "cut mid-segment": sealed[:body + seg + 500],
        "cut inside the last tag": sealed[:-5],
        "segments swapped": sealed[:body] + sealed[body + seg:body + 2 * seg] + sealed[body:body + seg]
        + sealed[body + 2 * seg:],
        "a segment dropped": sealed[:body] + sealed[body + seg:],
        "a segment repeated": sealed[:body + seg] + sealed[body:],
        "bytes appended": sealed + b"\x00" * 40,
        "the header's cost altered": sealed[:len(encrypted.MAGIC) + 1] + b"\x0e" + sealed[len(encrypted.MAGIC) + 2:],
    }


def test_an_altered_or_shortened_file_is_refused() -> None:
    plain = os.urandom(3 * SEGMENT + 1000)
    sealed = seal(plain)
    for name, blob in _cases(sealed).items():
        with pytest.raises(encrypted.Undecryptable):
            r = encrypted.Reader(io.BytesIO(blob), PASSPHRASE)
            r.read()
            raise AssertionError(f"{name}: read without complaint")


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "prompts" / "uploads").mkdir(parents=True)
    (data / "prompts" / "uploads" / "promo.wav").write_bytes(b"RIFF" + os.urandom(3 * SEGMENT))
    return data


def _document() -> dict:
    return {"version": 1, "extensions": [{"number": "1001", "name": "", "secret": SECRET}],
            "voicemail": {"mailboxes": {"1001": {"pin_hash": hash_pin(PIN)}}}}


def test_an_encrypted_backup_shows_no_secret_and_restores_only_with_its_passphrase(tmp_path: Path) -> None:
    data = _data(tmp_path)
    out = io.BytesIO()
    manifest = backup.write(out, _document(), data, recordings=False, passphrase=PASSPHRASE)
    sealed = out.getvalue()
    assert encrypted.is_encrypted(sealed)
    assert SECRET.encode() not in sealed and PIN.encode() not in sealed and b"config.json" not in sealed

    for given, message in ((None, "encrypted: type the passphrase"), ("", "encrypted: type the passphrase"),
                           ("not the passphrase", "passphrase is wrong")):
        with pytest.raises(backup.PassphraseRefused, match=message):
            backup.check(io.BytesIO(sealed), data, passphrase=given)
        assert not list(data.glob(".restore-*"))
    damaged = sealed[:HEADER + SEGMENT + TAG]
    with pytest.raises(backup.Refused, match="cannot be read: .*cut short") as err:
        backup.check(io.BytesIO(damaged), data, passphrase=PASSPHRASE)
    assert not isinstance(err.value, backup.PassphraseRefused)

    checked = backup.check(io.BytesIO(sealed), data, passphrase=PASSPHRASE)
    try:
        assert checked.manifest == manifest and checked.document["extensions"][0]["secret"] == SECRET
        assert pin_matches(checked.document["voicemail"]["mailboxes"]["1001"], PIN)
        assert checked.files == ["prompts/uploads/promo.wav"]
        staged = checked.staging / "prompts" / "uploads" / "promo.wav"
        assert staged.read_bytes() == (data / "prompts" / "uploads" / "promo.wav").read_bytes()
        assert staged.stat().st_mode & 0o077 == 0 and checked.staging.stat().st_mode & 0o077 == 0
    finally:
        checked.discard()
    # the same archive from a file on disk
    path = tmp_path / "b.tar.gz.enc"
    path.write_bytes(sealed)
    backup.check(path, data, passphrase=PASSPHRASE).discard()


def test_a_plain_backup_carries_the_pin_only_as_its_hash(tmp_path: Path) -> None:
    data = _data(tmp_path)
    out = io.BytesIO()
    backup.write(out, _document(), data, recordings=False)
    plain = out.getvalue()
    assert not encrypted.is_encrypted(plain)
    checked = backup.check(io.BytesIO(plain), data, passphrase="ignored for a plain archive")
    try:
        config = (checked.staging / "config.json").read_bytes()
        assert PIN.encode() not in config and b"pin_hash" in config
        assert json.loads(config)["extensions"][0]["secret"] == SECRET  # a plain backup is not secret
    finally:
        checked.discard()


def test_a_new_passphrase_is_long_enough() -> None:
    assert encrypted.check_passphrase(PASSPHRASE) is None
    assert "at least 10" in encrypted.check_passphrase("short")
    assert "at most 1024" in encrypted.check_passphrase("x" * 1025)
