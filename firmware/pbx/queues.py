"""ACD queues on real calls: the pure engines of firmware/acd driven by call legs and the loop.

The engine (``acd.queue.Queue``) decides; this module only carries out what it says and tells
it what happened (STYLE.md §4–6):

* a caller who dials a queue's number (or is sent there by an IVR) is answered by a
  ``QueueCaller`` leg: music on hold, position and expected-wait announcements, and the keys
  to ask for a callback or to leave;
* ``RingAgents`` rings every registered phone of each offered agent through an ``AgentOffer``,
  a small controller of its own; the first phone to answer is handed into the caller's call
  (``Call.connect``) when the engine says ``Connect``;
* ``PlaceCallback`` rings the agent first and, once the agent answers, a new call rings the
  caller back while the agent hears ringback;
* agents log in, log out, pause (with a reason code) and unpause from their desk phone with
  the ``*51``–``*54`` feature codes;
* every fact the engine logs goes to the database's queue log (group-committed), keyed by the
  caller's CDR id, so statistics and CDRs describe the same calls.

The queue clock is wall time (statistics are per hour and day), never allowed to run back.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from firmware.acd.events import Kind, QueueEvent
from firmware.acd.queue import (Announce, Connect, Overflow, PlaceCallback, Queue, QueueError, RingAgents,
                                StopRinging)
from firmware.prompts import PromptSet, digits_to_prompts, number_to_prompts
from firmware.sip.sdp import Codec

from firmware.numberplan import Codes, Destination, Keyed

from .apps import AppLeg
from .b2bua import Call, terminal_on
from .services import AppHost, CallerHost, FeatureHost, QueueHost
from firmware.events import Answer, Event, Release, Setup
from firmware.media.player import Playlist, silence
from firmware.media.tones import TONES

if TYPE_CHECKING:
    from firmware.acd.schema import QueueSpec

log = logging.getLogger(__name__)

# Feature codes agents dial from their desk phone; digits after the code name a queue by its
# number (login/logout) or give the pause reason code (pause).
AGENT_CODES = {"*51": "login", "*52": "logout", "*53": "pause", "*54": "unpause"}
PRIORITY = 10  # what a caller on a queue's priority list joins with
CALLBACK_CODECS = (Codec("PCMU", 0), Codec("PCMA", 8), Codec("telephone-event", 101, 8000, "0-16"))
LEAD_IN = silence(500)
KEY_WAIT = 10.0  # seconds a caller has to answer a callback question before music resumes
CALLBACK_HOLD = 60.0  # at most this long a callback waits for its caller's first call to end
CALLER_FREE_WAIT = 30.0  # seconds a callback waits for the caller's line to be free before ringing anyway


class AgentHost(AppHost, Protocol):
    """What an agent's feature code reads besides an application leg's: the queue runtime it
    logs the agent in and out of (here and not in services.py, as it names ``QueueRuntime``)."""

    queues: QueueRuntime


class QueueFeatureHost(FeatureHost, AgentHost, Protocol):
    """What the queues' ``register()`` uses: a feature's host that also has the queue runtime."""


class AgentCommand(AppLeg):
    """*51 login, *52 logout, *53[reason] pause, *54 unpause: says what was done, hangs up."""

    pbx: AgentHost
    name = "agent"

    def __init__(self, pbx: AgentHost, setup: Setup, prompts: PromptSet, *, verb: str, arg: str) -> None:
        super().__init__(pbx, setup, prompts)
        self.verb, self.arg = verb, arg

    def begin(self) -> None:
        try:
            said = self.pbx.queues.agent_command(self.setup.caller, self.verb, self.arg)
        except QueueError as exc:
            log.info("agent %s %s refused: %s", self.setup.caller, self.verb, exc)
            said = [exc.prompt]
        # A phone's first few hundred milliseconds of media are often lost to its jitter buffer
        # starting up; a short answer like "Agent logged in." would lose its first word.
        self.last_words([LEAD_IN, *said])  # type: ignore[list-item]

    def on_played(self, playback: int, interrupted: bool) -> None:
        self.hang_up()


class QueueCaller(AppLeg):
    """The caller's side while waiting: music, announcements, callback and exit keys."""

    pbx: CallerHost
    name = "queue"
    inband = True  # the callback and exit keys, whichever way the phone sends them

    def __init__(self, pbx: CallerHost, setup: Setup, prompts: PromptSet, *, runtime: QueueRuntime,
                 queue: str) -> None:
        super().__init__(pbx, setup, prompts)
        self.runtime = runtime
        self.queue = queue
        self.mode = "music"  # music | notice | announcing | cb-confirm | cb-number | closing
        self.cb_number = setup.caller
        self.typed = ""
        self._key_timer: Any = None
        self._playing: int | None = None  # the playback whose end moves the caller on
        self._pending: tuple[int | None, int | None] | None = None

    @property
    def spec(self) -> QueueSpec:
        return self.runtime.queues[self.queue].spec

    def begin(self) -> None:
        self._music()
        if self.pbx.setting("recording.announce") == "yes" and self._may_be_recorded():
            self.mode = "notice"
            self.say(["call-may-be-recorded"])
        self.runtime.caller_joined(self)

    def _may_be_recorded(self) -> bool:
        mode = self.pbx.recording_policy.mode(numbers=[self.setup.callee], queue_mode=self.spec.recording,
                                              default=self.pbx.setting("recording.calls"))
        return mode != "never"

    # --- what the runtime asks -------------------------------------------------------------------

    def announce(self, position: int | None, ewt: int | None) -> None:
        if self.mode == "notice":
            self._pending = (position, ewt)  # said once the recording notice is over
            return
        if self.mode not in ("music", "announcing") or self.terminal is None:
            return
        spec = self.spec
        said: list[str] = []
        if position is not None and spec.announce_position:
            said += ["you-are-next"] if position == 1 else ["you-are-number", *number_to_prompts(position), "in-line"]
        if ewt is not None and spec.announce_wait:
            said += ["your-expected-wait-is", *wait_prompts(ewt)]
        if spec.callback_key:
            said += ["press", *digits_to_prompts(spec.callback_key), "to-request-a-callback"]
        if not said:
            return
        self.mode = "announcing"
        self.say(said, barge_in=True)

    def connect(self, agent_leg: Any) -> None:
        call = self.call
        self._close()
        self.ended = True
        if call is not None:
            call.connect(self, agent_leg)

    def overflow(self, destination: dict[str, Any] | None) -> None:
        self._cancel_key_timer()
        if destination is None or destination.get("goto", "hangup") == "hangup":
            self.mode = "closing"
            self.last_words(["goodbye"])
            return
        self.hand_on(destination["goto"], destination.get("target"))

    # --- what the caller does -------------------------------------------------------------------

    def on_digit(self, digit: str) -> None:
        spec = self.spec
        if self.mode in ("music", "announcing", "notice"):
            if spec.callback_key and digit == spec.callback_key:
                self._ask_callback()
            elif spec.exit_key and digit == spec.exit_key and spec.exit:
                self.runtime.caller_exited(self)
                self.hand_on(spec.exit["goto"], spec.exit.get("target"))
        elif self.mode == "cb-confirm":
            self._cancel_key_timer()
            if digit == "1":
                self.runtime.callback_requested(self, self.cb_number)
                self.mode = "closing"
                self.last_words(["callback-scheduled", "goodbye"])
            elif digit == "2":
                self.mode, self.typed = "cb-number", ""
                self.say(["callback-enter-number"], barge_in=True)
                self._arm_key_timer()
            else:
                self._music()
        elif self.mode == "cb-number":
            self._cancel_key_timer()
            if digit in "#":
                if self.typed:
                    self.cb_number = self.typed
                self._ask_callback()
            elif digit.isdigit() and len(self.typed) < 20:
                self.typed += digit
                self._arm_key_timer()

    def say(self, names: list[str], *, barge_in: bool = False) -> int:
        self._playing = super().say(names, barge_in=barge_in)
        return self._playing

    def on_played(self, playback: int, interrupted: bool) -> None:
        if playback != self._playing:
            return  # replaced by what came next
        if self.mode == "closing":
            self.hang_up()
        elif self.mode == "notice":
            self._music()
            if self._pending is not None:
                position, ewt = self._pending
                self._pending = None
                self.announce(position, ewt)
        elif self.mode == "announcing" and not interrupted:
            self._music()

    def _ask_callback(self) -> None:
        self.mode = "cb-confirm"
        self.say(["callback-confirm", *digits_to_prompts(self.cb_number), "callback-other-number"], barge_in=True)
        self._arm_key_timer()

    def _music(self) -> None:
        self.mode = "music"
        if self.terminal is not None:
            self._playing = self.terminal.play(self.pbx.music_on_hold(), barge_in=False)

    def _arm_key_timer(self) -> None:
        self._cancel_key_timer()
        self._key_timer = self.pbx.loop.call_later(KEY_WAIT, self._key_timeout)

    def _key_timeout(self) -> None:
        self._key_timer = None
        if not self.ended and self.mode in ("cb-confirm", "cb-number"):
            self._music()

    def _cancel_key_timer(self) -> None:
        if self._key_timer is not None:
            self._key_timer.cancel()
            self._key_timer = None

    def _close(self) -> None:
        self._cancel_key_timer()
        super()._close()


