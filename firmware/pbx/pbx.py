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
from typing import TYPE_CHECKING, Any, Callable

from firmware.ivr.timecond import TimeCondition
from firmware.media.player import Playlist, SharedSource, SoundCache, ToneItem, silence
from firmware.media.tones import ToneSpec
from firmware.media.recorder import DiskFull, RecordingStopped, RecordingStore
from firmware.media.relay import Bridge, MediaEngine
from firmware.prompts import PromptSet
from firmware.sip import endpoint as ep
from firmware.sip.endpoint import Flow
from firmware.sip.message import ParseError, Request, make_response, new_tag
from firmware.sip.transaction import ClientTransaction, ServerTransaction
from firmware.store.db import Writer

from .apps import FEATURE_CODES, IvrApp
from .auth import Authenticator
from .b2bua import Call
from .events import Release, Setup
from .guard import Guard
from .registrar import Registrar, destination
from .sipleg import InboundLeg, OutboundLeg, SipLeg

if TYPE_CHECKING:
    from firmware.sip.transport import SipTransport

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO, NOTIFY"


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
        user_agent: str = "LineBox",
    ) -> None:
        self.loop = loop
        self.sip = sip
        self.media = media
        self.registrar = registrar
        self.auth = auth
        self.guard = guard
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
                ("Allow", ALLOW), ("Accept", "application/sdp"),
                ("User-Agent", self.user_agent)]))
            return
        header = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
        user = self._authenticate(request, flow, tx, header)
        if user is None:
            return
        if method == "REGISTER":
            self._register(request, flow, tx, user)
        elif method == "INVITE":
            self._invite(request, flow, tx, user)
        else:
            self.sip.send_response(tx, make_response(request, 405, to_tag=new_tag(), headers=[("Allow", ALLOW)]))

    def _authenticate(self, request: Request, flow: Flow, tx: ServerTransaction, header: str) -> str | None:
        value = request.headers.get(header)
        stale = False
        if value is not None:
            verdict = self.auth.check(value, method=request.method, now=time.time())
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
        self.sip.send_response(tx, make_response(request, status, to_tag=new_tag(),
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

    # --- calls ---------------------------------------------------------------------------------

    def _invite(self, request: Request, flow: Flow, tx: ServerTransaction, user: str) -> None:
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            self.sip.send_response(tx, make_response(request, 483, to_tag=new_tag()))
            return
        try:
            callee = request.request_uri.user_unescaped or ""
        except ParseError as exc:
            self.sip.send_response(tx, make_response(request, exc.status or 400, exc.reason, to_tag=new_tag()))
            return
        leg = InboundLeg(self, request, tx, flow, user)
        self.server_invites[tx] = leg
        call = Call(self, leg, call_id=request.call_id)
        self.calls.add(call)
        self.spawn(leg.start(callee), f"setup-{call.id}", on_error=lambda: leg.reject(500, "Server Internal Error"))

    def route(self, call: Call, setup: Setup) -> None:
        """Places a call set up by its caller: today, extension to extension."""
        number = setup.callee
        app = FEATURE_CODES.get(number)
        if number in self.ivr_numbers:
            target = self.ivr_numbers[number]
            kind = "condition" if target in self.ivr_conditions else "menu"
            kind, target = self.resolve(kind, target)
            if kind == "extension":
                self.route(call, replace(setup, callee=target))
                return
            if kind != "menu":
                # hangup, or a queue / voicemail, which are not built yet: closed for now
                call.fail("not-available", 480, "Temporarily Unavailable")
                return
            menus, start = self.ivr_menus, target
            app = lambda pbx, setup, prompts: IvrApp(pbx, setup, prompts, menus=menus, start=start)  # noqa: E731
        if app is not None:
            leg = app(self, setup, self.prompts)
            call.add_callee(leg)  # type: ignore[arg-type]
            self.spawn(leg.start(), f"app-{call.id}", on_error=lambda: call.on_event(leg, Release("congestion", 503)))
            return
        if number not in self.extensions:
            call.fail("not-found")
            return
        bindings = self.registrar.lookup(number, time.time())
        if not bindings:
            call.fail("not-registered")
            return
        for b in bindings:
            flow = self.flow_to(b.transport, destination(b))
            leg = OutboundLeg(self, flow, target=b.contact, callee=number, setup=setup)
            call.add_callee(leg)
        for leg in list(call.candidates):
            self.spawn(leg.start(), f"dial-{call.id}",  # type: ignore[attr-defined]
                       on_error=lambda leg=leg: call.on_event(leg, Release("congestion", 503)))
        call.start_no_answer_timer(self.setting("call.no_answer_timeout"))

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
            qualified = self.qualify_txs.pop(tx, None)
            if qualified is not None:
                self.registrar.unreachable.discard(qualified)
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
        qualified = self.qualify_txs.pop(tx, None)
        if qualified is not None:
            self.registrar.unreachable.add(qualified)
            log.warning("contact %s of %s does not answer OPTIONS: not ringing it", qualified[1], qualified[0])
            return
        leg = self.client_txs.get(tx)
        if leg is not None:
            leg.on_timeout(tx)

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

    # --- periodic work -------------------------------------------------------------------------

    def check_media(self, now: float) -> None:
        for bridge in self.media.check_timeouts(now):
            call = self.bridges.get(bridge)
            if call is not None:
                call.media_timeout()

    def qualify(self) -> None:
        """OPTIONS to every registered contact: finds dead phones and keeps NAT mappings open."""
        now = time.time()
        for b in self.registrar.all(now):
            flow = self.flow_to(b.transport, destination(b))
            req = Request("OPTIONS", b.contact, [
                ("Max-Forwards", "70"),
                ("From", f"<sip:linebox@{self.domain}>;tag={new_tag()}"),
                ("To", f"<sip:{b.aor}@{self.domain}>"),
                ("Call-ID", f"{new_tag()}@{self.domain}"),
                ("CSeq", "1 OPTIONS"),
                ("User-Agent", self.user_agent),
            ])
            try:
                tx = self.sip.send_request(req, flow)
            except (OSError, ValueError) as exc:
                log.warning("cannot qualify %s: %s", b.contact, exc)
                continue
            self.qualify_txs[tx] = (b.aor, b.contact)
            # A phone that does not answer within a few seconds is not taking calls; waiting for
            # the transaction's own timer F (32 s) would ring a dead phone for half a minute.
            self.loop.call_later(self.setting("sip.qualify_timeout"), self._qualify_expired, tx)

    def _qualify_expired(self, tx: ClientTransaction) -> None:
        qualified = self.qualify_txs.pop(tx, None)
        if qualified is not None and qualified not in self.registrar.unreachable:
            self.registrar.unreachable.add(qualified)
            log.warning("contact %s of %s does not answer OPTIONS: not ringing it", qualified[1], qualified[0])

    def hang_up_all(self) -> None:
        for call in list(self.calls):
            call.end("interrupted")

    def status(self) -> dict[str, Any]:
        return {
            "registrations": self.registrar.count(),
            "calls": len(self.calls),
            "transactions": self.sip.endpoint.transaction_count(),
            "media": self.media.stats,
            "banned": len(self.guard.banned(self.loop.time())),
        }
