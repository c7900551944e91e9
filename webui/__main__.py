"""`python -m webui --data DIR --port P [--api URL]`: the web admin as its own process."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from firmware.api.localapi import keep_private
from firmware.system.heap import tame_malloc
from webui.auth import LockoutPolicy


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m webui", description="LineBox web admin")
    p.add_argument("--data", type=Path, default=Path("data"), help="the box's data directory (default: ./data)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1; 0.0.0.0 for the LAN)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api", default="http://127.0.0.1:8080", help="the running box's HTTP API (linebox run --http-port)")
    p.add_argument("--session-idle", type=float, default=900.0, help="seconds of inactivity that end a session (default 900)")
    p.add_argument("--lockout-failures", type=int, default=5, help="wrong passwords from one address that lock it out")
    p.add_argument("--lockout-window", type=float, default=900.0, help="seconds within which those failures count")
    p.add_argument("--lockout-seconds", type=float, default=900.0, help="how long the lock-out lasts")
    p.add_argument("--sip-host", help="host phones register with, shown when provisioning (default: the host in the browser's address bar)")
    p.add_argument("--sip-port", type=int, default=5060, help="SIP port shown when provisioning")
    p.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (when served over HTTPS)")
    p.add_argument("--sse-interval", type=float, default=2.0, help="seconds between live dashboard updates")
    p.add_argument("--max-sse", type=int, default=32, help="live dashboards open at once at most")
    p.add_argument("--network-rollback", type=float, default=60.0,
                   help="seconds an address change waits for confirmation from the new address before rolling back")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--allow-root", action="store_true",
                   help="serve even as root with a data directory root owns (development machines only)")
    return p


def without_https_client() -> None:
    """Loads http.client without its HTTPS half, in this process only.

    The web admin speaks plain HTTP both ways: browsers reach it directly or through a TLS proxy in
    front of it, and its own requests go to the box's API on this machine (LocalApi). bottle and
    wsgiref import http.client, which imports ssl for an HTTPSConnection nothing here uses: 1.4 MB
    of an idle web admin that must stay under 30 MB (docs/benchmarks.md, "Idle memory"). While
    http.client loads, ``import ssl`` fails (a None in sys.modules); afterwards it works again,
    for whatever really needs TLS.
    """
    if "ssl" in sys.modules or "http.client" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import http.client  # noqa: F401
    finally:
        del sys.modules["ssl"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tame_malloc()  # before the first login's scrypt buffer
    keep_private()  # uploads, staged restores and backups in the data directory: the box's user only
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 1 <= args.port <= 65535 or args.lockout_failures < 1 or args.session_idle <= 0:
        print("linebox-web: --port 1-65535, --lockout-failures >= 1 and --session-idle > 0", file=sys.stderr)
        return 2
    from firmware.system.privileges import PrivilegeError, drop_to_owner

    try:
        # The web admin parses what browsers send: it runs as the data directory's owner, keeping
        # only the right to bind port 80 and to change the network (the Network page).
        dropped = drop_to_owner(args.data, keep=("net_bind_service", "net_admin"))
    except PrivilegeError as exc:
        print(f"linebox-web: {exc}", file=sys.stderr)
        return 1
    if dropped is None and os.geteuid() == 0 and not args.allow_root:
        print(f"linebox-web: refusing to serve the web admin as root. Give the data directory to an "
              f"unprivileged user and it runs as that user (scripts/setup creates `linebox`: "
              f"chown -R linebox: {args.data}), or pass --allow-root on a development machine",
              file=sys.stderr)
        return 1
    without_https_client()
    from webui.app import WebConfig
    from webui.server import serve

    cfg = WebConfig(data=args.data, api=args.api, session_idle=args.session_idle,
                    lockout=LockoutPolicy(args.lockout_failures, args.lockout_window, args.lockout_seconds),
                    sip_host=args.sip_host, sip_port=args.sip_port, secure_cookies=args.secure_cookies,
                    sse_interval=args.sse_interval, max_sse=args.max_sse, network_rollback=args.network_rollback)
    signal.signal(signal.SIGTERM, _interrupt)  # the serve loop ends on KeyboardInterrupt
    try:
        return serve(cfg, args.host, args.port)
    except OSError as exc:
        print(f"linebox-web: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
