"""The simulated HAT with the real line machines on top: phones that hear caller ID, cadences and
tones; exchanges that ring with each region's caller ID, answer, and clear with busy tone."""

from __future__ import annotations

import asyncio
import typing

import pytest

from board import port
from board.cadence import CallProgressDetector
from board.callerid import CallerId, CallerIdReceiver
from board.driver import DriverError, decode, encode
from board.fxo import FxoConfig, FxoLine, FxoState
from board.fxs import Flash, FxsLine, FxsState, prefix_plan
from board.sim import CoConfig, SimError, SimHat
from firmware.media.dtmf import DtmfDetector
from firmware.media.tones import ToneGenerator, ToneSpec
from firmware import events as ev

PORT_COMMANDS = typing.get_args(port.PortCommand)


class Wire:
    """A line machine on a sim port, as the analog leg does it: events in, commands out, its
    one timer on the sim clock, and the DSP (DTMF, caller ID, call progress) on the audio."""

    def __init__(self, hat: SimHat, name: str, line) -> None:
        self.hat, self.port, self.line = hat, hat.port(name), line
        self.calls: list[object] = []
        self.commands: list[object] = []
        self._timer = None
        self.port.on_event = self.event
        law = self.port.law
        self._law = law
        if self.port.kind is port.PortKind.FXS:
            self.dtmf = DtmfDetector()
        else:
            self.cid = CallerIdReceiver(self.port.region.cid_standard or "bell")
            self.progress = CallProgressDetector(self.port.region.tone_zone,
                                                 ("dial", "busy", "congestion"))
        wires = getattr(hat, "_wires", {})
        wires[name] = self
        hat._wires = wires
        hat.on_audio = lambda p, frame: hat._wires[p.name].audio(frame) if p.name in hat._wires else None

    def event(self, e, now: float) -> None:
        self.line.on_event(e, now)
        self.pump()

    def audio(self, frame: bytes) -> None:
        now = self.hat.now
        x = decode(self._law, frame)
        if self.port.kind is port.PortKind.FXS:
            for d in self.dtmf.feed(x):
                self.line.digit(d.digit, now)
        else:
            cid = self.cid.feed(x)
            if cid is not None:
                self.line.caller_id(cid, now)
            for t in self.progress.feed(x):
                self.line.tone_detected(t.name, now)
        self.pump()

    def pump(self) -> None:
        while (o := self.line.next_output()) is not None:
            if isinstance(o, PORT_COMMANDS):
                self.commands.append(o)
                self.port.send(o)
            else:
                self.calls.append(o)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.line.get_timer()
        if when is not None:
            self._timer = self.hat.clock.call_at(when, self._fire, when)

    def _fire(self, when: float) -> None:
        self._timer = None
        self.line.handle_timer(self.hat.now)
        self.pump()


PLAN = prefix_plan("1XX", "3XX", "0NXXXXXX")


def fxs_wire(region: str = "us") -> tuple[SimHat, Wire]:
    hat = SimHat(fxs=1, fxo=0, region=region)
    return hat, Wire(hat, "fxs1", FxsLine(region, "201", PLAN, name="Desk"))


# --- FXS: the box rings a simulated phone ------------------------------------------------------

def test_us_phone_sees_ring_cadence_and_bell_caller_id_after_the_first_ring():
    hat, w = fxs_wire("us")
    phone = hat.phone("fxs1")
    w.line.ring(CallerId(number="5551234", name="ALICE"), hat.now)
    w.pump()
    hat.advance(13.0)
    assert phone.ring_cadence()[:4] == [2000, 4000, 2000, 4000]
    t, standard, cid = phone.caller_ids[0]
    assert (standard, cid.number, cid.name) == ("bell", "5551234", "ALICE")
    assert 2.0 < t < 6.0            # in the first silent interval
    phone.lift()
    hat.advance(0.1)
    assert w.calls == [ev.Answer(w.line.config.codecs)]
    assert not phone.ringing and w.line.state is FxsState.CONNECTED


