"""Message-waiting subscriptions (RFC 6665 / RFC 3842) as the box decides them: who may subscribe
to what, for how long, refreshes and their order, the end of a subscription, and the NOTIFY's
fields and body."""
from __future__ import annotations

import pytest

from firmware.pbx.subscriptions import (MAX_EXPIRES, MAX_PER_USER, MIN_EXPIRES, Subscriptions, notify,
                                        summary_body)
from firmware.sip.message import Message, Request

SOURCE = ("192.168.1.20", 5062)


def subscribe(*, ruri: str = "sip:1001@pbx", event: str | None = "message-summary",
              expires: str | None = "600", cseq: int = 1, to_tag: str | None = None,
              contact: str | None = "<sip:1001@192.168.1.20:5062>", call_id: str = "sub-1") -> Request:
    hdrs = [("Via", "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK1;rport"), ("Max-Forwards", "70"),
            ("From", "<sip:1001@pbx>;tag=phone"), ("To", "<sip:1001@pbx>" + (f";tag={to_tag}" if to_tag else "")),
            ("Call-ID", call_id), ("CSeq", f"{cseq} SUBSCRIBE")]
    if contact is not None:
        hdrs.append(("Contact", contact))
    if event is not None:
        hdrs.append(("Event", event))
    if expires is not None:
        hdrs.append(("Expires", expires))
    msg = Message.parse(bytes(Request("SUBSCRIBE", ruri, hdrs)))
    assert isinstance(msg, Request)
    return msg


def accept(subs: Subscriptions, request: Request | None = None, *, now: float = 1000.0,
           mailboxes: tuple[str, ...] = ("1001",)):
    return subs.subscribe(request or subscribe(), user="1001", mailboxes=mailboxes, transport="udp",
                          remote=SOURCE, now=now, local_tag="box")


def test_a_phone_subscribes_to_its_own_mailbox() -> None:
    subs = Subscriptions()
    v = accept(subs, subscribe(event="Message-Summary ; ID=7"))
    assert (v.status, dict(v.headers)["Expires"], v.state) == (200, "600", "active;expires=600")
    sub = v.subscription
    assert sub is not None and subs.get("sub-1", "box") is sub and subs.of_mailbox("1001") == [sub]
    assert (sub.target, sub.remote, sub.remote_tag, sub.event_id) == \
        ("sip:1001@192.168.1.20:5062", SOURCE, "phone", "7")
    assert sub.remaining(1100.0) == 500


@pytest.mark.parametrize("request_, status, header", [
    (subscribe(event="presence"), 489, ("Allow-Events", "message-summary")),
    (subscribe(event=None), 489, ("Allow-Events", "message-summary")),
    (subscribe(event="message-summary;=7"), 400, None),       # a malformed parameter
    (subscribe(ruri="sip:1002@pbx"), 403, None),                # someone else's mailbox
    (subscribe(expires="30"), 423, ("Min-Expires", str(MIN_EXPIRES))),
    (subscribe(contact=None), 400, None),
])
def test_what_is_refused(request_: Request, status: int, header) -> None:
    subs = Subscriptions()
    v = accept(subs, request_)
    assert v.status == status and v.subscription is None and len(subs) == 0
    if header:
        assert header in v.headers


def test_an_extension_without_a_mailbox_gets_404() -> None:
    subs = Subscriptions()
    v = accept(subs, mailboxes=("1002",))
    assert (v.status, v.reason, len(subs)) == (404, "No Mailbox", 0)


def test_expires_defaults_and_is_capped() -> None:
    subs = Subscriptions()
    assert accept(subs, subscribe(expires=None)).state == "active;expires=3600"
    assert accept(Subscriptions(), subscribe(expires="999999")).state == f"active;expires={MAX_EXPIRES}"


