"""A SIP dialog as a call leg: turns SIP into call events and call events into SIP.

The box anchors media: toward its phone each leg offers/answers SDP with the box's own address
and a media-engine endpoint of its own; the controller bridges the two endpoints. Re-INVITEs
from a phone (hold, resume, a new address) are answered by this leg at once, because only this
leg's side of the anchor changes; the change of direction goes to the other leg as ``Hold``.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from firmware.media.relay import Endpoint, MediaEngine, MediaError
from firmware.sip.dialog import Dialog
from firmware.sip.endpoint import Flow
from firmware.sip.message import ParseError, Request, Response, make_response, new_tag
from firmware.sip.sdp import Codec, SdpError, SessionDescription, audio_codecs, build_answer, build_offer, negotiated
from firmware.sip.transaction import ClientTransaction, ServerTransaction, build_cancel
from firmware.sip.uri import NameAddr, SipUri

from firmware.events import CAUSE_STATUS, G711, Alerting, Answer, Event, Hold, Release, Setup, Transfer, cause_for_status

if TYPE_CHECKING:
    from firmware.sip.transport import SipTransport

    from .b2bua import Call

log = logging.getLogger(__name__)

TELEPHONE_EVENT_PT = 101
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_legs = itertools.count(1)


def contact_of(flow: Flow) -> str:
    """The box's Contact for requests and answers on ``flow``: the address it is reached at."""
    host, port = flow.local
    host = f"[{host}]" if ":" in host else host
    tp = ";transport=tcp" if flow.transport == "tcp" else ""
    return f"<sip:{host}:{port}{tp}>"


def sdp_body(sd: SessionDescription) -> bytes:
    return bytes(sd)


def offer_direction(sd: SessionDescription) -> str:
    """The direction the offerer asks for, with RFC 2543 hold (c=0.0.0.0) read as sendonly."""
    m = sd.first_audio()
    if m is None:
        return "sendrecv"
    d = sd.direction_for(m)
    if sd.connection_for(m) in ("0.0.0.0", "::") and d == "sendrecv":
        return "sendonly"
    return d



def replaces_dialog(value: str) -> tuple[str, frozenset[str]]:
    """Call-ID and the two tags of a Replaces value as it appears in a Refer-To URI
    (``id%40host%3Bto-tag%3Da%3Bfrom-tag%3Db``). Which tag is whose depends on the side that
    wrote it, so both are given and matched as a pair."""
    call_id, *params = unquote(value).split(";")
    tags = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params)}
    return call_id.strip(), frozenset({tags.get("to-tag", ""), tags.get("from-tag", "")})


class SipHost(Protocol):
    """What a SIP leg needs of the PBX: the transport it sends on, the tables through which the
    PBX hands it the requests and responses of its dialog, and the box's own SIP identity.

    It lives here and not in services.py because it names ``SipLeg``."""

    sip: SipTransport
    media: MediaEngine
    dialogs: dict[tuple[str, str], SipLeg]  # (Call-ID, local tag) -> the leg of that dialog
    client_txs: dict[ClientTransaction, SipLeg]  # the requests a leg sent -> that leg
    domain: str
    user_agent: str
    allow_header: str

    def farewell(self, tx: ClientTransaction) -> None: ...
    def forget_leg(self, leg: SipLeg) -> None: ...
    def leg_of_dialog(self, call_id: str, tags: frozenset[str]) -> SipLeg | None: ...


