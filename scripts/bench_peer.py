#!/usr/bin/env python3
"""Reference peers for the sipp benchmark (issue 11; not in CI).

``make_target("rtpengine", core=0, rtp_ports=(lo, hi))`` gives a target that
scripts/bench_sipp.py drives in place of the LineBox box: Debian's Kamailio
(registrar + proxy, digest auth for REGISTER and INVITE, record-route) with
every call's media anchored through Debian's rtpengine in userspace
(``--table=-1``, no kernel module, no iptables). That is the ceiling for a
relaying PBX on this machine.

Both daemons run in the foreground as children of this process, pinned with
``taskset -c CORE``, bound to 127.0.0.1 only, configured from temporary files
(scripts/peer/kamailio.cfg is the Kamailio template); nothing is installed
as a service and nothing contacts another address.

Needs: ``apt-get install -y kamailio rtpengine-daemon`` (bookworm: 5.6 and 10.5).

    .venv/bin/python scripts/bench_peer.py                  # self-check: 5 calls of 3 s via sipp
    .venv/bin/python scripts/bench_peer.py --calls 400 --seconds 8 --concurrent 400
    .venv/bin/python scripts/bench_peer.py --mode transcode  # callee answers PCMA only
    .venv/bin/python scripts/bench_peer.py --mode record     # rtpengine writes a pcap per call

The target answers both spellings: ``sip``/``sip_addr``, ``rtp_ports``/``rtp_range``,
``relayed_packets()``/``relayed()``, plus ``calls()``, ``start(mode)``, ``stop()``, ``pids()``
(rtpengine first, then Kamailio's creator and workers), ``domain`` ("127.0.0.1") and
``users`` (7001 and 7002, random passwords). rtpengine takes 4 ports a call (RTP and RTCP on
both legs): give it a range of at least 4 x the concurrent calls, or the INVITEs past that
get "503 Media Relay Unavailable".

The self-check uses scripts/bench_sipp.py's own pieces, so it exercises exactly what the
benchmark sends: a callee sipp (scripts/sipp/uas.xml) registered as 7002 by bench_sipp's
``register()`` (digest auth, from Python), a caller sipp (scripts/sipp/uac.xml) calling it
with digest auth, and a PCMU rtp_stream both ways (bench_sipp's ``tone_wav``). It prints the
packets rtpengine relayed, the callee-side SDP (which must name rtpengine's port), and the
CPU and memory of the target's processes.

The one set of scenarios works against both the box and Kamailio: sipp 3.6.1 sends in-dialog
requests to the remote address it was given, so the callee's 180/200 echo Record-Route
(``[last_Record-Route:]``) and the caller puts ``[routes]`` in its ACK and BYE, which Kamailio
then loose-routes; the box (a B2BUA) adds no Record-Route, and both expand to nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
PEER_DIR = Path(__file__).resolve().parent / "peer"
KAMAILIO_CFG = PEER_DIR / "kamailio.cfg"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- small helpers ------------------------------------------------------------------

def free_port(avoid: tuple[int, int] | None = None) -> int:
    """A port on 127.0.0.1 free for UDP (and TCP, for the CLI) right now, outside ``avoid``."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            if avoid and avoid[0] <= port <= avoid[1]:
                continue
            try:
                t.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def free_media_port(avoid: tuple[int, int] | None = None, lo: int = 20000, hi: int = 29996) -> int:
    """An even port P on 127.0.0.1 with P..P+3 free for UDP right now (sipp's RTP, RTCP and its
    video pair), outside ``avoid``."""
    import random
    for _ in range(500):
        port = random.randrange(lo, hi, 2)
        if avoid and avoid[0] - 3 <= port <= avoid[1]:
            continue
        socks = []
        try:
            for q in range(port, port + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, q))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free media port on 127.0.0.1")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc/*/stat ppid)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of ``pids`` (threads included), in seconds; gone pids count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in KiB. Kamailio's workers share one SHM segment, which RSS
    counts once per process and PSS splits between them: PSS is the fair sum."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


# --- rtpengine ng control protocol (bencode over UDP) ----------------------------------

def bencode(value) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(type(value))


