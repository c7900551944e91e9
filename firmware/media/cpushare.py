"""How much of a core one thread of this process may use: the tightest CPU quota of its cgroup
and the cgroups above it (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), at most 1.0.

The load a process reports ("share of a core") is what admission control refuses calls on. In
a container limited to half a CPU, or a media worker given a slow core's share by the benchmark
(scripts/bench sipp --worker-share), the process is saturated at 0.5, not at 1.0: measured
against a whole core it would never look busy while its calls lose packets. Read on every
report, not once: a quota can be set or changed while the process runs. Never more than one
core: the loads are of one event loop's thread, saturated at a whole core however many the
container may use (a 2-CPU quota must not halve them).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["allowed_share"]

_CGROUP = Path("/sys/fs/cgroup")


def allowed_share(proc_cgroup: str | None = None, root: Path = _CGROUP) -> float:
    """The share of one core a thread of this process may use: 1.0 when no quota applies, none
    can be read, or the quota is a core or more. ``proc_cgroup``: the text of /proc/self/cgroup."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return 1.0
    share = 1.0
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            hierarchies = [root]
        elif "cpu" in controllers.split(","):
            hierarchies = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        # a quota on a parent group limits its children too: the tightest on the way up counts
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts), -1, -1):
            groups = [h.joinpath(*parts[:depth]) for h in hierarchies]
            quota = _v2(groups[0] / "cpu.max") if controllers == "" else _v1(groups)
            if quota is not None:
                share = min(share, quota)
    return share


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
