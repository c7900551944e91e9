"""SIP messages: parse, inspect, build, serialize (RFC 3261 §7, §8.2.6, §18.3, §20, §25).

Sans-I/O: `Message.parse(data)` takes the bytes of one datagram (or one message cut
out of a stream by `framing.StreamFramer`) and returns a `Request` or `Response`,
or raises `ParseError`, which carries the status to answer with (None: drop).

Design choices:

* **Exact round trip.** A parsed message that nobody touched serializes to the
  very bytes it came from (up to its Content-Length), so a B2BUA or test can
  forward/compare captured traffic byte for byte. Once the start line, headers or
  body change, the message is written canonically ("Name: value\\r\\n", names as
  stored, Content-Length computed).
* **Lazy where it pays.** The header block is split into fields once. The values
  the transaction layer and the endpoint always need (Via, From, To, Call-ID,
  CSeq, Contact, Content-Length, Max-Forwards) are validated at parse time so a
  malformed request gets its 400 right away (RFC 4475); the typed views made
  then are cached, other views are parsed on first access.
* **Bytes in header values are never a crash.** The header block is decoded as
  UTF-8 with 'surrogateescape', so NULs and non-UTF-8 bytes survive a round trip.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Iterable, Iterator

from .uri import NameAddr, ParseError, SipUri, Via, _ABSOLUTE_URI_RE

__all__ = [
    "ParseError",
    "Headers",
    "CSeq",
    "Message",
    "Request",
    "Response",
    "make_response",
    "make_error_response",
    "new_branch",
    "new_tag",
    "REASON_PHRASES",
    "MAX_MESSAGE",
    "MAX_HEADERS",
    "MAX_BODY",
    "MAX_HEADER_LINE",
    "SIP_VERSION",
    "KNOWN_METHODS",
]

# --- limits (a small board: bound what one peer can make us hold) ------------------------

MAX_MESSAGE = 65535  # bytes in one datagram / message
MAX_HEADERS = 128  # header fields
MAX_BODY = 32768  # body bytes
MAX_HEADER_LINE = 8192  # bytes in one (unfolded) header field

SIP_VERSION = "SIP/2.0"

# Methods this box knows (RFC 3261 + the usual extensions); for these a CSeq method
# that differs from the request method is a 400 (RFC 4475 mismatch01). For an unknown
# method the endpoint answers 501 whatever the CSeq says (RFC 4475 mismatch02).
KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO "
    "REFER MESSAGE UPDATE".split()
)

#: RFC 3261 §21 reason phrases (plus the common extension codes).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    433: "Anonymity Disallowed",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
}

# --- header names ------------------------------------------------------------------------

#: RFC 3261 §7.3.3 compact forms (and those of later RFCs), to the lowercase long name.
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
}

# Headers whose value is a comma-separated list (RFC 3261 §7.3.1: "#element" in the
# ABNF). Headers whose values may contain commas themselves (WWW-Authenticate,
# Authorization, Date, ...) and unknown headers are never split.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "path",
        "service-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "alert-info",
        "call-info",
        "error-info",
        "in-reply-to",
        "warning",
        "p-asserted-identity",
        "p-preferred-identity",
        "history-info",
        "accept-contact",
        "reject-contact",
        "request-disposition",
        "security-client",
        "security-server",
        "security-verify",
        "reason",
    }
)

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_CSEQ_RE = re.compile(r"([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)")
_STATUS_RE = re.compile(r"[0-9]{3}")
# one header line "\r\n" name HCOLON value (RFC 3261 §7.3.1), for the findall fast path
_HEADER_LINE_RE = re.compile(r"\r\n([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*([^\r\n]*)")
_KEY_CACHE: dict[str, str] = {}


def _key(name: str) -> str:
    """The lookup key of a header name: lowercase long form."""
    key = name.lower()
    if len(key) == 1:
        return COMPACT_FORMS.get(key, key)
    return key


def split_list(value: str) -> list[str]:
    """Split a header value on commas outside quoted strings and <...> (RFC 3261 §7.3.1).

    Elements are stripped; empty elements are kept (as '') so that a caller that
    validates can see them.
    """
    if "," not in value:
        return [value.strip()]
    items: list[str] = []
    start = 0
    quoted = False
    angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            items.append(value[start:i].strip())
            start = i + 1
        i += 1
    items.append(value[start:].strip())
    return items


class Headers:
    """An ordered multi-dict of header fields (RFC 3261 §7.3).

    Names are case-insensitive and compact forms are the same header as their long
    forms (`Headers.get("Call-ID")` finds an `i:` field). Each field keeps its name
    as written; its value is stored with line folding collapsed to one space and
    surrounding whitespace stripped. Typed views a `Message` parsed from these
    headers are cached here and dropped when a field of their name changes.
    """

    __slots__ = ("_fields", "_cache", "_mutations")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        # (key, name as written, value)
        self._fields: list[tuple[str, str, str]] = []
        self._cache: dict[str, object] = {}
        self._mutations = 0
        for name, value in fields:
            self._fields.append((_key(name), name, _check_value(value)))

    @classmethod
    def _from_parsed(cls, fields: list[tuple[str, str, str]]) -> Headers:
        h = cls.__new__(cls)
        h._fields = fields
        h._cache = {}
        h._mutations = 0
        return h

    def _changed(self, key: str) -> None:
        # A typed view is built from the fields of one name only: the others stay valid (a
        # response's To, parsed once, survives the Server field the endpoint adds).
        self._cache.pop(key, None)
        self._mutations += 1

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called `name`, or `default`."""
        key = _key(name)
        for k, _, v in self._fields:
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of every field called `name`, list headers split on commas."""
        key = _key(name)
        values = [v for k, _, v in self._fields if k == key]
        if key not in LIST_HEADERS:
            return values
        out: list[str] = []
        for v in values:
            out.extend(item for item in split_list(v) if item)
        return out

    def get_fields(self, name: str) -> list[str]:
        """The values of the fields called `name`, one per field, not split."""
        key = _key(name)
        return [v for k, _, v in self._fields if k == key]

    def set(self, name: str, value: str) -> None:
        """Replace all fields called `name` by one, at the position of the first."""
        key = _key(name)
        value = _check_value(value)
        out: list[tuple[str, str, str]] = []
        placed = False
        for f in self._fields:
            if f[0] == key:
                if not placed:
                    out.append((key, name, value))
                    placed = True
            else:
                out.append(f)
        if not placed:
            out.append((key, name, value))
        self._fields = out
        self._changed(key)

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Add a field; `first=True` puts it before the other fields of that name
        (e.g. a new top Via, RFC 3261 §16.6 step 8), else at the end."""
        key = _key(name)
        entry = (key, name, _check_value(value))
        if first:
            for i, f in enumerate(self._fields):
                if f[0] == key:
                    self._fields.insert(i, entry)
                    break
            else:
                self._fields.append(entry)
        else:
            self._fields.append(entry)
        self._changed(key)

    def remove(self, name: str) -> None:
        """Remove every field called `name` (no error if there is none)."""
        key = _key(name)
        self._fields = [f for f in self._fields if f[0] != key]
        self._changed(key)

    def remove_first(self, name: str) -> None:
        """Remove the first value of a list header (e.g. the top Via of a response,
        RFC 3261 §18.1.2), keeping the rest of that field."""
        key = _key(name)
        for i, (k, n, v) in enumerate(self._fields):
            if k == key:
                rest = split_list(v)[1:] if key in LIST_HEADERS else []
                if rest:
                    self._fields[i] = (k, n, ", ".join(rest))
                else:
                    del self._fields[i]
                self._changed(key)
                return

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(k == key for k, _, _ in self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    def copy(self) -> Headers:
        """An independent copy (no cached views)."""
        return Headers._from_parsed(list(self._fields))

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._fields]!r})"


