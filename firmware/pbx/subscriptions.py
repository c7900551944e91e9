"""Message-waiting subscriptions (RFC 6665 SUBSCRIBE/NOTIFY, RFC 3842 message-summary).

Many desk phones (Polycom, Cisco, Grandstream with "subscribe for MWI") do not light their lamp
on the unsolicited NOTIFYs the box sends every registered phone: they SUBSCRIBE to their mailbox
and take NOTIFYs in that dialog only. This module is the bookkeeping and the wire format, with
no I/O: ``Subscriptions.subscribe`` decides the answer to a SUBSCRIBE and keeps the dialog,
``notify`` builds the in-dialog NOTIFY; ``firmware.pbx.pbx`` sends them.

A phone may subscribe to its own extension's mailbox only. The answer to a SUBSCRIBE is always
followed by a NOTIFY with the mailbox's state (RFC 6665 §4.2.1.4), and an unsubscribe
(Expires: 0) by a last one saying "terminated".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from firmware.sip.message import ParseError, Request
from firmware.sip.uri import parse_params

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 3600
# A phone that reboots subscribes afresh (a new dialog) while its old subscription runs on until
# it expires; beyond this many per extension the one that would expire first makes room, so
# neither reboots nor a misbehaving phone can grow the table without bound.
MAX_PER_USER = 8


@dataclass
class Subscription:
    """One SUBSCRIBE dialog: the box is its notifier."""

    call_id: str
    local_tag: str       # the box's tag (To of the SUBSCRIBE, From of our NOTIFYs)
    remote_tag: str
    local_uri: str       # the SUBSCRIBE's To URI (the mailbox)
    remote_uri: str      # the SUBSCRIBE's From URI (the phone's user)
    target: str          # the SUBSCRIBE's Contact: where NOTIFYs go
    user: str            # who authenticated
    mailbox: str
    event_id: str | None
    transport: str
    remote: tuple[str, int]  # the source of the SUBSCRIBE: NOTIFYs go back through it (NAT)
    expires_at: float
    remote_cseq: int
    cseq: int = 0        # of our NOTIFYs

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.local_tag

    def remaining(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True)
class Verdict:
    """What to answer a SUBSCRIBE: a status (with a reason and extra headers), and for a 2xx the
    subscription and the Subscription-State of the NOTIFY that must follow."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    subscription: Subscription | None = None
    state: str = ""


def summary_body(mailbox: str, domain: str, waiting: int, heard: int) -> bytes:
    """RFC 3842 §5.2: whether messages wait, and how many new/old voice messages."""
    return (f"Messages-Waiting: {'yes' if waiting else 'no'}\r\n"
            f"Message-Account: sip:{mailbox}@{domain}\r\n"
            f"Voice-Message: {waiting}/{heard}\r\n").encode()


def _event(request: Request) -> tuple[str, str | None]:
    """The Event header's package and its ``id`` parameter (ParseError when malformed)."""
    value = request.headers.get("Event") or ""
    semi = value.find(";")
    if semi < 0:
        return value.strip().lower(), None
    return value[:semi].strip().lower(), parse_params(value, semi, "Event").get("id")