def test_uk_phone_gets_v23_caller_id_after_a_reversal_before_the_first_ring():
    hat, w = fxs_wire("uk")
    phone = hat.phone("fxs1")
    w.line.ring(CallerId(number="02079460000", name="BOB"), hat.now)
    w.pump()
    hat.advance(6.0)
    t_cid, standard, cid = phone.caller_ids[0]
    first_ring = phone.ring_log[0].start
    assert standard == "etsi" and cid.number == "02079460000"
    assert phone.polarity_log[0] == (0.0, True) and t_cid < first_ring
    assert phone.ring_cadence()[:4] == [400, 200, 400, 2000]


def test_india_phone_decodes_dtmf_caller_id_before_the_ring():
    hat, w = fxs_wire("in")
    phone = hat.phone("fxs1")
    w.line.ring(CallerId(number="9876543210"), hat.now)
    w.pump()
    hat.advance(4.0)
    assert [(s, c.number) for _, s, c in phone.caller_ids] == [("dtmf", "9876543210")]
    assert phone.caller_ids[0][0] < phone.ring_log[0].start


def test_japan_number_display_phone_answers_car_decodes_ntt_then_rings():
    hat, w = fxs_wire("jp")
    phone = hat.phone("fxs1")
    hooks: list[tuple[float, object]] = []
    inner = w.port.on_event
    w.port.on_event = lambda e, now: (hooks.append((now, e)), inner(e, now))
    w.line.ring(CallerId(number="0312345678"), hat.now)
    w.pump()
    hat.advance(7.0)
    assert [(s, c.number) for _, s, c in phone.caller_ids] == [("ntt", "0312345678")]
    assert [type(e) for _, e in hooks] == [port.OffHook, port.OnHook]   # the ID, no answer
    car, *rings = phone.ring_log
    assert car.on and car.end - car.start == pytest.approx(0.5, abs=0.03)
    assert car.end == hooks[0][0]                        # answered in CAR's first pause
    assert hooks[0][0] < phone.caller_ids[0][0] <= hooks[1][0] <= rings[0].start
    assert phone.ring_cadence()[1:3] == [1000, 2000] and w.calls == []
    phone.lift()
    hat.advance(0.1)
    assert w.calls == [ev.Answer(w.line.config.codecs)]


def test_japan_phone_without_number_display_is_rung_without_caller_id():
    hat, w = fxs_wire("jp")
    phone = hat.phone("fxs1")
    phone.number_display = False
    w.line.ring(CallerId(number="0312345678"), hat.now)
    w.pump()
    hat.advance(10.0)
    assert phone.caller_ids == [] and not any(isinstance(c, port.SendCallerId) for c in w.commands)
    assert phone.ring_cadence()[:12] == [500] * 12       # CAR for car_timeout (6 s) ...
    first = next(p for p in phone.ring_log if p.end is not None and p.end - p.start > 0.9)
    assert first.start == pytest.approx(6.0, abs=0.03)   # ... then the ordinary rings
    assert phone.ring_cadence()[-2:] == [1000, 2000]


def test_lift_hears_dial_tone_then_dtmf_digits_make_a_setup():
    hat, w = fxs_wire("de")
    phone = hat.phone("fxs1")
    phone.lift()
    hat.advance(1.6)
    assert phone.tones == ["dial"]
    phone.dial("105")
    hat.advance(1.0)
    assert w.calls == [ev.Setup(caller="201", caller_name="Desk", callee="105",
                                codecs=w.line.config.codecs)]
    # the far end is busy: the phone hears busy in the German cadence
    w.line.handle_call_event(ev.Release("busy"), hat.now)
    w.pump()
    hat.advance(3.0)
    assert phone.tones[-1] == "busy"


def test_pulse_dialling_with_jitter_through_the_sim():
    hat, w = fxs_wire("us")
    phone = hat.phone("fxs1")
    phone.lift()
    hat.advance(0.5)
    end = phone.dial_pulse("305", jitter=0.1)
    hat.advance(end - hat.now + 0.6)
    assert w.calls[-1].callee == "305"


def test_flash_in_a_call_and_stutter_dial_tone():
    hat, w = fxs_wire("us")
    phone = hat.phone("fxs1")
    w.line.set_mwi(True)
    w.pump()
    assert phone.mwi
    phone.lift()
    hat.advance(2.6)
    assert phone.tones == ["dial"]          # steady after the stutter
    phone.dial("105")
    hat.advance(1.0)
    w.line.handle_call_event(ev.Answer(w.line.config.codecs), hat.now)
    phone.flash()
    hat.advance(1.0)
    assert Flash() in w.calls


