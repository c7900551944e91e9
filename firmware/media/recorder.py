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
clean-up, disk-full detection, and the recorders it hands out.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from array import array
from dataclasses import dataclass

from .g711 import lin2alaw, lin2ulaw
from .mixer import add_saturate
from .wav import (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, WavError,
                  header_updates, make_header, repair)

__all__ = ["CallRecorder", "RecordingStore", "RecordingStopped", "DiskFull",
           "recover_all", "PART_SUFFIX"]

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# When a call is recorded: the words of every recording policy (firmware.config.recpolicy, a
# queue's own "recording"), defined here, below everything that names them.
POLICIES = ("always", "never", "on-demand")
_FORMATS = {"pcm16": WAVE_FORMAT_PCM, "ulaw": WAVE_FORMAT_MULAW, "alaw": WAVE_FORMAT_ALAW}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    """Media event: a recording ended and its file is final."""
    path: str
    seconds: float
    reason: str = "closed"          # "closed" | "disk_full" | "error"


@dataclass(frozen=True, slots=True)
class DiskFull:
    """Media event: recording stopped because the disk is (nearly) full."""
    path: str
    free_bytes: int | None
    detail: str


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
                 sync_every: float | None = None) -> None:
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
        self._lock = threading.Lock()                    # buffers (write vs flush)
        self._io_lock = threading.Lock()                 # the file (flush vs close)
        self._left = bytearray()
        self._right = bytearray()
        self._pending = 0                                # samples per channel buffered
        self._data_size = 0                              # octets of samples on disk
        self._since_sync = 0
        self._stopped = False
        self._closed = False
        self.disk_full: DiskFull | None = None
        self._result: RecordingStopped | None = None
        # O_EXCL: never clobber a recording (a leftover .part is recover_all's).
        self._fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._header_len = 0
        try:
            header = make_header(self._fmt, rate, self.channels, 0)
            self._write_all(header)
            self._header_len = len(header)
        except OSError:
            os.close(self._fd)
            os.unlink(self.part_path)
            raise

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
                pcm = add_saturate(bytes(left), bytes(right))
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
                if e.errno in _NO_SPACE:
                    return self._stop_disk_full(None, os.strerror(e.errno))
                self._finalize("error")
                raise
            self._data_size += written
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


def recover_all(directory: str) -> list[str]:
    """At start-up: repair every unfinished ``*.wav.part`` and rename it to ``.wav``.

    Must run before any recorder of this process opens files there. An empty
    part (the crash came before the header) is removed; one that is not a WAV
    at all is renamed ``*.bad`` and left for a human.
    """
    done = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(PART_SUFFIX):
            continue
        part = os.path.join(directory, name)
        final = part[:-len(PART_SUFFIX)]
        if os.path.getsize(part) == 0:
            os.unlink(part)
            continue
        try:
            report = repair(part)
        except WavError as e:
            log.error("cannot recover %s: %s", part, e)
            os.replace(part, part + ".bad")
            continue
        os.replace(part, final)
        log.info("recovered %s: %.2f s", final, report.seconds)
        done.append(final)
    if done:
        _fsync_dir(directory)
    return done


class RecordingStore:
    """A recordings directory with a quota and a free-space margin."""

    def __init__(self, directory: str, quota_bytes: int, *,
                 min_free_bytes: int = 16 << 20) -> None:
        self.directory = os.fspath(directory)
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes

    def recordings(self) -> list[tuple[float, int, str]]:
        """Finished recordings as (mtime, size, path), oldest first."""
        out = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.endswith(".wav") and e.is_file():
                    st = e.stat()
                    out.append((st.st_mtime, st.st_size, e.path))
        out.sort()
        return out

    def usage(self) -> int:
        """Octets used by recordings, unfinished ones included."""
        total = 0
        with os.scandir(self.directory) as it:
            for e in it:
                if (e.name.endswith(".wav") or e.name.endswith(PART_SUFFIX)) and e.is_file():
                    total += e.stat().st_size
        return total

    def enforce(self) -> list[str]:
        """Delete finished recordings, oldest first, until usage is within the quota."""
        total = self.usage()
        deleted = []
        for _, size, path in self.recordings():
            if total <= self.quota_bytes:
                break
            os.unlink(path)
            total -= size
            deleted.append(path)
        return deleted

    def expire(self, older_than: float) -> list[str]:
        """Delete finished recordings last written before ``older_than`` (the retention)."""
        deleted = []
        for mtime, _, path in self.recordings():
            if mtime >= older_than:
                break
            os.unlink(path)
            deleted.append(path)
        return deleted

    def free_bytes(self) -> int:
        return _free_bytes(self.directory)

    def disk_full(self) -> bool:
        return self.free_bytes() < self.min_free_bytes

    def recorder(self, name: str, **kwargs) -> CallRecorder:
        """A recorder for ``<directory>/<name>`` sharing this store's free-space margin."""
        kwargs.setdefault("min_free_bytes", self.min_free_bytes)
        return CallRecorder(os.path.join(self.directory, name), **kwargs)
