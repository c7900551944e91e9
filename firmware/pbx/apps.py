"""Applications the box answers itself: diagnostic feature codes and the IVR (voicemail and
queues have modules of their own).

An application is a call leg like any phone (STYLE.md §4): the controller sends it Setup-time
events and it answers with Answer/Release. Its media is a Terminal of the media engine on the
caller's own endpoint, so the PBX never touches RTP: it asks the engine to play, echo and detect,
and gets DigitDetected/PlaybackFinished back. Each application is a small state machine over
those events; the table at the bottom maps feature codes to them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable

from firmware.ivr.menu import File as IvrFile
from firmware.ivr.menu import Hangup as IvrHangup
from firmware.ivr.menu import IvrSession
from firmware.ivr.menu import Play as IvrPlay
from firmware.ivr.menu import Route as IvrRoute
from firmware.ivr.menu import Say as IvrSay
from firmware.ivr.menu import StopPlayback as IvrStop
from firmware.media.dtmf import DigitDetected
from firmware.numberplan import Destination, Keyed
from firmware.media.player import Playlist, silence
from firmware.media.terminal import PlaybackFinished, Terminal
from firmware.prompts import PromptSet, digits_to_prompts, said_name, time_to_prompts
from firmware.sip.sdp import Codec

from .b2bua import terminal_on
from .services import AppHost, FeatureHost
from firmware.events import Answer, Event, Release, Setup, audio_codec, event_codec

if TYPE_CHECKING:
    from .b2bua import Call

log = logging.getLogger(__name__)

GAP = silence(80)
# Phones drop the last few hundred milliseconds of audio still in their jitter buffer when the
# call is hung up; what the box says just before hanging up is followed by this much silence.
HANGUP_PAUSE = silence(400)


class AppLeg:
    """The box as the called party. Subclasses say what happens once the call is answered."""

    name = "app"
    inband: bool | None = None  # None: in-band detection only when the phone has no RFC 4733

    def __init__(self, pbx: AppHost, setup: Setup, prompts: PromptSet) -> None:
        self.pbx = pbx
        self.setup = setup
        self.prompts = prompts
        self.call: Call | None = None
        self.endpoint = None  # the media is the caller's endpoint, worked by a Terminal
        self.codecs: tuple[Codec, ...] = ()
        self.answered = False
        self.ended = False
        self.terminal: Terminal | None = None

    async def start(self) -> None:
        audio, te = audio_codec(self.setup.codecs), event_codec(self.setup.codecs)
        if audio is None:
            self._release("codec-mismatch", 488)
            return
        self.codecs = (audio, te) if te else (audio,)
        self.answered = True
        self._emit(Answer(self.codecs))
        if self.call is None or self.ended:
            return
        self.terminal = terminal_on(self.pbx.media, self.call.a, on_event=self._on_media, inband=self.inband)
        if self.terminal is not None:
            self.begin()

    # --- what applications build on ------------------------------------------------------------

    def begin(self) -> None:
        """Called once the caller hears us."""

    def on_digit(self, digit: str) -> None:
        """A DTMF digit from the caller (RFC 4733 or in-band, whichever the phone sends)."""

    def on_played(self, playback: int, interrupted: bool) -> None:
        """A playlist finished (or a digit cut it short)."""

    def say(self, names: list[str], *, barge_in: bool = False) -> int:
        """Plays prompts in order with a short gap between them (the prompts are trimmed tight)."""
        return self.play_items(names, barge_in=barge_in)

    def play_items(self, prompts: Iterable[object], *, barge_in: bool = False) -> int:
        """Prompt names, texts rendered when the configuration was applied, or uploaded files."""
        assert self.terminal is not None
        items: list[object] = []
        for p in prompts:
            if items:
                items.append(GAP)
            if isinstance(p, str):
                items.append(self.prompts.path(p))
            elif isinstance(p, IvrSay):
                items.append(self.pbx.custom_prompts / "say" / f"{said_name(p.text)}.wav")
            elif isinstance(p, IvrFile):
                items.append(self.pbx.custom_prompts / "uploads" / p.name)
            else:
                items.append(p)  # silence, a tone
        return self.terminal.play(Playlist(items, cache=self.pbx.sounds), barge_in=barge_in)

    def hang_up(self) -> None:
        self._release("callee-hangup")

    def last_words(self, names: list[str]) -> int:
        """What the box says before it hangs up (the caller of this hangs up when it finished)."""
        return self.say([*names, HANGUP_PAUSE])  # type: ignore[list-item]

    def hand_on(self, kind: str, target: str | None) -> None:
        """Leaves the call: the controller takes the caller on to another destination."""
        call = self.call
        self._close()
        self.ended = True
        if call is not None:
            call.redirect(self, kind, target)  # type: ignore[arg-type]

    # --- leg plumbing --------------------------------------------------------------------------

    def _on_media(self, event: object) -> None:
        if self.ended:
            return
        if isinstance(event, DigitDetected):
            log.info("call %s: %s detected digit %s (%s)", self.call.id if self.call else "?", self.name,
                     event.digit, event.source)
            self.pbx.media_events.append({"time": time.time(), "app": self.name, "event": "digit",
                                          "digit": event.digit, "source": event.source,
                                          "caller": self.setup.caller})
            self.on_digit(event.digit)
        elif isinstance(event, PlaybackFinished):
            self.on_played(event.playback_id, event.interrupted)

    def _emit(self, event: Event) -> None:
        if self.call is not None:
            self.call.on_event(self, event)  # type: ignore[arg-type]

    def _release(self, cause: str, status: int | None = None) -> None:
        if self.ended:
            return
        self._close()
        self.ended = True
        self._emit(Release(cause, status))

    def deliver(self, event: Event) -> None:
        if isinstance(event, Release):
            self.ended = True
            self._close()

    def _close(self) -> None:
        if self.terminal is not None:
            self.terminal.close()
            self.terminal = None


class EchoTest(AppLeg):
    """*43: the caller hears themselves, to check audio both ways and the delay."""

    name = "echo-test"

    def begin(self) -> None:
        self.intro = self.say(["echo-test"])

    def on_played(self, playback: int, interrupted: bool) -> None:
        if self.terminal is not None:
            self.terminal.echo(True)


class SpeakingClock(AppLeg):
    """*60: says the box's local time, then hangs up."""

    name = "speaking-clock"

    def begin(self) -> None:
        now = time.localtime()
        self.last_words(time_to_prompts(now.tm_hour, now.tm_min))

    def on_played(self, playback: int, interrupted: bool) -> None:
        self.hang_up()