class SipLeg:
    """What inbound and outbound SIP legs share: media endpoint, dialog, in-dialog requests."""

    def __init__(self, pbx: SipHost, flow: Flow) -> None:
        self.pbx = pbx
        self.flow = flow
        self.name = f"leg{next(_legs)}"
        self.call: Call | None = None
        self.endpoint: Endpoint | None = None
        self.dialog: Dialog | None = None
        self.codecs: tuple[Codec, ...] = ()  # negotiated toward our phone: audio codec first
        self.answered = False
        self.ended = False
        self.direction = "sendrecv"  # what we last offered/answered toward our phone
        self._session_id = random.randrange(1, 2**31)
        self._sdp_version = 0
        self._pending: dict[ClientTransaction, Request] = {}  # in-dialog requests we sent

    # --- helpers -------------------------------------------------------------------------------

    @property
    def contact(self) -> str:
        return contact_of(self.flow)

    def _next_sdp(self, **kw: object) -> dict[str, object]:
        self._sdp_version += 1
        assert self.endpoint is not None
        return dict(address=self.endpoint.local_host, port=self.endpoint.local_port,
                    session_id=self._session_id, version=self._sdp_version, **kw)

    def _set_remote_media(self, sd: SessionDescription) -> None:
        m = sd.first_audio()
        if m is None or self.endpoint is None:
            return
        host = sd.connection_for(m)
        if host and host not in ("0.0.0.0", "::") and m.port:
            self.endpoint.set_remote(host, m.port, m.port + 1)

    def _emit(self, event: Event) -> None:
        if self.call is not None:
            self.call.on_event(self, event)

    def _send(self, request: Request) -> ClientTransaction:
        tx = self.pbx.sip.send_request(request, self.flow)
        self.pbx.client_txs[tx] = self
        return tx

    def _in_dialog(self, method: str, *, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                   content_type: str = "application/sdp") -> ClientTransaction:
        assert self.dialog is not None
        hdrs = list(headers or [])
        if body:
            hdrs.append(("Content-Type", content_type))
        req = self.dialog.create_request(method, headers=hdrs, body=body, contact=self.contact)
        tx = self._send(req)
        self._pending[tx] = req
        return tx

    def hold_offer(self, direction: str) -> None:
        """Re-INVITE our phone with a new direction (the other party held or resumed)."""
        if not self.answered or self.ended or self.dialog is None or not self.codecs:
            return
        self.direction = direction
        sd = build_offer(codecs=list(self.codecs), direction=direction, **self._next_sdp())  # type: ignore[arg-type]
        self._in_dialog("INVITE", body=sdp_body(sd))

    def bye(self) -> None:
        if self.dialog is not None and not self.ended:
            self.pbx.farewell(self._in_dialog("BYE"))

    def close_media(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None

    def finish(self) -> None:
        self.ended = True
        self.close_media()
        self.pbx.forget_leg(self)

    def _gone(self, cause: str, status: int | None = None, reason: str | None = None) -> None:
        """Our side of the call ended by itself: tell the controller, then let go of everything."""
        if self.ended:
            return
        self.ended = True
        self._emit(Release(cause, status, reason))
        self.finish()

    # --- in-dialog requests from our phone -----------------------------------------------------

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        assert self.dialog is not None
        problem = self.dialog.receive_request(request)
        if problem is not None:
            self.pbx.sip.send_response(tx, make_response(request, problem))
            return
        method = request.method
        if method == "BYE":
            self.pbx.sip.send_response(tx, make_response(request, 200))
            self._gone(self.hangup_cause)
        elif method in ("INVITE", "UPDATE"):
            self._on_reoffer(request, tx)
        elif method in ("INFO", "OPTIONS", "NOTIFY"):
            self.pbx.sip.send_response(tx, make_response(request, 200))
        elif method == "REFER":
            self._on_refer(request, tx)
        else:
            self.pbx.sip.send_response(tx, make_response(request, 405, headers=[("Allow", self.pbx.allow_header)]))

    def _on_refer(self, request: Request, tx: ServerTransaction) -> None:
        """A blind transfer (RFC 3515): accept, tell the phone it worked, and hand the other
        party to the target; this leg then leaves the call."""
        refer_to = request.headers.get("Refer-To") or ""
        try:
            uri = NameAddr.parse(refer_to).uri
            target = uri.user_unescaped if isinstance(uri, SipUri) else None
        except ParseError:
            uri, target = None, None
        if not target:
            self.pbx.sip.send_response(tx, make_response(request, 400, "Bad Refer-To"))
            return
        if self.call is None or not self.answered:
            self.pbx.sip.send_response(tx, make_response(request, 603, "Decline"))
            return
        consult = None
        replaces = next((v for k, v in uri.headers.items() if k.lower() == "replaces"), None) \
            if isinstance(uri, SipUri) else None
        if replaces is not None:
            # Attended transfer (RFC 3891): the dialog named is this phone's other call with us.
            consult = self.pbx.leg_of_dialog(*replaces_dialog(replaces))
            if consult is None or consult.call is None or consult.call is self.call or not consult.answered \
                    or consult.call.b is None:
                self.pbx.sip.send_response(tx, make_response(request, 481, "Call/Transaction Does Not Exist"))
                return
        self.pbx.sip.send_response(tx, make_response(request, 202))
        # The implicit subscription ends at once with a final 200: the box takes it from here.
        self._in_dialog("NOTIFY", body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag;version=2.0",
                        headers=[("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")])
        self._emit(Transfer(target, replaces=consult))

    def _on_reoffer(self, request: Request, tx: ServerTransaction) -> None:
        if not request.body:
            # An offerless re-INVITE (a refresh): answer with what we have.
            sd = build_offer(codecs=list(self.codecs), direction=self.direction, **self._next_sdp())  # type: ignore[arg-type]
            self._answer_in_dialog(request, tx, sd)
            return
        try:
            offer = SessionDescription.parse(request.body)
            answer, codecs = build_answer(offer, supported=G711, prefer=[self.codecs[0].name] if self.codecs else None,
                                          **self._next_sdp())  # type: ignore[arg-type]
        except SdpError as exc:
            self.pbx.sip.send_response(tx, make_response(request, exc.status, str(exc)))
            return
        self._set_remote_media(offer)
        self.codecs = tuple(codecs)
        self._answer_in_dialog(request, tx, answer)
        asked = offer_direction(offer)
        if self.call is not None:
            self.call.media_changed(self)
            self._emit(Hold(asked))

    def _answer_in_dialog(self, request: Request, tx: ServerTransaction, sd: SessionDescription) -> None:
        assert self.dialog is not None
        self.pbx.sip.send_response(tx, make_response(
            request, 200, to_tag=self.dialog.local_tag,
            headers=[("Contact", self.contact), ("Content-Type", "application/sdp")], body=sdp_body(sd)))

    def on_in_dialog_response(self, response: Response, tx: ClientTransaction) -> None:
        if response.status < 200:
            return
        request = self._pending.pop(tx, None)
        method = request.method if request is not None else None
        self.pbx.client_txs.pop(tx, None)
        if request is not None and method == "INVITE" and 200 <= response.status < 300 and self.dialog is not None:
            self.pbx.sip.send_ack(self.dialog.ack_for(request), self.flow)
            if response.body:
                try:
                    sd = SessionDescription.parse(response.body)
                    self._set_remote_media(sd)
                    got = negotiated(sd)
                    if got:
                        self.codecs = tuple(got)
                        if self.call is not None:
                            self.call.media_changed(self)
                except SdpError as exc:
                    log.warning("%s: bad SDP in answer to re-INVITE: %s", self.name, exc)
        elif method != "BYE" and response.status in (408, 481):
            self._gone("unreachable")

    def on_timeout(self, tx: ClientTransaction) -> None:
        request = self._pending.pop(tx, None)
        self.pbx.client_txs.pop(tx, None)
        if request is not None and request.method != "BYE":
            self._gone("unreachable")

    @property
    def hangup_cause(self) -> str:
        return "caller-hangup"


class InboundLeg(SipLeg):
    """The caller's side: we are the UAS of its INVITE."""

    def __init__(self, pbx: SipHost, request: Request, tx: ServerTransaction, flow: Flow, user: str) -> None:
        super().__init__(pbx, flow)
        self.invite = request
        self.tx = tx
        self.user = user
        self.local_tag = new_tag()
        self.offer: SessionDescription | None = None
        self.final_sent = False
        self.ringing_sent = False
        self.early_answer: bytes | None = None  # the SDP answer sent in a 183, repeated in the 200

    async def start(self, callee: str) -> None:
        """Parses the offer, opens our media endpoint and tells the controller who is called."""
        request = self.invite
        if not request.body:
            self.reject(488, "Not Acceptable Here (an SDP offer is required)")
            return
        try:
            self.offer = SessionDescription.parse(request.body)
        except SdpError as exc:
            self.reject(exc.status, f"Bad Request ({exc})")
            return
        codecs = tuple(c for c in audio_codecs(self.offer) if c.name.upper() in G711 or c.matches("telephone-event"))
        if not any(c.name.upper() in G711 for c in codecs):
            self.reject(488, "Not Acceptable Here (offer PCMU or PCMA)", headers=[("Warning", '304 linebox "PCMU/PCMA only"')])
            return
        try:
            self.endpoint = await self.pbx.media.open_endpoint()
        except MediaError as exc:
            log.error("no media port for a new call: %s", exc)
            self.reject(503, "Service Unavailable (no media ports)")
            return
        if self.final_sent:  # cancelled while the endpoint was opening
            self.close_media()
            return
        self._set_remote_media(self.offer)
        display = request.from_.display_name or ""
        mf = request.max_forwards
        self._emit(Setup(caller=self.user, caller_name=display, callee=callee, codecs=codecs,
                         hops=min(70, mf - 1) if mf is not None else 69))

    def reject(self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None) -> None:
        if self.final_sent:
            return
        self.final_sent = True
        self.pbx.sip.send_response(self.tx, make_response(self.invite, status, reason, to_tag=self.local_tag,
                                                          headers=headers or []))
        self.finish()
        if self.call is not None:
            self.call.end("rejected", source=self)

    def _answer_sdp(self, prefer: tuple[Codec, ...] | None) -> bytes:
        assert self.offer is not None
        names = [prefer[0].name] if prefer else None
        answer, codecs = build_answer(self.offer, supported=G711, prefer=names, **self._next_sdp())  # type: ignore[arg-type]
        self.codecs = tuple(codecs)
        self.direction = offer_direction(self.offer)
        return sdp_body(answer)

    def deliver(self, event: Event) -> None:
        if self.ended:
            return
        if isinstance(event, Alerting):
            if self.final_sent:
                return
            if event.codecs and self.early_answer is None:
                body = self.early_answer = self._answer_sdp(event.codecs)
                self.pbx.sip.send_response(self.tx, make_response(
                    self.invite, 183, "Session Progress", to_tag=self.local_tag,
                    headers=[("Contact", self.contact), ("Content-Type", "application/sdp")], body=body))
                if self.call is not None:
                    self.call.media_changed(self)
            elif not self.ringing_sent and self.early_answer is None:
                self.ringing_sent = True
                self.pbx.sip.send_response(self.tx, make_response(
                    self.invite, 180, to_tag=self.local_tag, headers=[("Contact", self.contact)]))
        elif isinstance(event, Answer):
            if self.final_sent:
                return
            # RFC 3264: one answer per offer, so the 200 repeats the 183's SDP when there was one
            body = self.early_answer or self._answer_sdp(event.codecs)
            self.final_sent = True
            self.answered = True
            response = make_response(self.invite, 200, to_tag=self.local_tag,
                                     headers=[("Contact", self.contact), ("Content-Type", "application/sdp")], body=body)
            self.dialog = Dialog.from_uas(self.invite, self.local_tag)
            self.pbx.dialogs[self.dialog_key] = self
            self.pbx.sip.send_response(self.tx, response)
            if self.call is not None:
                self.call.media_changed(self)
        elif isinstance(event, Hold):
            self.hold_offer(event.direction)
        elif isinstance(event, Release):
            if not self.final_sent:
                status, reason = (event.status, event.reason) if event.status else CAUSE_STATUS.get(event.cause, (480, None))
                self.final_sent = True
                self.pbx.sip.send_response(self.tx, make_response(self.invite, status, reason, to_tag=self.local_tag))
            else:
                self.bye()
            self.finish()

    @property
    def dialog_key(self) -> tuple[str, str]:
        return (self.invite.call_id, self.local_tag)

    def on_cancel(self) -> None:
        if self.final_sent:
            return
        self.final_sent = True
        self.pbx.sip.send_response(self.tx, make_response(self.invite, 487, to_tag=self.local_tag))
        self._gone("cancel")

    def on_ack_timeout(self) -> None:
        if not self.ended:
            self.bye()
            self._gone("unreachable")


class OutboundLeg(SipLeg):
    """The callee's side: we are the UAC, calling one registered contact."""

    def __init__(self, pbx: SipHost, flow: Flow, *, target: str, callee: str, setup: Setup) -> None:
        super().__init__(pbx, flow)
        self.target = target
        self.callee = callee
        self.setup = setup
        self.invite: Request | None = None
        self.invite_tx: ClientTransaction | None = None
        self.provisional = False
        self.cancel_pending = False
        self.alerted = False
        self.remote_sdp_seen = False

    @property
    def hangup_cause(self) -> str:
        return "callee-hangup"

    def offer_codecs(self) -> list[Codec]:
        """The caller's G.711 codecs in its order, then the other law (we can transcode), then DTMF."""
        audio = [c for c in self.setup.codecs if c.name.upper() in G711]
        names = {c.name.upper() for c in audio}
        for name, pt in (("PCMU", 0), ("PCMA", 8)):
            if name not in names:
                audio.append(Codec(name, pt))
        te = next((c for c in self.setup.codecs if c.matches("telephone-event")), None)
        te = Codec("telephone-event", te.pt if te else TELEPHONE_EVENT_PT, 8000, "0-16")
        return [Codec(c.name.upper(), c.pt, c.rate) for c in audio] + [te]

    async def start(self) -> None:
        try:
            self.endpoint = await self.pbx.media.open_endpoint()
        except MediaError as exc:
            log.error("no media port for an outgoing leg: %s", exc)
            self._gone("congestion", 503)
            return
        if self.ended:
            self.close_media()
            return
        sd = build_offer(codecs=self.offer_codecs(), **self._next_sdp())  # type: ignore[arg-type]
        domain = self.pbx.domain
        caller = self.setup.caller
        name = self.setup.caller_name.replace('"', "")
        if not caller:
            # A caller without a number (an analog line with no caller ID, a withheld number):
            # RFC 3323's anonymous URI, not "sip:@domain", which phones refuse.
            name = name or "Anonymous"
            from_value = f'"{name}" <sip:anonymous@anonymous.invalid>;tag={new_tag()}'
        else:
            from_value = (f'"{name}" ' if name else "") + f"<sip:{caller}@{domain}>;tag={new_tag()}"
        headers = [
            ("Max-Forwards", str(self.setup.hops)),
            ("From", from_value),
            ("To", f"<sip:{self.callee}@{domain}>"),
            ("Call-ID", f"{new_tag()}{new_tag()}@{domain}"),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact),
            ("Allow", self.pbx.allow_header),
            ("User-Agent", self.pbx.user_agent),
            ("Content-Type", "application/sdp"),
        ]
        self.invite = Request("INVITE", self.target, headers, sdp_body(sd))
        self.invite_tx = self._send(self.invite)  # the endpoint puts its Via on self.invite

    def deliver(self, event: Event) -> None:
        if isinstance(event, Hold):
            self.hold_offer(event.direction)
        elif isinstance(event, Release):
            if self.ended:
                return
            if self.answered:
                self.bye()
                self.finish()
            else:
                self.ended = True
                self.cancel()

    def cancel(self) -> None:
        if self.invite is None:
            self.finish()
            return
        if not self.provisional:
            self.cancel_pending = True  # §9.1: no CANCEL before a provisional response
            return
        self._send_cancel()

    def _send_cancel(self) -> None:
        assert self.invite is not None
        self.pbx.farewell(self.pbx.sip.send_request(build_cancel(self.invite), self.flow))

    def on_response(self, response: Response, tx: ClientTransaction) -> None:
        if tx is not self.invite_tx:
            self.on_in_dialog_response(response, tx)
            return
        status = response.status
        if status < 200:
            if status == 100:
                self.provisional = True
            else:
                self.provisional = True
                if not self.ended:
                    self._on_provisional(response)
            if self.cancel_pending:
                self.cancel_pending = False
                self._send_cancel()
            return
        self.pbx.client_txs.pop(tx, None)
        if status < 300:
            self._on_2xx(response)
        else:
            self._gone(cause_for_status(status), status, response.reason)
            self.finish()

    def _on_provisional(self, response: Response) -> None:
        codecs: tuple[Codec, ...] | None = None
        if response.body and response.status == 183 and not self.remote_sdp_seen:
            try:
                sd = SessionDescription.parse(response.body)
                got = negotiated(sd)
            except SdpError:
                got = []
            if got:
                self.remote_sdp_seen = True
                self._set_remote_media(sd)
                self.codecs = tuple(got)
                codecs = self.codecs
        if codecs is not None or not self.alerted:
            self.alerted = True
            self._emit(Alerting(codecs))

    def _on_2xx(self, response: Response) -> None:
        assert self.invite is not None
        if self.dialog is None:
            self.dialog = Dialog.from_uac(self.invite, response)
            self.pbx.dialogs[self.dialog_key] = self
        self.pbx.sip.send_ack(self.dialog.ack_for(self.invite), self.flow)
        if self.ended:
            # Answered after we gave up on it (CANCEL crossed the 200): hang up at once.
            self.answered = True
            self.ended = False
            self.bye()
            self.finish()
            return
        if self.answered:
            return
        if response.body and not self.remote_sdp_seen:
            try:
                sd = SessionDescription.parse(response.body)
                got = negotiated(sd)
            except SdpError:
                got = []
            if not got:
                self.answered = True
                self.bye()
                self._gone("codec-mismatch", 488)
                return
            self._set_remote_media(sd)
            self.codecs = tuple(got)
        self.answered = True
        self._emit(Answer(self.codecs))

    def on_stray_2xx(self, response: Response) -> None:
        if self.dialog is not None and self.invite is not None:
            self.pbx.sip.send_ack(self.dialog.ack_for(self.invite), self.flow)

    def on_timeout(self, tx: ClientTransaction) -> None:
        if tx is self.invite_tx:
            self.pbx.client_txs.pop(tx, None)
            self._gone("unreachable", 480)
            self.finish()
        else:
            super().on_timeout(tx)

    @property
    def dialog_key(self) -> tuple[str, str]:
        assert self.dialog is not None
        return (self.dialog.call_id, self.dialog.local_tag)
