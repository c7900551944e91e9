"""The engine's 20 ms media clock: one ticker per engine, absolute deadlines.

Every terminal (prompt, echo, IVR leg) and every bridge recording produces
one 20 ms frame per tick. Instead of one timer or task per stream, the
engine has one ``FrameClock``: a single ``loop.call_at`` callback per tick
that calls every subscriber in turn. Deadlines are absolute
(``t0 + n * period``), so a late wake-up does not push the following ticks
back and the send rate never drifts (``sleep(0.02)`` in a loop would add
the callback's own run time and the loop's lateness to every period).

Catch-up. If the loop was late by more than a period (a long callback, GC,
a busy core) the frames that should have gone out meanwhile are still owed:
the RTP timestamps advance by 160 per 20 ms of wall time whatever happens.
A tick therefore reports ``count`` frames to produce now (1 normally, more
after a stall, at most ``max_catchup``) and ``skipped`` frames that are not
sent at all (the stall was longer than catching up is worth: a phone's
jitter buffer would drop a long burst anyway); a subscriber advances its
RTP timestamp over those, so the receiver sees a loss, not a time shift.

The clock runs only while it has subscribers: an idle engine schedules
nothing.

Timer source. ``loop.call_at`` wakes through ``epoll_wait``, whose timeout
is in whole milliseconds (asyncio rounds it up; uvloop's clock itself is in
ms), so a tick fires 0-1 ms late, by an amount that changes every tick, and
that is send-interval jitter every phone sees. On Linux the clock therefore
uses a periodic ``timerfd`` (CLOCK_MONOTONIC, absolute first deadline, the
kernel re-arms it every 20 ms with ns precision) watched with
``loop.add_reader``; reading it returns the number of expirations, which is
exactly "frames owed". Measured on the 2-core VM, empty loop, 150 ticks:
call_at lateness up to 1.2 ms (asyncio) / 2 ms (uvloop), timerfd < 0.2 ms
(figures for 50 terminals in tests/unit/test_terminal.py and
scripts/bench_terminal.py). ``source="call_at"`` (and any platform without
timerfd) uses the portable path.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
import time
from typing import Protocol

__all__ = ["FrameClock", "TickClient", "ClockStats"]

log = logging.getLogger(__name__)

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create, libc.timerfd_settime   # noqa: B018 -- both must exist
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class _TimerFd:
    """A periodic CLOCK_MONOTONIC timerfd (Linux); ``read()`` -> expirations since last read."""

    def __init__(self) -> None:
        fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self.fd = fd

    def arm(self, first: float, period: float) -> None:
        """First expiry at monotonic time ``first`` (absolute), then every ``period``."""
        ns = int(round(first * 1e9))
        pns = int(round(period * 1e9))
        spec = _Itimerspec(_Timespec(pns // 1_000_000_000, pns % 1_000_000_000),
                           _Timespec(ns // 1_000_000_000, ns % 1_000_000_000))
        if _LIBC.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def disarm(self) -> None:
        _LIBC.timerfd_settime(self.fd, 0, ctypes.byref(_Itimerspec()), None)

    def read(self) -> int:
        try:
            return int.from_bytes(os.read(self.fd, 8), sys.byteorder)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        os.close(self.fd)


class TickClient(Protocol):
    """What the clock drives: anything with ``on_tick``."""

    def on_tick(self, frame: int, count: int, skipped: int, now: float) -> None:
        """Produce ``count`` frames, numbered ``frame .. frame + count - 1``.

        ``skipped`` frames (numbered just before ``frame``) were not produced;
        advance the RTP timestamp over them. ``now`` is the loop time.
        """


class ClockStats:
    """Counters: ticks run, ticks that found the loop a period or more late."""

    __slots__ = ("ticks", "late_ticks", "caught_up", "skipped", "max_late")

    def __init__(self) -> None:
        self.ticks = 0          # callbacks run
        self.late_ticks = 0     # callbacks that owed more than one frame
        self.caught_up = 0      # extra frames sent by late callbacks
        self.skipped = 0        # frames not sent at all (stall beyond max_catchup)
        self.max_late = 0.0     # worst lateness of a callback past its deadline, s

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return (f"ClockStats(ticks={self.ticks}, late={self.late_ticks}, "
                f"caught_up={self.caught_up}, skipped={self.skipped}, "
                f"max_late={self.max_late * 1000:.1f}ms)")


class FrameClock:
    """One 20 ms ticker per engine driving every subscriber from one callback.

    ``frame`` numbers are global to the clock (frames since it started), so
    a ``SharedSource`` read by many terminals in one tick advances once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, period: float = 0.020,
                 max_catchup: int = 5, source: str | None = None) -> None:
        if max_catchup < 1:
            raise ValueError("max_catchup must be >= 1")
        if source is None:
            source = "timerfd" if _LIBC is not None else "call_at"
        if source not in ("timerfd", "call_at"):
            raise ValueError("source must be 'timerfd' or 'call_at'")
        if source == "timerfd" and _LIBC is None:
            raise ValueError("timerfd is not available on this platform")
        self.source = source
        self._tfd: _TimerFd | None = None
        self._loop = loop
        self.period = period
        self.max_catchup = max_catchup
        self.stats = ClockStats()
        self._clients: dict[TickClient, None] = {}   # insertion-ordered set
        self._t0 = 0.0
        self._next = 0               # number of the next frame owed
        self._base = 0               # frame number due at t0
        self._handle: asyncio.TimerHandle | None = None
        self._ticking = False

    @property
    def running(self) -> bool:
        return self._handle is not None or self._ticking

    @property
    def frame(self) -> int:
        """The number of the next frame the clock will ask for."""
        return self._next

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client: TickClient) -> None:
        """Subscribe; the clock starts with its first subscriber (first tick at once)."""
        self._clients[client] = None
        if self._handle is None and not self._ticking:
            # frame numbers keep counting across restarts; deadlines re-base on t0
            self._base = self._next
            if self.source == "timerfd":
                if self._tfd is None:
                    self._tfd = _TimerFd()
                    self._loop.add_reader(self._tfd.fd, self._on_timerfd)
                self._t0 = time.monotonic()
                self._tfd.arm(self._t0, self.period)
                self._handle = True          # armed
            else:
                self._t0 = self._loop.time()
                self._handle = self._loop.call_at(self._t0, self._tick)

    def remove(self, client: TickClient) -> None:
        """Unsubscribe (safe from inside ``on_tick``); the clock stops with the last one."""
        self._clients.pop(client, None)
        if not self._clients:
            self._halt()

    def _halt(self) -> None:
        if self._handle is None:
            return
        if self._tfd is not None:
            self._tfd.disarm()
            self._tfd.read()                 # drop an expiry already queued
        else:
            self._handle.cancel()
        self._handle = None

    def close(self) -> None:
        self._clients.clear()
        self._halt()
        if self._tfd is not None:
            self._loop.remove_reader(self._tfd.fd)
            self._tfd.close()
            self._tfd = None

    def _on_timerfd(self) -> None:
        expirations = self._tfd.read()
        if not expirations or self._handle is None:
            return
        self._ticking = True
        try:
            self._run(time.monotonic(), expirations)
        finally:
            self._ticking = False
        if not self._clients:
            self._halt()

    def _tick(self) -> None:
        self._handle = None
        self._ticking = True
        try:
            self._run(self._loop.time(), None)
        finally:
            self._ticking = False
        if self._clients:
            self._handle = self._loop.call_at(self._t0 + (self._next - self._base) * self.period,
                                              self._tick)

    def _run(self, now: float, expirations: int | None) -> None:
        period = self.period
        base, t0 = self._base, self._t0
        frame = self._next
        if expirations is None:
            # frames whose deadline has passed: t0 + (k - base) * period <= now
            owed = base + int((now - t0) / period) + 1 - frame
        else:
            owed = expirations               # the kernel counted the deadlines passed
        stats = self.stats
        stats.ticks += 1
        if owed < 1:             # woke early (timer rounding): one frame, deadline-paced
            owed = 1
        late = now - (t0 + (frame - base) * period)
        if late > stats.max_late:
            stats.max_late = late
        skipped = 0
        if owed > 1:
            stats.late_ticks += 1
            if owed > self.max_catchup:
                skipped = owed - self.max_catchup
                owed = self.max_catchup
                stats.skipped += skipped
            stats.caught_up += owed - 1
        first = frame + skipped
        self._next = first + owed
        loop_now = self._loop.time()   # clients compare it with packet arrival times
        for client in tuple(self._clients):
            try:
                client.on_tick(first, owed, skipped, loop_now)
            except Exception:
                # One broken stream must not stop every other call's audio.
                log.exception("media clock: %r failed; removing it", client)
                self._clients.pop(client, None)