def bdecode(data: bytes):
    def dec(i: int):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            out, i = [], i + 1
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            out, i = {}, i + 1
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v, i = dec(i)
                out[k.decode(errors="replace")] = v
            return out, i + 1
        j = data.index(b":", i)
        n = int(data[i:j])
        return data[j + 1:j + 1 + n], j + 1 + n
    return dec(0)[0]


def ng_command(port: int, command: dict, timeout: float = 2.0) -> dict:
    cookie = secrets.token_hex(6).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((HOST, port))
        s.send(cookie + b" " + bencode(command))
        while True:
            data = s.recv(65535)
            if data.startswith(cookie + b" "):
                return bdecode(data[len(cookie) + 1:])


# --- the target ------------------------------------------------------------------------

class KamailioRtpengine:
    """Kamailio (SIP) + rtpengine (media, userspace), both pinned to ``core``.

    Modes (``start(mode)``): "relay" and "setups" (plain anchoring), "transcode" (the offer
    to the callee gets PCMA added, ``codec-transcode-PCMA``, so a PCMA-only callee answer is
    transcoded to the caller's PCMU by rtpengine), "record" (rtpengine writes each call to
    a pcap file under the temp dir, ``record-call=yes``, ``--recording-method=pcap``)."""

    name = "kamailio+rtpengine"
    MODES = ("relay", "setups", "transcode", "record")
    RTPE_FLAGS = "replace-origin replace-session-connection"
    OFFER_FLAGS = {"transcode": "codec-transcode-PCMA", "record": "record-call=yes"}

    def __init__(self, *, core: int = 0, rtp_ports: tuple[int, int] = (30000, 30999),
                 children: int = 4, users: dict[str, str] | None = None,
                 rtpengine_threads: int | None = None, log_level: int = 5, sip_debug: int = 1) -> None:
        for exe in ("kamailio", "rtpengine", "taskset"):
            if not shutil.which(exe):
                raise RuntimeError(f"{exe} not found: apt-get install -y kamailio rtpengine-daemon")
        self.core = core
        self.rtp_ports = rtp_ports
        self.children = children
        self.rtpengine_threads = rtpengine_threads
        self.log_level = log_level
        self.sip_debug = sip_debug
        self.domain = HOST
        self.users = dict(users or {"7001": secrets.token_hex(6), "7002": secrets.token_hex(6)})
        self.sip = (HOST, 0)
        self.mode = "relay"
        self.ng_port = 0
        self.cli_port = 0
        self._dir: Path | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}

    # the names scripts/bench_sipp.py uses
    @property
    def sip_addr(self) -> tuple[str, int]:
        return self.sip

    @property
    def rtp_range(self) -> tuple[int, int]:
        return self.rtp_ports

    def relayed(self) -> int | None:
        return self.relayed_packets()

    def calls(self) -> int | None:
        """Calls rtpengine holds now (its ng ``statistics``: current sessions)."""
        try:
            return int(self.statistics()["statistics"]["currentstatistics"]["sessionstotal"])
        except (OSError, socket.timeout, ValueError, KeyError, TypeError):
            return None

    # -- lifecycle
    def start(self, mode: str | None = None) -> None:
        """Start both daemons for ``mode`` (default "relay") and wait until each answers
        (rtpengine: ng ``ping``; Kamailio: 200 to OPTIONS). Raises with the log tail."""
        mode = mode or "relay"
        if mode not in self.MODES:
            raise ValueError(f"{self.name}: unknown mode {mode!r} (known: {', '.join(self.MODES)})")
        if self._procs:
            if mode == self.mode:
                return
            self.stop()
        self.mode = mode
        self._dir = Path(tempfile.mkdtemp(prefix="linebox-peer-"))
        try:
            self._start_rtpengine()
            self._start_kamailio()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, key: str, argv: list[str]) -> subprocess.Popen:
        assert self._dir is not None
        log = self._dir / f"{key}.log"
        self._logs[key] = log
        with open(log, "wb") as out:
            proc = subprocess.Popen(["taskset", "-c", str(self.core), *argv], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, cwd=self._dir,
                                    start_new_session=True)
        self._procs[key] = proc
        return proc

    def _port(self, previous: int) -> int:
        """``previous`` again if it is still free (a restart keeps the addresses), else a new one."""
        if previous:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    u.bind((HOST, previous))
                    t.bind((HOST, previous))
                return previous
            except OSError:
                pass
        return free_port(avoid=self.rtp_ports)

    def _fail(self, key: str, why: str) -> None:
        raise RuntimeError(f"{key}: {why}\n--- {self._logs[key]} (tail) ---\n{_tail(self._logs[key])}")

    def _start_rtpengine(self) -> None:
        lo, hi = self.rtp_ports
        self.ng_port = self._port(self.ng_port)
        self.cli_port = self._port(self.cli_port)
        argv = [
            "rtpengine",
            "--config-file=none",          # else it reads /etc/rtpengine/rtpengine.conf (fixed ports)
            "--foreground", "--log-stderr", f"--log-level={self.log_level}",
            "--table=-1",                  # userspace forwarding only, no kernel module
            f"--interface={HOST}",
            f"--listen-ng={HOST}:{self.ng_port}",
            f"--listen-cli={HOST}:{self.cli_port}",
            f"--port-min={lo}", f"--port-max={hi}",
            "--delete-delay=0",
            "--timeout=60", "--silent-timeout=600",
            f"--pidfile={self._dir}/rtpengine.pid",
        ]
        if self.mode == "record":
            (self._dir / "rec").mkdir()
            argv += [f"--recording-dir={self._dir}/rec", "--recording-method=pcap", "--recording-format=raw"]
        if self.rtpengine_threads:
            argv.append(f"--num-threads={self.rtpengine_threads}")
        proc = self._spawn("rtpengine", argv)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail("rtpengine", f"exited with {proc.returncode}")
            try:
                if ng_command(self.ng_port, {"command": "ping"}, timeout=0.3).get("result") == b"pong":
                    return
            except (OSError, socket.timeout):
                time.sleep(0.1)
        self._fail("rtpengine", "no pong on the ng port within 10 s")

    def render_config(self, sip_port: int) -> str:
        users = "\n".join(f'\t$sht(users=>{u}) = "{p}";' for u, p in self.users.items())
        for u, p in self.users.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", u) or '"' in p or "\\" in p:
                raise ValueError(f"unsupported user/password for the config: {u!r}")
        alias = "" if self.domain == HOST else f'alias="{self.domain}"'
        subst = {"SIP_PORT": str(sip_port), "ALIAS": alias, "NG_PORT": str(self.ng_port),
                 "CHILDREN": str(self.children), "SECRET": secrets.token_hex(16), "USERS": users,
                 "RTPE_FLAGS": self.RTPE_FLAGS,
                 "RTPE_OFFER_FLAGS": (self.RTPE_FLAGS + " " + self.OFFER_FLAGS.get(self.mode, "")).strip()}
        # the header comment names the placeholders: fill only what follows it
        head, sep, body = KAMAILIO_CFG.read_text().partition("####### Global parameters")
        for k, v in subst.items():
            body = body.replace(f"@@{k}@@", v)
        left = re.findall(r"@@[A-Z_]+@@", body)
        if left or not sep:
            raise ValueError(f"unfilled placeholders in {KAMAILIO_CFG}: {left}")
        return head + sep + body

    def _start_kamailio(self) -> None:
        assert self._dir is not None
        sip_port = self._port(self.sip[1])
        cfg = self._dir / "kamailio.cfg"
        cfg.write_text(self.render_config(sip_port))
        run = self._dir / "run"
        run.mkdir()
        check = subprocess.run(["kamailio", "-c", "-f", str(cfg), "-Y", str(run)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"kamailio -c failed:\n{check.stdout}{check.stderr}")
        # -DD: the creator stays in the foreground (it forks its workers); -E: log to stderr
        proc = self._spawn("kamailio", ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(run),
                                         "-m", "64", "-M", "8", f"--debug={self.sip_debug}", "-P", str(self._dir / "kamailio.pid")])
        self.sip = (HOST, sip_port)
        deadline = time.monotonic() + 10
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            s.settimeout(0.3)
            lport = s.getsockname()[1]
            n = 0
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    self._fail("kamailio", f"exited with {proc.returncode}")
                n += 1
                s.sendto((f"OPTIONS sip:{HOST}:{sip_port} SIP/2.0\r\n"
                          f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bK-ready{n}\r\n"
                          f"From: <sip:probe@{HOST}>;tag=probe\r\nTo: <sip:{HOST}>\r\n"
                          f"Call-ID: ready-{os.getpid()}-{n}\r\nCSeq: {n} OPTIONS\r\n"
                          f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), self.sip)
                try:
                    if s.recv(65535).startswith(b"SIP/2.0 200"):
                        return
                except socket.timeout:
                    pass
        self._fail("kamailio", "no 200 to OPTIONS within 10 s")

    def stop(self) -> None:
        for key in ("kamailio", "rtpengine"):
            proc = self._procs.pop(key, None)
            if proc is None:
                continue
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)   # its own session: the daemon and its workers
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(5)
            # workers left behind in the group (kamailio's children exit with the creator)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- measurement
    def pids(self) -> list[int]:
        out: list[int] = []
        for proc in self._procs.values():
            if proc.poll() is None:
                out.append(proc.pid)
                out += _children(proc.pid)
        return out

    def statistics(self) -> dict:
        """rtpengine's ng ``statistics`` answer (bencode dict, byte-string values)."""
        return ng_command(self.ng_port, {"command": "statistics"})

    def relayed_packets(self) -> int | None:
        """RTP+RTCP packets rtpengine relayed since it started (userspace + kernel, both
        directions, calls up and ended alike), from ``totalstatistics.relayedpackets`` of its
        ng ``statistics`` command. In 10.5 that counter moves live while calls are up, despite
        `rtpengine-ctl list totals` saying it "does not include current running sessions"."""
        if "rtpengine" not in self._procs or self._procs["rtpengine"].poll() is not None:
            return None
        try:
            return int(self.statistics()["statistics"]["totalstatistics"]["relayedpackets"])
        except (OSError, socket.timeout, ValueError, KeyError, TypeError):
            return None

    def log_tail(self, key: str, lines: int = 40) -> str:
        return _tail(self._logs[key], lines) if key in self._logs else ""