def _check_value(value: str) -> str:
    """Header values set from code: no CR/LF (header injection), stripped."""
    if "\r" in value or "\n" in value:
        raise ValueError("header value contains CR or LF")
    return value.strip(" \t")


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header (RFC 3261 §20.16): sequence number and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse `1*DIGIT LWS Method`; the number must be below 2**31 (§8.1.1.5)."""
        m = _CSEQ_RE.fullmatch(text)
        if m is None:
            raise ParseError("bad CSeq")
        number = m.group(1)
        if len(number) > 10 or int(number) >= 2**31:
            raise ParseError("CSeq number out of range")
        return cls(int(number), m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# Headers validated at parse time, and those that must appear at most once.
_MANDATORY = ("via", "from", "to", "call-id", "cseq")
_SINGLE = ("from", "to", "call-id", "cseq", "max-forwards")
_WATCHED = frozenset(_MANDATORY + ("content-length", "max-forwards", "contact"))
_PRETTY = {
    "via": "Via",
    "from": "From",
    "to": "To",
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "max-forwards": "Max-Forwards",
    "content-length": "Content-Length",
    "contact": "Contact",
}


class Message:
    """What requests and responses share: version, headers, body, typed accessors.

    Typed accessors raise `ParseError` (400 for a request, status None for a
    response) when their header is missing or malformed; `parse()` has already
    checked the mandatory ones, so on a parsed message they only fail for
    optional headers or after the headers were changed.
    """

    __slots__ = ("version", "headers", "body", "_raw", "_raw_headers", "_raw_body", "_raw_start")

    version: str
    headers: Headers
    body: bytes

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] | None, body: bytes) -> None:
        self.version = SIP_VERSION
        if headers is None:
            headers = Headers()
        elif not isinstance(headers, Headers):
            headers = Headers(headers)
        self.headers = headers
        self.body = bytes(body)
        self._raw: bytes | None = None
        self._raw_headers: Headers | None = None
        self._raw_body: bytes | None = None
        self._raw_start: tuple[object, ...] | None = None

    # -- parsing ----------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> Request | Response:
        """Parse one message (a UDP datagram or a framed stream message).

        Raises ParseError with the status to answer: 400, 505 (version), 513 (too
        large) for requests; status None for anything wrong with a response.
        """
        return _parse(data)

    # -- serialization -------------------------------------------------------------

    def _start_line(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _start_key(self) -> tuple[object, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        raw = self._raw
        if (
            raw is not None
            and self.headers is self._raw_headers
            and self.headers._mutations == 0
            and self.body is self._raw_body
            and self._start_key() == self._raw_start
        ):
            return raw
        lines = [self._start_line()]
        length_written = False
        body_len = str(len(self.body))
        for key, name, value in self.headers._fields:
            if key == "content-length":
                if length_written:
                    continue
                value = body_len
                length_written = True
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {body_len}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    # -- typed accessors -------------------------------------------------------------

    def _error(self, detail: str) -> ParseError:
        is_request = isinstance(self, Request)
        return ParseError(
            detail, 400 if is_request else None, headers=self.headers, is_request=is_request
        )

    def _single(self, key: str) -> str:
        values = self.headers.get_fields(key)
        if not values:
            raise self._error(f"missing {_PRETTY.get(key, key)}")
        if len(values) > 1 and any(v != values[0] for v in values):
            raise self._error(f"multiple {_PRETTY.get(key, key)} headers")
        return values[0]

    def _cached(self, key: str, build):  # type: ignore[no-untyped-def]
        cache = self.headers._cache
        try:
            return cache[key]
        except KeyError:
            pass
        try:
            value = build()
        except ParseError as exc:
            if exc.headers is None:
                raise self._error(exc.detail) from None
            raise
        cache[key] = value
        return value

    @property
    def call_id(self) -> str:
        """Call-ID (RFC 3261 §20.8)."""
        return self._cached("call-id", lambda: self._single("call-id"))

    @property
    def cseq(self) -> CSeq:
        """CSeq (RFC 3261 §20.16)."""
        return self._cached("cseq", lambda: CSeq.parse(self._single("cseq")))

    @property
    def from_(self) -> NameAddr:
        """From (RFC 3261 §20.20)."""
        return self._cached("from", lambda: NameAddr.parse(self._single("from")))

    @property
    def to(self) -> NameAddr:
        """To (RFC 3261 §20.39)."""
        return self._cached("to", lambda: NameAddr.parse(self._single("to")))

    @property
    def vias(self) -> list[Via]:
        """All Via values in order, top first (RFC 3261 §20.42)."""
        return self._cached("via", self._build_vias)

    def _build_vias(self) -> list[Via]:
        fields = self.headers.get_fields("via")
        if not fields:
            raise self._error("missing Via")
        vias = []
        for value in fields:
            for item in split_list(value):
                if not item:
                    raise self._error("empty Via value")
                vias.append(Via.parse(item))
        return vias

    @property
    def top_via(self) -> Via:
        """The first Via: the one the transaction layer matches on (§17.2.3)."""
        return self.vias[0]

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values (RFC 3261 §20.10); [] for "Contact: *" (see `contact_star`)."""
        return self._cached("contact", self._build_contacts)

    def _build_contacts(self) -> list[NameAddr]:
        out = []
        fields = self.headers.get_fields("contact")
        if len(fields) == 1 and fields[0] == "*":
            return []
        for value in fields:
            for item in split_list(value):
                if not item:
                    raise self._error("empty Contact value")
                if item == "*":
                    # §10.2.2: "*" only alone (and with Expires: 0, the registrar's check)
                    raise self._error("Contact * mixed with other contacts")
                out.append(NameAddr.parse(item))
        return out

    @property
    def contact_star(self) -> bool:
        """True for "Contact: *" (a REGISTER removing all bindings, RFC 3261 §10.2.2)."""
        fields = self.headers.get_fields("contact")
        return len(fields) == 1 and fields[0] == "*"

    @property
    def routes(self) -> list[NameAddr]:
        """Route values in order (RFC 3261 §20.34)."""
        return self._cached("route", lambda: self._name_addr_list("route"))

    @property
    def record_routes(self) -> list[NameAddr]:
        """Record-Route values in order (RFC 3261 §20.30)."""
        return self._cached("record-route", lambda: self._name_addr_list("record-route"))

    def _name_addr_list(self, key: str) -> list[NameAddr]:
        out = []
        for value in self.headers.get_fields(key):
            for item in split_list(value):
                if not item:
                    raise self._error(f"empty {key} value")
                out.append(NameAddr.parse(item))
        return out

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (RFC 3261 §20.22), None when absent (RFC 2543 peers)."""
        return self._cached("max-forwards", self._build_max_forwards)

    def _build_max_forwards(self) -> int | None:
        if "max-forwards" not in self.headers:
            return None
        value = self._single("max-forwards")
        if _DIGITS_RE.fullmatch(value) is None or len(value) > 5 or int(value) > 255:
            raise self._error("bad Max-Forwards")
        return int(value)

    @property
    def expires(self) -> int | None:
        """Expires in seconds (RFC 3261 §20.19), None when absent.

        Values above 2**32-1 are clamped to it (RFC 4475 scalar02 lets an element
        treat them as a default; the registrar bounds them anyway).
        """
        return self._cached("expires", self._build_expires)

    def _build_expires(self) -> int | None:
        value = self.headers.get("expires")
        if value is None:
            return None
        if _DIGITS_RE.fullmatch(value) is None:
            raise self._error("bad Expires")
        return min(int(value) if len(value) <= 10 else 2**32, 2**32 - 1)

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written (with parameters), None when absent."""
        return self.headers.get("content-type")

    @property
    def media_type(self) -> str | None:
        """The Content-Type's type/subtype, lowercase, without parameters."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.partition(";")[0].strip(" \t").lower()


class Request(Message):
    """A SIP request (RFC 3261 §7.1). `uri` is the Request-URI as written."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if _TOKEN_RE.fullmatch(method) is None:
            raise ValueError(f"bad method {method!r}")
        if not uri or any(c in uri for c in " \t\r\n<>"):
            raise ValueError(f"bad Request-URI {uri!r}")
        super().__init__(headers, body)
        self.method = method
        self.uri = str(uri)

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def _start_key(self) -> tuple[object, ...]:
        return (self.method, self.uri, self.version)

    @property
    def request_uri(self) -> SipUri:
        """The parsed Request-URI; ParseError(416) for a scheme other than sip/sips/tel
        (RFC 3261 §8.2.2.1), ParseError(400) if malformed."""
        cache = self.headers._cache
        key = " ruri " + self.uri  # keyed by text: `uri` is a plain attribute
        try:
            return cache[key]  # type: ignore[return-value]
        except KeyError:
            pass
        try:
            value = SipUri.parse(self.uri)
        except ParseError as exc:
            raise ParseError(exc.detail, exc.status, headers=self.headers) from None
        cache[key] = value
        return value

    def __repr__(self) -> str:
        return f"Request({self.method} {self.uri}, {len(self.headers)} headers, {len(self.body)} body bytes)"


