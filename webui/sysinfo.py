"""System health for the dashboard: CPU, memory, disk, load, uptime and (where the board has a
sensor) temperature, read from /proc, /sys and statvfs.

The parsers take the files' text and return numbers, so tests feed them captured text; only
:func:`sample` reads the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


@dataclass(frozen=True)
class Health:
    cpu_percent: float | None  # None until two samples exist
    mem_total: int             # bytes
    mem_used: int
    disk_total: int
    disk_used: int
    load1: float
    uptime: float              # seconds
    temperature: float | None  # °C


def parse_cpu(stat_text: str) -> CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat; idle and iowait count as not busy."""
    fields = [int(x) for x in stat_text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # guest time is already inside user/nice
    return CpuTimes(total - idle, total)


def cpu_percent(before: CpuTimes, after: CpuTimes) -> float | None:
    dt = after.total - before.total
    if dt <= 0:
        return None
    return round(100.0 * (after.busy - before.busy) / dt, 1)


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, used) in bytes; used leaves out what the kernel can give back (MemAvailable)."""
    kb = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            kb[name] = int(parts[0])
    total = kb.get("MemTotal", 0)
    available = kb.get("MemAvailable", kb.get("MemFree", 0))
    return total * 1024, (total - available) * 1024


def parse_temperature(text: str) -> float:
    """A thermal zone's ``temp`` file: millidegrees Celsius."""
    return int(text.strip()) / 1000.0


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def cpu_times() -> CpuTimes | None:
    text = _read("/proc/stat")
    return parse_cpu(text) if text else None


def sample(data_dir: Path, previous: CpuTimes | None, current: CpuTimes | None) -> Health:
    mem_total, mem_used = parse_meminfo(_read("/proc/meminfo") or "")
    st = os.statvfs(data_dir)
    disk_total = st.f_blocks * st.f_frsize
    disk_used = (st.f_blocks - st.f_bfree) * st.f_frsize
    uptime_text = _read("/proc/uptime")
    temp_text = _read("/sys/class/thermal/thermal_zone0/temp")
    temperature = None
    if temp_text:
        try:
            temperature = parse_temperature(temp_text)
        except ValueError:
            temperature = None
    return Health(
        cpu_percent=cpu_percent(previous, current) if previous and current else None,
        mem_total=mem_total, mem_used=mem_used, disk_total=disk_total, disk_used=disk_used,
        load1=os.getloadavg()[0],
        uptime=float(uptime_text.split()[0]) if uptime_text else 0.0,
        temperature=temperature,
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}:{s:02d}"
