"""Analog ports as PBX legs: an FXS port is an extension, an FXO port a trunk (issue 5, STYLE §4).

A leg here is a line machine (``board.fxs.FxsLine``/``board.fxo.FxoLine``) on a driver port
(``board.sim``, ``board.dahdi``), adapted to the controller's vocabulary (``events.py``):

* ``LineRunner`` runs one machine on one port: port events in, port commands out, the
  machine's one timer on a clock (an asyncio loop, or the simulated HAT's ``SimClock``), and
  the DSP on the port's line audio: DTMF digits for an FXS port; caller ID, call-progress
  tones (busy/congestion/dial, by cadence) and voice activity for an FXO port.
* ``FxsLeg``/``FxoLeg`` are ``b2bua.Leg``s. A leg that starts a call (a phone dialled, a CO
  line rang) is handed to ``start_call(leg)``, which must make a ``Call`` with it as the caller
  and set ``leg.call``; the leg then sends its ``Setup`` with ``call.on_event(leg, ev)``. A leg
  the PBX calls (``AnalogPorts.route(number)`` / ``.trunk(...)``) is started with ``await
  leg.start()`` like a SIP ``OutboundLeg``.
* ``AudioLink`` (when a media engine is given, after ``await open_media()``): each port has one
  engine endpoint for the life of the box, fed its line audio as RTP on 127.0.0.1 while the
  port is in a call; every leg on that port carries that endpoint, so the controller bridges
  (or plays prompts to) an analog leg exactly like a SIP one and the engine needs no analog
  code.

Hook flash on an FXS port is passed to ``on_flash(leg)`` (transfer is the controller's job).

Call waiting: an FXS port carries up to two legs, the *active* one (``_by_port``) and the
*other* one (``_other``: waiting or held), each in its own ``Call``. The line machine says
which is which (``board.fxs.SwapCalls``); both legs carry the port's one endpoint, and the
machine's order of events (hold the active call, swap, answer or resume the other) makes the
first call's ``Call`` set its bridge aside before the second bridges the endpoint, so only the
active call's bridge ever carries the port's audio.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from board import port as bport
from board.cadence import CallProgressDetector, dbm0
from board.callerid import CallerIdReceiver
from board.driver import Clock, Driver, DriverPort, decode
from board.fxo import FxoConfig, FxoLine, FxoState
from board.fxs import Flash, FxsConfig, FxsLine, FxsState, DialPlan, SwapCalls, caller_id_of
from firmware.media.dtmf import DtmfDetector
from firmware.media.rtp import RtpPacket
from firmware.sip.sdp import Codec

from firmware.events import Alerting, Answer, Digit, Event, Hold, Release, Setup, Transfer

if TYPE_CHECKING:
    from firmware.media.relay import Endpoint, MediaEngine

    from .b2bua import Call

__all__ = ["LineRunner", "FxsLeg", "FxoLeg", "AnalogPorts", "AudioLink", "codecs_for"]

log = logging.getLogger(__name__)

_PORT_COMMANDS = (bport.Ring, bport.StopRing, bport.Seize, bport.Release, bport.SendCallerId,
                  bport.SetPolarity, bport.SetMwi, bport.PlayTone, bport.StopTone, bport.SendDigit)
VOICE_DBM0 = -45.0     # a frame louder than this is "voice" for the FXO silence timeout
# An FXO line listens for caller ID on hook, and off hook while it answers CAR for it (jp).
_CID_STATES = frozenset({FxoState.IDLE, FxoState.RINGING, FxoState.CALLER_ID})


def codecs_for(p: DriverPort) -> tuple[Codec, ...]:
    """G.711 in the port's own law first: no transcoding when the far end takes it."""
    u, a = Codec("PCMU", 0), Codec("PCMA", 8)
    return (u, a) if p.law == "ulaw" else (a, u)


