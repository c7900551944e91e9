"""REGISTER policy (RFC 3261 §10.3) over bindings kept in memory and persisted by the store.

The registrar decides; the store keeps (Kamailio's registrar/usrloc split). Bindings remember
the address the REGISTER really came from, so requests to a phone behind NAT go to its public
mapping rather than to the private address in its Contact.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from firmware.sip.message import ParseError, Request, Response, make_response
from firmware.sip.uri import SipUri
from firmware.store.db import Binding

Addr = tuple[str, int]


class Registrar:
    def __init__(
        self,
        *,
        persist: Callable[[Binding], None],
        forget: Callable[[str, str], None],
        min_expires: int = 60,
        max_expires: int = 3600,
        max_contacts: int = 10,
    ) -> None:
        self.persist = persist
        self.forget = forget
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.max_contacts = max_contacts
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._ips: dict[str, int] = {}  # source ip -> live bindings from it
        self.unreachable: set[tuple[str, str]] = set()  # (aor, contact) that stopped answering OPTIONS

    def load(self, bindings: list[Binding]) -> None:
        for b in bindings:
            self._put(b)

    # --- queries -------------------------------------------------------------------------------

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Live, reachable contacts of an extension, newest first."""
        live = [b for b in self._bindings.get(aor, {}).values()
                if b.expires_at > now and (aor, b.contact) not in self.unreachable]
        return sorted(live, key=lambda b: -b.expires_at)

    def all(self, now: float) -> list[Binding]:
        return [b for c in self._bindings.values() for b in c.values() if b.expires_at > now]

    def is_registered_ip(self, ip: str) -> bool:
        return ip in self._ips

    def count(self) -> int:
        return sum(len(c) for c in self._bindings.values())

    # --- REGISTER ------------------------------------------------------------------------------

    def register(self, request: Request, *, user: str, transport: str, source: Addr, now: float,
                 to_tag: str) -> Response:
        """Applies an authenticated REGISTER for extension ``user`` and returns the answer."""
        aor = user
        current = self._bindings.get(aor, {})
        try:
            header_expires = request.expires
            contacts = request.contacts
        except ParseError as exc:
            return make_response(request, 400, exc.reason, to_tag=to_tag)
        if request.contact_star:
            # §10.3 step 6: "*" only with Expires: 0 and no other contact.
            if header_expires != 0 or len(request.headers.get_all("Contact")) != 1:
                return make_response(request, 400, "Bad Request (Contact * needs Expires: 0)", to_tag=to_tag)
            for contact in list(current):
                self._remove(aor, contact)
            return self._ok(request, aor, now, to_tag)
        changes: list[tuple[str, int]] = []
        for na in contacts:
            raw = na.params.get("expires")
            try:
                expires = int(raw) if raw is not None else header_expires if header_expires is not None else self.max_expires
            except ValueError:
                return make_response(request, 400, "Bad Request (bad expires parameter)", to_tag=to_tag)
            if 0 < expires < self.min_expires:
                return make_response(request, 423, "Interval Too Brief", to_tag=to_tag,
                                     headers=[("Min-Expires", str(self.min_expires))])
            changes.append((str(na.uri), min(expires, self.max_expires)))
        for contact, _ in changes:
            old = current.get(contact)
            # §10.3 step 7: same Call-ID with a CSeq not higher is out of order.
            if old is not None and old.call_id == request.call_id and request.cseq.seq <= old.cseq:
                return make_response(request, 500, "Server Internal Error (out-of-order REGISTER)", to_tag=to_tag,
                                     headers=[("Retry-After", "1")])
        adding = [c for c, e in changes if e > 0 and c not in current]
        if len(current) + len(adding) > self.max_contacts:
            return make_response(request, 403, f"Forbidden (at most {self.max_contacts} contacts)", to_tag=to_tag)
        user_agent = request.headers.get("User-Agent") or ""
        for contact, expires in changes:
            if expires == 0:
                self._remove(aor, contact)
                continue
            b = Binding(aor, contact, now + expires, transport, source, request.call_id, request.cseq.seq, user_agent)
            self._put(b)
            self.unreachable.discard((aor, contact))
            self.persist(b)
        return self._ok(request, aor, now, to_tag)

    def _ok(self, request: Request, aor: str, now: float, to_tag: str) -> Response:
        headers = [("Contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}")
                   for b in self._bindings.get(aor, {}).values() if b.expires_at > now]
        headers.append(("Date", _http_date(now)))
        return make_response(request, 200, "OK", to_tag=to_tag, headers=headers)

    # --- housekeeping --------------------------------------------------------------------------

    def expire(self, now: float) -> list[Binding]:
        gone = [b for c in self._bindings.values() for b in c.values() if b.expires_at <= now]
        for b in gone:
            self._remove(b.aor, b.contact, persist=False)
        return gone

    def _put(self, b: Binding) -> None:
        contacts = self._bindings.setdefault(b.aor, {})
        old = contacts.get(b.contact)
        if old is not None:
            self._unref_ip(old.source[0])
        contacts[b.contact] = b
        self._ips[b.source[0]] = self._ips.get(b.source[0], 0) + 1

    def _remove(self, aor: str, contact: str, *, persist: bool = True) -> None:
        contacts = self._bindings.get(aor, {})
        b = contacts.pop(contact, None)
        if b is None:
            return
        self._unref_ip(b.source[0])
        self.unreachable.discard((aor, contact))
        if not contacts:
            self._bindings.pop(aor, None)
        if persist:
            self.forget(aor, contact)

    def _unref_ip(self, ip: str) -> None:
        n = self._ips.get(ip, 0) - 1
        if n <= 0:
            self._ips.pop(ip, None)
        else:
            self._ips[ip] = n

    def remove_aor(self, aor: str) -> None:
        for contact in list(self._bindings.get(aor, {})):
            self._remove(aor, contact)


def destination(b: Binding) -> Addr:
    """Where requests for a binding go.

    Over TCP: back through the phone's own connection (RFC 5626 flow). Over UDP: the Contact
    when it names the host the REGISTER came from (the phone said which port it listens on;
    also a third-party registration from the same host), else the source address we saw — a
    Contact with another address means the phone is behind NAT and only its mapping is reachable.
    """
    if b.transport != "udp":
        return b.source
    try:
        uri = SipUri.parse(b.contact)
    except ParseError:
        return b.source
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    if host == b.source[0]:
        return (host, uri.port or 5060)
    return b.source


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date(ts: float) -> str:
    """The Date header's rfc1123-date (RFC 3261 §20.17): what ``email.utils.formatdate(ts,
    usegmt=True)`` writes, without importing the email package (0.35 MB the box would otherwise
    take on at its first registration). English names, whatever the locale."""
    t = datetime.fromtimestamp(ts, timezone.utc)
    return (f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT")
