"""Message waiting for phones that SUBSCRIBE to their mailbox (RFC 6665, RFC 3842), as Polycom
and Cisco desk phones do, on a real `linebox run`.

A pjsua2 phone with MWI subscription on is told the mailbox's state in its own dialog when it
subscribes, again when a message is left and when it is deleted with *97, and from then on gets
no unsolicited NOTIFYs besides. On the wire (raw sockets): the SUBSCRIBE is digest-challenged; one
for another extension's mailbox, or for another event package, is refused; an accepted one is
answered 200 with its Expires and followed by a NOTIFY in the dialog; an unsubscribe gets a last
NOTIFY saying "terminated"; a refresh out of CSeq order gets 500.
"""
from __future__ import annotations

import re
import time

from tests.e2e.box import (Box, SipResponse, SipSocket, build_request, digest_authorization, new_call_id,
                           new_tag, pick_challenge)
from tests.e2e.test_voicemail import messages
from tests.peers.netutil import wait_until


def mailbox_box(box_factory) -> Box:
    box = box_factory("mwi", start=False, settings={"call.no_answer_timeout": 3})
    box.cli("voicemail", "enable", "1002")
    return box.start()


def test_a_subscribed_phone_is_told_in_its_dialog_when_a_message_comes_and_goes(box_factory, phones) -> None:
    box = mailbox_box(box_factory)
    a = phones("a1001")
    b = phones("b1002")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002"), mwi_subscribe=300) == 200
    # (the REGISTER's unsolicited NOTIFY may come first: the box cannot know the phone will subscribe)
    first = wait_until(lambda: [e for e in b.events("mwi") if e["subscribed"]], 10,
                       what="the NOTIFY in the SUBSCRIBE's dialog")[0]
    assert first["subscription_state"] == "active;expires=300", first
    since = b.events("mwi").index(first)
    assert "Messages-Waiting: no" in first["body"] and "Voice-Message: 0/0" in first["body"], first

    # b does not answer: after 3 s the caller leaves a message
    a.call("1002")
    b.wait_incoming()
    a.wait_state("CONFIRMED", timeout=15)
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 400, timeout=15)  # greeting and tone
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)               # 3 s of message
    a.hangup()
    a.wait_state("DISCONNECTED")
    wait_until(lambda: messages(box, "1002"), 10, what="the message stored")
    waiting = wait_until(lambda: [e for e in b.events("mwi") if "Messages-Waiting: yes" in e["body"]], 10,
                         what="the NOTIFY saying a message waits")
    assert waiting[-1]["subscribed"] and "Voice-Message: 1/0" in waiting[-1]["body"], waiting

    # the owner deletes it with *97 ... 7: told in the same dialog that nothing waits
    b.call("*97")
    b.wait_state("CONFIRMED")
    wait_until(lambda: messages(box, "1002")[0]["folder"] == "old", 20, what="the message heard")
    b.send_dtmf("7")
    wait_until(lambda: not messages(box, "1002"), 10, what="the message deleted")
    wait_until(lambda: "Voice-Message: 0/0" in b.events("mwi")[-1]["body"], 10, what="the NOTIFY after the delete")
    events = b.events("mwi")[since:]
    assert all(e["subscribed"] for e in events), f"unsolicited NOTIFYs besides the subscription: {events}"
    b.hangup()