class LineRunner:
    """One line machine on one driver port (see the module docstring)."""

    def __init__(self, clock: Clock, p: DriverPort, line: FxsLine | FxoLine,
                 on_call_event: Callable[[object], None]) -> None:
        self.clock, self.port, self.line = clock, p, line
        self.on_call_event = on_call_event
        self._timer: Any = None
        self._timer_at: float | None = None
        p.on_event = self.on_port_event
        if isinstance(line, FxsLine):
            self._dtmf = DtmfDetector()
        else:
            std = p.region.cid_standard
            self._cid = CallerIdReceiver(std) if std else None
            self._progress = CallProgressDetector(p.region.tone_zone, ("busy", "congestion", "dial"))

    def on_port_event(self, event: bport.PortEvent, now: float) -> None:
        self.line.on_event(event, now)
        self.pump()

    def on_audio(self, frame: bytes) -> None:
        """20 ms of G.711 heard on the line."""
        now = self.clock.time()
        x = decode(self.port.law, frame)
        line = self.line
        if isinstance(line, FxsLine):
            if line.state is not FxsState.IDLE:
                for d in self._dtmf.feed(x):
                    line.digit(d.digit, now)
        else:
            if self._cid is not None and line.state in _CID_STATES:
                cid = self._cid.feed(x)
                if cid is not None:
                    line.caller_id(cid, now)
            if line.state is not FxoState.IDLE:
                for t in self._progress.feed(x):
                    line.tone_detected(t.name, now)
                if dbm0(sum(v * v for v in x) / len(x)) > VOICE_DBM0:
                    line.voice_activity(now)
        self.pump()

    def pump(self) -> None:
        while (o := self.line.next_output()) is not None:
            if isinstance(o, _PORT_COMMANDS):
                self.port.send(o)
            else:
                self.on_call_event(o)
        when = self.line.get_timer()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self.clock.call_at(when, self._fire) if when is not None else None

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self.line.handle_timer(self.clock.time())
        self.pump()


class _AnalogLeg:
    """What both analog legs share: the ``b2bua.Leg`` attributes and how events leave."""

    def __init__(self, ports: "AnalogPorts", runner: LineRunner) -> None:
        self.ports = ports
        self.runner = runner
        self.port = runner.port
        self.name = f"analog:{self.port.name}"
        self.call: Call | None = None
        self.endpoint: Endpoint | None = None
        self.codecs: tuple[Codec, ...] = ()
        self.answered = False
        self.ended = False
        self.audio: AudioLink | None = None

    def _emit(self, event: Event) -> None:
        if isinstance(event, Answer):
            self.answered = True
            self.codecs = (event.codecs[0],)
        if isinstance(event, Release):
            self.ended = True
        if self.call is not None:
            self.call.on_event(self, event)
        if isinstance(event, Release):
            self._done()

    def _done(self) -> None:
        self.ended = True
        self.ports._free(self)

    def deliver(self, event: Event) -> None:
        """A call event from the controller about the other leg."""
        if self.ended:
            return
        if isinstance(event, Answer):
            self.codecs = (self.runner.line.config.codecs[0],)
        now = self.runner.clock.time()
        if self.ports._other.get(self.port.name) is self:
            # the waiting or held call of an FXS port (call waiting)
            self.runner.line.handle_call_event(event, now, other=True)  # type: ignore[call-arg]
        else:
            self.runner.line.handle_call_event(event, now)
        self.runner.pump()
        if isinstance(event, Release):
            self._done()


class FxsLeg(_AnalogLeg):
    """An analog phone: the caller when it dials, the callee when the PBX rings it."""

    shared_endpoint = True  # call waiting: two calls, one port endpoint (see Call._hold)

    def __init__(self, ports: "AnalogPorts", runner: LineRunner, extension: str) -> None:
        super().__init__(ports, runner)
        self.user: str | None = None      # b2bua.extension_of: the extension as caller ...
        self.callee: str | None = None    # ... or as callee
        self.extension = extension
        self.setup: Setup | None = None

    async def start(self) -> None:
        """Ring the phone for ``self.setup`` (the PBX calls this after ``route()``), or offer
        the call with the call-waiting tone when the phone is talking; busy when neither."""
        assert self.setup is not None
        line = self.runner.line
        assert isinstance(line, FxsLine)
        now, cid = self.runner.clock.time(), caller_id_of(self.ports.named(self.setup, self.call))
        if line.state is FxsState.IDLE and self.ports._take(self):
            line.ring(cid, now)
        elif self.ports._can_wait(self) and line.wait(cid, now):
            self.ports._wait(self)
        else:
            self._emit(Release("busy", 486))
            return
        self.runner.pump()
        self._emit(Alerting())


