"""sipp (Debian's sip-tester) as an e2e peer: load, odd flows and a 20 ms RTP pcap.

    res = run_sipp("uac_call.xml", f"127.0.0.1:{port}", service="201", calls=10,
                   concurrent=10, call_ms=3000, work_dir=tmp_path, timeout=30)
    assert res.ok, res.summary()

Each run gets its own working directory holding the scenario's `rtp20.pcap` (the
scenarios name it relatively: sipp loads pcaps when it parses the scenario, so
the path cannot come from a key), the -trace_stat CSV, the final screen and the
error/message logs; the scenario is copied there too, since sipp looks for pcaps
next to the scenario file. sipp binds 127.0.0.1 only, with free SIP and media ports, and
never reads stdin.

Scenario keys (passed with -key; every key a scenario uses must be given, so the
defaults below always are):
  uac_call.xml    pt, codec, from_user
  uac_hold.xml    pt, codec, from_user (stays on until the far end sends BYE)
  uas_answer.xml  pt, codec
  register.xml    user, contact_host, contact_port, expires
Self-check stand-ins (digest challenge, realm "linebox", then verify):
  registrar_auth.xml   user, password
  uas_auth_invite.xml  pt, codec (checks the challenge is answered, not the password)

Note: sipp's [authentication] sends uri="sip:<remote_ip>:<remote_port>" in the
digest, not the Request-URI; a verifier must hash the header's uri parameter.
"""
from __future__ import annotations

import csv
import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from firmware.media import g711
from tests.peers.audio import tone_samples
from tests.peers.netutil import LOOPBACK, free_port, free_udp_range

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIO_DIR = Path(__file__).with_name("sipp")
PCAP_NAME = "rtp20.pcap"
CODECS = {0: "PCMU", 8: "PCMA"}

SCENARIO_KEYS: dict[str, dict[str, str]] = {
    "uac_call.xml": {"pt": "8", "codec": "PCMA", "from_user": "sipp"},
    "uac_hold.xml": {"pt": "8", "codec": "PCMA", "from_user": "sipp"},
    "uas_answer.xml": {"pt": "8", "codec": "PCMA"},
    "register.xml": {"user": "sipp", "contact_host": LOOPBACK, "contact_port": "5060",
                     "expires": "300"},
    # Self-check stand-ins that challenge and verify digest credentials:
    "registrar_auth.xml": {"user": "sipp", "password": "password"},
    "uas_auth_invite.xml": {"pt": "8", "codec": "PCMA"},
}


# -- the RTP pcap -------------------------------------------------------------------------

def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(path: str | Path, *, payload_type: int = 8, tone_hz: float | tuple[float, ...] = 1000.0,
                   seconds: float = 5.0, ptime_ms: int = 20, amplitude: float = 0.3,
                   src: tuple[str, int] = ("127.0.0.1", 16000),
                   dst: tuple[str, int] = ("127.0.0.1", 6000), ssrc: int | None = None) -> Path:
    """Write a libpcap file of Ethernet/IPv4/UDP/RTP packets, one every `ptime_ms`,
    carrying a G.711 tone (payload type 0 PCMU or 8 PCMA). sipp's play_pcap_audio
    replays the RTP with the capture's timing to the address in the peer's SDP."""
    if payload_type not in CODECS:
        raise ValueError(f"payload type {payload_type}: only 0 (PCMU) and 8 (PCMA)")
    encode = g711.lin2ulaw if payload_type == 0 else g711.lin2alaw
    rate = 8000
    per_packet = rate * ptime_ms // 1000
    packets = max(1, int(math.ceil(seconds * 1000 / ptime_ms)))
    pcm = tone_samples(tone_hz, packets * per_packet / rate, rate, amplitude)
    payload_all = encode(pcm)
    ssrc = ssrc if ssrc is not None else random.Random(int(tone_hz if isinstance(tone_hz, (int, float)) else tone_hz[0])).getrandbits(32)
    src_ip, dst_ip = (bytes(int(x) for x in a.split(".")) for a in (src[0], dst[0]))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # DLT_EN10MB
    seq0, ts0 = 1000, 160000
    t0 = 1_700_000_000.0
    for i in range(packets):
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | payload_type,
                          (seq0 + i) & 0xFFFF, (ts0 + i * per_packet) & 0xFFFFFFFF, ssrc)
        rtp += payload_all[i * per_packet:(i + 1) * per_packet]
        udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0x4000, 64, 17, 0,
                         src_ip, dst_ip)
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        t = t0 + i * ptime_ms / 1000
        sec = int(t)
        usec = int(round((t - sec) * 1_000_000))
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


