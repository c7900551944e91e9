#!/usr/bin/env python3
"""Idle memory of the appliance (not in CI): the box and the web admin, each in its own process.

1. ``linebox run`` in a temp data dir (like scripts/bench_box.py's Box), one extension registered
   (REGISTER -> 401 -> REGISTER with digest credentials -> 200, built on ``firmware.sip``);
2. ``python -m webui`` beside it (like tests/web/webproc.py), its login page fetched once;
3. ``--settle`` seconds later (10 s by default; ``--minute`` also measures at 60 s) each process's
   VmRSS and VmHWM (/proc/PID/status) and Pss (/proc/PID/smaps_rollup: shared pages split between
   the processes that map them, so box + web PSS is what the pair costs the appliance).

``--modules`` starts both with PYTHONPROFILEIMPORTTIME=1 (what ``python -X importtime`` does, with
no change to the start command) and lists, for the box, the modules imported at start-up and
those imported only after it said "ready" (the registration, the first minute), biggest first.
Import-time figures cost a little memory themselves: compare RSS from runs without the flag.

    scripts/bench memory
    .venv/bin/python scripts/bench_memory.py --minute --json
    .venv/bin/python scripts/bench_memory.py --modules
"""

from __future__ import annotations

import argparse
import json
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_box import register_digest  # noqa: E402

HOST = "127.0.0.1"
EXT = "7001"
PY = str(ROOT / ".venv" / "bin" / "python")
LINEBOX = str(ROOT / ".venv" / "bin" / "linebox")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (/proc/PID/status) and Pss (/proc/PID/smaps_rollup), in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / (1 if key == "Threads" else 1024.0)
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Pss:", "Pss_Anon:", "Pss_File:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024.0
    except OSError:  # no smaps_rollup (old kernel, or not ours to read)
        pass
    return out


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
    raise RuntimeError(f"{url} did not answer (rc={proc.poll()}); see {log}:\n{tail}")


