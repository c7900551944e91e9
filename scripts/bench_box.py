#!/usr/bin/env python3
"""Whole-box benchmark (not in CI): the real `linebox run` under SIP and RTP load.

The box runs as a subprocess pinned to one core (``taskset -c 0``); this process is the load
generator, pinned to the other core. The generator is a small UA built on the sans-I/O parts of
``firmware.sip`` (Message.parse, make_response, digest Credentials.answer, SDP offer/answer):
one non-blocking UDP socket per extension for SIP, many calls in flight, one epoll loop.

Phases, all bounded in time:

1. idle RSS of the box (after start, before any registration);
2. call setups per second: a caller extension calls a callee extension that answers at once,
   ``--window`` calls in flight, for ``--setup-seconds``:
   INVITE -> 407 -> ACK, INVITE with credentials -> (100) -> 180 -> 200 -> ACK, then BYE -> 200.
   Reports completed setups/s, failures, setup latency, box CPU per setup, generator CPU;
3. relayed calls, for each N of ``--calls``: N calls set up through the box, each with its own
   caller and callee RTP socket here, each sending a 20 ms G.711 packet (12 + 160 bytes, send
   time in the payload) both ways at real pace for ``--seconds`` to the ports the box gave in
   its SDP. Reports loss, added one-way delay p50/p99 against a direct loopback baseline of the
   same sockets and pattern in the same run, box CPU µs per relayed packet (/proc/PID/stat over
   the window / packets_relayed from /health), box RSS;
4. (``--find-max``) larger N until loss reaches 0.01 %;
5. leak check: /health calls, transactions and open media endpoints after all BYEs, and the
   box's log scanned for warnings, errors and tracebacks.

    scripts/bench                                       # setup, then this with the defaults
    .venv/bin/python scripts/bench_box.py --calls 50,200,500 --seconds 10 --setup-seconds 10
    .venv/bin/python scripts/bench_box.py --calls 50 --seconds 3 --setup-seconds 3 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.sip.digest import Challenge, Credentials  # noqa: E402
from firmware.sip.message import Message, ParseError, Request, Response, make_response, new_branch, new_tag  # noqa: E402
from firmware.sip.sdp import Codec, SdpError, SessionDescription, build_answer, build_offer  # noqa: E402

HOST = "127.0.0.1"
TICK = 0.020
RTP_HEADER = struct.Struct("!BBHII")
STAMP = struct.Struct("!QI")            # send time (monotonic ns), stream id: start of the payload
PAYLOAD = 160
CALLER, CALLEE = "7001", "7002"
OFFER_CODECS = [Codec("PCMU", 0), Codec("telephone-event", 101, 8000, "0-16")]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the box ----------------------------------------------------------------------------------

def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def family(pid: int) -> list[int]:
    """A process and its children (the box and its media workers)."""
    out = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def register_digest(sock: socket.socket, server: tuple[str, int], domain: str, user: str, password: str, *,
                    contact_port: int | None = None, expires: int = 3600, agent: str = "linebox-bench") -> None:
    """REGISTER ``user`` from the blocking ``sock``, answering a 401/407 with digest credentials
    (RFC 3261 §22; MD5, which every peer offers) until 200. Contact: ``contact_port`` on HOST,
    else the socket's own port."""
    port = sock.getsockname()[1]
    contact = contact_port or port
    cid, tag, auth = new_tag() + "@bench", new_tag(), ""
    for cseq in (1, 2):
        req = (f"REGISTER sip:{domain} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{port};branch={new_branch()};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag={tag}\r\nTo: <sip:{user}@{domain}>\r\n"
               f"Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\n"
               f"Contact: <sip:{user}@{HOST}:{contact};transport=udp>\r\nExpires: {expires}\r\n{auth}"
               f"User-Agent: {agent}\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(req.encode(), server)
        while True:
            resp = Message.parse(sock.recv(65535))
            if isinstance(resp, Response) and resp.status >= 200:
                break
        if resp.status == 200:
            return
        if resp.status not in (401, 407):
            raise RuntimeError(f"REGISTER {user}: {resp.status} {resp.reason}")
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        challenges = [Challenge.parse(v) for v in resp.headers.get_fields(name)]
        ch = next((c for c in challenges if c.algorithm.upper() == "MD5"), challenges[0])
        cred = Credentials.answer(ch, username=user, password=password, method="REGISTER", uri=f"sip:{domain}")
        auth = f"{'Authorization' if resp.status == 401 else 'Proxy-Authorization'}: {cred.header_value()}\r\n"
    raise RuntimeError(f"REGISTER {user}: still challenged after answering")


class Box:
    """`linebox run` in a temp data dir, pinned to ``core`` (a core, or a taskset list "0,1")."""

    def __init__(self, core: int | str, rtp_ports: tuple[int, int]) -> None:
        self.core = core
        self.run_args: list[str] = []   # more `linebox run` options, e.g. --media-workers 1
        self.dir = Path(tempfile.mkdtemp(prefix="linebox-bench-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "box.log"
        self.secrets = {CALLER: secrets.token_urlsafe(18), CALLEE: secrets.token_urlsafe(18)}
        self.rtp_ports = rtp_ports
        self.proc: subprocess.Popen | None = None
        self.linebox = str(ROOT / ".venv" / "bin" / "linebox")

    def cli(self, *args: str) -> None:
        subprocess.run([self.linebox, "--data", str(self.data), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> None:
        self.cli("init")
        for ext, secret in self.secrets.items():
            self.cli("ext", "add", ext, f"--secret={secret}")
        self.cli("set", "security.rate", "100000")
        # the box's own ceiling is measured: no setup-rate cap, no refusal at a saturated core
        self.cli("set", "call.max_setups_per_second", "100000")
        self.cli("set", "call.refuse_overload", "no")
        for _ in range(5):
            self.sip_port, self.http_port = free_port(), free_port(socket.SOCK_STREAM)
            lo, hi = self.rtp_ports
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.core), self.linebox, "--data", str(self.data), "run",
                 "--bind", HOST, "--sip-port", str(self.sip_port), "--http-port", str(self.http_port),
                 "--rtp-ports", f"{lo}-{hi}", *self.run_args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.health()
                    return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"linebox run did not come up; see {self.log_path}:\n{self.log_tail()}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://{HOST}:{self.http_port}/health", timeout=5) as r:
            return json.loads(r.read())

    def cpu(self) -> float:
        """User + system CPU seconds of the box process and its media workers."""
        total = 0
        for pid in family(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def mem(self) -> dict[str, float]:
        """VmRSS and VmHWM in MB."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
        return out

    def sip_drops(self) -> int:
        """Datagrams the kernel dropped on the box's SIP socket (receive buffer full), /proc/net/udp."""
        want = f"0100007F:{self.sip_port:04X}"
        try:
            for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
                f = line.split()
                if f[1] == want:
                    return int(f[-1])
        except (OSError, IndexError, ValueError):
            pass
        return -1

    def log_problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if re.search(r" (WARNING|ERROR|CRITICAL) |Traceback|Error:", ln)]

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the load-generating UA -------------------------------------------------------------------

def udp_socket(rcvbuf: int = 1 << 20) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
    s.bind((HOST, 0))
    s.setblocking(False)
    return s


def media_target(body: bytes) -> tuple[str, int] | None:
    try:
        sd = SessionDescription.parse(body)
    except SdpError:
        return None
    m = sd.first_audio()
    if m is None or not m.port:
        return None
    return (sd.connection_for(m) or HOST, m.port)


class OutCall:
    """One call placed by the caller UA."""

    __slots__ = ("cid", "ftag", "branch", "state", "t0", "t_answer", "to", "contact", "rtp", "box_media",
                 "cseq", "error", "t_done", "last", "rtx_at", "rtx_gap")

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.ftag = new_tag()
        self.branch = new_branch()
        self.state = "invite"     # invite -> auth -> answered -> bye -> done | failed
        self.t0 = time.monotonic()
        self.t_answer = 0.0
        self.t_done = 0.0
        self.to = ""
        self.contact = ""
        self.rtp: socket.socket | None = None
        self.box_media: tuple[str, int] | None = None
        self.cseq = 1
        self.error = ""
        self.last = b""           # the request to retransmit (INVITE until a provisional, BYE)
        self.rtx_at = 0.0
        self.rtx_gap = 0.5


class InCall:
    """One call the callee UA answered."""

    __slots__ = ("cid", "tag", "ok", "rtp", "box_media", "acked", "ended")

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.tag = new_tag()
        self.ok: bytes = b""
        self.rtp: socket.socket | None = None
        self.box_media: tuple[str, int] | None = None
        self.acked = False
        self.ended = False


class LoadUa:
    """A caller and a callee extension, each on its own SIP socket, driven by one epoll loop."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self.box_addr = (HOST, box.sip_port)
        self.domain = f"{HOST}:{box.sip_port}"
        self.a = udp_socket(4 << 20)
        self.b = udp_socket(4 << 20)
        self.a_port = self.a.getsockname()[1]
        self.b_port = self.b.getsockname()[1]
        self.ep = select.epoll()
        self.ep.register(self.a.fileno(), select.EPOLLIN)
        self.ep.register(self.b.fileno(), select.EPOLLIN)
        self.out: dict[str, OutCall] = {}
        self.inc: dict[str, InCall] = {}
        self.rtp_socks: dict[int, socket.socket] = {}   # fd -> socket (registered for reading)
        self.want_rtp = False          # open an RTP socket per call leg (relay phase)
        self.on_rtp = None             # fd -> None: called for a readable RTP socket
        self.done: list[OutCall] = []
        self.failed: list[OutCall] = []
        self.unexpected: list[str] = []
        self.n = 0
        self.retransmits = 0
        self._next_rtx_check = 0.0

    # -- plumbing

    def close(self) -> None:
        for s in list(self.rtp_socks.values()):
            self.drop_rtp(s)
        self.ep.close()
        self.a.close()
        self.b.close()

    def new_rtp(self) -> socket.socket:
        s = udp_socket(256 << 10)
        self.rtp_socks[s.fileno()] = s
        self.ep.register(s.fileno(), select.EPOLLIN)
        return s

    def drop_rtp(self, s: socket.socket | None) -> None:
        if s is not None and s.fileno() in self.rtp_socks:
            self.ep.unregister(s.fileno())
            del self.rtp_socks[s.fileno()]
            s.close()

    def poll(self, timeout: float) -> None:
        self.retransmit_due()
        for fd, _ in self.ep.poll(max(timeout, 0.0), 256):
            if fd == self.a.fileno():
                self._drain(self.a, self.on_caller)
            elif fd == self.b.fileno():
                self._drain(self.b, self.on_callee)
            elif self.on_rtp is not None:
                self.on_rtp(fd)
            else:                                  # stray RTP outside a measurement: discard
                try:
                    self.rtp_socks[fd].recv(2048)
                except (BlockingIOError, KeyError):
                    pass

    def _drain(self, sock: socket.socket, handler) -> None:
        for _ in range(64):
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            if not data.strip():
                continue                            # keep-alive
            try:
                msg = Message.parse(data)
            except ParseError as exc:
                self.unexpected.append(f"unparsable message from the box: {exc}")
                continue
            handler(msg)

    # -- registration (blocking, before the load)

    def register_all(self, timeout: float = 10.0) -> None:
        for sock, user in ((self.a, CALLER), (self.b, CALLEE)):
            sock.setblocking(True)
            sock.settimeout(timeout)
            try:
                register_digest(sock, self.box_addr, self.domain, user, self.box.secrets[user])
            finally:
                sock.setblocking(False)

    def _answer(self, resp: Response, header: str, user: str, method: str, uri: str) -> str:
        challenges = [Challenge.parse(v) for v in resp.headers.get_fields(header)]
        ch = next((c for c in challenges if c.algorithm.upper() == "MD5"), challenges[0])
        return Credentials.answer(ch, username=user, password=self.box.secrets[user], method=method,
                                  uri=uri).header_value()

    # -- caller side

    def _invite_bytes(self, c: OutCall, auth: str) -> bytes:
        port = c.rtp.getsockname()[1] if c.rtp is not None else 9
        sdp = bytes(build_offer(address=HOST, port=port, codecs=OFFER_CODECS,
                                session_id=abs(hash(c.cid)) % 2**31, version=1))
        return (f"INVITE sip:{CALLEE}@{self.domain} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.a_port};branch={c.branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{self.domain}>;tag={c.ftag}\r\n"
                f"To: <sip:{CALLEE}@{self.domain}>\r\nCall-ID: {c.cid}\r\nCSeq: {c.cseq} INVITE\r\n"
                f"Contact: <sip:{CALLER}@{HOST}:{self.a_port}>\r\n{auth}"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n").encode() + sdp

    def _in_dialog(self, c: OutCall, method: str, uri: str, to: str, cseq: int, branch: str) -> bytes:
        return (f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.a_port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{self.domain}>;tag={c.ftag}\r\n"
                f"To: {to}\r\nCall-ID: {c.cid}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()

    def _send_req(self, c: OutCall, data: bytes) -> None:
        """Send a request we may have to retransmit (RFC 3261 timers A/E: T1 = 500 ms, doubling)."""
        c.last = data
        c.rtx_gap = 0.5
        c.rtx_at = time.monotonic() + c.rtx_gap
        self.a.sendto(data, self.box_addr)

    def retransmit_due(self) -> None:
        now = time.monotonic()
        if now < self._next_rtx_check:
            return
        self._next_rtx_check = now + 0.05
        for c in list(self.out.values()):
            if c.last and now >= c.rtx_at:
                if now - c.t0 > 32.0 and c.state != "bye" or c.rtx_gap > 16:
                    self._fail(c, f"no answer in state {c.state}")
                    continue
                self.retransmits += 1
                c.rtx_gap = min(c.rtx_gap * 2, 4.0 if c.state == "bye" else 16.0)
                c.rtx_at = now + c.rtx_gap
                self.a.sendto(c.last, self.box_addr)

    def place_call(self) -> OutCall:
        self.n += 1
        c = OutCall(f"b{self.n}-{new_tag()}@bench")
        if self.want_rtp:
            c.rtp = self.new_rtp()
        self.out[c.cid] = c
        self._send_req(c, self._invite_bytes(c, ""))
        return c

    def hang_up(self, c: OutCall) -> None:
        c.state = "bye"
        c.cseq += 1
        c.branch = new_branch()
        self._send_req(c, self._in_dialog(c, "BYE", c.contact, c.to, c.cseq, c.branch))

    def _fail(self, c: OutCall, why: str) -> None:
        if c.state in ("done", "failed"):
            return
        c.state = "failed"
        c.error = why
        self.failed.append(c)
        self.out.pop(c.cid, None)
        self.drop_rtp(c.rtp)

    def on_caller(self, msg: Message) -> None:
        if isinstance(msg, Request):
            if msg.method == "OPTIONS":
                self.a.sendto(bytes(make_response(msg, 200)), self.box_addr)
            elif msg.method == "BYE":
                self.a.sendto(bytes(make_response(msg, 200)), self.box_addr)
                c = self.out.get(msg.call_id)
                if c is not None:
                    self._fail(c, "BYE from the box")
            else:
                self.unexpected.append(f"caller got {msg.method}")
            return
        c = self.out.get(msg.call_id)
        if c is None:
            return                                  # a retransmission for a finished call
        status, method, seq = msg.status, msg.cseq.method, msg.cseq.seq
        if method == "INVITE":
            if status < 200:
                if c.cseq == seq:
                    c.last = b""                    # a provisional stops INVITE retransmission
                return
            if status == 407 and c.state == "invite" and seq == 1:
                self.a.sendto(self._in_dialog(c, "ACK", f"sip:{CALLEE}@{self.domain}", msg.headers.get("To"),
                                              1, c.branch), self.box_addr)
                c.state = "auth"
                c.cseq = 2
                c.branch = new_branch()
                auth = "Proxy-Authorization: " + self._answer(msg, "Proxy-Authenticate", CALLER, "INVITE",
                                                              f"sip:{CALLEE}@{self.domain}") + "\r\n"
                self._send_req(c, self._invite_bytes(c, auth))
            elif 200 <= status < 300 and seq == 2:
                to = msg.headers.get("To")
                contact = msg.contacts[0].uri if msg.contacts else f"sip:{self.domain}"
                self.a.sendto(self._in_dialog(c, "ACK", str(contact), to, 2, new_branch()), self.box_addr)
                if c.state == "auth":                # not a 200 retransmission
                    c.state = "answered"
                    c.last = b""
                    c.t_answer = time.monotonic()
                    c.to, c.contact = to, str(contact)
                    if self.want_rtp:
                        c.box_media = media_target(msg.body)
                        if c.box_media is None:
                            self._fail(c, "no usable SDP in 200")
            elif status >= 300:
                if seq == 2:
                    self.a.sendto(self._in_dialog(c, "ACK", f"sip:{CALLEE}@{self.domain}", msg.headers.get("To"),
                                                  2, c.branch), self.box_addr)
                self._fail(c, f"INVITE -> {status} {msg.reason}")
        elif method == "BYE" and c.state == "bye" and status >= 200:
            c.last = b""
            if status == 200:
                c.state = "done"
                c.t_done = time.monotonic()
                self.out.pop(c.cid, None)
                self.done.append(c)
                self.drop_rtp(c.rtp)
            else:
                self._fail(c, f"BYE -> {status} {msg.reason}")

    # -- callee side

    def on_callee(self, msg: Message) -> None:
        send = self.b.sendto
        if isinstance(msg, Response):
            return
        method = msg.method
        if method == "INVITE":
            ic = self.inc.get(msg.call_id)
            if ic is None:
                ic = self.inc[msg.call_id] = InCall(msg.call_id)
                try:
                    offer = SessionDescription.parse(msg.body)
                    if self.want_rtp:
                        ic.rtp = self.new_rtp()
                        ic.box_media = media_target(msg.body)
                    port = ic.rtp.getsockname()[1] if ic.rtp is not None else 9
                    answer, _ = build_answer(offer, address=HOST, port=port, session_id=1, version=1)
                except SdpError as exc:
                    send(bytes(make_response(msg, 488, to_tag=ic.tag)), self.box_addr)
                    self.unexpected.append(f"callee: bad offer {exc}")
                    return
                contact = [("Contact", f"<sip:{CALLEE}@{HOST}:{self.b_port}>")]
                send(bytes(make_response(msg, 180, to_tag=ic.tag, headers=contact)), self.box_addr)
                ic.ok = bytes(make_response(msg, 200, to_tag=ic.tag, headers=contact, body=bytes(answer),
                                            content_type="application/sdp"))
            send(ic.ok, self.box_addr)               # a retransmitted INVITE gets the 200 again
        elif method == "ACK":
            ic = self.inc.get(msg.call_id)
            if ic is not None:
                ic.acked = True
        elif method == "BYE":
            send(bytes(make_response(msg, 200)), self.box_addr)
            ic = self.inc.pop(msg.call_id, None)
            if ic is not None:
                ic.ended = True
                self.drop_rtp(ic.rtp)
        elif method == "CANCEL":
            send(bytes(make_response(msg, 200)), self.box_addr)
        else:
            send(bytes(make_response(msg, 200)), self.box_addr)

    # -- driving

    def run_calls(self, *, count: int | None, seconds: float | None, window: int, hold: bool,
                  timeout: float = 15.0) -> dict:
        """Place calls ``window`` at a time until ``count`` are placed or ``seconds`` have passed.

        ``hold=False``: BYE as soon as the 200 arrives (setup benchmark). ``hold=True``: leave the
        answered calls up (relay benchmark). Returns when every placed call is answered (hold) or
        finished, or after ``timeout`` more seconds.
        """
        t0 = time.monotonic()
        cpu0 = time.process_time()
        placed = 0
        live: set[str] = set()
        answered: list[OutCall] = []
        end_place = t0 + seconds if seconds is not None else float("inf")
        while True:
            now = time.monotonic()
            can_place = now < end_place and (count is None or placed < count)
            while can_place and len(live) < window and (count is None or placed < count):
                live.add(self.place_call().cid)
                placed += 1
            self.poll(0.005)
            for cid in list(live):
                c = self.out.get(cid)
                if c is None:                        # done or failed
                    live.discard(cid)
                elif c.state == "answered":
                    if hold:
                        live.discard(cid)
                        answered.append(c)
                    else:
                        self.hang_up(c)
            now = time.monotonic()
            if not live and not (now < end_place and (count is None or placed < count)):
                break
            if now > max(end_place if seconds is not None else t0, t0) + timeout:
                for cid in list(live):
                    c = self.out.get(cid)
                    if c is not None:
                        self._fail(c, f"timed out in state {c.state}")
                break
        wall = time.monotonic() - t0
        return {"placed": placed, "wall_s": wall, "answered": answered,
                "gen_cpu_pct": 100.0 * (time.process_time() - cpu0) / max(wall, 1e-9)}

    def hang_up_all(self, calls: list[OutCall], window: int, timeout: float = 40.0) -> None:
        """BYE every answered call, ``window`` BYEs outstanding at a time, and wait for the 200s."""
        pending = [c for c in calls if c.state == "answered"]
        t_end = time.monotonic() + timeout
        i = 0
        while time.monotonic() < t_end:
            outstanding = sum(1 for c in pending[:i] if c.state == "bye")
            while i < len(pending) and outstanding < window:
                self.hang_up(pending[i])
                i += 1
                outstanding += 1
            self.poll(0.01)
            if i >= len(pending) and not any(c.state == "bye" for c in pending):
                break
        for c in pending:
            if c.state == "bye":
                self._fail(c, "no 200 to BYE")


# --- RTP ----------------------------------------------------------------------------------------

def percentile(values: list[int], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return float(v[min(len(v) - 1, int(p / 100.0 * len(v)))])


def rtp_run(ua: LoadUa, streams: list[tuple[socket.socket, tuple[str, int]]], seconds: float,
            slices: int = 10, on_mark=None) -> dict:
    """Every stream (socket, destination) sends one 172-byte packet per 20 ms for ``seconds``;
    every RTP socket of ``ua`` counts what arrives and the one-way delay (µs) in the payload."""
    buf = bytearray(RTP_HEADER.size + PAYLOAD)
    buf[RTP_HEADER.size + STAMP.size:] = b"\xff" * (PAYLOAD - STAMP.size)
    pack_hdr, pack_stamp = RTP_HEADER.pack_into, STAMP.pack_into
    unpack_stamp = STAMP.unpack_from
    off = RTP_HEADER.size
    delays: list[int] = []
    add = delays.append
    clock = time.monotonic_ns
    socks = ua.rtp_socks
    got = [0]

    def on_rtp(fd: int) -> None:
        try:
            data = socks[fd].recv(2048)
        except (BlockingIOError, KeyError):
            return
        if len(data) >= off + STAMP.size:
            add((clock() - unpack_stamp(data, off)[0]) // 1000)
            got[0] += 1

    ua.on_rtp = on_rtp
    plan = [[(s.sendto, dest, i) for i, (s, dest) in enumerate(streams) if i % slices == k] for k in range(slices)]
    sent = errors = 0
    seq = 0
    cpu0 = time.process_time()
    start = time.monotonic()
    end_send = start + seconds
    next_slice = start
    k = 0
    try:
        while True:
            now = time.monotonic()
            if now < end_send and now >= next_slice:
                if k == 0:
                    seq = (seq + 1) & 0xFFFF
                ts = (seq * 160) & 0xFFFFFFFF
                for sendto, dest, i in plan[k]:
                    pack_hdr(buf, 0, 0x80, 0, seq, ts, i)
                    pack_stamp(buf, off, clock(), i)
                    try:
                        sendto(buf, dest)
                        sent += 1
                    except OSError:
                        errors += 1
                k = (k + 1) % slices
                next_slice += TICK / slices
                continue
            if now >= end_send + 0.3:
                break
            ua.poll(min(next_slice, end_send + 0.3) - now if now < end_send else end_send + 0.3 - now)
    finally:
        ua.on_rtp = None
    wall = time.monotonic() - start
    return {"sent": sent, "received": got[0], "send_errors": errors, "delays": delays,
            "gen_cpu_pct": 100.0 * (time.process_time() - cpu0) / wall}


# --- phases ---------------------------------------------------------------------------------------

def wait_settled(box: Box, timeout: float, want_transactions: int = 0) -> tuple[dict, float]:
    """Poll /health until no calls, no media endpoints and <= want_transactions remain."""
    t0 = time.monotonic()
    h = box.health()
    while time.monotonic() - t0 < timeout:
        h = box.health()
        if (h["calls"] == 0 and h["media"]["endpoints_open"] == 0
                and h.get("transactions", 0) <= want_transactions):
            break
        time.sleep(0.5)
    return h, time.monotonic() - t0


def bench_setups(box: Box, ua: LoadUa, seconds: float, window: int) -> dict:
    ua.want_rtp = False
    ua.done.clear()
    ua.failed.clear()
    h0 = box.health()
    rtx0, drops0, rss0 = ua.retransmits, box.sip_drops(), box.mem()["VmRSS"]
    cpu0 = box.cpu()
    res = ua.run_calls(count=None, seconds=seconds, window=window, hold=False)
    cpu1 = box.cpu()
    h1, settle = wait_settled(box, 3.0, want_transactions=10**9)
    done, failed = list(ua.done), list(ua.failed)
    lat = [int(1e6 * (c.t_answer - c.t0)) for c in done]
    n = len(done)
    errs: dict[str, int] = {}
    for c in failed:
        errs[c.error] = errs.get(c.error, 0) + 1
    return {
        "window": window, "completed": n, "failed": len(failed), "failures": errs,
        "setups_per_s": n / res["wall_s"], "wall_s": res["wall_s"],
        "box_cpu_pct": 100.0 * (cpu1 - cpu0) / res["wall_s"],
        "box_cpu_ms_per_setup": 1e3 * (cpu1 - cpu0) / max(n, 1),
        "setup_p50_ms": percentile(lat, 50) / 1e3, "setup_p99_ms": percentile(lat, 99) / 1e3,
        "gen_cpu_pct": res["gen_cpu_pct"],
        "health_after": {"calls": h1["calls"], "transactions": h1.get("transactions"),
                         "endpoints_open": h1["media"]["endpoints_open"]},
        "registrations": h0["registrations"],
        "retransmits": ua.retransmits - rtx0, "box_sip_socket_drops": box.sip_drops() - drops0,
        "rss_before_mb": rss0, "rss_after_mb": box.mem()["VmRSS"],
    }


def bench_relay(box: Box, ua: LoadUa, calls: int, seconds: float, window: int) -> dict:
    ua.want_rtp = True
    ua.done.clear()
    ua.failed.clear()
    ua.inc.clear()
    rtx0, drops0 = ua.retransmits, box.sip_drops()
    t0 = time.monotonic()
    res = ua.run_calls(count=calls, seconds=None, window=window, hold=True, timeout=30.0)
    setup_s = time.monotonic() - t0
    answered = res["answered"]
    incoming = [ic for ic in ua.inc.values() if ic.rtp is not None and ic.box_media is not None]
    streams = [(c.rtp, c.box_media) for c in answered if c.rtp is not None and c.box_media]
    streams += [(ic.rtp, ic.box_media) for ic in incoming]
    out: dict = {"calls": calls, "answered": len(answered), "setup_failed": len(ua.failed),
                 "callee_legs": len(incoming), "setup_s": setup_s}
    # Baseline: the same sockets and pattern, caller socket i <-> callee socket i directly.
    pairs = list(zip([c.rtp for c in answered], [ic.rtp for ic in incoming]))
    base_streams = [(a, b.getsockname()) for a, b in pairs] + [(b, a.getsockname()) for a, b in pairs]
    base = rtp_run(ua, base_streams, min(seconds, 3.0))
    rtp_run(ua, streams, 0.5)                        # warm-up (latching, caches)
    mem_before = box.mem()
    h0, cpu0 = box.health(), box.cpu()
    r = rtp_run(ua, streams, seconds)
    cpu1, h1 = box.cpu(), box.health()
    mem_after = box.mem()
    relayed = h1["media"]["packets_relayed"] - h0["media"]["packets_relayed"]
    dropped = h1["media"]["dropped"] - h0["media"]["dropped"]
    during = {"calls": h1["calls"], "transactions": h1.get("transactions"),
              "endpoints_open": h1["media"]["endpoints_open"]}
    ua.hang_up_all(answered, window)
    b50, b99 = percentile(base["delays"], 50), percentile(base["delays"], 99)
    d50, d99 = percentile(r["delays"], 50), percentile(r["delays"], 99)
    out.update({
        "streams": len(streams), "sent": r["sent"], "received": r["received"],
        "loss_pct": 100.0 * (r["sent"] - r["received"]) / max(r["sent"], 1),
        "box_relayed": relayed, "box_dropped": dropped,
        "box_cpu_pct": 100.0 * (cpu1 - cpu0) / seconds,
        "box_cpu_us_per_pkt": 1e6 * (cpu1 - cpu0) / max(relayed, 1),
        "delay_p50_us": d50, "delay_p99_us": d99, "baseline_p50_us": b50, "baseline_p99_us": b99,
        "baseline_loss_pct": 100.0 * (base["sent"] - base["received"]) / max(base["sent"], 1),
        "added_p50_us": d50 - b50, "added_p99_us": d99 - b99,
        "rss_mb": mem_after.get("VmRSS"), "rss_before_mb": mem_before.get("VmRSS"),
        "hwm_mb": mem_after.get("VmHWM"), "gen_cpu_pct": r["gen_cpu_pct"],
        "health_during": during, "bye_failed": len(ua.failed) - out["setup_failed"],
    })
    h2, _ = wait_settled(box, 5.0, want_transactions=10**9)
    out["health_after_bye"] = {"calls": h2["calls"], "transactions": h2.get("transactions"),
                               "endpoints_open": h2["media"]["endpoints_open"]}
    # anything the UA still holds (callee legs the box never hung up)
    for ic in list(ua.inc.values()):
        ua.drop_rtp(ic.rtp)
    out["callee_legs_not_byed"] = len(ua.inc)
    out["retransmits"] = ua.retransmits - rtx0
    out["box_sip_socket_drops"] = box.sip_drops() - drops0
    ua.inc.clear()
    return out


# --- report ---------------------------------------------------------------------------------------

def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import uvloop  # noqa: F401
        uv = True
    except ImportError:
        uv = False
    mhz = ""
    try:
        mhz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text().strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "cpu_max_khz": mhz, "kernel": platform.release(),
            "python": platform.python_version(), "uvloop": uv,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def markdown(result: dict) -> str:
    s, idle = result["setups"], result["idle_rss_mb"]
    lines = ["| measure | value | target |", "| --- | --- | --- |"]
    lines.append(f"| call setups/s (INVITE→407→INVITE→180→200→ACK, BYE→200; {s['window']} in flight) "
                 f"| **{s['setups_per_s']:.0f}/s**, {s['completed']} completed, {s['failed']} failed | ≥ 200/s |")
    lines.append(f"| box CPU per call setup (setup + teardown) | {s['box_cpu_ms_per_setup']:.2f} ms "
                 f"(box core at {s['box_cpu_pct']:.0f}%) | |")
    lines.append(f"| setup latency INVITE→200 p50 / p99 | {s['setup_p50_ms']:.1f} / {s['setup_p99_ms']:.1f} ms | |")
    lines.append(f"| generator CPU during setups | {s['gen_cpu_pct']:.0f}% of its core | |")
    lines.append(f"| box RSS idle (after start, before registration) | {idle:.1f} MB | ≤ 40 MB |")
    best = result.get("max_calls_ok")
    lines.append(f"| concurrent G.711 calls relayed at < 0.01% loss | "
                 f"{'≥ ' if result.get('max_not_reached') else ''}{best if best else 'none'} | ≥ 500 per core |")
    lines.append(f"| box RSS after the relay sweep / after the setup burst / after {result['final_health']['waited_s']:.0f} s settle "
                 f"| {result['rss_after_relay_mb']:.1f} / {s['rss_after_mb']:.1f} / {result['final_rss_mb']:.1f} MB | |")
    lines.append(f"| box peak RSS (VmHWM, whole run) | {result['hwm_mb']:.1f} MB | |")
    lines.append(f"| SIP retransmissions by the generator / datagrams dropped on the box's SIP socket (setups) "
                 f"| {s['retransmits']} / {s['box_sip_socket_drops']} | 0 / 0 |")
    out = "\n".join(lines) + "\n\n"
    rows = ["| calls | pkt/s relayed | loss % | box µs/pkt | box CPU | added p50 / p99 | baseline p50 / p99 "
            "| RSS | gen CPU | SIP rtx / box drops | after BYE: calls / tx / endpoints |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["relay"]:
        ha = r["health_after_bye"]
        rows.append(
            f"| {r['calls']} | {r['box_relayed'] / result['seconds']:.0f} | {r['loss_pct']:.4f} | "
            f"{r['box_cpu_us_per_pkt']:.1f} | {r['box_cpu_pct']:.0f}% | "
            f"{r['added_p50_us'] / 1e3:.2f} / {r['added_p99_us'] / 1e3:.2f} ms | "
            f"{r['baseline_p50_us'] / 1e3:.2f} / {r['baseline_p99_us'] / 1e3:.2f} ms | {r['rss_mb']:.1f} MB | "
            f"{r['gen_cpu_pct']:.0f}% | {r['retransmits']} / {r['box_sip_socket_drops']} | {ha['calls']} / {ha['transactions']} / {ha['endpoints_open']} |")
    return out + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="50,200,500", help="comma-separated concurrent call counts")
    ap.add_argument("--seconds", type=float, default=10.0, help="RTP seconds per call count")
    ap.add_argument("--setup-seconds", type=float, default=10.0, help="seconds of back-to-back call setups")
    ap.add_argument("--window", type=int, default=24, help="calls in flight during the setup benchmark")
    ap.add_argument("--find-max", action="store_true",
                    help="after the sweep, raise the call count (x1.25) until loss reaches 0.01%%")
    ap.add_argument("--max-calls", type=int, default=2000, help="upper bound for --find-max")
    ap.add_argument("--rtp-ports", default="16000-31999", help="the box's RTP range")
    ap.add_argument("--settle", type=float, default=40.0,
                    help="seconds to wait at the end for the box's transactions to drain")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    sweep = [int(x) for x in args.calls.split(",") if x.strip()]
    lo, hi = (int(x) for x in args.rtp_ports.split("-"))

    cores = sorted(os.sched_getaffinity(0))
    box_core, gen_core = cores[0], cores[-1]
    if len(cores) < 2:
        print("warning: one core only; the box and the generator share it", file=sys.stderr)
    os.sched_setaffinity(0, {gen_core})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)       # progress: stderr, also with --json

    box = Box(box_core, (lo, hi))
    result: dict = {"machine": machine(), "seconds": args.seconds, "box_core": box_core, "gen_core": gen_core,
                    "command": " ".join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])])}
    ua = None
    try:
        box.start()
        say(f"box pid {box.proc.pid} on core {box_core} (SIP {box.sip_port}, HTTP {box.http_port}); "
            f"generator on core {gen_core}")
        time.sleep(1.0)
        result["idle_rss_mb"] = box.mem()["VmRSS"]
        ua = LoadUa(box)
        ua.register_all()
        result["rss_registered_mb"] = box.mem()["VmRSS"]
        say(f"idle RSS {result['idle_rss_mb']:.1f} MB; registered {CALLER} and {CALLEE}")
        result["relay"] = []

        def one(n: int) -> dict:
            r = bench_relay(box, ua, n, args.seconds, args.window)
            result["relay"].append(r)
            say(f"{n} calls: loss {r['loss_pct']:.4f}% ({r['sent'] - r['received']} of {r['sent']}), "
                f"box {r['box_cpu_us_per_pkt']:.1f} µs/pkt ({r['box_cpu_pct']:.0f}%), "
                f"added p50/p99 {r['added_p50_us']:.0f}/{r['added_p99_us']:.0f} µs, RSS {r['rss_mb']:.1f} MB, "
                f"gen {r['gen_cpu_pct']:.0f}%, answered {r['answered']}, after BYE {r['health_after_bye']}")
            return r

        ok_calls = [r["calls"] for r in map(one, sweep)
                    if r["loss_pct"] < 0.01 and r["answered"] == r["calls"]]
        best = max(ok_calls) if ok_calls else None
        if args.find_max and best is not None and best == max(sweep):
            n = best
            while n < args.max_calls:
                n = min(args.max_calls, int(n * 1.25))
                r = one(n)
                if r["loss_pct"] >= 0.01 or r["answered"] != n:
                    break
                best = n
            else:
                result["max_not_reached"] = True
        elif best is not None and best == max(sweep):
            result["max_not_reached"] = True
        result["max_calls_ok"] = best
        result["rss_after_relay_mb"] = box.mem()["VmRSS"]
        # Setups last: they leave tens of thousands of transactions in their 32 s linger, which
        # would otherwise weigh on the relay figures (memory, delay).
        ua.run_calls(count=50, seconds=None, window=10, hold=False)   # warm-up
        s = bench_setups(box, ua, args.setup_seconds, args.window)
        result["setups"] = s
        say(f"setups: {s['setups_per_s']:.0f}/s, {s['completed']} ok, {s['failed']} failed {s['failures']}, "
            f"box {s['box_cpu_ms_per_setup']:.2f} ms CPU/setup ({s['box_cpu_pct']:.0f}%), "
            f"gen {s['gen_cpu_pct']:.0f}%, after: {s['health_after']}")
        h, waited = wait_settled(box, args.settle)
        result["final_health"] = {"calls": h["calls"], "transactions": h.get("transactions"),
                                  "endpoints_open": h["media"]["endpoints_open"],
                                  "ports_in_use": h["media"]["ports_in_use"], "waited_s": round(waited, 1),
                                  "banned": h.get("banned"), "registrations": h.get("registrations")}
        mem = box.mem()
        result["hwm_mb"], result["final_rss_mb"] = mem["VmHWM"], mem["VmRSS"]
        result["box_alive"] = box.proc.poll() is None
        result["ua_unexpected"] = ua.unexpected[:20]
    finally:
        if ua is not None:
            ua.close()
        if box.proc is not None:
            result["box_log_problems"] = box.log_problems()[:50]
        box.cleanup()

    for r in result.get("relay", []):
        r.pop("delays", None)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(markdown(result))
        print(f"final /health after {result['final_health']['waited_s']} s: {result['final_health']}")
        print(f"box log warnings/errors: {len(result['box_log_problems'])}")
        for ln in result["box_log_problems"][:10]:
            print("  " + ln)
        if result["ua_unexpected"]:
            print("UA saw:", result["ua_unexpected"][:5])
    return 0


if __name__ == "__main__":
    sys.exit(main())
