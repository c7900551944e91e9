"""WAV files (RIFF/WAVE): 16-bit PCM and G.711 µ-law/A-law, read, write, repair.

Layout written here (the canonical one every player reads):

* PCM (format tag 1): ``RIFF size WAVE | fmt 16 | data size`` -> 44-byte header.
* G.711 (tag 6 A-law, tag 7 µ-law): ``fmt`` of 18 octets (cbSize = 0) and a
  ``fact`` chunk with the sample-frame count, as the RIFF spec requires for
  non-PCM formats -> 58-byte header.

``repair(path)`` is for files whose writer died (kill -9, power loss) before
it rewrote the header: the sizes are 0 (our provisional header), 0xFFFFFFFF
(streaming writers) or simply stale. The data chunk is then the last chunk,
so its size is recomputed from the file length, a partial trailing sample
frame is cut, and the RIFF, data and fact sizes are rewritten in place. A file
that is not RIFF/WAVE, or has no fmt/data chunk, is refused with WavError.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from dataclasses import dataclass

from .g711 import alaw2lin, ulaw2lin

__all__ = [
    "WAVE_FORMAT_PCM", "WAVE_FORMAT_ALAW", "WAVE_FORMAT_MULAW",
    "WavError", "WavInfo", "RepairReport",
    "make_header", "header_updates", "write_wav", "read_wav", "read_info", "repair",
]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_BIG_ENDIAN = sys.byteorder == "big"


class WavError(ValueError):
    """Not a WAV file we can read or repair (the message says why)."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    format: int                 # 1 PCM, 6 A-law, 7 µ-law
    rate: int
    channels: int
    bits: int                   # 16 for PCM, 8 for G.711
    data_offset: int            # file offset of the first sample
    data_size: int              # octets of sample data as the header says
    fact_offset: int | None = None   # offset of the fact sample count, if any

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8

    @property
    def frames(self) -> int:
        return self.data_size // self.block_align

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``repair`` found and did."""
    path: str
    repaired: bool              # False: the header was already right
    data_size_before: int       # as the old header said
    data_size: int              # now
    truncated: int              # octets of partial sample frame cut from the end
    frames: int
    seconds: float


def _bits(fmt: int) -> int:
    if fmt == WAVE_FORMAT_PCM:
        return 16
    if fmt in (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW):
        return 8
    raise WavError(f"unsupported WAV format tag {fmt}")


def make_header(fmt: int, rate: int, channels: int, data_size: int = 0) -> bytes:
    """The canonical header for ``data_size`` octets of samples (0 = provisional)."""
    bits = _bits(fmt)
    block = channels * bits // 8
    if fmt == WAVE_FORMAT_PCM:
        fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, fmt, channels, rate,
                                rate * block, block, bits)
        fact = b""
    else:
        fmt_chunk = struct.pack("<4sIHHIIHHH", b"fmt ", 18, fmt, channels, rate,
                                rate * block, block, bits, 0)
        fact = struct.pack("<4sII", b"fact", 4, data_size // block)
    body = fmt_chunk + fact + struct.pack("<4sI", b"data", data_size)
    pad = data_size & 1
    return struct.pack("<4sI4s", b"RIFF", 4 + len(body) + data_size + pad, b"WAVE") + body


def header_updates(fmt: int, channels: int, data_size: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) writes that set the sizes of a ``make_header`` file."""
    h = make_header(fmt, 8000, channels, data_size)
    n = len(h)
    ups = [(4, h[4:8]), (n - 4, h[n - 4:])]
    if fmt != WAVE_FORMAT_PCM:
        ups.append((46, h[46:50]))      # fact sample count (12 + 8 + 18 + 8)
    return ups


