"""Voicemail end to end on a real `linebox run`: a call the extension leaves unanswered (not
registered, or ringing out on an analog phone) goes to its mailbox; the caller hears the
greeting and the tone, and what they send is the message, checked as audio; the owner's SIP
phone is told by a message-summary NOTIFY and the analog phone's indicator lights; the owner
dials *97, hears how many, who from and the message itself, and deletes it; the indicators go
dark. A mailbox is also an IVR destination."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.store.messages import Mailboxes
from tests.e2e.box import Box
from tests.e2e.test_analog import sim
from tests.e2e.test_calls import HIGH, LOW, heard
from tests.e2e.test_features import assert_says
from tests.peers import audio
from tests.peers.netutil import wait_until


def vm_box(box_factory) -> Box:
    box = box_factory("vm", start=False, settings={
        "analog.driver": "sim", "analog.sim_fxs": 1, "analog.sim_fxo": 0, "call.no_answer_timeout": 4})
    box.cli("port", "set", "fxs1", "--extension", "1003")
    for n in ("1002", "1003"):
        box.cli("voicemail", "enable", n)
    box.start()
    return box


def messages(box: Box, mailbox: str) -> list[dict]:
    return json.loads(box.cli("voicemail", "list", mailbox, "--json").stdout)[mailbox]


# Thirteen prompts in one phone's recording, the last cut by the box's BYE: a phone starved of
# CPU by a neighbouring test loses frames from its jitter buffer, so this runs by itself.
@pytest.mark.alone
def test_unanswered_call_leaves_a_message_the_owner_hears_with_star97(box_factory, phones, tmp_path: Path) -> None:
    box = vm_box(box_factory)
    a = phones("a1001")  # sends LOW
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200

    # 1002 has no phone registered: the caller goes to its mailbox
    a.record(tmp_path / "caller.wav")
    a.call("1002")
    a.wait_state("CONFIRMED", timeout=10)
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 400, timeout=15)  # greeting and tone: about 8 s
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)  # then 3 s of talking into the box
    a.hangup()
    a.wait_state("DISCONNECTED")
    a.stop_record()
    assert_says(tmp_path / "caller.wav", ["not-available", "leave-message-after-tone"])
    msgs = wait_until(lambda: messages(box, "1002"), 10, what="the message stored")
    assert len(msgs) == 1 and msgs[0]["caller"] == "1001" and msgs[0]["folder"] == "new", msgs
    assert msgs[0]["seconds"] >= 2.0, msgs
    wav = next((box.data / "voicemail" / "1002" / "new").glob("*.wav"))
    rate, samples = audio.read_wav(wav)
    assert audio.tone_present(samples, rate, LOW, min_seconds=1.5, others=(HIGH,)), \
        f"the message should hold the caller's tone: {audio.describe(samples, rate, (LOW, HIGH))}"

    # The owner's phone registers: it is told a message waits
    b = phones("b1002", tone=None)
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    mwi = wait_until(lambda: b.events("mwi"), 10, what="message-summary NOTIFY")
    assert "Messages-Waiting: yes" in mwi[-1]["body"] and "Voice-Message: 1/0" in mwi[-1]["body"], mwi

    # *97: the count, who from, the message; then 7 deletes it
    b.record(tmp_path / "owner.wav")
    b.call("*97")
    b.wait_state("CONFIRMED")
    wait_until(lambda: messages(box, "1002")[0]["folder"] == "old", 20, what="the message heard to its end")
    b.send_dtmf("7")
    wait_until(lambda: not messages(box, "1002"), 10, what="the message deleted")
    b.wait_state("DISCONNECTED", timeout=20)  # "no more messages, goodbye"
    b.stop_record()
    assert_says(tmp_path / "owner.wav", ["you-have", "1", "new", "message", "message-from", "1", "0"])
    ok, desc = heard(tmp_path / "owner.wav", LOW, HIGH, min_seconds=1.5)
    assert ok, f"the owner should hear the message (the caller's {LOW:g} Hz): {desc}"
    assert_says(tmp_path / "owner.wav", ["message-deleted", "no-more-messages", "goodbye"])
    wait_until(lambda: any("Messages-Waiting: no" in e["body"] for e in b.events("mwi")), 10,
               what="the lamp turned off")
    rows = box.wait_cdr(2)
    assert {(r["caller"], r["callee"]) for r in rows} == {("1001", "1002"), ("1002", "*97")}, rows


def test_an_analog_phone_that_is_not_answered_gets_a_message_and_its_indicator(box_factory, phones,
                                                                              tmp_path: Path) -> None:
    box = vm_box(box_factory)
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    assert sim(box, "phone", "fxs1", "status")["mwi"] is False
    a.call("1003")
    wait_until(lambda: sim(box, "phone", "fxs1", "status")["ringing"], 10, what="the analog phone rings")
    a.wait_state("CONFIRMED", timeout=15)  # nobody lifts: after call.no_answer_timeout, voicemail
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 400, timeout=15)  # greeting and tone
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)  # 3 s of message
    a.hangup()
    a.wait_state("DISCONNECTED")
    wait_until(lambda: messages(box, "1003"), 10, what="the message stored")
    wait_until(lambda: sim(box, "phone", "fxs1", "status")["mwi"], 10, what="the message-waiting indicator")
    # the analog phone's owner listens and keeps it (9): the indicator goes dark
    sim(box, "phone", "fxs1", "lift")
    sim(box, "phone", "fxs1", "dial", "*97")
    wait_until(lambda: messages(box, "1003")[0]["folder"] == "old", 25, what="the message heard")
    wait_until(lambda: not sim(box, "phone", "fxs1", "status")["mwi"], 10, what="the indicator off")
    sim(box, "phone", "fxs1", "hangup")
    assert heard_tone(box, LOW) > 1.0, "the analog phone should have heard the message"


def heard_tone(box: Box, freq: float) -> float:
    return sim(box, "phone", "fxs1", "heard", f"{freq:g}")["heard"]["seconds"]


def test_a_mailbox_is_an_ivr_destination_and_only_where_one_exists(box_factory, phones, tmp_path: Path) -> None:
    box = vm_box(box_factory)
    doc = json.loads(box.cli("config", "export").stdout)
    doc["ivr"] = {"menus": [{"id": "main", "greeting": ["welcome"],
                             "options": {"9": {"goto": "voicemail", "target": "1001"}}}]}
    doc["ivr_numbers"] = {"500": "main"}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    r = box.cli("config", "import", str(tmp_path / "bad.json"), check=False)
    assert r.returncode != 0 and "options[9].target" in r.stderr, r.stderr  # 1001 has no mailbox
    doc["ivr"]["menus"][0]["options"]["9"]["target"] = "1002"
    (tmp_path / "good.json").write_text(json.dumps(doc))
    box.cli("config", "import", str(tmp_path / "good.json"))
    r = box.cli("voicemail", "disable", "1002", check=False)
    assert r.returncode != 0 and "sends callers to this mailbox" in r.stderr, r.stderr

    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("500")
    a.wait_state("CONFIRMED")
    a.send_dtmf("9")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 400, timeout=15)
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 100)
    a.hangup()
    msgs = wait_until(lambda: messages(box, "1002"), 10, what="the message left from the IVR")
    assert msgs[0]["caller"] == "1001" and msgs[0]["seconds"] >= 1.5, msgs


def _message_waiting(box: Box, mailbox: str, freq: float) -> None:
    """A 4 s message of ``freq`` Hz from 5551234, put where the recorder leaves one."""
    wav = Mailboxes(box.data / "voicemail").new_message(mailbox, "5551234", "")
    audio.write_tone_wav(wav, freq, 4.0)


PIN = "97531864"  # long enough that no port or hex call id in the log contains it by chance


@pytest.mark.alone  # five prompts checked in one recording, like the *97 test
def test_star98_opens_a_mailbox_from_any_phone_with_its_pin(box_factory, phones, tmp_path: Path) -> None:
    box = vm_box(box_factory)
    out = box.cli("voicemail", "enable", "1002", "--pin", PIN).stdout
    assert "*98 and the PIN" in out, out
    r = box.cli("voicemail", "enable", "1003", "--pin", "12", check=False)
    assert r.returncode != 0 and "voicemail.mailboxes.1003.pin: 4 to 12 digits" in r.stderr, r.stderr
    _message_waiting(box, "1002", LOW)
    _message_waiting(box, "1003", LOW)
    a = phones("a1001", tone=None)
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.play_tone(120.0, amplitude=0.001)  # keeps pjsua's RTP going (see test_features)

    # 1001 dials *98 for 1002's mailbox: a wrong PIN first, then the right one
    a.record(tmp_path / "remote.wav")
    a.call("*98")
    a.wait_state("CONFIRMED")
    # each entry once its prompt has been said (a key would cut it short)
    for keys, prompt_s in (("1002#", 3.4), ("1111#", 2.8), ("1002#", 1.1 + 3.4), (PIN + "#", 2.8)):
        a.wait_rx_packets(a.stream_stat()["rx_pkt"] + round(prompt_s * 50) + 25)
        a.send_dtmf(keys)
    wait_until(lambda: messages(box, "1002")[0]["folder"] == "old", 25, what="1002's message heard")
    a.hangup()
    a.wait_state("DISCONNECTED")
    a.stop_record()
    assert_says(tmp_path / "remote.wav", ["enter-mailbox", "enter-password", "login-incorrect", "enter-mailbox",
                                          "enter-password", "you-have"])
    ok, desc = heard(tmp_path / "remote.wav", LOW, HIGH, min_seconds=1.5)
    assert ok, f"1001 should hear 1002's message: {desc}"
    assert "wrong mailbox or PIN from 1001 (try 1 of 3)" in box.log_path.read_text()
    assert PIN not in box.log_path.read_text(), "a PIN must never be logged"

    # 1003 has no PIN: *98 never opens it, and three wrong tries end the call
    a.call("*98")
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 25)
    for keys in ("1003#", "1234#") * 3:
        a.send_dtmf(keys)
        a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 75)
    a.wait_state("DISCONNECTED", timeout=15)  # "login incorrect, goodbye"
    assert messages(box, "1003")[0]["folder"] == "new"
