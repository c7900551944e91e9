"""Registering the box to a SIP provider: the client side of RFC 3261 §10.2, sans-I/O.

One `Registration` keeps one account bound at the provider's registrar. Like a client
transaction it owns no socket and no clock: time is passed in, the REGISTERs it wants sent come
out of `requests_to_send(now)` (each with the hop to send it to), final responses and
transaction timeouts go back in, and `get_timer()` says when `handle_timer(now)` is due::

    reg = Registration(settings, contact=("192.0.2.1", 5060), now=0.0)
    for out in reg.requests_to_send(0.0):   # REGISTER, no credentials yet
        send(out.request, out.hop)
    reg.receive_response(response_401, now=0.1)
    reg.requests_to_send(0.1)               # REGISTER with Authorization
    reg.receive_response(response_200, now=0.2)
    reg.state                               # registered until 3600.2; refresh at 3510.2

What a final response to a REGISTER leads to:

* 2xx: registered; the granted expiry is our Contact's ``expires`` in the response, else its
  Expires header, else what we asked (§10.2.4). Refreshed ahead of expiry (`refresh_delay`).
* 401/407: answered with digest credentials (RFC 7616, `firmware.sip.digest`), SHA-256
  preferred when several challenges are offered (§3.7). A challenge to credentials the
  server has already refused means the secret is wrong (see `_challenged`).
* 423: asked again with the Min-Expires the registrar wants (§10.3 step 7).
* 3xx: asked again at the first Contact (§8.1.3.4), at most `MAX_REDIRECTS` times.
* 403, 404: the provider refuses the account; nothing is retried until the settings change
  (a new Registration, or `reset`). Retrying a refused account only gets the box banned.
* anything else, and no answer at all: tried again after an exponential back-off with jitter
  (`Backoff`), or after the Retry-After the response names.

The REGISTERs of one Registration share a Call-ID and From tag, and their CSeq grows by one
each (§10.2); a new REGISTER is never sent while one is waiting for its final response.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from .digest import Challenge, Credentials, DigestError
from .message import ParseError, Request, Response, default_reason, new_tag
from .uri import SipUri

__all__ = [
    "TRANSPORTS",
    "MAX_REDIRECTS",
    "MAX_CHALLENGES",
    "REFRESH_MARGIN",
    "RegistrationSettings",
    "Backoff",
    "Hop",
    "Outgoing",
    "RegistrationState",
    "Registration",
    "refresh_delay",
]

TRANSPORTS = ("udp", "tcp")
MAX_REDIRECTS = 5  # 3xx followed for one REGISTER before giving up (a redirect loop)
MAX_CHALLENGES = 4  # 401/407 answered for one REGISTER (a registrar that says stale=true forever)
REFRESH_MARGIN = 90.0  # seconds before expiry a long registration is refreshed; see refresh_delay
MIN_REFRESH = 5.0  # never refresh sooner than this, whatever the registrar grants
MAX_RETRY_AFTER = 3600.0  # a Retry-After is honoured up to an hour

# RFC 7616 §3.7: the client uses the most preferred algorithm it supports among those offered.
_ALGORITHM_PREFERENCE = {"SHA-256": 0, "SHA-256-SESS": 1, "MD5": 2, "MD5-SESS": 3}

# Final responses that refuse the account itself: retried only once the settings change.
_REFUSALS = frozenset({403, 404})

_DIGITS = re.compile(r"\s*([0-9]{1,10})")


@dataclass(frozen=True)
class RegistrationSettings:
    """One account at a provider: where to register, as whom, and for how long.

    ``domain`` (default: ``registrar``) is the host of the address-of-record
    ``sip:user@domain`` and of the Request-URI; ``auth_user`` (default: ``user``) is the digest
    username; ``contact_user`` (default: ``user``) the user part of the box's Contact, which
    is what the provider puts in the Request-URI of calls it sends. ``outbound_proxy``
    (``host`` or ``host:port``) receives every REGISTER, with a loose Route to itself (§8.1.2).
    """

    registrar: str
    user: str
    secret: str = field(default="", repr=False)  # never in a log line: repr leaves it out
    port: int = 5060
    transport: str = "udp"
    outbound_proxy: str | None = None
    auth_user: str | None = None
    domain: str | None = None
    contact_user: str | None = None
    expires: int = 3600

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} out of range")
        if not self.user:
            raise ValueError("user must not be empty")
        if self.expires <= 0:
            raise ValueError("expires must be positive (0 is what unregister() sends)")
        for what, host in (("registrar", self.registrar), ("domain", self.domain)):
            if host is not None and _host_uri(host, what).port is not None:
                raise ValueError(f"{what} {host!r}: give the port separately")
        if self.outbound_proxy is not None:
            _host_uri(self.outbound_proxy, "outbound proxy")


def _host_uri(host: str, what: str) -> SipUri:
    try:
        uri = SipUri.parse(f"sip:{host}")
    except ParseError:
        raise ValueError(f"{what} {host!r} is not a host name or address") from None
    if uri.user is not None or uri.params or uri.headers:
        raise ValueError(f"{what} {host!r} is not a host name or address")
    return uri


@dataclass(frozen=True)
class Backoff:
    """How long to wait after the n-th failure in a row: ``first`` doubling up to ``cap``, each
    delay drawn from its upper half ("equal jitter"), so the boxes of one provider that all
    lost it at once do not all come back in the same second."""

    first: float = 30.0
    cap: float = 1800.0

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.first * 2.0 ** max(0, failures - 1))
        return ceiling * (0.5 + rng.random() / 2)


def refresh_delay(granted: float) -> float:
    """Seconds after a 2xx to refresh a binding granted for ``granted`` seconds.

    The later of half the expiry and ``REFRESH_MARGIN`` before it: an hour-long binding is
    refreshed 90 s early, time enough for a refresh that gets no answer (timer F, 32 s) and
    the first retry after it (the first back-off, at most 30 s) to land before the binding
    lapses; a short one (60 s, 120 s) at half-time, the margin a phone-style refresh leaves
    too, without refreshing every few seconds. Never sooner than ``MIN_REFRESH``.
    """
    return max(MIN_REFRESH, granted / 2, granted - REFRESH_MARGIN)


@dataclass(frozen=True)
class Hop:
    """Where a REGISTER goes: the registrar, the outbound proxy, or where a 3xx pointed.
    ``host`` may be a name; resolving it is the adapter's job."""

    transport: str
    host: str
    port: int


