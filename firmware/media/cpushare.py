"""How much of a core this process may use: its cgroup's CPU quota (cgroup v2 ``cpu.max``, v1
``cpu.cfs_quota_us``), 1.0 without one.

The load a process reports ("share of a core") is what admission control refuses calls on. In
a container limited to half a CPU, or a media worker given a slow core's share by the benchmark
(scripts/bench sipp --worker-share), the process is saturated at 0.5, not at 1.0: measured
against a whole core it would never look busy while its calls lose packets. Read on every
report, not once: a quota can be set or changed while the process runs.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["allowed_share"]

_CGROUP = Path("/sys/fs/cgroup")


def allowed_share(proc_cgroup: str | None = None, root: Path = _CGROUP) -> float:
    """The share of one core this process may use (can be > 1 for a multi-core quota); 1.0 when
    no quota applies or none can be read. ``proc_cgroup``: the text of /proc/self/cgroup."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return 1.0
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":
            share = _v2(root / path / "cpu.max")
        elif "cpu" in controllers.split(","):
            share = _v1([root / controllers / path, root / "cpu" / path, root / "cpu,cpuacct" / path])
        else:
            continue
        if share is not None:
            return share
    return 1.0


def _v2(cpu_max: Path) -> float | None:
    try:
        quota, period = cpu_max.read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1(candidates: list[Path]) -> float | None:
    for group in candidates:
        try:
            quota = int((group / "cpu.cfs_quota_us").read_text())
            period = int((group / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota <= 0 or period <= 0 else quota / period
    return None
