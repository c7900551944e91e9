"""SDP parse/serialize round trips and RFC 3264 offer/answer (firmware.sip.sdp)."""

from __future__ import annotations

import pytest

from firmware.sip.sdp import (
    Codec,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    audio_codecs,
    build_answer,
    build_offer,
    is_hold,
    negotiated,
)


def crlf(text: str) -> bytes:
    """Fixture text (one SDP line per source line) as CRLF bytes."""
    return "".join(line + "\r\n" for line in text.strip("\n").split("\n")).encode()


# -- offers as real user agents send them -------------------------------------

PJSUA = crlf("""\
v=0
o=- 3881298491 3881298491 IN IP4 192.168.1.20
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4000 RTP/AVP 96 97 98 99 3 0 8 9 120 121 122
c=IN IP4 192.168.1.20
b=AS:64000
b=TIAS:64000
a=rtcp:4001 IN IP4 192.168.1.20
a=sendrecv
a=rtpmap:96 speex/16000
a=rtpmap:97 speex/8000
a=rtpmap:98 speex/32000
a=rtpmap:99 iLBC/8000
a=fmtp:99 mode=30
a=rtpmap:3 GSM/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:120 telephone-event/16000
a=fmtp:120 0-16
a=rtpmap:121 telephone-event/8000
a=fmtp:121 0-16
a=rtpmap:122 telephone-event/32000
a=fmtp:122 0-16
a=ssrc:1350727564 cname:5c2a6f0e1d4b3a29
""")

LINPHONE = crlf("""\
v=0
o=alice 1573 2841 IN IP4 192.168.1.30
s=Talk
c=IN IP4 192.168.1.30
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 SILK/16000
a=rtpmap:98 speex/16000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96
a=rtpmap:96 VP8/90000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack pli
""")

YEALINK = crlf("""\
v=0
o=- 20012 20012 IN IP4 192.168.1.40
s=SDP data
c=IN IP4 192.168.1.40
t=0 0
m=audio 11780 RTP/AVP 0 8 18 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:9 G722/8000
a=fmtp:101 0-15
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=sendrecv
""")

# Yealink putting the call on hold (re-INVITE).
YEALINK_HOLD = YEALINK.replace(b"20012 20012", b"20012 20013").replace(b"a=sendrecv", b"a=sendonly")

POLYCOM = crlf("""\
v=0
o=- 1606395934 1606395934 IN IP4 192.168.1.50
s=Polycom IP Phone
c=IN IP4 192.168.1.50
t=0 0
a=sendrecv
m=audio 2222 RTP/AVP 9 102 0 8 18 127
a=rtpmap:9 G722/8000
a=rtpmap:102 G7221/16000
a=fmtp:102 bitrate=32000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:127 telephone-event/8000
""")

