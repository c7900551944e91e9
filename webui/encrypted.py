"""The encrypted form of a backup: any byte stream sealed with a passphrase, written and read
a segment at a time, so a backup with hours of recordings never has to fit in memory.

Layout (all of it versioned by the header, so a later box can tell the formats apart)::

    header   77 bytes
      magic    25  b"LINEBOX-ENCRYPTED-BACKUP\\n"  (what `head -1` of the file shows)
      version   1  1: scrypt (RFC 7914) -> ChaCha20-Poly1305 (RFC 8439) in 64 KiB segments
      log2 N    1  \\
      r         1   } the scrypt cost the key was derived with
      p         1  /
      salt     16  random for every file, so every file has its own keys
      check    32  HMAC-SHA256 of the bytes above under the header key: proves the passphrase
    segments ...   each SEGMENT bytes of the archive (the last 0..SEGMENT) sealed with the
                   payload key, nonce = 11-byte big-endian segment number || 1 if last else 0,
                   the header as associated data; each is 16 bytes longer than what it holds

scrypt(passphrase, salt) gives 64 bytes: the payload key, then the header key. Numbering the
segments in the nonce and marking the last one is the STREAM construction (Hoang, Reyhanitabar,
Rogaway and Vizár, 2015; the one age uses): a segment cannot be moved, dropped or repeated, and a
file cut short at a segment boundary fails as surely as one cut anywhere else. Every byte a
:class:`Reader` returns has been authenticated first; it can seek (segments have a fixed size),
so the restore reads an encrypted archive exactly as it reads a plain one.

ChaCha20-Poly1305 rather than AES-GCM: the Pi-class CPUs a box runs on mostly lack AES
instructions, and ChaCha20 is fast and constant-time without them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from typing import IO

# cryptography is imported by the first encrypted backup or restore, not at start: its OpenSSL
# is 6 MB of the web admin's idle RSS (scripts/bench_memory.py).

MAGIC = b"LINEBOX-ENCRYPTED-BACKUP\n"
VERSION = 1
SEGMENT = 64 * 1024
TAG = 16
SALT = 16
CHECK = 32
_PARAMS = struct.Struct(">BBBB")  # version, log2 N, r, p
HEADER = len(MAGIC) + _PARAMS.size + SALT + CHECK
# 2**15 * r=8: 32 MiB and about a quarter of a second on a Pi-class CPU for each guess.
LOG2_N, R, P = 15, 8, 1
MAX_MEMORY = 64 * 1024 * 1024  # what a file may make the box allocate for its key (128 * r * N)
MIN_PASSPHRASE = 10


class Undecryptable(Exception):
    """The file cannot be read back; the message says why. (Not an OSError: tarfile and gzip
    turn those into "not a gzip file", and the admin should learn the real reason.)"""


class WrongPassphrase(Undecryptable):
    pass


class Damaged(Undecryptable):
    pass


def is_encrypted(head: bytes) -> bool:
    """Whether a file starting with ``head`` is in this format (any version)."""
    return head.startswith(MAGIC)


def _keys(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    n = 1 << log2_n
    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, dklen=64, maxmem=2 * MAX_MEMORY)
    return key[:32], key[32:]


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Writer:
    """Seals what is written to it into ``out``; :meth:`finish` writes the last segment (a file
    without it reads as damaged, as it should: it was cut short)."""

    def __init__(self, out: IO[bytes], passphrase: str, *, salt: bytes | None = None) -> None:
        salt = salt if salt is not None else os.urandom(SALT)
        payload_key, header_key = _keys(passphrase, salt, LOG2_N, R, P)
        head = MAGIC + _PARAMS.pack(VERSION, LOG2_N, R, P) + salt
        self.header = head + hmac.digest(header_key, head, "sha256")
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self._aead = ChaCha20Poly1305(payload_key)
        self._out = out
        self._buf = bytearray()
        self._index = 0
        self._written = 0
        self._finished = False
        out.write(self.header)

    def write(self, data: bytes) -> int:
        if self._finished:
            raise ValueError("write to a finished encrypted backup")
        self._buf += data
        self._written += len(data)
        # Keep the last segment back until finish(): only then is it known to be the last.
        while len(self._buf) > SEGMENT:
            self._seal(bytes(self._buf[:SEGMENT]), last=False)
            del self._buf[:SEGMENT]
        return len(data)

    def tell(self) -> int:
        return self._written

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Nothing to do before finish(): a segment is sealed only when it is full."""

    def finish(self) -> None:
        if not self._finished:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
            self._finished = True

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._index, last), chunk, self.header))
        self._index += 1


class Reader(io.RawIOBase):
    """The archive inside an encrypted file (``source`` must be seekable), authenticated a
    segment at a time as it is read. Raises :class:`WrongPassphrase` at once for another
    passphrase, :class:`Damaged` when the file was altered, cut short or is not this format."""

    def __init__(self, source: IO[bytes], passphrase: str) -> None:
        super().__init__()
        self._src = source
        source.seek(0)
        header = source.read(HEADER)
        if len(header) < HEADER or not is_encrypted(header):
            raise Damaged("the file is too short to be an encrypted LineBox backup")
        version, log2_n, r, p = _PARAMS.unpack_from(header, len(MAGIC))
        if version != VERSION:
            raise Undecryptable(f"this backup was encrypted in format version {version}; this box reads "
                                f"version {VERSION}: update the box first")
        if not (1 <= log2_n <= 24 and 1 <= r <= 32 and 1 <= p <= 4 and 128 * r << log2_n <= MAX_MEMORY):
            raise Damaged("its key parameters are out of range: it was altered")
        salt = header[len(MAGIC) + _PARAMS.size:-CHECK]
        payload_key, header_key = _keys(passphrase, salt, log2_n, r, p)
        if not hmac.compare_digest(hmac.digest(header_key, header[:-CHECK], "sha256"), header[-CHECK:]):
            raise WrongPassphrase("the passphrase is wrong: this backup was encrypted with another one")
        self._header = header
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self._aead = ChaCha20Poly1305(payload_key)
        body = source.seek(0, io.SEEK_END) - HEADER
        self._segments = max(1, -(-body // (SEGMENT + TAG)))
        self._last_len = body - (self._segments - 1) * (SEGMENT + TAG)
        if self._last_len < TAG:
            raise Damaged("it ends in the middle of a segment: the file was cut short")
        self.size = (self._segments - 1) * SEGMENT + self._last_len - TAG
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None
        self._segment(self._segments - 1)  # a file cut short says so before anything is unpacked

    def _segment(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        last = index == self._segments - 1
        self._src.seek(HEADER + index * (SEGMENT + TAG))
        sealed = self._src.read(self._last_len if last else SEGMENT + TAG)
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(_nonce(index, last), sealed, self._header)
        except InvalidTag:
            raise Damaged(f"segment {index + 1} of {self._segments} fails its authentication: the file "
                          "was altered, cut short or damaged") from None
        self._cached = (index, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fills ``buffer`` across segments (a short read only at the end of the archive)."""
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            index, offset = divmod(self._pos, SEGMENT)
            chunk = self._segment(index)[offset:offset + len(view) - done]
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done


def check_passphrase(passphrase: str) -> str | None:
    """Why a new backup passphrase is refused (None: it is fine). It is all that protects the SIP
    secrets in a backup that has left the box, so it must not be guessable in a few tries."""
    if len(passphrase) < MIN_PASSPHRASE:
        return f"use at least {MIN_PASSPHRASE} characters (this one has {len(passphrase)})"
    if len(passphrase) > 1024:
        return "use at most 1024 characters"
    return None
