"""Small network helpers for the e2e peers: free loopback ports and scoped waits.

Everything binds 127.0.0.1 only. A port found free can be taken by someone else
before it is used; callers that can retry on EADDRINUSE should.
"""
from __future__ import annotations

import random
import socket
import time
from typing import Callable, TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP on `host` (SIP listens on both)."""
    for _ in range(50):
        port = free_udp_port(host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind((host, port))
            return port
        except OSError:
            continue
    raise OSError("no port free for both UDP and TCP")


def free_udp_range(count: int, *, even: bool = True, host: str = LOOPBACK,
                   lo: int = 20000, hi: int = 60000) -> int:
    """The first port of `count` consecutive free UDP ports (even-aligned for RTP/RTCP)."""
    rnd = random.Random()
    for _ in range(200):
        start = rnd.randrange(lo, hi - count)
        if even:
            start &= ~1
        socks: list[socket.socket] = []
        try:
            for p in range(start, start + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, p))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
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
