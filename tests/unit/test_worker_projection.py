"""WorkerPool.projected_share: what admission control asks before each new call (no process
started: the pool's workers are stand-ins carrying what a real one would have reported)."""
from __future__ import annotations

from types import SimpleNamespace

from firmware.media.workers import WorkerPool


def worker(bridges: int, reported: dict | None, waiting: int = 0):
    return SimpleNamespace(dead=False, bridges=dict.fromkeys(range(bridges)), waiting=[None] * waiting,
                           load=reported)


def pool(*workers) -> WorkerPool:
    p = WorkerPool(engine=None, count=len(workers))
    p.workers = list(workers)
    return p


def test_the_least_taken_worker_scaled_from_its_last_report():
    # 100 bridges at 0.40 when it reported; 150 now, plus the new call: 0.40 * 151 / 100
    p = pool(worker(150, {"cpu": 0.40, "bridges": 100}), worker(300, {"cpu": 0.90, "bridges": 300}))
    assert abs(p.projected_share() - 0.604) < 1e-9
    # bridges waiting for a starting worker count as taken
    p = pool(worker(100, {"cpu": 0.5, "bridges": 100}, waiting=99))
    assert abs(p.projected_share() - 1.0) < 1e-9


def test_unknown_until_a_worker_reported_bridges_or_while_one_would_start():
    assert pool(worker(10, None)).projected_share() is None
    assert pool(worker(10, {"cpu": 0.01, "bridges": 0})).projected_share() is None
    assert pool(None, worker(10, {"cpu": 0.5, "bridges": 10})).projected_share() is None