def read_rtp_pcap(path: str | Path) -> list[tuple[float, bytes]]:
    """(timestamp, RTP bytes) of each packet of an Ethernet/IPv4/UDP pcap (for checks)."""
    blob = Path(path).read_bytes()
    magic, = struct.unpack_from("<I", blob)
    if magic != 0xA1B2C3D4:
        raise ValueError("not a little-endian microsecond pcap")
    pos, out = 24, []
    while pos + 16 <= len(blob):
        sec, usec, incl, _ = struct.unpack_from("<IIII", blob, pos)
        frame = blob[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        out.append((sec + usec / 1e6, frame[14 + ihl + 8:]))
    return out


# -- running sipp -------------------------------------------------------------------------

@dataclass
class SippResult:
    """What a finished sipp run left behind."""
    returncode: int
    successful: int
    failed: int
    created: int
    work_dir: Path
    cmd: list[str]
    stdout_path: Path
    stderr_path: Path
    stat_path: Path | None
    screen_path: Path | None
    error_path: Path | None
    message_path: Path | None
    timed_out: bool = False
    stats: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and not self.timed_out

    def tail(self, path: Path | None, lines: int = 30) -> str:
        if path is None or not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {path.name} ---\n" + "\n".join(text)

    def summary(self) -> str:
        """A failure message: counts, the command, and the tails of the logs."""
        parts = [f"sipp rc={self.returncode} successful={self.successful} failed={self.failed} "
                 f"created={self.created} timed_out={self.timed_out}",
                 "cmd: " + " ".join(self.cmd)]
        for p in (self.screen_path, self.error_path, self.stderr_path, self.message_path):
            t = self.tail(p)
            if t:
                parts.append(t)
        return "\n".join(parts)


def _scenario_path(scenario: str | Path) -> Path:
    p = Path(scenario)
    if p.exists():
        return p.resolve()
    q = SCENARIO_DIR / p
    if q.exists():
        return q
    raise FileNotFoundError(f"no sipp scenario {scenario}")


def _parse_stat_csv(path: Path) -> dict[str, str]:
    """The last row of a -trace_stat CSV (';'-separated, header first)."""
    if not path.exists():
        return {}
    with path.open(newline="", errors="replace") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def _count_from_screen(path: Path | None, name: str) -> int | None:
    """A cumulative counter ("Successful call", "Failed call") from the final screen."""
    if path is None or not path.exists():
        return None
    hits = re.findall(rf"^\s*{name}\s*\|\s*\d+\s*\|\s*(\d+)", path.read_text(errors="replace"), re.M)
    return int(hits[-1]) if hits else None


@dataclass
class _Prepared:
    cmd: list[str]
    work_dir: Path
    stat_path: Path
    screen_path: Path
    error_path: Path
    message_path: Path
    sip_port: int
    media_port: int


def _prepare(scenario: str | Path, target: str | None, *, work_dir: Path | None, name: str,
             sip_port: int | None, media_port: int | None, transport: str,
             keys: Mapping[str, object] | None, service: str | None, user: str | None,
             password: str | None, calls: int | None, concurrent: int | None, rate: float | None,
             call_ms: int | None, pcap: Path | None, payload_type: int, tone_hz: float,
             pcap_seconds: float, inf: Path | None, trace_msg: bool, args: Sequence[str]) -> _Prepared:
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="sipp-"))
    work = work / name
    work.mkdir(parents=True, exist_ok=True)
    # sipp looks for pcaps next to the scenario: run a copy of it beside rtp20.pcap.
    scen = work / _scenario_path(scenario).name
    shutil.copyfile(_scenario_path(scenario), scen)
    # The scenarios refer to rtp20.pcap relative to sipp's working directory.
    if pcap is not None:
        shutil.copyfile(pcap, work / PCAP_NAME)
    elif not (work / PCAP_NAME).exists():
        write_rtp_pcap(work / PCAP_NAME, payload_type=payload_type, tone_hz=tone_hz,
                       seconds=pcap_seconds)
    sip_port = sip_port or free_port()
    media_port = media_port or free_udp_range(4)
    all_keys = dict(SCENARIO_KEYS.get(scen.name, {}))
    if "pt" in all_keys:
        all_keys["pt"], all_keys["codec"] = str(payload_type), CODECS[payload_type]
    all_keys.update({k: str(v) for k, v in (keys or {}).items()})
    stat = work / "stat.csv"
    screen = work / "screen.log"
    errors = work / "errors.log"
    messages = work / "messages.log"
    t = {"udp": "u1", "tcp": "t1"}[transport]
    cmd = [SIPP]
    if target:
        cmd.append(target)
    cmd += ["-sf", str(scen), "-i", LOOPBACK, "-mi", LOOPBACK, "-p", str(sip_port),
            "-mp", str(media_port), "-t", t, "-nostdin",
            "-trace_stat", "-stf", str(stat), "-fd", "1",
            "-trace_screen", "-screen_file", str(screen),
            "-trace_err", "-error_file", str(errors)]
    if trace_msg:
        cmd += ["-trace_msg", "-message_file", str(messages)]
    for k, v in all_keys.items():
        cmd += ["-key", k, v]
    if service is not None:
        cmd += ["-s", service]
    if user is not None:
        cmd += ["-au", user]
    if password is not None:
        cmd += ["-ap", password]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if concurrent is not None:
        cmd += ["-l", str(concurrent)]
    if rate is not None:
        cmd += ["-r", f"{rate:g}"]
    if call_ms is not None:
        cmd += ["-d", str(call_ms)]
    if inf is not None:
        cmd += ["-inf", str(inf)]
    cmd += list(args)
    return _Prepared(cmd, work, stat, screen, errors, messages, sip_port, media_port)


