"""Voicemail as call legs: leaving a message, and listening to one's messages (``*97``).

``LeaveMessage`` answers for a mailbox (an unanswered extension, an IVR option, a queue's exit):
"the person you are calling is not available", "leave a message after the tone", a beep, then it
records what the caller says until they hang up, press ``#`` or reach the box's ``max_seconds``.
The recording is the media engine's crash-safe recorder, so a message cut off by a power cut is
repaired at the next start rather than lost; a message under a second (a caller who hung up at
the tone) is not kept.

``CheckMessages`` is the owner dialling ``*97`` from their own extension: the count of new
messages, then each message (new first, oldest first) with who left it; ``7`` deletes, ``9``
keeps and goes on, ``#`` skips. A message heard to its end or kept moves to the ``old`` folder.
From any other phone ``*98`` asks for the mailbox number and its PIN first (three tries a call;
a mailbox without a PIN opens only from its own extension, and the box does not say which of the
two was wrong, not even by the time it takes). The PIN is checked against its salted hash
(firmware.config.pins) in a worker thread.
Both tell the PBX when a mailbox's count of new messages changed, for the waiting indicators.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.media.player import ToneItem, silence
from firmware.media.recorder import CallRecorder, RecordingStopped
from firmware.media.tones import ToneSpec
from firmware.prompts import PromptSet, digits_to_prompts, number_to_prompts
from firmware.config.pins import pin_matches
from firmware.numberplan import Destination, Numbers
from firmware.store.messages import MIN_SECONDS, Mailboxes, Message

from .apps import HANGUP_PAUSE, AppLeg
from .services import FeatureHost, MailboxHost
from firmware.events import Release, Setup

if TYPE_CHECKING:
    from .b2bua import Call

log = logging.getLogger(__name__)

VOICEMAIL_CODE = "*97"  # the owner's messages, from their own extension
REMOTE_CODE = "*98"     # any mailbox's messages, from any phone, with the mailbox's PIN
LOGIN_TRIES = 3
ENTRY_WAIT = 5000       # ms after the prompt, or after the last key, before an entry counts as typed
MAX_ENTRY = 16
BEEP = ToneItem(ToneSpec((1000.0,), (-10.0,)), 400)
GIVE_UP = silence(6000)  # after the options: this long without a key keeps the message


class LeaveMessage(AppLeg):
    pbx: MailboxHost
    name = "voicemail"
    inband = True  # "#" ends the message whichever way the phone sends it

    def __init__(self, pbx: MailboxHost, setup: Setup, prompts: PromptSet, *, mailbox: str,
                 mailboxes: Mailboxes, max_seconds: int) -> None:
        super().__init__(pbx, setup, prompts)
        self.mailbox = mailbox
        self.mailboxes = mailboxes
        self.max_seconds = max_seconds
        self.path: Path | None = None
        self._intro: int | None = None
        self._limit = None
        self._saying_goodbye = False

    def begin(self) -> None:
        self._intro = self.say(["not-available", "leave-message-after-tone", BEEP])  # type: ignore[list-item]

    def on_played(self, playback: int, interrupted: bool) -> None:
        if self._saying_goodbye:
            self.hang_up()
        elif playback == self._intro and self.path is None and self.terminal is not None:
            self._record()

    def on_digit(self, digit: str) -> None:
        if digit == "#" and self.path is not None and not self._saying_goodbye:
            self._finish(goodbye=True)

    def _record(self) -> None:
        assert self.terminal is not None
        self.path = self.mailboxes.new_message(self.mailbox, self.setup.caller, self.setup.caller_name)
        try:
            recorder = CallRecorder(str(self.path), mode="mono", min_free_bytes=16 << 20, sync_every=2.0)
        except OSError as exc:
            log.error("voicemail %s: cannot record (%s)", self.mailbox, exc)
            self.mailboxes.discard(self.path)
            self.path = None
            self._saying_goodbye = True
            self.last_words(["not-available", "goodbye"])
            return
        self.terminal.record(recorder)
        self._limit = self.pbx.loop.call_later(self.max_seconds, self._finish, True)
        log.info("call %s: recording a message for %s from %s", self.call.id if self.call else "?",
                 self.mailbox, self.setup.caller or "anonymous")

    def _finish(self, goodbye: bool) -> None:
        """Ends the recording; the message is kept once its file is final."""
        if self._limit is not None:
            self._limit.cancel()
            self._limit = None
        fut = self.terminal.stop_recording() if self.terminal is not None else None
        if fut is not None:
            fut.add_done_callback(self._stored)
        if goodbye and self.terminal is not None:
            self._saying_goodbye = True
            self.last_words(["message-saved", "goodbye"])

    def _on_media(self, event: object) -> None:
        if isinstance(event, RecordingStopped) and event.reason != "closed" and not self._saying_goodbye:
            # the disk filled up (or the file failed) while the caller spoke: keep what there is
            log.error("voicemail %s: recording stopped early (%s)", self.mailbox, event.reason)
            if self._limit is not None:
                self._limit.cancel()
                self._limit = None
            self._keep(event)
            self._saying_goodbye = True
            self.last_words(["goodbye"])
            return
        super()._on_media(event)

    def _stored(self, fut) -> None:
        if self.path is None or fut.cancelled() or fut.exception() is not None:
            log.error("voicemail %s: the message was not stored: %s", self.mailbox,
                      None if fut.cancelled() else fut.exception())
            return
        self._keep(fut.result())

    def _keep(self, result: RecordingStopped) -> None:
        path = self.path
        if path is None:
            return
        if result.seconds < MIN_SECONDS:
            self.mailboxes.discard(path)
            log.info("voicemail %s: %.1f s message from %s not kept", self.mailbox, result.seconds,
                     self.setup.caller)
            return
        log.info("voicemail %s: %.1f s message from %s stored", self.mailbox, result.seconds,
                 self.setup.caller or "anonymous")
        self.pbx.mailbox_changed(self.mailbox)

    def deliver(self, event) -> None:
        if isinstance(event, Release) and self.path is not None and not self.ended:
            self._finish(goodbye=False)  # the caller hung up: that is how most messages end
        super().deliver(event)

    def _close(self) -> None:
        if self._limit is not None:
            self._limit.cancel()
            self._limit = None
        super()._close()


class CheckMessages(AppLeg):
    pbx: MailboxHost
    name = "voicemail-check"
    inband = True

    def __init__(self, pbx: MailboxHost, setup: Setup, prompts: PromptSet, *, mailboxes: Mailboxes,
                 login: bool = False) -> None:
        super().__init__(pbx, setup, prompts)
        self.mailbox = "" if login else setup.caller
        self.mailboxes = mailboxes
        self.queue: list[Message] = []
        self.current: Message | None = None
        # [ask-mailbox -> ask-pin -> checking ->] intro -> message -> options -> message ... -> closing
        self.state = "ask-mailbox" if login else "intro"
        self._playing: int | None = None
        self._entry = ""
        self._asked_for = ""
        self._tries = 0

    def begin(self) -> None:
        if self.state == "ask-mailbox":
            self._ask(["enter-mailbox"])
        else:
            self._open()

    # --- *98: which mailbox, and its PIN ---------------------------------------------------------

    def _ask(self, words: list[str]) -> None:
        self._entry = ""
        self._playing = self.say([*words, silence(ENTRY_WAIT)])  # type: ignore[list-item]

    def _typed(self, digit: str) -> None:
        if digit != "#" and len(self._entry) < MAX_ENTRY:
            self._entry += digit
            # the prompt gives way to the caller's keys, and the wait starts again from this one
            self._playing = self.play_items([silence(ENTRY_WAIT)])
        else:
            self._entered()

    def _entered(self) -> None:
        entry, self._entry = self._entry, ""
        if self.state == "ask-mailbox":
            if not entry:
                self._close_with([])
                return
            self._asked_for = entry
            self.state = "ask-pin"
            self._ask(["enter-password"])
            return
        # The PIN is kept as a salted hash that costs tens of milliseconds to check: a worker
        # thread checks it, so the loop goes on relaying every other call's media meanwhile.
        self.state = "checking"
        check = self.pbx.loop.run_in_executor(None, pin_matches, self.pbx.mailboxes.get(self._asked_for), entry)
        check.add_done_callback(self._checked)

    def _checked(self, check: asyncio.Future[bool]) -> None:
        if self.ended or check.cancelled():
            return  # the caller hung up while it was checked
        if check.exception() is not None:
            log.error("call %s: the PIN could not be checked: %s", self.call.id if self.call else "?",
                      check.exception())
        elif check.result():
            log.info("call %s: mailbox %s opened by PIN from %s", self.call.id if self.call else "?",
                     self._asked_for, self.setup.caller or "an unknown caller")
            self.mailbox, self.state = self._asked_for, "intro"
            self._open()
            return
        self._tries += 1
        log.warning("call %s: wrong mailbox or PIN from %s (try %d of %d)", self.call.id if self.call else "?",
                    self.setup.caller or "an unknown caller", self._tries, LOGIN_TRIES)
        if self._tries >= LOGIN_TRIES:
            self._close_with(["login-incorrect"])
            return
        self.state = "ask-mailbox"
        self._ask(["login-incorrect", "enter-mailbox"])

    # --- the messages ----------------------------------------------------------------------------

    def _open(self) -> None:
        if self.mailbox not in self.pbx.mailboxes:
            self._close_with(["not-available"])
            return
        self.queue = self.mailboxes.messages(self.mailbox)
        new = sum(1 for m in self.queue if m.folder == "new")
        if not self.queue:
            self._close_with(["no-new-messages"])
            return
        self._playing = self.say(["you-have", *number_to_prompts(new), "new", "message" if new == 1 else "messages"]
                                 if new else ["no-new-messages"])

    def on_played(self, playback: int, interrupted: bool) -> None:
        if playback != self._playing or interrupted:
            return  # a key cut it short, and has already said what comes next
        if self.state == "closing":
            self.hang_up()
        elif self.state in ("ask-mailbox", "ask-pin"):
            self._entered()  # no more keys: what was typed is the entry
        elif self.state in ("intro", "options"):
            self._keep_and_next()  # no key after the options: kept, like on most boxes
        elif self.state == "message":
            self._heard()  # heard to its end: no longer new
            self.state = "options"
            self._playing = self.say(["press", "7", "to-delete", "press", "9", "to-keep", GIVE_UP])  # type: ignore[list-item]

    def on_digit(self, digit: str) -> None:
        if self.state in ("ask-mailbox", "ask-pin"):
            self._typed(digit)
            return
        if self.current is None or self.state not in ("message", "options"):
            return
        if digit == "7":
            self.mailboxes.delete(self.current)
            self.pbx.mailbox_changed(self.mailbox)
            self.current = None
            self.state = "intro"  # "deleted", then the next message
            self._playing = self.say(["message-deleted"])
        elif digit in ("9", "#"):
            self._keep_and_next()

    def _keep_and_next(self) -> None:
        self._heard()
        self.current = None
        if not self.queue:
            self._close_with(["no-more-messages"])
            return
        msg = self.current = self.queue.pop(0)
        who = digits_to_prompts(msg.caller) if msg.caller.isdigit() else ["an-unknown-caller"]
        self.state = "message"
        # no barge-in: a key that means nothing here must not cut the message short
        self._playing = self.play_items(["message-from", *who, HANGUP_PAUSE, msg.path])

    def _heard(self) -> None:
        msg = self.current
        if msg is not None and msg.folder == "new" and msg.path.exists():
            self.current = self.mailboxes.move(msg, "old")
            self.pbx.mailbox_changed(self.mailbox)

    def _close_with(self, words: list[str]) -> None:
        self.state = "closing"
        self._playing = self.last_words([*words, "goodbye"])


# *97 hears the caller's own mailbox; *98 asks which mailbox, then its PIN.
CODES = {VOICEMAIL_CODE: Destination("messages"), REMOTE_CODE: Destination("messages", arg="login")}


def register(pbx: FeatureHost) -> None:
    """The voicemail codes, and "voicemail" destinations (leave a message in a mailbox)."""
    def messages(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        pbx.start_app(call, CheckMessages(pbx, setup, pbx.prompts, mailboxes=pbx.messages, login=dest.arg == "login"))
        return True

    def leave(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        if dest.target not in pbx.mailboxes:
            return False
        pbx.start_app(call, LeaveMessage(pbx, setup, pbx.prompts, mailbox=dest.target, mailboxes=pbx.messages,
                                         max_seconds=pbx.voicemail_max))
        return True

    pbx.plan.add(Numbers(lambda: CODES))
    pbx.destinations["messages"] = messages
    pbx.destinations["voicemail"] = leave
