"""No reflection amplification: an INVITE without credentials, from an address that never ACKs
(a forged source), draws exactly one 407, never the retransmissions of a kept transaction.
Raw SIP over UDP from a socket this file owns, against `linebox run`."""
from __future__ import annotations

import time

from tests.e2e.box import Box, SipSocket, build_request, new_call_id, new_tag, sdp_offer

INVITES = 40
LISTEN = 4.0    # a kept INVITE transaction re-sends its 407 at 0.5, 1.5 and 3.5 s (timer G)


def _invite(sock: SipSocket, box: Box, branch: str) -> bytes:
    host, port = box.sip_hostport
    ruri = f"sip:1002@{host}:{port}"
    return build_request("INVITE", ruri, sock=sock, from_user="1001", to_uri=ruri, call_id=new_call_id(), cseq=1,
                         from_tag=new_tag(), branch=branch, contact_user="1001",
                         body=sdp_offer(sock.local[0], 40000), content_type="application/sdp")


def _collect(sock: SipSocket, seconds: float) -> list[int]:
    statuses = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        resp = sock.recv(left)
        if resp is not None:
            statuses.append(resp.status)
    return statuses


def test_an_invite_that_is_never_acked_draws_one_challenge(box: Box):
    with SipSocket(box.sip_hostport, local_ip="127.0.0.7") as spoofed:
        invites = [_invite(spoofed, box, f"z9hG4bK-spoof-{i}") for i in range(INVITES)]
        for data in invites:
            spoofed.send(data)
        assert _collect(spoofed, LISTEN) == [407] * INVITES
        # A retransmission of one of them is a request again and is answered again: still one
        # datagram out per datagram in.
        spoofed.send(invites[0])
        assert _collect(spoofed, 1.0) == [407]
    assert box.calls() == []