@dataclass(frozen=True)
class Outgoing:
    """A REGISTER to send (in a new client transaction) to ``hop``."""

    request: Request
    hop: Hop


@dataclass(frozen=True)
class RegistrationState:
    """What the box shows of a trunk's registration.

    ``kind`` is one of: ``registering`` (no binding yet, a REGISTER is on its way),
    ``registered`` (bound ``until``, a time on the caller's clock), ``failing`` (the last
    final response, ``last_response``, was not a success; ``retry_at`` is the next try, None
    when nothing is retried until the settings change), ``unreachable`` (no answer at all;
    retried at ``retry_at``), ``stopped`` (unregistered, or never to register).
    ``reason`` says in words what went wrong when the status line alone does not.
    """

    kind: str
    until: float | None = None
    last_response: str | None = None
    retry_at: float | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.kind == "failing":
            text = f"failing: {self.last_response}"
            return f"{text} ({self.reason})" if self.reason else text
        return self.kind


REGISTERING = RegistrationState("registering")
STOPPED = RegistrationState("stopped")


@dataclass
class _Answer:
    """A challenge we answer in every REGISTER (RFC 7616 §3.4: nc counts its uses), and
    whether it was first answered in the current attempt (else: cached from an earlier one)."""

    challenge: Challenge
    nc: int = 0
    fresh: bool = True


@dataclass(frozen=True)
class _Sent:
    nonce: str
    fresh: bool


@dataclass
class _Attempt:
    """One REGISTER's life: the requests a challenge, a 423 or a 3xx made of it."""

    expires: int
    redirects: int = 0
    challenges: int = 0
    unregister: bool = False
    sent_auth: dict[tuple[str, str], _Sent] = field(default_factory=dict)