class Subscriptions:
    """Every live message-summary subscription, by dialog."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, str], Subscription] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, call_id: str, local_tag: str) -> Subscription | None:
        return self._subs.get((call_id, local_tag))

    def of_mailbox(self, mailbox: str) -> list[Subscription]:
        return [s for s in self._subs.values() if s.mailbox == mailbox]

    def all(self) -> list[Subscription]:
        return list(self._subs.values())

    def drop(self, sub: Subscription) -> None:
        self._subs.pop(sub.key, None)

    def subscribe(self, request: Request, *, user: str, mailboxes: Iterable[str], transport: str,
                  remote: tuple[str, int], now: float, local_tag: str) -> Verdict:
        """A SUBSCRIBE outside any dialog, from ``user`` (authenticated)."""
        try:
            package, event_id = _event(request)
            mailbox = request.request_uri.user_unescaped or ""
        except ParseError as exc:
            return Verdict(exc.status or 400, exc.reason)
        if package != EVENT:
            return Verdict(489, "Bad Event", (("Allow-Events", EVENT),))
        if mailbox != user:
            return Verdict(403, "Forbidden (not your mailbox)")
        if mailbox not in set(mailboxes):
            return Verdict(404, "No Mailbox")
        expires = self._expires(request)
        if isinstance(expires, Verdict):
            return expires
        contacts = request.contacts
        if len(contacts) != 1:
            return Verdict(400, "Bad Request (one Contact needed)")
        sub = Subscription(
            call_id=request.call_id, local_tag=local_tag, remote_tag=request.from_.tag or "",
            local_uri=str(request.to.uri), remote_uri=str(request.from_.uri), target=str(contacts[0].uri),
            user=user, mailbox=mailbox, event_id=event_id, transport=transport, remote=remote,
            expires_at=now + expires, remote_cseq=request.cseq.seq)
        if expires == 0:
            # a one-time fetch: answered, told the state once, not kept (RFC 6665 §4.2.1.4)
            return Verdict(200, headers=(("Expires", "0"),), subscription=sub, state="terminated;reason=timeout")
        mine = sorted((s for s in self._subs.values() if s.user == user), key=lambda s: s.expires_at)
        for old in mine[:max(0, len(mine) - MAX_PER_USER + 1)]:
            self.drop(old)   # its phone gets 481 at its next refresh and subscribes again
        self._subs[sub.key] = sub
        return Verdict(200, headers=(("Expires", str(expires)),), subscription=sub,
                       state=f"active;expires={expires}")

    def refresh(self, sub: Subscription, request: Request, now: float) -> Verdict:
        """A SUBSCRIBE inside ``sub``'s dialog: a refresh, or with Expires: 0 the end of it."""
        if request.cseq.seq <= sub.remote_cseq:
            return Verdict(500, "CSeq Out of Order")
        try:
            package, _ = _event(request)
        except ParseError as exc:
            return Verdict(exc.status or 400, exc.reason)
        if package != EVENT:
            return Verdict(489, "Bad Event", (("Allow-Events", EVENT),))
        expires = self._expires(request)
        if isinstance(expires, Verdict):
            return expires
        sub.remote_cseq = request.cseq.seq
        if expires == 0:
            self.drop(sub)
            return Verdict(200, headers=(("Expires", "0"),), subscription=sub, state="terminated;reason=timeout")
        sub.expires_at = now + expires
        return Verdict(200, headers=(("Expires", str(expires)),), subscription=sub,
                       state=f"active;expires={expires}")

    def expired(self, now: float) -> list[Subscription]:
        """Subscriptions whose time is up, removed (each is owed a 'terminated' NOTIFY)."""
        gone = [s for s in self._subs.values() if s.expires_at <= now]
        for s in gone:
            self.drop(s)
        return gone

    def orphaned(self, extensions: Iterable[str], mailboxes: Iterable[str]) -> list[Subscription]:
        """Subscriptions whose extension or mailbox was removed, removed."""
        ext, boxes = set(extensions), set(mailboxes)
        gone = [s for s in self._subs.values() if s.user not in ext or s.mailbox not in boxes]
        for s in gone:
            self.drop(s)
        return gone

    @staticmethod
    def _expires(request: Request) -> int | Verdict:
        try:
            expires = request.expires
        except ParseError as exc:
            return Verdict(exc.status or 400, exc.reason)
        if expires is None:
            return DEFAULT_EXPIRES
        if 0 < expires < MIN_EXPIRES:
            return Verdict(423, "Interval Too Brief", (("Min-Expires", str(MIN_EXPIRES)),))
        return min(expires, MAX_EXPIRES)


def notify(sub: Subscription, *, state: str, body: bytes, contact: str, user_agent: str) -> Request:
    """The next NOTIFY of ``sub``'s dialog, carrying ``body`` and Subscription-State ``state``."""
    sub.cseq += 1
    event = EVENT + (f";id={sub.event_id}" if sub.event_id is not None else "")
    return Request("NOTIFY", sub.target, [
        ("Max-Forwards", "70"),
        ("From", f"<{sub.local_uri}>;tag={sub.local_tag}"),
        ("To", f"<{sub.remote_uri}>;tag={sub.remote_tag}" if sub.remote_tag else f"<{sub.remote_uri}>"),
        ("Call-ID", sub.call_id),
        ("CSeq", f"{sub.cseq} NOTIFY"),
        ("Contact", contact),
        ("Event", event),
        ("Subscription-State", state),
        ("User-Agent", user_agent),
        ("Content-Type", CONTENT_TYPE),
    ], body)
