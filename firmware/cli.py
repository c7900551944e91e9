"""`linebox`: the command admins, scripts and tests drive the box with.

Every error is one line on stderr that says how to fix it, with a non-zero exit code. Changes
go straight to the database; a running box picks them up within a second (config_rev).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import logging
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from firmware.store.datadir import keep_private, warn_loose
from firmware.config.extensions import ExtensionError, check_number, check_secret, generate_secret
from firmware.config.settings import SETTINGS, SettingError, effective, parse_setting
from firmware.acd.stats import PERIODS
from firmware.api.running import notify
from firmware.numberplan import Claim
from firmware.store.db import DB_NAME, Store


class CliError(Exception):
    """Printed as one line; exit code 1."""


def _parse_rtp_ports(text: str) -> tuple[int, int]:
    try:
        lo_s, hi_s = text.split("-", 1)
        lo, hi = int(lo_s), int(hi_s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rtp-ports must look like LO-HI, e.g. 10000-20000 (got {text!r})") from None
    if not (1024 <= lo < hi <= 65535):
        raise argparse.ArgumentTypeError(f"--rtp-ports {text}: need 1024 <= LO < HI <= 65535, e.g. 10000-20000")
    if hi - lo + 1 < 4:
        raise argparse.ArgumentTypeError(f"--rtp-ports {text}: the range must hold at least 2 calls (4 ports)")
    return lo, hi


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535 (got {text!r})") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535 (got {port})")
    return port




def _when(text: str) -> float:
    """--since/--until: an ISO date or date and time, UTC unless it names its offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a time looks like YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), e.g. 2026-11-23T08:00 (got {text!r})") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"linebox: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="linebox", description="LineBox IP-PBX")
    p.add_argument("--data", type=Path, default=Path("data"), help="data directory (default: ./data)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init", help="create the database in the data directory")
    sub.add_parser("demo", help="init and add the demo extensions 1001 and 1002 (secrets generated and printed)")

    ext = sub.add_parser("ext", help="extensions").add_subparsers(dest="ext_command", required=True, parser_class=_Parser)
    add = ext.add_parser("add", help="add an extension")
    add.add_argument("number")
    add.add_argument("--secret", help="SIP password (at least 10 characters); generated and printed if left out")
    add.add_argument("--name", default="", help="display name")
    ext.add_parser("list", help="list extensions (secrets are not shown)")
    rm = ext.add_parser("remove", help="remove an extension")
    rm.add_argument("number")
    show = ext.add_parser("secret", help="print one extension's SIP secret (for provisioning a phone)")
    show.add_argument("number")

    ivr = sub.add_parser("ivr", help="IVR menus").add_subparsers(dest="ivr_command", required=True, parser_class=_Parser)
    imp = ivr.add_parser("import", help="replace the IVR menus with a JSON document (validated first)")
    imp.add_argument("file", type=Path)
    ivr.add_parser("show", help="print the IVR document")
    num = ivr.add_parser("number", help="the number callers dial to enter a menu or time condition (--remove drops it)")
    num.add_argument("number")
    num.add_argument("menu", nargs="?")
    num.add_argument("--remove", action="store_true")
    ivr.add_parser("numbers", help="list the numbers that enter menus")

    port = sub.add_parser("port", help="analog ports: FXS ports as extensions, FXO lines as trunks")
    port_sub = port.add_subparsers(dest="port_command", required=True, parser_class=_Parser)
    plst = port_sub.add_parser("list", help="the board's ports and what each is configured as")
    plst.add_argument("--json", action="store_true")
    pset = port_sub.add_parser("set", help="make a port an extension (FXS) or a trunk to a destination (FXO)")
    pset.add_argument("port", help="e.g. fxs1, fxo1 (simulated HAT) or dahdi1")
    what = pset.add_mutually_exclusive_group()
    what.add_argument("--extension", help="FXS: the extension this analog phone is")
    what.add_argument("--inbound", help="FXO: where calls on this line go (an extension, IVR or queue number)")
    what.add_argument("--clear", action="store_true", help="the port is not used")
    pset.add_argument("--call-waiting", choices=("on", "off"),
                      help="FXS: a second call during a call is offered with the call-waiting tone (on, "
                           "the default) or gets busy (off)")
    route = sub.add_parser("route", help="outbound routes: which outside line a dialled number leaves on")
    route_sub = route.add_subparsers(dest="route_command", required=True, parser_class=_Parser)
    rlist = route_sub.add_parser("list", help="the routes in force, in the order they are tried")
    rlist.add_argument("--json", action="store_true")
    rtest = route_sub.add_parser("test", help="which route a number would take, and what is dialled on the line")
    rtest.add_argument("number")
    radd = route_sub.add_parser("add", help="add a route (tried after the others unless --first)")
    radd.add_argument("pattern", help='e.g. 9NXXXXXX (X any digit, Z 1-9, N 2-9, [1-5] a set, final . more digits)')
    radd.add_argument("--name", default="")
    radd.add_argument("--strip", type=int, default=0, help="leading digits to drop")
    radd.add_argument("--prepend", default="", help="digits to put in front")
    radd.add_argument("--lines", default="", help="FXO lines to try in order, e.g. fxo2,fxo1 (default: any)")
    radd.add_argument("--first", action="store_true", help="try this route before the others")
    rrm = route_sub.add_parser("remove", help="remove a route")
    rrm.add_argument("route", help="its name, pattern or position (1 = first)")
    vm = sub.add_parser("voicemail", help="voicemail boxes and their messages (owners listen with *97)")
    vm_sub = vm.add_subparsers(dest="vm_command", required=True, parser_class=_Parser)
    vlist = vm_sub.add_parser("list", help="mailboxes and their messages")
    vlist.add_argument("mailbox", nargs="?")
    vlist.add_argument("--json", action="store_true")
    ven = vm_sub.add_parser("enable", help="give an extension a mailbox")
    ven.add_argument("mailbox")
    ven.add_argument("--no-unanswered", action="store_true",
                     help="calls the extension leaves unanswered do not go there (IVR options and queues still may)")
    ven.add_argument("--pin", help="4-12 digits: the owner may also listen from any phone, by *98 ('' removes it)")
    vdis = vm_sub.add_parser("disable", help="remove an extension's mailbox (its messages stay on disk)")
    vdis.add_argument("mailbox")
    line = sub.add_parser("line", help="analog lines: the guided line test")
    line_sub = line.add_subparsers(dest="line_command", required=True, parser_class=_Parser)
    lt = line_sub.add_parser("test", help="test an FXO line (caller ID, tones, polarity, levels) and propose settings")
    lt.add_argument("port", help="the FXO port, e.g. fxo1")
    lt.add_argument("--number", required=True, help="a phone you hold that the box may call (the test calls it)")
    lt.add_argument("--no-inbound", action="store_true", help="skip the incoming-call part (caller ID, ring cadence)")
    lt.add_argument("--json", action="store_true", help="print the proposed settings as JSON")
    lt.add_argument("--apply", action="store_true",
                    help="store the proposed line settings for the port (it must have --inbound set)")
    lt.add_argument("--timeout", type=float, default=360.0, help="give up after this many seconds")
    sim = sub.add_parser("sim", help="act as the phones and exchanges of a running box's simulated HAT")
    sim.add_argument("argv", nargs=argparse.REMAINDER,
                     help="phone PORT lift|hangup|flash|status | phone PORT dial|pulse DIGITS | "
                          "co PORT ring [--cid NUMBER] [--name NAME] | co PORT hangup [--busy|--congestion|--silent] "
                          "| co PORT cancel|status | ports")

    pr = sub.add_parser("prompt", help="uploaded prompts for IVR menus (converted to 8 kHz mono at upload)")
    pr_sub = pr.add_subparsers(dest="prompt_command", required=True, parser_class=_Parser)
    up = pr_sub.add_parser("upload", help='store a sound file; menus play it as {"file": NAME}')
    up.add_argument("file", type=Path, help="WAV, FLAC or OGG, any rate and channels, up to 10 minutes")
    up.add_argument("--name", help="stored name, e.g. promo.wav (default: from the file name)")
    up.add_argument("--replace", action="store_true", help="replace an upload of that name")
    plist = pr_sub.add_parser("list", help="uploaded prompts")
    plist.add_argument("--json", action="store_true")
    prm = pr_sub.add_parser("remove", help="remove an upload no menu plays")
    prm.add_argument("name")

    cfg = sub.add_parser("config", help="the whole configuration as one JSON document (docs/config.md)")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    exp = cfg_sub.add_parser("export", help="write the configuration (it holds SIP secrets: keep it safe)")
    exp.add_argument("file", nargs="?", type=Path, help="default: standard output")
    cimp = cfg_sub.add_parser("import", help="validate, then replace the whole configuration at once")
    cimp.add_argument("file", type=Path)

    queue = sub.add_parser("queue", help="ACD queues: what is configured, statistics, the queue log")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True, parser_class=_Parser)
    qlist = queue_sub.add_parser("list", help="configured queues (change them with config import)")
    qlist.add_argument("--json", action="store_true")
    qstats = queue_sub.add_parser("stats", help="offered, answered, abandoned, service level, ASA, AHT ... "
                                               "(calls counted in the period they entered)")
    qstats.add_argument("--queue", help="one queue id (default: all)")
    qstats.add_argument("--agents", action="store_true", help="also per agent: calls, talk, wrap-up, pause, idle")
    qstats.add_argument("--period", choices=sorted(PERIODS), default="all", help="one row per hour, day, or all (default)")
    qstats.add_argument("--since", type=_when, help="from YYYY-MM-DD[THH:MM] (UTC)")
    qstats.add_argument("--until", type=_when, help="to YYYY-MM-DD[THH:MM] (UTC, not included)")
    qstats.add_argument("--json", action="store_true", help="machine-readable (keys in docs/config.md)")
    qlog = queue_sub.add_parser("log", help="the raw queue log, oldest first")
    qlog.add_argument("--queue", help="one queue id (default: all)")
    qlog.add_argument("--since", type=_when, help="from YYYY-MM-DD[THH:MM] (UTC)")
    qlog.add_argument("--until", type=_when, help="to YYYY-MM-DD[THH:MM] (UTC, not included)")
    qlog.add_argument("--json", action="store_true")

    st = sub.add_parser("set", help="change a setting (applied live)")
    st.add_argument("key", help=", ".join(sorted(SETTINGS)))
    st.add_argument("value")
    sub.add_parser("settings", help="show all settings")

    run = sub.add_parser("run", help="run the PBX")
    run.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all)")
    run.add_argument("--sip-port", type=_port, default=5060)
    run.add_argument("--http-port", type=_port, default=8080)
    run.add_argument("--http-bind", metavar="ADDR",
                     help="address of the local HTTP API (default: loopback). It authenticates nobody: "
                          "give the LAN the web admin's /api/v1 instead")
    run.add_argument("--rtp-ports", type=_parse_rtp_ports, default=(10000, 20000), metavar="LO-HI")
    run.add_argument("--media-workers", type=int, metavar="N",
                     help="processes relaying call media (default: the media.workers setting, one per core)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    cdr = sub.add_parser("cdr", help="call detail records, newest first")
    cdr.add_argument("--json", action="store_true")
    cdr.add_argument("--limit", type=int, default=100)
    return p


async def _with_store(data: Path, fn: Callable[[Store], Awaitable[Any]], *, create: bool = False) -> Any:
    if not create and not (data / DB_NAME).exists():
        raise CliError(f"{data} holds no LineBox database; run `linebox --data {data} init` first")
    store = await Store.open(data)
    try:
        return await fn(store)
    finally:
        await store.close()


def notify_running(data: Path, rev: int) -> None:
    """Tells a box running on this data directory that its configuration changed and waits until
    it has applied revision ``rev``, so the change is live when the command returns."""
    running, applied = notify(data, rev)
    if running and not applied:
        print("linebox: warning: the running box has not applied the change yet; "
              "it will within a few seconds", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from firmware.system.privileges import PrivilegeError, drop_to_owner

    try:
        # As the data directory's owner, from the start: every file a command writes stays theirs,
        # and `run` keeps only the right to bind SIP's port 5060.
        drop_to_owner(args.data, keep=("net_bind_service",) if args.command == "run" else ())
    except PrivilegeError as exc:
        print(f"linebox: {exc}", file=sys.stderr)
        return 1
    keep_private()  # the database, exports, recordings and voicemail: the box's user only
    try:
        return _dispatch(args)
    except (CliError, ExtensionError, SettingError) as exc:
        print(f"linebox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `linebox queue log | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


# The subcommands that change the configuration: the running box is told, and waited for.
CHANGES = {"ext": ("ext_command", {"add", "remove"}), "config": ("config_command", {"import"}),
           "ivr": ("ivr_command", {"import", "number"}), "port": ("port_command", {"set"}),
           "route": ("route_command", {"add", "remove"}), "voicemail": ("vm_command", {"enable", "disable"})}


def _dispatch(args: argparse.Namespace) -> int:
    data: Path = args.data
    cmd = args.command
    if cmd == "init":
        asyncio.run(_with_store(data, _noop, create=True))
        print(f"initialised {data / DB_NAME}")
        return 0
    if cmd == "demo":
        return asyncio.run(_with_store(data, _demo, create=True))
    handler = {"ext": _ext, "config": _config, "ivr": _ivr, "queue": _queue, "prompt": _prompt,
               "port": _ports, "route": _routes,
               "voicemail": _voicemail}.get(cmd)
    if handler is not None:
        rc = asyncio.run(_with_store(data, lambda s: handler(s, args)))
        which, changing = CHANGES.get(cmd, ("", set()))
        if getattr(args, which, None) in changing:
            notify_running(data, asyncio.run(_with_store(data, lambda s: s.config_rev())))
        return rc
    if cmd == "sim":
        return _sim(data, args.argv)
    if cmd == "line":
        return _line_test(data, args)
    if cmd == "set":
        value = parse_setting(args.key, args.value)

        async def apply(store: Store) -> int:
            await store.set_setting(args.key, str(value))
            return await store.config_rev()

        notify_running(data, asyncio.run(_with_store(data, apply)))
        print(f"{args.key} = {value}")
        return 0
    if cmd == "settings":
        values = asyncio.run(_with_store(data, lambda s: s.settings()))
        for key, value in sorted(effective(values).items()):
            print(f"{key} = {value}    # {SETTINGS[key].help}")
        return 0
    if cmd == "cdr":
        rows = asyncio.run(_with_store(data, lambda s: s.cdrs(args.limit)))
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["start"]))
                print(f"{start}  {r['caller']:>6} -> {r['callee']:<6} {r['disposition']:<12} "
                      f"{(r['duration'] or 0):7.1f}s  billsec {(r['billsec'] or 0):7.1f}  {r['cause'] or ''}")
        return 0
    if cmd == "run":
        return _run(args)
    raise CliError(f"unknown command {cmd}")


async def _ports(store: Store, args: argparse.Namespace) -> int:
    from firmware.config.ports import validate_ports
    from firmware.pbx.lines import BOARD_FILE
    from firmware.config.routes import trunks_of, validate_routes

    doc = dict(await store.document("ports") or {})
    if args.port_command == "list":
        board_file = store.path.parent / BOARD_FILE
        board = json.loads(board_file.read_text()) if board_file.exists() else []
        rows = [{**p, **doc.get(p["port"], {})} for p in board]
        rows += [{"port": name, "kind": "?", **spec} for name, spec in doc.items()
                 if name not in {p["port"] for p in board}]
        if args.json:
            print(json.dumps(rows, indent=1))
        elif not rows:
            print("no analog ports (set analog.driver to sim or dahdi and restart the box)")
        for r in [] if args.json else rows:
            role = (f"extension {r['extension']}" if "extension" in r else
                    f"trunk, inbound calls to {r['inbound']}" if "inbound" in r else "not used")
            print(f"{r['port']:<8} {r.get('kind', '?'):<4} {r.get('region', '?'):<3} {role}")
        return 0
    before = dict(doc.get(args.port) or {})
    if args.clear:
        doc.pop(args.port, None)
    elif args.extension:
        # a new number keeps the port's other settings (call waiting); an FXO line's do not apply
        doc[args.port] = {"extension": args.extension,
                          **({"call_waiting": before["call_waiting"]} if "call_waiting" in before else {})}
    elif args.inbound:
        doc[args.port] = {"inbound": args.inbound, **({"line": before["line"]} if "line" in before else {})}
    elif args.call_waiting is None:
        raise CliError("say what the port is: --extension N (FXS), --inbound N (FXO) or --clear; "
                       "or --call-waiting on|off for an FXS port")
    if args.call_waiting is not None:
        spec = doc.get(args.port)
        if args.clear or spec is None or "extension" not in spec:
            raise CliError(f"--call-waiting is for an FXS port set as an extension; "
                           f"`linebox port set {args.port} --extension N` first")
        if args.call_waiting == "on":
            spec.pop("call_waiting", None)   # the default
        else:
            spec["call_waiting"] = False
    extensions = {e.number for e in await store.extensions()}
    queues = await store.document("queues") or []
    numbers = extensions | set(await store.ivr_numbers()) | {str(q.get("number")) for q in queues}
    errors = validate_ports(doc, extensions=extensions, numbers=numbers)
    errors += validate_routes(await store.document("routes"), trunks=trunks_of(doc))
    if errors:
        raise CliError(f"{errors[0]}; nothing was changed")
    await store.set_document("ports", doc or None)
    spec = doc.get(args.port) or {}
    if "extension" in spec:
        said = f"extension {spec['extension']}, call waiting {'on' if spec.get('call_waiting', True) else 'off'}"
    else:
        said = f"inbound calls go to {spec['inbound']}" if spec else "not used"
    print(f"{args.port}: {said}")
    return 0


async def _routes(store: Store, args: argparse.Namespace) -> int:
    from firmware.config import document as configdoc
    from firmware.config.routes import Routes
    from firmware.config.settings import effective
    from firmware.store import document as stored

    doc = list(await store.document("routes") or [])
    prefix = effective(await store.settings())["analog.trunk_prefix"]
    if args.route_command in ("list", "test"):
        routes = Routes.from_document(doc, prefix).routes
        if args.route_command == "test":
            hit = Routes(routes).match(args.number)
            if hit is None:
                print(f"{args.number}: no route matches; the call is refused (extensions, IVRs and queues "
                      f"are never routed out)")
                return 1
            print(f"{args.number}: route {hit.name!r} ({hit.pattern.text}) dials {hit.outside(args.number)} "
                  f"on {', '.join(hit.lines) or 'any FXO line'}")
            return 0
        rows = [{"name": r.name, "pattern": r.pattern.text, "strip": r.strip, "prepend": r.prepend,
                 "lines": list(r.lines)} for r in routes]
        if args.json:
            print(json.dumps(rows, indent=1))
        elif not rows:
            print("no outbound routes (analog.trunk_prefix is '-'); add one with `linebox route add`")
        elif not doc:
            print(f"the default route (analog.trunk_prefix {prefix!r}); add routes to replace it:")
        for i, r in enumerate([] if args.json else rows, 1):
            print(f"{i:>2}. {r['pattern']:<14} strip {r['strip']} prepend {r['prepend'] or '-':<6} "
                  f"lines {','.join(r['lines']) or 'any':<12} {r['name']}")
        return 0
    if args.route_command == "add":
        route: dict[str, Any] = {"name": args.name or args.pattern, "pattern": args.pattern}
        route.update({k: v for k, v in (("strip", args.strip), ("prepend", args.prepend)) if v})
        if args.lines:
            route["lines"] = [n.strip() for n in args.lines.split(",") if n.strip()]
        doc.insert(0 if args.first else len(doc), route)
    else:
        which = args.route
        at = int(which) - 1 if which.isdigit() and 0 < int(which) <= len(doc) else \
            next((i for i, r in enumerate(doc) if which in (r.get("name"), r.get("pattern"))), None)
        if at is None:
            raise CliError(f"no route {which!r}; `linebox route list` shows them")
        route = doc.pop(at)
    # With the whole configuration, as an import would: a pattern may not take an inside number.
    whole = await stored.export(store)
    whole["routes"] = doc
    errors = [p for p in configdoc.validate(whole, files=None) if p.path.startswith("routes")]
    if errors:
        raise CliError(f"{errors[0]}; nothing was changed")
    await store.set_document("routes", doc or None)
    print(("added" if args.route_command == "add" else "removed") + f" route {route['name']!r} ({route['pattern']})")
    return 0


async def _voicemail(store: Store, args: argparse.Namespace) -> int:
    from firmware.config.pins import seal_pins
    from firmware.config.voicemail import validate_voicemail
    from firmware.store.messages import Mailboxes

    doc = dict(await store.document("voicemail") or {})
    boxes = dict(doc.get("mailboxes") or {})
    if args.vm_command == "list":
        messages = Mailboxes(store.path.parent / "voicemail")
        shown = [args.mailbox] if args.mailbox else sorted(boxes)
        if args.mailbox and args.mailbox not in boxes:
            raise CliError(f"{args.mailbox} has no mailbox; `linebox voicemail enable {args.mailbox}` gives it one")
        rows = {n: [m.as_dict() for m in messages.messages(n)] for n in shown}
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        if not rows:
            print("no mailboxes; `linebox voicemail enable EXTENSION` gives an extension one")
        for n, msgs in rows.items():
            new = sum(1 for m in msgs if m["folder"] == "new")
            print(f"{n}: {new} new, {len(msgs) - new} old" +
                  ("" if boxes[n].get("unanswered", True) else " (unanswered calls do not go here)"))
            for m in msgs:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["received"]))
                print(f"  {m['folder']:<3} {when}  from {m['caller'] or 'unknown':<12} {m['seconds']:6.1f} s  {m['id']}")
        return 0
    if args.vm_command == "enable":
        old = boxes.get(args.mailbox) or {}
        if args.pin is None:  # no --pin: the PIN there was stays, as its hash
            pin = {"pin_hash": old["pin_hash"]} if "pin_hash" in old else {}
        else:  # --pin '' removes it; a new one is hashed as it is stored (seal_pins below)
            pin = {"pin": args.pin} if args.pin else {}
        boxes[args.mailbox] = {**({"unanswered": False} if args.no_unanswered else {}), **pin}
    elif boxes.pop(args.mailbox, None) is None:
        raise CliError(f"{args.mailbox} has no mailbox")
    else:
        used = await _destinations_to(store, args.mailbox)
        if used:
            raise CliError(f"{used[0]} sends callers to this mailbox; change that first")
    doc["mailboxes"] = boxes
    errors = validate_voicemail(doc, extensions={e.number for e in await store.extensions()})
    if errors:
        raise CliError(f"{errors[0]}; nothing was changed")
    await store.set_document("voicemail", seal_pins(doc))
    print(f"mailbox {args.mailbox} " + ("removed (its messages are kept on disk)" if args.vm_command == "disable"
                                         else "ready; its owner listens with *97" +
                                         (", or with *98 and the PIN from any phone"
                                          if set(boxes[args.mailbox]) & {"pin", "pin_hash"} else "")))
    return 0


