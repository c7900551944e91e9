"""Voicemail PINs at rest: salted scrypt hashes (RFC 7914), never the digits.

A mailbox's PIN is typed as digits (``"pin": "4321"`` in the CLI, the web page or an imported
document) and stored only as ``"pin_hash"``, a self-describing string like the web admin's
passwords (``scrypt$N$r$p$salt$digest``) so the cost can be raised later without breaking old
hashes. :func:`seal_pins` is the one place a typed PIN becomes its hash; :func:`pin_matches` the
one place an entered PIN is checked.

What the hash buys: a copy of ``linebox.db``, an export or a backup no longer shows the PIN an
owner may also use for their bank card. What it cannot buy: a 4-digit PIN is 10,000 guesses, so
someone holding the hash finds it offline in minutes whatever the cost. The file modes of the
data directory and the backup passphrase are what keep the hash itself from being read; long
PINs (8 digits or more) are what make it expensive.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any, Mapping

# N=2**14, r=8 (16 MiB): tens of milliseconds on a Pi-class CPU, and checked off the event loop
# (firmware.pbx.voicemail), so a *98 login never stalls the calls the loop relays.
SCRYPT_N, SCRYPT_R, SCRYPT_P, DKLEN = 1 << 14, 8, 1, 32
# What a stored hash may ask for: an imported document must not make every *98 try cost a
# gigabyte. 128 * r * N bytes is what scrypt allocates.
MAX_MEMORY = 64 * 1024 * 1024
HASH = re.compile(r"scrypt\$(\d{1,8})\$(\d{1,2})\$(\d)\$([0-9a-f]{32})\$([0-9a-f]{64})")


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """The stored form of ``pin``: a new random salt each time, so equal PINs hash apart."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def is_pin_hash(value: Any) -> bool:
    """A ``pin_hash`` this box can check at a bounded cost (as :func:`hash_pin` writes them)."""
    m = HASH.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return False
    n, r, p = int(m[1]), int(m[2]), int(m[3])
    return n >= 2 and n & (n - 1) == 0 and 1 <= r and 1 <= p <= 4 and 128 * r * n <= MAX_MEMORY


# What a mailbox without a PIN, or no mailbox at all, is checked against: the same scrypt as a
# wrong PIN, so the time a try takes does not tell which of them it was. It never opens anything
# (pin_matches also requires a real hash), so its digest need not belong to any PIN.
_DUMMY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * DKLEN}"


def pin_matches(box: Mapping[str, Any] | None, entered: str) -> bool:
    """Whether ``entered`` opens a mailbox (one without a PIN opens only from its own extension).
    Constant-time in the digest; the same cost whether or not the mailbox has a PIN."""
    stored = box.get("pin_hash") if isinstance(box, Mapping) else None
    ok = is_pin_hash(stored)
    m = HASH.fullmatch(stored if ok else _DUMMY)
    assert m is not None
    want = bytes.fromhex(m[5])
    got = _scrypt(entered, bytes.fromhex(m[4]), int(m[1]), int(m[2]), int(m[3]), len(want))
    return hmac.compare_digest(got, want) and ok


def seal_pins(section: Any) -> Any:
    """The ``voicemail`` section as it is stored: each typed ``"pin"`` replaced by its
    ``"pin_hash"`` (a validated section; anything else is returned as it is)."""
    boxes = section.get("mailboxes") if isinstance(section, Mapping) else None
    if not isinstance(boxes, Mapping):
        return section
    sealed = {}
    for number, box in boxes.items():
        if isinstance(box, Mapping) and isinstance(box.get("pin"), str):
            box = {k: v for k, v in box.items() if k != "pin"} | {"pin_hash": hash_pin(box["pin"])}
        sealed[number] = box
    return {**section, "mailboxes": sealed}


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=2 * MAX_MEMORY)