def _result(p: _Prepared, rc: int, stdout: Path, stderr: Path, timed_out: bool) -> SippResult:
    stats = _parse_stat_csv(p.stat_path)

    def count(stat_name: str, screen_name: str) -> int:
        v = stats.get(stat_name)
        if v not in (None, ""):
            return int(v)
        return _count_from_screen(p.screen_path, screen_name) or 0

    return SippResult(
        returncode=rc, successful=count("SuccessfulCall(C)", "Successful call"),
        failed=count("FailedCall(C)", "Failed call"), created=count("TotalCallCreated", "Total Call created"),
        work_dir=p.work_dir, cmd=p.cmd, stdout_path=stdout, stderr_path=stderr,
        stat_path=p.stat_path if p.stat_path.exists() else None,
        screen_path=p.screen_path if p.screen_path.exists() else None,
        error_path=p.error_path if p.error_path.exists() else None,
        message_path=p.message_path if p.message_path.exists() else None,
        timed_out=timed_out, stats=stats)


_COMMON_DOC = """
    target: "host:port" of the peer (None for a UAS).
    keys: -key values for the scenario (see the module doc); service: -s (the
    Request-URI user); user/password: -au/-ap for digest challenges; calls/concurrent/
    rate/call_ms: -m/-l/-r/-d; payload_type/tone_hz/pcap_seconds: the generated
    rtp20.pcap (or pcap= an existing one); inf: a CSV for -inf; args: extra options.
"""


