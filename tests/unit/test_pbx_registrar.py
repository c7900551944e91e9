"""Registrar policy (RFC 3261 §10.3) and the B2BUA's media transforms."""

from __future__ import annotations

from firmware.media import g711
from firmware.pbx.b2bua import disposition, transforms
from firmware.pbx.registrar import Registrar, _http_date
from firmware.sip.message import Message, Request
from firmware.sip.sdp import Codec
from firmware.store.db import Binding


def register(contact: str, *, expires: str | None = "3600", call_id: str = "c1", cseq: int = 1) -> Request:
    hdrs = [("Via", "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK1;rport"), ("Max-Forwards", "70"),
            ("From", "<sip:1001@pbx>;tag=a"), ("To", "<sip:1001@pbx>"), ("Call-ID", call_id),
            ("CSeq", f"{cseq} REGISTER"), ("Contact", contact)]
    if expires is not None:
        hdrs.append(("Expires", expires))
    msg = Message.parse(bytes(Request("REGISTER", "sip:pbx", hdrs)))
    assert isinstance(msg, Request)
    return msg


def make() -> tuple[Registrar, list[Binding], list[tuple[str, str]]]:
    saved: list[Binding] = []
    gone: list[tuple[str, str]] = []
    return Registrar(persist=saved.append, forget=lambda a, c: gone.append((a, c))), saved, gone


def test_register_binds_the_real_source_and_lists_contacts() -> None:
    reg, saved, _ = make()
    r = reg.register(register("<sip:1001@192.168.1.20:5062>"), user="1001", transport="udp",
                     source=("203.0.113.4", 40000), now=1000.0, to_tag="t")
    assert r.status == 200 and "expires=3600" in r.headers.get("Contact")
    [b] = reg.lookup("1001", 1001.0)
    assert b.source == ("203.0.113.4", 40000) and saved == [b]
    assert reg.is_registered_ip("203.0.113.4")


def test_several_contacts_expiry_and_unregister() -> None:
    reg, _, gone = make()
    reg.register(register("<sip:1001@10.0.0.1:5060>", call_id="a"), user="1001", transport="udp",
                 source=("10.0.0.1", 5060), now=0.0, to_tag="t")
    reg.register(register("<sip:1001@10.0.0.2:5060>;expires=120", call_id="b"), user="1001", transport="tcp",
                 source=("10.0.0.2", 5060), now=0.0, to_tag="t")
    assert len(reg.lookup("1001", 1.0)) == 2
    assert [b.contact for b in reg.lookup("1001", 121.0)] == ["sip:1001@10.0.0.1:5060"]
    assert [b.contact for b in reg.expire(121.0)] == ["sip:1001@10.0.0.2:5060"]
    r = reg.register(register("*", expires="0", call_id="a", cseq=2), user="1001", transport="udp",
                     source=("10.0.0.1", 5060), now=200.0, to_tag="t")
    assert r.status == 200 and reg.lookup("1001", 200.0) == [] and not reg.is_registered_ip("10.0.0.1")
    assert ("1001", "sip:1001@10.0.0.1:5060") in gone


def test_interval_too_brief_and_out_of_order() -> None:
    reg, _, _ = make()
    r = reg.register(register("<sip:1001@10.0.0.1>", expires="5"), user="1001", transport="udp",
                     source=("10.0.0.1", 5060), now=0.0, to_tag="t")
    assert r.status == 423 and r.headers.get("Min-Expires") == "60"
    reg.register(register("<sip:1001@10.0.0.1>", cseq=5), user="1001", transport="udp",
                 source=("10.0.0.1", 5060), now=0.0, to_tag="t")
    r = reg.register(register("<sip:1001@10.0.0.1>", cseq=4), user="1001", transport="udp",
                     source=("10.0.0.1", 5060), now=1.0, to_tag="t")
    assert r.status == 500
    r = reg.register(register("*", expires="30"), user="1001", transport="udp",
                     source=("10.0.0.1", 5060), now=1.0, to_tag="t")
    assert r.status == 400


def test_transforms_pass_through_when_both_sides_agree() -> None:
    a = (Codec("PCMU", 0), Codec("telephone-event", 101))
    assert transforms(a, a) == (None, None)


def test_transforms_transcode_and_remap_dtmf() -> None:
    a = (Codec("PCMU", 0), Codec("telephone-event", 101))
    b = (Codec("PCMA", 8), Codec("telephone-event", 96))
    pt_map, tc = transforms(a, b)
    assert pt_map == {0: 8, 101: 96, 13: 13} and tc == {0: g711.ULAW_TO_ALAW}
    pt_map, tc = transforms(b, a)
    assert pt_map == {8: 0, 96: 101, 13: 13} and tc == {8: g711.ALAW_TO_ULAW}


def test_dispositions() -> None:
    assert disposition(True, "caller-hangup") == "ANSWERED"
    assert disposition(False, "busy") == "BUSY"
    assert disposition(False, "cancel") == "NO ANSWER"
    assert disposition(False, "not-found") == "FAILED"


def test_destination_follows_nat_and_same_host_contacts() -> None:
    from firmware.pbx.registrar import destination

    natted = Binding("1001", "sip:1001@192.168.1.20:5062", 0.0, "udp", ("203.0.113.4", 40000), "c", 1)
    assert destination(natted) == ("203.0.113.4", 40000)
    same_host = Binding("1001", "sip:1001@127.0.0.1:5070", 0.0, "udp", ("127.0.0.1", 41000), "c", 1)
    assert destination(same_host) == ("127.0.0.1", 5070)  # e.g. a third-party registration
    tcp = Binding("1001", "sip:1001@127.0.0.1:5070;transport=tcp", 0.0, "tcp", ("127.0.0.1", 41000), "c", 1)
    assert destination(tcp) == ("127.0.0.1", 41000)  # back through the phone's connection


def test_date_header_is_what_email_utils_writes() -> None:
    """The 200's Date (RFC 3261 §20.17) is formatted here, not by email.utils (kept out of the box)."""
    import random
    from email.utils import formatdate

    rng = random.Random(7)
    for ts in [0.0, 1.9999999, 951782400.0, 1700000000.9999996, 2**31, 4102444800.5] + \
            [rng.uniform(0, 4e9) for _ in range(2000)]:
        assert _http_date(ts) == formatdate(ts, usegmt=True)
    assert _http_date(1.7e9) == "Tue, 14 Nov 2023 22:13:20 GMT"
