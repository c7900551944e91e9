"""HTTP digest authentication for SIP, sans-I/O.

Follows RFC 7616 (HTTP Digest, MD5 and SHA-256, the ``-sess`` variants), with
the RFC 2617 / RFC 3261 §22.4 compatibility SIP phones still rely on,
including the RFC 2069 form without ``qop`` that old phones send.

This module only computes and compares; nonce issue, lifetime and replay
(``nc``) tracking belong to ``firmware.pbx.auth``.

Server side::

    ch = Challenge(realm="linebox", nonce=nonce)          # -> WWW-Authenticate
    creds = Credentials.parse(request.headers.get("Authorization"))
    ok = verify(creds, method="REGISTER", ha1=stored_ha1)

Client side (registering to a trunk)::

    ch = Challenge.parse(response.headers.get("WWW-Authenticate"))
    creds = Credentials.answer(ch, username=..., password=..., method=..., uri=...)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestError",
    "compute_response",
    "ha1",
    "parse_params",
    "verify",
]


class DigestError(ValueError):
    """A malformed or unusable digest header.

    ``status`` is the SIP status to answer with (400 Bad Request by default).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# RFC 7616 §3.2 / §6.1: algorithm name (case-insensitive) -> hash function name.
_HASHES = {
    "MD5": "md5",
    "MD5-SESS": "md5",
    "SHA-256": "sha256",
    "SHA-256-SESS": "sha256",
}
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")


def _canonical_algorithm(algorithm: str) -> str:
    """Return the RFC spelling of ``algorithm``; raise DigestError if unsupported."""
    key = algorithm.upper()
    for name in ALGORITHMS:
        if name.upper() == key:
            return name
    raise DigestError(f"unsupported digest algorithm {algorithm!r}")


