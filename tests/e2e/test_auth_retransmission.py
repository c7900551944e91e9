"""Issue 11: an INVITE retransmitted with the same credentials gets the same answer, not a new
407 (single-use nonces must not turn retransmissions into failures). Raw SIP over UDP from
sockets this file owns, against `linebox run`."""
from __future__ import annotations

import re

from tests.e2e.box import (Box, SipSocket, build_ack, build_request, digest_authorization, new_call_id,
                           new_tag, parse_challenge, pick_challenge, sdp_offer)


def _invite(sock: SipSocket, box: Box, *, call_id: str, tag: str, cseq: int, branch: str,
            auth: str | None = None, to: str = "1999") -> bytes:
    host, port = box.sip_hostport
    ruri = f"sip:{to}@{host}:{port}"
    return build_request("INVITE", ruri, sock=sock, from_user="1001", to_uri=ruri, call_id=call_id, cseq=cseq,
                         from_tag=tag, branch=branch, contact_user="1001",
                         extra=[f"Proxy-Authorization: {auth}"] if auth else [],
                         body=sdp_offer(sock.local[0], 40000), content_type="application/sdp")


def _to_tag(resp) -> str | None:
    m = re.search(r";tag=([^;,\s]+)", resp.get("to") or "")
    return m.group(1) if m else None


def test_invite_retransmitted_with_the_same_credentials_gets_the_same_answer(box: Box):
    host, port = box.sip_hostport
    with SipSocket(box.sip_hostport) as s:
        call_id, tag = new_call_id(), new_tag()
        first = _invite(s, box, call_id=call_id, tag=tag, cseq=1, branch="z9hG4bK-e2e-1")
        ch = s.request(first)
        assert ch is not None and ch.status == 407, ch and ch.text()
        s.send(build_ack(first, ch))
        auth = digest_authorization(pick_challenge(ch), method="INVITE", uri=f"sip:1999@{host}:{port}",
                                    user="1001", password=box.secret("1001"))
        second = _invite(s, box, call_id=call_id, tag=tag, cseq=2, branch="z9hG4bK-e2e-2", auth=auth)
        final = s.request(second)
        assert final is not None and final.status >= 300 and final.status != 407, final and final.text()

        # The same bytes again (same branch): a retransmission. Its transaction answers with
        # the response it gave, never a new challenge: the nonce was spent by this very request.
        again = s.request(second)
        assert again is not None, "no answer to the retransmitted INVITE"
        assert (again.status, _to_tag(again)) == (final.status, _to_tag(final)), again.text()
        s.send(build_ack(second, final))

        # The same request with a new branch is another transaction (§17.2.3), so it cannot get
        # the first one's answer. While the box still knows that transaction it is a merged
        # request (§8.2.2.2: same From tag, Call-ID and CSeq): 482, and no second call.
        merged = s.request(_invite(s, box, call_id=call_id, tag=tag, cseq=2, branch="z9hG4bK-e2e-3", auth=auth))
        assert merged is not None and merged.status == 482, merged and merged.text()

        # The same credentials in a request of its own (a replay of captured credentials): the
        # nonce is spent, so 407 stale=true with a fresh nonce -- an honest client answers it
        # with one more round trip, a replayer gets nothing it can use (and it counts toward a ban).
        other_id, other_tag = new_call_id(), new_tag()
        replay = _invite(s, box, call_id=other_id, tag=other_tag, cseq=2, branch="z9hG4bK-e2e-4", auth=auth)
        r = s.request(replay)
        assert r is not None and r.status == 407, r and r.text()
        fresh = parse_challenge(pick_challenge(r))
        assert fresh.get("stale", "").lower() == "true", r.text()
        assert fresh["nonce"] != parse_challenge(pick_challenge(ch))["nonce"]
        s.send(build_ack(replay, r))
    assert box.calls() == []
