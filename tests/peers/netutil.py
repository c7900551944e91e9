"""Small network helpers for the e2e peers: free loopback ports and scoped waits.

Everything binds 127.0.0.1 only. A port found free can be taken by someone else
before it is used; callers that can retry on EADDRINUSE should.
"""
from __future__ import annotations

import os
import random
import socket
import time
from typing import Callable, TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


# Ports are drawn below the kernel's ephemeral range (32768-60999 here), where
# the box's, pjsua's and the OS's own outgoing sockets land: a port found free
# there can be taken by an unrelated connect() a moment later. Single ports and
# RTP ranges come from separate bands, and a port handed out is not handed out
# again for a while (a box's ports are free again once its test is over).
# Under pytest-xdist each worker draws from its own slice of both bands, so two
# workers never hand out the same port (each only remembers its own).


def _slice(band: tuple[int, int]) -> tuple[int, int]:
    try:
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        return band
    width = (band[1] - band[0]) // max(1, workers)
    return band[0] + worker * width, band[0] + (worker + 1) * width


_SINGLE = _slice((12000, 20000))
_RANGES = _slice((20000, 32700))
_REUSE_AFTER = 60.0
_given: dict[int, float] = {}
_rnd = random.Random()


def _recent(ports: range | list[int]) -> bool:
    now = time.monotonic()
    return any(now - _given.get(p, -_REUSE_AFTER) < _REUSE_AFTER for p in ports)


def _hand_out(ports: range | list[int]) -> None:
    now = time.monotonic()
    for p in ports:
        _given[p] = now


def _bindable(port: int, kinds: tuple[int, ...], host: str) -> bool:
    socks: list[socket.socket] = []
    try:
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def _pick(kinds: tuple[int, ...], host: str) -> int:
    lo, hi = _SINGLE
    for attempt in range(1000):
        port = _rnd.randrange(lo, hi)
        if (attempt >= 500 or not _recent([port])) and _bindable(port, kinds, host):
            _hand_out([port])
            return port
    raise OSError(f"no free port in {lo}-{hi}")


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port that is free on `host` right now."""
    return _pick((socket.SOCK_DGRAM,), host)


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now."""
    return _pick((socket.SOCK_STREAM,), host)


def free_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP on `host` (SIP listens on both)."""
    return _pick((socket.SOCK_DGRAM, socket.SOCK_STREAM), host)


def free_udp_range(count: int, *, even: bool = True, host: str = LOOPBACK,
                   lo: int = _RANGES[0], hi: int = _RANGES[1]) -> int:
    """The first port of `count` consecutive free UDP ports (even-aligned for RTP/RTCP)."""
    for attempt in range(400):
        start = _rnd.randrange(lo, hi - count)
        if even:
            start &= ~1
        span = range(start, start + count)
        if attempt < 200 and _recent(span):  # then any free range rather than none
            continue
        if all(_bindable(p, (socket.SOCK_DGRAM,), host) for p in span):
            _hand_out(span)
            return start
    raise OSError(f"no {count} consecutive free UDP ports")


def wait_until(cond: Callable[[], T], timeout: float, *, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll `cond` until it returns a truthy value; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