# sipp's uac scenario (scenario files are LF-only; sipp sends what is in the file).
SIPP_LF = b"""v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# RFC 2543-style hold from an old gateway: c=0.0.0.0, PCMA only, no rtpmap.
OLD_HOLD = crlf("""\
v=0
o=GW 1 2 IN IP4 10.1.1.1
s=session
c=IN IP4 0.0.0.0
t=0 0
m=audio 16384 RTP/AVP 8
""")

IPV6 = crlf("""\
v=0
o=- 42 42 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 30000 RTP/AVP 8 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
""")

# RFC 4566 §5 example, with the optional lines the model keeps in `extra`.
RFC4566 = crlf("""\
v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
r=7d 1h 0 25h
t=2873397497 2873404697
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372/2 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
""")

FIXTURES = {
    "pjsua": PJSUA,
    "linphone": LINPHONE,
    "yealink": YEALINK,
    "yealink_hold": YEALINK_HOLD,
    "polycom": POLYCOM,
    "old_hold": OLD_HOLD,
    "ipv6": IPV6,
    "rfc4566": RFC4566,
}


# -- parse / serialize -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_round_trip(name: str) -> None:
    raw = FIXTURES[name]
    sd = SessionDescription.parse(raw)
    assert bytes(sd) == raw
    assert bytes(SessionDescription.parse(bytes(sd))) == raw


def test_lf_only_accepted_and_written_back_with_crlf() -> None:
    sd = SessionDescription.parse(SIPP_LF)
    assert bytes(sd) == SIPP_LF.replace(b"\n", b"\r\n")
    assert audio_codecs(sd) == [Codec("PCMU", 0)]
    # missing final newline and trailing blank lines are tolerated
    assert bytes(SessionDescription.parse(SIPP_LF.rstrip(b"\n"))) == bytes(sd)
    assert bytes(SessionDescription.parse(SIPP_LF + b"\r\n\r\n")) == bytes(sd)


def test_pjsua_fields() -> None:
    sd = SessionDescription.parse(PJSUA)
    assert sd.version == 0
    assert sd.origin == Origin("-", "3881298491", "3881298491", "IN", "IP4", "192.168.1.20")
    assert sd.session_name == "pjmedia"
    assert sd.connection is None
    assert sd.timing == "0 0"
    assert sd.attributes == [("X-nat", "0")]
    assert sd.extra == [("b", "AS:84")]
    (m,) = sd.media
    assert (m.media, m.port, m.proto) == ("audio", 4000, "RTP/AVP")
    assert m.formats == ["96", "97", "98", "99", "3", "0", "8", "9", "120", "121", "122"]
    assert m.connection == "192.168.1.20"
    assert sd.connection_for(m) == "192.168.1.20"
    assert m.extra == [("b", "AS:64000"), ("b", "TIAS:64000")]
    assert m.attributes[0] == ("rtcp", "4001 IN IP4 192.168.1.20")
    assert m.attributes[1] == ("sendrecv", None)
    assert m.direction == "sendrecv"
    assert m.ptime is None
    assert m.rtpmap[99] == ("iLBC", 8000, None)
    assert list(m.rtpmap) == [96, 97, 98, 99, 3, 0, 8, 9, 120, 121, 122]
    assert m.fmtp == {99: "mode=30", 120: "0-16", 121: "0-16", 122: "0-16"}
    assert [(c.name, c.pt, c.rate) for c in audio_codecs(sd)][-5:] == [
        ("PCMA", 8, 8000),
        ("G722", 9, 8000),
        ("telephone-event", 120, 16000),
        ("telephone-event", 121, 8000),
        ("telephone-event", 122, 32000),
    ]


def test_linphone_static_pts_implied_and_video() -> None:
    sd = SessionDescription.parse(LINPHONE)
    audio, video = sd.media
    # 0, 8 and 18 carry no a=rtpmap: the RFC 3551 static table fills them in.
    assert audio.rtpmap[0] == ("PCMU", 8000, None)
    assert audio.rtpmap[8] == ("PCMA", 8000, None)
    assert audio.rtpmap[18] == ("G729", 8000, None)
    assert audio.rtpmap[96] == ("opus", 48000, "2")
    assert audio.fmtp[18] == "annexb=yes"
    assert sd.connection_for(audio) == sd.connection_for(video) == "192.168.1.30"
    assert video.rtpmap == {96: ("VP8", 90000, None)}
    assert sd.attributes[0][0] == "rtcp-xr"


def test_yealink_and_polycom_views() -> None:
    y = SessionDescription.parse(YEALINK)
    assert y.media[0].ptime == 20
    assert audio_codecs(y)[-1] == Codec("telephone-event", 101, 8000, "0-15")
    p = SessionDescription.parse(POLYCOM)
    m = p.media[0]
    assert m.direction == "sendrecv" and m.direction_attribute() is None
    assert p.direction_for(m) == "sendrecv"  # session-level a=sendrecv
    assert audio_codecs(p)[0] == Codec("G722", 9, 8000)
    assert Codec("G7221", 102, 16000, "bitrate=32000") in audio_codecs(p)


def test_rfc4566_extras_and_multicast() -> None:
    sd = SessionDescription.parse(RFC4566)
    assert sd.connection == "224.2.17.12/127"
    assert sd.timing == "2873397496 2873404696"
    assert [t for t, _ in sd.extra] == ["i", "u", "e", "r", "t"]
    assert sd.media[1].port == 51372 and sd.media[1].port_count == 2
    assert sd.direction_for(sd.media[0]) == "recvonly"
    assert sd.media[1].rtpmap == {99: ("h263-1998", 90000, None)}


def test_direction_setter_and_repr() -> None:
    sd = SessionDescription.parse(YEALINK)
    m = sd.media[0]
    m.direction = "inactive"
    assert m.attributes[-1] == ("inactive", None)
    assert sum(1 for n, _ in m.attributes if n in ("sendrecv", "inactive")) == 1
    assert b"a=inactive\r\n" in bytes(sd) and b"a=sendrecv" not in bytes(sd)
    assert "direction='inactive'" in repr(m)
    with pytest.raises(ValueError):
        m.direction = "both"


def test_serialize_built_from_scratch() -> None:
    sd = SessionDescription(
        version=0,
        origin=Origin("-", "1", "2", "IN", "IP4", "10.0.0.1"),
        session_name="x",
        connection="10.0.0.1",
        media=[MediaDescription("audio", 5000, "RTP/AVP", ["0"], attributes=[("rtpmap", "0 PCMU/8000")])],
    )
    assert bytes(sd) == crlf("""\
