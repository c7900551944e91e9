"""What the dashboard shows, gathered once per interval and shared by every open dashboard."""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from firmware.api.localapi import BoxUnreachable, LocalApi
from webui import sysinfo


HISTORY = 60
VOLUME_EVERY = 30.0  # seconds between recounts of today's calls


class Live:
    """One snapshot of the box and the system, shared by every dashboard stream: ten open
    dashboards cost the box one set of API calls per interval, not ten."""

    def __init__(self, api: LocalApi, data: Path, interval: float) -> None:
        self.api, self.data, self.interval = api, data, interval
        self._lock = threading.Lock()
        self._at = -1e9
        self._snap: dict[str, Any] = {}
        self._cpu: sysinfo.CpuTimes | None = None
        # the last HISTORY samples, for the dashboard's sparklines
        self.history: deque[sysinfo.Health] = deque(maxlen=HISTORY)
        self._volume_at = -1e9
        self._volume: list[int] = [0] * 24

    def snapshot(self, *, recount: bool = False) -> dict[str, Any]:
        """The shared snapshot; ``recount`` (a page load) counts today's calls afresh."""
        with self._lock:
            if recount:
                self._volume_at = -1e9
                self._at = -1e9
            now = time.monotonic()
            if now - self._at >= self.interval * 0.75:
                self._snap = self._take()
                self._at = now
            return self._snap

    def _take(self) -> dict[str, Any]:
        cpu = sysinfo.cpu_times()
        health = sysinfo.sample(self.data, self._cpu, cpu)
        self.history.append(health)
        snap: dict[str, Any] = {"health": health, "box_error": None, "history": list(self.history),
                                "calls": [], "registrations": [], "events": [], "box": {}, "ports": [],
                                "volume": self._today_volume()}
        self._cpu = cpu
        try:
            snap["box"] = self.api.health()
            snap["calls"] = self.api.calls()
            snap["registrations"] = self.api.registrations()
            snap["events"] = list(reversed(self.api.security_events()))[:10]
            snap["ports"] = self.api.ports()
        except BoxUnreachable as exc:
            snap["box_error"] = str(exc)
        return snap

    def _today_volume(self) -> list[int]:
        """Calls that started in each hour of today (local time), from the CDR."""
        now = time.monotonic()
        if now - self._volume_at >= VOLUME_EVERY:
            self._volume_at = now
            t = time.localtime()
            midnight = time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))
            counts = [0] * 24
            try:
                rows = self.api.cdrs(10000)
            except Exception:  # the database is the box's; a hiccup must not blank the dashboard
                return self._volume
            for r in rows:
                if r["start"] >= midnight:
                    counts[min(23, int((r["start"] - midnight) // 3600))] += 1
            self._volume = counts
        return self._volume