def test_media_written_reaches_the_phone_and_the_phone_talks_back():
    hat = SimHat(fxs=1, fxo=0, region="us")     # no line machine: no dial tone over the media
    phone = hat.phone("fxs1")
    heard: list[bytes] = []
    hat.on_audio = lambda p, frame: heard.append(frame)
    phone.lift()
    phone.play(ToneSpec((1004.0,), (-10.0,)))
    tone = CallProgressDetector({"mw": ToneSpec((1004.0,), (-10.0,))}, ("mw",))
    p = hat.port("fxs1")
    gen = ToneGenerator(ToneSpec((1004.0,), (-10.0,)))
    got = []
    for _ in range(100):
        hat.write_audio(p, encode(p.law, gen.next_frame(160)))
        hat.tick()
    for f in heard[-90:]:
        got += [t.name for t in tone.feed(decode(p.law, f))]
    assert got == ["mw"]                    # the phone's tone reached the box
    spoken = CallProgressDetector({"mw": ToneSpec((1004.0,), (-10.0,))}, ("mw",))
    assert [t.name for t in spoken.feed(phone.heard[-14000:])] == ["mw"]  # and ours the phone


# --- FXO: a simulated exchange rings the box ---------------------------------------------------

def fxo_wire(region: str, cfg: FxoConfig | None = None, co: CoConfig | None = None
             ) -> tuple[SimHat, Wire]:
    hat = SimHat(fxs=0, fxo=1, region=region, co_config=co)
    return hat, Wire(hat, "fxo1", FxoLine(region, config=cfg))


@pytest.mark.parametrize("region,before_ring", [("us", False), ("uk", True), ("de", False),
                                                ("fr", True), ("in", True), ("au", False)])
def test_inbound_call_with_the_regions_caller_id(region, before_ring):
    hat, w = fxo_wire(region, FxoConfig(rings_before_answer=3))
    co = hat.co("fxo1")
    events: list[tuple[float, object]] = []
    inner = w.port.on_event
    w.port.on_event = lambda e, now: (events.append((now, e)), inner(e, now))
    co.ring("0123456789", "CAROL" if region != "in" else None)
    hat.run_until(lambda: bool(w.calls), timeout=20.0)
    setup = w.calls[0]
    assert isinstance(setup, ev.Setup) and setup.caller == "0123456789"
    if region != "in":
        assert setup.caller_name == "CAROL"
    assert co.state == "connected" and w.line.state is FxoState.CONNECTED
    first_ring = next(t for t, e in events if isinstance(e, port.RingStart))
    cid_at = next(t for t, what in co.log if what == "caller-id")
    assert (cid_at < first_ring) == before_ring
    reversal = any(isinstance(e, port.PolarityReversal) for _, e in events)
    assert reversal == (region in ("uk", "fr"))


def test_japan_number_display_the_box_answers_car_takes_the_number_then_the_call():
    hat, w = fxo_wire("jp", FxoConfig(rings_before_answer=2))
    co = hat.co("fxo1")
    events: list[tuple[float, object]] = []
    inner = w.port.on_event
    w.port.on_event = lambda e, now: (events.append((now, e)), inner(e, now))
    co.ring("0312345678")
    t = hat.run_until(lambda: bool(w.calls), timeout=10.0)
    assert w.calls[0].caller == "0312345678"
    log = [what for _, what in co.log]
    assert log == ["ring", "car", "primary response", "caller-id", "caller-id received",
                   "box answered"], co.log
    assert w.commands == [port.Seize(), port.Release(), port.Seize()]
    bursts = [now for now, e in events if isinstance(e, (port.RingStart, port.RingStop))]
    assert bursts[1] - bursts[0] == pytest.approx(0.5, abs=0.03)     # CAR
    assert bursts[3] - bursts[2] == pytest.approx(1.0, abs=0.03)     # then an ordinary ring
    cid_at = next(when for when, what in co.log if what == "caller-id")
    assert bursts[1] < cid_at < bursts[2] and t < 3.0    # answered on the first ring: it had the ID