class Subscriber:
    """SUBSCRIBE/NOTIFY for 1002's mailbox from a raw socket, answering the digest challenge."""

    def __init__(self, box: Box, sock: SipSocket, user: str = "1002") -> None:
        self.box, self.sock, self.user = box, sock, user
        self.call_id, self.tag, self.cseq = new_call_id(), new_tag(), 0
        self.box_tag: str | None = None

    def subscribe(self, *, mailbox: str | None = None, event: str = "message-summary",
                  expires: int = 600, cseq: int | None = None) -> SipResponse:
        host, port = self.box.sip_hostport
        ruri = f"sip:{mailbox or self.user}@{host}:{port}"

        def build(extra: list[str]) -> bytes:
            self.cseq = cseq if cseq is not None else self.cseq + 1
            raw = build_request("SUBSCRIBE", ruri, sock=self.sock, from_user=self.user, to_uri=ruri,
                                call_id=self.call_id, cseq=self.cseq, from_tag=self.tag, contact_user=self.user,
                                extra=[f"Event: {event}", f"Expires: {expires}",
                                       "Accept: application/simple-message-summary", *extra])
            if self.box_tag:  # inside the dialog
                raw = raw.replace(f"To: <{ruri}>".encode(), f"To: <{ruri}>;tag={self.box_tag}".encode(), 1)
            return raw

        resp = self.sock.request(build([]))
        assert resp is not None, "no answer to SUBSCRIBE"
        if resp.status == 407:
            auth = digest_authorization(pick_challenge(resp), method="SUBSCRIBE", uri=ruri, user=self.user,
                                        password=self.box.secret(self.user))
            resp = self.sock.request(build([f"Proxy-Authorization: {auth}"]))
            assert resp is not None, "no answer to the authenticated SUBSCRIBE"
        return resp

    def notify(self, timeout: float = 5.0) -> str:
        """The next NOTIFY from the box, answered 200."""
        deadline = time.monotonic() + timeout
        while (raw := self.sock.recv_raw(max(0.0, deadline - time.monotonic()))) is not None:
            text = raw.decode()
            if text.startswith("NOTIFY "):
                head = text.split("\r\n\r\n", 1)[0].split("\r\n")
                keep = [h for h in head[1:] if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", h)]
                self.sock.send(("\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0"]) + "\r\n\r\n").encode())
                return text
        raise AssertionError(f"no NOTIFY within {timeout:g} s")


def _header(text: str, name: str) -> str:
    m = re.search(rf"(?im)^{name}[ \t]*:[ \t]*([^\r\n]*)", text)
    return m.group(1).strip() if m else ""


def test_subscribe_on_the_wire(box_factory) -> None:
    box = mailbox_box(box_factory)
    with SipSocket(box.sip_hostport) as sock:
        s = Subscriber(box, sock)
        # not before a digest challenge; not someone else's mailbox; not another event package
        host, port = box.sip_hostport
        raw = build_request("SUBSCRIBE", f"sip:1002@{host}:{port}", sock=sock, from_user="1002",
                            to_uri=f"sip:1002@{host}:{port}", call_id=new_call_id(), cseq=1, from_tag=new_tag(),
                            contact_user="1002", extra=["Event: message-summary"])
        assert sock.request(raw).status == 407
        assert s.subscribe(mailbox="1001").status == 403
        s.call_id = new_call_id()
        r = s.subscribe(event="presence")
        assert r.status == 489 and r.get("allow-events") == "message-summary", r.text()

        # accepted: 200 with the Expires granted and the box's Contact, then the state
        s.call_id = new_call_id()
        r = s.subscribe(expires=600)
        assert r.status == 200 and r.get("expires") == "600" and r.get("contact"), r.text()
        s.box_tag = re.search(r";tag=([^;>\s]+)", r.get("to") or "").group(1)
        n = s.notify()
        assert _header(n, "Event") == "message-summary" and _header(n, "Call-ID") == s.call_id
        assert f"tag={s.box_tag}" in _header(n, "From") and f"tag={s.tag}" in _header(n, "To")
        assert _header(n, "Subscription-State") == "active;expires=600"
        assert "Messages-Waiting: no" in n and "Voice-Message: 0/0" in n, n

        # a refresh that is not newer is refused; a newer one is answered and the state sent again
        assert s.subscribe(expires=600, cseq=s.cseq).status == 500
        r = s.subscribe(expires=120)
        assert r.status == 200 and r.get("expires") == "120", r.text()
        assert _header(s.notify(), "Subscription-State") == "active;expires=120"

        # unsubscribe: answered, and a last NOTIFY says the subscription is over
        r = s.subscribe(expires=0)
        assert r.status == 200, r.text()
        assert _header(s.notify(), "Subscription-State").startswith("terminated")
        # the dialog is gone: a refresh now is not known
        assert s.subscribe(expires=600).status == 481


def test_an_extension_without_a_mailbox_is_refused(box_factory) -> None:
    box = mailbox_box(box_factory)
    with SipSocket(box.sip_hostport) as sock:
        r = Subscriber(box, sock, user="1001").subscribe()
        assert (r.status, r.reason) == (404, "No Mailbox"), r.text()
