"""firmware.media.cpushare: the share of a core a cgroup quota allows, on fake cgroup trees."""
from __future__ import annotations

from pathlib import Path

from firmware.media.cpushare import allowed_share


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_v1_quota_is_its_share_of_the_period(tmp_path):
    _write(tmp_path / "cpu" / "bench-7" / "cpu.cfs_quota_us", "3000\n")
    _write(tmp_path / "cpu" / "bench-7" / "cpu.cfs_period_us", "10000\n")
    assert allowed_share("4:memory:/x\n1:cpu:/bench-7\n0::/\n", tmp_path) == 0.3


def test_a_v1_group_without_quota_allows_a_whole_core(tmp_path):
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert allowed_share("2:cpu,cpuacct:/\n", tmp_path) == 1.0


def test_v2_cpu_max_with_and_without_a_limit(tmp_path):
    _write(tmp_path / "box" / "cpu.max", "50000 100000\n")
    assert allowed_share("0::/box\n", tmp_path) == 0.5
    _write(tmp_path / "box" / "cpu.max", "max 100000\n")
    assert allowed_share("0::/box\n", tmp_path) == 1.0


def test_a_quota_of_several_cores_still_allows_one_thread_one_core(tmp_path):
    """A 2-CPU container must not halve a loop's load: the thread saturates at one core."""
    _write(tmp_path / "box" / "cpu.max", "200000 100000\n")
    assert allowed_share("0::/box\n", tmp_path) == 1.0


def test_a_parents_quota_limits_its_children(tmp_path):
    _write(tmp_path / "machine" / "cpu.max", "40000 100000\n")
    _write(tmp_path / "machine" / "box" / "cpu.max", "max 100000\n")
    assert allowed_share("0::/machine/box\n", tmp_path) == 0.4
    _write(tmp_path / "cpu" / "slice" / "cpu.cfs_quota_us", "25000\n")
    _write(tmp_path / "cpu" / "slice" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "cpu" / "slice" / "w1" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cpu" / "slice" / "w1" / "cpu.cfs_period_us", "100000\n")
    assert allowed_share("1:cpu:/slice/w1\n", tmp_path) == 0.25


def test_nothing_readable_allows_a_whole_core(tmp_path):
    assert allowed_share("1:cpu:/gone\n0::/gone\n", tmp_path) == 1.0
    assert allowed_share("", tmp_path) == 1.0
