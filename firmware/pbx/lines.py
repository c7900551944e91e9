"""The box's analog lines: the driver the settings choose, the ports document, and the ports
as legs of the PBX (issue 5).

* ``analog.driver`` picks the board: ``none``, ``sim`` (the simulated HAT of ``board.sim``:
  scriptable phones and exchanges, driven from outside with ``linebox sim ...`` through a
  control socket in the data directory) or ``dahdi`` (real cards, ``analog.channels``).
* The ``ports`` configuration document says what each port is::

      {"fxs1": {"extension": "1005"},            # an analog phone that is extension 1005
       "fxo1": {"inbound": "500"}}               # calls on this line go to 500 (IVR, queue...)

  An FXS port is an existing extension: it rings together with any SIP phone registered as
  that extension. An FXO port is a trunk: its incoming calls go to ``inbound``; extensions reach
  it by dialling ``analog.trunk_prefix`` and the number (the prefix is stripped).

The ports document is applied live when no analog call is up, else as soon as the last one
ends. The driver itself is chosen at start (changing it needs a restart).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from board.driver import Driver, decode
from board.fxo import FxoConfig
from board.fxs import DialPlan, FxsConfig
from firmware.pbx.b2bua import Call
from firmware.pbx.services import LinesHost
from firmware.events import Setup

if TYPE_CHECKING:
    from firmware.pbx.analog import AnalogPorts

# The drivers (board.sim, board.dahdi) and the ports (firmware.pbx.analog) are imported when a
# board is configured: their tone detection pulls in numpy, 12 MB of a box that has no analog
# lines (analog.driver "none", the default) and never needs it (scripts/bench_memory.py).

log = logging.getLogger(__name__)

SIM_SOCKET = "sim.sock"
BOARD_FILE = "board.json"  # the running box's ports, for `linebox port list`


def fxo_config(line: Mapping[str, Any]) -> FxoConfig:
    """The FxoConfig of a validated ``line`` object (what it leaves out: the defaults)."""
    kw = dict(line)
    if "disconnect_tones" in kw:
        kw["disconnect_tones"] = tuple(kw["disconnect_tones"])
    return FxoConfig(**kw)


def _channels(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += range(int(lo), int(hi) + 1)
        elif part.strip():
            out.append(int(part))
    return out


def make_driver(settings: Mapping[str, Any]) -> Driver | None:
    kind = settings["analog.driver"]
    region = settings["analog.region"]
    if kind == "sim":
        from board.sim import SimHat

        fxo_regions = [r for r in settings["analog.sim_fxo_regions"].split(",") if r] or None
        return SimHat(fxs=settings["analog.sim_fxs"], fxo=len(fxo_regions) if fxo_regions else settings["analog.sim_fxo"],
                      region=region, fxo_regions=fxo_regions)
    if kind == "dahdi":
        from board.dahdi import DahdiDriver

        return DahdiDriver(_channels(settings["analog.channels"]), region)
    return None


def _is_sim(driver: Driver | None) -> bool:
    if driver is None:
        return False
    from board.sim import SimHat

    return isinstance(driver, SimHat)


def _is_dahdi(driver: Driver | None) -> bool:
    if driver is None:
        return False
    from board.dahdi import DahdiDriver

    return isinstance(driver, DahdiDriver)


class Lines:
    def __init__(self, pbx: LinesHost, data: Path) -> None:
        self.pbx = pbx
        self.data = data
        self.driver: Driver | None = None
        self.ports: AnalogPorts | None = None
        self.line_tests: dict[str, LineTestRun] = {}  # by port: one test per line at a time
        self._doc: dict[str, Any] = {}
        self._pending: dict[str, Any] | None = None
        self._server: Any = None

    async def start(self, doc: Mapping[str, Any] | None) -> None:
        self.driver = make_driver(self.pbx.settings)
        if self.driver is None:
            (self.data / BOARD_FILE).unlink(missing_ok=True)
            return
        loop = self.pbx.loop
        if _is_dahdi(self.driver):
            self.driver.open()
            self.driver.start(loop)
        else:
            assert _is_sim(self.driver)
            self.driver.start(loop)
            sock = self.data / SIM_SOCKET
            sock.unlink(missing_ok=True)
            self._server = await self.driver.serve(str(sock))
        self._build(dict(doc or {}))
        if self.ports is not None:
            await self.ports.open_media()
        (self.data / BOARD_FILE).write_text(json.dumps(
            [{"port": p.name, "kind": p.kind.value, "region": p.region.code, "law": p.law} for p in self.driver.ports]))
        log.info("analog: %s driver, ports %s", self.pbx.settings["analog.driver"],
                 ", ".join(p.name for p in self.driver.ports))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.ports is not None:
            self.ports.close_media()
        if _is_sim(self.driver):
            await self.driver.stop()
        elif _is_dahdi(self.driver):
            self.driver.close()

    @property
    def clock(self) -> Any:
        return self.driver.clock if _is_sim(self.driver) else self.pbx.loop

    async def configure(self, doc: Mapping[str, Any] | None) -> None:
        """A changed ports document: applied now if no analog call is up, else when it ends."""
        doc = dict(doc or {})
        if self.driver is None or doc == self._doc:
            return
        if self._busy():
            self._pending = doc
            return
        links = self.ports.take_media() if self.ports is not None else {}
        self._build(doc)
        if self.ports is not None:
            await self.ports.open_media(links)  # one endpoint per port for the life of the box

    def _build(self, doc: dict[str, Any]) -> None:
        assert self.driver is not None
        names = {p.name for p in self.driver.ports}
        exts = {n: s["extension"] for n, s in doc.items() if "extension" in s and n in names}
        trunks = {n: s["inbound"] for n, s in doc.items() if "inbound" in s and n in names}
        lines = {n: fxo_config(s["line"]) for n, s in doc.items() if "line" in s and n in names}
        phones = {n: FxsConfig(call_waiting=s["call_waiting"]) for n, s in doc.items()
                  if "call_waiting" in s and n in names}
        for n in set(doc) - names:
            log.warning("ports: %s is configured but the %s driver has no such port", n,
                        self.pbx.settings["analog.driver"])
        from firmware.pbx.analog import AnalogPorts

        try:
            self.ports = AnalogPorts(self.clock, self.driver, extensions=exts, trunks=trunks,
                                     dial_plan=self._dial_plan(), start_call=self._start_call,
                                     media=self.pbx.media, fxo_configs=lines, fxs_configs=phones,
                                     directory=self._extension_name)
        except ValueError as exc:  # an FXS number on an FXO port...: keep the lines we had
            log.error("ports: %s; keeping the previous port configuration", exc)
            return
        self._doc = doc
        if self.pbx.lines is self:  # rebuilt ports start dark: light the waiting indicators again
            self.pbx.refresh_mwi()

    def _dial_plan(self) -> DialPlan:
        # The number plan answers "is this a number yet?" as it answers where a number goes.
        return self.pbx.plan.complete

    def _extension_name(self, number: str) -> str:
        """An extension's configured name ("" for none): looked up at each call, so a reload
        that renames it shows at the next one."""
        ext = self.pbx.extensions.get(number)
        return getattr(ext, "name", "") or ""

    def _start_call(self, leg: Any) -> None:
        call = Call(self.pbx, leg, call_id=f"analog-{uuid.uuid4().hex}")
        self.pbx.calls.add(call)

    def _busy(self) -> bool:
        """A port in a call or under a line test: rebuilding the ports now would cut it off."""
        return (self.ports is not None and any(s["in_call"] for s in self.ports.status())) \
            or any(t.report is None for t in self.line_tests.values())

    def call_ended(self) -> None:
        if self._pending is not None and not self._busy():
            doc, self._pending = self._pending, None
            self.pbx.loop.create_task(self.configure(doc))

    def start_line_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The ``line-test`` action: ``{"port": "fxo1", "number": "5551234", "inbound": true}``."""
        name = str(args.get("port", ""))
        running = self.line_tests.get(name)
        if running is not None and running.report is None:
            raise LineTestError(f"a line test of {name} is running")
        run = LineTestRun(self, name, str(args.get("number", "")), inbound=bool(args.get("inbound", True)))
        run.start()
        self.line_tests[name] = run
        return run.state()

    def line_test_state(self) -> dict[str, Any]:
        """Each port's latest line test, by port name."""
        return {name: run.state() for name, run in self.line_tests.items()}

    # --- what routing asks -------------------------------------------------------------------

    def route(self, number: str, setup: Setup) -> Any:
        return self.ports.route(number, setup) if self.ports is not None else None

    def set_mwi(self, number: str, on: bool) -> None:
        """Stutter dial tone and the lamp on the analog phone that is ``number``, if one is."""
        if self.ports is not None and number in self.ports.extensions:
            self.ports.set_mwi(number, on)

    def trunk(self, setup: Setup, lines: tuple[str, ...] = ()) -> Any:
        return self.ports.trunk(setup, lines) if self.ports is not None else None


    def status(self) -> list[dict[str, Any]]:
        """Every port of the board, configured or not (``state`` "unused" when not)."""
        if self.driver is None:
            return []
        live = {s["port"]: s for s in (self.ports.status() if self.ports is not None else [])}
        out = []
        for p in self.driver.ports:
            s = live.get(p.name, {"port": p.name, "kind": p.kind.value, "state": "unused", "number": None,
                                  "in_call": False})
            out.append({**s, "region": p.region.code, "law": p.law,
                        "inbound": self._doc.get(p.name, {}).get("inbound")})
        return out