v=0
o=- 1 2 IN IP4 10.0.0.1
s=x
c=IN IP4 10.0.0.1
t=0 0
m=audio 5000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\ns=-\r\n",  # v= not first
        b"v=0\r\ns=-\r\no=- 1 1 IN IP4 1.2.3.4\r\n",  # s= before o=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n",  # no s=
        b"v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # version
        b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # o= with 5 fields
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nv=0\r\n",  # repeated v=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 70000 RTP/AVP 0\r\n",  # port range
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio -1 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio abc RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP PCMU\r\n",  # non-numeric PT
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP 128\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP\r\n",  # no formats
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4\r\n",  # c= without address
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\n",  # addrtype mismatch
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nx=unknown\r\n",  # unknown type (RFC 4566 §5)
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nnot a line\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\na=\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\nt=0 0\r\n",  # t= in media
    ],
)
def test_malformed_raise_sdp_error(raw: bytes) -> None:
    with pytest.raises(SdpError) as exc:
        SessionDescription.parse(raw)
    assert exc.value.status == 400


def test_non_rtp_formats_are_not_payload_types() -> None:
    raw = crlf("""\
v=0
o=- 1 1 IN IP4 1.2.3.4
s=-
t=0 0
m=image 4002 udptl t38
a=T38FaxVersion:0
""")
    sd = SessionDescription.parse(raw)
    assert sd.media[0].formats == ["t38"] and sd.media[0].rtpmap == {}
    assert bytes(sd) == raw


# -- offer / answer ----------------------------------------------------------------


def answer(offer: bytes, **kw):
    kw.setdefault("address", "192.168.1.2")
    kw.setdefault("port", 20000)
    return build_answer(SessionDescription.parse(offer), session_id=7, version=1, **kw)


def test_build_offer_exact_bytes_and_reparse() -> None:
    codecs = [Codec("PCMU", 0), Codec("PCMA", 8), Codec("telephone-event", 101, fmtp="0-16")]
    sd = build_offer(address="192.168.1.2", port=20000, codecs=codecs, session_id=99, version=1)
    assert bytes(sd) == crlf("""\
v=0
o=- 99 1 IN IP4 192.168.1.2
s=LineBox
c=IN IP4 192.168.1.2
t=0 0
m=audio 20000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
""")
    again = SessionDescription.parse(bytes(sd))
    assert audio_codecs(again) == codecs
    assert not is_hold(again)
    hold = build_offer(address="192.168.1.2", port=20000, codecs=codecs[:1], direction="sendonly",
                       session_id=99, version=2)
    assert is_hold(hold)


def test_answer_yealink_picks_first_supported_keeps_te_pt() -> None:
    sd, chosen = answer(YEALINK)
    assert chosen == [Codec("PCMU", 0), Codec("telephone-event", 101, 8000, "0-15")]
    assert negotiated(sd) == chosen
    assert bytes(sd) == crlf("""\
v=0
o=- 7 1 IN IP4 192.168.1.2
s=LineBox
c=IN IP4 192.168.1.2
t=0 0
m=audio 20000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
""")


def test_answer_prefer_order() -> None:
    _, chosen = answer(YEALINK, prefer=["PCMA", "PCMU"])
    assert chosen[0] == Codec("PCMA", 8)
    # a preferred codec we do not support is skipped, falling back to offer order
    _, chosen = answer(YEALINK, prefer=["G722"])
    assert chosen[0] == Codec("PCMU", 0)
    _, chosen = answer(POLYCOM, supported=["PCMU", "PCMA", "G722"], prefer=["pcma"])
    assert chosen == [Codec("PCMA", 8), Codec("telephone-event", 127)]


def test_answer_pjsua_te_at_8000_with_its_pt() -> None:
    sd, chosen = answer(PJSUA)
    assert chosen == [Codec("PCMU", 0), Codec("telephone-event", 121, 8000, "0-16")]
    assert sd.media[0].formats == ["0", "121"]