def _h(algorithm: str, data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.new(_HASHES[algorithm.upper()], data).hexdigest()


# --------------------------------------------------------------------------
# Computation (RFC 7616 §3.4.1–§3.4.3, RFC 2617 §3.2.2)


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(username:realm:password) — what a store may keep instead of the password.

    For the ``-sess`` algorithms this is the stored base value; the session
    HA1 (which mixes in nonce and cnonce) is derived in ``compute_response``.
    """
    algorithm = _canonical_algorithm(algorithm)
    return _h(algorithm, f"{username}:{realm}:{password}")


_ha1 = ha1  # verify() has a parameter named ha1


def _response_from_ha1(
    *,
    algorithm: str,
    base_ha1: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    qop: str | None,
    body: bytes,
) -> str:
    algorithm = _canonical_algorithm(algorithm)
    a1 = base_ha1.lower()
    if algorithm.upper().endswith("-SESS"):
        if cnonce is None:
            raise DigestError(f"{algorithm} needs a cnonce")
        a1 = _h(algorithm, f"{a1}:{nonce}:{cnonce}")
    if qop is None:
        # RFC 2069 compatibility: no qop, no nc/cnonce.
        a2 = _h(algorithm, f"{method}:{uri}")
        return _h(algorithm, f"{a1}:{nonce}:{a2}")
    qop_l = qop.lower()
    if qop_l == "auth":
        a2 = _h(algorithm, f"{method}:{uri}")
    elif qop_l == "auth-int":
        a2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        raise DigestError(f"unsupported qop {qop!r}")
    if nc is None or cnonce is None:
        raise DigestError("qop needs nc and cnonce")
    return _h(algorithm, f"{a1}:{nonce}:{nc}:{cnonce}:{qop_l}:{a2}")


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None = None,
    cnonce: str | None = None,
    qop: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value (lowercase hex) per RFC 7616 §3.4.1.

    ``qop=None`` gives the RFC 2069 form; ``qop="auth-int"`` hashes ``body``.
    Raises DigestError for an unsupported algorithm/qop or missing nc/cnonce.
    """
    return _response_from_ha1(
        algorithm=algorithm,
        base_ha1=ha1(algorithm, username, realm, password),
        method=method,
        uri=uri,
        nonce=nonce,
        nc=nc,
        cnonce=cnonce,
        qop=qop,
        body=body,
    )


# --------------------------------------------------------------------------
# Header parsing (RFC 7235 §2.1 auth-param list, RFC 3261 §25.1 quoted-string)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
_WS = re.compile(r"[ \t\r\n]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)  # RFC 3261 §25.1 quoted-string, escapes included
_ESCAPE = re.compile(r"\\(.)", re.S)
_BARE = re.compile(r'[^ \t\r\n,"]*')
_MAX_HEADER = 8192


def parse_params(header_value: str, *, scheme: str = "Digest") -> dict[str, str]:
    """Split ``Digest k=v, k="v", ...`` into a dict with lowercased keys.

    Tolerates any order, missing or extra whitespace and empty list elements;
    unescapes quoted-strings (``\\"`` and ``\\\\``). Raises DigestError for a
    wrong scheme, duplicate parameters, unterminated quotes or garbage.
    Each step is a regular expression matched where the last one ended: the
    header of every authenticated request passes here.
    """
    if not isinstance(header_value, str):
        raise DigestError("digest header must be a str")
    s = header_value
    n = len(s)
    if n > _MAX_HEADER:
        raise DigestError("digest header too long")
    start = _WS.match(s).end()
    i = _TOKEN.match(s, start).end()
    if s[start:i].lower() != scheme.lower():
        raise DigestError(f"expected {scheme} scheme, got {s[start:i]!r}")
    if i < n and s[i] not in " \t\r\n":
        raise DigestError("missing space after scheme")
    params: dict[str, str] = {}
    while True:
        i = _WS.match(s, i).end()
        if i >= n:
            break
        if s[i] == ",":  # empty list element (RFC 7230 §7)
            i += 1
            continue
        start = i
        i = _TOKEN.match(s, i).end()
        name = s[start:i].lower()
        if not name:
            raise DigestError(f"expected parameter name at offset {start}")
        i = _WS.match(s, i).end()
        if i >= n or s[i] != "=":
            raise DigestError(f"expected '=' after {name!r}")
        i = _WS.match(s, i + 1).end()
        if i < n and s[i] == '"':
            quoted = _QUOTED.match(s, i)
            if quoted is None:
                body = s[i + 1:]
                if body.replace("\\\\", "").endswith("\\"):
                    raise DigestError(f"dangling escape in {name!r}")
                raise DigestError(f"unterminated quoted-string for {name!r}")
            value = quoted.group(1)
            if "\\" in value:
                value = _ESCAPE.sub(r"\1", value)
            i = quoted.end()
        else:
            # Unquoted: RFC says token, but phones put URIs here unquoted;
            # accept anything up to a separator.
            start = i
            i = _BARE.match(s, i).end()
            value = s[start:i]
            if not value:
                raise DigestError(f"empty value for {name!r}")
        if name in params:
            raise DigestError(f"duplicate parameter {name!r}")
        params[name] = value
        i = _WS.match(s, i).end()
        if i < n:
            if s[i] != ",":
                raise DigestError(f"expected ',' after {name!r}")
            i += 1
    return params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------
# Wire types


@dataclass(frozen=True)
class Challenge:
    """A digest challenge (WWW-Authenticate / Proxy-Authenticate value)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = "auth"
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        """``Digest realm="...", nonce="...", algorithm=MD5, qop="auth"[, opaque=...][, stale=true]``."""
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}", f"algorithm={self.algorithm}"]
        if self.qop is not None:
            parts.append(f"qop={_quote(self.qop)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)

    __str__ = header_value

    @classmethod
    def parse(cls, header_value: str) -> Challenge:
        """Parse a WWW-Authenticate value; raises DigestError when malformed.

        ``qop`` keeps the offered list as sent (e.g. ``"auth,auth-int"``);
        a missing algorithm means MD5 (RFC 7616 §3.3).
        """
        p = parse_params(header_value)
        for req in ("realm", "nonce"):
            if req not in p:
                raise DigestError(f"challenge lacks {req}")
        return cls(
            realm=p["realm"],
            nonce=p["nonce"],
            algorithm=p.get("algorithm", "MD5"),
            qop=p.get("qop"),
            opaque=p.get("opaque"),
            stale=p.get("stale", "").lower() == "true",
        )

    def qop_options(self) -> list[str]:
        """The offered qop values, lowercased (``[]`` for an RFC 2069 challenge)."""
        if self.qop is None:
            return []
        return [q.strip().lower() for q in self.qop.split(",") if q.strip()]


@dataclass(frozen=True)
class Credentials:
    """Digest credentials (Authorization / Proxy-Authorization value)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, header_value: str) -> Credentials:
        """Parse an Authorization value; raises DigestError when malformed.

        Parameter names are case-insensitive and may come in any order;
        unknown parameters are ignored.
        With a qop, nc and cnonce are required (RFC 7616 §3.4); nc must be
        8 hex digits.
        """
        p = parse_params(header_value)
        for req in ("username", "realm", "nonce", "uri", "response"):
            if req not in p:
                raise DigestError(f"credentials lack {req}")
        qop = p.get("qop")
        nc = p.get("nc")
        cnonce = p.get("cnonce")
        if qop is not None:
            if nc is None or cnonce is None:
                raise DigestError("qop given without nc and cnonce")
            if "," in qop:
                raise DigestError("credentials must carry a single qop")
        if nc is not None and (len(nc) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc)):
            raise DigestError(f"bad nc {nc!r}")
        return cls(
            username=p["username"],
            realm=p["realm"],
            nonce=p["nonce"],
            uri=p["uri"],
            response=p["response"],
            algorithm=p.get("algorithm", "MD5"),
            cnonce=cnonce,
            nc=nc,
            qop=qop,
            opaque=p.get("opaque"),
        )

    def header_value(self) -> str:
        """Serialize as an Authorization value (qop, nc, algorithm unquoted per RFC 7616)."""
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)

    __str__ = header_value

    @classmethod
    def answer(
        cls,
        challenge: Challenge,
        *,
        username: str,
        password: str,
        method: str,
        uri: str,
        nc: int = 1,
        cnonce: str | None = None,
        body: bytes = b"",
    ) -> Credentials:
        """Client side: answer ``challenge`` (prefers qop=auth, else auth-int, else RFC 2069)."""
        options = challenge.qop_options()
        qop = "auth" if "auth" in options else "auth-int" if "auth-int" in options else None
        if options and qop is None:
            raise DigestError(f"no supported qop in {challenge.qop!r}")
        sess = challenge.algorithm.upper().endswith("-SESS")
        if (qop is not None or sess) and cnonce is None:
            cnonce = os.urandom(12).hex()
        nc_s = f"{nc:08x}" if qop is not None else None
        response = compute_response(
            algorithm=challenge.algorithm,
            username=username,
            realm=challenge.realm,
            password=password,
            method=method,
            uri=uri,
            nonce=challenge.nonce,
            nc=nc_s,
            cnonce=cnonce,
            qop=qop,
            body=body,
        )
        return cls(
            username=username,
            realm=challenge.realm,
            nonce=challenge.nonce,
            uri=uri,
            response=response,
            algorithm=challenge.algorithm,
            cnonce=cnonce if (qop is not None or sess) else None,
            nc=nc_s,
            qop=qop,
            opaque=challenge.opaque,
        )


def verify(
    creds: Credentials,
    *,
    method: str,
    password: str | None = None,
    ha1: str | None = None,
    body: bytes = b"",
) -> bool:
    """True if ``creds.response`` is right for ``method`` and the secret.

    Give exactly one of ``password`` or ``ha1`` (H(username:realm:password)
    with the credentials' algorithm). Unsupported algorithms or qops give
    False. Comparison is constant-time. Nonce freshness, realm and nc replay
    are the caller's business.
    """
    if (password is None) == (ha1 is None):
        raise TypeError("give exactly one of password or ha1")
    try:
        base = ha1 if ha1 is not None else _ha1(creds.algorithm, creds.username, creds.realm, password)
        expected = _response_from_ha1(
            algorithm=creds.algorithm,
            base_ha1=base,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            nc=creds.nc,
            cnonce=creds.cnonce,
            qop=creds.qop,
            body=body,
        )
    except DigestError:
        return False
    return hmac.compare_digest(expected.encode(), creds.response.lower().encode("utf-8", "surrogatepass"))