def test_japan_line_without_number_display_rings_plainly_and_is_answered_after_n_rings():
    hat, w = fxo_wire("jp", FxoConfig(rings_before_answer=2), CoConfig(number_display=False))
    hat.co("fxo1").ring("0312345678")
    t = hat.run_until(lambda: bool(w.calls), timeout=10.0)
    assert w.calls[0].caller == "" and 3.0 <= t <= 4.1     # two 1 s rings, 2 s apart
    assert w.commands == [port.Seize()]


def test_japan_exchange_rings_without_caller_id_when_car_is_not_answered():
    # a box that does not take 0.5 s bursts for CAR: the exchange gives up on CAR after 6 s
    hat, w = fxo_wire("jp", FxoConfig(rings_before_answer=2, car_max=0.3))
    co = hat.co("fxo1")
    co.ring("0312345678")
    t = hat.run_until(lambda: bool(w.calls), timeout=15.0)
    assert w.calls[0].caller == "" and "caller-id" not in [what for _, what in co.log]
    assert ("car unanswered" in [what for _, what in co.log]) and t > 6.0


def test_outbound_call_dial_tone_digits_answer_reversal_audio_and_busy_clear():
    hat, w = fxo_wire("us", FxoConfig(answer_polarity=True),
                      CoConfig(answer_polarity=True, answer_after=2.0))
    co = hat.co("fxo1")
    w.line.dial("5551234", hat.now)
    w.pump()
    hat.run_until(lambda: co.state == "ringback", timeout=6.0)
    assert co.calls == ["5551234"]
    assert w.calls == [ev.Alerting()]
    hat.run_until(lambda: len(w.calls) == 2, timeout=4.0)
    assert w.calls[1] == ev.Answer(w.line.config.codecs)
    # both ways: the far party's DTMF reaches the box's detector, ours reaches the far party
    box_dtmf = DtmfDetector()
    heard = []
    old = hat.on_audio
    hat.on_audio = lambda p, f: (heard.extend(d.digit for d in box_dtmf.feed(decode(p.law, f))),
                                 old(p, f))
    co.far_dtmf("42")
    w.line.handle_call_event(ev.Digit("7"), hat.now)
    w.pump()
    hat.advance(1.0)
    assert "".join(heard) == "42" and co.far_digits == "7"
    # the far end clears with busy tone: the FXO line hears it and releases
    co.hangup(tone="busy")
    t0 = hat.now
    hat.run_until(lambda: co.state == "idle", timeout=6.0)
    assert w.calls[-1] == ev.Release("callee-hangup", reason="busy")
    assert hat.now - t0 < 3.5


@pytest.mark.parametrize("how", ["polarity", "loop-drop"])
def test_far_end_clear_by_polarity_or_loop_drop(how):
    region = "cn" if how == "polarity" else "us"
    co_cfg = CoConfig(answer_after=1.0, loop_drop_ms=400 if how == "loop-drop" else None)
    hat, w = fxo_wire(region, None, co_cfg)
    co = hat.co("fxo1")
    w.line.dial("123", hat.now)
    w.pump()
    hat.run_until(lambda: co.state == "connected", timeout=8.0)
    co.hangup(tone=None)
    hat.advance(0.1)
    assert w.calls[-1] == ev.Release("callee-hangup", reason=how)
    assert co.state == "idle"


def test_caller_gives_up_before_answer():
    hat, w = fxo_wire("us", FxoConfig(rings_before_answer=5, answer_on_cid=False))
    co = hat.co("fxo1")
    co.ring("5551234")
    hat.advance(7.0)
    co.cancel()
    hat.advance(10.0)
    assert w.calls == [] and w.line.state is FxoState.IDLE


# --- bad input: a clear error, nothing changed ------------------------------------------------

def test_bad_scripts_and_commands_raise_and_change_nothing():
    hat = SimHat(fxs=1, fxo=1, region="us")
    co, phone = hat.co("fxo1"), hat.phone("fxs1")
    co.ring("1")
    with pytest.raises(SimError):
        co.ring("2")
    assert co.state == "alerting"
    with pytest.raises(SimError):
        co.hangup()
    with pytest.raises(SimError):
        phone.hangup()
    with pytest.raises(SimError):
        phone.dial("1")
    assert not phone.off_hook
    with pytest.raises(DriverError):
        hat.port("fxo1").send(port.Ring((2.0, 4.0)))
    with pytest.raises(DriverError):
        hat.port("fxs1").send(port.Seize())
    p = hat.port("fxs1")
    with pytest.raises(ValueError):
        p.send(port.PlayTone("howler"))
    assert p.audio.tone is None
    with pytest.raises(ValueError):
        hat.write_audio(p, b"\xff" * 80)
    with pytest.raises(KeyError):
        hat.port("fxs9")
    with pytest.raises(ValueError):
        SimHat(fxo=2, fxo_regions=["us"])