class SayExtension(AppLeg):
    """*65: says the caller's own extension number, then hangs up."""

    name = "say-extension"

    def begin(self) -> None:
        self.last_words(["your-extension-is", *digits_to_prompts(self.setup.caller)])

    def on_played(self, playback: int, interrupted: bool) -> None:
        self.hang_up()


class DtmfReadback(AppLeg):
    """*47: reads back every digit the phone sends, to check DTMF (in-band or RFC 4733).

    Digits that arrive while one is being read wait their turn, so a fast "123" is read as
    "one two three" rather than cut short."""

    name = "dtmf-readback"
    inband = True  # the point of *47 is to test whichever way the phone sends digits

    def __init__(self, pbx: AppHost, setup: Setup, prompts: PromptSet) -> None:
        super().__init__(pbx, setup, prompts)
        self.waiting: list[str] = []
        self.reading = False

    def on_digit(self, digit: str) -> None:
        self.waiting.append(digit)
        if not self.reading:
            self._next()

    def on_played(self, playback: int, interrupted: bool) -> None:
        self.reading = False
        if self.waiting:
            self._next()

    def _next(self) -> None:
        self.reading = True
        self.say(digits_to_prompts(self.waiting.pop(0)))


class Goodbye(AppLeg):
    """A destination that hangs up (an IVR's or a queue's "hangup"): says goodbye first."""

    name = "goodbye"

    def begin(self) -> None:
        self.last_words(["goodbye"])

    def on_played(self, playback: int, interrupted: bool) -> None:
        self.hang_up()


