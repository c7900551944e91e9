"""Digest authentication (firmware.sip.digest) against RFC vectors and phone-shaped headers."""

from __future__ import annotations

import hashlib

import pytest

from firmware.sip.digest import (
    Challenge,
    Credentials,
    DigestError,
    compute_response,
    ha1,
    parse_params,
    verify,
)

# RFC 7616 §3.9.1
RFC7616 = dict(
    username="Mufasa",
    realm="http-auth@example.org",
    password="Circle of Life",
    method="GET",
    uri="/dir/index.html",
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    nc="00000001",
    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    qop="auth",
)
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC7616_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

# RFC 2617 §3.5 (note "Circle Of Life" with a capital O there)
RFC2617_HEADER = (
    'Digest username="Mufasa",\r\n'
    '                 realm="testrealm@host.com",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 uri="/dir/index.html",\r\n'
    "                 qop=auth,\r\n"
    "                 nc=00000001,\r\n"
    '                 cnonce="0a4f113b",\r\n'
    '                 response="6629fae49393a05397450978507c4ef1",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


# -- RFC vectors -------------------------------------------------------------


@pytest.mark.parametrize("algorithm,expected", [("MD5", RFC7616_MD5), ("SHA-256", RFC7616_SHA256)])
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    assert compute_response(algorithm=algorithm, **RFC7616) == expected


@pytest.mark.parametrize("algorithm,expected", [("MD5", RFC7616_MD5), ("SHA-256", RFC7616_SHA256)])
def test_rfc7616_header_parses_and_verifies(algorithm: str, expected: str) -> None:
    # The Authorization header as printed in RFC 7616 §3.9.1.
    header = (
        'Digest username="Mufasa",\n'
        '    realm="http-auth@example.org",\n'
        '    uri="/dir/index.html",\n'
        f"    algorithm={algorithm},\n"
        '    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\n'
        "    nc=00000001,\n"
        '    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",\n'
        "    qop=auth,\n"
        f'    response="{expected}",\n'
        f'    opaque="{RFC7616_OPAQUE}"'
    )
    creds = Credentials.parse(header)
    assert creds.algorithm == algorithm
    assert creds.opaque == RFC7616_OPAQUE
    assert verify(creds, method="GET", password="Circle of Life")
    assert verify(creds, method="GET", ha1=ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life"))
    assert not verify(creds, method="GET", password="Circle Of Life")
    assert not verify(creds, method="POST", password="Circle of Life")


def test_rfc7616_challenge_parses() -> None:
    ch = Challenge.parse(
        'Digest\n    realm="http-auth@example.org",\n    qop="auth, auth-int",\n'
        "    algorithm=SHA-256,\n"
        '    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\n'
        f'    opaque="{RFC7616_OPAQUE}"'
    )
    assert ch.realm == "http-auth@example.org"
    assert ch.algorithm == "SHA-256"
    assert ch.qop_options() == ["auth", "auth-int"]
    assert ch.opaque == RFC7616_OPAQUE
    assert not ch.stale


def test_rfc2617_example() -> None:
    creds = Credentials.parse(RFC2617_HEADER)
    assert creds == Credentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        algorithm="MD5",
        cnonce="0a4f113b",
        nc="00000001",
        qop="auth",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    assert verify(creds, method="GET", password="Circle Of Life")
    assert not verify(creds, method="GET", password="Circle of Life")


def test_ha1_is_the_rfc_a1_hash() -> None:
    assert ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life") == _md5(
        "Mufasa:testrealm@host.com:Circle Of Life"
    )
    assert ha1("sha-256", "a", "b", "c") == hashlib.sha256(b"a:b:c").hexdigest()


# -- SIP-shaped ---------------------------------------------------------------


def test_sip_register_qop_auth() -> None:
    # As a Yealink/pjsua REGISTER would carry it (sip: URI, no spaces after commas).
    realm, nonce, cnonce = "linebox", "5f1c9a0b3e7d2c44", "a8f2c4e1"
    uri = "sip:192.168.1.10"
    a1 = _md5(f"201:{realm}:s3cret")
    a2 = _md5(f"REGISTER:{uri}")
    expected = _md5(f"{a1}:{nonce}:00000001:{cnonce}:auth:{a2}")
    header = (
        f'Digest username="201",realm="{realm}",nonce="{nonce}",uri="{uri}",'
        f'response="{expected}",algorithm=MD5,cnonce="{cnonce}",qop=auth,nc=00000001'
    )
    creds = Credentials.parse(header)
    assert creds.uri == uri
    assert verify(creds, method="REGISTER", password="s3cret")
    assert verify(creds, method="REGISTER", ha1=a1)
    assert verify(creds, method="REGISTER", ha1=a1.upper())  # stores may keep upper-case hex
    assert not verify(creds, method="INVITE", password="s3cret")
    assert not verify(creds, method="REGISTER", password="s3cre")


def test_sip_rfc2069_no_qop() -> None:
    # Old phones: no qop, no nc/cnonce; response = H(HA1:nonce:HA2).
    uri = "sip:pbx.example.com"
    a1 = _md5("100:pbx:pw")
    expected = _md5(f"{a1}:abc123:{_md5('INVITE:' + uri)}")
    assert (
        compute_response(
            algorithm="MD5", username="100", realm="pbx", password="pw", method="INVITE", uri=uri, nonce="abc123"
        )
        == expected
    )
    creds = Credentials.parse(
        f'Digest username="100", realm="pbx", nonce="abc123", uri="{uri}", response="{expected.upper()}"'
    )
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert verify(creds, method="INVITE", password="pw")


def test_sess_variants() -> None:
    base = _md5("u:r:p")
    sess = _md5(f"{base}:n:c")
    expected = _md5(f"{sess}:n:00000001:c:auth:{_md5('REGISTER:sip:x')}")
    got = compute_response(
        algorithm="MD5-sess", username="u", realm="r", password="p", method="REGISTER",
        uri="sip:x", nonce="n", nc="00000001", cnonce="c", qop="auth",
    )
    assert got == expected
    creds = Credentials(
        username="u", realm="r", nonce="n", uri="sip:x", response=got, algorithm="MD5-sess",
        cnonce="c", nc="00000001", qop="auth",
    )
    assert verify(creds, method="REGISTER", ha1=base)
    sha = compute_response(
        algorithm="SHA-256-sess", username="u", realm="r", password="p", method="REGISTER",
        uri="sip:x", nonce="n", nc="00000001", cnonce="c", qop="auth",
    )
    h = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    assert sha == h(f"{h(h('u:r:p') + ':n:c')}:n:00000001:c:auth:{h('REGISTER:sip:x')}")


def test_auth_int_hashes_body() -> None:
    body = b"v=0\r\n"
    a2 = _md5(f"INVITE:sip:x:{hashlib.md5(body).hexdigest()}")
    expected = _md5(f"{_md5('u:r:p')}:n:00000001:c:auth-int:{a2}")
    kw = dict(algorithm="MD5", username="u", realm="r", password="p", method="INVITE", uri="sip:x",
              nonce="n", nc="00000001", cnonce="c", qop="auth-int")
    assert compute_response(body=body, **kw) == expected
    assert compute_response(body=b"", **kw) != expected


def test_client_answer_roundtrip() -> None:
    ch = Challenge(realm="trunk.example", nonce="xyz", algorithm="SHA-256", opaque="op")
    creds = Credentials.answer(ch, username="acct", password="pw", method="REGISTER", uri="sip:trunk.example", nc=3)
    assert creds.nc == "00000003" and creds.qop == "auth" and creds.cnonce and creds.opaque == "op"
    again = Credentials.parse(creds.header_value())
    assert again == creds
    assert verify(again, method="REGISTER", password="pw")
    old = Credentials.answer(Challenge(realm="r", nonce="n", qop=None), username="u", password="p",
                             method="INVITE", uri="sip:x")
    assert old.qop is None and old.nc is None and old.cnonce is None
    assert verify(Credentials.parse(str(old)), method="INVITE", password="p")


def test_verify_rejects_unsupported_algorithm_and_needs_one_secret() -> None:
    creds = Credentials(username="u", realm="r", nonce="n", uri="sip:x", response="00", algorithm="SHA-512-256")
    assert verify(creds, method="REGISTER", password="p") is False
    with pytest.raises(TypeError):
        verify(creds, method="REGISTER")
    with pytest.raises(TypeError):
        verify(creds, method="REGISTER", password="p", ha1="00")
    with pytest.raises(DigestError):
        compute_response(algorithm="SHA-1", username="u", realm="r", password="p", method="M", uri="u", nonce="n")
    with pytest.raises(DigestError):  # qop without nc/cnonce
        compute_response(algorithm="MD5", username="u", realm="r", password="p", method="M", uri="u", nonce="n",
                         qop="auth")


# -- Challenge serialization --------------------------------------------------


def test_challenge_header_value() -> None:
    assert Challenge(realm="linebox", nonce="abc").header_value() == (
        'Digest realm="linebox", nonce="abc", algorithm=MD5, qop="auth"'
    )
    ch = Challenge(realm='a "b"\\', nonce="n", algorithm="SHA-256", qop=None, opaque="o", stale=True)
    assert ch.header_value() == 'Digest realm="a \\"b\\"\\\\", nonce="n", algorithm=SHA-256, opaque="o", stale=true'
    assert Challenge.parse(ch.header_value()) == ch
    assert Challenge.parse(Challenge(realm="r", nonce="n").header_value()) == Challenge(realm="r", nonce="n")


# -- parse edge cases ---------------------------------------------------------


def test_parse_escaped_quotes_and_commas_inside_quotes() -> None:
    creds = Credentials.parse(
        r'Digest username="we \"quote\" \\ here", realm="a, b, c", nonce="n,=", uri="sip:x;a=b,c", '
        'response="r"'
    )
    assert creds.username == 'we "quote" \\ here'
    assert creds.realm == "a, b, c"
    assert creds.nonce == "n,="
    assert creds.uri == "sip:x;a=b,c"


def test_parse_any_order_case_insensitive_unknown_ignored() -> None:
    a = Credentials.parse(
        'DIGEST Response="r" ,URI="sip:x",  NONCE="n",foo=bar, Realm="R",userhash=false,USERNAME="u",'
        ' ALGORITHM=md5, QOP="auth", NC=0000000a, CNonce="c",,'
    )
    assert a == Credentials(username="u", realm="R", nonce="n", uri="sip:x", response="r", algorithm="md5",
                            cnonce="c", nc="0000000a", qop="auth")


def test_parse_tolerates_whitespace_variants() -> None:
    assert parse_params('Digest a=1,b="2" , c = "3"\t,\r\n d=4') == {"a": "1", "b": "2", "c": "3", "d": "4"}
    assert parse_params("  Digest   ") == {}


def test_parse_unquoted_uri_from_sloppy_phone() -> None:
    creds = Credentials.parse('Digest username="u",realm="r",nonce="n",uri=sip:10.0.0.1:5060,response="x"')
    assert creds.uri == "sip:10.0.0.1:5060"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic dXNlcjpwYXNz",
        'Digestusername="u"',
        'Digest username="u", realm="r", nonce="n", uri="sip:x"',  # no response
        'Digest realm="r", nonce="n", uri="sip:x", response="x"',  # no username
        'Digest username="u, realm="r", nonce="n", uri="sip:x", response="x"',  # unterminated
        'Digest username="u" realm="r", nonce="n", uri="sip:x", response="x"',  # missing comma
        'Digest username="u", username="v", realm="r", nonce="n", uri="sip:x", response="x"',  # duplicate
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="x", qop=auth',  # qop w/o nc
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="x", qop=auth, nc=1, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="x", qop=auth, nc=0000000g, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="x\\',
        'Digest username=, realm="r", nonce="n", uri="sip:x", response="x"',
        'Digest ="u", realm="r"',
        'Digest username',
        "Digest " + "a" * 9000,
    ],
)
def test_malformed_raise_digest_error(value: str) -> None:
    with pytest.raises(DigestError) as exc:
        Credentials.parse(value)
    assert exc.value.status == 400
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("value", ['Digest nonce="n"', 'Digest realm="r"', "Digest realm=\"r"])
def test_malformed_challenge(value: str) -> None:
    with pytest.raises(DigestError):
        Challenge.parse(value)