def wait_prompts(seconds: int) -> list[str]:
    """An expected wait as said to a caller: "less than one minute", "about 3 minutes"."""
    if seconds < 60:
        return ["less-than", "1", "minute"]
    minutes = round(seconds / 60)
    return ["about", *number_to_prompts(minutes), "minute" if minutes == 1 else "minutes"]


class AgentOffer:
    """Rings one agent's registered phones for one queue call; their controller until one answers.

    The legs report to this object (it stands where a Call would). The answered leg waits here
    until the engine says Connect (or, for a callback, until the call to the caller is placed).
    """

    def __init__(self, runtime: QueueRuntime, queue: str, call_id: str, agent: str, setup: Setup,
                 *, callback: bool = False) -> None:
        self.runtime = runtime
        self.queue = queue
        self.call_id = call_id
        self.agent = agent
        self.setup = setup
        self.callback = callback
        self.id = f"offer-{call_id[:8]}-{agent}"
        self.legs: list[Any] = []
        self.answered: Any = None
        self.done = False

    def start(self) -> bool:
        pbx = self.runtime.pbx
        self.legs = pbx.ring(self.agent, self.setup)
        if not self.legs:
            return False
        for leg in self.legs:
            leg.call = self
            pbx.spawn(leg.start(), self.id, on_error=lambda leg=leg: self.on_event(leg, Release("congestion", 503)))
        return True

    # the leg-controller interface (what sipleg calls on leg.call)
    def on_event(self, leg: Any, event: Event) -> None:
        if self.done:
            if isinstance(event, Answer) and leg is not self.answered:
                leg.deliver(Release("answered-elsewhere"))
            return
        if isinstance(event, Answer) and self.answered is None:
            self.answered = leg
            for other in self.legs:
                if other is not leg:
                    other.deliver(Release("answered-elsewhere"))
            self.legs = [leg]
            self.runtime.offer_answered(self)
        elif isinstance(event, Release):
            if leg in self.legs:
                self.legs.remove(leg)
            if leg is self.answered:
                self.answered = None
                self.done = True
                self.runtime.offer_failed(self)
            elif not self.legs and self.answered is None:
                self.done = True
                self.runtime.offer_failed(self)
        # Alerting and Hold from a ringing agent's phone concern nobody yet.

    def media_changed(self, leg: Any) -> None:
        pass

    def end(self, cause: str, *, source: Any = None, **_: Any) -> None:
        self.cancel(cause)

    def cancel(self, cause: str = "answered-elsewhere") -> None:
        """Stops ringing (or hangs up the answered leg nobody took)."""
        self.done = True
        for leg in self.legs:
            if not leg.ended:
                leg.deliver(Release(cause))
        self.legs = []


