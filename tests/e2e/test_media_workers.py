"""Media in worker processes (firmware/media/workers.py) through `linebox run` and pjsua2 phones:
calls are relayed by the workers with audio both ways, and a worker killed during calls ends
only its own call (with a CDR) while the other keeps its audio; the next call succeeds."""
from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.test_calls import _user, heard
from tests.peers.netutil import wait_until

EXTS = ("1001", "1002", "1003", "1004")
TONES = {"1001": 600.0, "1002": 1400.0, "1003": 900.0, "1004": 1800.0}

pytestmark = pytest.mark.alone  # four phones with audio checks: keep them off a loaded core


def _workers(box) -> dict:
    w = box.health()["media"]["workers"]
    assert w is not None, "the box runs no media workers"
    return w


def _phone(phones, box, ext):
    ph = phones(f"p{ext}", tone=TONES[ext])
    code = ph.register(server=box.sip_addr, user=ext, password=box.secret(ext))
    assert code == 200, f"{ext} REGISTER -> {code}\n{box.log_tail()}"
    return ph


def _connect(a, b, caller: str, callee: str) -> None:
    a.call(callee)
    inc = b.wait_incoming(timeout=10)
    assert caller in inc["from"], inc
    b.answer()
    a.wait_state("CONFIRMED")
    b.wait_state("CONFIRMED")


def _hears(ph, path, ext_heard: str, ext_own: str) -> tuple[bool, str]:
    return heard(path, TONES[ext_heard], TONES[ext_own])


def test_calls_run_in_workers_and_a_killed_worker_ends_only_its_call(box_factory, phones, tmp_path):
    box = box_factory("workers", extensions=EXTS, settings={"media.workers": "2"})
    p = {ext: _phone(phones, box, ext) for ext in EXTS}
    _connect(p["1001"], p["1002"], "1001", "1002")
    _connect(p["1003"], p["1004"], "1003", "1004")
    # each call's bridge goes to the least busy worker: one call each
    wait_until(lambda: sorted(_workers(box)["bridges"]) == [1, 1], 10, what="both calls relayed by the workers")
    w = _workers(box)
    assert w["running"] == 2 and len(set(w["pids"])) == 2 and os.getpid() not in w["pids"], w

    for ext in EXTS:
        p[ext].record(tmp_path / f"{ext}-before.wav")
    for ext in EXTS:
        p[ext].wait_rx_packets(100, timeout=15)
    for ext in EXTS:
        p[ext].stop_record()
    for ext, other in (("1001", "1002"), ("1002", "1001"), ("1003", "1004"), ("1004", "1003")):
        ok, desc = _hears(p[ext], tmp_path / f"{ext}-before.wav", other, ext)
        assert ok, f"{ext} should hear {other}'s {TONES[other]:g} Hz through a worker: {desc}"

    victim = w["pids"][0]
    os.kill(victim, signal.SIGKILL)

    # exactly one call ends, as a media failure, and the box says so in its CDR
    row = box.wait_cdr(1, 15, pred=lambda r: r.get("cause") == "media-failure")[0]
    assert row["disposition"] == "ANSWERED", row
    lost = (_user(row["caller"]), _user(row["callee"]))
    assert lost in (("1001", "1002"), ("1003", "1004")), row
    kept = ("1003", "1004") if lost == ("1001", "1002") else ("1001", "1002")
    for ext in lost:
        assert p[ext].wait_state("DISCONNECTED", timeout=15)["code"] == 200, f"{ext}'s leg should get a BYE"
    box.wait_health(lambda h: h["calls"] == 1, 10, "the other call is still up")

    # the other call keeps its audio
    for ext in kept:
        p[ext].record(tmp_path / f"{ext}-after.wav")
    for ext in kept:
        p[ext].wait_rx_packets(p[ext].stream_stat()["rx_pkt"] + 100, timeout=15)
        p[ext].stop_record()
    for ext, other in (kept, kept[::-1]):
        ok, desc = _hears(p[ext], tmp_path / f"{ext}-after.wav", other, ext)
        assert ok, f"{ext} should still hear {other} after the other worker died: {desc}"
    assert all(r.get("cause") != "media-failure" or (_user(r["caller"]), _user(r["callee"])) == lost
               for r in box.cdr()), box.cdr()

    # the next call gets a worker again (a new one in place of the dead) and its audio flows
    a, b = p[lost[0]], p[lost[1]]
    b.record(tmp_path / "again.wav")
    _connect(a, b, *lost)
    wait_until(lambda: sum(_workers(box)["bridges"]) == 2, 10, what="the new call relayed by a worker")
    assert victim not in _workers(box)["pids"], _workers(box)
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 100, timeout=15)
    b.stop_record()
    ok, desc = _hears(b, tmp_path / "again.wav", lost[0], lost[1])
    assert ok, f"the next call after the worker died should carry audio: {desc}"
    assert _workers(box)["restarts"] == 1, _workers(box)
    a.hangup()
    p[kept[0]].hangup()
    box.wait_health(lambda h: h["calls"] == 0 and sum(h["media"]["workers"]["bridges"]) == 0, 10,
                    "no call and no bridge left in the workers")
