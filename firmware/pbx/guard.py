"""Flood and brute-force protection that runs before the SIP parser does any work (sans-I/O).

Per source IP: a token bucket, a ban after repeated authentication failures, and a drop of
well-known scanner User-Agents. An IP with a live registration is never banned and gets a
larger budget, so one office behind NAT is not locked out by a neighbour's typo. Everything is
in memory and bounded: a failed attempt costs no database write, and a flood of spoofed sources
cannot grow the tables without limit.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable

log = logging.getLogger("linebox.security")

# Matched on the raw bytes of the User-Agent line: these tools announce themselves and are never
# a phone. (sipvicious's svmap/svwar send "friendly-scanner" by default.)
SCANNER_UA = re.compile(
    rb"(?im)^user-agent[ \t]*:[^\r\n]*?("
    rb"friendly-scanner|sipvicious|sipcli|vaxsipuseragent|sundayddr|iwar|sipbomber|sip-scan|"
    rb"smap|sipscan|pplsip|sipptk|sip-scanner"
    rb")"
)

MAX_TRACKED = 20000  # per-IP entries kept at most; beyond, idle ones are dropped first
REGISTERED_RATE_FACTOR = 10.0


@dataclass(frozen=True)
class SecurityEvent:
    """What the security log and the web dashboard show. Never carries a secret."""

    time: float
    event: str  # auth-failure, ban, scanner, rate-limit, overload, overload-end
    source: str  # ip:port, or "box" for the box's own state (overload)
    user: str | None = None
    method: str | None = None
    reason: str | None = None


class Guard:
    def __init__(
        self,
        *,
        ban_failures: int = 5,
        ban_window: float = 5.0,
        ban_seconds: float = 300.0,
        rate: float = 200.0,
        is_registered: Callable[[str], bool] = lambda ip: False,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.configure(ban_failures=ban_failures, ban_window=ban_window, ban_seconds=ban_seconds, rate=rate)
        self.is_registered = is_registered
        self._wall = wall_clock
        self.bans: dict[str, float] = {}  # ip -> until
        self._failures: dict[str, deque[float]] = {}
        self._buckets: dict[str, list[float]] = {}  # ip -> [tokens, last]
        self._rate_logged: dict[str, float] = {}
        self.events: deque[SecurityEvent] = deque(maxlen=500)
        self.dropped = 0

    def configure(self, *, ban_failures: int, ban_window: float, ban_seconds: float, rate: float) -> None:
        self.ban_failures = ban_failures
        self.ban_window = ban_window
        self.ban_seconds = ban_seconds
        self.rate = rate
        self.burst = max(rate * 2.0, 20.0)

    # --- called per datagram / per framed TCP message, before parsing --------------------------

    def admit(self, data: bytes, ip: str, port: int, now: float) -> bool:
        until = self.bans.get(ip)
        if until is not None:
            if now < until:
                self.dropped += 1
                return False
            del self.bans[ip]
        registered = self.is_registered(ip)
        if not self._take_token(ip, now, registered):
            self.dropped += 1
            if now - self._rate_logged.get(ip, -1e9) >= 10.0:  # one event per 10 s, not one per packet
                self._rate_logged[ip] = now
                self._event(now, "rate-limit", ip, port)
            return False
        if SCANNER_UA.search(data, 0, 4096) is not None:
            self.dropped += 1
            self._event(now, "scanner", ip, port, reason="scanner user-agent")
            return False
        return True

    def _take_token(self, ip: str, now: float, registered: bool) -> bool:
        rate = self.rate * (REGISTERED_RATE_FACTOR if registered else 1.0)
        burst = self.burst * (REGISTERED_RATE_FACTOR if registered else 1.0)
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._sweep(now)
            self._buckets[ip] = [burst - 1.0, now]
            return True
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    # --- called by the authenticator -----------------------------------------------------------

    def auth_failed(self, ip: str, port: int, now: float, *, user: str | None, method: str, reason: str) -> None:
        self._event(now, "auth-failure", ip, port, user=user, method=method, reason=reason)
        if self.is_registered(ip):
            return
        times = self._failures.get(ip)
        if times is None:
            if len(self._failures) >= MAX_TRACKED:
                self._sweep(now)
            times = self._failures[ip] = deque(maxlen=max(self.ban_failures, 1))
        times.append(now)
        while times and now - times[0] > self.ban_window:
            times.popleft()
        if len(times) >= self.ban_failures:
            self.bans[ip] = now + self.ban_seconds
            del self._failures[ip]
            self._event(now, "ban", ip, port, user=user, method=method,
                        reason=f"{self.ban_failures} failures in {self.ban_window:g} s; banned {self.ban_seconds:g} s")

    def unban(self, ip: str) -> bool:
        return self.bans.pop(ip, None) is not None

    def banned(self, now: float) -> dict[str, float]:
        return {ip: until for ip, until in self.bans.items() if until > now}

    def box_event(self, now: float, kind: str, reason: str) -> None:
        """An event of the box itself (overload, overload-end: firmware.pbx.admission), shown with
        the others; its caller reports each episode once, not each refused request."""
        self._record(SecurityEvent(time=self._wall() if self._wall else now, event=kind, source="box",
                                   reason=reason))

    def _event(self, now: float, kind: str, ip: str, port: int, **fields: str | None) -> None:
        self._record(SecurityEvent(time=self._wall() if self._wall else now, event=kind, source=f"{ip}:{port}",
                                   **fields))

    def _record(self, ev: SecurityEvent) -> None:
        self.events.append(ev)
        log.warning("security %s", json.dumps(asdict(ev), separators=(",", ":")))

    def _sweep(self, now: float) -> None:
        """Drops idle per-IP state so the tables stay bounded under a spoofed-source flood."""
        idle = [ip for ip, (tokens, last) in self._buckets.items() if now - last > 10.0]
        for ip in idle:
            del self._buckets[ip]
        if len(self._buckets) >= MAX_TRACKED:
            self._buckets.clear()
        stale = [ip for ip, times in self._failures.items() if not times or now - times[-1] > self.ban_window]
        for ip in stale:
            del self._failures[ip]
        if len(self._failures) >= MAX_TRACKED:
            self._failures.clear()
        for ip in [ip for ip, t in self._rate_logged.items() if now - t > 60.0]:
            del self._rate_logged[ip]

    def housekeeping(self, now: float) -> None:
        for ip in [ip for ip, until in self.bans.items() if until <= now]:
            del self.bans[ip]
        self._sweep(now)