class FxoLeg(_AnalogLeg):
    """A CO line: the caller when it rings in, the callee when the PBX dials out on it."""

    def __init__(self, ports: "AnalogPorts", runner: LineRunner) -> None:
        super().__init__(ports, runner)
        self.setup: Setup | None = None
        self.callee: str | None = None

    async def start(self) -> None:
        """Seize and dial ``self.setup.callee``."""
        assert self.setup is not None
        line = self.runner.line
        line.handle_call_event(self.setup, self.runner.clock.time())
        self.runner.pump()


class AnalogPorts:
    """Every analog port of a driver as a leg of the PBX.

    ``extensions`` maps FXS port names to extension numbers; ``trunks`` maps FXO port names to
    the callee their inbound calls go to (an extension, IVR or queue number). ``start_call(leg)``
    makes a ``Call`` for a leg that starts one (see the module docstring); ``on_flash(leg)``
    hears hook flashes. ``clock`` must be the driver's time base, because events carry its
    ``now`` and the lines' deadlines are set from it: the loop for DAHDI, ``SimHat.clock`` for
    the simulated HAT (also when it ticks in real time from the loop).

    ``directory(number)`` is the configured name of an extension ("" when it has none): an
    analog phone rung by an extension whose call carries no display name shows that name
    (``named``). It is asked at each call, so a renamed extension shows its new name.
    """

    def __init__(self, clock: Clock, driver: Driver, *, extensions: Mapping[str, str],
                 trunks: Mapping[str, str], dial_plan: DialPlan,
                 start_call: Callable[[_AnalogLeg], None],
                 on_flash: Callable[[FxsLeg], None] | None = None,
                 fxs_config: FxsConfig | None = None, fxo_config: FxoConfig | None = None,
                 names: Mapping[str, str] | None = None,
                 media: "MediaEngine | None" = None,
                 fxo_configs: Mapping[str, FxoConfig] | None = None,
                 fxs_configs: Mapping[str, FxsConfig] | None = None,
                 directory: Callable[[str], str] | None = None) -> None:
        self.clock, self.driver = clock, driver
        self.directory = directory
        self.start_call, self.on_flash = start_call, on_flash
        self.media = media
        self._by_port: dict[str, _AnalogLeg | None] = {}
        self._other: dict[str, FxsLeg] = {}   # an FXS port's waiting or held call (call waiting)
        self._runners: dict[str, LineRunner] = {}
        self._ext: dict[str, str] = {}
        self._links: dict[str, AudioLink] = {}
        for name, number in extensions.items():
            p = driver.port(name)
            if p.kind is not bport.PortKind.FXS:
                raise ValueError(f"{name} is an {p.kind.value.upper()} port, not FXS")
            if number in self._ext.values():
                raise ValueError(f"extension {number} is on two ports")
            self._ext[name] = number
            own = (fxs_configs or {}).get(name)
            cfg = replace(own, codecs=codecs_for(p)) if own else fxs_config or FxsConfig(codecs=codecs_for(p))
            line = FxsLine(p.region, number, dial_plan, name=(names or {}).get(name, ""), config=cfg)
            self._runners[name] = LineRunner(clock, p, line, lambda ev, n=name: self._from_line(n, ev))
        for name, inbound in trunks.items():
            p = driver.port(name)
            if p.kind is not bport.PortKind.FXO:
                raise ValueError(f"{name} is an {p.kind.value.upper()} port, not FXO")
            base = (fxo_configs or {}).get(name) or fxo_config or FxoConfig()
            cfg = FxoConfig(**{**base.__dict__, "inbound": inbound, "codecs": codecs_for(p)})
            line = FxoLine(p.region, config=cfg)
            self._runners[name] = LineRunner(clock, p, line, lambda ev, n=name: self._from_line(n, ev))
        self._by_port = {n: None for n in self._runners}
        driver.on_audio = self._on_audio

    # --- what the PBX asks -----------------------------------------------------------------

    @property
    def extensions(self) -> dict[str, str]:
        """Extension number -> FXS port name."""
        return {num: name for name, num in self._ext.items()}

    def route(self, number: str, setup: Setup) -> FxsLeg | None:
        """A callee leg ringing the FXS port of extension ``number`` (start it with ``await
        leg.start()``), or None when no analog port serves that number."""
        name = self.extensions.get(number)
        if name is None:
            return None
        leg = FxsLeg(self, self._runners[name], number)
        leg.callee, leg.setup = number, setup
        if self._by_port[name] is None:
            self._by_port[name] = leg
            self._attach(leg)
        return leg

    def trunk(self, setup: Setup, lines: tuple[str, ...] = ()) -> FxoLeg | None:
        """A callee leg dialling ``setup.callee`` on the first free FXO line of ``lines`` (hunt
        order; empty: any line), or None when every one is in use or not configured."""
        names = lines or [n for n, r in self._runners.items() if isinstance(r.line, FxoLine)]
        for name in names:
            r = self._runners.get(name)
            if r is None or not isinstance(r.line, FxoLine):
                # a route may name a line the board lacks (validated against the ports document)
                log.warning("route names %s, which is no FXO line of this board", name)
                continue
            if self._by_port[name] is None and r.line.state is FxoState.IDLE:
                leg = FxoLeg(self, r)
                leg.setup, leg.callee = setup, setup.callee
                self._by_port[name] = leg
                self._attach(leg)
                return leg
        return None

    def named(self, setup: Setup, call: "Call | None") -> Setup:
        """``setup`` with the caller's configured extension name when it carries no name of its
        own and the caller is that extension (the call's first leg is authenticated as it). A
        display name the caller sent wins; an outside number that happens to equal an
        extension number is not given that extension's name."""
        if setup.caller_name or not setup.caller or self.directory is None or call is None:
            return setup
        if getattr(call.a, "user", None) != setup.caller:
            return setup
        name = self.directory(setup.caller)
        return replace(setup, caller_name=name) if name else setup

    def set_mwi(self, number: str, on: bool) -> None:
        name = self.extensions.get(number)
        if name is None:
            raise KeyError(f"no analog extension {number!r}")
        r = self._runners[name]
        assert isinstance(r.line, FxsLine)
        r.line.set_mwi(on)
        r.pump()

    def status(self) -> list[dict]:
        return [{"port": n, "kind": r.port.kind.value, "state": r.line.state.value,
                 "number": self._ext.get(n),
                 "in_call": self._by_port[n] is not None or n in self._other,
                 **({"other_call": "held" if r.line.other.held else "waiting"}
                    if isinstance(r.line, FxsLine) and r.line.other is not None else {})}
                for n, r in self._runners.items()]

    # --- from the lines ------------------------------------------------------------------------

    def _from_line(self, name: str, ev: object) -> None:
        leg = self._by_port[name]
        runner = self._runners[name]
        if isinstance(ev, Setup):
            # a phone dialled, or a CO line rang and was answered: a new call from this port
            if leg is not None and not leg.ended:
                log.warning("%s: new call while a leg is active; releasing it", name)
                leg._emit(Release("congestion"))
            if isinstance(runner.line, FxsLine):
                new: _AnalogLeg = FxsLeg(self, runner, self._ext[name])
                new.user = self._ext[name]    # type: ignore[attr-defined]
            else:
                new = FxoLeg(self, runner)
            new.codecs = ev.codecs
            self._by_port[name] = new
            self._attach(new)
            self.start_call(new)
            if new.call is None:
                log.error("%s: start_call made no call; releasing", name)
                new.deliver(Release("congestion"))
                return
            new._emit(ev)
            return
        if isinstance(ev, SwapCalls):
            other = self._other.pop(name, None)
            if leg is not None and not leg.ended:
                assert isinstance(leg, FxsLeg)
                self._other[name] = leg
            self._by_port[name] = other
            return
        if leg is None:
            return
        if isinstance(ev, Flash):
            if self.on_flash is not None and isinstance(leg, FxsLeg):
                self.on_flash(leg)
            return
        if isinstance(ev, (Alerting, Answer, Digit, Hold, Transfer, Release)):
            leg._emit(ev)

    def _take(self, leg: FxsLeg) -> bool:
        """The port's active slot for a leg about to ring an idle phone (route() took it already
        unless the port was busy then)."""
        name = leg.port.name
        if self._by_port[name] is None:
            self._by_port[name] = leg
            self._attach(leg)
        return self._by_port[name] is leg

    def _can_wait(self, leg: FxsLeg) -> bool:
        name = leg.port.name
        active = self._by_port[name]
        return active is not None and active is not leg and not active.ended and name not in self._other

    def _wait(self, leg: FxsLeg) -> None:
        """The leg is the port's waiting call: it shares the port's endpoint (bridged only once
        the phone takes the call, after the active call set its bridge aside)."""
        self._other[leg.port.name] = leg
        self._attach(leg)

    def _attach(self, leg: _AnalogLeg) -> None:
        link = self._links.get(leg.port.name)
        if link is not None:
            leg.audio, leg.endpoint = link, link.endpoint

    def _free(self, leg: _AnalogLeg) -> None:
        name = leg.port.name
        if self._by_port.get(name) is leg:
            self._by_port[name] = None
        if self._other.get(name) is leg:
            del self._other[name]
        leg.audio = None       # the port keeps its endpoint for the next call

    def _on_audio(self, p: DriverPort, frame: bytes) -> None:
        r = self._runners.get(p.name)
        if r is None:
            return
        leg = self._by_port.get(p.name) or self._other.get(p.name)
        if leg is not None and leg.audio is not None:
            # to the endpoint, whichever call it is bridged in (the active one's, if any)
            leg.audio.send(frame)
        r.on_audio(frame)

    async def open_media(self, links: "dict[str, AudioLink] | None" = None) -> None:
        """One media-engine endpoint per port (needs ``media``); call once at start. ``links``:
        those of an AnalogPorts this one replaces (a new port configuration), kept."""
        if self.media is None:
            raise RuntimeError("AnalogPorts was made without a media engine")
        for name, link in (links or {}).items():
            if name in self._runners:
                self._links[name] = link
            else:
                link.close()
        try:
            for name, r in self._runners.items():
                if name not in self._links:
                    self._links[name] = await AudioLink.open(self.media, self.driver, r.port)
        except BaseException:
            self.close_media()
            raise
        for leg in [*self._by_port.values(), *self._other.values()]:
            if leg is not None:
                self._attach(leg)

    def take_media(self) -> "dict[str, AudioLink]":
        """Hands the ports' endpoints over (to the AnalogPorts that replaces this one)."""
        links, self._links = dict(self._links), {}
        return links

    def close_media(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()


class AudioLink:
    """A port's audio as RTP to and from a media-engine endpoint over 127.0.0.1.

    The endpoint is an ordinary one: the controller bridges it to the other leg's, and the
    relay forwards (and transcodes) as for any SIP phone. Line audio goes out as one RTP packet
    per 20 ms frame in the port's law; what the relay sends back is written to the port.
    """

    def __init__(self, endpoint: "Endpoint", sock: socket.socket, driver: Driver, p: DriverPort,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint, self.sock, self.driver, self.port, self.loop = endpoint, sock, driver, p, loop
        self.pt = 0 if p.law == "ulaw" else 8
        self.ssrc = int.from_bytes(os.urandom(4), "big")
        self.seq = int.from_bytes(os.urandom(2), "big")
        self.ts = int.from_bytes(os.urandom(4), "big")
        self.closed = False
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def open(cls, engine: "MediaEngine", driver: Driver, p: DriverPort) -> "AudioLink":
        ep = await engine.open_endpoint()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sock.connect((ep.local_host if ep.local_host not in ("0.0.0.0", "") else "127.0.0.1",
                          ep.local_port))
            ep.set_remote("127.0.0.1", sock.getsockname()[1])
        except BaseException:
            sock.close()
            ep.close()
            raise
        return cls(ep, sock, driver, p, asyncio.get_running_loop())

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        pkt = RtpPacket(payload_type=self.pt, sequence_number=self.seq, timestamp=self.ts,
                        ssrc=self.ssrc, payload=frame)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + len(frame)) & 0xFFFFFFFF
        try:
            self.sock.send(bytes(pkt))
        except (BlockingIOError, ConnectionRefusedError):
            pass    # the engine is not reading yet / went away: this frame is lost, like on a LAN

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                return
            try:
                pkt = RtpPacket.parse(data)
            except ValueError:
                continue
            if pkt.payload_type == self.pt and len(pkt.payload) == 160:
                self.driver.write_audio(self.port, pkt.payload)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.endpoint.close()
