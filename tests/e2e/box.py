"""`linebox run` as an end-to-end test subject, and a raw SIP endpoint we wrote ourselves.

    box = Box(tmp_path / "box")
    box.setup()          # init, then extensions 1001/1002/1003 in one `config import`
    box.start()          # linebox run on free loopback ports; waits on /health
    box.sip_addr         # "127.0.0.1:<sip port>"
    box.cdr()            # `linebox cdr --json`
    box.kill9(); box.start()

Everything is driven through the box's CLI contract (`.venv/bin/linebox` next to
sys.executable) and its HTTP endpoints; nothing here imports the firmware, so the
tests hold the box to its contract and not to its internals. Every wait has a
timeout, and every failure message carries the tail of the box's log.

`SipSocket` is a raw SIP client on a socket we own (UDP or TCP, bound to any
127.0.0.0/8 address so a test can pose as another host), with a small response
parser and an RFC 2617/7616 digest answerer written from the RFCs, independent of
firmware.sip.digest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import string
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from tests.peers.netutil import LOOPBACK, free_port, free_tcp_port, free_udp_range

REPO = Path(__file__).resolve().parents[2]
LINEBOX = Path(sys.executable).with_name("linebox")
REALM = "linebox"
EXTENSIONS = ("1001", "1002", "1003")
RTP_PORT_COUNT = 200
LOG_TAIL_LINES = 60


class BoxError(AssertionError):
    """The box did not do what its contract says; the message carries its log tail."""


def strong_secret() -> str:
    """A secret any sane strength rule accepts: long, mixed classes, starts with a letter
    (so argparse never mistakes it for an option). Letters only before the fixed tail, so it
    never happens to contain the extension's number (which the box rightly refuses)."""
    return "Lb" + "".join(secrets.choice(string.ascii_letters) for _ in range(16)) + "!Q7z"


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"linebox {' '.join(self.args)} -> rc={self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def run_cli(data: Path, *args: str, timeout: float = 30, check: bool = False) -> CliResult:
    """`linebox --data DATA ARGS...` to completion."""
    argv = [str(LINEBOX), "--data", str(data), *args]
    try:
        p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=_env())
    except subprocess.TimeoutExpired as e:
        raise BoxError(f"linebox {' '.join(args)} did not finish in {timeout:g}s\n"
                       f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
    except FileNotFoundError:
        raise BoxError(f"{LINEBOX} does not exist: run scripts/setup") from None
    res = CliResult(list(args), p.returncode, p.stdout, p.stderr)
    if check and res.returncode != 0:
        raise BoxError(res.describe())
    return res


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Box:
    """One LineBox: a data directory, its CLI, and (when started) `linebox run`.

    Ports are chosen once and kept across stop/start, so phones registered before a
    restart still reach the box after it.
    """

    def __init__(self, root: Path, *, extensions: Sequence[str] | Mapping[str, str] = EXTENSIONS,
                 settings: dict[str, object] | None = None, config: Mapping[str, Any] | None = None,
                 start_timeout: float = 30, rtp_count: int = RTP_PORT_COUNT):
        """``extensions``: numbers, or number -> name; ``settings``: name -> value;
        ``config``: further sections of the configuration document (docs/config.md: ``queues``,
        ``ivr``, ``ivr_numbers``, ``voicemail``, ...), all imported together by ``setup``."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.log_path = self.root / "box.log"
        self.extensions = tuple(extensions)
        self.names = dict(extensions) if isinstance(extensions, Mapping) else {}
        self.settings = dict(settings or {})
        self.config = dict(config or {})
        if {"version", "extensions", "settings"} & set(self.config):
            raise ValueError("config holds the further sections; extensions and settings have their own arguments")
        self.start_timeout = start_timeout
        self.secrets: dict[str, str] = {}
        self.rtp_count = rtp_count
        self._pick_ports()
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.starts = 0

    def _pick_ports(self) -> None:
        self.sip_port = free_port()
        self.http_port = free_tcp_port()
        # A random free range can hold the SIP or HTTP port (both come from the ephemeral
        # range); the box rightly refuses that, so pick again.
        while True:
            self.rtp_lo = free_udp_range(self.rtp_count)
            self.rtp_hi = self.rtp_lo + self.rtp_count - 1
            if not any(self.rtp_lo <= p <= self.rtp_hi for p in (self.sip_port, self.http_port)):
                break

    # -- set-up through the CLI -------------------------------------------------------
    def setup(self) -> "Box":
        """init, then the extensions (strong secrets), the settings and the further sections
        as one configuration document through `linebox config import`: two CLI calls, where one
        per extension and setting was most of a test's start-up on a busy 2-core machine.

        An import replaces the whole configuration, so it is only for a fresh data directory;
        what a test adds later goes through `add_extension` and `set`."""
        self.cli("init")
        if not (self.data / "linebox.db").exists():
            raise BoxError(f"`linebox --data {self.data} init` did not create linebox.db; "
                           f"{sorted(p.name for p in self.data.glob('*')) if self.data.exists() else 'no data dir'}")
        secrets = {number: strong_secret() for number in self.extensions}
        if secrets or self.settings or self.config:  # nothing to import: `init` only, as before
            path = self.root / "setup.json"
            path.write_text(json.dumps(self.document(secrets), indent=1))
            self.cli("config", "import", str(path), timeout=30 + 0.1 * len(secrets))
        self.secrets.update(secrets)
        return self

    def document(self, secrets: Mapping[str, str]) -> dict[str, Any]:
        """The configuration document `setup` imports (docs/config.md), with these secrets.
        Values of settings are written as `set` passes them, as text."""
        return {"version": 1,
                "extensions": [{"number": n, "name": self.names.get(n, ""), "secret": s} for n, s in secrets.items()],
                "settings": {key: str(value) for key, value in self.settings.items()},
                **self.config}

    def add_extension(self, number: str, secret: str | None = None, name: str | None = None) -> str:
        secret = secret or strong_secret()
        args = ["ext", "add", number, "--secret", secret]
        if name:
            args += ["--name", name]
        self.cli(*args)
        self.secrets[number] = secret
        return secret

    def set(self, key: str, value: object) -> None:
        self.cli("set", key, str(value))

    def cli(self, *args: str, check: bool = True, timeout: float = 30) -> CliResult:
        res = run_cli(self.data, *args, timeout=timeout)
        if check and res.returncode != 0:
            raise BoxError(res.describe() + self._tail_section())
        return res

    def secret(self, number: str) -> str:
        return self.secrets[number]

    # -- run ----------------------------------------------------------------------------
    @property
    def sip_addr(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def sip_hostport(self) -> tuple[str, int]:
        return (LOOPBACK, self.sip_port)

    def run_args(self) -> list[str]:
        return ["run", "--bind", LOOPBACK, "--sip-port", str(self.sip_port),
                "--http-port", str(self.http_port), "--rtp-ports", f"{self.rtp_lo}-{self.rtp_hi}"]

    def start(self, timeout: float | None = None) -> "Box":
        """Start `linebox run` and wait until /health says ok (or the process dies)."""
        if self.running():
            raise BoxError("box already running")
        timeout = self.start_timeout if timeout is None else timeout
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== test harness: start #{self.starts}: linebox "
                             f"{' '.join(self.run_args())} =====\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen([str(LINEBOX), "--data", str(self.data), *self.run_args()],
                                     cwd=REPO, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                if self.starts == 1 and "already in use" in self.log_tail(3):
                    # Ports come from the ephemeral range and another program (a phone, sipp, a
                    # test running beside this one) took one since: on a first start nothing
                    # depends on them yet, so take fresh ones.
                    self._close_log()
                    self.proc = None
                    self.starts = 0
                    self._pick_ports()
                    return self.start(timeout)
                raise BoxError(f"`linebox {' '.join(self.run_args())}` exited rc={rc} before "
                               f"/health answered{self._tail_section()}")
            try:
                h = self.health(timeout=1.0)
                if h.get("status") == "ok":
                    return self
                last = f"health: {h}"
            except (OSError, ValueError, BoxError) as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                self.kill9()
                raise BoxError(f"/health on {self.http_port} not ok within {timeout:g}s "
                               f"({last}){self._tail_section()}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not leave. Returns the exit status
        (None if SIGKILL was needed)."""
        if self.proc is None:
            return None
        rc: int | None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        else:
            rc = self.proc.returncode
        self._close_log()
        return rc

    def kill9(self) -> None:
        """kill -9 `linebox run` (a crash / power cut of the process)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def close(self) -> None:
        self.stop()

    # -- HTTP ---------------------------------------------------------------------------
    def http_get(self, path: str, timeout: float = 5.0) -> Any:
        url = f"http://{LOOPBACK}:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raise BoxError(f"GET {path} -> {e.code} {e.reason}") from None
        if status != 200:
            raise BoxError(f"GET {path} -> {status}")
        return json.loads(body)

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.http_get("/health", timeout)

    def security_events(self) -> list[dict[str, Any]]:
        return self.http_get("/api/security-events")

    def calls(self) -> list[dict[str, Any]]:
        return self.http_get("/api/calls")

    # -- CDR ------------------------------------------------------------------------------
    def cdr(self) -> list[dict[str, Any]]:
        """`linebox cdr --json`: rows newest first."""
        res = self.cli("cdr", "--json")
        try:
            rows = json.loads(res.stdout)
        except ValueError as e:
            raise BoxError(f"cdr --json is not JSON ({e}): {res.stdout[:500]!r}") from None
        if not isinstance(rows, list):
            raise BoxError(f"cdr --json is not a list: {rows!r}")
        return rows

    def wait_cdr(self, count: int = 1, timeout: float = 10,
                 pred: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Poll the CDR until at least `count` rows (matching `pred`) exist; newest first."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while True:
            rows = [r for r in self.cdr() if pred is None or pred(r)]
            if len(rows) >= count:
                return rows
            if time.monotonic() >= deadline:
                raise BoxError(f"timed out after {timeout:g}s waiting for {count} CDR rows; "
                               f"have {self.cdr()}{self._tail_section()}")
            time.sleep(0.2)

    def wait_health(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10,
                    what: str = "health condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        h: dict[str, Any] = {}
        while True:
            h = self.health()
            if pred(h):
                return h
            if time.monotonic() >= deadline:
                raise BoxError(f"timed out after {timeout:g}s waiting for {what}; last /health "
                               f"{h}{self._tail_section()}")
            time.sleep(0.1)

    def wait_security_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5,
                            what: str = "security event") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        evs: list[dict[str, Any]] = []
        while True:
            evs = self.security_events()
            for ev in evs:
                if pred(ev):
                    return ev
            if time.monotonic() >= deadline:
                raise BoxError(f"timed out after {timeout:g}s waiting for {what}; events: "
                               f"{evs[-10:]}{self._tail_section()}")
            time.sleep(0.1)

    # -- logs -----------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- {self.log_path} (last {len(text)} lines) ---\n" + "\n".join(text)

    def _tail_section(self) -> str:
        return "\n" + self.log_tail()

    def __enter__(self) -> "Box":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"Box(sip={self.sip_port}, http={self.http_port}, rtp={self.rtp_lo}-{self.rtp_hi}, {state})"


def started_box(root: Path, **kw: Any) -> Box:
    """A set-up and started box (stopped again if start fails)."""
    box = Box(root, **kw)
    try:
        box.setup()
        box.start()
    except BaseException:
        box.kill9()
        raise
    return box


# ============================================================================================
# A raw SIP endpoint of our own
# ============================================================================================

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}


@dataclass
class SipResponse:
    """A SIP response as it came off the wire: status, reason, headers in order, body."""
    raw: bytes
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def parse(cls, raw: bytes) -> "SipResponse":
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", errors="replace").split("\r\n")
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise ValueError(f"not a SIP response: {lines[0]!r}")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:
                n, v = headers[-1]
                headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(raw, int(m.group(1)), m.group(2), headers, body)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if COMPACT.get(n.lower(), n.lower()) == name]

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    @property
    def call_id(self) -> str | None:
        return self.get("call-id")

    @property
    def cseq_method(self) -> str | None:
        v = self.get("cseq")
        return v.split()[-1] if v else None

    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"SipResponse({self.status} {self.reason!r}, call_id={self.call_id!r})"


def _frame_stream(buf: bytearray) -> bytes | None:
    """One SIP message off the front of a TCP buffer (Content-Length framing), or None."""
    while buf[:2] == b"\r\n":  # keep-alive CRLFs
        del buf[:2]
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("utf-8", errors="replace")
    m = re.search(r"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
    length = int(m.group(1)) if m else 0
    total = end + 4 + length
    if len(buf) < total:
        return None
    msg = bytes(buf[:total])
    del buf[:total]
    return msg


class SipSocket:
    """A raw SIP client socket bound to `local_ip` (any 127.0.0.0/8 address), talking
    to the box over UDP or TCP. It only sends what a test builds and reports what
    comes back; it has no transaction layer (and no retransmissions: loopback)."""

    def __init__(self, box_addr: tuple[str, int], *, transport: str = "udp",
                 local_ip: str = LOOPBACK, connect_timeout: float = 5.0):
        self.box_addr = box_addr
        self.transport = transport.lower()
        self.closed_by_peer = False
        self._buf = bytearray()
        if self.transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, 0))
        elif self.transport == "tcp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind((local_ip, 0))
            self.sock.settimeout(connect_timeout)
            self.sock.connect(box_addr)
        else:
            raise ValueError(transport)
        self.local = self.sock.getsockname()

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.box_addr)
        else:
            self.sock.sendall(data)

    def recv_raw(self, timeout: float) -> bytes | None:
        """The next datagram / framed TCP message within `timeout` s, else None.
        Datagrams from anyone but the box are ignored."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.transport == "tcp":
                msg = _frame_stream(self._buf)
                if msg is not None:
                    return msg
                if self.closed_by_peer:
                    return None
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                if self.transport == "udp":
                    data, src = self.sock.recvfrom(65535)
                    if src != self.box_addr:
                        continue
                    return data
                chunk = self.sock.recv(65535)
            except socket.timeout:
                return None
            except ConnectionResetError:
                self.closed_by_peer = True
                return None
            except ConnectionRefusedError:  # ICMP port unreachable from an earlier send
                continue
            if not chunk:
                self.closed_by_peer = True
            self._buf += chunk

    def recv(self, timeout: float) -> SipResponse | None:
        """The next SIP response within `timeout` s (requests from the box are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.recv_raw(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return None
            if raw.startswith(b"SIP/2.0 "):
                return SipResponse.parse(raw)

    def recv_final(self, timeout: float = 5.0, call_id: str | None = None) -> SipResponse | None:
        """The next final (>= 200) response, optionally for one Call-ID."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.recv(max(0.0, deadline - time.monotonic()))
            if r is None:
                return None
            if r.status >= 200 and (call_id is None or r.call_id == call_id):
                return r

    def request(self, data: bytes, timeout: float = 5.0) -> SipResponse | None:
        """Send a request and return its final response (matched by Call-ID)."""
        m = re.search(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)", data)
        self.send(data)
        return self.recv_final(timeout, m.group(1).decode() if m else None)

    def drain(self, timeout: float) -> list[bytes]:
        """Everything that arrives within `timeout` s."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            raw = self.recv_raw(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return out
            out.append(raw)

    def wait_closed(self, timeout: float) -> bool:
        """Whether the box closes the TCP connection within `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self.closed_by_peer and time.monotonic() < deadline:
            self.recv_raw(max(0.0, deadline - time.monotonic()))
        return self.closed_by_peer

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SipSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id() -> str:
    return secrets.token_hex(12) + "@e2e.test"


def build_request(method: str, ruri: str, *, sock: SipSocket, from_user: str, to_uri: str,
                  call_id: str, cseq: int, from_tag: str, branch: str | None = None,
                  contact_user: str | None = None, extra: Iterable[str] = (),
                  user_agent: str = "linebox-e2e-raw/1", body: bytes = b"",
                  content_type: str | None = None, box: tuple[str, int] | None = None) -> bytes:
    """A request in the shape real phones send, from `sock`'s local address."""
    host, port = sock.local
    bhost, bport = box or sock.box_addr
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{sock.via_transport} {host}:{port};rport;branch={branch or new_branch()}",
        "Max-Forwards: 70",
        f"From: <sip:{from_user}@{bhost}:{bport}>;tag={from_tag}",
        f"To: <{to_uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if contact_user is not None:
        transport = ";transport=tcp" if sock.transport == "tcp" else ""
        lines.append(f"Contact: <sip:{contact_user}@{host}:{port}{transport}>")
    if user_agent:
        lines.append(f"User-Agent: {user_agent}")
    lines.extend(extra)
    if content_type and body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sdp_offer(host: str, port: int, pt: int = 0) -> bytes:
    codec = {0: "PCMU", 8: "PCMA"}[pt]
    return (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {codec}/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n").encode()


def build_ack(invite: bytes, resp: SipResponse) -> bytes:
    """The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3)."""
    text = invite.decode()
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    ruri = head[0].split()[1]
    keep = [h for h in head[1:] if re.match(r"(?i)(via|from|call-id|max-forwards|route)\s*:", h)]
    cseq = re.search(r"(?im)^cseq:\s*(\d+)", text).group(1)
    to = resp.get("to") or ""
    return ("\r\n".join([f"ACK {ruri} SIP/2.0", *keep, f"To: {to}", f"CSeq: {cseq} ACK",
                         "Content-Length: 0"]) + "\r\n\r\n").encode()


# -- digest (RFC 2617 / RFC 7616), written here from the RFCs -------------------------------

def parse_challenge(value: str) -> dict[str, str]:
    """'Digest realm="x", nonce="y", qop="auth"' -> {"scheme": "Digest", "realm": ...}."""
    scheme, _, rest = value.strip().partition(" ")
    out = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)', rest):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def _h(algorithm: str, data: str) -> str:
    algo = algorithm.upper().removesuffix("-SESS")
    fn = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algo]
    return fn(data.encode()).hexdigest()


def digest_authorization(challenge: str, *, method: str, uri: str, user: str, password: str,
                         nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization/Proxy-Authorization value answering `challenge` (qop=auth when
    offered, else RFC 2069 style)."""
    ch = parse_challenge(challenge)
    algorithm = ch.get("algorithm", "MD5")
    realm, nonce = ch.get("realm", ""), ch["nonce"]
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = _h(algorithm, f"{user}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        ncs = f"{nc:08x}"
        resp = _h(algorithm, f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{resp}"', "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        resp = _h(algorithm, f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{resp}"')
    parts.append(f"algorithm={algorithm}")
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)


def pick_challenge(resp: SipResponse) -> str:
    """The first Digest challenge of a 401/407 this client can answer (MD5 or SHA-256)."""
    name = "www-authenticate" if resp.status == 401 else "proxy-authenticate"
    for value in resp.all(name):
        ch = parse_challenge(value)
        if ch["scheme"].lower() == "digest" and \
                ch.get("algorithm", "MD5").upper().removesuffix("-SESS") in ("MD5", "SHA-256"):
            return value
    raise AssertionError(f"no usable Digest challenge in {resp.status}:\n{resp.text()}")


class RawRegistrar:
    """REGISTER for one user from a SipSocket: challenge, answer, count CSeq."""

    def __init__(self, sock: SipSocket, user: str, *, contact: bool = True,
                 user_agent: str = "linebox-e2e-raw/1"):
        self.sock = sock
        self.user = user
        self.call_id = new_call_id()
        self.tag = new_tag()
        self.cseq = 0
        self.contact = contact
        self.user_agent = user_agent
        host, port = sock.box_addr
        self.ruri = f"sip:{host}:{port}"

    def build(self, *, authorization: str | None = None, expires: int = 60,
              branch: str | None = None) -> bytes:
        self.cseq += 1
        host, port = self.sock.box_addr
        extra = [f"Expires: {expires}"]
        if authorization:
            extra.append(f"Authorization: {authorization}")
        return build_request("REGISTER", self.ruri, sock=self.sock, from_user=self.user,
                             to_uri=f"sip:{self.user}@{host}:{port}", call_id=self.call_id,
                             cseq=self.cseq, from_tag=self.tag, branch=branch,
                             contact_user=self.user if self.contact else None, extra=extra,
                             user_agent=self.user_agent)

    def challenge(self, timeout: float = 5.0) -> SipResponse | None:
        return self.sock.request(self.build(), timeout)

    def answer(self, challenge: SipResponse, password: str, timeout: float = 5.0,
               expires: int = 60) -> tuple[bytes, SipResponse | None]:
        """Answer a 401 with `password`; returns (the bytes sent, the final response)."""
        auth = digest_authorization(pick_challenge(challenge), method="REGISTER", uri=self.ruri,
                                    user=self.user, password=password)
        data = self.build(authorization=auth, expires=expires)
        return data, self.sock.request(data, timeout)