class Response(Message):
    """A SIP response (RFC 3261 §7.2)."""

    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise ValueError(f"bad status {status}")
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else default_reason(status)

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def _start_key(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.version)

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason}, {len(self.headers)} headers, {len(self.body)} body bytes)"


def default_reason(status: int) -> str:
    """The RFC 3261 §21 phrase for a status, or the class's generic phrase."""
    phrase = REASON_PHRASES.get(status)
    if phrase is None:
        phrase = REASON_PHRASES.get(status // 100 * 100, "Unknown")
    return phrase


# --- the parser ------------------------------------------------------------------------


def _parse(data: bytes) -> Request | Response:
    data = bytes(data)
    is_request = not data.startswith(b"SIP/")

    def fail(detail: str, status: int | None = 400, headers: Headers | None = None) -> ParseError:
        return ParseError(
            detail,
            status if is_request else None,
            headers=headers if is_request else None,
            is_request=is_request,
        )

    # The header section ends at the first empty line. A datagram that ends right
    # after the last header line without it is taken as having no body (seen in the
    # RFC 4475 archive's baddn); RFC 3261 §7.5 wants the empty line, but nothing is
    # ambiguous about that datagram.
    hend = data.find(b"\r\n\r\n")
    if hend < 0:
        if data.endswith(b"\r\n") and len(data) > 2:
            hend = len(data) - 2
            body_start = len(data)
        else:
            raise fail("no end of headers")
    else:
        body_start = hend + 4
    if hend > MAX_MESSAGE:
        raise fail("headers too large", 513)
    head = data[:hend].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    start = lines[0]
    n_crlf = len(lines) - 1
    if head.count("\r") != n_crlf or head.count("\n") != n_crlf:
        raise fail("bare CR or LF", 400, _best_effort_headers(lines))

    # -- header fields: split once, unfold, keep names as written (RFC 3261 §7.3.1)
    fields: list[tuple[str, str, str]] = []
    watched: dict[str, list[str]] = {}
    append = fields.append
    token = _TOKEN_RE.fullmatch
    # Fast path (the common case: no folding, well-formed lines): one C-level findall.
    # Anything unusual takes the line-by-line loop below, which also names the error.
    pairs = None
    if (
        "\r\n " not in head
        and "\r\n\t" not in head
        and (len(head) <= MAX_HEADER_LINE or max(map(len, lines)) <= MAX_HEADER_LINE)
    ):
        pairs = _HEADER_LINE_RE.findall(head, len(start))
        if len(pairs) != n_crlf:
            pairs = None
    if pairs is not None:
        keys = _KEY_CACHE
        for name, value in pairs:
            key = keys.get(name)
            if key is None:
                key = _key(name)
                if len(keys) < 1024:  # bounded: names come from the peer
                    keys[name] = key
            if value[-1:] in (" ", "\t"):
                value = value.rstrip(" \t")
            append((key, name, value))
            if key in _WATCHED:
                watched.setdefault(key, []).append(value)
    for line in lines[1:] if pairs is None else ():
        if len(line) > MAX_HEADER_LINE:
            raise fail("header line too long", 513, _best_effort_headers(lines))
        if line[:1] in (" ", "\t"):
            # folded continuation: CRLF + WSP counts as one SP
            if not fields:
                raise fail("continuation line before first header")
            k, n, v = fields[-1]
            cont = line.strip(" \t")
            v = f"{v} {cont}".strip(" \t") if v else cont
            if len(v) > MAX_HEADER_LINE:
                raise fail("header line too long", 513, _best_effort_headers(lines))
            fields[-1] = (k, n, v)
            if k in watched:
                watched[k][-1] = v
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise fail("header line without ':'", 400, _best_effort_headers(lines))
        name = name.rstrip(" \t")
        if token(name) is None:
            raise fail("bad header name", 400, _best_effort_headers(lines))
        key = name.lower()
        if len(key) == 1:
            key = COMPACT_FORMS.get(key, key)
        value = value.strip(" \t")
        append((key, name, value))
        if key in _WATCHED:
            watched.setdefault(key, []).append(value)
    if len(fields) > MAX_HEADERS:
        raise fail("too many header fields", 513, _best_effort_headers(lines))
    headers = Headers._from_parsed(fields)

    # -- start line (RFC 3261 §7.1, §7.2): single spaces, nothing else
    if is_request:
        parts = start.split(" ")
        if len(parts) != 3:
            raise fail("bad request line", 400, headers)
        method, uri, version = parts
        if token(method) is None:
            raise fail("bad method", 400, headers)
        if version != SIP_VERSION:
            if version.upper() == SIP_VERSION:
                pass  # case-insensitive per RFC 3261 §25 string literals
            elif re.fullmatch(r"SIP/[0-9]+\.[0-9]+", version, re.I):
                raise fail("SIP version not supported", 505, headers)
            else:
                raise fail("bad request line", 400, headers)
        low = uri[:5].lower()
        if low.startswith(("sip:", "sips:", "tel:")):
            try:
                ruri: SipUri | None = SipUri.parse(uri)
            except ParseError as exc:
                raise fail(f"{exc.detail} (Request-URI)", 400, headers) from None
            if ruri.headers:
                # §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri)
                raise fail("headers in Request-URI", 400, headers)
        else:
            ruri = None
            if _ABSOLUTE_URI_RE.fullmatch(uri) is None:
                raise fail("bad Request-URI", 400, headers)
        msg: Request | Response = Request.__new__(Request)
        msg.method = method
        msg.uri = uri
        msg.version = version
        if ruri is not None:
            headers._cache[" ruri " + uri] = ruri
        start_key: tuple[object, ...] = (method, uri, version)
    else:
        version, _, rest = start.partition(" ")
        code, sp, reason = rest.partition(" ")
        if version.upper() != SIP_VERSION:
            raise fail("bad SIP version in status line")
        if _STATUS_RE.fullmatch(code) is None or not 100 <= int(code) <= 699:
            raise fail("bad status code")
        msg = Response.__new__(Response)
        msg.status = int(code)
        msg.reason = reason
        msg.version = version
        start_key = (msg.status, reason, version)
    msg.headers = headers

    # -- mandatory headers (RFC 3261 §8.1.1; RFC 4475 insuf, multi01)
    for key in _MANDATORY:
        if key not in watched:
            raise fail(f"missing {_PRETTY[key]}", 400, headers)
    for key in _SINGLE:
        values = watched.get(key)
        if values and len(values) > 1:
            raise fail(f"multiple {_PRETTY[key]} headers", 400, headers)
    cache = headers._cache
    try:
        cache["call-id"] = call_id = watched["call-id"][0]
        if not call_id or any(c in call_id for c in " \t"):
            raise ParseError("bad Call-ID")
        cseq = CSeq.parse(watched["cseq"][0])
        cache["cseq"] = cseq
        if is_request and cseq.method != msg.method and msg.method in KNOWN_METHODS:  # type: ignore[union-attr]
            raise ParseError("CSeq method does not match request method")
        cache["from"] = NameAddr.parse(watched["from"][0])
        cache["to"] = NameAddr.parse(watched["to"][0])
        vias = []
        for value in watched["via"]:
            for item in split_list(value):
                if not item:
                    raise ParseError("empty Via value")
                vias.append(Via.parse(item))
        cache["via"] = vias
        mf = watched.get("max-forwards")
        if mf is not None:
            value = mf[0]
            if _DIGITS_RE.fullmatch(value) is None or len(value) > 5 or int(value) > 255:
                raise ParseError("bad Max-Forwards")
            cache["max-forwards"] = int(value)
        else:
            cache["max-forwards"] = None
        if "contact" in watched:
            cache["contact"] = msg._build_contacts()
    except ParseError as exc:
        raise fail(exc.detail, 400, headers) from None

    # -- body and Content-Length (RFC 3261 §18.3, §20.14; RFC 4475 clerr, ncl, mcl01)
    lengths = watched.get("content-length")
    available = len(data) - body_start
    if lengths is None:
        length = available  # a datagram without Content-Length: the rest is the body
    else:
        first = lengths[0]
        if any(v != first for v in lengths[1:]):
            raise fail("conflicting Content-Length headers", 400, headers)
        if _DIGITS_RE.fullmatch(first) is None:
            raise fail("bad Content-Length", 400, headers)
        length = int(first) if len(first) <= 9 else MAX_MESSAGE + 1
        if length > available:
            if length > MAX_BODY:
                raise fail("body too large", 513, headers)
            raise fail("body shorter than Content-Length", 400, headers)
    if length > MAX_BODY:
        raise fail("body too large", 513, headers)
    end = body_start + length
    if end > MAX_MESSAGE:
        raise fail("message too large", 513, headers)
    msg.body = body = data[body_start:end]
    msg._raw = data if end == len(data) else data[:end]
    msg._raw_headers = headers
    msg._raw_body = body
    msg._raw_start = start_key
    return msg


def _best_effort_headers(lines: list[str]) -> Headers:
    """Whatever header fields can be read from the lines of a broken request, so the
    endpoint can still answer it (Via, From, To, Call-ID, CSeq as written)."""
    fields: list[tuple[str, str, str]] = []
    for line in lines[1 : MAX_HEADERS + 1]:
        line = line.replace("\r", " ").replace("\n", " ")
        if line[:1] in (" ", "\t"):
            if fields:
                k, n, v = fields[-1]
                cont = line.strip(" \t")
                fields[-1] = (k, n, f"{v} {cont}".strip(" \t")[:MAX_HEADER_LINE])
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if colon and _TOKEN_RE.fullmatch(name):
            fields.append((_key(name), name, value.strip(" \t")[:MAX_HEADER_LINE]))
    return Headers._from_parsed(fields)


# --- building responses ------------------------------------------------------------------


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """Build a response to `request` as RFC 3261 §8.2.6 says.

    Copies every Via (in order, as written), From, To (adding `;tag=to_tag` when
    given and the To has no tag yet), Call-ID and CSeq; then the extra `headers`,
    Content-Type when given; Content-Length is written on serialization.
    """
    return _respond(request.headers, status, reason, to_tag, headers, body, content_type, request)


def make_error_response(error: ParseError, *, to_tag: str | None = None) -> Response | None:
    """The response to a request that failed to parse (RFC 3261 §8.2 / RFC 4475), from
    the best-effort headers the error carries; None when there is nothing to answer
    (a response to drop, or no Via at all). A request missing From, To, Call-ID or
    CSeq still gets its 400 with what it has (RFC 4475 insuf): the answer goes to
    the source address, and the reason names what was missing."""
    if error.status is None or error.headers is None or not error.is_request:
        return None
    h = error.headers
    if "via" not in h:
        return None
    return _respond(h, error.status, error.reason, to_tag, (), b"", None, None)


def _respond(
    src: Headers,
    status: int,
    reason: str | None,
    to_tag: str | None,
    extra: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str | None,
    request: Request | None,
) -> Response:
    fields: list[tuple[str, str]] = [("Via", v) for v in src.get_fields("via")]
    from_ = src.get("from")
    if from_ is not None:
        fields.append(("From", from_))
    to = src.get("to")
    to_view: NameAddr | None = None      # the response's To, parsed: its transaction reads the tag
    if to is not None:
        if to_tag is not None:
            has_tag: bool
            try:
                to_view = request.to if request is not None else NameAddr.parse(to)
                has_tag = to_view.tag is not None
            except ParseError:
                has_tag = ";tag=" in to.replace(" ", "").lower()
            if not has_tag:
                to = f"{to};tag={to_tag}"
                if to_view is not None:
                    to_view = to_view.with_tag(to_tag)
        fields.append(("To", to))
    for name in ("call-id", "cseq"):
        value = src.get(name)
        if value is not None:
            fields.append((_PRETTY[name], value))
    fields.extend(extra)
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    # A reason must stay on one line; error reasons carry parser text.
    if reason is not None:
        reason = reason.replace("\r", " ").replace("\n", " ")
    response = Response(status, reason, Headers(fields), body)
    if to_view is not None:
        response.headers._cache["to"] = to_view
    return response


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie "z9hG4bK" plus a random token (§8.1.1.7)."""
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    """A fresh random From/To tag (RFC 3261 §19.3: at least 32 bits of randomness)."""
    return secrets.token_hex(8)