async def _destinations_to(store: Store, mailbox: str) -> list[str]:
    """Where the IVR or a queue names ``mailbox`` as a voicemail destination."""
    from firmware.acd.schema import validate_queues
    from firmware.ivr.schema import ids, validate
    from firmware.config.voicemail import mailboxes_of

    others = mailboxes_of(await store.document("voicemail")) - {mailbox}
    extensions = {e.number for e in await store.extensions()}
    ivr = await store.ivr_document() or {"menus": []}
    queues = await store.document("queues") or []
    errors = validate(ivr, phrases=None, files=None, extensions=extensions,
                      queues={q["id"] for q in queues}, voicemail=others)
    errors += validate_queues(queues, extensions=extensions, menus=ids(ivr, "menus"),
                              conditions=ids(ivr, "time_conditions"), voicemail=others)
    return [e.path for e in errors if mailbox in e.message]


def _local_api(data: Path) -> Any:
    """The running box's local API (the one the web admin uses), found through its run.json."""
    from firmware.api.localapi import LocalApi

    try:
        api = json.loads((data / "run.json").read_text())["api"]
    except (OSError, ValueError, KeyError):
        raise CliError(f"no running box for {data} (start it with `linebox --data {data} run`)") from None
    return LocalApi(data, api, timeout=10)


