#!/usr/bin/env python3
"""The sipp reference harness (not in CI): `linebox run` measured with a load generator we did not write.

Issue 11: our own generator (scripts/bench_box.py) flatters the box; this drives it the way an
outsider would. The box runs pinned to one core (``taskset -c 0``); two sipp 3.6.1 processes,
both pinned to the other core (``taskset -c 1``), are the caller (UAC, digest auth: INVITE ->
407 -> ACK -> INVITE with credentials) and the callee (UAS, registered as its extension with
digest auth). Both stream 20 ms G.711 with sipp's ``rtp_stream`` both ways through the box.

Modes (each row runs against a freshly started box, so its peak RSS belongs to that row):

* ``relay``      N concurrent calls held while RTP flows for ``--seconds`` (``--calls`` sweep);
* ``record``     the same with the box recording every call (``recording.calls always``);
* ``transcode``  the caller offers PCMU only, the callee answers PCMA only: the box translates;
* ``setups``     calls of ``--setup-hold`` s with media at R calls/s for ``--setup-seconds``
                 (``--rates`` sweep).

Per row: calls attempted / succeeded / failed and why (sipp's -trace_stat CSV and the status
lines of the unexpected messages in its -trace_err log), packets the box relayed per second
against the packets expected (calls x 50 x 2), loss, box CPU (% of its core, and µs per relayed
packet, /proc/PID/stat), box peak RSS (VmHWM) and RSS, generator CPU (both sipps) and how busy
the generator core was; a row where the generator passed 70 % is flagged "generator-limited".
Once per run: the box's RSS/PSS 10 s after start with one registration (/proc/PID/smaps_rollup).

sipp 3.6.1 has no -min_rtp_port/-max_rtp_port: rtp_stream sends every call from the one
socket at -mp (and -mp + 2 for video). The harness puts that port, and sipp's SIP ports,
below the box's RTP range and outside the kernel's ephemeral range, so nothing sipp binds can
take a port the box hands out.

    scripts/bench sipp                                   # setup, then every mode with defaults
    .venv/bin/python scripts/bench_sipp.py --mode relay --calls 200,400 --seconds 10
    .venv/bin/python scripts/bench_sipp.py --mode setups --rates 200,300,400 --setup-seconds 10
    .venv/bin/python scripts/bench_sipp.py --mode setups --rates 400 --peer rtpengine   # scripts/bench_peer.py

``--peer NAME`` also drives a reference system, after the box and in the same run, with the same
rows (``--peer-only``: the peer alone): scripts/bench_peer.py (imported only then) provides
``make_target(name, core=, rtp_ports=)``, adapted by ``PeerTarget`` to ``Target``.
The scenarios (scripts/sipp/uac.xml, uas.xml) are the same for every target: the callee echoes
Record-Route and the caller sends ``[routes]`` in ACK and BYE, which a record-routing proxy
(Kamailio) needs and the box, which adds no Record-Route, never sees (both expand to nothing).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_box import CALLEE, CALLER, HOST, Box, family, machine, register_digest  # noqa: E402
from firmware.media import g711  # noqa: E402

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = ROOT / "scripts" / "sipp"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PACKETS_PER_CALL_S = 50 * 2          # 20 ms packets, both directions
GEN_LIMIT_PCT = 70.0
MODES = ("relay", "record", "transcode", "setups")
CODECS = {"PCMU": 0, "PCMA": 8}


# --- what the harness drives ------------------------------------------------------------------

class Target(Protocol):
    """A system under test: what sipp talks to and what the harness measures.

    The box implements it below (``BoxTarget``); scripts/bench_peer.py adds others (e.g.
    Kamailio + rtpengine) without touching this file."""

    name: str
    sip_addr: tuple[str, int]          # where both sipps send SIP
    domain: str                        # the digest realm's host part / From and To domain
    users: dict[str, str]              # extension -> password; must hold CALLER and CALLEE
    rtp_range: tuple[int, int]         # the target's RTP ports (the generator keeps out)

    def start(self, mode: str) -> None:
        """Start (or reconfigure) for ``mode``: "relay", "record", "transcode" or "setups"."""

    def pids(self) -> list[int]:
        """Processes whose CPU and memory count as the target's (first one: the main one)."""

    def relayed(self) -> int | None:
        """Cumulative RTP/RTCP packets relayed, or None when the target cannot tell."""

    def calls(self) -> int | None:
        """Calls up now, or None when the target cannot tell."""

    def stop(self) -> None:
        """Stop and clean up; called once per row."""


