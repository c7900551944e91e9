"""Typed views of SIP header values: URIs, name-addr, Via (RFC 3261 §19.1, §20, §25.1).

These are the values the transaction layer and the B2BUA read out of a message:
`SipUri` (sip:/sips:/tel: URIs, RFC 3261 §19.1 and RFC 3966), `NameAddr` (the
From/To/Contact/Route shape, RFC 3261 §20.10) and `Via` (§20.42). Each has a
`parse(text)` classmethod that raises `ParseError` (status 400, or 416 for a URI
scheme we cannot handle) and a `__str__` that writes the canonical form.

IPv6 follows RFC 5118: a host reference is written `[2001:db8::1]`, kept here
without the brackets (ready for a socket address), and a bracketed address has
no port inside it (`[2001:db8::10:5070]` is an address, not an address plus port).

The values are frozen dataclasses. Their `params` dicts are ordered and keyed by
lowercase name; treat them as read-only and build new values with
`dataclasses.replace()` or the `with_*` helpers.

`ParseError` is defined here, the lowest layer, and re-exported by
`firmware.sip.message`, where the rest of the code imports it from.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:  # pragma: no cover - only for the annotation of ParseError.headers
    from .message import Headers

__all__ = ["ParseError", "SipUri", "NameAddr", "Via", "parse_params", "format_params"]


# Reason phrases for the statuses a parse error can carry (the full §21 table lives in
# message.py; this small copy keeps uri.py free of an import cycle).
_ERROR_PHRASES = {
    400: "Bad Request",
    416: "Unsupported URI Scheme",
    505: "Version Not Supported",
    513: "Message Too Large",
}


class ParseError(ValueError):
    """A message or header value that cannot be parsed, carrying the answer to give.

    Modelled on h11's `RemoteProtocolError(msg, error_status_hint=400)`: whoever
    catches it has what it needs to reply without knowing why parsing failed.

    Attributes:
        reason: a human-readable text usable as a SIP reason phrase, in the
            "Bad Request (bad CSeq)" style.
        status: the SIP status to answer with (400, 416, 505, 513 ...), or None
            when the input must be dropped silently (a malformed response).
        headers: best-effort `Headers` of a request that failed to parse (Via,
            From, To, Call-ID, CSeq as written) so a response can still be built;
            None if not even that could be had.
        is_request: whether the input looked like a request.
    """

    def __init__(
        self,
        detail: str,
        status: int | None = 400,
        *,
        headers: Headers | None = None,
        is_request: bool = True,
    ) -> None:
        self.detail = detail
        self.status = status
        self.headers = headers
        self.is_request = is_request
        phrase = _ERROR_PHRASES.get(status) if status is not None else None
        self.reason = f"{phrase} ({detail})" if phrase else detail
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"ParseError({self.reason!r}, status={self.status!r}, is_request={self.is_request})"


# --- character classes (RFC 3261 §25.1) ---------------------------------------------

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]"
# unreserved / escaped / user-unreserved ("&=+$,;?/")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
# unreserved / escaped / "&=+$,"
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
# hostname / IPv4address; '_' is not in the ABNF but shows up in real deployments.
_HOST_RE = re.compile(r"[A-Za-z0-9\-_.]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
# uri-parameters: ";" pname ["=" pvalue], paramchar = param-unreserved / unreserved / escaped
_URI_PARAMS_RE = re.compile(
    r"(?:;[\[\]/:&+$A-Za-z0-9\-_.!~*'()%]+(?:=[\[\]/:&+$A-Za-z0-9\-_.!~*'()%]*)?)*"
)
# headers: hname "=" hvalue *( "&" ... ), hnv-unreserved = "[]/?:+$"
_URI_HEADERS_RE = re.compile(
    r"[\[\]/?:+$A-Za-z0-9\-_.!~*'()%]+=[\[\]/?:+$A-Za-z0-9\-_.!~*'()%]*"
    r"(?:&[\[\]/?:+$A-Za-z0-9\-_.!~*'()%]+=[\[\]/?:+$A-Za-z0-9\-_.!~*'()%]*)*"
)
_SIP_URI_FAST_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)@)?([A-Za-z0-9\-_.]+)(?::([0-9]{1,5}))?"
    r"((?:;[\[\]/:&+$A-Za-z0-9\-_.!~*'()]+(?:=[\[\]/:&+$A-Za-z0-9\-_.!~*'()]*)?)*)",
    re.I,
)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# telephone-subscriber (RFC 3966), loosely: digits, visual separators, hex digits, * # +
_TEL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+")
# absoluteURI (RFC 3261 §25.1 / RFC 2396): scheme ":" then no whitespace, quotes or <>
_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+")

# generic-param with SWS around ";" and "=" (RFC 3261 §25.1: SEMI, EQUAL); gen-value is
# token / host / quoted-string, so ':' and '[]' are allowed for IPv6 "received" values.
_PARAM_RE = re.compile(
    r"[ \t]*;[ \t]*(" + _TOKEN + r"+)"
    r"(?:[ \t]*=[ \t]*(\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9\-.!%*_+`'~:\[\]]+))?[ \t]*",
    re.S,
)
_QUOTED_RE = re.compile(r"\"((?:[^\"\\]|\\.)*)\"", re.S)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)
# display-name = *(token LWS) / quoted-string; after unfolding LWS is spaces/tabs
_DISPLAY_TOKENS_RE = re.compile(_TOKEN + r"+(?:[ \t]+" + _TOKEN + r"+)*")
_VIA_RE = re.compile(
    r"[ \t]*(" + _TOKEN + r"+)[ \t]*/[ \t]*(" + _TOKEN + r"+)[ \t]*/[ \t]*(" + _TOKEN + r"+)"
    r"[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-_.]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*"
)


def _bad(detail: str) -> ParseError:
    return ParseError(detail, 400)


def _parse_ipv6(text: str, what: str) -> str:
    """Validate the inside of an IPv6reference (RFC 5118 §4.3: '2001:db8:::1' is bad)."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise _bad(f"bad IPv6 address in {what}") from None
    return text