class Appliance:
    """A box and its web admin in a temp directory."""

    def __init__(self, importtime: bool) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="linebox-mem-"))
        self.data = self.dir / "data"
        self.secret = secrets.token_urlsafe(18)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        if importtime:
            self.env["PYTHONPROFILEIMPORTTIME"] = "1"
        self.box: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.box_log = self.dir / "box.log"
        self.web_log = self.dir / "web.log"

    def cli(self, *args: str) -> None:
        subprocess.run([LINEBOX, "--data", str(self.data), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def _spawn(self, argv: list[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, start_new_session=True)

    def start_box(self) -> None:
        self.cli("init")
        self.cli("ext", "add", EXT, f"--secret={self.secret}")
        self.sip_port, self.http_port = free_port(), free_port(socket.SOCK_STREAM)
        lo = 20000  # no call is made: the range is only checked, never bound
        while any(lo <= p <= lo + 99 for p in (self.sip_port, self.http_port)):
            lo += 100
        self.box = self._spawn([LINEBOX, "--data", str(self.data), "run", "--bind", HOST,
                                "--sip-port", str(self.sip_port), "--http-port", str(self.http_port),
                                "--rtp-ports", f"{lo}-{lo + 99}"], self.box_log)
        wait_http(f"http://{HOST}:{self.http_port}/health", self.box, self.box_log)

    def start_web(self) -> None:
        self.web_port = free_port(socket.SOCK_STREAM)
        self.web = self._spawn([PY, "-m", "webui", "--data", str(self.data), "--host", HOST,
                                "--port", str(self.web_port), "--sip-host", HOST, "--sip-port", str(self.sip_port),
                                "--api", f"http://{HOST}:{self.http_port}", "--allow-root"], self.web_log)
        wait_http(f"http://{HOST}:{self.web_port}/static/app.css", self.web, self.web_log)
        urllib.request.urlopen(f"http://{HOST}:{self.web_port}/", timeout=10).close()

    def register(self, timeout: float = 10.0) -> None:
        """One REGISTER with digest credentials (RFC 3261 §22), as a phone does."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.settimeout(timeout)
            register_digest(sock, (HOST, self.sip_port), f"{HOST}:{self.sip_port}", EXT, self.secret,
                            agent="linebox-bench-memory")

    def stop(self) -> None:
        for proc in (self.web, self.box):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)\s*$")


def imported(log: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(top-level imports before "ready", after it) from a PYTHONPROFILEIMPORTTIME log: name and
    cumulative µs, the costliest first."""
    before: list[tuple[str, int]] = []
    after: list[tuple[str, int]] = []
    target = before
    for line in log.read_text(errors="replace").splitlines():
        if "linebox: ready" in line:
            target = after
            continue
        m = IMPORT_LINE.match(line)
        if m and len(m.group(3)) <= 1:  # top level only: a nested import is counted in its parent
            target.append((m.group(4), int(m.group(2))))
    return (sorted(before, key=lambda x: -x[1]), sorted(after, key=lambda x: -x[1]))


def all_modules(log: Path) -> tuple[list[str], list[str]]:
    """Every module imported before and after "ready" (nested ones included)."""
    before: list[str] = []
    after: list[str] = []
    target = before
    for line in log.read_text(errors="replace").splitlines():
        if "linebox: ready" in line:
            target = after
            continue
        m = IMPORT_LINE.match(line)
        if m:
            target.append(m.group(4))
    return before, after


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settle", type=float, default=10.0, help="seconds after start (and registration) to measure at")
    p.add_argument("--minute", action="store_true", help="measure again 60 s after start")
    p.add_argument("--modules", action="store_true", help="start with PYTHONPROFILEIMPORTTIME=1 and list the imports")
    p.add_argument("--top", type=int, default=25, help="how many imports to list with --modules")
    p.add_argument("--json", action="store_true")
    p.add_argument("--hold", action="store_true", help="keep both running after measuring, until Enter (to look at /proc)")
    args = p.parse_args()

    app = Appliance(importtime=args.modules)
    rows: list[dict] = []
    try:
        t0 = time.monotonic()
        app.start_box()
        app.register()
        app.start_web()
        marks = [args.settle] + ([60.0] if args.minute and args.settle < 60 else [])
        for mark in marks:
            time.sleep(max(0.0, t0 + mark - time.monotonic()))
            box, web = memory(app.box.pid), memory(app.web.pid)
            rows.append({"at_s": mark, "box": box, "web": web,
                         "total": {k: box.get(k, 0.0) + web.get(k, 0.0) for k in ("VmRSS", "Pss")}})
        if args.hold:
            print(f"box pid {app.box.pid}, web pid {app.web.pid}, in {app.dir}; Enter stops them", file=sys.stderr)
            sys.stdin.readline()
        log_text = app.box_log.read_text(errors="replace")
        problems = [ln for ln in log_text.splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) |Traceback", ln)
                    and "running as root" not in ln]  # this harness's data directory is root's
        result = {"rows": rows, "box_log_problems": problems,
                  "env": {k: os.environ[k] for k in ("MALLOC_ARENA_MAX",) if k in os.environ}}
        if args.modules:
            (b_top, a_top), (b_all, a_all) = imported(app.box_log), all_modules(app.box_log)
            (wb_top, _), (wb_all, _) = imported(app.web_log), all_modules(app.web_log)
            result["box_modules"] = {"at_start": len(b_all), "after_ready": a_all,
                                     "top_at_start_us": b_top[:args.top], "top_after_ready_us": a_top[:args.top]}
            result["web_modules"] = {"at_start": len(wb_all), "top_us": wb_top[:args.top]}
    finally:
        app.cleanup()

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'at':>5}  {'process':<8} {'VmRSS':>7} {'VmHWM':>7} {'Pss':>7} {'Pss_Anon':>8} {'threads':>7}   (MB)")
    for r in rows:
        for name in ("box", "web"):
            m = r[name]
            print(f"{r['at_s']:>4g}s  {name:<8} {m.get('VmRSS', 0):7.1f} {m.get('VmHWM', 0):7.1f} "
                  f"{m.get('Pss', 0):7.1f} {m.get('Pss_Anon', 0):8.1f} {m.get('Threads', 0):7.0f}")
        print(f"{r['at_s']:>4g}s  {'total':<8} {r['total']['VmRSS']:7.1f} {'':>7} {r['total']['Pss']:7.1f}")
    if problems:
        print("\nbox log problems:\n  " + "\n  ".join(problems))
    if args.modules:
        bm, wm = result["box_modules"], result["web_modules"]
        print(f"\nbox: {bm['at_start']} modules imported at start; costliest top-level imports (cumulative ms):")
        for name, us in bm["top_at_start_us"]:
            print(f"  {us / 1000:8.1f}  {name}")
        print(f"box: {len(bm['after_ready'])} modules imported after 'ready' (registration, first minute):")
        for name, us in bm["top_after_ready_us"]:
            print(f"  {us / 1000:8.1f}  {name}")
        if bm["after_ready"]:
            print("  all: " + " ".join(bm["after_ready"]))
        print(f"\nweb: {wm['at_start']} modules imported; costliest top-level imports (cumulative ms):")
        for name, us in wm["top_us"]:
            print(f"  {us / 1000:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