def test_each_fxo_line_has_its_own_region_and_law():
    hat = SimHat(fxs=1, fxo=2, region="us", fxo_regions=["uk", "us"])
    assert [p.law for p in hat.ports] == ["ulaw", "alaw", "ulaw"]
    frames: dict[str, bytes] = {}
    hat.on_audio = lambda p, f: frames.__setitem__(p.name, f)
    hat.tick()
    assert frames["fxo1"] == bytes([0xD5]) * 160 and frames["fxo2"] == bytes([0xFF]) * 160


def test_real_time_ticks_on_the_loop():
    async def main() -> int:
        hat = SimHat(fxs=1, fxo=0)
        n = []
        hat.on_audio = lambda p, f: n.append(f)
        hat.start()
        await asyncio.sleep(0.25)
        await hat.stop()
        return len(n)
    n = asyncio.run(main())
    assert 9 <= n <= 14


# --- the control commands (what `linebox sim ...` sends) --------------------------------------

def test_control_commands_drive_phones_and_exchanges():
    hat = SimHat(fxs=1, fxo=1, region="uk")
    assert [p["port"] for p in hat.command(["ports"])["ports"]] == ["fxs1", "fxo1"]
    assert hat.command(["phone", "fxs1", "lift"])["hook"] == "off"
    hat.command(["phone", "fxs1", "dial", "123"])
    hat.advance(1.0)
    assert hat.command(["phone", "fxs1", "hangup"])["hook"] == "on"
    st = hat.command(["co", "fxo1", "ring", "--cid", "0123", "--name", "ANN"])
    assert st["state"] == "alerting"
    assert hat.command(["co", "fxo1", "cancel"])["state"] == "idle"


@pytest.mark.parametrize("argv", [
    [], ["phone"], ["phone", "fxs9", "lift"], ["phone", "fxs1", "jump"],
    ["phone", "fxs1", "dial"], ["phone", "fxs1", "dial", "12x"], ["phone", "fxs1", "pulse", "*"],
    ["co", "fxo1", "ring", "--cid"], ["co", "fxo1", "ring", "--cid", "12ab"],
    ["co", "fxo1", "ring", "--color", "red"], ["co", "fxo1", "hangup", "--busy", "--silent"],
    ["co", "fxo1", "hangup"], ["co", "fxs1", "ring"],
])
def test_bad_control_commands_say_why_and_change_nothing(argv):
    hat = SimHat(fxs=1, fxo=1)
    before = (hat.command(["phone", "fxs1", "status"]), hat.command(["co", "fxo1", "status"]))
    with pytest.raises(SimError):
        hat.command(argv)
    assert (hat.command(["phone", "fxs1", "status"]), hat.command(["co", "fxo1", "status"])) == before


def test_control_socket_round_trip(tmp_path):
    import json

    async def main():
        hat = SimHat(fxs=1, fxo=1, region="us")
        server = await hat.serve(str(tmp_path / "sim.sock"))
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "sim.sock"))
        replies = []
        for req in ({"argv": ["phone", "fxs1", "lift"]}, {"argv": ["phone", "fxs1", "fly"]},
                    {"argv": "lift"}):
            writer.write(json.dumps(req).encode() + b"\n")
            await writer.drain()
            replies.append(json.loads(await reader.readline()))
        writer.write(b"not json\n")
        await writer.drain()
        replies.append(json.loads(await reader.readline()))
        writer.close()
        server.close()
        await server.wait_closed()
        return replies
    ok, bad, wrong_type, garbage = asyncio.run(main())
    assert ok["ok"] and ok["status"]["hook"] == "off"
    assert not bad["ok"] and "phone actions" in bad["error"]
    assert not wrong_type["ok"] and not garbage["ok"]