Target = KamailioRtpengine


def make_target(kind: str, args=None, *, core: int | None = None,
                rtp_ports: tuple[int, int] | None = None, **kw) -> KamailioRtpengine:
    """A reference peer. Either ``make_target("rtpengine", core=0, rtp_ports=(lo, hi))`` or, as
    scripts/bench_sipp.py calls it, ``make_target("rtpengine", args)`` with its argparse
    namespace (``args.rtp_range``; the core from ``core=``, else ``args.box_core`` / ``args.core``,
    else 0)."""
    if args is not None:
        if rtp_ports is None:
            rtp_ports = getattr(args, "rtp_range", None)
        if core is None:
            core = getattr(args, "box_core", getattr(args, "core", None))
    core = 0 if core is None else core
    rtp_ports = rtp_ports or (30000, 30999)
    if kind in ("rtpengine", "kamailio+rtpengine", "kamailio"):
        return KamailioRtpengine(core=core, rtp_ports=tuple(rtp_ports), **kw)
    raise ValueError(f"unknown peer {kind!r} (known: rtpengine)")


# --- self-check with sipp --------------------------------------------------------------

def _sipp_argv(scenario: str, remote: str, core: int | None, *args: str) -> list[str]:
    argv = ["sipp", "-sf", scenario, "-i", HOST, *args, "-trace_err", "-nostdin", remote]
    return argv if core is None else ["taskset", "-c", str(core), *argv]


