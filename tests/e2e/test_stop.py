"""Stopping `linebox run` during calls, with sipp on both sides of ten answered calls.

On SIGTERM the box takes no new call (503), ends every call (a BYE to each phone, a CDR row
closed with the cause "shutdown"), commits the rows and exits 0, within 3 s of the signal
however the phones behave: a phone that does not answer its BYE must not hold the stop. A
database another program keeps locked does not hold it either (the box then exits 1: rows were
lost). A second signal while it stops makes it leave at once, with what was committed intact.

The caller is sipp's uac_hold.xml (it stays on the line until the box sends BYE); the callee
is uas_answer.xml registered as 1002 (it answers and waits for BYE). Each scenario completes
only when its BYE arrived and was answered, which is how the test knows the phones heard of
the hang-up.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.box import (Box, BoxError, SipSocket, build_ack, build_request, digest_authorization, new_call_id,
                          new_tag, pick_challenge, sdp_offer)
from tests.peers.netutil import LOOPBACK
from tests.peers.sipp import SippProcess, run_sipp, start_sipp

CALLS = 10
STOP_LIMIT = 3.0  # seconds from SIGTERM to the process's exit: the requirement


@contextmanager
def answered_calls(box: Box, work: Path, calls: int = CALLS) -> Iterator[tuple[SippProcess, SippProcess]]:
    """`calls` answered calls from 1001 (sipp UAC) to 1002 (sipp UAS) through the box."""
    uas = start_sipp("uas_answer.xml", work_dir=work, name="uas", calls=calls, pcap_seconds=10.0,
                     args=["-timeout", "60s", "-timeout_error"])
    uac = None
    try:
        reg = run_sipp("register.xml", box.sip_addr, work_dir=work, name="register", user="1002",
                       password=box.secret("1002"), timeout=15,
                       keys={"user": "1002", "contact_host": LOOPBACK, "contact_port": uas.port,
                             "expires": 300})
        assert reg.ok and reg.successful == 1, reg.summary() + "\n" + box.log_tail()
        uac = start_sipp("uac_hold.xml", box.sip_addr, work_dir=work, name="uac", service="1002",
                         user="1001", password=box.secret("1001"), keys={"from_user": "1001"},
                         calls=calls, concurrent=calls, rate=calls, pcap_seconds=10.0,
                         args=["-timeout", "60s", "-timeout_error"])
        deadline = time.monotonic() + 20
        while sum(c["state"] == "answered" for c in box.calls()) < calls:
            if time.monotonic() > deadline:
                raise BoxError(f"{calls} calls not answered in 20 s: {box.calls()}\n{box.log_tail()}")
            time.sleep(0.1)
        yield uac, uas
    finally:
        for peer in (uac, uas):
            if peer is not None:
                if peer.alive():
                    os.kill(peer.proc.pid, signal.SIGCONT)  # in case a test left it stopped
                peer.stop()


def signal_and_time_exit(box: Box, sig: int = signal.SIGTERM, timeout: float = 15) -> tuple[int | None, float]:
    """Sends `sig` to `linebox run`; its exit status and the seconds until it exited."""
    assert box.proc is not None
    t0 = time.monotonic()
    box.proc.send_signal(sig)
    try:
        rc = box.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    box.stop()  # kills it if it is still there; closes the log
    return rc, took


def wait_log(box: Box, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while text not in box.log_text():
        if time.monotonic() > deadline:
            raise BoxError(f"{text!r} not in the box's log after {timeout:g} s\n{box.log_tail()}")
        time.sleep(0.02)


def authorized_invite(box: Box, sock: SipSocket, user: str, callee: str) -> bytes:
    """An INVITE from `user` to `callee` that answers a fresh digest challenge, ready to send."""
    host, port = box.sip_hostport
    ruri = f"sip:{callee}@{host}:{port}"

    def invite(cseq: int, extra: list[str]) -> bytes:
        return build_request("INVITE", ruri, sock=sock, from_user=user, to_uri=ruri, call_id=call_id,
                             cseq=cseq, from_tag=tag, contact_user=user, extra=extra,
                             body=sdp_offer(sock.local[0], 40000), content_type="application/sdp")

    call_id, tag = new_call_id(), new_tag()
    first = invite(1, [])
    challenge = sock.request(first)
    assert challenge is not None and challenge.status == 407, challenge and challenge.text()
    sock.send(build_ack(first, challenge))
    auth = digest_authorization(pick_challenge(challenge), method="INVITE", uri=ruri, user=user,
                                password=box.secret(user))
    return invite(2, [f"Proxy-Authorization: {auth}"])


def assert_rows_of_stopped_calls(rows: list[dict], calls: int = CALLS) -> None:
    assert len(rows) == calls, rows
    for r in rows:
        assert (r["caller"], r["callee"]) == ("1001", "1002"), r
        assert r["disposition"] == "ANSWERED" and r["cause"] == "shutdown", r
        assert r["end"] is not None and 0 < r["billsec"] <= r["duration"], r


@pytest.mark.alone
def test_sigterm_ends_ten_answered_calls_and_exits_within_3_s(box_factory, tmp_path):
    box: Box = box_factory("stop")
    with answered_calls(box, tmp_path / "sipp") as (uac, uas):
        rc, took = signal_and_time_exit(box)
        assert rc == 0, f"linebox run exited rc={rc} after {took:.2f} s\n{box.log_tail()}"
        assert took < STOP_LIMIT, f"linebox run took {took:.2f} s to exit on SIGTERM\n{box.log_tail()}"
        caller, callee = uac.wait(15), uas.wait(15)
    # Both scenarios end with a BYE received and answered: the phones know the calls are over.
    assert caller.ok and caller.successful == CALLS, caller.summary()
    assert callee.ok and callee.successful == CALLS, callee.summary()
    assert_rows_of_stopped_calls(box.cdr())
    # Nothing was left in progress for the next start to close as INTERRUPTED.
    box.start()
    assert_rows_of_stopped_calls(box.cdr())
    assert box.health()["calls"] == 0


@pytest.mark.alone
def test_phones_that_do_not_answer_the_bye_do_not_hold_the_stop(box_factory, tmp_path):
    box: Box = box_factory("stop-deaf")
    with answered_calls(box, tmp_path / "sipp") as (uac, uas):
        for peer in (uac, uas):  # frozen: the BYEs wait in their sockets, unanswered
            os.kill(peer.proc.pid, signal.SIGSTOP)
        with SipSocket(box.sip_hostport) as sock:
            invite = authorized_invite(box, sock, "1003", "1001")
            assert box.proc is not None
            t0 = time.monotonic()
            box.proc.send_signal(signal.SIGTERM)
            # While the box waits for the BYEs' answers it takes no new call.
            wait_log(box, "BYE/CANCEL(s) sent")
            refused = sock.request(invite, timeout=2)
            assert refused is not None and refused.status == 503, \
                f"a new INVITE while stopping got {refused and refused.text()}\n{box.log_tail()}"
            sock.send(build_ack(invite, refused))
        try:
            rc = box.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        box.stop()
        assert rc == 0, f"linebox run exited rc={rc} after {took:.2f} s\n{box.log_tail()}"
        assert took < STOP_LIMIT, f"linebox run took {took:.2f} s to exit on SIGTERM\n{box.log_tail()}"
        assert "unanswered" in box.log_text(), box.log_tail()
        for peer in (uac, uas):
            os.kill(peer.proc.pid, signal.SIGCONT)
        caller, callee = uac.wait(15), uas.wait(15)
    # Thawed, each finds its BYE and completes (its 200 goes to a box that has gone).
    assert caller.successful == CALLS, caller.summary()
    assert callee.successful == CALLS, callee.summary()
    assert_rows_of_stopped_calls(box.cdr())


@pytest.mark.alone
def test_a_second_signal_while_stopping_exits_at_once(box_factory, tmp_path):
    box: Box = box_factory("stop-twice")
    with answered_calls(box, tmp_path / "sipp") as (uac, uas):
        for peer in (uac, uas):  # the stop then waits for their answers to its BYEs
            os.kill(peer.proc.pid, signal.SIGSTOP)
        assert box.proc is not None
        box.proc.send_signal(signal.SIGTERM)
        wait_log(box, "BYE/CANCEL(s) sent")
        rc, took = signal_and_time_exit(box, signal.SIGINT)
        assert rc == 128 + signal.SIGINT, f"rc={rc}\n{box.log_tail()}"
        assert took < 0.5, f"linebox run took {took:.2f} s to exit on a second signal\n{box.log_tail()}"
    # The rows committed before are all there (each call's row was written when it was set
    # up); one the stop had not committed yet is closed as INTERRUPTED at the next start.
    rows = box.cdr()
    assert len(rows) == CALLS, rows
    assert all(r["disposition"] in ("ANSWERED", "in-progress") for r in rows), rows
    box.start()
    rows = box.cdr()
    assert len(rows) == CALLS, rows
    assert all((r["disposition"], r["cause"]) in (("ANSWERED", "shutdown"), ("INTERRUPTED", "interrupted"))
               for r in rows), rows


@pytest.mark.alone
def test_a_database_that_takes_no_rows_does_not_hold_the_stop(box_factory, tmp_path):
    box: Box = box_factory("stop-locked")
    with answered_calls(box, tmp_path / "sipp") as (uac, uas):
        # Another program holds the database's write lock (a long export, a stuck script): the
        # box's last rows cannot be committed, and waiting for them is not worth a hung stop.
        lock = sqlite3.connect(box.data / "linebox.db", isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            rc, took = signal_and_time_exit(box)
        finally:
            lock.close()
        assert took < STOP_LIMIT, f"linebox run took {took:.2f} s to exit on SIGTERM\n{box.log_tail()}"
        assert rc == 1, f"a stop that lost rows must say so: rc={rc}\n{box.log_tail()}"
        assert "were not committed" in box.log_text(), box.log_tail()
        caller, callee = uac.wait(15), uas.wait(15)
    assert caller.successful == CALLS and callee.successful == CALLS, caller.summary() + callee.summary()
    # The rows written when the calls were set up are there; the next start closes them.
    box.start()
    rows = box.cdr()
    assert len(rows) == CALLS, rows
    assert all(r["disposition"] == "INTERRUPTED" for r in rows), rows
