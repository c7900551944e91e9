"""RTP port pool (pure, no sockets).

RFC 3550 §11: RTP uses an even port and RTCP the next odd one. The pool hands
out even ports in round-robin order: a released port goes to the back of the
queue, so it is reused as late as possible and stray packets of the previous
call (retransmissions, late RTP, a phone still sending) don't land in a new one.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PortPool", "PortPoolExhausted"]


class PortPoolExhausted(Exception):
    """Every RTP/RTCP port pair in the range is in use."""


class PortPool:
    """Even RTP ports from ``lo`` to ``hi`` inclusive, each with ``port + 1`` for RTCP.

    ``lo`` is rounded up to even; a pair is only offered if ``port + 1 <= hi``.
    """

    def __init__(self, lo: int, hi: int) -> None:
        first = lo + (lo & 1)
        if not (0 < first and first + 1 <= hi <= 65535):
            raise ValueError(f"no RTP/RTCP port pair in {lo}..{hi}")
        self.lo, self.hi = lo, hi
        self._free: deque[int] = deque(range(first, hi, 2))
        self._used: set[int] = set()
        self.capacity = len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self) -> int:
        """The least recently used free even port; raises PortPoolExhausted."""
        if not self._free:
            raise PortPoolExhausted(f"all {self.capacity} RTP ports of {self.lo}..{self.hi} in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Return a port to the back of the queue. Releasing a port not in use is an error."""
        try:
            self._used.remove(port)
        except KeyError:
            raise ValueError(f"port {port} is not allocated") from None
        self._free.append(port)

    def __contains__(self, port: int) -> bool:
        """True if ``port`` is currently allocated."""
        return port in self._used

    def __repr__(self) -> str:
        return f"PortPool({self.lo}, {self.hi}, in_use={self.in_use}/{self.capacity})"
