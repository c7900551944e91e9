"""The PBX's SIP front desk: takes what the SIP endpoint reports and hands it to the right place.

REGISTER goes to the registrar, a new INVITE becomes a call (after digest authentication), and
everything inside a dialog goes to the leg that owns it. Every request from outside a dialog
except OPTIONS is challenged; unknown users and wrong passwords get exactly what a real user
gets, and each failure is reported to the guard (which bans repeat offenders) without touching
the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import replace
from pathlib import Path
from datetime import datetime, timezone
import time
from typing import TYPE_CHECKING, Any, Callable, cast

from firmware.ivr.timecond import TimeCondition
from firmware.media.player import Playlist, SharedSource, SoundCache, ToneItem, silence
from firmware.media.tones import ToneSpec
from firmware.media.recorder import DiskFull, RecordingStopped, RecordingStore
from firmware.media.relay import Bridge, MediaEngine
from firmware.prompts import PromptSet
from firmware.config.recpolicy import RecordingPolicy
from firmware.config.routes import Routes
from firmware.config.voicemail import DEFAULT_MAX_SECONDS
from firmware.store.messages import Mailboxes
from firmware.numberplan import Destination, NumberPlan
from firmware.sip import endpoint as ep
from firmware.sip.endpoint import Flow
from firmware.sip.message import ParseError, Request, Response, make_response, new_tag
from firmware.sip.transaction import ClientTransaction, ServerTransaction
from firmware.store.writer import Writer

from .admission import Admission, OverloadStarted, Refusal, Sample
from .features import FEATURES
from .queues import QueueRuntime
from .auth import Authenticator
from .b2bua import Call, extension_of
from firmware.events import CAUSE_STATUS, SHUTDOWN, Release, Setup
from .guard import Guard
from .registrar import Registrar, destination
from .services import Placer
from .sipleg import InboundLeg, OutboundLeg, SipLeg, contact_of
from .subscriptions import CONTENT_TYPE as MWI_CONTENT_TYPE, EVENT as MWI_EVENT, Subscription, Subscriptions, Verdict, notify, summary_body

if TYPE_CHECKING:
    from firmware.sip.transport import SipTransport

    from .b2bua import CallHost
    from .queues import AgentHost, QueueFeatureHost
    from .services import AppHost, CallerHost, FeatureHost, LinesHost, MailboxHost, QueueHost
    from .sipleg import SipHost

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO, NOTIFY, REFER, SUBSCRIBE"


class Pbx:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        sip: SipTransport,
        media: MediaEngine,
        registrar: Registrar,
        auth: Authenticator,
        guard: Guard,
        writer: Writer,
        settings: dict[str, Any],
        extensions: dict[str, Any],
        domain: str,
        prompts: PromptSet,
        recordings: RecordingStore,
        custom_prompts: Path,
        messages: Mailboxes,
        user_agent: str = "LineBox",
        admission: Admission | None = None,
    ) -> None:
        self.loop = loop
        self.sip = sip
        self.media = media
        self.registrar = registrar
        self.auth = auth
        self.guard = guard
        self.admission = admission if admission is not None else Admission(now=loop.time())
        self.writer = writer
        self.settings = settings
        self.extensions = extensions
        self.domain = domain
        self.user_agent = user_agent
        self.allow_header = ALLOW
        self.calls: set[Call] = set()
        self.dialogs: dict[tuple[str, str], SipLeg] = {}
        self.client_txs: dict[ClientTransaction, SipLeg] = {}
        self.server_invites: dict[ServerTransaction, InboundLeg] = {}
        self.bridges: dict[Bridge, Call] = {}
        self.qualify_txs: dict[ClientTransaction, tuple[str, str]] = {}
        self.prompts = prompts
        self.ivr_menus: list[Any] | dict[str, Any] = []  # the validated menu document's "menus"
        self.ivr_numbers: dict[str, str] = {}  # number dialled -> menu or time condition it enters
        self.ivr_conditions: dict[str, TimeCondition] = {}
        self.custom_prompts = custom_prompts  # rendered from configuration text, and uploads
        self._moh: SharedSource | None = None
        self.recordings = recordings
        self.sounds = SoundCache()  # prompts decoded once, shared by every call
        self.media_events: deque[dict[str, Any]] = deque(maxlen=200)
        self.busy: dict[str, int] = {}  # extension -> answered calls it is on
        self.recording_policy = RecordingPolicy()
        # From here Pbx hands itself on as the narrow interfaces of services.py. The attributes
        # set from here are annotated: a type checker compares Pbx with those interfaces before it
        # has read these lines, and would otherwise take the attributes for Any.
        self.queues: QueueRuntime = QueueRuntime(self)
        self.lines: Any = None  # firmware.pbx.lines.Lines when the box has an analog board
        self.outbound: Routes = Routes(())  # which outside line a dialled number leaves on
        self.mailboxes: dict[str, dict[str, Any]] = {}  # extension -> its voicemail box settings
        self.voicemail_max: int = DEFAULT_MAX_SECONDS
        self.messages: Mailboxes = messages
        self.subscriptions: Subscriptions = Subscriptions()  # phones that SUBSCRIBEd to their mailbox
        self.notify_txs: dict[ClientTransaction, Subscription] = {}
        # Where numbers lead and who handles each kind of destination: the features register
        # here (firmware.pbx.features), route() and place() only look up.
        self.plan: NumberPlan = NumberPlan()
        self.destinations: dict[str, Placer] = {}
        for register in FEATURES:
            register(self)
        self.stopping: bool = False  # shut_down() was called: no new call is taken
        # The BYEs and CANCELs the box sent that have no final answer yet: a stop waits a little
        # for them (retransmitting over UDP meanwhile) so the phones hear of the hang-up.
        self.farewells: set[ClientTransaction] = set()
        self._farewells_answered: asyncio.Event = asyncio.Event()
        self._farewells_answered.set()

    def spawn(self, coro: Any, name: str, *, on_error: Callable[[], None]) -> None:
        """Runs a setup step; a crash in it fails that call with a clear answer, not silence."""
        def done(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            log.error("%s failed", name, exc_info=task.exception())
            try:
                on_error()
            except Exception:
                log.exception("%s: could not fail the call cleanly", name)

        self.loop.create_task(coro, name=name).add_done_callback(done)

    def flow_to(self, transport: str, remote: tuple[str, int]) -> Flow:
        return self.sip.tcp_flow(remote) if transport == "tcp" else self.sip.udp_flow(remote)

    def setting(self, name: str) -> Any:
        return self.settings[name]

    # --- endpoint events -----------------------------------------------------------------------

    def on_sip_event(self, event: ep.Event) -> None:
        if isinstance(event, ep.RequestReceived):
            try:
                self._on_request(event.request, event.flow, event.tx)
            except Exception:
                # A bug must cost one request a 500, not leave its transaction hanging.
                log.exception("handling %s failed", event.request.method)
                if event.tx.last_status is None or event.tx.last_status < 200:
                    try:
                        self.sip.send_response(event.tx, make_response(event.request, 500, to_tag=new_tag()))
                    except Exception:
                        log.exception("could not answer 500")
        elif isinstance(event, ep.ResponseReceived):
            self._on_response(event)
        elif isinstance(event, ep.AckReceived):
            pass  # the endpoint stopped retransmitting our 2xx; nothing else waits on it
        elif isinstance(event, ep.CancelReceived):
            leg = self.server_invites.get(event.invite_tx)
            if leg is not None:
                leg.on_cancel()
        elif isinstance(event, ep.RequestTimeout):
            self._on_timeout(event.tx)
        elif isinstance(event, ep.AckTimeout):
            leg = self.server_invites.get(event.tx)
            if leg is not None:
                leg.on_ack_timeout()

    def _on_request(self, request: Request, flow: Flow, tx: ServerTransaction) -> None:
        to_tag = request.to.tag
        if to_tag is not None:
            sub = self.subscriptions.get(request.call_id, to_tag)
            if sub is not None and sub.remote[0] == flow.remote[0]:
                self._in_subscription(sub, request, flow, tx)
                return
            leg = self.dialogs.get((request.call_id, to_tag))
            if leg is None or leg.flow.remote[0] != flow.remote[0]:
                # In-dialog requests are trusted by their dialog identifiers and their source.
                self.sip.send_response(tx, make_response(request, 481))
                return
            leg.on_request(request, tx)
            return
        method = request.method
        if method == "OPTIONS":
            self.sip.send_response(tx, make_response(request, 200, to_tag=new_tag(), headers=[
                ("Allow", ALLOW), ("Accept", "application/sdp"), ("Allow-Events", MWI_EVENT),
                ("User-Agent", self.user_agent)]))
            return
        if method == "INVITE" and not self._admitted(request, tx, self.admission.check, self.sip.answer_statelessly):
            return  # before the challenge: overloaded, the box answers 503 now, not 407 and a second INVITE
        header = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
        user = self._authenticate(request, flow, tx, header)
        if user is None:
            return
        if method == "REGISTER":
            self._register(request, flow, tx, user)
        elif method == "INVITE":
            self._invite(request, flow, tx, user)
        elif method == "SUBSCRIBE":
            local_tag = new_tag()
            verdict = self.subscriptions.subscribe(request, user=user, mailboxes=self.mailboxes,
                                                   transport=flow.transport, remote=flow.remote,
                                                   now=time.time(), local_tag=local_tag)
            self._answer_subscribe(request, flow, tx, verdict, local_tag)
        else:
            self.sip.send_response(tx, make_response(request, 405, to_tag=new_tag(), headers=[("Allow", ALLOW)]))

    def _authenticate(self, request: Request, flow: Flow, tx: ServerTransaction, header: str) -> str | None:
        value = request.headers.get(header)
        stale = False
        if value is not None:
            verdict = self.auth.check(value, method=request.method, now=time.time(), transaction=tx.key)
            if verdict.ok:
                claimed = request.to.sip_uri.user if request.method == "REGISTER" else request.from_.sip_uri.user
                if claimed != verdict.user:
                    # Authenticated, but for someone else's identity: no enumeration risk here.
                    self.guard.auth_failed(flow.remote[0], flow.remote[1], self.loop.time(), user=verdict.user,
                                           method=request.method, reason="identity mismatch")
                    self.sip.send_response(tx, make_response(request, 403, "Forbidden (identity mismatch)",
                                                             to_tag=new_tag()))
                    return None
                return verdict.user
            stale = verdict.stale
            if verdict.failure is not None:
                self.guard.auth_failed(flow.remote[0], flow.remote[1], self.loop.time(),
                                       user=self.auth.username_of(value), method=request.method,
                                       reason=verdict.failure)
        status, name = (401, "WWW-Authenticate") if header == "Authorization" else (407, "Proxy-Authenticate")
        challenges = self.auth.challenges(time.time(), stale=stale)
        # Stateless (as Kamailio and Asterisk challenge): anyone can send a request from a forged
        # address, and a kept transaction would re-send the challenge there until timer H.
        self.sip.answer_statelessly(tx, make_response(request, status, to_tag=new_tag(),
                                                      headers=[(name, c.header_value()) for c in challenges]))
        return None

    # --- REGISTER ------------------------------------------------------------------------------

    def _register(self, request: Request, flow: Flow, tx: ServerTransaction, user: str) -> None:
        if user not in self.extensions:  # removed after the nonce was issued
            self.sip.send_response(tx, make_response(request, 403, to_tag=new_tag()))
            return
        response = self.registrar.register(request, user=user, transport=flow.transport, source=flow.remote,
                                           now=time.time(), to_tag=new_tag())
        self.sip.send_response(tx, response)
        if response.status == 200 and user in self.mailboxes:
            # a phone that was off when a message came, or was heard, learns of it now
            self.loop.call_soon(self.notify_mwi, user, *self.messages.counts(user))

    # --- calls ---------------------------------------------------------------------------------

    def _invite(self, request: Request, flow: Flow, tx: ServerTransaction, user: str) -> None:
        if self.stopping:
            # RFC 3261 §21.5.4: temporarily unable; a phone with another server tries that one.
            self.sip.send_response(tx, make_response(request, 503, "Service Unavailable (shutting down)",
                                                     to_tag=new_tag()))
            return
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            self.sip.send_response(tx, make_response(request, 483, to_tag=new_tag()))
            return
        try:
            callee = request.request_uri.user_unescaped or ""
        except ParseError as exc:
            self.sip.send_response(tx, make_response(request, exc.status or 400, exc.reason, to_tag=new_tag()))
            return
        if not self._admitted(request, tx, self.admission.admit, self.sip.send_response):
            return
        leg = InboundLeg(self, request, tx, flow, user)
        self.server_invites[tx] = leg
        call = Call(self, leg, call_id=request.call_id)
        self.calls.add(call)
        self.spawn(leg.start(callee), f"setup-{call.id}", on_error=lambda: leg.reject(500, "Server Internal Error"))

    def _admitted(self, request: Request, tx: ServerTransaction,
                  decide: Callable[[float, float | None], Refusal | None],
                  answer: Callable[[ServerTransaction, Response], None]) -> bool:
        """Admission control of a new call (firmware.pbx.admission); False once answered 503 with
        ``answer`` (statelessly while the request is not authenticated, as its challenge is)."""
        if request.headers.get("Replaces") is not None:
            return True  # an attended transfer takes the place of a call already up: no new load
        now = self.loop.time()
        workers = self.media.workers
        refusal = decide(now, workers.projected_share() if workers is not None else None)
        self.report_admission(now)
        if refusal is None:
            return True
        # RFC 3261 §21.5.4: temporarily unable; Retry-After says when to try again
        answer(tx, make_response(request, refusal.status, refusal.phrase, to_tag=new_tag(),
                                 headers=[("Retry-After", str(refusal.retry_after))]))
        return False

    def observe_load(self, sample: Sample) -> None:
        """One sample of the box's load (firmware.system.loadprobe) for admission control."""
        self.admission.observe(sample)
        self.report_admission(sample.now)

    def report_admission(self, now: float) -> None:
        """Each overload's start and end, once, among the security events the dashboard shows."""
        while (ev := self.admission.next_event()) is not None:
            self.guard.box_event(now, "overload" if isinstance(ev, OverloadStarted) else "overload-end",
                                 ev.describe())

    def route(self, call: Call, setup: Setup) -> None:
        """Places a call set up by its caller: the number dialled decides where it goes."""
        if self.stopping:
            # set up while the box was ending its calls (an endpoint still opening, a transfer)
            call.fail(SHUTDOWN, *CAUSE_STATUS[SHUTDOWN])
            return
        self.send(call, setup, self.plan.resolve(setup.callee))

    def dialable(self) -> set[str]:
        """Every number the box answers to (what an analog phone's dial plan completes on)."""
        return self.plan.numbers()

    def place(self, call: Call, setup: Setup, kind: str, target: str | None, *, voicemail: bool = True) -> None:
        """Sends a call to a destination of the configuration (what IVR options and overflows name).
        ``voicemail``: an extension that leaves the call unanswered sends it to its mailbox (not
        for a queue's callback, which retries instead)."""
        self.send(call, setup, Destination(kind, target), voicemail=voicemail)

    def send(self, call: Call, setup: Setup, dest: Destination, *, voicemail: bool = True) -> None:
        """Hands a call to the feature that handles its destination's kind (time conditions
        followed first); a kind nobody handles, or a target that is gone, is "not available"."""
        kind, target = self.resolve(dest.kind, dest.target)
        if (kind, target) != (dest.kind, dest.target):
            dest = Destination(kind, target)
        handler = self.destinations.get(dest.kind)
        if handler is None or not handler(call, setup, dest, voicemail):
            call.fail("not-available", 480, "Temporarily Unavailable")

    def place_extension(self, call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        """The "extension" destination: ring it, with its mailbox behind it when it has one."""
        target = dest.target
        if not target:
            return False
        box = self.mailboxes.get(target) if voicemail else None
        call.divert = ("voicemail", target) if box is not None and box.get("unanswered", True) else None
        self._dial_extension(call, replace(setup, callee=target) if setup.callee != target else setup)
        return True

    def mailbox_changed(self, mailbox: str) -> None:
        """A message was left, heard or deleted: the mailbox's phones show whether any is new."""
        waiting, heard = self.messages.counts(mailbox)
        if self.lines is not None:
            self.lines.set_mwi(mailbox, waiting > 0)
        self.notify_mwi(mailbox, waiting, heard)

    def refresh_mwi(self) -> None:
        """The analog phones' indicators after a start or a change of ports (SIP phones are told
        when they register)."""
        if self.lines is not None:
            for mailbox in self.mailboxes:
                self.lines.set_mwi(mailbox, self.messages.new_count(mailbox) > 0)

    def start_app(self, call: Call, leg: Any) -> None:
        call.add_callee(leg)
        self.spawn(leg.start(), f"app-{call.id}", on_error=lambda: call.on_event(leg, Release("congestion", 503)))

    def _dial_extension(self, call: Call, setup: Setup) -> None:
        number = setup.callee
        if number not in self.extensions:
            call.fail("not-found")
            return
        bindings = self.registrar.lookup(number, time.time())
        analog = self.lines.route(number, setup) if self.lines is not None else None
        if not bindings and analog is None:
            call.fail("not-registered")
            return
        for leg in [*self.ring(number, setup, bindings), *([analog] if analog is not None else [])]:
            call.add_callee(leg)
        for leg in list(call.candidates):
            self.spawn(leg.start(), f"dial-{call.id}",  # type: ignore[attr-defined]
                       on_error=lambda leg=leg: call.on_event(leg, Release("congestion", 503)))
        call.start_no_answer_timer(self.setting("call.no_answer_timeout"))

    def ring(self, number: str, setup: Setup, bindings: list[Any] | None = None) -> list[OutboundLeg]:
        """One outgoing leg per registered contact of an extension (not started yet)."""
        if bindings is None:
            bindings = self.registrar.lookup(number, time.time())
        return [OutboundLeg(self, self.flow_to(b.transport, destination(b)), target=b.contact, callee=number,
                            setup=setup) for b in bindings]

    def extension_busy(self, number: str, delta: int) -> None:
        """Counts answered calls per extension; queues hear when an agent becomes busy or free."""
        before = self.busy.get(number, 0)
        after = max(0, before + delta)
        if after:
            self.busy[number] = after
        else:
            self.busy.pop(number, None)
        if (before == 0) != (after == 0):
            self.queues.extension_busy(number, after > 0)

    def recording_mode(self, call: Call) -> str:
        """always / never / on-demand for an answered call: the policy over its parties, the number
        dialled and the queue that connected it; the box-wide setting when none has a say."""
        setup = call.setup
        return self.recording_policy.mode(
            extensions=[e for e in (extension_of(call.a), extension_of(call.b)) if e],
            numbers=[setup.callee] if setup is not None else [],
            queue_mode=call.recording_mode, default=self.setting("recording.calls"))

    def music_on_hold(self) -> SharedSource:
        """The one music-on-hold source every held caller listens to (one decode, many ears)."""
        if self._moh is None:
            notes = (523.25, 659.25, 783.99, 1046.5, 783.99, 659.25)  # a C major arpeggio, -18 dBm0
            items: list[object] = []
            for f in notes:
                items += [ToneItem(ToneSpec((f,), (-18.0,)), 280), silence(40)]
            items.append(silence(600))
            self._moh = SharedSource(Playlist(items, loop=True))
        return self._moh

    def resolve(self, kind: str, target: str | None) -> tuple[str, str | None]:
        """Follows time conditions (office hours, holidays) to a destination that is not one."""
        for _ in range(8):  # conditions may lead to conditions; validation forbids silent loops
            if kind != "condition":
                return kind, target
            cond = self.ivr_conditions.get(target or "")
            if cond is None:
                return "hangup", None
            dest = cond.destination(datetime.now(timezone.utc)) or {"goto": "hangup"}
            kind, target = dest.get("goto", "hangup"), dest.get("target")
        return "hangup", None

    def _on_response(self, event: ep.ResponseReceived) -> None:
        response = event.response
        tx = event.tx
        if tx is not None:
            if response.status >= 200:
                self._farewell_done(tx)
            qualified = self.qualify_txs.pop(tx, None)
            if qualified is not None:
                self.registrar.unreachable.discard(qualified)
                return
            sub = self.notify_txs.pop(tx, None) if response.status >= 200 else None
            if sub is not None:
                if response.status >= 300:
                    # RFC 6665 §4.1.3: a refused NOTIFY ends the subscription (the phone forgot it)
                    log.info("%s refused the message-waiting NOTIFY (%d): subscription ended",
                             sub.user, response.status)
                    self.subscriptions.drop(sub)
                return
            leg = self.client_txs.get(tx)
            if leg is not None:
                if isinstance(leg, OutboundLeg):
                    leg.on_response(response, tx)
                else:
                    leg.on_in_dialog_response(response, tx)
                return
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            leg = self.dialogs.get((response.call_id, response.from_.tag or ""))
            if isinstance(leg, OutboundLeg):
                leg.on_stray_2xx(response)

    def _on_timeout(self, tx: ClientTransaction) -> None:
        self._farewell_done(tx)
        sub = self.notify_txs.pop(tx, None)
        if sub is not None:
            log.info("%s did not answer the message-waiting NOTIFY: subscription ended", sub.user)
            self.subscriptions.drop(sub)
            return
        qualified = self.qualify_txs.pop(tx, None)
        if qualified is not None:
            self.registrar.unreachable.add(qualified)
            log.warning("contact %s of %s does not answer OPTIONS: not ringing it", qualified[1], qualified[0])
            return
        leg = self.client_txs.get(tx)
        if leg is not None:
            leg.on_timeout(tx)

    def leg_of_dialog(self, call_id: str, tags: frozenset[str]) -> SipLeg | None:
        """Our leg in the dialog with this Call-ID and these two tags (a Replaces target)."""
        for (cid, _), leg in self.dialogs.items():
            d = leg.dialog
            if cid == call_id and d is not None and frozenset({d.local_tag, d.remote_tag}) == tags:
                return leg
        return None

    def forget_leg(self, leg: SipLeg) -> None:
        if leg.dialog is not None:
            self.dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
        if isinstance(leg, InboundLeg):
            self.server_invites.pop(leg.tx, None)
        for tx in [t for t, owner in self.client_txs.items() if owner is leg]:
            # Its outstanding requests (a BYE, a CANCEL) still run, but their answers concern nobody now.
            del self.client_txs[tx]

    def recording_event(self, event: object) -> None:
        """What the engine reports of a call recording (finished, disk full)."""
        if isinstance(event, DiskFull):
            log.error("recording stopped, disk full: %s", event)
            self.media_events.append({"time": time.time(), "event": "disk-full", "detail": str(event)})
        elif isinstance(event, RecordingStopped):
            log.info("recording %s finished: %.1f s", event.path, event.seconds)
            self.media_events.append({"time": time.time(), "event": "recording-stopped", "path": str(event.path),
                                      "seconds": event.seconds})
            self.loop.run_in_executor(None, self.recordings.enforce)

    def call_ended(self, call: Call) -> None:
        self.calls.discard(call)
        if self.lines is not None:
            self.lines.call_ended()

    # --- periodic work -------------------------------------------------------------------------

    def check_media(self, now: float) -> None:
        for bridge in self.media.check_timeouts(now):
            call = self.bridges.get(bridge)
            if call is not None:
                call.media_timeout()

    def _out_of_dialog(self, method: str, b: Any, headers: tuple[tuple[str, str], ...] = (),
                       body: bytes = b"") -> ClientTransaction | None:
        """Sends a request of the box's own (no dialog) to a registered contact."""
        req = Request(method, b.contact, [
            ("Max-Forwards", "70"),
            ("From", f"<sip:linebox@{self.domain}>;tag={new_tag()}"),
            ("To", f"<sip:{b.aor}@{self.domain}>"),
            ("Call-ID", f"{new_tag()}@{self.domain}"),
            ("CSeq", f"1 {method}"),
            ("User-Agent", self.user_agent),
            *headers,
        ], body)
        try:
            return self.sip.send_request(req, self.flow_to(b.transport, destination(b)))
        except (OSError, ValueError) as exc:
            log.warning("cannot send %s to %s: %s", method, b.contact, exc)
            return None

    def notify_mwi(self, mailbox: str, waiting: int, heard: int) -> None:
        """Tells the mailbox's phones whether messages wait (RFC 3842 message-summary): in their
        subscription if they SUBSCRIBEd, else unsolicited, which most desk phones and softphones
        light their lamp on."""
        body = summary_body(mailbox, self.domain, waiting, heard)
        now = time.time()
        subs = self.subscriptions.of_mailbox(mailbox)
        for sub in subs:
            self._notify_subscriber(sub, f"active;expires={sub.remaining(now)}", body)
        subscribed = {(sub.transport, sub.remote) for sub in subs}
        for b in self.registrar.lookup(mailbox, now):
            if (b.transport, destination(b)) in subscribed:
                continue  # told in its subscription: once is enough
            self._out_of_dialog("NOTIFY", b, (("Event", MWI_EVENT), ("Subscription-State", "active"),
                                              ("Content-Type", MWI_CONTENT_TYPE)), body)

    # --- message-waiting subscriptions ---------------------------------------------------------

    def _in_subscription(self, sub: Subscription, request: Request, flow: Flow, tx: ServerTransaction) -> None:
        if request.method != "SUBSCRIBE":
            self.sip.send_response(tx, make_response(request, 405, headers=[("Allow", "SUBSCRIBE")]))
            return
        verdict = self.subscriptions.refresh(sub, request, time.time())
        self._answer_subscribe(request, flow, tx, verdict, sub.local_tag)

    def _answer_subscribe(self, request: Request, flow: Flow, tx: ServerTransaction, verdict: Verdict,
                          local_tag: str) -> None:
        headers = list(verdict.headers)
        if verdict.status < 300:
            headers.append(("Contact", contact_of(flow)))
        self.sip.send_response(tx, make_response(request, verdict.status, verdict.reason, to_tag=local_tag,
                                                 headers=headers))
        sub = verdict.subscription
        if sub is not None:
            # RFC 6665 §4.2.1.4: an accepted SUBSCRIBE is followed by a NOTIFY with the state
            self._notify_subscriber(sub, verdict.state)

    def _notify_subscriber(self, sub: Subscription, state: str, body: bytes | None = None) -> None:
        if body is None:
            body = summary_body(sub.mailbox, self.domain, *self.messages.counts(sub.mailbox))
        flow = self.flow_to(sub.transport, sub.remote)
        req = notify(sub, state=state, body=body, contact=contact_of(flow), user_agent=self.user_agent)
        try:
            tx = self.sip.send_request(req, flow)
        except (OSError, ValueError) as exc:
            log.warning("cannot send the message-waiting NOTIFY to %s: %s", sub.target, exc)
            self.subscriptions.drop(sub)
            return
        if state.startswith("active"):
            self.notify_txs[tx] = sub

    def end_subscriptions(self, now: float) -> None:
        """Ends the subscriptions whose time is up, or whose extension or mailbox is gone, each
        with its last NOTIFY (checked by the housekeeping timer and at every reload)."""
        for sub in self.subscriptions.expired(now):
            self._notify_subscriber(sub, "terminated;reason=timeout")
        for sub in self.subscriptions.orphaned(self.extensions, self.mailboxes):
            self._notify_subscriber(sub, "terminated;reason=noresource")

    def qualify(self) -> None:
        """OPTIONS to every registered contact: finds dead phones and keeps NAT mappings open."""
        now = time.time()
        for b in self.registrar.all(now):
            tx = self._out_of_dialog("OPTIONS", b)
            if tx is None:
                continue
            self.qualify_txs[tx] = (b.aor, b.contact)
            # A phone that does not answer within a few seconds is not taking calls; waiting for
            # the transaction's own timer F (32 s) would ring a dead phone for half a minute.
            self.loop.call_later(self.setting("sip.qualify_timeout"), self._qualify_expired, tx)

    def _qualify_expired(self, tx: ClientTransaction) -> None:
        if tx in self.qualify_txs and self.admission.loop_behind:
            # The box's loop is late or saturated: the answer may well be waiting in its own
            # socket (at 500 setups/s against a 300/s cap, 747 calls got 480 for a callee that was fine).
            # Wait again; the transaction's own timer F still ends a phone that is really gone.
            self.loop.call_later(self.setting("sip.qualify_timeout"), self._qualify_expired, tx)
            return
        qualified = self.qualify_txs.pop(tx, None)
        if qualified is not None and qualified not in self.registrar.unreachable:
            self.registrar.unreachable.add(qualified)
            log.warning("contact %s of %s does not answer OPTIONS: not ringing it", qualified[1], qualified[0])

    # --- stopping -------------------------------------------------------------------------------

    def farewell(self, tx: ClientTransaction) -> None:
        """A BYE or CANCEL the box sent (see ``farewells``)."""
        self.farewells.add(tx)
        self._farewells_answered.clear()

    def _farewell_done(self, tx: ClientTransaction) -> None:
        if tx in self.farewells:
            self.farewells.discard(tx)
            if not self.farewells:
                self._farewells_answered.set()

    async def farewells_answered(self) -> None:
        """Returns once every BYE and CANCEL sent has its final answer (or timed out); the
        caller bounds the wait."""
        await self._farewells_answered.wait()

    def shut_down(self) -> int:
        """The box is stopping: from now on no call is taken (INVITEs get 503), and every call
        ends with the CDR cause "shutdown": its row is closed, each SIP leg gets its BYE (or
        CANCEL, or a 503 to an INVITE not answered yet), analog and application legs are
        released. Queue offers and callbacks stop ringing agents. Returns the calls ended."""
        self.stopping = True
        ended = self.hang_up_all(SHUTDOWN)
        self.queues.stop(SHUTDOWN)
        return ended

    def hang_up_all(self, cause: str) -> int:
        """Ends every call with ``cause``; returns how many there were."""
        calls = list(self.calls)
        for call in calls:
            try:
                call.end(cause)
            except Exception:
                # One call that cannot end cleanly must not keep the others (or the stop) waiting.
                log.exception("call %s: could not end it (%s)", call.id, cause)
                self.call_ended(call)
        return len(calls)

    def status(self) -> dict[str, Any]:
        return {
            "registrations": self.registrar.count(),
            "calls": len(self.calls),
            "transactions": self.sip.endpoint.transaction_count(),
            "media": self.media.stats,
            "banned": len(self.guard.banned(self.loop.time())),
            "admission": self.admission.status(self.loop.time()),
        }


if TYPE_CHECKING:
    # Never run: a type checker proves here that Pbx still offers each narrow interface its users
    # are given, one line each so that a break names the interface and the member. (Most are also
    # checked where Pbx passes itself on; LinesHost otherwise only in the composition root.)
    _app: AppHost = cast(Pbx, None)
    _mailbox: MailboxHost = cast(Pbx, None)
    _caller: CallerHost = cast(Pbx, None)
    _agent: AgentHost = cast(Pbx, None)
    _queue: QueueHost = cast(Pbx, None)
    _feature: FeatureHost = cast(Pbx, None)
    _queue_feature: QueueFeatureHost = cast(Pbx, None)
    _lines: LinesHost = cast(Pbx, None)
    _call: CallHost = cast(Pbx, None)
    _sip: SipHost = cast(Pbx, None)