def test_expires_zero_fetches_the_state_once_and_keeps_nothing() -> None:
    subs = Subscriptions()
    v = accept(subs, subscribe(expires="0"))
    assert v.status == 200 and v.subscription is not None and v.state.startswith("terminated")
    assert len(subs) == 0


def test_refresh_unsubscribe_and_cseq_order() -> None:
    subs = Subscriptions()
    sub = accept(subs).subscription
    assert sub is not None
    assert subs.refresh(sub, subscribe(cseq=1, to_tag="box"), 1010.0).status == 500  # not newer
    v = subs.refresh(sub, subscribe(cseq=2, to_tag="box", expires="120"), 1010.0)
    assert (v.status, v.state, sub.expires_at) == (200, "active;expires=120", 1130.0)
    assert subs.refresh(sub, subscribe(cseq=3, to_tag="box", event="presence"), 1020.0).status == 489
    v = subs.refresh(sub, subscribe(cseq=4, to_tag="box", expires="0"), 1020.0)
    assert v.status == 200 and v.state.startswith("terminated") and len(subs) == 0


def test_an_extension_holds_a_bounded_number_of_subscriptions() -> None:
    subs = Subscriptions()
    first = None
    for i in range(MAX_PER_USER + 3):   # a phone rebooting over and over: a new dialog each time
        v = subs.subscribe(subscribe(call_id=f"sub-{i}"), user="1001", mailboxes=("1001",), transport="udp", remote=SOURCE,
                           now=1000.0 + i, local_tag="box")
        assert v.status == 200
        first = first or v.subscription
    mine = subs.of_mailbox("1001")
    assert len(mine) == MAX_PER_USER and first not in mine
    assert sorted(s.call_id for s in mine) == sorted(f"sub-{i}" for i in range(3, MAX_PER_USER + 3))


def test_expired_and_orphaned_subscriptions_are_removed() -> None:
    subs = Subscriptions()
    sub = accept(subs).subscription
    assert subs.expired(1599.0) == [] and subs.expired(1600.0) == [sub] and len(subs) == 0
    sub = accept(subs).subscription
    assert subs.orphaned({"1001"}, {"1001"}) == []
    assert subs.orphaned({"1001"}, set()) == [sub] and len(subs) == 0   # mailbox removed
    sub = accept(subs).subscription
    assert subs.orphaned(set(), {"1001"}) == [sub]                       # extension removed


def _sent(req: Request) -> Message:
    """The request as the far end parses it (the transport adds the Via)."""
    req.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1", first=True)
    return Message.parse(bytes(req))


def test_the_notify_is_in_the_dialog_and_counts_the_messages() -> None:
    subs = Subscriptions()
    sub = accept(subs, subscribe(event="message-summary;id=7")).subscription
    assert sub is not None
    body = summary_body("1001", "pbx", 2, 5)
    first = _sent(notify(sub, state="active;expires=600", body=body, contact="<sip:127.0.0.1:5060>",
                         user_agent="LineBox"))
    second = _sent(notify(sub, state="terminated;reason=timeout", body=body, contact="<sip:127.0.0.1:5060>",
                          user_agent="LineBox"))
    assert isinstance(first, Request) and first.method == "NOTIFY"
    assert str(first.request_uri) == "sip:1001@192.168.1.20:5062"
    assert (first.call_id, first.from_.tag, first.to.tag) == ("sub-1", "box", "phone")
    assert (first.cseq.seq, second.cseq.seq) == (1, 2)
    h = first.headers
    assert (h.get("Event"), h.get("Subscription-State"), h.get("Content-Type")) == \
        ("message-summary;id=7", "active;expires=600", "application/simple-message-summary")
    assert first.body == (b"Messages-Waiting: yes\r\nMessage-Account: sip:1001@pbx\r\n"
                          b"Voice-Message: 2/5\r\n")
    assert summary_body("1001", "pbx", 0, 3).startswith(b"Messages-Waiting: no\r\n")
    assert second.headers.get("Subscription-State") == "terminated;reason=timeout"