class IvrApp(AppLeg):
    """An IVR menu set (firmware/ivr): the session decides, this leg plays and routes.

    A route to an extension hands the caller over: the controller rings the extension while the
    caller hears ringback, then bridges them; a queue or a mailbox takes the caller at once.
    """

    name = "ivr"
    # Callers' phones and gateways may send keys in-band even when they negotiated RFC 4733;
    # the terminal gives one digit per key press either way.
    inband = True

    def __init__(self, pbx: AppHost, setup: Setup, prompts: PromptSet, *, menus: object, start: str) -> None:
        super().__init__(pbx, setup, prompts)
        self.menus = menus
        self.start_menu = start
        self.session: IvrSession | None = None
        self._seq_of: dict[int, int] = {}  # terminal playback id -> the session's Play.seq
        self._timer: object = None
        self._closing = False

    def begin(self) -> None:
        numbers = set(self.pbx.extensions)
        self.session = IvrSession(
            self.menus, self.start_menu, self.pbx.loop.time(),
            extension_exists=numbers.__contains__,
            longer_extension_exists=lambda n: any(e != n and e.startswith(n) for e in numbers))
        self.session.started(self.pbx.loop.time())
        self._pump()

    def on_digit(self, digit: str) -> None:
        if self.session is not None:
            self.session.digit(digit, self.pbx.loop.time())
            self._pump()

    def on_played(self, playback: int, interrupted: bool) -> None:
        if self._closing:
            self.hang_up()
            return
        seq = self._seq_of.pop(playback, None)
        if self.session is not None and seq is not None and not interrupted:
            self.session.playback_finished(self.pbx.loop.time(), seq=seq)
            self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is not None and not self.ended:
            self.session.handle_timer(self.pbx.loop.time())
            self._pump()

    def _pump(self) -> None:
        session = self.session
        while session is not None and not self.ended and (action := session.next_action()) is not None:
            if isinstance(action, IvrPlay):
                self._seq_of[self.play_items(action.prompts, barge_in=action.barge_in)] = action.seq
            elif isinstance(action, IvrStop):
                if self.terminal is not None:
                    self.terminal.stop()
            elif isinstance(action, IvrRoute):
                kind, target = self.pbx.resolve(action.kind, action.target)
                if kind in ("extension", "queue", "voicemail") and target and self.call is not None:
                    self.hand_on(kind, target)
                    return
                if kind == "menu" and target and self.terminal is not None:
                    # a time condition led to another menu: a fresh session there
                    self.start_menu = target
                    self.terminal.stop()
                    self.begin()
                    return
                if kind == "hangup":
                    self._closing = True
                    self.last_words(["goodbye"])
                    return
                log.warning("ivr: %s destinations are not built yet (%s)", kind, target)
                self._closing = True
                self.last_words(["not-available", "goodbye"])
                return
            elif isinstance(action, IvrHangup):
                self._closing = True
                self.last_words(["goodbye"])
                return
        self._cancel_timer()
        when = session.get_timer() if session is not None else None
        if when is not None and not self.ended:
            self._timer = self.pbx.loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # type: ignore[attr-defined]
            self._timer = None

    def _close(self) -> None:
        self._cancel_timer()
        super()._close()


FEATURE_CODES: dict[str, Callable[[AppHost, Setup, PromptSet], AppLeg]] = {
    "*43": EchoTest,
    "*60": SpeakingClock,
    "*65": SayExtension,
    "*47": DtmfReadback,
}


def register_ivr(pbx: FeatureHost) -> None:
    """IVR numbers enter their menu or time condition; "menu" destinations start a menu there."""
    def entry(number: str) -> Destination:
        target = pbx.ivr_numbers[number]
        return Destination("condition" if target in pbx.ivr_conditions else "menu", target)

    def menu(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        pbx.start_app(call, IvrApp(pbx, setup, pbx.prompts, menus=pbx.ivr_menus, start=dest.target or ""))
        return True

    pbx.plan.add(Keyed(lambda: pbx.ivr_numbers, entry))
    pbx.destinations["menu"] = menu


def register_codes(pbx: FeatureHost) -> None:
    """The feature codes of FEATURE_CODES (*43 echo, *60 clock, ...), and "hangup" (a goodbye)."""
    def feature(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        pbx.start_app(call, FEATURE_CODES[dest.target or ""](pbx, setup, pbx.prompts))
        return True

    def hangup(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        pbx.start_app(call, Goodbye(pbx, setup, pbx.prompts))
        return True

    pbx.plan.add(Keyed(lambda: FEATURE_CODES, lambda code: Destination("feature", code)))
    pbx.destinations["feature"] = feature
    pbx.destinations["hangup"] = hangup