class Registration:
    """The registration state machine for one account (see the module docstring).

    Args:
        settings: the account.
        contact: the box's address as the provider must reach it (the Contact's host:port).
        now: the current time; the first REGISTER is ready at once.
        rng: draws the back-off jitter (pass a seeded one in tests).
        backoff: how long to wait after failures.
    """

    def __init__(
        self,
        settings: RegistrationSettings,
        *,
        contact: tuple[str, int],
        now: float,
        rng: random.Random | None = None,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.contact = contact
        self.rng = rng if rng is not None else random.Random()
        self.backoff = backoff
        self.state: RegistrationState = REGISTERING
        self._outbox: list[Outgoing] = []
        self._wake_at: float | None = None
        self._attempt: _Attempt | None = None  # a REGISTER waits for its final response
        self._begin_account(settings)
        self._begin(now)

    # -- the verbs ------------------------------------------------------------------------

    def requests_to_send(self, now: float) -> list[Outgoing]:
        """The REGISTERs to send now (and forget)."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """When `handle_timer` is next due: a refresh, a retry, or the binding lapsing."""
        times = [t for t in (self._wake_at, self._lapse_at()) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Act on what is due at ``now``: a refresh or retry, or a binding that lapsed."""
        lapse = self._lapse_at()
        if lapse is not None and now >= lapse:
            # A refresh is still out (a short binding and a slow registrar): the binding is gone.
            self.state = REGISTERING
            self._until = None
        if self._wake_at is not None and now >= self._wake_at and self._attempt is None:
            self._wake_at = None
            self._begin(now)

    def receive_response(self, response: Response, now: float) -> None:
        """A response to one of our REGISTERs; provisionals and strays are ignored."""
        attempt = self._attempt
        if (attempt is None or response.status < 200 or response.call_id != self.call_id
                or response.cseq.seq != self.cseq):
            return
        self._attempt = None
        status = response.status
        if attempt.unregister:
            if status in (401, 407):
                self._challenged(response, attempt, now)
            if self._attempt is None:  # answered, refused or failed: either way we are done
                self._stop()
            return
        if 200 <= status < 300:
            self._registered(response, attempt, now)
        elif status in (401, 407):
            self._challenged(response, attempt, now)
        elif status == 423:
            self._too_brief(response, attempt, now)
        elif 300 <= status < 400:
            self._redirected(response, attempt, now)
        elif status in _REFUSALS:
            self._fail(response, now, retry=False)
        else:
            self._fail(response, now, retry_after=_retry_after(response))
        if self._stopping and self._attempt is None:
            self._after_unregister_request(now)

    def request_failed(self, now: float, *, cseq: int | None = None, reason: str = "no answer") -> None:
        """The REGISTER in flight got no final response (timer F), or could not be sent (a
        TCP connect refused, a name that does not resolve). ``cseq``: the failed request's,
        to ignore news of one that was already given up."""
        attempt = self._attempt
        if attempt is None or (cseq is not None and cseq != self.cseq):
            return
        self._attempt = None
        if attempt.unregister or self._stopping:
            self._stop()
            return
        self._failures += 1
        retry_at = now + self.backoff.delay(self._failures, self.rng)
        self._wake_at = retry_at
        self._reset_target()
        self.state = RegistrationState("unreachable", retry_at=retry_at, reason=reason)

    def unregister(self, now: float) -> None:
        """Remove the binding (REGISTER with expires 0, §10.2.2) and stop: on shutdown, or when
        the trunk is removed. A REGISTER in flight is let finish first (§10.2)."""
        if self.state.kind == "stopped" or self._stopping:
            return
        self._stopping = True
        self._wake_at = None
        if self._attempt is None:
            self._after_unregister_request(now)

    def reset(self, now: float, settings: RegistrationSettings | None = None) -> None:
        """Start again at once, with new settings or the same ones: what the admin's change
        does to a trunk that was refused, backing off or stopped. A REGISTER in flight is
        abandoned (its answer will be ignored)."""
        if settings is not None and settings != self.settings:
            self._begin_account(settings)
        else:
            self._failures = 0
            self._auth.clear()
            self._reset_target()
        self._attempt = None
        self._stopping = False
        self._wake_at = None
        self.state = REGISTERING
        self._until = None
        self._begin(now)

    # -- what the settings give --------------------------------------------------------------

    def _begin_account(self, settings: RegistrationSettings) -> None:
        self.settings = settings
        self.call_id = f"{new_tag()}{new_tag()}"
        self.from_tag = new_tag()
        self.cseq = 0
        self._expires = settings.expires  # raised by a 423
        self._auth: dict[tuple[str, str], _Answer] = {}  # (header, realm) -> what we answer
        self._failures = 0
        self._until: float | None = None
        self._stopping = False
        domain = settings.domain or settings.registrar
        self.aor = str(SipUri("sip", settings.user, None, _host_uri(domain, "domain").host))
        self._reset_target()

    def _reset_target(self) -> None:
        """Back to the configured registrar (after a failure, a redirect is forgotten)."""
        s = self.settings
        if s.domain:
            uri = SipUri("sip", None, None, _host_uri(s.domain, "domain").host)
        else:
            port = None if s.port == 5060 else s.port
            uri = SipUri("sip", None, None, _host_uri(s.registrar, "registrar").host, port)
        self._request_uri = str(uri)
        self._next_hop = Hop(s.transport, _host_uri(s.registrar, "registrar").host, s.port)

    def _hop(self) -> tuple[Hop, str | None]:
        """The hop to send to, and the Route naming the outbound proxy (None without one)."""
        s = self.settings
        if s.outbound_proxy is None:
            return self._next_hop, None
        proxy = _host_uri(s.outbound_proxy, "outbound proxy")
        params: dict[str, str | None] = {"lr": None}
        if s.transport != "udp":
            params["transport"] = s.transport
        route = SipUri("sip", None, None, proxy.host, proxy.port, params)
        return Hop(s.transport, proxy.host, proxy.port or 5060), f"<{route}>"

    def _contact_uri(self) -> SipUri:
        s = self.settings
        host, port = self.contact
        params: dict[str, str | None] = {} if s.transport == "udp" else {"transport": s.transport}
        return SipUri("sip", s.contact_user or s.user, None, host, port, params)

    # -- sending ------------------------------------------------------------------------------

    def _begin(self, now: float, attempt: _Attempt | None = None) -> None:
        """A new REGISTER (not one a challenge, 423 or 3xx made of the last)."""
        for answer in self._auth.values():
            # Fresh means answered within this attempt: credentials from an earlier one, even
            # one that never got its 2xx (it met a 503), are cached now and may meet a new nonce.
            answer.fresh = False
        self._send(attempt or _Attempt(self._expires), now)

    def _send(self, attempt: _Attempt, now: float) -> None:
        self._attempt = attempt
        self.cseq += 1
        hop, route = self._hop()
        expires = 0 if attempt.unregister else attempt.expires
        headers: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", f"<{self.aor}>;tag={self.from_tag}"),
            ("To", f"<{self.aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
        ]
        if route is not None:
            headers.append(("Route", route))
        headers.append(("Contact", f"<{self._contact_uri()}>" + (";expires=0" if attempt.unregister else "")))
        headers.append(("Expires", str(expires)))
        attempt.sent_auth = {}
        s = self.settings
        for (header, realm), answer in self._auth.items():
            answer.nc += 1
            creds = Credentials.answer(answer.challenge, username=s.auth_user or s.user, password=s.secret,
                                       method="REGISTER", uri=self._request_uri, nc=answer.nc)
            headers.append((header, creds.header_value()))
            attempt.sent_auth[(header, realm)] = _Sent(answer.challenge.nonce, answer.fresh)
        self._outbox.append(Outgoing(Request("REGISTER", self._request_uri, headers), hop))

    # -- what the answers lead to ------------------------------------------------------------------

    def _registered(self, response: Response, attempt: _Attempt, now: float) -> None:
        granted = self._granted(response, attempt.expires)
        if granted <= 0:
            # A 2xx that does not keep our binding: nothing to refresh, so treat it as a failure.
            self._fail(response, now, reason="the registrar kept no binding")
            return
        self._failures = 0
        self._until = now + granted
        self._wake_at = now + refresh_delay(granted)
        self.state = RegistrationState("registered", until=self._until)

    def _granted(self, response: Response, asked: int) -> int:
        """§10.2.4: our Contact's expires parameter, else the Expires header, else what we asked."""
        ours = self._contact_uri()
        try:
            contacts = response.contacts
        except ParseError:
            contacts = []
        for contact in contacts:
            if isinstance(contact.uri, SipUri) and _same_binding(contact.uri, ours):
                value = _seconds(contact.params.get("expires"))
                if value is not None:
                    return value
                break
        try:
            header = response.expires
        except ParseError:
            header = None
        return header if header is not None else asked

    def _challenged(self, response: Response, attempt: _Attempt, now: float) -> None:
        """Answer a 401/407. The server refused credentials it had asked for in this attempt
        (fresh), or refused again the very nonce our cached credentials answered: the secret
        is wrong, and asking again would only count towards a ban. Servers such as Kamailio
        issue a new nonce with every challenge, so "same nonce" alone would never end.
        stale=true says only the nonce was old: answered again, within MAX_CHALLENGES."""
        if response.status == 401:
            offered, header = "WWW-Authenticate", "Authorization"
        else:
            offered, header = "Proxy-Authenticate", "Proxy-Authorization"
        challenges = _best_challenges(response.headers.get_fields(offered))
        if not challenges:
            self._fail(response, now, retry=False, reason="no digest challenge we can answer")
            return
        for realm, challenge in challenges.items():
            sent = attempt.sent_auth.get((header, realm))
            if sent is not None and not challenge.stale and (sent.fresh or sent.nonce == challenge.nonce):
                self._auth.pop((header, realm), None)
                self._fail(response, now, retry=False, reason="wrong credentials")
                return
        attempt.challenges += 1
        if attempt.challenges > MAX_CHALLENGES:
            self._fail(response, now, reason="challenged again and again")
            return
        for realm, challenge in challenges.items():
            self._auth[(header, realm)] = _Answer(challenge)
        self._send(attempt, now)

    def _too_brief(self, response: Response, attempt: _Attempt, now: float) -> None:
        minimum = _seconds(response.headers.get("Min-Expires"))
        if minimum is None or minimum <= attempt.expires:
            self._fail(response, now, reason="no usable Min-Expires")
            return
        self._expires = minimum
        attempt.expires = minimum
        self._send(attempt, now)

    def _redirected(self, response: Response, attempt: _Attempt, now: float) -> None:
        try:
            targets = [c.uri for c in response.contacts if isinstance(c.uri, SipUri) and c.uri.scheme == "sip"]
        except ParseError:
            targets = []
        if not targets:
            self._fail(response, now, reason="redirected nowhere")
            return
        attempt.redirects += 1
        if attempt.redirects > MAX_REDIRECTS:
            self._fail(response, now, reason="too many redirects")
            return
        target = targets[0]
        transport = target.transport or self.settings.transport
        if transport not in TRANSPORTS:
            self._fail(response, now, reason=f"redirected to a {transport} address")
            return
        self._request_uri = str(SipUri("sip", target.user, None, target.host, target.port,
                                       {k: v for k, v in target.params.items() if k != "method"}))
        self._next_hop = Hop(transport, target.host, target.port or 5060)
        # Credentials are for the registrar that asked for them: the new one challenges itself.
        self._auth.clear()
        self._send(attempt, now)

    def _fail(self, response: Response, now: float, *, retry: bool = True, retry_after: float | None = None,
              reason: str | None = None) -> None:
        line = f"{response.status} {response.reason or default_reason(response.status)}"
        self._reset_target()
        if not retry:
            self._wake_at = None
            self._until = None
            self.state = RegistrationState("failing", last_response=line, reason=reason)
            return
        self._failures += 1
        if retry_after is not None:
            delay = min(max(retry_after, 1.0), MAX_RETRY_AFTER)
        else:
            delay = self.backoff.delay(self._failures, self.rng)
        self._wake_at = now + delay
        self.state = RegistrationState("failing", last_response=line, retry_at=self._wake_at, reason=reason)

    # -- stopping -------------------------------------------------------------------------------

    def _after_unregister_request(self, now: float) -> None:
        """Unregistering with nothing in flight: remove a live binding, else just stop."""
        self._wake_at = None
        if self._until is not None and self._until > now:
            self._begin(now, _Attempt(0, unregister=True))
        else:
            self._stop()

    def _stop(self) -> None:
        self._attempt = None
        self._wake_at = None
        self._until = None
        self._stopping = False
        self.state = STOPPED

    def _lapse_at(self) -> float | None:
        return self._until if self.state.kind == "registered" else None


def _best_challenges(values: list[str]) -> dict[str, Challenge]:
    """The challenge to answer per realm: the most preferred algorithm we support, with a qop
    we can do (or none, RFC 2069). Malformed and unsupported ones are skipped."""
    best: dict[str, Challenge] = {}
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except DigestError:
            continue
        rank = _ALGORITHM_PREFERENCE.get(challenge.algorithm.upper())
        options = challenge.qop_options()
        if rank is None or (options and not {"auth", "auth-int"} & set(options)):
            continue
        held = best.get(challenge.realm)
        if held is None or rank < _ALGORITHM_PREFERENCE[held.algorithm.upper()]:
            best[challenge.realm] = challenge
    return best


def _same_binding(uri: SipUri, ours: SipUri) -> bool:
    """Whether a Contact in a 2xx is ours (§19.1.4 in the parts a registrar keeps)."""
    return (uri.user == ours.user and uri.host.lower() == ours.host.lower()
            and (uri.port or 5060) == (ours.port or 5060)
            and (uri.transport or "udp") == (ours.transport or "udp"))


def _seconds(value: str | None) -> int | None:
    if value is None:
        return None
    m = _DIGITS.match(value)
    return int(m.group(1)) if m else None


def _retry_after(response: Response) -> float | None:
    """RFC 3261 §20.33: ``Retry-After: 120 (comment);duration=...``; the seconds only."""
    value = _seconds(response.headers.get("Retry-After"))
    return float(value) if value is not None else None
