"""Analog ports as PBX legs on the simulated HAT, with a tiny controller standing in for
b2bua.Call; and two phones talking through the real media engine's relay."""

from __future__ import annotations

import asyncio

import pytest

from board.cadence import CallProgressDetector
from board.fxo import FxoConfig
from board.fxs import FxsConfig, prefix_plan
from board.sim import CoConfig, SimHat, tone_seconds
from firmware.media.ports import PortPool
from firmware.media.relay import MediaEngine
from firmware.media.tones import ToneSpec
from firmware.pbx.analog import AnalogPorts, FxoLeg, FxsLeg
from firmware.events import Alerting, Answer, Digit, Hold, Release, Setup
from tests.peers.netutil import free_udp_range

PLAN = prefix_plan("2XX", "5XX", "9NXXXXXX")


class FakeCall:
    """What an analog leg needs of b2bua.Call: on_event(leg, event). It records them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_event(self, leg, event) -> None:
        self.events.append((leg.name, event))

    def of(self, kind) -> list[object]:
        return [e for _, e in self.events if isinstance(e, kind)]


def make(region: str = "us", co: CoConfig | None = None, **kw):
    hat = SimHat(fxs=2, fxo=1, region=region, co_config=co)
    calls: list[FakeCall] = []
    flashes: list[FxsLeg] = []

    def start_call(leg) -> None:
        leg.call = FakeCall()
        calls.append(leg.call)
    ports = AnalogPorts(hat.clock, hat, extensions={"fxs1": "201", "fxs2": "202"},
                        trunks={"fxo1": "500"}, dial_plan=PLAN, start_call=start_call,
                        on_flash=flashes.append, names={"fxs1": "Front desk"}, **kw)
    return hat, ports, calls, flashes


def test_phone_dials_out_hears_ringback_answer_and_busy_after_far_hangup():
    hat, ports, calls, _ = make("us")
    phone = hat.phone("fxs1")
    phone.lift()
    hat.advance(0.5)
    phone.dial("9555123")
    phone.dial("4")
    hat.advance(1.5)
    (call,) = calls
    (setup,) = call.of(Setup)
    assert (setup.caller, setup.caller_name, setup.callee) == ("201", "Front desk", "95551234")
    leg = next(l for l in [ports._by_port["fxs1"]] if l is not None)
    assert isinstance(leg, FxsLeg) and leg.user == "201" and leg.codecs[0].name == "PCMU"
    leg.deliver(Alerting())
    hat.advance(13.0)
    assert phone.tones == ["ringback"]        # (0.5 s of dial tone is too short to name)
    leg.deliver(Answer(leg.codecs))
    phone.dial("5")
    hat.advance(0.5)
    assert call.of(Digit) == [Digit("5")]
    leg.deliver(Release("callee-hangup"))
    hat.advance(3.5)
    assert phone.tones[-1] == "busy" and leg.ended
    assert call.of(Release) == []             # the controller ended it: no release back
    phone.hangup()
    hat.advance(1.5)
    assert ports.status()[0]["in_call"] is False


def test_call_to_an_analog_extension_rings_with_caller_id_and_is_answered():
    hat, ports, calls, _ = make("uk")
    setup = Setup(caller="301", caller_name="ALICE", callee="202", codecs=())
    leg = ports.route("202", setup)
    assert isinstance(leg, FxsLeg) and leg.callee == "202"
    assert ports.route("299", setup) is None
    leg.call = FakeCall()
    asyncio.run(leg.start())
    assert leg.call.of(Alerting) == [Alerting()]
    phone = hat.phone("fxs2")
    hat.advance(4.0)
    assert phone.caller_id is not None and phone.caller_id.number == "301"
    assert phone.caller_id.name == "ALICE" and phone.caller_ids[0][1] == "etsi"
    assert phone.ring_cadence()[:3] == [400, 200, 400]
    phone.lift()
    hat.advance(0.2)
    (answer,) = leg.call.of(Answer)
    assert answer.codecs[0].name == "PCMA" and leg.answered
    phone.hangup()
    hat.advance(1.5)
    assert leg.call.of(Release) == [Release("callee-hangup")] and leg.ended


class CallFrom(FakeCall):
    """A FakeCall whose first leg is ``user`` (an authenticated extension) or an outside line."""

    def __init__(self, user: str | None) -> None:
        super().__init__()
        self.a = type("Leg", (), {"user": user})()


@pytest.mark.parametrize("caller_name, a_user, shown", [
    ("", "301", "PROBE ONE"),          # an extension without a display name: its configured name
    ("ALICE", "301", "ALICE"),         # a display name it sent wins
    ("", None, None),                  # an outside number that equals an extension number
])
def test_an_extension_calling_without_a_display_name_shows_its_configured_name(caller_name, a_user,
                                                                               shown):
    names = {"301": "PROBE ONE"}
    hat, ports, _, _ = make("us", directory=lambda n: names.get(n, ""))
    leg = ports.route("202", Setup(caller="301", caller_name=caller_name, callee="202", codecs=()))
    leg.call = CallFrom(a_user)
    asyncio.run(leg.start())
    phone = hat.phone("fxs2")
    hat.advance(4.0)                   # us: Bell 202 MDMF after the first ring
    assert phone.caller_ids and phone.caller_ids[0][1] == "bell"
    assert (phone.caller_id.number, phone.caller_id.name) == ("301", shown)


def test_a_japanese_line_answers_car_and_rings_in_with_the_number():
    hat, ports, calls, _ = make("jp")
    co = hat.co("fxo1")
    co.ring("0312345678")
    hat.run_until(lambda: bool(calls), timeout=10.0)
    (setup,) = calls[0].of(Setup)
    assert (setup.caller, setup.callee) == ("0312345678", "500")
    assert [w for _, w in co.log][:5] == ["ring", "car", "primary response", "caller-id",
                                         "caller-id received"]


def test_ringing_a_busy_phone_is_refused_and_flash_reaches_the_controller():
    hat, ports, calls, flashes = make("us", fxs_config=FxsConfig(call_waiting=False))
    phone = hat.phone("fxs1")
    phone.lift()
    hat.advance(0.5)
    phone.dial("202")
    hat.advance(1.0)
    (call,) = calls
    caller = ports._by_port["fxs1"]
    caller.deliver(Answer(caller.codecs))
    leg = ports.route("201", Setup(caller="202", caller_name="", callee="201", codecs=()))
    leg.call = FakeCall()
    asyncio.run(leg.start())
    assert leg.call.of(Release) == [Release("busy", 486)]
    phone.flash()
    hat.advance(1.5)
    assert flashes == [caller]


def ring_and_answer(hat, ports, caller: str):
    leg = ports.route("201", Setup(caller=caller, caller_name="", callee="201", codecs=()))
    leg.call = FakeCall()
    asyncio.run(leg.start())
    return leg


def test_call_waiting_flash_swaps_the_legs_and_hanging_up_recalls_the_held_one():
    hat, ports, calls, flashes = make("us")
    phone = hat.phone("fxs1")
    x = ring_and_answer(hat, ports, "301")
    hat.advance(1.0)
    phone.lift()
    hat.advance(0.2)
    assert x.call.of(Answer) and ports._by_port["fxs1"] is x
    y = ring_and_answer(hat, ports, "302")
    assert y.call.of(Alerting) == [Alerting()] and y.call.of(Release) == []
    assert ports._other["fxs1"] is y and y.endpoint is x.endpoint      # (None: no media engine)
    assert ports.status()[0]["other_call"] == "waiting"
    hat.advance(1.0)
    assert 0.2 <= tone_seconds(phone.heard, 440.0, last=1.0) <= 0.4   # one 300 ms burst
    assert not phone.ringing
    z = ring_and_answer(hat, ports, "303")
    assert z.call.of(Release) == [Release("busy", 486)]                # no third call
    phone.flash()
    hat.advance(1.0)
    assert x.call.of(Hold) == [Hold("sendonly")] and y.call.of(Answer) and y.answered
    assert ports._by_port["fxs1"] is y and ports._other["fxs1"] is x and flashes == []
    phone.flash()
    hat.advance(1.0)
    assert y.call.of(Hold) == [Hold("sendonly")] and x.call.of(Hold)[-1] == Hold("sendrecv")
    assert ports._by_port["fxs1"] is x
    phone.flash()
    hat.advance(1.0)                       # talking to y again, x held
    phone.hangup()
    hat.advance(1.5)
    assert y.call.of(Release) == [Release("callee-hangup")] and y.ended
    assert ports._by_port["fxs1"] is x and "fxs1" not in ports._other
    assert phone.ringing                   # the recall
    phone.lift()
    hat.advance(0.2)
    assert x.call.of(Hold)[-1] == Hold("sendrecv") and not x.ended
    phone.hangup()
    hat.advance(1.5)
    assert x.call.of(Release) == [Release("callee-hangup")]
    assert ports.status()[0]["in_call"] is False


def test_the_waiting_caller_gives_up():
    hat, ports, calls, _ = make("us")
    phone = hat.phone("fxs1")
    x = ring_and_answer(hat, ports, "301")
    phone.lift()
    hat.advance(0.2)
    y = ring_and_answer(hat, ports, "302")
    hat.advance(0.1)
    y.deliver(Release("cancel"))
    hat.advance(1.0)
    assert y.ended and "fxs1" not in ports._other and ports._by_port["fxs1"] is x
    assert 0.0 < tone_seconds(phone.heard, 440.0, last=1.1) <= 0.12   # the burst was cut short
    phone.flash()                          # no other call: a flash is a transfer again
    hat.advance(1.0)
    assert x.call.of(Hold) == [Hold("sendonly")] and phone.port.audio.tone == "dial"


def test_co_line_rings_in_with_caller_id_to_the_inbound_destination():
    hat, ports, calls, _ = make("de")
    co = hat.co("fxo1")
    co.ring("030123456", "BERLIN")
    hat.run_until(lambda: bool(calls), timeout=10.0)
    (call,) = calls
    (setup,) = call.of(Setup)
    assert (setup.caller, setup.caller_name, setup.callee) == ("030123456", "BERLIN", "500")
    leg = ports._by_port["fxo1"]
    assert isinstance(leg, FxoLeg) and co.state == "connected"
    assert leg.codecs[0].name == "PCMA"
    # the far caller hangs up: the exchange plays busy; the line releases the call
    co.hangup(tone="busy")
    hat.run_until(lambda: bool(call.of(Release)), timeout=6.0)
    assert call.of(Release) == [Release("caller-hangup", reason="busy")]
    assert co.state == "idle" and leg.ended


def test_outbound_on_the_trunk_dials_and_answers_on_reversal():
    co = CoConfig(answer_polarity=True, answer_after=2.0)
    hat, ports, calls, _ = make("us", co, fxo_config=FxoConfig(answer_polarity=True))
    setup = Setup(caller="201", caller_name="", callee="5551234", codecs=())
    leg = ports.trunk(setup)
    assert isinstance(leg, FxoLeg)
    assert ports.trunk(setup) is None           # the only line is taken
    leg.call = FakeCall()
    asyncio.run(leg.start())
    exch = hat.co("fxo1")
    hat.run_until(lambda: bool(leg.call.of(Answer)), timeout=10.0)
    assert exch.calls == ["5551234"] and leg.call.of(Alerting) == [Alerting()]
    leg.deliver(Digit("7"))
    hat.advance(0.5)
    assert exch.far_digits == "7"
    leg.deliver(Release("caller-hangup"))
    hat.advance(0.1)
    assert exch.state == "idle" and exch.far_hung_up_by_box
    assert ports.trunk(setup) is not None       # free again


def test_bad_configuration_is_refused():
    hat = SimHat(fxs=1, fxo=1)
    kw = dict(dial_plan=PLAN, start_call=lambda leg: None)
    with pytest.raises(ValueError, match="not FXS"):
        AnalogPorts(hat.clock, hat, extensions={"fxo1": "201"}, trunks={}, **kw)
    with pytest.raises(ValueError, match="not FXO"):
        AnalogPorts(hat.clock, hat, extensions={}, trunks={"fxs1": "500"}, **kw)
    with pytest.raises(KeyError):
        AnalogPorts(hat.clock, hat, extensions={"fxs7": "201"}, trunks={}, **kw)


def test_a_start_call_that_makes_no_call_releases_the_line():
    hat = SimHat(fxs=1, fxo=0)
    ports = AnalogPorts(hat.clock, hat, extensions={"fxs1": "201"}, trunks={}, dial_plan=PLAN,
                        start_call=lambda leg: None)
    phone = hat.phone("fxs1")
    phone.lift()
    hat.advance(0.5)
    phone.dial("202")
    hat.advance(3.0)
    assert phone.tones[-1] == "congestion"


def test_two_phones_talk_through_the_media_engine():
    """201 calls 202 (the test plays the controller); each analog leg is an engine endpoint fed
    over RTP on 127.0.0.1, bridged by the real relay: each phone hears the other's tone. The sim
    runs in real time on the loop; its clock is the time base of the ports."""

    async def main():
        start = free_udp_range(8)
        engine = MediaEngine(bind_host="127.0.0.1", port_pool=PortPool(start, start + 7))
        hat = SimHat(fxs=2, fxo=0, region="us")
        calls: list[FakeCall] = []

        def start_call(leg):
            leg.call = FakeCall()
            calls.append(leg.call)
        ports = AnalogPorts(hat.clock, hat, extensions={"fxs1": "201", "fxs2": "202"},
                            trunks={}, dial_plan=PLAN, start_call=start_call, media=engine)
        await ports.open_media()
        hat.start()
        p1, p2 = hat.phone("fxs1"), hat.phone("fxs2")
        p1.lift()
        await asyncio.sleep(0.3)
        p1.dial("202")
        async with asyncio.timeout(3.0):
            while not calls:
                await asyncio.sleep(0.02)
        (setup,) = calls[0].of(Setup)
        a = ports._by_port["fxs1"]
        b = ports.route(setup.callee, setup)
        b.call = FakeCall()
        await b.start()
        a.deliver(Alerting())
        async with asyncio.timeout(3.0):
            while not p2.ringing:
                await asyncio.sleep(0.02)
        p2.lift()
        async with asyncio.timeout(3.0):
            while not b.call.of(Answer):
                await asyncio.sleep(0.02)
        a.deliver(b.call.of(Answer)[0])
        assert a.endpoint is not None and b.endpoint is not None and a.endpoint is not b.endpoint
        bridge = engine.bridge(a.endpoint, b.endpoint)
        p1.play(ToneSpec((697.0,), (-10.0,)))
        p2.play(ToneSpec((1209.0,), (-10.0,)))
        await asyncio.sleep(2.0)
        relayed = engine.stats["packets_relayed"]
        await hat.stop()
        bridge.close()
        ports.close_media()
        engine.close()
        return hat, relayed
    hat, relayed = asyncio.run(main())
    assert relayed >= 150                   # ~50 packets/s each way
    for name, f in (("fxs2", 697.0), ("fxs1", 1209.0)):
        det = CallProgressDetector({"t": ToneSpec((f,), (-10.0,))}, ("t",))
        assert [t.name for t in det.feed(hat.phone(name).heard[-12000:])] == ["t"], name
