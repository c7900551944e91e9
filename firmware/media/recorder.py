"""Call recording to WAV: crash-safe, buffered off the packet path, with a quota.

``CallRecorder`` takes one decoded 20 ms frame per side per tick (what the
jitter buffers give): ``write(left, right)``, where None means that side sent
nothing this tick and becomes silence, so the channels stay time-aligned.
``write`` only appends to memory (a lock and two ``bytearray`` extends,
~0.4 µs); ``flush`` does the rest -- interleaving (or the mono mix), optional
G.711 encoding, one
``os.write`` per chunk -- and is meant to be called off the packet path (from
a worker thread or at a cadence; ``flush_due`` says when a chunk, default 1 s,
is ready). If nobody flushes, ``write`` flushes itself once
``max_buffer_seconds`` are pending, so memory stays bounded.

Crash safety, chosen: write to ``<name>.wav.part``, rename at the end.

* At open, a provisional header (sizes 0) is written, so whatever is on disk
  after a crash is a WAV that ``wav.repair`` can fix: sizes recomputed from
  the file length, a partial trailing sample frame cut.
* At close: flush, rewrite the header sizes, fsync the file, rename
  ``.part`` -> ``.wav``, fsync the directory. A ``.wav`` is therefore always
  complete; a ``.part`` is always an unfinished recording, which
  ``recover_all`` repairs and renames at start-up. The rename (rather than
  rewriting in place with a sidecar marker) makes "finished" one atomic
  directory operation and needs no second file to keep consistent.
* Between flushes nothing is fsync'ed by default: kill -9 loses nothing that
  was flushed (the page cache survives the process); power loss loses what
  the kernel had not yet written back (up to ~30 s with default writeback).
  ``sync_every`` (seconds of audio) bounds that at the cost of fsyncs, which
  an SD card pays dearly for at hundreds of calls.

Disk full: a flush that hits ENOSPC/EDQUOT, or finds free space (statvfs)
below ``min_free_bytes``, stops the recording cleanly: the file is cut to the
last whole sample frame, finalised and renamed as above (playable), further
``write`` calls are no-ops, and a ``DiskFull`` event is returned (and kept in
``disk_full``). The call itself is not touched.

``RecordingStore`` is the directory policy: quota with oldest-first
clean-up, disk-full detection, and the recorders it hands out. Its usage is
a running total (one scan at start, then what its recorders write and what
it deletes), so nothing per call or per second walks the directory.

Bridge recordings (issue 11: a recorded call should cost little more than a
relayed one): the relay's tap only appends each packet to a list; batches of
them go to the engine's one ``RecordingWriter`` thread, where
``TapRecording`` = ``TapTimeline`` (placement by RTP timestamp on the wall
clock, gaps as silence, bulk G.711 decode) + ``CallRecorder`` (interleave or
mono mix, the ``.part`` file) does the work. terminal.BridgeRecording is the
loop side. A file can change hands mid-recording (``CallRecorder.suspend`` and
``resume``, ``TapRecording.suspend``/``resume``): a bridge relayed by a media
worker process is recorded there, by this same code.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from struct import Struct
from typing import Callable

from .g711 import alaw_decode_table, lin2alaw, lin2ulaw, ulaw_decode_table
from .mixer import HAVE_NUMPY, add_saturate
from .wav import (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, WavError,
                  header_updates, make_header, repair)

__all__ = ["CallRecorder", "RecordingStore", "RecordingStopped", "DiskFull",
           "recover_all", "recover", "PART_SUFFIX"]

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
_FORMATS = {"pcm16": WAVE_FORMAT_PCM, "ulaw": WAVE_FORMAT_MULAW, "alaw": WAVE_FORMAT_ALAW}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    """Media event: a recording ended and its file is final."""
    path: str
    seconds: float
    reason: str = "closed"          # "closed" | "disk_full" | "error" | "lost" (its media worker died)


@dataclass(frozen=True, slots=True)
class DiskFull:
    """Media event: recording stopped because the disk is (nearly) full."""
    path: str
    free_bytes: int | None
    detail: str


def _mix2(left: bytearray, right: bytearray) -> bytes:
    """The mono mix of two equal-length 16-bit LE channels, saturated (numpy when there: a
    1 s chunk in ~20 µs instead of ~1 ms; the in-band DTMF detector loads it on a box anyway)."""
    if HAVE_NUMPY and len(left) == len(right):
        import numpy as np
        mixed = np.frombuffer(left, "<i2").astype(np.int32)
        mixed += np.frombuffer(right, "<i2")
        np.clip(mixed, -32768, 32767, out=mixed)
        return mixed.astype("<i2").tobytes()
    return add_saturate(bytes(left), bytes(right))


def _free_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CallRecorder:
    """One call's recording (see module doc). ``path`` is the final ``.wav`` name."""

    # The raw write, overridable per instance (tests simulate ENOSPC with it).
    _os_write = staticmethod(os.write)

    def __init__(self, path: str, *, mode: str = "stereo", rate: int = 8000,
                 encoding: str = "pcm16", chunk_seconds: float = 1.0,
                 max_buffer_seconds: float = 10.0, min_free_bytes: int = 0,
                 sync_every: float | None = None,
                 account: Callable[[int, str | None], None] | None = None,
                 resume: tuple[int, int] | None = None) -> None:
        if mode not in ("stereo", "mono"):
            raise ValueError(f"mode must be 'stereo' or 'mono', not {mode!r}")
        if encoding not in _FORMATS:
            raise ValueError(f"encoding must be one of {sorted(_FORMATS)}")
        self.path = os.fspath(path)
        self.part_path = self.path + PART_SUFFIX
        self.directory = os.path.dirname(os.path.abspath(self.path))
        self.mode = mode
        self.rate = rate
        self.encoding = encoding
        self.channels = 2 if mode == "stereo" else 1
        self._fmt = _FORMATS[encoding]
        self._sample_octets = 2 if encoding == "pcm16" else 1
        self._block = self.channels * self._sample_octets
        self._frame = bytes(2 * (rate // 50))            # 20 ms of 16-bit silence
        self._chunk = int(chunk_seconds * rate)          # samples per channel
        self._max_buffer = int(max_buffer_seconds * rate)
        self._sync_bytes = int(sync_every * rate * self._block) if sync_every else 0
        self.min_free_bytes = min_free_bytes
        # What another process needs to go on writing this file (``suspend``).
        self._options = {"mode": mode, "rate": rate, "encoding": encoding, "chunk_seconds": chunk_seconds,
                         "max_buffer_seconds": max_buffer_seconds, "min_free_bytes": min_free_bytes,
                         "sync_every": sync_every}
        self._lock = threading.Lock()                    # buffers (write vs flush)
        self._io_lock = threading.Lock()                 # the file (flush vs close)
        self._left = bytearray()
        self._right = bytearray()
        self._pending = 0                                # samples per channel buffered
        self._data_size = 0                              # octets of samples on disk
        self._since_sync = 0
        self._stopped = False
        self._closed = False
        # The store's running total (RecordingStore.usage): octets added to the file as they are
        # written, and the final name once renamed. Never a directory scan.
        self.account = account
        self.disk_full: DiskFull | None = None
        self._result: RecordingStopped | None = None
        self._header_len = 0
        if resume is None:
            self._create()
        else:
            self._reopen(*resume)

    def _create(self) -> None:
        # O_EXCL: never clobber a recording (a leftover .part is recover_all's).
        self._fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            header = make_header(self._fmt, self.rate, self.channels, 0)
            self._write_all(header)
            self._header_len = len(header)
            if self.account is not None:
                self.account(len(header), None)
        except OSError:
            os.close(self._fd)
            os.unlink(self.part_path)
            raise

    def _reopen(self, header_len: int, data_size: int) -> None:
        self._fd = os.open(self.part_path, os.O_WRONLY)
        os.lseek(self._fd, header_len + data_size, os.SEEK_SET)
        self._header_len, self._data_size = header_len, data_size

    def suspend(self) -> dict | None:
        """Flush and close the file unfinished, for another recorder to go on writing it
        (``CallRecorder(state["path"], **state["options"], resume=state["at"])``, in this process
        or another); meanwhile it is a ``.part`` like any other, recoverable after a crash. The
        description, or None if the recording stopped instead (``close`` says how). This
        recorder is done with either way."""
        if self.flush() is not None:
            return None
        with self._io_lock:
            if self._stopped:
                return None
            self._stopped = self._closed = True
            os.close(self._fd)
        return {"path": self.path, "options": self._options, "at": [self._header_len, self._data_size],
                "seconds": self.frames_on_disk / self.rate}

    # --- packet path ------------------------------------------------------

    def write(self, left: bytes | None, right: bytes | None) -> DiskFull | None:
        """Append one tick: each side's 16-bit PCM frame, or None for silence."""
        if self._stopped:
            return None
        if left is None:
            left = self._frame if right is None else bytes(len(right))
        if right is None:
            right = bytes(len(left))
        elif len(left) != len(right):                   # keep channels aligned
            n = max(len(left), len(right))
            left, right = left.ljust(n, b"\0"), right.ljust(n, b"\0")
        with self._lock:
            self._left += left
            self._right += right
            self._pending += len(left) >> 1
            over = self._pending >= self._max_buffer
        if over:
            return self.flush()
        return None

    @property
    def flush_due(self) -> bool:
        """A chunk (``chunk_seconds``) of audio is waiting for ``flush``."""
        return self._pending >= self._chunk

    @property
    def seconds(self) -> float:
        """Audio written so far (flushed or buffered)."""
        return (self._data_size // self._block + self._pending) / self.rate

    @property
    def frames_on_disk(self) -> int:
        """Sample frames (one sample per channel) written to the file so far."""
        return self._data_size // self._block

    # --- I/O side -----------------------------------------------------------

    def _write_all(self, data) -> None:
        view = memoryview(data)
        while view:
            n = self._os_write(self._fd, view)
            view = view[n:]

    def flush(self) -> DiskFull | None:
        """Write what is buffered to the file (thread-safe against ``write``)."""
        with self._io_lock:
            if self._stopped:
                return self.disk_full
            with self._lock:
                left, right = self._left, self._right
                self._left, self._right = bytearray(), bytearray()
                self._pending = 0
            if not left:
                return None
            if self.channels == 2:
                pcm = array("h", bytes(2 * len(left)))
                pcm[0::2] = array("h", bytes(left))      # byte-order neutral: samples only move
                pcm[1::2] = array("h", bytes(right))
            else:                                        # mono: mixed here, in bulk
                pcm = _mix2(left, right)
            if self._fmt == WAVE_FORMAT_MULAW:
                data = lin2ulaw(pcm.tobytes() if isinstance(pcm, array) else bytes(pcm))
            elif self._fmt == WAVE_FORMAT_ALAW:
                data = lin2alaw(pcm.tobytes() if isinstance(pcm, array) else bytes(pcm))
            else:
                data = pcm
            if self.min_free_bytes:
                free = _free_bytes(self.directory)
                if free - len(data) < self.min_free_bytes:
                    return self._stop_disk_full(free, f"free space {free} below margin "
                                                      f"{self.min_free_bytes}")
            written = 0
            view = memoryview(data).cast("B")
            try:
                while written < len(view):
                    written += self._os_write(self._fd, view[written:])
            except OSError as e:
                self._data_size += written
                if self.account is not None:
                    self.account(written, None)
                if e.errno in _NO_SPACE:
                    return self._stop_disk_full(None, os.strerror(e.errno))
                self._finalize("error")
                raise
            self._data_size += written
            if self.account is not None:
                self.account(written, None)
            if self._sync_bytes:
                self._since_sync += written
                if self._since_sync >= self._sync_bytes:
                    os.fdatasync(self._fd)
                    self._since_sync = 0
            return None

    def _stop_disk_full(self, free: int | None, detail: str) -> DiskFull:
        log.warning("recording %s stopped: disk full (%s)", self.path, detail)
        self.disk_full = DiskFull(self.path, free, detail)
        self._finalize("disk_full")
        return self.disk_full

    def _finalize(self, reason: str) -> None:
        """Cut to whole frames, set the header sizes, fsync, rename, fsync the dir."""
        self._stopped = True
        fd = self._fd
        size = self._data_size - self._data_size % self._block
        try:
            end = self._header_len + size
            os.ftruncate(fd, end + (size & 1))     # a partial frame from a short write
            for offset, field in header_updates(self._fmt, self.channels, size):
                os.pwrite(fd, field, offset)
            os.fsync(fd)
        except OSError as e:       # leave the .part: recover_all repairs it on start
            log.error("recording %s: could not finalise (%s)", self.path, e)
            os.close(fd)
            self._result = RecordingStopped(self.part_path, size // self._block / self.rate,
                                            "error")
            return
        os.close(fd)
        os.replace(self.part_path, self.path)
        _fsync_dir(self.directory)
        if self.account is not None:   # the cut partial frame, then the name it is kept under
            self.account(end + (size & 1) - self._header_len - self._data_size, self.path)
        self._data_size = size
        self._result = RecordingStopped(self.path, size // self._block / self.rate, reason)

    def close(self) -> RecordingStopped:
        """Flush, finalise and return the event for the PBX (idempotent)."""
        if not self._closed:
            self._closed = True
            if not self._stopped:
                self.flush()
            with self._io_lock:
                if not self._stopped:
                    self._finalize("closed")
        assert self._result is not None
        return self._result

    def __enter__(self) -> "CallRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- bridge recordings: tapped packets, laid out in batches off the packet path --------------

_HDR = Struct("!BBHII")
_MASK32 = 0xFFFFFFFF
_HALF32 = 1 << 31
# G.711 -> 16-bit little-endian PCM as two bytes.translate tables (low and high octet): a whole
# batch decodes in C, a few ns a sample, where a per-sample table look-up costs ~25 ns.
_DECODE = {law: (bytes(v & 0xFF for v in table), bytes((v >> 8) & 0xFF for v in table))
           for law, table in (("PCMU", ulaw_decode_table), ("PCMA", alaw_decode_table))}
_PT = {"PCMU": 0, "PCMA": 8}             # RFC 3551 static payload types


def rtp_payload(data: bytes) -> bytes | None:
    """The payload of an RTP packet (CSRCs, extension and padding skipped), None if malformed."""
    n = len(data)
    if n < 12:
        return None
    b0 = data[0]
    start = 12 + ((b0 & 0x0F) << 2)
    end = n
    if b0 & 0x10:
        if start + 4 > n:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
    if b0 & 0x20:
        end -= data[-1]
    if start > end:
        return None
    return data[start:end]


class _Stream:
    """One direction of a tapped call: where its RTP timestamps fall on the recording."""

    __slots__ = ("pt", "lo", "hi", "ssrc", "last_ts", "last_ext", "off", "pcm",
                 "prev_end", "prev_now", "lag_min", "lag_n")

    def __init__(self, law: str) -> None:
        self.pt = _PT[law]
        self.lo, self.hi = _DECODE[law]
        self.ssrc: int | None = None       # None: not anchored yet
        self.last_ts = self.last_ext = 0   # newest timestamp and its unwrapped value
        self.off = 0                       # recording position = unwrapped timestamp + off
        self.pcm = bytearray()             # decoded samples from the timeline's base on
        self.prev_end: int | None = None   # newest unwrapped end at the previous batch
        self.prev_now = 0
        self.lag_min = 1 << 62
        self.lag_n = 0


class TapTimeline:
    """Lays a bridge's tapped RTP packets on the recording's wall-clock timeline (pure).

    The relay's tap only appends each packet to a list; every ``feed`` (a
    batch, ~0.5 s) gets both lists and the loop time they were taken at, and
    returns the 16-bit PCM of each side up to ``now - hold``, time-aligned.
    No per-packet clock: a packet is placed by its RTP timestamp (RFC 3550
    §5.1), so reordering, duplicates and loss need no arrival times:

    * a stream is *anchored* when it first appears (or its SSRC changes, or
      its timestamps jump by more than ``resync`` seconds): its newest packet
      is taken to have arrived just now (a running stream's newest packet is
      at most one packet interval plus jitter old), which fixes the offset
      from its timestamps to the recording's position;
    * every later packet goes where its timestamp says; gaps (loss, silence
      suppression, hold, a side that sends nothing) stay zeros, i.e.
      silence; a packet for a position already written (later than
      ``hold``) is dropped, a duplicate overwrites itself;
    * clock drift: while a stream runs, the lag of its newest packet behind
      "now" is watched. A lag below ``-ahead`` (the mapping runs ahead of
      time: a fast sender) or above ``resync`` (a timeline restarted without
      a new SSRC) re-anchors at once; a smallest lag above ``drift`` over
      ``drift_batches`` running batches (a slow sender) moves the stream
      later by that much less one packet. ±100 ppm costs one such step every
      10-15 minutes.

    Positions are in samples since the recording started (``start``); ``base`` samples are
    handed out already (a file another process began: see ``TapRecording.suspend``).
    """

    def __init__(self, start: float, laws: tuple[str, str], *, rate: int = 8000,
                 hold: float = 0.2, ahead: float = 0.08, resync: float = 1.0,
                 drift: float = 0.1, drift_batches: int = 10, base: int = 0) -> None:
        self.start = start
        self.rate = rate
        self.hold = int(hold * rate)
        self.ahead = int(ahead * rate)
        self.resync = int(resync * rate)
        self.drift = int(drift * rate)
        self.drift_batches = drift_batches
        self.base = base                    # samples handed out so far (per channel)
        self.resyncs = 0
        self.late = 0                       # packets for a position already handed out
        self.laws = laws
        self._streams = (_Stream(laws[0]), _Stream(laws[1]))

    def set_laws(self, laws: tuple[str, str]) -> None:
        """New streams (a transferred call's next pair): anchored afresh when they come."""
        self.laws = laws
        self._streams = (_Stream(laws[0]), _Stream(laws[1]))

    def feed(self, now: float, left: list, right: list,
             final: bool = False, pad: bool = True) -> tuple[bytes, bytes]:
        """Place a batch (raw RTP packets per side, taken at ``now``); the PCM that is ready.

        ``final``: everything placed comes out, and with ``pad`` silence up to ``now`` (the
        recording ends at ``now``). Without ``pad`` the time after the last packet is left to
        whoever goes on with the file: its first packets may land there."""
        now_pos = int((now - self.start) * self.rate)
        a, b = self._streams
        if left:
            self._place(a, left, now_pos)
        if right:
            self._place(b, right, now_pos)
        base = self.base
        if final:
            end = max(now_pos if pad else base, base + (len(a.pcm) >> 1), base + (len(b.pcm) >> 1))
        else:
            end = now_pos - self.hold
        n = end - base
        if n <= 0:
            return b"", b""
        self.base = end
        return self._take(a, n), self._take(b, n)

    @staticmethod
    def _take(s: _Stream, n: int) -> bytes:
        pcm = s.pcm
        octets = 2 * n
        if len(pcm) >= octets:
            out = bytes(pcm[:octets])
            del pcm[:octets]
            return out
        out = bytes(pcm) + bytes(octets - len(pcm))
        pcm.clear()
        return out

    def _place(self, s: _Stream, packets: list, now_pos: int) -> None:
        # Runs of packets with one SSRC and no timestamp jump, in arrival order.
        runs: list[tuple[int, bool, list[tuple[int, bytes]]]] = []
        pt = s.pt
        ssrc_now = s.ssrc
        last_ts, last_ext = s.last_ts, s.last_ext
        resync = self.resync
        cur = None
        for data in packets:
            if len(data) < 12 or data[1] & 0x7F != pt:
                continue                    # RFC 4733 events, comfort noise, runts
            b0, _, _, ts, ssrc = _HDR.unpack_from(data)
            payload = data[12:] if b0 == 0x80 else rtp_payload(data)
            if not payload:
                continue
            if ssrc != ssrc_now:
                ssrc_now, last_ts, last_ext = ssrc, ts, ts
                cur = []
                runs.append((ssrc, True, cur))
                d = 0
            else:
                d = (ts - last_ts) & _MASK32
                if d >= _HALF32:
                    d -= 1 << 32
                if d > resync or d < -resync:
                    last_ts, last_ext = ts, ts
                    cur = []
                    runs.append((ssrc, True, cur))
                    d = 0
                elif cur is None:
                    cur = []
                    runs.append((ssrc, False, cur))
            ext = last_ext + d
            if d > 0:
                last_ts, last_ext = ts, ext
            cur.append((ext, payload))
        s.last_ts, s.last_ext = last_ts, last_ext
        for ssrc, fresh, run in runs:
            newest = max(ext + len(p) for ext, p in run)
            if fresh or s.ssrc is None:
                self._anchor(s, ssrc, newest, now_pos)
            else:
                self._track(s, run, newest, now_pos)
            self._paste(s, run)
        if runs:
            s.prev_end = newest
            s.prev_now = now_pos

    def _anchor(self, s: _Stream, ssrc: int, newest: int, now_pos: int) -> None:
        if s.ssrc is not None:
            self.resyncs += 1
        s.ssrc = ssrc
        s.off = now_pos - newest
        s.prev_end = None
        s.lag_min, s.lag_n = 1 << 62, 0

    def _track(self, s: _Stream, run, newest: int, now_pos: int) -> None:
        lag = now_pos - (newest + s.off)
        if lag < -self.ahead or lag > self.resync:
            self._anchor(s, s.ssrc, newest, now_pos)
            return
        # Only a stream that ran through the whole batch says how late the mapping is: its
        # newest packet then arrived a packet interval (plus jitter) ago at most.
        prev = s.prev_end
        if prev is None or newest - prev < 0.8 * (now_pos - s.prev_now):
            return
        if lag < s.lag_min:
            s.lag_min = lag
        s.lag_n += 1
        if s.lag_n >= self.drift_batches:
            if s.lag_min > self.drift:
                s.off += s.lag_min - self.rate // 50
            s.lag_min, s.lag_n = 1 << 62, 0

    def _paste(self, s: _Stream, run) -> None:
        """Decode the run into ``s.pcm`` at its positions; consecutive packets in one go."""
        off = s.off - self.base
        limit = self.resync + self.hold + self.rate    # bounds the memory of a wild timestamp
        pieces: list[bytes] = []
        start = end = 0
        for ext, payload in run:
            pos = ext + off
            if pieces and pos == end:
                pieces.append(payload)
                end += len(payload)
                continue
            if pieces:
                self._decode_into(s, start, pieces, limit)
            pieces = [payload]
            start, end = pos, pos + len(payload)
        if pieces:
            self._decode_into(s, start, pieces, limit)

    def _decode_into(self, s: _Stream, pos: int, pieces: list[bytes], limit: int) -> None:
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if pos < 0:                                    # (partly) for what is written already
            if pos + len(data) <= 0:
                self.late += len(pieces)
                return
            data = data[-pos:]
            pos = 0
        n = len(data)
        if pos + n > limit:
            return
        pcm = s.pcm
        need = 2 * (pos + n)
        if len(pcm) < need:
            pcm.extend(bytes(need - len(pcm)))         # zeros: silence until something lands
        pcm[2 * pos:need:2] = data.translate(s.lo)
        pcm[2 * pos + 1:need:2] = data.translate(s.hi)


class TapRecording:
    """The writer-thread side of one bridge recording: timeline in, WAV data out.

    ``batch`` runs on the ``RecordingWriter`` thread, in the order submitted;
    ``finish`` after every batch (on a disk helper thread: it fsyncs). A
    batch whose flush hits a full disk (or another write error) ends the
    recording there: the recorder has finalised its file, and the events to
    report are returned. ``suspend`` instead of ``finish`` leaves the file to
    another ``TapRecording`` (``resume``), e.g. in a media worker process.
    """

    def __init__(self, recorder: CallRecorder, start: float, laws: tuple[str, str]) -> None:
        self.recorder = recorder
        self.timeline = TapTimeline(start, laws, rate=recorder.rate, base=recorder.frames_on_disk)
        self.ended: RecordingStopped | None = None

    @classmethod
    def resume(cls, state: dict, laws: tuple[str, str],
               account: Callable[[int, str | None], None] | None = None) -> "TapRecording":
        """Go on with a file ``suspend`` described, on the same timeline (``start`` is a
        time.monotonic() time, one clock for every process of the box)."""
        recorder = CallRecorder(state["path"], **state["options"], account=account, resume=tuple(state["at"]))
        return cls(recorder, state["start"], laws)

    def batch(self, now: float, left: list, right: list, laws: tuple[str, str],
              final: bool = False, pad: bool = True) -> list:
        """Place and write one batch; [] normally, [DiskFull?, RecordingStopped] if it ended."""
        if self.ended is not None:
            return []
        tl = self.timeline
        if laws != tl.laws:
            tl.set_laws(laws)
        rec = self.recorder
        try:
            pcm_l, pcm_r = tl.feed(now, left, right, final, pad)
            if pcm_l:
                full = rec.write(pcm_l, pcm_r) or rec.flush()
                if full is not None:
                    self.ended = rec.close()
                    return [full, self.ended]
        except OSError as e:        # the recorder finalised what it had ("error")
            log.error("recording %s: write failed: %s", rec.path, e)
            self.ended = rec.close()
            return [self.ended]
        return []

    def finish(self, now: float, left: list, right: list,
               laws: tuple[str, str]) -> tuple[list, RecordingStopped]:
        """The last batch, then the file finalised (sizes, fsync, rename).

        Returns the events not reported yet (ending with RecordingStopped; none if a batch
        already ended the recording) and the final RecordingStopped."""
        if self.ended is not None:
            return [], self.ended
        events = self.batch(now, left, right, laws, final=True)
        if self.ended is None:
            self.ended = self.recorder.close()
            events = [self.ended]
        return events, self.ended

    def suspend(self, now: float, left: list, right: list,
                laws: tuple[str, str]) -> tuple[list, dict | None]:
        """The last batch here, every placed sample written, the file closed unfinished.

        Returns the events not reported yet and the description ``resume`` takes; None in
        its place if a batch ended the recording (the events say how)."""
        events = self.batch(now, left, right, laws, final=True, pad=False)
        if self.ended is not None:
            return events, None
        full = self.recorder.flush()  # here, so that a full disk is reported like batch's
        if full is not None:
            self.ended = self.recorder.close()
            return [full, self.ended], None
        state = self.recorder.suspend()
        if state is None:
            self.ended = self.recorder.close()
            return [self.ended], None
        state["start"] = self.timeline.start
        return events, state


class RecordingWriter:
    """One thread that does every bridge recording's decoding, interleaving and disk writes.

    ``submit(fn, *args, then=cb)`` runs ``fn(*args)`` on the thread, jobs in
    submission order; ``then(result, error)`` is handed to ``post`` (e.g.
    ``loop.call_soon_threadsafe``) so it runs on the owner's loop. With
    ``disk=True`` the job, once every job before it has run, goes to a few
    helper threads instead: finalising a file is mostly waiting for fsync
    (twice: the file, then the directory after the rename), and 300 calls
    ending together must not wait for each other's. The thread
    starts on the first job and ends after ``idle`` seconds without one, so
    an engine that records nothing has no thread. A job that raises is
    logged (and its ``then`` gets the error); the thread goes on.
    """

    # Shared by every writer of the process, like asyncio's default executor; made on first use.
    _disk_pool = None
    _disk_pool_lock = threading.Lock()
    DISK_THREADS = 4

    def __init__(self, post: Callable[..., object], *, idle: float = 5.0,
                 name: str = "recording-writer") -> None:
        self._post = post
        self._idle = idle
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.jobs_done = 0
        self.busy_seconds = 0.0             # thread CPU time spent in jobs (diagnostics)

    def submit(self, fn: Callable[..., object], *args, then=None, disk: bool = False) -> None:
        if disk:
            fn, args = self._to_disk_pool, (fn, args, then)
            then = None
        with self._lock:
            self._jobs.put((fn, args, then))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        jobs = self._jobs
        cpu = time.thread_time
        while True:
            try:
                fn, args, then = jobs.get(timeout=self._idle)
            except queue.Empty:
                with self._lock:
                    if jobs.empty():
                        self._thread = None
                        return
                continue
            c0 = cpu()
            self._call(fn, args, then)
            self.busy_seconds += cpu() - c0
            self.jobs_done += 1

    def _call(self, fn, args, then) -> None:
        result = error = None
        try:
            result = fn(*args)
        except Exception as e:              # a bug in a job: logged, the other calls go on
            log.exception("recording writer: %r failed", fn)
            error = e
        if then is not None:
            try:
                self._post(then, result, error)
            except RuntimeError:            # the loop is closed: nobody left to tell
                log.warning("recording writer: result of %r dropped, loop closed", fn)

    def _to_disk_pool(self, fn, args, then) -> None:
        cls = RecordingWriter
        with cls._disk_pool_lock:
            if cls._disk_pool is None:
                from concurrent.futures import ThreadPoolExecutor
                cls._disk_pool = ThreadPoolExecutor(cls.DISK_THREADS,
                                                    thread_name_prefix="recording-disk")
        cls._disk_pool.submit(self._call, fn, args, then)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has run (a ``disk`` job: has been handed to
        its helper thread). For tests, benchmarks, shutdown."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)


def recover_all(directory: str) -> list[str]:
    """At start-up: repair every unfinished ``*.wav.part`` and rename it to ``.wav``.

    Must run before any recorder of this process opens files there.
    """
    done = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(PART_SUFFIX):
            found = recover(os.path.join(directory, name), sync=False)
            if found is not None:
                done.append(found[0])
    if done:
        _fsync_dir(directory)  # the renames, once for them all: a power cut can come again
    return done


def recover(part: str, sync: bool = True) -> tuple[str, float] | None:
    """Repair one unfinished recording and rename it to its final name: (that name, seconds).

    None for a part that holds nothing (the crash came before the header: removed) or is not
    a WAV at all (renamed ``*.bad`` and left for a human). Nobody may be writing it: its
    writer is dead or this process is starting.
    """
    final = part[:-len(PART_SUFFIX)]
    if os.path.getsize(part) == 0:
        os.unlink(part)
        return None
    try:
        report = repair(part)
    except WavError as e:
        log.error("cannot recover %s: %s", part, e)
        os.replace(part, part + ".bad")
        return None
    os.replace(part, final)
    if sync:  # (recover_all syncs the directory once, after the last)
        _fsync_dir(os.path.dirname(final))
    log.info("recovered %s: %.2f s", final, report.seconds)
    return final, report.seconds


class _Tally:
    """One recording's share of its store's running total (``CallRecorder(account=...)``)."""

    __slots__ = ("store", "size")

    def __init__(self, store: "RecordingStore") -> None:
        self.store = store
        self.size = 0

    def __call__(self, delta: int, finished: str | None) -> None:
        st = self.store
        with st._lock:
            self.size += delta
            st._total += delta
            if finished is not None:
                st._finished.append((time.time(), self.size, finished))


class RecordingStore:
    """A recordings directory with a quota and a free-space margin.

    Usage is a running total, not a scan: the directory is walked once, here
    (finished ``.wav`` by mtime, plus any ``.part`` left over), then each
    recorder this store hands out adds what it writes and reports its final
    name, and ``enforce`` / ``expire`` subtract what they delete. So neither
    the per-call ``enforce`` nor ``usage`` touches the directory, however many
    thousand files it holds, and nothing can race with a ``.part`` being
    renamed. Files put there or removed behind the store's back are seen at
    the next start (a deletion that finds the file gone just moves on).
    """

    def __init__(self, directory: str, quota_bytes: int, *,
                 min_free_bytes: int = 16 << 20) -> None:
        self.directory = os.fspath(directory)
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes
        self._lock = threading.Lock()       # the writer thread, executors and the loop share it
        finished, total = [], 0
        with os.scandir(self.directory) as it:
            for e in it:
                if not (e.name.endswith(".wav") or e.name.endswith(PART_SUFFIX)):
                    continue
                try:
                    if not e.is_file():
                        continue
                    st = e.stat()
                except FileNotFoundError:   # gone meanwhile (another process's rename)
                    continue
                total += st.st_size
                if e.name.endswith(".wav"):
                    finished.append((st.st_mtime, st.st_size, e.path))
        finished.sort()
        self._finished: deque[tuple[float, int, str]] = deque(finished)   # oldest first
        self._total = total

    def recordings(self) -> list[tuple[float, int, str]]:
        """Finished recordings as (mtime, size, path), oldest first."""
        with self._lock:
            return list(self._finished)

    def usage(self) -> int:
        """Octets used by recordings, unfinished ones included (no I/O)."""
        return self._total

    def _delete_oldest(self, keep) -> list[str]:
        """Delete finished recordings from the oldest while ``keep(mtime, total)`` is false."""
        deleted = []
        while True:
            with self._lock:
                if not self._finished or keep(self._finished[0][0], self._total):
                    return deleted
                mtime, size, path = self._finished.popleft()
                self._total -= size
            try:
                os.unlink(path)
            except FileNotFoundError:       # removed by hand: its octets are gone all the same
                pass
            except OSError as e:            # logged, never a failed future nobody reads
                log.error("recordings: cannot delete %s: %s", path, e)
                with self._lock:            # still there: still counted, still first in line
                    self._total += size
                    self._finished.appendleft((mtime, size, path))
                return deleted
            deleted.append(path)

    def enforce(self) -> list[str]:
        """Delete finished recordings, oldest first, until usage is within the quota.

        Runs after every recording; within the quota it costs one comparison."""
        return self._delete_oldest(lambda mtime, total: total <= self.quota_bytes)

    def expire(self, older_than: float) -> list[str]:
        """Delete finished recordings last written before ``older_than`` (the retention)."""
        return self._delete_oldest(lambda mtime, total: mtime >= older_than)

    def free_bytes(self) -> int:
        return _free_bytes(self.directory)

    def disk_full(self) -> bool:
        return self.free_bytes() < self.min_free_bytes

    def recorder(self, name: str, **kwargs) -> CallRecorder:
        """A recorder for ``<directory>/<name>`` sharing this store's free-space margin."""
        kwargs.setdefault("min_free_bytes", self.min_free_bytes)
        return CallRecorder(os.path.join(self.directory, name), account=_Tally(self), **kwargs)