def _parse(head: bytes, file_size: int, path: str) -> WavInfo:
    """Walk the chunks up to ``data``; sizes are taken as written (may be wrong)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    fmt = None
    fact_offset = None
    while True:
        if pos + 8 > len(head):
            raise WavError(f"{path}: no data chunk")
        cid, size = struct.unpack_from("<4sI", head, pos)
        if cid == b"fmt ":
            if size < 16 or pos + 8 + 16 > len(head):
                raise WavError(f"{path}: short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, pos + 8)
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", head, pos + 8 + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"fact" and size >= 4:
            fact_offset = pos + 8
        elif cid == b"data":
            if fmt is None:
                raise WavError(f"{path}: data before fmt chunk")
            tag, channels, rate, bits = fmt
            if bits != _bits(tag) or channels < 1 or rate < 1:
                raise WavError(f"{path}: unsupported format (tag {tag}, {bits} bits, "
                               f"{channels} channels)")
            return WavInfo(tag, rate, channels, bits, pos + 8, size, fact_offset)
        pos += 8 + size + (size & 1)
        if pos > file_size:
            raise WavError(f"{path}: chunk {cid!r} runs past the end of the file")


def _read_head(f, path: str) -> tuple[bytes, int]:
    size = os.fstat(f.fileno()).st_size
    head = f.read(min(size, 1 << 16))
    return head, size


def read_info(path: str) -> WavInfo:
    with open(path, "rb") as f:
        head, size = _read_head(f, path)
    return _parse(head, size, path)


def write_wav(path: str, rate: int, channels: int, data, fmt: int = WAVE_FORMAT_PCM) -> None:
    """Write a whole file. ``data``: sample octets (PCM little-endian) or array('h')."""
    if isinstance(data, array):
        if _BIG_ENDIAN:
            data = array("h", data)
            data.byteswap()
        data = data.tobytes()
    block = channels * _bits(fmt) // 8
    if len(data) % block:
        raise WavError(f"{len(data)} octets is not a whole number of {block}-octet frames")
    with open(path, "wb") as f:
        f.write(make_header(fmt, rate, channels, len(data)))
        f.write(data)
        if len(data) & 1:
            f.write(b"\0")


def read_wav(path: str) -> tuple[int, int, array]:
    """(rate, channels, samples): samples interleaved as array('h'), G.711 decoded."""
    with open(path, "rb") as f:
        head, size = _read_head(f, path)
        info = _parse(head, size, path)
        available = size - info.data_offset
        if (info.data_size == 0xFFFFFFFF or info.data_size > available
                or (info.data_size == 0 and available > 0)):
            raise WavError(f"{path}: data size {info.data_size} does not match the file "
                           f"({size - info.data_offset} octets); run repair()")
        f.seek(info.data_offset)
        raw = f.read(info.data_size - info.data_size % info.block_align)
    if info.format == WAVE_FORMAT_MULAW:
        raw = ulaw2lin(raw)
    elif info.format == WAVE_FORMAT_ALAW:
        raw = alaw2lin(raw)
    samples = array("h")
    samples.frombytes(raw)
    if _BIG_ENDIAN:
        samples.byteswap()
    return info.rate, info.channels, samples


def _looks_like_chunk(tail: bytes, room: int) -> bool:
    if len(tail) < 8:
        return False
    cid, size = struct.unpack_from("<4sI", tail)
    return all(32 <= c < 127 for c in cid) and 8 + size <= room


def repair(path: str) -> RepairReport:
    """Fix the header sizes of a WAV cut short by a crash (see module doc).

    The file is rewritten in place (sizes, and truncation of a partial
    trailing sample frame) and fsync'ed. Raises WavError for a non-WAV file.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, min(size, 1 << 16), 0)
        info = _parse(head, size, path)
        available = size - info.data_offset
        declared = info.data_size
        block = info.block_align
        if declared in _UNKNOWN_SIZES or declared > available:
            new = available
        elif declared < available:
            # More octets than the header says: trailing chunks (LIST ...) are
            # legitimate; anything else is audio written after the last update.
            end = info.data_offset + declared + (declared & 1)
            tail = os.pread(fd, 8, end)
            new = declared if _looks_like_chunk(tail, size - end) else available
        else:
            new = declared
        keep_tail = new == declared and declared < available
        partial = new % block
        new -= partial
        riff_before = struct.unpack_from("<I", head, 4)[0]
        if keep_tail:
            riff = size - 8
            new_size = size
        else:
            new_size = info.data_offset + new + (new & 1)
            riff = new_size - 8
        changed = (new != declared or riff != riff_before or new_size != size)
        if info.fact_offset is not None and info.format != WAVE_FORMAT_PCM:
            fact = struct.unpack_from("<I", head, info.fact_offset)[0]
            changed = changed or fact != new // block
        if changed:
            if new_size != size:
                os.ftruncate(fd, new_size)      # cuts the partial frame; pads an odd size
            os.pwrite(fd, struct.pack("<I", riff), 4)
            os.pwrite(fd, struct.pack("<I", new), info.data_offset - 4)
            if info.fact_offset is not None and info.format != WAVE_FORMAT_PCM:
                os.pwrite(fd, struct.pack("<I", new // block), info.fact_offset)
            os.fsync(fd)
        return RepairReport(path, changed, declared, new, partial, new // block,
                            new // block / info.rate)
    finally:
        os.close(fd)
