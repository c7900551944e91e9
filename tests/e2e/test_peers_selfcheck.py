"""Self-check of the e2e peers, with no LineBox involved.

If these fail, an e2e failure against the box says nothing about the box. Two
pjsua2 phones call each other directly (accounts without a registrar), sipp
calls sipp, and a phone calls a sipp UAS to prove the 20 ms pcap is real audio.
"""
from __future__ import annotations

from pathlib import Path

from tests.peers import audio
from tests.peers.netutil import wait_until
from tests.peers.phone import Phone
from tests.peers.sipp import read_rtp_pcap, run_sipp, start_sipp, write_rtp_pcap

LOW, HIGH = 600.0, 1400.0


def _heard(path: Path, freq: float, other: float, min_seconds: float = 1.0) -> tuple[bool, str]:
    rate, samples = audio.read_wav(path)
    return (audio.tone_present(samples, rate, freq, min_seconds=min_seconds, others=(other,)),
            audio.describe(samples, rate, (freq, other)))


def test_two_phones_direct_call_audio_dtmf_hold_hangup(tmp_path):
    with Phone("alice", log_dir=tmp_path) as a, Phone("bob", log_dir=tmp_path) as b:
        a.play_tone(LOW)
        b.play_tone(HIGH)
        a.record(tmp_path / "alice-hears.wav")
        b.record(tmp_path / "bob-hears.wav")

        a.call(f"sip:bob@127.0.0.1:{b.sip_port}")
        inc = b.wait_incoming()
        assert "alice" in inc["from"]
        assert a.wait_state("EARLY")["code"] == 180
        b.answer()
        a.wait_state("CONFIRMED")
        b.wait_state("CONFIRMED")
        ia, ib = a.call_info(), b.call_info()
        assert ia["codec"] == ib["codec"] == "PCMU", (ia, ib)
        assert ia["remote_rtp"].startswith("127.0.0.1:") and ib["remote_rtp"].startswith("127.0.0.1:")

        # 2 s of audio each way (at 20 ms), then stop the recorders.
        a.wait_rx_packets(100)
        b.wait_rx_packets(100)
        a.stop_record()
        b.stop_record()

        a.send_dtmf("1234#")
        b.wait_dtmf("1234#")
        assert b.dtmf_received() == "1234#"
        assert a.dtmf_received() == ""

        a.hold()
        wait_until(lambda: b.call_info()["media_status"] == "REMOTE_HOLD", 5, what="bob sees hold")
        assert a.call_info()["media_status"] == "LOCAL_HOLD"
        a.unhold()
        wait_until(lambda: b.call_info()["media_status"] == "ACTIVE", 5, what="bob sees unhold")

        b.hangup()
        ended = a.wait_state("DISCONNECTED")
        assert ended["code"] == 200, ended
        b.wait_state("DISCONNECTED")

    ok, desc = _heard(tmp_path / "alice-hears.wav", HIGH, LOW)
    assert ok, f"alice should hear bob's {HIGH} Hz: {desc}"
    ok, desc = _heard(tmp_path / "alice-hears.wav", LOW, HIGH, min_seconds=0.1)
    assert not ok, f"alice should not hear her own {LOW} Hz: {desc}"
    ok, desc = _heard(tmp_path / "bob-hears.wav", LOW, HIGH)
    assert ok, f"bob should hear alice's {LOW} Hz: {desc}"
    ok, desc = _heard(tmp_path / "bob-hears.wav", HIGH, LOW, min_seconds=0.1)
    assert not ok, f"bob should not hear his own {HIGH} Hz: {desc}"


def test_pcmu_only_phone_calling_pcma_only_phone_gets_488(tmp_path):
    with Phone("ulaw", codecs=["PCMU"], log_dir=tmp_path) as a, \
            Phone("alaw", codecs=["PCMA"], log_dir=tmp_path) as b:
        a.call(f"sip:alaw@127.0.0.1:{b.sip_port}")
        ended = a.wait_state("DISCONNECTED")
        assert ended["code"] == 488, ended
        assert b.events("incoming") == []


