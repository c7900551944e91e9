"""Graceful overload through `linebox run` (firmware.pbx.admission): while the media clock
reports lateness the box refuses new calls with 503 + Retry-After before any challenge, a call
already up keeps its audio and its re-INVITEs, the dashboard's health says so, one security
event marks the start and one the end, and once the lateness is gone calls are taken again.

The lateness is simulated, not provoked: the box is started with LINEBOX_TEST_HOOKS=1, which
adds the local API action /api/test/media-clock (firmware.system.app) that makes the load probe
read a stand-in media clock with a chosen share of late ticks. A real late clock would need a
saturated core, which a shared 2-core CI machine can neither promise nor spare. Nothing here is
timed: every step waits on what the box reports, with generous timeouts.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.e2e.box import Box, SipSocket, build_ack, build_request, new_call_id, new_tag, sdp_offer
from tests.e2e.test_calls import connect
from tests.peers.netutil import LOOPBACK, wait_until


@pytest.fixture
def hooked_box(monkeypatch: pytest.MonkeyPatch, box_factory) -> Box:
    monkeypatch.setenv("LINEBOX_TEST_HOOKS", "1")  # read by `linebox run` at start only
    return box_factory("box")


def simulate_media_clock(box: Box, late_share: float | None) -> Any:
    """POST /api/test/media-clock (loopback, the box's per-boot secret, JSON)."""
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{box.http_port}/api/test/media-clock",
        data=json.dumps({"late_share": late_share}).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "X-LineBox-Secret": (box.data / "api.secret").read_text().strip()})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def new_invite(box: Box, from_user: str = "1003", to_user: str = "1002"):
    """A new call's first INVITE, without credentials (as every phone sends it); returns its
    final response (ACKed)."""
    with SipSocket(box.sip_hostport) as sock:
        host, port = box.sip_hostport
        data = build_request("INVITE", f"sip:{to_user}@{host}:{port}", sock=sock, from_user=from_user,
                             to_uri=f"sip:{to_user}@{host}:{port}", call_id=new_call_id(), cseq=1,
                             from_tag=new_tag(), contact_user=from_user,
                             body=sdp_offer(sock.local[0], 40000), content_type="application/sdp")
        resp = sock.request(data, timeout=10)
        assert resp is not None, f"no answer to a new INVITE\n{box.log_tail()}"
        sock.send(build_ack(data, resp))
        return resp


def admission(box: Box) -> dict[str, Any]:
    return box.health()["admission"]


def test_overload_admission_refuses_with_503_when_the_media_clock_reports_lateness(hooked_box, phones):
    box = hooked_box
    a, b, c = phones("a1001"), phones("b1002"), phones("c1003")
    for ph, ext in ((a, "1001"), (b, "1002"), (c, "1003")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    assert admission(box)["state"] == "admitting"
    connect(a, b)  # the call that is up before the overload
    a.wait_rx_packets(25, timeout=15)

    assert simulate_media_clock(box, 0.5) == {"simulated": 0.5}
    h = box.wait_health(lambda h: h["admission"]["state"] == "refusing", 30, "admission refusing")
    assert h["admission"]["reason"] == "media-clock", h

    # A new call: 503 at once, with Retry-After, and no digest challenge first.
    resp = new_invite(box)
    assert resp.status == 503, resp.text()
    assert int(resp.get("retry-after") or 0) >= 1, resp.text()
    assert resp.get("proxy-authenticate") is None
    # ... and a phone we did not write hears the same.
    c.call("1001")
    assert c.wait_state("DISCONNECTED", timeout=15)["code"] == 503

    # The call already up keeps its packets both ways, and its re-INVITEs are not refused.
    for ph in (a, b):
        ph.wait_rx_packets(ph.stream_stat()["rx_pkt"] + 50, timeout=15)
    a.hold()
    wait_until(lambda: b.call_info()["media_status"] == "REMOTE_HOLD", 10, what="b sees hold")
    a.unhold()
    wait_until(lambda: b.call_info()["media_status"] == "ACTIVE", 10, what="b sees resume")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 25, timeout=15)

    h = box.health()
    assert h["calls"] == 1, h
    assert h["admission"]["refused"].get("media-clock", 0) >= 2, h
    assert h["admission"]["refused_recently"] >= 2, h
    ev = box.wait_security_event(lambda e: e["event"] == "overload", 10, "the overload event")
    assert ev["source"] == "box" and "media-clock" in ev["reason"], ev

    # The lateness goes: after a calm moment (hysteresis) new calls are taken again.
    assert simulate_media_clock(box, None) == {"simulated": None}
    box.wait_health(lambda h: h["admission"]["state"] == "admitting", 60, "admission admitting again")
    box.wait_security_event(lambda e: e["event"] == "overload-end", 10, "the overload-end event")
    assert new_invite(box).status == 407  # challenged: admitted as far as the digest
    a.hangup()
    b.wait_state("DISCONNECTED")
    c.call("1002")
    b.wait_incoming(timeout=10)
    b.answer()
    c.wait_state("CONFIRMED", timeout=15)
    c.hangup()
    # one event as the overload started, one as it ended: not one per refused INVITE (a real
    # overload of a busy CI machine would be another episode, with a reason of its own)
    kinds = [e["event"] for e in box.security_events()
             if e["event"].startswith("overload") and "media-clock" in (e.get("reason") or "")]
    assert kinds == ["overload", "overload-end"], box.security_events()
