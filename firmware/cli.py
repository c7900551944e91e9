"""`linebox`: the command admins, scripts and tests drive the box with.

Every error is one line on stderr that says how to fix it, with a non-zero exit code. Changes
go straight to the database; a running box picks them up within a second (config_rev).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import logging
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from firmware.extensions import ExtensionError, check_number, check_secret, generate_secret
from firmware.pbx.settings import SETTINGS, SettingError, effective, parse_setting
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

    cfg = sub.add_parser("config", help="the whole configuration as one JSON document (docs/config.md)")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    exp = cfg_sub.add_parser("export", help="write the configuration (it holds SIP secrets: keep it safe)")
    exp.add_argument("file", nargs="?", type=Path, help="default: standard output")
    cimp = cfg_sub.add_parser("import", help="validate, then replace the whole configuration at once")
    cimp.add_argument("file", type=Path)

    st = sub.add_parser("set", help="change a setting (applied live)")
    st.add_argument("key", help=", ".join(sorted(SETTINGS)))
    st.add_argument("value")
    sub.add_parser("settings", help="show all settings")

    run = sub.add_parser("run", help="run the PBX")
    run.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all)")
    run.add_argument("--sip-port", type=_port, default=5060)
    run.add_argument("--http-port", type=_port, default=8080)
    run.add_argument("--rtp-ports", type=_parse_rtp_ports, default=(10000, 20000), metavar="LO-HI")
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


def notify_running(data: Path, rev: int, timeout: float = 3.0) -> None:
    """Tells a box running on this data directory that its configuration changed (SIGHUP) and
    waits until it has applied revision ``rev``, so the change is live when the command returns."""
    from firmware.app import APPLIED_NAME, PID_NAME

    try:
        pid = int((data / PID_NAME).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return  # not running (or a stale pid file): it reads the database when it starts
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int((data / APPLIED_NAME).read_text().strip() or -1) >= rev:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    print(f"linebox: warning: the running box (pid {pid}) has not applied the change yet; "
          "it will within a few seconds", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (CliError, ExtensionError, SettingError) as exc:
        print(f"linebox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    data: Path = args.data
    cmd = args.command
    if cmd == "init":
        asyncio.run(_with_store(data, _noop, create=True))
        print(f"initialised {data / DB_NAME}")
        return 0
    if cmd == "demo":
        return asyncio.run(_with_store(data, _demo, create=True))
    if cmd == "ext":
        rc = asyncio.run(_with_store(data, lambda s: _ext(s, args)))
        if args.ext_command in ("add", "remove"):
            notify_running(data, asyncio.run(_with_store(data, lambda s: s.config_rev())))
        return rc
    if cmd == "config":
        rc = asyncio.run(_with_store(data, lambda s: _config(s, args)))
        if args.config_command == "import":
            notify_running(data, asyncio.run(_with_store(data, lambda s: s.config_rev())))
        return rc
    if cmd == "ivr":
        rc = asyncio.run(_with_store(data, lambda s: _ivr(s, args)))
        if args.ivr_command in ("import", "number"):
            notify_running(data, asyncio.run(_with_store(data, lambda s: s.config_rev())))
        return rc
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


async def _noop(store: Store) -> None:
    return None


DEMO_GREETING = ("Welcome to LineBox. Press 1 for extension 1001, press 2 for extension 1002, "
                 "or dial an extension number.")
DEMO_IVR = {"menus": [{
    "id": "main", "greeting": [{"say": DEMO_GREETING}],
    "options": {"1": {"goto": "extension", "target": "1001"}, "2": {"goto": "extension", "target": "1002"}},
    "dial_by_extension": True, "timeout": 5, "retries": 2, "fallback": {"goto": "hangup"},
}]}


async def _demo(store: Store) -> int:
    from firmware.prompts import PromptError, say

    existing = {e.number for e in await store.extensions()}
    for number, name in (("1001", "Demo One"), ("1002", "Demo Two")):
        if number in existing:
            continue
        secret = generate_secret()
        await store.add_extension(number, secret, name)
    if await store.ivr_document() is None:
        try:
            say(data_prompts(store), DEMO_GREETING)
            await store.set_ivr_document(DEMO_IVR)
            await store.set_ivr_number("500", "main")
        except PromptError as exc:  # espeak-ng missing: the demo still works without its IVR
            print(f"linebox: the demo IVR needs espeak-ng and sox (scripts/setup installs them): {exc}",
                  file=sys.stderr)
    for e in await store.extensions():
        print(f"extension {e.number} ({e.name or 'no name'}): user {e.number}, password {e.secret}")
    for number, menu in (await store.ivr_numbers()).items():
        print(f"dial {number} for the IVR menu '{menu}'; *43 echo test, *60 clock, *65 your number, *47 DTMF test")
    return 0


async def _ext(store: Store, args: argparse.Namespace) -> int:
    sub = args.ext_command
    if sub == "add":
        number = check_number(args.number)
        if number in await store.ivr_numbers():
            raise CliError(f"{number} enters an IVR menu; pick another number or "
                           f"`linebox ivr number {number} --remove` first")
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
        if not await store.remove_extension(check_number(args.number)):
            raise CliError(f"there is no extension {args.number} (see `linebox ext list`)")
        print(f"removed extension {args.number}")
    elif sub == "secret":
        ext = {e.number: e for e in await store.extensions()}.get(args.number)
        if ext is None:
            raise CliError(f"there is no extension {args.number} (see `linebox ext list`)")
        print(ext.secret)
    return 0


async def _config(store: Store, args: argparse.Namespace) -> int:
    from firmware import configdoc
    from firmware.ivr.schema import said_texts
    from firmware.prompts import PromptError, say

    if args.config_command == "export":
        text = json.dumps(await configdoc.export(store), indent=1) + "\n"
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
    problems = configdoc.validate(document)
    if problems:
        for p in problems:
            print(f"linebox: {args.file}: {p}", file=sys.stderr)
        raise CliError(f"{len(problems)} problem(s) in {args.file}; nothing was changed")
    for text in said_texts(document.get("ivr", {})):
        try:
            say(data_prompts(store), text)
        except PromptError as exc:
            raise CliError(f"cannot render {text!r} to speech: {exc}; nothing was changed") from None
    await configdoc.apply(store, document)
    print(f"imported {args.file}: {len(document.get('extensions', []))} extension(s), "
          f"{len(document.get('settings', {}))} setting(s), IVR menus and numbers")
    return 0


def data_prompts(store: Store) -> Path:
    """Where prompts rendered from configuration text live: beside the database."""
    return store.path.parent / "prompts" / "say"


async def _ivr(store: Store, args: argparse.Namespace) -> int:
    from firmware.ivr.schema import ids, said_texts, validate
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
        errors = validate(document, phrases=set(language("en").phrases), files=set(), extensions=extensions,
                          queues=set(), voicemail=set())
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
            await store.set_ivr_number(number, None)
            print(f"{number} no longer enters a menu")
            return 0
        if number in extensions:
            raise CliError(f"{number} is an extension; pick a number no extension uses")
        document = await store.ivr_document() or {}
        targets = ids(document, "menus") | ids(document, "time_conditions")
        if args.menu not in targets:
            raise CliError(f"there is no menu or time condition {args.menu!r}; there are: "
                           f"{', '.join(sorted(targets)) or 'none (ivr import first)'}")
        await store.set_ivr_number(number, args.menu)
        print(f"{number} enters {args.menu}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from firmware.app import Box, RunOptions, install_uvloop

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data: Path = args.data
    if not (data / DB_NAME).exists():
        raise CliError(f"{data} holds no LineBox database; run `linebox --data {data} init` first")
    lo, hi = args.rtp_ports
    if lo <= args.sip_port <= hi or lo <= args.http_port <= hi:
        raise CliError(f"--rtp-ports {lo}-{hi} overlaps the SIP or HTTP port; pick a range apart from both")
    if args.sip_port == args.http_port:
        raise CliError("--sip-port and --http-port must differ")
    opts = RunOptions(data=data, bind=args.bind, sip_port=args.sip_port, http_port=args.http_port, rtp_lo=lo, rtp_hi=hi)
    install_uvloop()
    box = Box(opts)

    def ready() -> None:
        print(f"linebox: ready; SIP udp+tcp {args.bind}:{args.sip_port}, HTTP {args.bind}:{args.http_port}, "
              f"RTP {lo}-{hi}", file=sys.stderr, flush=True)

    try:
        asyncio.run(box.run_forever(ready))
    except OSError as exc:
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, BSD)
            raise CliError(f"{_which_port(exc, args)} is already in use ({exc.strerror}); stop the program using it "
                           "or choose another with --sip-port/--http-port") from None
        if exc.errno == 13:
            raise CliError(f"not allowed to bind ({exc.strerror}); ports below 1024 need root or "
                           "CAP_NET_BIND_SERVICE, or choose --sip-port 5060 and --http-port 8080") from None
        if exc.errno == 99:
            raise CliError(f"cannot bind {args.bind}: no interface has that address; use --bind 0.0.0.0 "
                           "or one of this machine's addresses") from None
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