def test_answer_linphone_rejects_video_with_port_zero() -> None:
    sd, chosen = answer(LINPHONE)
    assert chosen == [Codec("PCMU", 0), Codec("telephone-event", 100, 8000)]
    audio, video = sd.media
    assert (audio.media, audio.port) == ("audio", 20000)
    assert (video.media, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["96"])
    assert video.attributes == [] and video.connection is None
    assert b"m=video 0 RTP/AVP 96\r\n" in bytes(sd)
    assert SessionDescription.parse(bytes(sd)).media[1].port == 0


def test_answer_pcmu_only_vs_pcma_only_is_488() -> None:
    with pytest.raises(SdpError) as exc:
        answer(SIPP_LF, supported=["PCMA"])
    assert exc.value.status == 488


def test_answer_no_audio_or_only_srtp_is_488() -> None:
    srtp = crlf("""\
v=0
o=- 1 1 IN IP4 1.2.3.4
s=-
c=IN IP4 1.2.3.4
t=0 0
m=audio 4000 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
""")
    with pytest.raises(SdpError) as exc:
        answer(srtp)
    assert exc.value.status == 488
    with pytest.raises(SdpError):
        answer(crlf("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=image 4002 udptl t38"))


def test_answer_second_audio_and_disabled_streams_rejected() -> None:
    offer = crlf("""\
v=0
o=- 1 1 IN IP4 1.2.3.4
s=-
c=IN IP4 1.2.3.4
t=0 0
m=audio 0 RTP/AVP 0
m=audio 4000 RTP/AVP 8
m=audio 4002 RTP/AVP 0
""")
    sd, chosen = answer(offer)
    assert [m.port for m in sd.media] == [0, 20000, 0]
    assert chosen == [Codec("PCMA", 8)]
    assert negotiated(sd) == chosen
    assert audio_codecs(sd) == []  # the first audio m-line is the rejected one


def test_answer_hold_sendonly_mirrors_recvonly() -> None:
    assert is_hold(SessionDescription.parse(YEALINK_HOLD))
    sd, _ = answer(YEALINK_HOLD)
    assert sd.media[0].direction == "recvonly"
    for offered, mirrored in [("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")]:
        sd, _ = answer(YEALINK.replace(b"a=sendrecv", b"a=" + offered.encode()))
        assert sd.media[0].direction == mirrored


def test_answer_session_level_direction() -> None:
    sd, _ = answer(POLYCOM.replace(b"t=0 0\r\na=sendrecv", b"t=0 0\r\na=sendonly"))
    assert sd.media[0].direction == "recvonly"


def test_answer_rfc2543_hold_c_zero() -> None:
    offer = SessionDescription.parse(OLD_HOLD)
    assert offer.connection_for(offer.media[0]) == "0.0.0.0"
    assert is_hold(offer)
    sd, chosen = answer(OLD_HOLD)
    assert chosen == [Codec("PCMA", 8)]  # static PT without a=rtpmap
    assert sd.media[0].direction == "recvonly"


def test_answer_direction_argument_restricts() -> None:
    sd, _ = answer(YEALINK, direction="sendonly")  # we put the phone on hold
    assert sd.media[0].direction == "sendonly"
    sd, _ = answer(YEALINK_HOLD, direction="sendrecv")  # cannot send to a sendonly offerer
    assert sd.media[0].direction == "recvonly"
    sd, _ = answer(YEALINK_HOLD, direction="sendonly")
    assert sd.media[0].direction == "inactive"


def test_answer_ipv6() -> None:
    offer = SessionDescription.parse(IPV6)
    assert offer.connection == "2001:db8::10" and offer.origin.addrtype == "IP6"
    sd, chosen = answer(IPV6, address="2001:db8::1")
    assert chosen == [Codec("PCMA", 8), Codec("telephone-event", 101, 8000, "0-16")]
    raw = bytes(sd)
    assert b"o=- 7 1 IN IP6 2001:db8::1\r\n" in raw
    assert b"c=IN IP6 2001:db8::1\r\n" in raw
    assert bytes(SessionDescription.parse(raw)) == raw


def test_answer_sipp_lf_offer() -> None:
    sd, chosen = answer(SIPP_LF)
    assert chosen == [Codec("PCMU", 0)]
    assert b"telephone-event" not in bytes(sd)