def run_sipp(scenario: str | Path, target: str | None, *, args: Sequence[str] = (),
             timeout: float = 60, work_dir: Path | None = None, name: str | None = None,
             sip_port: int | None = None, media_port: int | None = None, transport: str = "udp",
             keys: Mapping[str, object] | None = None, service: str | None = None,
             user: str | None = None, password: str | None = None, calls: int | None = 1,
             concurrent: int | None = None, rate: float | None = None, call_ms: int | None = None,
             pcap: Path | None = None, payload_type: int = 8, tone_hz: float = 1000.0,
             pcap_seconds: float = 5.0, inf: Path | None = None,
             trace_msg: bool = True) -> SippResult:
    """Run sipp to completion (or kill it after `timeout` s) and parse its statistics."""
    name = name or f"{Path(scenario).stem}-{os.getpid()}-{time.monotonic_ns()}"
    p = _prepare(scenario, target, work_dir=work_dir, name=name, sip_port=sip_port,
                 media_port=media_port, transport=transport, keys=keys, service=service,
                 user=user, password=password, calls=calls, concurrent=concurrent, rate=rate,
                 call_ms=call_ms, pcap=pcap, payload_type=payload_type, tone_hz=tone_hz,
                 pcap_seconds=pcap_seconds, inf=inf, trace_msg=trace_msg, args=args)
    # sipp stops by itself at -m calls; -timeout is a second fence inside sipp.
    p.cmd += ["-timeout", f"{max(1, int(timeout))}s", "-timeout_error"]
    stdout, stderr = p.work_dir / "stdout.log", p.work_dir / "stderr.log"
    timed_out = False
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(p.cmd, cwd=p.work_dir, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            rc = proc.wait(timeout + 10)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            rc = proc.wait()
    return _result(p, rc, stdout, stderr, timed_out)


run_sipp.__doc__ = (run_sipp.__doc__ or "") + _COMMON_DOC


class SippProcess:
    """A sipp running in the background (typically a UAS); stop() ends it and parses."""

    def __init__(self, p: _Prepared, proc: subprocess.Popen, stdout: Path, stderr: Path):
        self._p = p
        self.proc = proc
        self.port = p.sip_port
        self.media_port = p.media_port
        self.work_dir = p.work_dir
        self.stdout_path, self.stderr_path = stdout, stderr
        self.result: SippResult | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> SippResult:
        """SIGUSR1 (sipp's graceful quit: it dumps the final statistics), then kill."""
        if self.result is not None:
            return self.result
        timed_out = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.proc.kill()
                self.proc.wait()
        self.result = _result(self._p, self.proc.returncode, self.stdout_path, self.stderr_path,
                              timed_out)
        return self.result

    def wait(self, timeout: float) -> SippResult:
        """Wait for sipp to finish by itself (e.g. a UAS run with -m N)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.stop()
        self.result = _result(self._p, self.proc.returncode, self.stdout_path, self.stderr_path,
                              False)
        return self.result

    def __enter__(self) -> "SippProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sipp(scenario: str | Path, target: str | None = None, *, args: Sequence[str] = (),
               work_dir: Path | None = None, name: str | None = None, sip_port: int | None = None,
               media_port: int | None = None, transport: str = "udp",
               keys: Mapping[str, object] | None = None, service: str | None = None,
               user: str | None = None, password: str | None = None, calls: int | None = None,
               concurrent: int | None = None, rate: float | None = None,
               call_ms: int | None = None, pcap: Path | None = None, payload_type: int = 8,
               tone_hz: float = 1000.0, pcap_seconds: float = 5.0, inf: Path | None = None,
               trace_msg: bool = True, ready_timeout: float = 5.0) -> SippProcess:
    """Start sipp in the background (a UAS by default); returns once its SIP port is bound.

    Ports we picked ourselves can still be taken before sipp binds them; then
    sipp is started again on fresh ones."""
    name = name or f"{Path(scenario).stem}-{os.getpid()}-{time.monotonic_ns()}"
    picked = sip_port is None and media_port is None
    for attempt in range(3):
        try:
            return _start_once(scenario, target, work_dir=work_dir, name=name, sip_port=sip_port,
                               media_port=media_port, transport=transport, keys=keys,
                               service=service, user=user, password=password, calls=calls,
                               concurrent=concurrent, rate=rate, call_ms=call_ms, pcap=pcap,
                               payload_type=payload_type, tone_hz=tone_hz,
                               pcap_seconds=pcap_seconds, inf=inf, trace_msg=trace_msg,
                               args=args, ready_timeout=ready_timeout)
        except _PortTaken:
            if not picked or attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_once(scenario: str | Path, target: str | None, *, work_dir: Path | None, name: str,
                sip_port: int | None, media_port: int | None, transport: str,
                keys: Mapping[str, object] | None, service: str | None, user: str | None,
                password: str | None, calls: int | None, concurrent: int | None,
                rate: float | None, call_ms: int | None, pcap: Path | None, payload_type: int,
                tone_hz: float, pcap_seconds: float, inf: Path | None, trace_msg: bool,
                args: Sequence[str], ready_timeout: float) -> SippProcess:
    p = _prepare(scenario, target, work_dir=work_dir, name=name, sip_port=sip_port,
                 media_port=media_port, transport=transport, keys=keys, service=service,
                 user=user, password=password, calls=calls, concurrent=concurrent, rate=rate,
                 call_ms=call_ms, pcap=pcap, payload_type=payload_type, tone_hz=tone_hz,
                 pcap_seconds=pcap_seconds, inf=inf, trace_msg=trace_msg, args=args)
    stdout, stderr = p.work_dir / "stdout.log", p.work_dir / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(p.cmd, cwd=p.work_dir, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
    handle = SippProcess(p, proc, stdout, stderr)
    deadline = time.monotonic() + ready_timeout
    bound = _udp_port_bound if transport == "udp" else _tcp_port_bound
    while not bound(p.sip_port):
        if proc.poll() is not None:
            res = handle.stop()
            summary = res.summary()
            if "errno = 98" in summary:
                raise _PortTaken(f"sipp could not bind its port\n{summary}")
            raise RuntimeError(f"sipp exited at start\n{summary}")
        if time.monotonic() > deadline:
            res = handle.stop()
            raise RuntimeError(f"sipp did not bind {p.sip_port} in {ready_timeout}s\n{res.summary()}")
        time.sleep(0.05)
    return handle


start_sipp.__doc__ = (start_sipp.__doc__ or "") + _COMMON_DOC


def _udp_port_bound(port: int) -> bool:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _tcp_port_bound(port: int) -> bool:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0