@dataclass
class QueueSlot:
    spec: QueueSpec
    queue: Queue
    timer: Any = None
    retired: bool = False  # removed from the configuration; kept until its calls are done


class _Sink:
    """Where the engines append their log: the database (group commit) and a short memory."""

    def __init__(self, runtime: QueueRuntime) -> None:
        self.runtime = runtime
        self.recent: deque[QueueEvent] = deque(maxlen=1000)
        self.muted = False

    def append(self, event: QueueEvent) -> None:
        if self.muted:
            return
        self.recent.append(event)
        self.runtime.pbx.writer.queue_event(event)


class QueueRuntime:
    def __init__(self, pbx: QueueHost) -> None:
        self.pbx = pbx
        self.queues: dict[str, QueueSlot] = {}
        self.by_number: dict[str, str] = {}
        self.log = _Sink(self)
        self.callers: dict[str, QueueCaller] = {}  # queue call id (the caller's CDR id) -> waiting leg
        self.offers: dict[tuple[str, str], AgentOffer] = {}  # (call id, agent) -> ringing offer
        self.tracked: dict[str, str] = {}  # call id -> queue: calls whose end the queue must hear of
        self.callback_calls: dict[str, Call] = {}  # call id -> the call placing a callback
        self.held_callbacks: set[str] = set()  # callbacks whose caller is still being told goodbye
        self._now = 0.0
        self._pumping = False
        self._dirty: set[str] = set()

    def now(self) -> float:
        self._now = max(self._now, time.time())
        return self._now

    # --- configuration ---------------------------------------------------------------------------

    def configure(self, specs: list[QueueSpec]) -> None:
        """Applies the queue configuration while calls go on: waiting callers keep their place."""
        now = self.now()
        seen = set()
        for spec in specs:
            seen.add(spec.config.name)
            slot = self.queues.get(spec.config.name)
            if slot is None:
                self.queues[spec.config.name] = QueueSlot(spec, Queue(spec.config, now, log=self.log))  # type: ignore[arg-type]
            else:
                slot.spec, slot.retired = spec, False
                if slot.queue.config != spec.config:
                    slot.queue.reconfigure(spec.config, now)
                    self._pump(spec.config.name)
        for name, slot in list(self.queues.items()):
            if name not in seen:
                slot.retired = True
                self._drop_if_idle(name)
        self.by_number = {s.spec.number: n for n, s in self.queues.items() if not s.retired}

    def restore(self, events: list[QueueEvent]) -> None:
        """Dynamic agents stay logged in (and paused) across a restart: replays the log's last word."""
        last: dict[tuple[str, str], QueueEvent] = {}
        paused: dict[tuple[str, str], str | None] = {}
        for ev in events:
            key = (ev.queue, ev.agent)
            if ev.kind in (Kind.LOGIN, Kind.LOGOUT):
                last[key] = ev
                paused[key] = None
            elif ev.kind is Kind.PAUSE:
                paused[key] = ev.reason
            elif ev.kind is Kind.UNPAUSE:
                paused[key] = None
        now = self.now()
        self.log.muted = True
        try:
            for (queue, agent), ev in last.items():
                slot = self.queues.get(queue)
                if slot is None or ev.kind is not Kind.LOGIN or agent not in slot.spec.agents:
                    continue
                slot.queue.agent_login(agent, now, skills=slot.spec.agents[agent])
                if paused.get((queue, agent)) is not None:
                    slot.queue.agent_pause(agent, now, reason=paused[(queue, agent)] or "")
        finally:
            self.log.muted = False
        for name in self.queues:
            self._pump(name)

    # --- callers ---------------------------------------------------------------------------------

    def join_leg(self, setup: Setup, queue: str) -> QueueCaller:
        return QueueCaller(self.pbx, setup, self.pbx.prompts, runtime=self, queue=queue)

    def caller_joined(self, leg: QueueCaller) -> None:
        call, slot = leg.call, self.queues[leg.queue]
        if call is None:
            return
        self.callers[call.id] = leg
        self.tracked[call.id] = leg.queue
        call.listeners.append(self._call_event)
        if slot.spec.recording != "never":
            call.recording_mode = slot.spec.recording
        priority = PRIORITY if leg.setup.caller in slot.spec.priority_callers else 0
        slot.queue.caller_joined(call.id, leg.setup.caller, priority, self.now())
        self._pump(leg.queue)

    def callback_requested(self, leg: QueueCaller, number: str) -> None:
        call = leg.call
        if call is None:
            return
        self.callers.pop(call.id, None)
        now = self.now()
        try:
            # Held until the caller's call has ended (the box says goodbye first): then placed.
            self.queues[leg.queue].queue.callback_requested(call.id, number, now, hold_until=now + CALLBACK_HOLD)
        except QueueError as exc:
            log.warning("callback refused: %s", exc)
            self.tracked.pop(call.id, None)
        else:
            self.held_callbacks.add(call.id)  # its call's end releases the callback, no abandon
        self._pump(leg.queue)

    def caller_exited(self, leg: QueueCaller) -> None:
        call = leg.call
        if call is None:
            return
        self.callers.pop(call.id, None)
        self.tracked.pop(call.id, None)
        self.queues[leg.queue].queue.caller_exited(call.id, self.now())
        self._pump(leg.queue)

    def _call_event(self, what: str, call: Call) -> None:
        queue = self.tracked.get(call.id)
        if queue is None or what not in ("ended", "transferred"):
            return
        del self.tracked[call.id]
        if call.id in self.held_callbacks:
            self.held_callbacks.discard(call.id)
            slot = self.queues.get(queue)
            if slot is not None:
                slot.queue.callback_ready(call.id, self.now())
                self._pump(queue)
            return
        self.callers.pop(call.id, None)
        slot = self.queues.get(queue)
        if slot is not None:
            if what == "transferred":
                # the agent (or the caller) handed the call on: the agent is done with it
                slot.queue.call_transferred(call.id, call.transfer_target or "", self.now())
            else:
                slot.queue.caller_left(call.id, self.now())
            self._pump(queue)

    # --- agents ----------------------------------------------------------------------------------

    def agent_command(self, ext: str, verb: str, arg: str) -> list[str]:
        """A desk phone's *51–*54: returns the prompts that say what happened."""
        now = self.now()
        mine = [(n, s) for n, s in self.queues.items() if not s.retired
                and (ext in s.spec.agents or any(m.agent == ext for m in s.spec.config.members))]
        if verb in ("login", "logout") and arg:
            mine = [(n, s) for n, s in mine if s.spec.number == arg]
        if verb in ("login", "logout"):
            mine = [(n, s) for n, s in mine if ext in s.spec.agents]
        if not mine:
            raise QueueError(f"{ext} is not an agent of any queue{' ' + arg if arg else ''}", prompt="agent-not-member")
        for name, slot in mine:
            q = slot.queue
            if verb == "login":
                q.agent_login(ext, now, skills=slot.spec.agents.get(ext))
            elif verb == "logout":
                q.agent_logout(ext, now)
            elif verb == "pause":
                q.agent_pause(ext, now, reason=arg)
            else:
                q.agent_unpause(ext, now)
            self._pump(name)
        return [{"login": "agent-logged-in", "logout": "agent-logged-out", "pause": "agent-paused",
                 "unpause": "agent-unpaused"}[verb]]

    def extension_busy(self, ext: str, busy: bool) -> None:
        """An extension's phone became busy or free. An agent's wrap-up holds in every queue:
        the other queues hear "free" only when the wrap-up of the call's queue is over."""
        now = self.now()
        wrap = 0.0 if busy else max((s.queue.wrapup_left(ext, now) for s in self.queues.values()), default=0.0)
        if wrap > 0:
            self.pbx.loop.call_later(wrap, self._free_after_wrapup, ext)
            return
        self._in_use(ext, busy, now)

    def _free_after_wrapup(self, ext: str) -> None:
        if ext not in self.pbx.busy:  # not on another call meanwhile
            self._in_use(ext, False, self.now())

    def _in_use(self, ext: str, busy: bool, now: float) -> None:
        for name, slot in self.queues.items():
            try:
                slot.queue.agent_in_use(ext, busy, now)
            except QueueError:
                continue  # not an agent of this queue
            self._pump(name)

    def offer_answered(self, offer: AgentOffer) -> None:
        slot = self.queues.get(offer.queue)
        if slot is None:
            offer.cancel()
            return
        slot.queue.agent_answered(offer.agent, offer.call_id, self.now())
        if offer.callback and self.offers.get((offer.call_id, offer.agent)) is offer:
            self._call_back(slot, offer)
        self._pump(offer.queue)
        if self.offers.get((offer.call_id, offer.agent)) is offer and not offer.callback:
            # The engine took the answer back (the caller left meanwhile): nobody to talk to.
            del self.offers[(offer.call_id, offer.agent)]
            offer.cancel("callee-hangup")

    def offer_failed(self, offer: AgentOffer) -> None:
        """Every phone of the agent refused, failed or hung up before the engine took the answer."""
        if self.offers.get((offer.call_id, offer.agent)) is not offer:
            return
        del self.offers[(offer.call_id, offer.agent)]
        slot = self.queues.get(offer.queue)
        if slot is not None:
            slot.queue.agent_no_answer(offer.agent, offer.call_id, self.now())
            self._pump(offer.queue)

    def _call_back(self, slot: QueueSlot, offer: AgentOffer) -> None:
        """The agent answered a callback: ring the caller while the agent hears ringback."""
        del self.offers[(offer.call_id, offer.agent)]
        agent_leg, number = offer.answered, offer.setup.caller
        offer.done = True
        call = Call(self.pbx, agent_leg, call_id=f"callback-{offer.call_id}")
        setup = Setup(caller=offer.agent, caller_name=slot.spec.name or slot.spec.config.name, callee=number,
                      codecs=tuple(agent_leg.codecs) or CALLBACK_CODECS)
        call.setup = setup
        call.cdr.caller, call.cdr.callee = setup.caller, setup.callee
        self.pbx.calls.add(call)
        self.pbx.writer.cdr(call.cdr)
        self.callback_calls[offer.call_id] = call
        queue_call, name = offer.call_id, slot.spec.config.name
        answered = False

        def on_call(what: str, c: Call) -> None:
            nonlocal answered
            now = self.now()
            if what == "answered" and not answered:
                answered = True
                slot.queue.callback_answered(queue_call, now)
            elif what == "transferred" and answered:
                self.callback_calls.pop(queue_call, None)  # its end is no longer the queue's business
                slot.queue.call_transferred(queue_call, c.transfer_target or "", now)
            elif what == "ended":
                if self.callback_calls.pop(queue_call, None) is None:
                    return
                if answered:
                    slot.queue.caller_left(queue_call, now)  # the end of the call it carried
                else:
                    slot.queue.callback_failed(queue_call, now)
            self._pump(name)

        agent = offer.agent
        # The agent is on this call from now on, though it counts as answered only when the
        # caller answers: until then the other queues must not offer the agent a call.
        self.pbx.extension_busy(agent, +1)
        holding = True

        def release_hold(what: str, c: Call) -> None:
            nonlocal holding
            if holding and what in ("answered", "ended"):
                holding = False  # on "answered" the call itself counts the agent busy already
                self.pbx.extension_busy(agent, -1)

        call.listeners.append(on_call)
        call.listeners.append(release_hold)
        if slot.spec.recording != "never":
            call.recording_mode = slot.spec.recording
        call.ringback = terminal_on(self.pbx.media, agent_leg)
        if call.ringback is not None:
            call.ringback.play(Playlist([TONES["us"]["ringback"]], loop=True), barge_in=False)
        self._ring_caller_back(call, setup, time.monotonic() + CALLER_FREE_WAIT)

    def _ring_caller_back(self, call: Call, setup: Setup, give_up: float) -> None:
        """Rings the caller once their line is free: a caller who just asked for the callback
        may still be hearing "goodbye" on the first call, and a one-line phone is busy then."""
        if call.ended:
            return
        if setup.callee in self.pbx.busy and time.monotonic() < give_up:
            self.pbx.loop.call_later(0.5, self._ring_caller_back, call, setup, give_up)
            return
        self.pbx.place(call, setup, "extension", setup.callee, voicemail=False)

    # --- carrying out the engines' actions -------------------------------------------------------

    def _pump(self, name: str) -> None:
        self._dirty.add(name)
        if self._pumping:
            return  # the outer pump picks up what this call added
        self._pumping = True
        try:
            while self._dirty:
                current = self._dirty.pop()
                slot = self.queues.get(current)
                if slot is None:
                    continue
                while (action := slot.queue.next_action()) is not None:
                    try:
                        self._do(slot, action)
                    except Exception:
                        log.exception("queue %s: %s failed", current, action)
                self._arm(slot)
                self._drop_if_idle(current)
        finally:
            self._pumping = False

    def _do(self, slot: QueueSlot, action: object) -> None:
        name = slot.spec.config.name
        if isinstance(action, RingAgents):
            caller = self.callers.get(action.call_id)
            for agent in action.agents:
                setup = Setup(caller=caller.setup.caller if caller else "", caller_name=slot.spec.name or name,
                              callee=agent, codecs=tuple(caller.codecs) if caller else CALLBACK_CODECS)
                self._offer(slot, action.call_id, agent, setup)
        elif isinstance(action, PlaceCallback):
            setup = Setup(caller=action.number, caller_name="Callback", callee=action.agent, codecs=CALLBACK_CODECS)
            self._offer(slot, action.call_id, action.agent, setup, callback=True)
        elif isinstance(action, StopRinging):
            for agent in action.agents:
                offer = self.offers.pop((action.call_id, agent), None)
                if offer is not None:
                    offer.cancel()
        elif isinstance(action, Connect):
            offer = self.offers.pop((action.call_id, action.agent), None)
            caller = self.callers.pop(action.call_id, None)
            if offer is None:
                return  # a callback: the call to the caller is already bridged
            if caller is None or offer.answered is None:
                offer.cancel("callee-hangup")
                return
            offer.done = True
            caller.connect(offer.answered)
        elif isinstance(action, Announce):
            caller = self.callers.get(action.call_id)
            if caller is not None:
                caller.announce(action.position, action.ewt_seconds)
        elif isinstance(action, Overflow):
            caller = self.callers.pop(action.call_id, None)
            self.tracked.pop(action.call_id, None)
            if caller is not None:
                caller.overflow(slot.spec.overflow)

    def _offer(self, slot: QueueSlot, call_id: str, agent: str, setup: Setup, *, callback: bool = False) -> None:
        if self.pbx.stopping:
            return  # no agent is rung while the box stops (stop() cancelled those ringing)
        offer = AgentOffer(self, slot.spec.config.name, call_id, agent, setup, callback=callback)
        self.offers[(call_id, agent)] = offer
        if not offer.start():
            # Logged in but no phone registered: a missed offer (repeated, it auto-pauses the agent).
            del self.offers[(call_id, agent)]
            slot.queue.agent_no_answer(agent, call_id, self.now())

    def _arm(self, slot: QueueSlot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        when = slot.queue.get_timer()
        if when is not None and not self.pbx.stopping:
            slot.timer = self.pbx.loop.call_later(max(0.0, when - time.time()), self._on_timer, slot)

    def stop(self, cause: str) -> None:
        """The box is stopping (its calls have ended): agents still rung for an offer or a
        callback stop ringing, and no queue timer places another one."""
        for slot in self.queues.values():
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
        offers, self.offers = list(self.offers.values()), {}
        for offer in offers:
            offer.cancel(cause)

    def _on_timer(self, slot: QueueSlot) -> None:
        slot.timer = None
        slot.queue.handle_timer(self.now())
        self._pump(slot.spec.config.name)

    def _drop_if_idle(self, name: str) -> None:
        slot = self.queues.get(name)
        if slot is not None and slot.retired and slot.queue.idle():
            if slot.timer is not None:
                slot.timer.cancel()
            del self.queues[name]

    # --- what the API shows ----------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """What a wallboard and an agent panel show, per queue."""
        now = self.now()
        out = []
        for name, slot in self.queues.items():
            q = slot.queue
            waiting = []
            for call_id in q.waiting():
                info = q.entry_info(call_id)
                waiting.append({"call": call_id, "caller": info["number"], "wait": round(now - info["joined"], 1),
                                "callback": info["callback"], "position": q.position(call_id)})
            out.append({
                "queue": name,
                "name": slot.spec.name or name,
                "number": slot.spec.number,
                "service_level": slot.spec.service_level,
                "waiting": waiting,
                "longest_wait": round(q.longest_wait(now), 1),
                # dynamic agents who never logged in are logged out too
                "agents": {**{a: "logged out" for a in slot.spec.agents}, **{a: s.value for a, s in q.agents().items()}},
                "paused": q.pause_reasons(),
                "ringing": [{"agent": o.agent, "call": o.call_id, "caller": o.setup.caller, "callback": o.callback}
                            for (cid, agent), o in self.offers.items() if o.queue == name],
                "talking": q.talks(),
            })
        return out

    def agent_action(self, args: dict[str, Any]) -> dict[str, Any]:
        """The ``/api/agent`` action: ``{"agent": "1002", "verb": "pause", "reason": "lunch"}``."""
        verb = str(args.get("verb", ""))
        if verb not in ("login", "logout", "pause", "unpause"):
            raise ValueError("verb is login, logout, pause or unpause")
        said = self.agent_command(str(args.get("agent", "")), verb, str(args.get("reason", ""))
                                  if verb == "pause" else "")
        return {"done": said[0]}


def register(pbx: QueueFeatureHost) -> None:
    """Queue numbers, the agent codes (*51 log in, *52 out, *53 pause, *54 unpause; each may be
    followed by a queue number or a pause reason), and "queue" destinations."""
    def join(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        if dest.target not in pbx.queues.queues:
            return False
        pbx.start_app(call, pbx.queues.join_leg(setup, dest.target))
        return True

    def agent(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        pbx.start_app(call, AgentCommand(pbx, setup, pbx.prompts, verb=dest.target or "", arg=dest.arg))
        return True

    pbx.plan.add(Keyed(lambda: pbx.queues.by_number, lambda n: Destination("queue", pbx.queues.by_number[n])))
    pbx.plan.add(Codes(AGENT_CODES, lambda code, digits: Destination("agent", AGENT_CODES[code], digits)))
    pbx.destinations["queue"] = join
    pbx.destinations["agent"] = agent