def _line_test(data: Path, args: argparse.Namespace) -> int:
    """Starts the guided line test on the running box, relays what the installer must do, and
    prints the report."""
    from firmware.api.localapi import BoxUnreachable, Invalid

    api = _local_api(data)
    try:
        state = api.line_test(args.port, args.number, inbound=not args.no_inbound)
    except (Invalid, BoxUnreachable) as exc:
        raise CliError(str(exc.errors.get("box", exc)) if isinstance(exc, Invalid) else str(exc)) from None
    finally:
        api.close()
    said = 0
    deadline = time.monotonic() + args.timeout
    while True:
        for p in state["prompts"][said:]:
            print(f">>> {p['text']}", flush=True)
        said = len(state["prompts"])
        if state["finished"]:
            break
        if time.monotonic() > deadline:
            raise CliError(f"the line test did not finish within {args.timeout:g} s (phase {state['phase']})")
        time.sleep(0.5)
        api = _local_api(data)
        try:
            state = api.line_tests()[args.port]
        except BoxUnreachable as exc:
            raise CliError(str(exc)) from None
        finally:
            api.close()
    if args.json:
        print(json.dumps(state["settings"], indent=1))
    else:
        print(state["report"])
    if args.apply:
        rev = asyncio.run(_with_store(data, lambda s: _apply_line(s, args.port, state["settings"])))
        notify_running(data, rev)
        print(f"applied the proposed line settings to {args.port}", file=sys.stderr if args.json else sys.stdout)
    return 0