def _check_port(text: str, what: str) -> int:
    port = int(text)
    if port > 65535:
        raise _bad(f"bad port in {what}")
    return port


def _host_text(host: str) -> str:
    """A host as written in a URI or Via: IPv6 in brackets (RFC 3261 §25.1 IPv6reference)."""
    return f"[{host}]" if ":" in host else host


def parse_params(text: str, pos: int, what: str) -> dict[str, str | None]:
    """Parse `*( SEMI generic-param )` from text[pos:] to the end (RFC 3261 §25.1).

    Keys are lowercased (parameter names are case-insensitive); values are kept as
    written, quoted strings with their quotes, so that they can be written back.
    """
    params: dict[str, str | None] = {}
    end = len(text)
    match = _PARAM_RE.match
    while pos < end:
        m = match(text, pos)
        if m is None or m.end() == pos:
            raise _bad(f"bad parameter in {what}")
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Write parameters back as ';name=value' / ';name'."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _unquote_string(inner: str) -> str:
    return _QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner


def _quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- SipUri ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip:, sips: or tel: URI (RFC 3261 §19.1.1, §25.1; RFC 3966 for tel).

    `user` keeps escapes as written (`%75se%72`); `user_unescaped` decodes them.
    `host` is '' for tel: URIs (the number is in `user`) and holds IPv6 addresses
    without brackets. `params` keys are lowercase, values as written.
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; ParseError(400) if malformed, ParseError(416) for another scheme."""
        m = _SIP_URI_FAST_RE.fullmatch(text)
        if m is not None:
            # the common shape (no password, escapes, IPv6 or headers) in one regex;
            # everything else, and every error, goes the long way below
            scheme, user, host, port, ptext = m.groups()
            params: dict[str, str | None] = {}
            if ptext:
                for item in ptext[1:].split(";"):
                    name, eq, value = item.partition("=")
                    params[name.lower()] = value if eq else None
            return cls(
                scheme.lower(), user, None, host,
                _check_port(port, "URI") if port is not None else None, params, {},
            )
        scheme, sep, rest = text.partition(":")
        lscheme = scheme.lower()
        if not sep or not rest:
            raise _bad("bad URI")
        if lscheme == "tel":
            return cls._parse_tel(rest)
        if lscheme not in ("sip", "sips"):
            if _ABSOLUTE_URI_RE.fullmatch(text) is None:
                raise _bad("bad URI")
            raise ParseError(f"URI scheme {scheme[:32]!r} not supported", 416)
        if "%" in rest and _BAD_ESCAPE_RE.search(rest):
            raise _bad("bad escape in URI")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo = rest[:at]
            rest = rest[at + 1 :]
            user, colon, pw = userinfo.partition(":")
            if _USER_RE.fullmatch(user) is None:
                raise _bad("bad user in URI")
            if colon:
                if _PASSWORD_RE.fullmatch(pw) is None:
                    raise _bad("bad password in URI")
                password = pw
        # hostport
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise _bad("unterminated IPv6 reference in URI")
            host = _parse_ipv6(rest[1:close], "URI")
            pos = close + 1
        else:
            m = _HOST_RE.match(rest)
            if m is None:
                raise _bad("bad host in URI")
            host = m.group()
            pos = m.end()
        port = None
        if rest.startswith(":", pos):
            m = _PORT_RE.match(rest, pos + 1)
            if m is None:
                raise _bad("bad port in URI")
            port = _check_port(m.group(), "URI")
            pos = m.end()
        rest = rest[pos:]
        headers: dict[str, str] = {}
        q = rest.find("?")
        if q >= 0:
            htext = rest[q + 1 :]
            rest = rest[:q]
            if _URI_HEADERS_RE.fullmatch(htext) is None:
                raise _bad("bad headers in URI")
            for item in htext.split("&"):
                name, _, value = item.partition("=")
                headers[name] = value
        params: dict[str, str | None] = {}
        if rest:
            if _URI_PARAMS_RE.fullmatch(rest) is None:
                raise _bad("bad URI parameters")
            for item in rest[1:].split(";"):
                name, eq, value = item.partition("=")
                params[name.lower()] = value if eq else None
        return cls(lscheme, user, password, host, port, params, headers)

    @classmethod
    def _parse_tel(cls, rest: str) -> SipUri:
        number, _, ptext = rest.partition(";")
        if _TEL_NUMBER_RE.fullmatch(number) is None:
            raise _bad("bad tel URI")
        params: dict[str, str | None] = {}
        if ptext:
            if _URI_PARAMS_RE.fullmatch(";" + ptext) is None:
                raise _bad("bad tel URI parameters")
            for item in ptext.split(";"):
                name, eq, value = item.partition("=")
                params[name.lower()] = value if eq else None
        return cls("tel", number, None, "", None, params, {})

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %-escapes decoded (RFC 3261 §19.1.4 compares unescaped)."""
        if self.user is None or "%" not in self.user:
            return self.user
        return unquote(self.user, errors="surrogateescape")

    @property
    def transport(self) -> str | None:
        """The `transport` URI parameter, lowercase, or None (RFC 3261 §19.1.1)."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def host_port(self) -> tuple[str, int | None]:
        """(host, port) with the host unbracketed, port None when not written."""
        return (self.host, self.port)

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with parameters added or replaced (lowercase keys)."""
        merged = dict(self.params)
        merged.update({k.lower(): v for k, v in params.items()})
        return replace(self, params=merged)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{format_params(self.params)}"
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":" + self.password)
            parts.append("@")
        parts.append(_host_text(self.host))
        if self.port is not None:
            parts.append(f":{self.port}")
        parts.append(format_params(self.params))
        if self.headers:
            parts.append("?" + "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(parts)


def _parse_any_uri(text: str) -> SipUri | str:
    """sip/sips/tel URIs become SipUri; other absolute URIs are kept as raw text."""
    scheme = text[:5].lower()
    if scheme.startswith(("sip:", "sips:", "tel:")):
        return SipUri.parse(text)
    if _ABSOLUTE_URI_RE.fullmatch(text) is None:
        raise _bad("bad URI")
    return text


# --- NameAddr --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route/Record-Route value (RFC 3261 §20.10, §25.1).

    `display_name` is unquoted and unescaped (None when absent); `uri` is a SipUri
    for sip/sips/tel and the raw text for other schemes; `params` are the header
    parameters (tag, expires, q, ...), not the URI's. In the addr-spec form (no
    angle brackets) everything after the first ';' is a header parameter.
    """

    display_name: str | None
    uri: SipUri | str
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a name-addr or addr-spec with its parameters; ParseError(400) if malformed."""
        text = text.strip(" \t")
        display: str | None = None
        if text.startswith('"'):
            m = _QUOTED_RE.match(text)
            if m is None:
                raise _bad("unbalanced quotes in display name")
            display = _unquote_string(m.group(1))
            lt = m.end()
            while lt < len(text) and text[lt] in " \t":
                lt += 1
            if not text.startswith("<", lt):
                raise _bad("display name without <URI>")
        else:
            lt = text.find("<")
            if lt >= 0:
                dtext = text[:lt].rstrip(" \t")
                if dtext:
                    if _DISPLAY_TOKENS_RE.fullmatch(dtext) is None:
                        raise _bad("bad display name")
                    display = dtext
        if lt >= 0:
            gt = text.find(">", lt + 1)
            if gt < 0:
                raise _bad("unterminated <URI>")
            utext = text[lt + 1 : gt]
            if not utext or utext[0] in " \t" or utext[-1] in " \t":
                raise _bad("whitespace inside <URI>")
            uri = _parse_any_uri(utext)
            params = parse_params(text, gt + 1, "name-addr")
            return cls(display, uri, params)
        # addr-spec: the URI runs to the first ';' or whitespace (RFC 3261 §20.10)
        end = len(text)
        for i, ch in enumerate(text):
            if ch in "; \t":
                end = i
                break
        utext = text[:end]
        if not utext:
            raise _bad("missing URI")
        if "," in utext or "?" in utext:
            # §20.10: such URIs MUST be in angle brackets
            raise _bad("URI with ',' or '?' must be in <>")
        uri = _parse_any_uri(utext)
        return cls(None, uri, parse_params(text, end, "addr-spec"))

    @property
    def tag(self) -> str | None:
        """The `tag` parameter (RFC 3261 §19.3), None when absent."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with the tag parameter set (for the To of a response, §8.2.6.2)."""
        params = dict(self.params)
        params["tag"] = tag
        return replace(self, params=params)

    @property
    def sip_uri(self) -> SipUri:
        """The URI as a SipUri; ParseError(416) when it has another scheme."""
        if isinstance(self.uri, SipUri):
            return self.uri
        raise ParseError(f"URI scheme {self.uri.partition(':')[0][:32]!r} not supported", 416)

    def __str__(self) -> str:
        head = f"{_quote_string(self.display_name)} " if self.display_name is not None else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"