class SlowCores:
    """``--worker-share F``: each media worker gets at most F of a core (a CFS quota in a cgroup
    of its own, cgroup v1 ``cpu`` controller) and worker i is pinned to core i. On a 2-core
    machine with the generator on one of the cores, this is how 1 worker is compared with 2
    without the generator being the limit: both rows give each worker the same slow core (a
    Raspberry Pi 4's core does roughly a third of this machine's), and the generator gets the
    rest. Workers start with the first call and may be restarted, so the box's children are
    watched every 50 ms and each new one is throttled as it appears."""

    ROOT = Path("/sys/fs/cgroup/cpu")
    PERIOD_US = 10_000       # short: a throttled worker waits at most 10 ms, not 100

    def __init__(self, share: float, box_pid: int) -> None:
        if not (self.ROOT / "cgroup.procs").exists():
            raise SystemExit(f"--worker-share needs the cgroup v1 cpu controller at {self.ROOT}")
        self.share, self.box_pid = share, box_pid
        self.groups: list[Path] = []
        self.seen: set[int] = set()
        self.cores = list(range(os.cpu_count() or 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for pid in family(self.box_pid)[1:]:
                if pid not in self.seen:
                    self.seen.add(pid)
                    self._throttle(pid, len(self.seen) - 1)

    def _throttle(self, pid: int, index: int) -> None:
        group = self.ROOT / f"linebox-bench-{pid}"
        group.mkdir(exist_ok=True)
        self.groups.append(group)
        (group / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(int(self.share * self.PERIOD_US)))
        try:
            (group / "cgroup.procs").write_text(str(pid))
            os.sched_setaffinity(pid, {self.cores[index % len(self.cores)]})
        except (ProcessLookupError, OSError):
            pass            # it ended already (a worker retired, the box stopping)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for group in self.groups:
            try:
                for pid in (group / "cgroup.procs").read_text().split():
                    (self.ROOT / "cgroup.procs").write_text(pid)
                group.rmdir()
            except OSError:
                pass


class BoxTarget:
    """`linebox run` started by bench_box.Box (temp data dir, 7001/7002, pinned to ``core``)."""

    name = "linebox"

    def __init__(self, core: int | str, rtp_range: tuple[int, int], settings: list[tuple[str, str]] = (),
                 linebox: str | None = None, run_args: list[str] = (), worker_share: float | None = None) -> None:
        self.core = core
        self.worker_share = worker_share   # --worker-share: see SlowCores
        self.slow: SlowCores | None = None
        self.run_args = list(run_args)     # more `linebox run` options (--media-workers N)
        self.linebox = linebox             # another build's `linebox` executable (--linebox)
        self.rtp_range = rtp_range
        self.settings = list(settings)     # `linebox set KEY VALUE` after start (--set)
        self.box: Box | None = None

    def start(self, mode: str) -> None:
        self.box = Box(self.core, self.rtp_range)
        self.box.run_args = self.run_args
        if self.linebox:
            self.box.linebox = self.linebox
        self.box.start()
        if self.worker_share:
            self.slow = SlowCores(self.worker_share, self.box.proc.pid)
        if mode == "record":
            # applied live (`linebox set` tells the running box): every call is recorded
            self.box.cli("set", "recording.calls", "always")
        for key, value in self.settings:
            self.box.cli("set", key, value)
        self.sip_addr = (HOST, self.box.sip_port)
        self.domain = f"{HOST}:{self.box.sip_port}"
        self.users = dict(self.box.secrets)

    def pids(self) -> list[int]:
        """The box and its media workers (started with the first calls)."""
        return family(self.box.proc.pid) if self.box and self.box.proc else []

    def relayed(self) -> "int | dict | None":
        """The box's relayed packets; with media workers, each worker's running total and the
        time it was counted, so a rate does not depend on when /health was read (the workers
        report once a second)."""
        media = self.box.health()["media"]
        workers = media.get("workers")
        if not workers or not any(workers.get("load") or ()):
            return media["packets_relayed"]
        return {"total": media["packets_relayed"],
                "workers": {pid: (l["at"], l["relayed"], l["received"])
                            for pid, l in zip(workers["pids"], workers["load"]) if l and "at" in l}}

    def calls(self) -> int | None:
        return self.box.health()["calls"]

    def health(self) -> dict:
        return self.box.health()

    def log_problems(self) -> list[str]:
        return self.box.log_problems() if self.box else []

    def stop(self) -> None:
        if self.box is not None:
            self.box.cleanup()
            self.box = None
        if self.slow is not None:
            self.slow.stop()
            self.slow = None


class PeerTarget:
    """A scripts/bench_peer.py target seen as a ``Target``. The peer object gives ``name``,
    ``sip`` (host, port), ``domain``, ``users``, ``rtp_ports``, ``start(mode)``, ``stop()``,
    ``pids()`` and ``relayed_packets()``; optionally ``MODES`` (the modes it can run; else
    relay and setups only) and ``calls()`` (calls up now, e.g. rtpengine's current sessions)."""

    def __init__(self, peer) -> None:
        self.peer = peer
        self.name = peer.name
        self.rtp_range = tuple(peer.rtp_ports)

    def start(self, mode: str) -> None:
        if mode not in getattr(self.peer, "MODES", ("relay", "setups")):
            raise SystemExit(f"--peer {self.name}: cannot run mode {mode}")
        self.peer.start(mode)
        self.sip_addr, self.domain, self.users = tuple(self.peer.sip), self.peer.domain, dict(self.peer.users)

    def pids(self) -> list[int]:
        return self.peer.pids()

    def relayed(self) -> int | None:
        return self.peer.relayed_packets()

    def calls(self) -> int | None:
        calls = getattr(self.peer, "calls", None)
        return calls() if calls is not None else None

    def stop(self) -> None:
        self.peer.stop()


def make_targets(args: argparse.Namespace, core: int) -> list[Target]:
    """The box, then (``--peer``) the reference peer: their rows come from the same run."""
    targets: list[Target] = [] if args.peer_only else [make_box(args, core)]
    if args.peer:
        targets.append(make_peer(args, core))
    return targets


def make_peer(args: argparse.Namespace, core: int) -> Target:
    if args.peer:
        try:
            import bench_peer  # scripts/bench_peer.py, imported only for --peer
        except ImportError as exc:
            raise SystemExit(f"--peer {args.peer}: scripts/bench_peer.py is missing ({exc})") from None
        # --box-cores pins the peer too (a taskset list), else the box's core
        return PeerTarget(bench_peer.make_target(args.peer, core=args.box_cores or core, rtp_ports=args.rtp_range))
    raise ValueError("no --peer")


def make_box(args: argparse.Namespace, core: int) -> Target:
    run_args = ["--media-workers", str(args.media_workers)] if args.media_workers is not None else []
    return BoxTarget(args.box_cores or core, args.rtp_range, args.set, args.linebox, run_args, args.worker_share)


# --- /proc ------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_busy(core: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core, /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]
            return sum(v) - idle, sum(v)
    return 0, 1


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and (smaps_rollup) Pss in MB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out


class CpuMeter:
    """CPU seconds of some processes and the busy share of one core over a window."""

    def __init__(self, pids: list[int], core: int | None = None) -> None:
        self.pids, self.core = pids, core
        self.t0 = time.monotonic()
        self.c0 = [cpu_seconds(p) for p in pids]
        self.k0 = core_busy(core) if core is not None else (0, 1)

    def read(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.t0, 1e-6)
        used = sum(cpu_seconds(p) - c for p, c in zip(self.pids, self.c0))
        out = {"wall_s": wall, "cpu_s": used, "cpu_pct": 100.0 * used / wall}
        if self.core is not None:
            b1, t1 = core_busy(self.core)
            out["core_busy_pct"] = 100.0 * (b1 - self.k0[0]) / max(t1 - self.k0[1], 1)
        return out


# --- ports, media file ------------------------------------------------------------------------

def ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def pick_ports(count: int, avoid: list[tuple[int, int]], start: int = 5100) -> list[int]:
    """``count`` bindable UDP ports, each with port + 2 free too (sipp's video socket), in
    none of the ``avoid`` ranges: sipp must never hold a port the box may allocate."""
    out: list[int] = []
    port = start
    while len(out) < count and port < 65000:
        clash = any(lo - 3 <= port <= hi for lo, hi in avoid)
        if not clash and all(_udp_free(p) for p in (port, port + 1, port + 2, port + 3)):
            out.append(port)
            port += 4
            continue
        port += 4
    if len(out) < count:
        raise RuntimeError(f"no {count} free UDP ports outside {avoid}")
    return out


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def tone_wav(path: Path, codec: str, hz: float = 1000.0, seconds: float = 10.0) -> Path:
    """A G.711 WAV (format 7 µ-law / 6 A-law, 8 kHz mono) of a ``hz`` tone.

    sipp 3.6.1's rtp_stream sends the file's bytes as they are, header included; the header
    is padded (a JUNK chunk) to exactly 160 bytes so it takes one packet of a loop and every
    other packet is a whole 20 ms of tone."""
    if path.exists():
        return path
    n = int(8000 * seconds)
    pcm = struct.pack(f"<{n}h", *(int(0.3 * 32767 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n)))
    data = g711.lin2ulaw(pcm) if codec == "PCMU" else g711.lin2alaw(pcm)
    fmt = struct.pack("<HHIIHHH", 7 if codec == "PCMU" else 6, 1, 8000, 8000, 1, 8, 0)
    head = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    junk_len = 160 - (8 + len(head) + 8 + 8)        # RIFF hdr, head, JUNK hdr, data hdr
    head += b"JUNK" + struct.pack("<I", junk_len) + bytes(junk_len)
    blob = b"RIFF" + struct.pack("<I", len(head) + 8 + len(data)) + head + b"data" + struct.pack("<I", len(data)) + data
    assert blob.index(b"data") + 8 == 160
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


# --- sipp -------------------------------------------------------------------------------------

@dataclass
class SippRun:
    """One sipp process: its files and, once ended, its outcome."""

    name: str
    cmd: list[str]
    work: Path
    proc: subprocess.Popen | None = None
    stats: dict[str, str] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)   # status/method -> count
    errors: dict[str, int] = field(default_factory=dict)        # other error kinds -> count

    def count(self, column: str) -> int:
        try:
            return int(self.stats.get(column, "0") or 0)
        except ValueError:
            return 0


def scenario_copy(name: str, work: Path, wav: Path, pt: int) -> Path:
    text = (SCENARIOS / name).read_text(encoding="latin-1")
    text = text.replace('rtp_stream="[wav],-1,[pt]"', f'rtp_stream="{wav},-1,{pt}"')
    out = work / name
    out.write_text(text, encoding="latin-1")
    return out


def start_sipp(name: str, scenario: str, work_root: Path, *, core: int, sip_port: int, media_port: int,
               codec: str, target: tuple[str, int] | None = None, extra: list[str] = ()) -> SippRun:
    work = work_root / name
    work.mkdir(parents=True, exist_ok=True)
    pt = CODECS[codec]
    wav = tone_wav(SCENARIOS / f"tone1k_{codec.lower()}.wav", codec)
    scen = scenario_copy(scenario, work, wav, pt)
    cmd = ["taskset", "-c", str(core), SIPP]
    if target is not None:
        cmd.append(f"{target[0]}:{target[1]}")
    cmd += ["-sf", str(scen), "-i", HOST, "-mi", HOST, "-p", str(sip_port), "-mp", str(media_port),
            "-t", "u1", "-nostdin", "-buff_size", str(4 << 20),
            "-key", "pt", str(pt), "-key", "codec", codec,
            "-trace_stat", "-stf", str(work / "stat.csv"), "-fd", "1",
            "-trace_err", "-error_file", str(work / "errors.log"),
            "-trace_screen", "-screen_file", str(work / "screen.log"), *extra]
    run = SippRun(name, cmd, work)
    run.proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=open(work / "stdout.log", "wb"),
                                stderr=open(work / "stderr.log", "wb"), start_new_session=True)
    return run


