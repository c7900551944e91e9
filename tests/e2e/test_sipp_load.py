"""Load through `linebox run` with sipp (a peer we did not write): 50 concurrent calls,
20 ms G.711 RTP both ways, all complete, and no call leaks in the box afterwards.

The sipp UAS registers itself as extension 1002 (register.xml, Contact pointing at the
UAS); the sipp UAC calls 1002 as extension 1001, answering the box's 407 with -au/-ap.
(sipp's digest uses uri="sip:<box ip>:<port>", not the Request-URI: the box has to
hash the header's uri.)
"""
from __future__ import annotations

import threading

import pytest

from tests.e2e.box import Box
from tests.e2e.test_calls import heard
from tests.peers.netutil import LOOPBACK
from tests.peers.sipp import run_sipp, start_sipp

CALLS = 50
CALL_MS = 4000


@pytest.mark.alone
def test_fifty_concurrent_calls_with_rtp_both_ways(box_factory, phones, tmp_path):
    # 51 calls (50 sipp + 1 phone), 2 legs each, RTP+RTCP per leg: 204 ports and some spare
    box: Box = box_factory("load", rtp_count=400)
    with start_sipp("uas_answer.xml", work_dir=tmp_path, name="uas", payload_type=8,
                    tone_hz=1400, pcap_seconds=5.0) as uas:
        reg = run_sipp("register.xml", box.sip_addr, work_dir=tmp_path, name="register",
                       user="1002", password=box.secret("1002"), timeout=15,
                       keys={"user": "1002", "contact_host": LOOPBACK,
                             "contact_port": uas.port, "expires": 300})
        assert reg.ok and reg.successful == 1, reg.summary() + "\n" + box.log_tail()
        box.wait_health(lambda h: h.get("registrations", 0) >= 1, 5, "the UAS registered")

        peak = {"calls": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    peak["calls"] = max(peak["calls"], int(box.health(timeout=2)["calls"]))
                except Exception as e:  # the assertion below reports what was seen
                    peak["error"] = repr(e)
                stop.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        uac_proc = None
        try:
            uac_proc = start_sipp("uac_call.xml", box.sip_addr, work_dir=tmp_path, name="uac",
                                  service="1002", user="1001", password=box.secret("1001"),
                                  keys={"from_user": "1001"}, calls=CALLS, concurrent=CALLS,
                                  rate=CALLS, call_ms=CALL_MS, payload_type=8, tone_hz=600,
                                  pcap_seconds=5.0)
            # A pjsua phone joins the load: it must hear the sipp UAS's tone through the box.
            # Its failure is reported after sipp's, which says more about a load failure.
            phone_error: AssertionError | None = None
            try:
                c = phones("c1003")
                assert c.register(server=box.sip_addr, user="1003",
                                  password=box.secret("1003")) == 200
                c.record(tmp_path / "c-hears.wav")
                c.call("1002")
                c.wait_state("CONFIRMED", timeout=15)
                c.wait_rx_packets(100, timeout=15)
                c.stop_record()
                c.hangup()
                c.wait_state("DISCONNECTED")
            except AssertionError as e:
                phone_error = e
            uac = uac_proc.wait(60)
        finally:
            stop.set()
            watcher.join(5)
            if uac_proc is not None:
                uac_proc.stop()
        served = uas.stop()

    assert uac.ok and uac.successful == CALLS and uac.failed == 0, \
        uac.summary() + "\n" + box.log_tail()
    assert served.successful >= CALLS and served.failed == 0, served.summary()
    if phone_error is not None:
        raise AssertionError(f"the phone's call to the sipp UAS during the load: {phone_error}")
    ok, desc = heard(tmp_path / "c-hears.wav", 1400, 600)
    assert ok, f"a phone calling the sipp UAS during the load should hear its 1400 Hz: {desc}"
    assert peak["calls"] >= CALLS * 0.9, \
        f"the box never showed ~{CALLS} calls at once in /health: {peak}"
    box.wait_health(lambda h: h["calls"] == 0, 10, "no calls left after the load")
    assert box.calls() == []
    rows = box.wait_cdr(CALLS, 15)
    answered = [r for r in rows if r["disposition"] == "ANSWERED"]
    assert len(answered) >= CALLS, [r for r in rows if r["disposition"] != "ANSWERED"][:5]