# --- Via -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42, §18.2.1; RFC 3581 rport; RFC 5118 IPv6).

    `protocol` is "SIP/2.0", `transport` uppercase ("UDP", "TCP", "TLS", ...),
    `host` unbracketed, `port` None when not written.
    """

    protocol: str
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm (already split from its comma list); ParseError(400)."""
        m = _VIA_RE.match(text)
        if m is None:
            raise _bad("bad Via")
        name, version, transport, host, port = m.groups()
        if host.startswith("["):
            host = _parse_ipv6(host[1:-1], "Via")
        params = parse_params(text, m.end(), "Via")
        return cls(
            f"{name.upper()}/{version}",
            transport.upper(),
            host,
            _check_port(port, "Via") if port is not None else None,
            params,
        )

    @property
    def branch(self) -> str | None:
        """The branch parameter (RFC 3261 §8.1.1.7), None when absent."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The received parameter (§18.2.1); brackets of an IPv6 value are removed."""
        value = self.params.get("received")
        if value and value.startswith("[") and value.endswith("]"):
            return value[1:-1]
        return value

    @property
    def rport(self) -> str | None:
        """RFC 3581 rport: None if absent, "" if present without value, else the value."""
        if "rport" not in self.params:
            return None
        return self.params["rport"] or ""

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) as written in the sent-by."""
        return (self.host, self.port)

    def with_params(self, **params: str | None) -> Via:
        """A copy with parameters added or replaced (e.g. received=, rport=)."""
        merged = dict(self.params)
        merged.update({k.lower(): v for k, v in params.items()})
        return replace(self, params=merged)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return (
            f"{self.protocol}/{self.transport} {_host_text(self.host)}{port}"
            f"{format_params(self.params)}"
        )
