"""SIP dialogs (RFC 3261 §12): the state two user agents share, and requests within it.

A `Dialog` is a plain value: built from the request and response that created
it (`from_uas` / `from_uac`), it makes in-dialog requests (`create_request`,
`ack_for`) and checks the ones that arrive (`receive_request`). It has no Via:
the endpoint adds its own when it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .message import Message, ParseError, Request, Response
from .uri import NameAddr, SipUri

__all__ = ["Dialog"]

# Methods that refresh the remote target (§12.2.2, RFC 3311 UPDATE).
_TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})


def _remote_target(message: Message) -> str:
    contacts = message.contacts
    if not contacts:
        raise ParseError("no Contact to make a dialog with", 400)
    return str(contacts[0].uri)


@dataclass
class Dialog:
    """One dialog, seen from our side (RFC 3261 §12).

    `local_uri` and `remote_uri` are the From/To values (name-addr text with the
    tags) that our requests in this dialog carry; `remote_target` is the peer's
    Contact URI; `route_set` holds Route values (name-addr text) in the order they
    go into a request.
    """

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    local_seq: int
    remote_seq: int | None
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    secure: bool = False

    # -- creation ------------------------------------------------------------------------

    @classmethod
    def from_uas(cls, request: Request, local_tag: str) -> Dialog:
        """§12.1.1: the dialog a UAS makes when it answers `request` (with To tag
        `local_tag`): route set = Record-Route in order, remote target = Contact."""
        to = request.to
        from_ = request.from_
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag or "",
            local_uri=str(to.with_tag(local_tag)),
            remote_uri=str(from_),
            local_seq=0,
            remote_seq=request.cseq.seq,
            remote_target=_remote_target(request),
            route_set=[str(r) for r in request.record_routes],
            secure=_is_sips(request),
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a UAC makes from a 2xx/1xx (with To tag) to its
        `request`: route set = the response's Record-Route reversed, remote target =
        the response's Contact."""
        to = response.to
        if to.tag is None:
            raise ParseError("response without To tag makes no dialog", None)
        from_ = request.from_
        return cls(
            call_id=request.call_id,
            local_tag=from_.tag or "",
            remote_tag=to.tag,
            local_uri=str(from_),
            remote_uri=str(to),
            local_seq=request.cseq.seq,
            remote_seq=None,
            remote_target=_remote_target(response),
            route_set=[str(r) for r in reversed(response.record_routes)],
            secure=_is_sips(request),
        )

    # -- identity ------------------------------------------------------------------------

    @property
    def key(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): the dialog ID (§12)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def matches(self, message: Message) -> bool:
        """Whether `message` belongs to this dialog: a request we receive has our tag
        in To and theirs in From; a response to our request the reverse."""
        if message.call_id != self.call_id:
            return False
        if isinstance(message, Request):
            local, remote = message.to.tag, message.from_.tag
        else:
            local, remote = message.from_.tag, message.to.tag
        return local == self.local_tag and (remote or "") == self.remote_tag

    # -- requests we send ---------------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        headers: list[tuple[str, str]] | tuple = (),
        body: bytes = b"",
        contact: str | None = None,
    ) -> Request:
        """§12.2.1.1: a request within the dialog, CSeq = ++local_seq (for the ACK of
        a 2xx use `ack_for`). The Request-URI is the remote target, or with a strict
        first route (no `lr`) that route's URI, the remote target going last in Route."""
        if method == "ACK":
            raise ValueError("the ACK of a 2xx takes its INVITE's CSeq: use ack_for()")
        self.local_seq += 1
        return self._build(method, self.local_seq, headers, body, contact)

    def ack_for(self, invite: Request, *, body: bytes = b"", headers: list[tuple[str, str]] | tuple = ()) -> Request:
        """The ACK for a 2xx to `invite` (§13.2.2.4): same CSeq number, method ACK,
        same route set and Request-URI. A body (the answer to a 2xx offer) is SDP
        unless `headers` say otherwise. Send it with `SipEndpoint.send_ack`, and
        again for each retransmitted 2xx."""
        extra = list(headers)
        if body and not any(n.lower() in ("content-type", "c") for n, _ in extra):
            extra.append(("Content-Type", "application/sdp"))
        return self._build("ACK", invite.cseq.seq, extra, body, None)

    def _build(
        self,
        method: str,
        seq: int,
        headers: list[tuple[str, str]] | tuple,
        body: bytes,
        contact: str | None,
    ) -> Request:
        ruri, routes = self._target_and_routes()
        fields: list[tuple[str, str]] = [("Max-Forwards", "70")]
        fields += [("Route", r) for r in routes]
        fields += [
            ("From", self.local_uri),
            ("To", self.remote_uri),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        if contact is not None:
            fields.append(("Contact", contact))
        fields += list(headers)
        return Request(method, ruri, fields, body)

    def _target_and_routes(self) -> tuple[str, list[str]]:
        """§12.2.1.1: loose routing when the first route has `lr`, else strict."""
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = NameAddr.parse(routes[0])
        uri = first.uri
        if isinstance(uri, SipUri) and "lr" in uri.params:
            return self.remote_target, list(routes)
        # strict router: it gets the request as Request-URI (without URI parameters
        # not allowed there, i.e. method and headers), the remote target goes last
        if isinstance(uri, SipUri):
            uri = replace(uri, params={k: v for k, v in uri.params.items() if k != "method"}, headers={})
        ruri = str(uri)
        return ruri, [*routes[1:], f"<{self.remote_target}>"]

    # -- requests we receive ------------------------------------------------------------

    def receive_request(self, request: Request) -> int | None:
        """§12.2.2: check and account a request received in this dialog.

        Returns 500 when its CSeq is lower than the last one (the TU answers 500 and
        the dialog is unchanged), else None after updating `remote_seq` and, on a
        target refresh (re-INVITE, UPDATE) carrying Contact, `remote_target`.
        ACK and CANCEL carry the CSeq number of their INVITE and are not checked.
        """
        method = request.method
        if method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return 500
        if method in _TARGET_REFRESH and request.contacts:
            self.remote_target = str(request.contacts[0].uri)
        self.remote_seq = seq
        return None

    def __repr__(self) -> str:
        return (
            f"Dialog(call_id={self.call_id!r}, local_tag={self.local_tag!r}, remote_tag={self.remote_tag!r}, "
            f"local_seq={self.local_seq}, remote_seq={self.remote_seq}, remote_target={self.remote_target!r})"
        )


def _is_sips(request: Request) -> bool:
    """§12.1.1/§12.1.2: secure when the request was sent to a sips: URI."""
    return request.uri[:5].lower() == "sips:"