def test_rtp_pcap_is_20ms_g711(tmp_path):
    p = write_rtp_pcap(tmp_path / "a.pcap", payload_type=8, tone_hz=1000, seconds=1.0)
    pkts = read_rtp_pcap(p)
    assert len(pkts) == 50
    assert all(abs((t2 - t1) - 0.020) < 1e-5 for (t1, _), (t2, _) in zip(pkts, pkts[1:]))
    first = pkts[0][1]
    assert first[0] == 0x80 and first[1] == 0x80 | 8 and len(first) == 12 + 160
    seqs = [int.from_bytes(r[2:4], "big") for _, r in pkts]
    tss = [int.from_bytes(r[4:8], "big") for _, r in pkts]
    assert seqs == list(range(seqs[0], seqs[0] + 50))
    assert tss == list(range(tss[0], tss[0] + 50 * 160, 160))


def test_sipp_uac_to_uas_ten_concurrent_calls(tmp_path):
    with start_sipp("uas_answer.xml", work_dir=tmp_path, name="uas", payload_type=8,
                    tone_hz=HIGH) as uas:
        res = run_sipp("uac_call.xml", uas.address, work_dir=tmp_path, name="uac",
                       service="201", calls=10, concurrent=10, rate=100, call_ms=2000,
                       payload_type=8, tone_hz=LOW, timeout=30)
        assert res.ok and res.successful == 10 and res.failed == 0, res.summary()
        served = uas.stop()
    assert served.successful == 10 and served.failed == 0, served.summary()


def test_phone_hears_the_sipp_pcap(tmp_path):
    """The pcap is real audio: a phone answered by a sipp UAS hears its tone (PCMU)."""
    with start_sipp("uas_answer.xml", work_dir=tmp_path, name="uas", payload_type=0,
                    tone_hz=HIGH) as uas, Phone("listener", log_dir=tmp_path) as ph:
        ph.record(tmp_path / "heard.wav")
        ph.call(f"sip:201@{uas.address}")
        ph.wait_state("CONFIRMED")
        assert ph.call_info()["codec"] == "PCMU"
        ph.wait_rx_packets(100)
        ph.stop_record()
        ph.hangup()
        ph.wait_state("DISCONNECTED")
        served = uas.stop()
    assert served.successful == 1, served.summary()
    ok, desc = _heard(tmp_path / "heard.wav", HIGH, LOW)
    assert ok, f"the phone should hear sipp's {HIGH} Hz pcap: {desc}"


def test_sipp_register_answers_a_digest_challenge(tmp_path):
    """register.xml answers a 401 with the right credentials (verified by sipp) and
    fails on a 403 with the wrong ones."""
    for password, ok in (("s3cret", True), ("wrong", False)):
        with start_sipp("registrar_auth.xml", work_dir=tmp_path, name=f"registrar-{password}",
                        keys={"user": "alice", "password": "s3cret"}) as reg:
            res = run_sipp("register.xml", reg.address, work_dir=tmp_path, name=f"reg-{password}",
                           user="alice", password=password, timeout=10,
                           keys={"user": "alice", "contact_host": "127.0.0.1", "contact_port": 5099})
            reg.stop()
        assert res.ok is ok and res.successful == int(ok), res.summary()


def test_sipp_uac_answers_a_proxy_challenge(tmp_path):
    with start_sipp("uas_auth_invite.xml", work_dir=tmp_path, name="uas") as uas:
        res = run_sipp("uac_call.xml", uas.address, work_dir=tmp_path, name="uac", service="201",
                       user="alice", password="s3cret", call_ms=500, timeout=10)
        served = uas.stop()
    assert res.ok and res.successful == 1, res.summary()
    assert served.successful == 1, served.summary()


def test_phone_registers_through_a_digest_challenge(tmp_path):
    for password, code in (("s3cret", 200), ("wrong", 403)):
        with start_sipp("registrar_auth.xml", work_dir=tmp_path, name=f"registrar-{password}",
                        keys={"user": "alice", "password": "s3cret"}) as reg, \
                Phone(f"alice-{password}", log_dir=tmp_path) as ph:
            assert ph.register(server=reg.address, user="alice", password=password) == code