async def _apply_line(store: Store, port: str, settings: dict[str, Any]) -> int:
    from firmware.config.ports import proposal_line

    doc = dict(await store.document("ports") or {})
    if "inbound" not in doc.get(port, {}):
        raise CliError(f"{port} has no inbound destination yet; `linebox port set {port} --inbound NUMBER` "
                       "first, then run the test with --apply again")
    doc[port] = {**doc[port], "line": proposal_line(settings)}
    await store.set_document("ports", doc)
    return await store.config_rev()


def _sim(data: Path, argv: list[str]) -> int:
    """Sends one command to a running box's simulated HAT and prints the port's status."""
    import socket

    from firmware.pbx.lines import SIM_SOCKET

    if not argv:
        raise CliError("say what to do, e.g. `linebox sim co fxo1 ring --cid 5551234`")
    path = data / SIM_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(json.dumps({"argv": argv}).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise CliError(f"no simulated HAT is running for {data} (`linebox set analog.driver sim`, then "
                       "restart `linebox run`)") from None
    except OSError as exc:
        raise CliError(f"cannot reach the simulated HAT: {exc}") from None
    answer = json.loads(reply or b"{}")
    if not answer.get("ok"):
        raise CliError(answer.get("error", "the simulated HAT did not answer"))
    print(json.dumps(answer["status"], indent=1))
    return 0


async def _prompt(store: Store, args: argparse.Namespace) -> int:
    from firmware.prompts import uploads
    from firmware.ivr.schema import validate

    data = store.path.parent
    try:
        if args.prompt_command == "upload":
            up = uploads.save(data, args.file, args.name, replace=args.replace)
            print(f'uploaded {up.name}: {up.seconds:.1f} s; a menu plays it as {{"file": "{up.name}"}}')
        elif args.prompt_command == "list":
            items = uploads.describe(data)
            if args.json:
                print(json.dumps([{"name": u.name, "seconds": round(u.seconds, 2)} for u in items], indent=1))
            for u in [] if args.json else items:
                print(f"{u.name:<40} {u.seconds:7.1f} s")
        else:
            uploads.check_name(args.name)
            left = uploads.names(data) - {args.name}
            used = validate(await store.ivr_document() or {"menus": []}, files=left)
            if used:
                raise CliError(f"{args.name} is still played by {used[0].path}; change that menu first")
            uploads.remove(data, args.name)
            print(f"removed {args.name}")
    except uploads.UploadError as exc:
        raise CliError(f"{exc}; nothing was changed" if args.prompt_command != "list" else str(exc)) from None
    return 0


async def _noop(store: Store) -> None:
    return None


DEMO_GREETING = ("Welcome to LineBox. Press 1 for extension 1001, press 2 for extension 1002, "
                 "press 3 for support, or dial an extension number.")
DEMO_IVR = {"menus": [{
    "id": "main", "greeting": [{"say": DEMO_GREETING}],
    "options": {"1": {"goto": "extension", "target": "1001"}, "2": {"goto": "extension", "target": "1002"},
                "3": {"goto": "queue", "target": "support"}},
    "dial_by_extension": True, "timeout": 5, "retries": 2, "fallback": {"goto": "hangup"},
}]}
DEMO_EXTENSIONS = (("1001", "Demo One"), ("1002", "Demo Two"), ("1003", "Analog Phone"))
# The simulated HAT stands in for the analog board: its phone is 1003 and its line rings the IVR,
# driven with `linebox sim` as the installer's own phone and exchange would be.
DEMO_SETTINGS = {"analog.driver": "sim", "analog.sim_fxs": "1", "analog.sim_fxo": "1"}
DEMO_PORTS = {"fxs1": {"extension": "1003"}, "fxo1": {"inbound": "500"}}
DEMO_QUEUES = [{"id": "support", "name": "Support", "number": "600", "members": [{"agent": "1001"}],
                "agents": [{"agent": "1002"}], "announce_every": 30}]


async def _demo(store: Store) -> int:
    """The demo configuration, set up once: what is already there is left alone."""
    from firmware.prompts import PromptError, say

    existing = {e.number for e in await store.extensions()}
    for number, name in DEMO_EXTENSIONS:
        if number not in existing:
            await store.add_extension(number, generate_secret(), name)
    if await store.ivr_document() is None:
        try:
            say(data_prompts(store), DEMO_GREETING)
        except PromptError as exc:  # espeak-ng missing: the demo still works without its IVR
            print(f"linebox: the demo IVR needs espeak-ng and sox (scripts/setup installs them): {exc}",
                  file=sys.stderr)
        else:
            if await store.document("queues") is None:
                await store.set_document("queues", DEMO_QUEUES)
            if await store.document("voicemail") is None:
                await store.set_document("voicemail", {"mailboxes": {n: {} for n, _ in DEMO_EXTENSIONS}})
            await store.set_ivr_document(DEMO_IVR)
            await store.set_ivr_number("500", "main")
            settings = await store.settings()
            if "analog.driver" not in settings:
                for key, value in DEMO_SETTINGS.items():
                    await store.set_setting(key, value)
                await store.set_document("ports", DEMO_PORTS)
    for e in await store.extensions():
        print(f"extension {e.number} ({e.name or 'no name'}): user {e.number}, password {e.secret}")
    for number, menu in (await store.ivr_numbers()).items():
        print(f"dial {number} for the IVR menu '{menu}'; *43 echo test, *60 clock, *65 your number, *47 DTMF test, "
              f"*97 your voicemail")
    for q in await store.document("queues") or []:
        print(f"dial {q['number']} for the queue '{q['id']}'; agents log in with *51, out with *52")
    if (await store.document("ports") or {}) == DEMO_PORTS:
        print("analog (simulated board): fxs1 is extension 1003: `linebox sim phone fxs1 lift`, "
              "`... dial 1001`; fxo1 rings the IVR: `linebox sim co fxo1 ring --cid 5551234`")
    return 0


async def _ext(store: Store, args: argparse.Namespace) -> int:
    sub = args.ext_command
    if sub == "add":
        number = check_number(args.number)
        from firmware.store.document import number_conflicts  # lazy, see _queue

        clash = await number_conflicts(store, [Claim("extension", number, "number")])
        if clash:
            raise CliError(f"{clash[0].message}; nothing was changed")
        generated = args.secret is None
        secret = generate_secret() if generated else check_secret(number, args.secret)
        if len(args.name) > 64 or any(c in args.name for c in '"\r\n<>'):
            raise CliError("--name may hold up to 64 characters and no quotes, angle brackets or line breaks")
        try:
            await store.add_extension(number, secret, args.name)
        except sqlite3.IntegrityError:
            raise CliError(f"extension {number} already exists; remove it first "
                           f"(`linebox ext remove {number}`) or pick another number") from None
        print(f"added extension {number}" + (f"; generated secret: {secret}" if generated else ""))
    elif sub == "list":
        for e in await store.extensions():
            print(f"{e.number}\t{e.name}")
    elif sub == "remove":
        number = check_number(args.number)
        used = await _queue_uses(store, number)
        if used:
            raise CliError(f"extension {number} is still used by {used}; change that first "
                           "(`linebox config export`, edit, `linebox config import`)")
        if not await store.remove_extension(number):
            raise CliError(f"there is no extension {args.number} (see `linebox ext list`)")
        print(f"removed extension {args.number}")
    elif sub == "secret":
        ext = {e.number: e for e in await store.extensions()}.get(args.number)
        if ext is None:
            raise CliError(f"there is no extension {args.number} (see `linebox ext list`)")
        print(ext.secret)
    return 0


async def _queue_uses(store: Store, number: str) -> str | None:
    """The first place the queues or the recording policy name extension ``number``, if any:
    removing it would leave them pointing at nothing."""
    from firmware.acd.schema import validate_queues
    from firmware.config.recpolicy import validate_recording_policy

    exts = {e.number for e in await store.extensions()}
    queues, policy = await store.document("queues"), await store.document("recording")

    def problems(known: set[str]) -> list[str]:
        errs = validate_queues(queues, extensions=known, menus=None, conditions=None)
        errs += validate_recording_policy(policy, known, None)
        return [e.path for e in errs]

    now = set(problems(exts))
    new = [p for p in problems(exts - {number}) if p not in now]
    return new[0] if new else None


async def _config(store: Store, args: argparse.Namespace) -> int:
    from firmware.config import document as configdoc
    from firmware.store import document as stored
    from firmware.ivr.schema import said_texts
    from firmware.prompts import PromptError, say

    if args.config_command == "export":
        text = json.dumps(await stored.export(store), indent=1) + "\n"
        if args.file is None:
            sys.stdout.write(text)
        else:
            # It holds every SIP secret: readable by the owner only, written whole or not at all.
            tmp = args.file.with_name(args.file.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, args.file)
            print(f"exported the configuration to {args.file} (it holds SIP secrets: keep it safe)")
        return 0
    try:
        document = json.loads(args.file.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{args.file} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    problems = configdoc.validate(document, files=upload_names(store))
    if problems:
        for p in problems:
            print(f"linebox: {args.file}: {p}", file=sys.stderr)
        raise CliError(f"{len(problems)} problem(s) in {args.file}; nothing was changed")
    for text in said_texts(document.get("ivr", {})):
        try:
            say(data_prompts(store), text)
        except PromptError as exc:
            raise CliError(f"cannot render {text!r} to speech: {exc}; nothing was changed") from None
    await stored.apply(store, document)
    print(f"imported {args.file}: {len(document.get('extensions', []))} extension(s), "
          f"{len(document.get('settings', {}))} setting(s), IVR menus and numbers, "
          f"{len(document.get('queues') or [])} queue(s), recording policy, "
          f"{len(document.get('ports') or {})} analog port(s), {len(document.get('routes') or [])} outbound route(s)")
    return 0


def upload_names(store: Store) -> set[str]:
    from firmware.prompts.uploads import names

    return names(store.path.parent)


def data_prompts(store: Store) -> Path:
    """Where prompts rendered from configuration text live: beside the database."""
    return store.path.parent / "prompts" / "say"


async def _ivr(store: Store, args: argparse.Namespace) -> int:
    from firmware.acd.schema import validate_queues
    from firmware.ivr.schema import ids, said_texts, validate
    from firmware.config.voicemail import mailboxes_of
    from firmware.prompts import PromptError, language, say

    sub = args.ivr_command
    extensions = {e.number for e in await store.extensions()}
    if sub == "import":
        try:
            document = json.loads(args.file.read_text())
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CliError(f"{args.file} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        queues = await store.document("queues") or []
        mailboxes = mailboxes_of(await store.document("voicemail"))
        errors = validate(document, phrases=set(language("en").phrases), files=upload_names(store), extensions=extensions,
                          queues={q["id"] for q in queues}, voicemail=mailboxes)
        if isinstance(document, dict):  # the queues' destinations must still exist with these menus
            errors += validate_queues(queues, extensions=extensions, menus=ids(document, "menus"),
                                      conditions=ids(document, "time_conditions"), voicemail=mailboxes)
        if errors:
            for e in errors:
                print(f"linebox: {args.file}: {e.path}: {e.message}", file=sys.stderr)
            raise CliError(f"{len(errors)} problem(s) in {args.file}; nothing was changed")
        menus = ids(document, "menus")
        targets = menus | ids(document, "time_conditions")
        dangling = {n: m for n, m in (await store.ivr_numbers()).items() if m not in targets}
        if dangling:
            raise CliError(f"numbers {dangling} enter menus this document drops; move them first "
                           "(`linebox ivr number NUMBER MENU` or `--remove`)")
        spoken = said_texts(document)
        for text in spoken:  # rendered before the document is stored: all or nothing
            try:
                say(data_prompts(store), text)
            except PromptError as exc:
                raise CliError(f"cannot render {text!r} to speech: {exc}; nothing was changed") from None
        await store.set_ivr_document(document)
        print(f"imported {len(menus)} menu(s)" + (f", {len(spoken)} greeting(s) rendered from text" if spoken else ""))
    elif sub == "show":
        print(json.dumps(await store.ivr_document() or {"menus": []}, indent=1))
    elif sub == "numbers":
        for number, menu in (await store.ivr_numbers()).items():
            print(f"{number}\t{menu}")
    elif sub == "number":
        number = check_number(args.number)
        if args.remove:
            if number in ((await store.document("recording")) or {}).get("numbers", {}):
                raise CliError(f"recording.numbers.{number} names this number; change the recording policy "
                               "first (`linebox config export`, edit, `linebox config import`)")
            await store.set_ivr_number(number, None)
            print(f"{number} no longer enters a menu")
            return 0
        from firmware.store.document import number_conflicts  # lazy, see _queue

        clash = await number_conflicts(store, [Claim("IVR number", number, "number")],
                                       without=lambda doc: doc["ivr_numbers"].pop(number, None))
        if clash:
            raise CliError(f"{clash[0].message}; pick another number")
        queue = {q["number"]: q["id"] for q in await store.document("queues") or []}.get(number)
        if queue is not None:
            raise CliError(f"{number} is the number of queue {queue!r}; pick another number")
        document = await store.ivr_document() or {}
        targets = ids(document, "menus") | ids(document, "time_conditions")
        if args.menu not in targets:
            raise CliError(f"there is no menu or time condition {args.menu!r}; there are: "
                           f"{', '.join(sorted(targets)) or 'none (ivr import first)'}")
        await store.set_ivr_number(number, args.menu)
        print(f"{number} enters {args.menu}")
    return 0


async def _queue(store: Store, args: argparse.Namespace) -> int:
    sub = args.queue_command
    queues = await store.document("queues") or []
    if sub == "list":
        rows = [{"id": q["id"], "name": q.get("name", ""), "number": q["number"],
                 "strategy": q.get("strategy", "ringall"),
                 "members": [m["agent"] for m in q.get("members", [])],
                 "agents": [a["agent"] for a in q.get("agents", [])]} for q in queues]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                print(f"{r['id']}\t{r['number']}\t{r['strategy']}\tmembers: {','.join(r['members']) or '-'}"
                      f"\tagents: {','.join(r['agents']) or '-'}\t{r['name']}")
        return 0
    known = {q["id"] for q in queues}
    if args.queue is not None and args.queue not in known and not await store.queue_events(queue=args.queue, until=None):
        raise CliError(f"there is no queue {args.queue!r} configured or in the log; "
                       f"configured: {', '.join(sorted(known)) or 'none'} (see `linebox queue list`)")
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise CliError("--until must be later than --since")
    if sub == "log":
        events = await store.queue_events(since=args.since, until=args.until, queue=args.queue)
        rows = [_event_row(e) for e in events]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                print(f"{_iso(r['time'])}  {r['queue']:<12} {r['kind']:<15} {r['call_id']:<14} {r['agent']:<6} "
                      f"wait {r['wait']:6.1f}  talk {r['talk']:6.1f}  wrapup {r['wrapup']:5.1f}  "
                      f"pos {r['position']:>2}  {r['reason']}")
        return 0
    # Lazy, like the document's check in _ext: the reports and the whole configuration's rules
    # bring in the queue schema, the IVR and the prompt set, ~50 ms every other command would pay.
    from firmware.acd.report import queue_report

    report = await queue_report(store, queue=args.queue, agents=args.agents, period=args.period,
                                since=args.since, until=args.until, now=time.time())
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_report(report)
    return 0


def _event_row(e: Any) -> dict[str, Any]:
    return {"time": e.time, "queue": e.queue, "kind": e.kind.value, "call_id": e.call_id, "agent": e.agent,
            "wait": e.wait, "talk": e.talk, "wrapup": e.wrapup, "position": e.position, "reason": e.reason}


def _mmss(x: float | None) -> str:
    if x is None:
        return "-"
    x = round(x)
    return f"{x // 60}:{x % 60:02d}"


def _print_report(report: dict[str, Any]) -> None:
    window = f"{report['since'] or 'the start'} to {report['until'] or 'now'}"
    print(f"queues, calls that entered from {window} (times m:ss)")
    print(f"{'queue':<12} {'period':<20} {'offered':>7} {'answered':>8} {'abandoned':>9} {'(wait)':>6} "
          f"{'overflow':>8} {'SL%':>6} {'(<=s)':>5} {'ASA':>5} {'AHT':>5} {'talk':>5} {'longest':>7}  callbacks")
    for r in report["queues"]:
        sl = "-" if r["service_level_pct"] is None else f"{r['service_level_pct']:.1f}"
        print(f"{r['queue']:<12} {r['period_start'] or 'all':<20} {r['offered']:>7} {r['answered']:>8} "
              f"{r['abandoned']:>9} {_mmss(r['average_abandon_wait']):>6} {r['overflowed']:>8} {sl:>6} "
              f"{r['service_level_seconds']:>5g} {_mmss(r['asa']):>5} {_mmss(r['aht']):>5} "
              f"{_mmss(r['average_talk']):>5} {_mmss(r['longest_wait']):>7}  "
              f"{r['callbacks_requested']} asked, {r['callbacks_answered']} answered, {r['callbacks_failed']} failed")
    if report["agents"] is None:
        return
    print()
    print(f"{'queue':<12} {'agent':<8} {'period':<20} {'calls':>5} {'missed':>6} {'talk':>7} {'wrap-up':>7} "
          f"{'idle':>7} {'paused':>7}  pause by reason")
    for r in report["agents"]:
        reasons = ", ".join(f"{k or 'pause'} {_mmss(v)}" for k, v in r["pause"].items())
        print(f"{r['queue']:<12} {r['agent']:<8} {r['period_start'] or 'all':<20} {r['answered']:>5} "
              f"{r['missed']:>6} {_mmss(r['talk']):>7} {_mmss(r['wrapup']):>7} {_mmss(r['idle']):>7} "
              f"{_mmss(r['pause_total']):>7}  {reasons}")


def _run(args: argparse.Namespace) -> int:
    from firmware.system.app import Box, RunOptions, install_uvloop

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data: Path = args.data
    if not (data / DB_NAME).exists():
        raise CliError(f"{data} holds no LineBox database; run `linebox --data {data} init` first")
    warn_loose(data, logging.getLogger("linebox"))
    lo, hi = args.rtp_ports
    if lo <= args.sip_port <= hi or lo <= args.http_port <= hi:
        raise CliError(f"--rtp-ports {lo}-{hi} overlaps the SIP or HTTP port; pick a range apart from both")
    if args.sip_port == args.http_port:
        raise CliError("--sip-port and --http-port must differ")
    opts = RunOptions(data=data, bind=args.bind, sip_port=args.sip_port, http_port=args.http_port,
                      http_bind=args.http_bind, rtp_lo=lo, rtp_hi=hi, media_workers=args.media_workers)
    install_uvloop()
    box = Box(opts)

    def ready() -> None:
        print(f"linebox: ready; SIP udp+tcp {args.bind}:{args.sip_port}, HTTP {opts.http_host}:{args.http_port}, "
              f"RTP {lo}-{hi}", file=sys.stderr, flush=True)
        if os.geteuid() == 0:
            logging.getLogger("linebox").warning(
                "running as root: give %s to an unprivileged user (scripts/setup creates `linebox`: "
                "chown -R linebox: %s) and the box runs as that user", data, data)

    try:
        asyncio.run(box.run_forever(ready))
        if box.restart_requested:
            # Same process id, fresh interpreter: what a supervisor would do, without one.
            logging.getLogger("linebox").warning("restarting")
            os.execv(sys.executable, [sys.executable, *sys.argv])
    except OSError as exc:
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, BSD)
            raise CliError(f"{_which_port(exc, args)} is already in use ({exc.strerror}); stop the program using it "
                           "or choose another with --sip-port/--http-port") from None
        if exc.errno == 13:
            raise CliError(f"not allowed to bind ({exc.strerror}); ports below 1024 need root or "
                           "CAP_NET_BIND_SERVICE, or choose --sip-port 5060 and --http-port 8080") from None
        if exc.errno == 99:
            raise CliError(f"cannot bind {args.bind} (SIP) or {opts.http_host} (HTTP): no interface has that "
                           "address; use --bind 0.0.0.0 or one of this machine's addresses") from None
        raise
    return 0


def _which_port(exc: OSError, args: argparse.Namespace) -> str:
    text = str(exc)
    if text.startswith("SIP") or f":{args.sip_port}" in text:
        return f"SIP port {args.sip_port}"
    if f":{args.http_port}" in text or f", {args.http_port})" in text:
        return f"HTTP port {args.http_port}"
    return "a port"


if __name__ == "__main__":
    sys.exit(main())
