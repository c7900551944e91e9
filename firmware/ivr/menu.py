"""IVR menus as data, and a caller's walk through them as a pure state machine.

A menu is a document (see ``docs``/issue 4 and ``schema.py`` for validation)::

    {"id": "main", "greeting": ["welcome", {"say": "Press one for sales"}, {"file": "promo.wav"}],
     "options": {"1": {"goto": "queue", "target": "sales"}, "2": {"goto": "menu", "target": "support"},
                 "9": {"goto": "repeat"}, "*": {"goto": "hangup"}, "0": {"goto": "back"}},
     "timeout": 5, "retries": 3, "invalid": ["invalid-option"],
     "on_timeout": {"goto": "voicemail", "target": "1001"}, "fallback": {"goto": "extension", "target": "1001"},
     "dial_by_extension": true, "inter_digit_timeout": 2.5}

``IvrSession`` owns no clock, timer or media (STYLE.md §1, §5): the application leg feeds it
``started``/``digit``/``playback_finished``/``handle_timer`` with ``now`` and carries out what
``next_action()`` returns (``Play``, ``StopPlayback``, ``Route``, ``Hangup``), re-arming one
timer at ``get_timer()``.

Semantics, in the order a caller meets them:

* Entering a menu plays its greeting with barge-in; a digit during any prompt is answered with
  ``StopPlayback()`` and then taken as input. The no-input timeout runs from the end of the
  greeting (or from entry when the greeting is empty).
* Failures (a timeout with no input, or an invalid choice) share one counter per menu visit.
  A failure replays the greeting (after the ``invalid`` prompts for invalid input) until
  ``retries`` replays have been used; the next failure leaves for ``on_timeout`` (if that
  failure was a timeout and it is set) or ``fallback``, else hangs up with ``ivr-fallback``.
  So ``retries: 3`` means the greeting is heard at most four times.
* Dial-by-extension (``dial_by_extension: true``): a digit 0-9 that is no option starts
  collecting an extension number; so does an option digit whose option says
  ``"extension_prefix": true``. Each further digit restarts the inter-digit timer. The number
  is routed as soon as it exists and no longer extension starts with it (when the session knows
  that, see ``longer_extension_exists``); ``#`` or the inter-digit timeout ends the number:
  routed if it exists; a lone option digit marked ``extension_prefix`` takes its option;
  anything else is invalid input.
* ``goto``: ``extension``/``queue``/``voicemail``/``condition`` → ``Route``; ``menu`` enters a
  nested menu of this set (remembering the parent) or, when the id is not in the set, is a
  ``Route("menu", id)``; ``back`` returns to the parent (replays the greeting at the top menu);
  ``repeat`` replays the greeting (not a failure); ``hangup`` → ``Hangup``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Union

__all__ = [
    "Say", "File", "PromptItem", "Destination", "Menu", "load_menus",
    "Play", "StopPlayback", "Route", "Hangup", "Action", "IvrSession",
    "DTMF_KEYS", "ROUTE_KINDS", "GOTO_KINDS",
]

DTMF_KEYS = frozenset("0123456789*#ABCD")
ROUTE_KINDS = frozenset({"extension", "queue", "voicemail", "condition"})
GOTO_KINDS = ROUTE_KINDS | {"menu", "back", "repeat", "hangup"}
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
DEFAULT_INTER_DIGIT = 2.5
DEFAULT_INVALID = ("invalid-option",)


# ------------------------------------------------------------------ the document as values

@dataclass(frozen=True)
class Say:
    """Text rendered to speech when the configuration is applied."""
    text: str


@dataclass(frozen=True)
class File:
    """An uploaded WAV, by its stored name."""
    name: str


PromptItem = Union[str, Say, File]  # a str is a prompt name of the PromptSet


def prompt_item(item: object) -> PromptItem:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and set(item) == {"say"}:
        return Say(str(item["say"]))
    if isinstance(item, Mapping) and set(item) == {"file"}:
        return File(str(item["file"]))
    raise ValueError(f"a prompt is a name, {{'say': text}} or {{'file': name}}, not {item!r}")


@dataclass(frozen=True)
class Destination:
    """Where a choice leads: ``goto`` is one of GOTO_KINDS, ``target`` its id when it has one."""
    goto: str
    target: str | None = None
    extension_prefix: bool = False  # option digit that may also begin an extension number
    reason: str = "ivr-hangup"      # Hangup reason for goto=hangup

    @classmethod
    def from_document(cls, doc: Mapping) -> Destination:
        target = doc.get("target")
        return cls(goto=str(doc["goto"]), target=None if target is None else str(target),
                   extension_prefix=bool(doc.get("extension_prefix", False)),
                   reason=str(doc.get("reason", "ivr-hangup")))


@dataclass(frozen=True)
class Menu:
    id: str
    greeting: tuple[PromptItem, ...] = ()
    options: Mapping[str, Destination] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    invalid: tuple[PromptItem, ...] = DEFAULT_INVALID
    on_timeout: Destination | None = None
    fallback: Destination | None = None
    dial_by_extension: bool = False
    inter_digit_timeout: float = DEFAULT_INTER_DIGIT

    @classmethod
    def from_document(cls, doc: Mapping) -> Menu:
        """Builds a menu from a document that ``schema.validate`` accepted."""
        def dest(key: str) -> Destination | None:
            return Destination.from_document(doc[key]) if doc.get(key) is not None else None
        return cls(
            id=str(doc["id"]),
            greeting=tuple(prompt_item(p) for p in doc.get("greeting", ())),
            options={str(k): Destination.from_document(v) for k, v in doc.get("options", {}).items()},
            timeout=float(doc.get("timeout", DEFAULT_TIMEOUT)),
            retries=int(doc.get("retries", DEFAULT_RETRIES)),
            invalid=tuple(prompt_item(p) for p in doc.get("invalid", DEFAULT_INVALID)),
            on_timeout=dest("on_timeout"),
            fallback=dest("fallback"),
            dial_by_extension=bool(doc.get("dial_by_extension", False)),
            inter_digit_timeout=float(doc.get("inter_digit_timeout", DEFAULT_INTER_DIGIT)),
        )


def load_menus(menus: Mapping[str, object] | Iterable[object]) -> dict[str, Menu]:
    """Menu documents (a list, or a mapping id -> document) or Menu values, keyed by id."""
    items = menus.values() if isinstance(menus, Mapping) else menus
    out: dict[str, Menu] = {}
    for item in items:
        menu = item if isinstance(item, Menu) else Menu.from_document(item)  # type: ignore[arg-type]
        out[menu.id] = menu
    return out


# ------------------------------------------------------------------ actions (commands)

@dataclass(frozen=True)
class Play:
    """Play these prompts in order; ``seq`` lets ``playback_finished`` say which one ended."""
    prompts: tuple[PromptItem, ...]
    barge_in: bool = True
    seq: int = 0


@dataclass(frozen=True)
class StopPlayback:
    """Stop the prompt that is playing (a digit barged in)."""


@dataclass(frozen=True)
class Route:
    """Leave the IVR for a destination outside it: extension, queue, voicemail, condition, menu."""
    kind: str
    target: str


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = Union[Play, StopPlayback, Route, Hangup]

# states
IDLE, PLAYING, WAITING, COLLECTING, DONE = "idle", "playing", "waiting", "collecting", "done"


class IvrSession:
    """One caller in a menu set. Inputs take ``now`` (seconds, any monotonic origin)."""

    def __init__(self, menus: Mapping[str, object] | Iterable[object], start_menu: str, now: float,
                 extension_exists: Callable[[str], bool],
                 longer_extension_exists: Callable[[str], bool] | None = None) -> None:
        self.menus = load_menus(menus)
        if start_menu not in self.menus:
            raise KeyError(f"no menu {start_menu!r}")
        self.start_menu = start_menu
        self.created = now
        self.extension_exists = extension_exists
        # Extension numbers are 2-10 digits and need not be prefix-free (10 and 1001); without
        # this the session routes on the first existing match.
        self.longer_extension_exists = longer_extension_exists
        self.state = IDLE
        self.stack: list[str] = []      # menu ids, current last
        self.failures = 0
        self.collected = ""
        self.timer: float | None = None
        self.seq = 0
        self._stale = 0                 # PlaybackFinished still owed for stopped playbacks
        self._actions: deque[Action] = deque()

    # --- inputs -----------------------------------------------------------------------------

    @property
    def menu(self) -> Menu:
        return self.menus[self.stack[-1]]

    def started(self, now: float) -> None:
        """The caller hears us (the leg is answered and media flows)."""
        if self.state != IDLE:
            return
        self._enter(self.start_menu, now)

    def digit(self, d: str, now: float) -> None:
        if self.state in (IDLE, DONE):
            return
        if self.state == PLAYING:
            self._stop_playback()
        if self.state == COLLECTING:
            self._collect(d, now)
            return
        menu = self.menu
        option = menu.options.get(d)
        if menu.dial_by_extension and d.isdigit() and (option is None or option.extension_prefix):
            self.state = COLLECTING
            self.collected = ""
            self._collect(d, now)
        elif option is not None:
            self._go(option, now)
        else:
            self._fail("invalid", now)

    def playback_finished(self, now: float, seq: int | None = None) -> None:
        """The media engine finished a playlist (``seq`` of its Play when the adapter knows it)."""
        if seq is None and self._stale:
            self._stale -= 1
            return
        if self.state != PLAYING or (seq is not None and seq != self.seq):
            return
        self.state = WAITING
        self.timer = now + self.menu.timeout

    def handle_timer(self, now: float) -> None:
        if self.timer is None or now < self.timer:
            return
        self.timer = None
        if self.state == WAITING:
            self._fail("timeout", now)
        elif self.state == COLLECTING:
            self._end_number(now)

    # --- outputs ----------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def get_timer(self) -> float | None:
        return self.timer

    @property
    def done(self) -> bool:
        return self.state == DONE

    # --- inside -----------------------------------------------------------------------------

    def _collect(self, d: str, now: float) -> None:
        if d == "#":
            self._end_number(now)
            return
        if not d.isdigit():
            self._fail("invalid", now)
            return
        self.collected += d
        number = self.collected
        longer = self.longer_extension_exists
        if len(number) > 1 and self.extension_exists(number) and (longer is None or not longer(number)):
            self._finish(Route("extension", number))
        elif longer is not None and not longer(number) and not self.extension_exists(number) \
                and not self._lone_option(number):
            self._fail("invalid", now)
        else:
            self.timer = now + self.menu.inter_digit_timeout

    def _lone_option(self, number: str) -> Destination | None:
        option = self.menu.options.get(number) if len(number) == 1 else None
        return option if option is not None and option.extension_prefix else None

    def _end_number(self, now: float) -> None:
        number, self.collected = self.collected, ""
        option = self._lone_option(number)
        if option is not None:
            self._go(option, now)
        elif number and self.extension_exists(number):
            self._finish(Route("extension", number))
        else:
            self._fail("invalid", now)

    def _enter(self, menu_id: str, now: float, *, push: bool = True) -> None:
        if push:
            self.stack.append(menu_id)
        self.failures = 0
        self._greet(now)

    def _greet(self, now: float, before: tuple[PromptItem, ...] = ()) -> None:
        self.collected = ""
        prompts = before + self.menu.greeting
        if prompts:
            self._play(prompts)
        else:
            self.state = WAITING
            self.timer = now + self.menu.timeout

    def _play(self, prompts: tuple[PromptItem, ...]) -> None:
        self.seq += 1
        self.state = PLAYING
        self.timer = None
        self._actions.append(Play(prompts, barge_in=True, seq=self.seq))

    def _stop_playback(self) -> None:
        self._actions.append(StopPlayback())
        self._stale += 1
        self.state = WAITING
        self.timer = None

    def _fail(self, why: str, now: float) -> None:
        self.state = WAITING
        self.failures += 1
        menu = self.menu
        if self.failures > menu.retries:
            dest = (menu.on_timeout if why == "timeout" else None) or menu.fallback
            if dest is None:
                self._finish(Hangup("ivr-fallback"))
            else:
                self._go(dest, now)
            return
        self._greet(now, menu.invalid if why == "invalid" else ())

    def _go(self, dest: Destination, now: float) -> None:
        kind = dest.goto
        if kind in ROUTE_KINDS:
            self._finish(Route(kind, dest.target or ""))
        elif kind == "menu":
            if dest.target in self.menus:
                self._enter(dest.target, now)  # type: ignore[arg-type]
            else:
                self._finish(Route("menu", dest.target or ""))
        elif kind == "back":
            if len(self.stack) > 1:
                self.stack.pop()
            self._enter(self.stack[-1], now, push=False)
        elif kind == "repeat":
            self._greet(now)
        elif kind == "hangup":
            self._finish(Hangup(dest.reason))
        else:
            raise ValueError(f"menu {self.menu.id!r}: unknown goto {kind!r}")

    def _finish(self, action: Route | Hangup) -> None:
        self.state = DONE
        self.timer = None
        self.collected = ""
        self._actions.append(action)

    def __repr__(self) -> str:
        return (f"IvrSession(menu={self.stack[-1] if self.stack else None!r}, state={self.state}, "
                f"failures={self.failures}, collected={self.collected!r}, timer={self.timer})")