class LineTestRun:
    """The guided line test (board.linetest) on one FXO port of the running box.

    The port is taken from the PBX for the test (it must be idle) and given back after. What
    the installer must do (call the line, answer the test call) is published as prompts, and
    the report at the end, through ``state()`` (the CLI and the web admin poll it).
    """

    def __init__(self, lines: Lines, port_name: str, number: str, *, inbound: bool = True) -> None:
        # Imported on the first line test, not at start: an installer's rare action, and the
        # module (tone learning, caller ID analysis) costs the box ~150 KB and ~25 ms to load.
        from board.linetest import LineTest, LineTestConfig

        if lines.driver is None or lines.ports is None:
            raise LineTestError("this box has no analog board (set analog.driver)")
        try:
            self.port = lines.driver.port(port_name)
        except KeyError as exc:
            raise LineTestError(str(exc.args[0])) from None
        if self.port.kind.value != "fxo":
            raise LineTestError(f"{port_name} is an FXS port; the line test is for FXO lines")
        busy = {s["port"]: s["in_call"] for s in lines.ports.status()}
        if busy.get(port_name):
            raise LineTestError(f"{port_name} is in a call; try again when it is free")
        if not number.isdigit():
            raise LineTestError(f"the test number is digits (a phone you hold), not {number!r}")
        self.lines = lines
        self.test = LineTest(LineTestConfig(number, inbound=inbound))
        self.prompts: list[dict[str, str]] = []
        self.report: Any = None
        self.error: str | None = None
        self._timer: Any = None
        self._saved_event = self.port.on_event

    @property
    def clock(self) -> Any:
        return self.lines.clock

    def _now(self) -> float:
        return self.clock.time()  # the loop's or the simulated HAT's: the port events' time base

    def start(self) -> None:
        driver, port = self.lines.driver, self.port
        prev_audio = driver.on_audio  # the ports' (or another line test's)

        def on_audio(p: Any, frame: bytes) -> None:
            if p is port and self.report is None:
                self.test.on_audio(decode(p.law, frame), self._now())
                self._pump()
            elif prev_audio is not None:
                prev_audio(p, frame)

        port.on_event = lambda e, now: (self.test.on_event(e, now), self._pump())
        driver.on_audio = on_audio
        self.test.start(self._now())
        self._pump()

    def _pump(self) -> None:
        from board.linetest import Finished, Prompt

        while (o := self.test.next_output()) is not None:
            if isinstance(o, Prompt):
                self.prompts.append({"kind": o.kind, "text": o.text})
            elif isinstance(o, Finished):
                self.report = o.report
                self._give_back()
                return
            else:
                self.port.send(o)
        if self._timer is not None:
            self._timer.cancel()
        when = self.test.get_timer()
        self._timer = self.clock.call_at(when, self._fire) if when is not None else None

    def _fire(self) -> None:
        self._timer = None
        if self.report is None:
            self.test.handle_timer(self._now())
            self._pump()

    def _give_back(self) -> None:
        # The audio hook stays chained (it passes this port on once the report is in): other
        # line tests may have chained theirs on top of it meanwhile.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.port.on_event = self._saved_event
        self.lines.call_ended()  # a port configuration that waited for the test

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"port": self.port.name, "phase": self.test.phase.value, "prompts": self.prompts,
                               "finished": self.report is not None}
        if self.report is not None:
            settings = dict(self.report.settings)
            out["settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
            out["report"] = self.report.text()
        return out


class LineTestError(ValueError):
    """A line test that cannot start; the message says why."""