def finish_sipp(run: SippRun, *, wait: float | None = None) -> SippRun:
    """Let sipp end by itself within ``wait`` s (None: stop it now: SIGUSR1, its graceful
    quit that writes the final statistics), then read its statistics and errors."""
    p = run.proc
    if p is not None and p.poll() is None:
        if wait is not None:
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        if p.poll() is None:
            p.send_signal(signal.SIGUSR1)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    run.stats = last_stat_row(run.work / "stat.csv")
    run.unexpected, run.errors = read_errors(run.work / "errors.log")
    return run


def last_stat_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="", errors="replace") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    return dict(zip(rows[0], rows[-1])) if len(rows) >= 2 else {}


_UNEXPECTED = re.compile(r"while expecting '([^']*)'[^,]*, received '(SIP/2\.0 (\d{3})[^\n']*|(\w+) [^\n']*)")


def read_errors(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """sipp's -trace_err log: what the unexpected messages were (status code with what sipp
    was waiting for, or request method), and the other error kinds."""
    unexpected: dict[str, int] = {}
    other: dict[str, int] = {}
    if not path.exists():
        return unexpected, other
    for line in path.read_text(errors="replace").splitlines():
        m = _UNEXPECTED.search(line)
        if m:
            key = f"{m.group(3)} (expecting {m.group(1)})" if m.group(3) else f"{m.group(4)} (expecting {m.group(1)})"
            unexpected[key] = unexpected.get(key, 0) + 1
            continue
        if line.startswith(("20", "19")) and ":" in line:
            kind = re.sub(r"'[^']*'|\d+", "#", line.split("\t")[-1].split(": ", 1)[-1])[:90]
            other[kind] = other.get(kind, 0) + 1
    return unexpected, other


def failure_reasons(run: SippRun) -> dict[str, int]:
    """sipp's failure counters that are not zero, plus what the unexpected messages were."""
    out = {k.removeprefix("Failed").removesuffix("(C)"): int(v) for k, v in run.stats.items()
           if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and v not in ("", "0")}
    for k, v in run.unexpected.items():
        out[f"unexpected {k}"] = v
    return out


# --- registering the callee -------------------------------------------------------------------

def register(target: Target, user: str, contact_port: int, expires: int = 3600, timeout: float = 10.0) -> None:
    """REGISTER ``user`` with digest auth from a socket of ours, Contact at the UAS sipp's port
    (the box sends INVITEs to a Contact on the REGISTER's host, see registrar.destination)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(timeout)
        register_digest(s, target.sip_addr, target.domain, user, target.users[user], contact_port=contact_port,
                        expires=expires, agent="linebox-bench-sipp")


# --- one row ----------------------------------------------------------------------------------

@dataclass
class Row:
    mode: str
    calls: int = 0            # concurrent calls (relay modes) or calls/s (setups)
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    pkt_s: float | None = None
    expected_pkt_s: float = 0.0
    loss_pct: float | None = None
    box_cpu_pct: float = 0.0
    box_us_per_pkt: float | None = None
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    gen_cpu_pct: float = 0.0
    gen_core_busy_pct: float = 0.0
    generator_limited: bool = False
    window_s: float = 0.0
    calls_up: int | None = None
    kernel_drops: int = 0      # datagrams dropped by full receive buffers of the box's RTP sockets
    rx_pkt_s: float | None = None   # packets the box took in per second (with media workers)
    box_loss_pct: float | None = None  # of what reached the box: dropped by the kernel or not relayed
    processes: int = 1         # the box's processes measured (the PBX and its media workers)
    health_after: dict = field(default_factory=dict)
    box_log_problems: list[str] = field(default_factory=list)
    note: str = ""

    def count_loss(self) -> None:
        """loss_pct from the packets relayed against those expected (set both first)."""
        if self.pkt_s is not None and self.expected_pkt_s:
            self.loss_pct = max(0.0, 100.0 * (1 - self.pkt_s / self.expected_pkt_s))


class Harness:
    def __init__(self, args: argparse.Namespace, box_core: int, gen_core: int) -> None:
        self.args = args
        self.box_core, self.gen_core = box_core, gen_core
        self.work = Path(tempfile.mkdtemp(prefix="linebox-sipp-"))

    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def _bring_up(self, target: Target, mode: str, row_name: str) -> tuple[SippRun, list[int]]:
        target.start(mode)
        avoid = [target.rtp_range, ephemeral_range()]
        uas_sip, uac_sip, uas_mp, uac_mp = pick_ports(4, avoid)
        # -aa: answer the box's OPTIONS (it qualifies a contact before ringing it) with 200
        uas = start_sipp(f"{row_name}-uas", "uas.xml", self.work, core=self.gen_core, sip_port=uas_sip,
                         media_port=uas_mp, codec="PCMA" if mode == "transcode" else "PCMU", extra=["-aa"])
        deadline = time.monotonic() + 10
        while _udp_free(uas_sip):
            if uas.proc.poll() is not None or time.monotonic() > deadline:
                finish_sipp(uas)
                raise RuntimeError(f"the UAS sipp did not start: {(uas.work / 'stderr.log').read_text()[-2000:]}")
            time.sleep(0.05)
        register(target, CALLEE, uas_sip)
        return uas, [uac_sip, uac_mp]

    def _start_uac(self, target: Target, row_name: str, ports: list[int], *, calls: int, limit: int,
                   rate: float, hold_ms: int) -> SippRun:
        return start_sipp(f"{row_name}-uac", "uac.xml", self.work, core=self.gen_core, target=target.sip_addr,
                          sip_port=ports[0], media_port=ports[1], codec="PCMU",
                          extra=["-s", CALLEE, "-key", "caller", CALLER, "-au", CALLER, "-ap", target.users[CALLER],
                                 "-m", str(calls), "-l", str(limit), "-r", f"{rate:g}", "-d", str(hold_ms),
                                 "-timeout", f"{int(hold_ms / 1000 + calls / max(rate, 1) + 60)}s"])

    def _finish_row(self, row: Row, target: Target, uac: SippRun, uas: SippRun, box_meter: CpuMeter,
                    gen_meter: CpuMeter, r0: int | None, r1: int | None, uac_wait: float) -> None:
        b, g = box_meter.read(), gen_meter.read()
        row.window_s = b["wall_s"]
        row.box_cpu_pct = b["cpu_pct"]
        row.gen_cpu_pct, row.gen_core_busy_pct = g["cpu_pct"], g.get("core_busy_pct", 0.0)
        row.generator_limited = row.gen_cpu_pct > GEN_LIMIT_PCT
        if r0 is not None and r1 is not None:
            row.pkt_s = relay_rate(r0, r1, b["wall_s"])
            relayed = row.pkt_s * b["wall_s"]
            row.box_us_per_pkt = 1e6 * b["cpu_s"] / max(relayed, 1)
            row.count_loss()
            row.rx_pkt_s = received_rate(r0, r1)
            if row.rx_pkt_s:
                dropped = row.kernel_drops / b["wall_s"]
                row.box_loss_pct = max(0.0, 100.0 * (dropped + row.rx_pkt_s - row.pkt_s) / (dropped + row.rx_pkt_s))
        pids = target.pids()
        if pids:   # the box and its media workers together
            mems = [memory(p) for p in pids]
            row.rss_mb = sum(m.get("VmRSS", 0.0) for m in mems)
            row.hwm_mb = sum(m.get("VmHWM", 0.0) for m in mems)
            row.processes = len(pids)
        finish_sipp(uac, wait=uac_wait)
        finish_sipp(uas)
        row.attempted = uac.count("TotalCallCreated")
        row.succeeded = uac.count("SuccessfulCall(C)")
        row.failed = uac.count("FailedCall(C)")
        row.failures = failure_reasons(uac)
        for k, v in failure_reasons(uas).items():
            row.failures[f"callee: {k}"] = v
        if isinstance(target, BoxTarget) and target.box is not None:
            deadline = time.monotonic() + 10
            h = target.health()
            while time.monotonic() < deadline and (h["calls"] or h["media"]["endpoints_open"]):
                time.sleep(0.5)
                h = target.health()
            row.health_after = {"calls": h["calls"], "endpoints_open": h["media"]["endpoints_open"],
                                "transactions": h.get("transactions")}
            problems = target.log_problems()
            row.box_log_problems = summarize_log(problems)

    def relay_row(self, target: Target, mode: str, n: int) -> Row:
        a = self.args
        row = Row(mode, calls=n, expected_pkt_s=n * PACKETS_PER_CALL_S)
        name = f"{mode}-{n}"
        uas, ports = self._bring_up(target, mode, name)
        try:
            ramp = n / a.setup_rate
            hold_ms = int(1000 * (ramp + a.seconds + 8))
            uac = self._start_uac(target, name, ports, calls=n, limit=n, rate=a.setup_rate, hold_ms=hold_ms)
            # wait until the calls are up (the box's count, else the ramp time), then measure;
            # with admission on, the count stops short of n: measure once it stops growing, not
            # at the deadline, or the window overlaps the first calls hanging up
            t0 = time.monotonic()
            deadline = t0 + ramp + 10
            up, last, steady_since = None, None, t0
            while time.monotonic() < deadline and uac.proc.poll() is None:
                up = target.calls()
                if up is None or up >= n:
                    break
                now = time.monotonic()
                if up != last:
                    last, steady_since = up, now
                elif now > t0 + ramp and now - steady_since >= 1.5:
                    break
                time.sleep(0.25)
            if up is None:
                time.sleep(max(0.0, ramp + 2 - (time.monotonic() - t0)))
            time.sleep(1.0)                                   # media of the last calls under way
            row.calls_up = target.calls()
            if row.calls_up is not None and row.calls_up < n:
                # refused calls (503: the box's admission) send nothing: loss is of the calls up
                row.expected_pkt_s = row.calls_up * PACKETS_PER_CALL_S
            gen_meter = CpuMeter([uac.proc.pid, uas.proc.pid], self.gen_core)
            box_meter = CpuMeter(target.pids(), self.box_core)
            d0 = udp_drops(target.rtp_range)
            r0 = target.relayed()
            time.sleep(a.seconds)
            r1 = target.relayed()
            row.kernel_drops = udp_drops(target.rtp_range) - d0
            self._finish_row(row, target, uac, uas, box_meter, gen_meter, r0, r1, uac_wait=hold_ms / 1000 + 30)
        finally:
            for run in (locals().get("uac"), uas):
                if run is not None and run.proc.poll() is None:
                    run.proc.kill()
            target.stop()
        return row

    def setups_row(self, target: Target, rate: int) -> Row:
        a = self.args
        total = int(rate * a.setup_seconds)
        hold_ms = int(1000 * a.setup_hold)
        # calls with media in flight at once: rate x hold on average
        row = Row("setups", calls=rate, expected_pkt_s=rate * a.setup_hold * PACKETS_PER_CALL_S)
        name = f"setups-{rate}"
        uas, ports = self._bring_up(target, "setups", name)
        try:
            uac = self._start_uac(target, name, ports, calls=total, limit=max(rate * 10, 100), rate=rate,
                                  hold_ms=hold_ms)
            # measured in the steady state: once the first calls have lived their hold time (and
            # the box's media workers, started by the first call, exist), until new calls stop
            t_start = time.monotonic()
            warm = min(a.setup_hold + 1.5, a.setup_seconds / 3)
            while time.monotonic() < t_start + warm and uac.proc.poll() is None:
                time.sleep(0.1)
            gen_meter = CpuMeter([uac.proc.pid, uas.proc.pid], self.gen_core)
            box_meter = CpuMeter(target.pids(), self.box_core)
            r0 = target.relayed()
            t_end = t_start + a.setup_seconds
            while time.monotonic() < t_end and uac.proc.poll() is None:
                time.sleep(0.25)
            r1 = target.relayed()
            self._finish_row(row, target, uac, uas, box_meter, gen_meter, r0, r1, uac_wait=a.setup_hold + 40)
            refused = sum(v for k, v in row.failures.items() if k.startswith("unexpected 503"))
            if refused and refused == row.failed and row.attempted and row.pkt_s is not None:
                # calls refused with 503 carry no media: the packets expected are the admitted
                # calls' (admission spreads them evenly over the run)
                row.expected_pkt_s *= row.succeeded / row.attempted
                row.count_loss()
        finally:
            for run in (locals().get("uac"), uas):
                if run is not None and run.proc.poll() is None:
                    run.proc.kill()
            target.stop()
        return row

    def idle_memory(self, target: Target) -> dict[str, float]:
        """RSS/PSS of the target 10 s after start with one registration."""
        target.start("relay")
        try:
            register(target, CALLEE, pick_ports(1, [target.rtp_range, ephemeral_range()])[0])
            time.sleep(10.0)
            pids = target.pids()
            return memory(pids[0]) if pids else {}
        finally:
            target.stop()


def relay_rate(r0, r1, wall: float) -> float:
    """Packets relayed per second between two ``Target.relayed()`` readings."""
    if isinstance(r0, dict) and isinstance(r1, dict):
        rate = 0.0
        for pid, (t1, c1, _) in r1["workers"].items():
            if pid in r0["workers"]:
                t0, c0, _ = r0["workers"][pid]
                if t1 > t0:
                    rate += (c1 - c0) / (t1 - t0)
        return rate
    total = lambda r: r["total"] if isinstance(r, dict) else r  # noqa: E731
    return (total(r1) - total(r0)) / wall


def received_rate(r0, r1) -> float | None:
    """Packets the box's media workers took in per second (None without workers)."""
    if not (isinstance(r0, dict) and isinstance(r1, dict)):
        return None
    rate = 0.0
    for pid, (t1, _, n1) in r1["workers"].items():
        if pid in r0["workers"]:
            t0, _, n0 = r0["workers"][pid]
            if t1 > t0:
                rate += (n1 - n0) / (t1 - t0)
    return rate


def udp_drops(ports: tuple[int, int]) -> int:
    """Datagrams the kernel dropped on the UDP sockets bound to ``ports`` (full receive buffers:
    what a relay that cannot keep up loses before it ever sees the packet)."""
    lo, hi = ports
    total = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if lo <= int(f[1].rsplit(":", 1)[1], 16) <= hi:
                total += int(f[-1])
    return total


def summarize_log(lines: list[str]) -> list[str]:
    """The box log's warnings/errors, one line per distinct message with its count."""
    counts: dict[str, int] = {}
    for ln in lines:
        if "running as root" in ln:
            continue                  # the harness's temp data dir, not the load
        key = re.sub(r"\d+", "#", ln.split(" ", 3)[-1])[:160]
        counts[key] = counts.get(key, 0) + 1
    return [f"{n} x {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])][:15]


# --- report -----------------------------------------------------------------------------------

def fmt(v: float | None, spec: str = ".0f") -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(mode: str, rows: list[Row]) -> str:
    what = "calls/s" if mode == "setups" else "calls"
    out = [f"### {mode}", "",
           f"| {what} | attempted / ok / failed | failure reasons | pkt/s relayed / expected | loss % "
           f"| in-box loss % (kernel drops) | box CPU | box µs/pkt | box RSS / peak (processes) "
           f"| gen CPU (core busy) |",
           "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r.failures.items(), key=lambda kv: -kv[1])) or "-"
        flag = " **generator-limited**" if r.generator_limited else ""
        out.append(f"| {r.calls} | {r.attempted} / {r.succeeded} / {r.failed} | {reasons} "
                   f"| {fmt(r.pkt_s)} / {r.expected_pkt_s:.0f} | {fmt(r.loss_pct, '.2f')} "
                   f"| {fmt(r.box_loss_pct, '.3f')} ({r.kernel_drops}) | {r.box_cpu_pct:.0f}% "
                   f"| {fmt(r.box_us_per_pkt, '.1f')} | {r.rss_mb:.1f} / {r.hwm_mb:.1f} MB ({r.processes}) "
                   f"| {r.gen_cpu_pct:.0f}% ({r.gen_core_busy_pct:.0f}%){flag} |")
    notes = [f"- {r.calls}: box log: " + "; ".join(r.box_log_problems[:5]) for r in rows if r.box_log_problems]
    return "\n".join(out + ([""] + notes if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="relay,record,transcode,setups",
                    help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--calls", default="200,400,600,800,1000", help="concurrent calls (relay, record, transcode)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds of RTP per row")
    ap.add_argument("--setup-rate", type=float, default=100.0, help="calls/s while bringing N calls up")
    ap.add_argument("--rates", default="100,200,300,400", help="calls per second (setups)")
    ap.add_argument("--setup-seconds", type=float, default=20.0, help="seconds of new calls per setups row")
    ap.add_argument("--setup-hold", type=float, default=1.0, help="seconds each setups call lasts, with media")
    ap.add_argument("--rtp-ports", default="10000-29999",
                    help="the box's RTP range (default: 10,000 pairs, as in issue 11)")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle RSS/PSS measurement (10 s)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a box setting for the run (`linebox set`), e.g. call.max_setups_per_second=1000")
    ap.add_argument("--linebox", help="the `linebox` executable to run (default: this tree's .venv/bin/linebox), "
                                      "e.g. a wrapper around an older build to compare")
    ap.add_argument("--media-workers", type=int,
                    help="the box's media worker processes (default: its setting, one per core it may use)")
    ap.add_argument("--box-cores", help="taskset list for the box, e.g. 0,1 (default: the first core); the "
                                        "generator stays on the last core")
    ap.add_argument("--worker-share", type=float,
                    help="give each media worker at most this share of a core (e.g. 0.3), worker i on core i: "
                         "1 worker against 2 on a machine whose other core runs the generator")
    ap.add_argument("--peer", help="also drive a reference peer from scripts/bench_peer.py (e.g. rtpengine), "
                                   "after the box, in the same run")
    ap.add_argument("--peer-only", action="store_true", help="with --peer: the peer's rows only")
    ap.add_argument("--keep", action="store_true", help="keep sipp's working directories (logs, CSVs)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    lo, hi = (int(x) for x in args.rtp_ports.split("-"))
    args.rtp_range = (lo, hi)
    args.set = [tuple(kv.split("=", 1)) for kv in args.set]

    cores = sorted(os.sched_getaffinity(0))
    box_core, gen_core = cores[0], cores[-1]
    if len(cores) < 2:
        print("warning: one core only; the box and the generator share it", file=sys.stderr)
    os.sched_setaffinity(0, {gen_core})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))    # sipp inherits it

    h = Harness(args, box_core, gen_core)
    if args.peer_only and not args.peer:
        ap.error("--peer-only needs --peer")
    targets = make_targets(args, box_core)
    run: dict = {"machine": machine(), "box_core": box_core, "gen_core": gen_core,
                 "sipp": subprocess.run([SIPP, "-v"], capture_output=True, text=True).stdout.strip().splitlines()[0:1],
                 "command": " ".join(["scripts/bench sipp", *(argv if argv is not None else sys.argv[1:])]),
                 "targets": []}
    try:
        for target in targets:
            result: dict = {"target": target.name, "rows": {}}
            run["targets"].append(result)
            if not args.no_idle:
                result["idle"] = h.idle_memory(target)
                h.say(f"{target.name} idle (10 s after start, one registration): {result['idle']}")
            for mode in modes:
                rows: list[Row] = []
                sweep = args.rates if mode == "setups" else args.calls
                for n in (int(x) for x in sweep.split(",") if x.strip()):
                    r = h.setups_row(target, n) if mode == "setups" else h.relay_row(target, mode, n)
                    rows.append(r)
                    h.say(f"{target.name} {mode} {n}: {r.attempted}/{r.succeeded}/{r.failed} {r.failures} "
                          f"pkt/s {fmt(r.pkt_s)}/{r.expected_pkt_s:.0f} box {r.box_cpu_pct:.0f}% "
                          f"{fmt(r.box_us_per_pkt, '.1f')} µs/pkt gen {r.gen_cpu_pct:.0f}%"
                          f"{' GENERATOR-LIMITED' if r.generator_limited else ''} log {r.box_log_problems[:3]}")
                result["rows"][mode] = [asdict(r) for r in rows]
            target.stop()
    finally:
        for target in targets:
            target.stop()
        if args.keep:
            h.say(f"sipp logs kept in {h.work}")
        else:
            shutil.rmtree(h.work, ignore_errors=True)

    if args.json:
        print(json.dumps(run, default=str))
        return 0
    m = run["machine"]
    for result in run["targets"]:
        print(f"## {result['target']} on core {box_core}, sipp on core {gen_core}; {m['cpu']}, "
              f"Python {m['python']}, {m['date']}\n")
        if "idle" in result:
            i = result["idle"]
            print(f"idle 10 s after start with one registration: RSS {i.get('VmRSS', 0):.1f} MB, "
                  f"PSS {i.get('Pss', 0):.1f} MB\n")
        for mode, rows in result["rows"].items():
            print(markdown(mode, [Row(**r) for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