def _sdp_offers(log: Path) -> list[tuple[str, int]]:
    """(c= address, m=audio port) of every INVITE a sipp ``-trace_msg`` log shows received."""
    out = []
    for block in re.split(r"-{20,}", log.read_text(errors="replace")):
        if "message received" in block and "\nINVITE sip:" in block:
            m, c = re.search(r"m=audio (\d+)", block), re.search(r"c=IN IP4 (\S+)", block)
            if m and c:
                out.append((c.group(1), int(m.group(1))))
    return out


def _sipp_counts(screen: str) -> tuple[int, int]:
    def last(label: str) -> int:
        found = re.findall(label + r"\s*\|\s*\d+\s*\|\s*(\d+)", screen)
        return int(found[-1]) if found else -1
    return last("Successful call"), last("Failed call")


def self_check(calls: int, seconds: float, concurrent: int, core: int, gen_core: int | None,
               rtp_ports: tuple[int, int], mode: str = "relay") -> int:
    """Start the target, register the callee, run ``calls`` calls of ``seconds`` through it with
    PCMU both ways, print what it relayed and cost, stop it. 0 when every check passed."""
    import bench_sipp  # scripts/bench_sipp.py: its scenarios (scripts/sipp), tone files and REGISTER
    target = make_target("rtpengine", core=core, rtp_ports=rtp_ports)
    work = Path(tempfile.mkdtemp(prefix="linebox-peer-sipp-"))
    # the caller offers and streams PCMU; the callee answers and streams PCMA only in transcode
    callee_codec = "PCMA" if mode == "transcode" else "PCMU"
    callee_pt = str(bench_sipp.CODECS[callee_codec])
    for scenario, codec in (("uac.xml", "PCMU"), ("uas.xml", callee_codec)):
        wav = bench_sipp.tone_wav(work / f"tone1k_{codec.lower()}.wav", codec)
        bench_sipp.scenario_copy(scenario, work, wav, bench_sipp.CODECS[codec])
    callee_port, caller_port = free_port(avoid=rtp_ports), free_port(avoid=rtp_ports)
    callee_mp = free_media_port(avoid=rtp_ports)  # sipp 3.6: one media port for all its calls
    caller_mp = free_media_port(avoid=rtp_ports)
    while abs(caller_mp - callee_mp) < 4:
        caller_mp = free_media_port(avoid=rtp_ports)
    caller, callee = "7001", "7002"
    budget = int(calls / max(concurrent, 1) * (seconds + 1) + 60)
    uas = None
    try:
        t0 = time.monotonic()
        target.start(mode)
        print(f"mode {mode}: target {target.name} up in {time.monotonic() - t0:.2f} s: SIP {target.sip[0]}:{target.sip[1]}, "
              f"ng {target.ng_port}, RTP {rtp_ports[0]}-{rtp_ports[1]}, {len(target.pids())} processes on core {core}")
        remote = f"{target.sip[0]}:{target.sip[1]}"
        pids = target.pids()
        idle_rss, idle_pss = memory_kib(pids)

        uas = subprocess.Popen(
            _sipp_argv("uas.xml", remote, gen_core, "-p", str(callee_port), "-mi", HOST, "-mp", str(callee_mp),
                       "-m", str(calls), "-timeout", f"{budget}s", "-trace_msg",
                       "-key", "pt", callee_pt, "-key", "codec", callee_codec),
            cwd=work, stdin=subprocess.DEVNULL, stdout=open(work / "uas.screen", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10          # the callee sipp bound its SIP port
        while bench_sipp._udp_free(callee_port) and uas.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            bench_sipp.register(target, callee, callee_port)
        except (OSError, RuntimeError) as exc:
            print(f"REGISTER {callee} with digest auth (Contact :{callee_port}): FAILED ({exc})")
            print("--- kamailio log (tail) ---\n" + target.log_tail("kamailio"))
            return 1
        print(f"REGISTER {callee} with digest auth (Contact :{callee_port}): ok")

        pkts0 = target.relayed_packets() or 0
        cpu0, w0 = cpu_seconds(pids), time.monotonic()
        uac = subprocess.run(
            _sipp_argv("uac.xml", remote, gen_core, "-p", str(caller_port), "-mi", HOST, "-mp", str(caller_mp),
                       "-s", callee, "-au", caller, "-ap", target.users[caller], "-key", "caller", caller,
                       "-key", "pt", "0", "-key", "codec", "PCMU",
                       "-d", str(int(seconds * 1000)), "-m", str(calls), "-l", str(concurrent),
                       "-r", str(concurrent), "-timeout", f"{budget}s"),
            cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=budget + 30)
        wall = time.monotonic() - w0
        try:
            uas.wait(10)
        except subprocess.TimeoutExpired:
            pass
        cpu = cpu_seconds(pids) - cpu0
        rss, pss = memory_kib(target.pids())
        pkts1 = target.relayed_packets()
        recorded = sorted((target._dir / "rec").rglob("*.pcap")) if mode == "record" and target._dir else []
        relayed = None if pkts1 is None else pkts1 - pkts0
        screen = uac.stdout.decode(errors="replace")
        good, bad = _sipp_counts(screen)
        print(f"calls: {calls} x {seconds:g} s, {concurrent} at once: {good} successful, {bad} failed "
              f"(caller sipp exit {uac.returncode}, callee sipp exit {uas.poll()})")
        expected = int(calls * seconds * 50 * 2)
        print(f"rtpengine relayed {relayed} packets (both directions; {calls} x {seconds:g} s x 50/s x 2 = {expected})")
        offers = [o for log in work.glob("uas_*_messages.log") for o in _sdp_offers(log)]
        anchored = [o for o in offers if o[0] == HOST and rtp_ports[0] <= o[1] <= rtp_ports[1]]
        print(f"callee's SDP: {len(anchored)} of {len(offers)} INVITEs name rtpengine "
              f"(caller offered {HOST}:{caller_mp}; callee got e.g. {sorted(set(offers))[:3]})")
        print(f"target CPU: {cpu:.2f} s in {wall:.1f} s ({100 * cpu / wall:.1f} % of a core)"
              + (f", {1e6 * cpu / relayed:.1f} us per relayed packet, signalling included" if relayed else ""))
        print(f"target memory: RSS sum {rss / 1024:.1f} MiB, PSS sum {pss / 1024:.1f} MiB over "
              f"{len(target.pids())} processes (idle: RSS {idle_rss / 1024:.1f}, PSS {idle_pss / 1024:.1f})")
        if mode == "record":
            print(f"recordings: {len(recorded)} pcap files, {sum(f.stat().st_size for f in recorded) / 1e6:.1f} MB")
        ok = ((mode != "record" or len(recorded) >= calls) and uac.returncode == 0 and good == calls and relayed is not None and relayed >= expected * 0.8
              and len(anchored) == len(offers) >= calls)
        if not ok:
            print("--- caller sipp (tail) ---\n" + screen[-3000:])
            for log in work.glob("*_errors.log"):
                print(f"--- {log.name} ---\n{_tail(log, 20)}")
            print("--- kamailio log (tail) ---\n" + target.log_tail("kamailio"))
            print("--- rtpengine log (tail) ---\n" + target.log_tail("rtpengine"))
        print("self-check:", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if uas is not None and uas.poll() is None:
            uas.terminate()
            try:
                uas.wait(5)
            except subprocess.TimeoutExpired:
                uas.kill()
                uas.wait()
        target.stop()
        if os.environ.get("KEEP_PEER_WORK"):
            print("sipp work dir kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrent", type=int, default=5, help="calls in flight (sipp -l, and -r)")
    ap.add_argument("--core", type=int, default=0, help="core the target is pinned to")
    ap.add_argument("--gen-core", type=int, default=1, help="core for the sipp processes (-1: no pinning)")
    ap.add_argument("--rtp-ports", help="rtpengine's port range (default: 30000 up, 5 ports a call, 1000 at least; "
                                         "rtpengine takes 4 a call: RTP and RTCP on both legs)")
    ap.add_argument("--mode", default="relay", choices=KamailioRtpengine.MODES,
                    help="transcode: the callee answers PCMA only; record: rtpengine writes pcaps")
    a = ap.parse_args()
    if a.rtp_ports:
        lo, hi = (int(x) for x in a.rtp_ports.split("-"))
    else:
        lo, hi = 30000, 30000 + max(1000, 5 * a.concurrent) - 1
    return self_check(a.calls, a.seconds, a.concurrent, a.core, None if a.gen_core < 0 else a.gen_core, (lo, hi), a.mode)


if __name__ == "__main__":
    sys.exit(main())
