"""The files through which a running ``linebox run`` and the commands beside it (the CLI, the web
process) meet in the data directory, and the one way to tell the box its configuration changed.

Light on purpose: the CLI and the web import this, not the PBX and its media stack.
"""
from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

PID_NAME = "linebox.pid"         # the running box's pid, written when it starts
APPLIED_NAME = "config.applied"  # the configuration revision it has applied
API_SECRET_NAME = "api.secret"   # the per-boot secret every write to the box's local API carries
API_SECRET_HEADER = "X-LineBox-Secret"


def new_api_secret(data: Path) -> str:
    """A fresh per-boot secret for the local API, in a file only the box's user can read.

    Written to a new file and renamed over the old one, so a reader sees the old secret or the
    new one, never a file that exists but is empty or another user could have opened.
    """
    secret = secrets.token_urlsafe(32)
    part = data / f".{API_SECRET_NAME}.part"
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(part, data / API_SECRET_NAME)
    return secret


def api_secret(data: Path) -> str:
    """The running box's secret for local API writes ("" when there is none to read)."""
    try:
        return (data / API_SECRET_NAME).read_text().strip()
    except OSError:
        return ""


def notify(data: Path, rev: int, timeout: float = 3.0) -> tuple[bool, bool]:
    """Tells the box running on ``data`` to apply configuration ``rev`` now (SIGHUP) and waits
    until it has. Returns (running, applied).

    Only a process that is really a ``linebox`` is signalled: a stale pid file may name some
    other program by now.
    """
    try:
        pid = int((data / PID_NAME).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False, False
    if b"linebox" not in cmdline and b"firmware" not in cmdline:
        return False, False
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return False, False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int((data / APPLIED_NAME).read_text().strip() or -1) >= rev:
                return True, True
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return True, False
