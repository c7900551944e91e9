"""The composition root: builds every layer once, passes clocks, settings and stores in, runs.

Nothing else in the firmware creates a socket server, a database connection or a global.
"""

from __future__ import annotations

import asyncio
import json
import contextlib
import gc
import ipaddress
import os
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from firmware.api.httpapi import ActionError, HttpApi
from firmware.api.localapi import VOICEMAIL, box_actions, change_message
from firmware.media.ports import PortPool
from firmware.media.recorder import RecordingStore, recover_all
from firmware.media.relay import MediaEngine
from firmware.acd.queue import QueueError
from firmware.acd.schema import queue_specs
from firmware.pbx.lines import Lines, LineTestError
from firmware.config.routes import Routes
from firmware.api.running import APPLIED_NAME, PID_NAME, new_api_secret
from firmware.config.voicemail import DEFAULT_MAX_SECONDS
from firmware.store.messages import Mailboxes
from firmware.config.recpolicy import recording_policy
from firmware.ivr.schema import load_conditions
from firmware.pbx.auth import Authenticator
from firmware.events import SHUTDOWN
from firmware.pbx.admission import Admission, Limits
from firmware.pbx.guard import Guard
from firmware.pbx.pbx import Pbx
from firmware.pbx.registrar import Registrar
from firmware.config.settings import effective, media_workers
from firmware.prompts import PromptSet
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.transport import SipTransport
from firmware.store.db import Store
from firmware.store.writer import Writer
from firmware.system.heap import release_free
from firmware.system.loadprobe import LoadProbe, SimulatedClock

log = logging.getLogger("linebox")

USER_AGENT = "LineBox/0.1"
RUN_NAME = "run.json"
RETENTION_EVERY = 3600.0  # seconds between retention sweeps (and one at start)
# Stopping (SIGTERM, SIGINT, a restart): a supervisor (systemd, a script, a test) waits a few
# seconds before it kills, and the box must be gone by then with every call's CDR row committed.
# The time line, in seconds from the signal:
FAREWELL_WAIT = 1.0  # at most, for the phones' answers to the BYEs (UDP re-sends a BYE at 0.5 s)
COMMITTED_BY = 1.8  # the call records are committed, or the stop gives up on them
CLOSE_WAIT = 0.1  # then each part (lines, HTTP, SIP) closes in this much (a few ms each)
DB_CLOSED_BY = 2.2  # the database file is closed (SQLite checkpoints its log as it closes)
STOP_SECONDS = 2.5  # the watchdog: the process is gone, whatever is left
# Test-only local API actions (end-to-end tests of paths a CI machine cannot provoke for real)
# exist only when the box is started with this variable set to 1.
TEST_HOOKS_ENV = "LINEBOX_TEST_HOOKS"
SIMULATE_CLOCK = "/api/test/media-clock"


@dataclass(frozen=True)
class RunOptions:
    data: Path
    bind: str = "0.0.0.0"
    sip_port: int = 5060
    http_port: int = 8080
    # The local API's address. None: loopback (the SIP address when that is a loopback one, so
    # boxes side by side on 127.0.0.x keep apart); never the LAN unless an admin asks for it.
    http_bind: str | None = None

    @property
    def http_host(self) -> str:
        if self.http_bind:
            return self.http_bind
        return self.bind if _is_loopback_address(self.bind) else "127.0.0.1"
    rtp_lo: int = 10000
    rtp_hi: int = 20000
    media_workers: int | None = None  # None: the media.workers setting


class Box:
    """One running LineBox: the layers and the periodic work that ties them together."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.restart_requested = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        raise_file_limit()
        opts = self.opts
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.store = await Store.open(opts.data)
        interrupted = await self.store.close_interrupted(time.time())
        if interrupted:
            log.warning("%d call(s) were in progress when the box last stopped: recorded as INTERRUPTED", interrupted)
        self.writer = Writer(self.store)
        self.writer.start()
        self.config_rev = await self.store.config_rev()
        (opts.data / APPLIED_NAME).write_text(f"{self.config_rev}\n")
        self.settings = effective(await self.store.settings())
        self.extensions = {e.number: e for e in await self.store.extensions()}
        s = self.settings

        self.registrar = Registrar(persist=self.writer.binding, forget=self.writer.remove_binding,
                                   min_expires=s["sip.min_expires"], max_expires=s["sip.max_expires"])
        self.registrar.load(await self.store.bindings(time.time()))
        self.guard = Guard(ban_failures=s["security.ban_failures"], ban_window=s["security.ban_window"],
                           ban_seconds=s["security.ban_seconds"], rate=s["security.rate"],
                           is_registered=self.registrar.is_registered_ip, wall_clock=time.time)
        self.auth = Authenticator(realm=s["sip.realm"], secret_of=self._secret_of, nonce_ttl=s["sip.nonce_ttl"])
        rec_dir = opts.data / "recordings"
        rec_dir.mkdir(exist_ok=True)
        repaired = recover_all(str(rec_dir))  # before any recorder of ours opens a file there
        if repaired:
            log.warning("repaired %d recording(s) cut short by the last stop: %s", len(repaired), repaired)
        self.recordings = RecordingStore(str(rec_dir), s["recording.quota_mb"] * 1024 * 1024)
        messages = Mailboxes(opts.data / "voicemail")
        repaired = messages.recover()
        if repaired:
            log.warning("repaired %d voicemail message(s) cut short by the last stop: %s", len(repaired), repaired)
        self.media = MediaEngine(bind_host=self._media_host(), port_pool=PortPool(opts.rtp_lo, opts.rtp_hi))
        workers = opts.media_workers if opts.media_workers is not None else media_workers(
            s["media.workers"], len(os.sched_getaffinity(0)))
        self.media.use_workers(workers)
        # No option tags yet: claiming "timer" would oblige us to answer Session-Expires (RFC 4028).
        self.endpoint = SipEndpoint(user_agent=USER_AGENT, supported=frozenset())
        self.sip = SipTransport(self.endpoint, on_event=self._on_sip_event, admit=self._admit)
        self.pbx = Pbx(loop=loop, sip=self.sip, media=self.media, registrar=self.registrar, auth=self.auth,
                       guard=self.guard, writer=self.writer, settings=self.settings, extensions=self.extensions,
                       domain=self._domain(), prompts=PromptSet(), recordings=self.recordings,
                       custom_prompts=opts.data / "prompts", messages=messages, user_agent=USER_AGENT,
                       admission=Admission(Limits(setups_per_second=s["call.max_setups_per_second"],
                                                  refuse_overload=s["call.refuse_overload"] == "yes"),
                                           now=loop.time()))
        self.load_probe = LoadProbe(loop, on_sample=self.pbx.observe_load, clock_stats=lambda: self.media.clock_stats,
                                    workers_load=lambda: self.media.workers.load() if self.media.workers else None)
        await self._load_ivr()
        await self._load_routes()
        self.lines = Lines(self.pbx, opts.data)
        try:
            await self.lines.start(await self.store.document("ports"))
        except (OSError, ValueError) as exc:
            # A missing card must not keep the SIP side down: say so, run without analog lines.
            log.error("analog board (%s) not available: %s", self.settings["analog.driver"], exc)
            self.lines = Lines(self.pbx, opts.data)
        if self.lines.driver is not None:
            self.pbx.lines = self.lines
            self.pbx.refresh_mwi()
        self.pbx.queues.restore(await self.store.queue_events(since=time.time() - 7 * 86400))
        await self.sip.start(opts.bind, opts.sip_port)
        self.http = HttpApi({
            "/health": self._health,
            "/api/calls": lambda: [c.summary() for c in self.pbx.calls],
            "/api/registrations": self._registrations,
            "/api/security-events": lambda: [asdict(e) for e in self.guard.events],
            "/api/media-events": lambda: list(self.pbx.media_events),
            "/api/queues": self.pbx.queues.status,
            "/api/ports": lambda: self.lines.status(),
            "/api/line-test": lambda: self.lines.line_test_state(),
            "/api/queue-events": lambda: [asdict(e) for e in self.pbx.queues.log.recent],
        })
        self.http.actions.update(box_actions(guard=self.guard, calls=lambda: self.pbx.calls, clock=self.loop.time))
        self.http.actions["/api/line-test"] = self._line_test
        self.http.actions["/api/agent"] = self._agent
        self.http.actions["/api/restart"] = self._restart
        self.http.actions[VOICEMAIL] = self._voicemail
        if os.environ.get(TEST_HOOKS_ENV) == "1":
            self.http.actions[SIMULATE_CLOCK] = self._simulate_media_clock
        self.http.secret = new_api_secret(opts.data).encode()
        try:
            await self.http.start(opts.http_host, opts.http_port)
        except OSError:
            await self.sip.close()
            raise
        # Where the CLI finds the running box's local API (line tests, and the web admin's default).
        local = "127.0.0.1" if opts.http_host in ("0.0.0.0", "", "::") else opts.http_host
        if ":" in local:
            local = f"[{local}]"
        (opts.data / RUN_NAME).write_text(json.dumps({"api": f"http://{local}:{opts.http_port}"}) + "\n")
        # With thousands of live transactions the cyclic GC dominated INVITE handling (124 µs
        # per INVITE against 54 µs with it off, measured on the endpoint): move what start-up
        # built out of its sight and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20000, 20, 20)
        release_free()  # the heap pages loading the modules freed (1.3 MB idle)
        self.load_probe.start()
        self._every(1.0, self._tick)
        self._every(5.0, self._housekeeping)
        self._every(RETENTION_EVERY, self._retention)
        self._tasks.append(self.loop.create_task(self._retention()))
        self._every(lambda: self.settings["sip.qualify_interval"], self.pbx.qualify)

    def _media_host(self) -> str:
        """The address phones are told to send RTP to (SDP c=): the bind address, or when bound to
        every interface, the address of the interface that holds the default route."""
        if self.opts.bind not in ("0.0.0.0", "", "::"):
            return self.opts.bind
        return primary_address()

    def _domain(self) -> str:
        host = self._media_host()
        return f"[{host}]" if ":" in host else host

    def _secret_of(self, user: str) -> str | None:
        ext = self.extensions.get(user)
        return None if ext is None else ext.secret

    def _admit(self, data: bytes, source: tuple[str, int], transport: str) -> bool:
        return self.guard.admit(data, source[0], source[1], self.loop.time())

    def _on_sip_event(self, event: Any) -> None:
        self.pbx.on_sip_event(event)

    def _every(self, interval: float | Callable[[], float], fn: Callable[[], Any]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval() if callable(interval) else interval)
                try:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("periodic %s failed", getattr(fn, "__name__", fn))

        self._tasks.append(self.loop.create_task(loop()))

    async def _tick(self) -> None:
        self.pbx.check_media(self.loop.time())
        await self._tick_config()

    async def _tick_config(self) -> None:
        rev = await self.store.config_rev()
        if rev != self.config_rev:
            self.config_rev = rev
            await self.reload()
            # The CLI waits on this file to report "applied" only when it is true.
            (self.opts.data / APPLIED_NAME).write_text(f"{rev}\n")

    async def _load_ivr(self) -> None:
        document = await self.store.ivr_document() or {}
        self.pbx.ivr_menus = document.get("menus", [])
        self.pbx.ivr_conditions = load_conditions(document)  # validated at import
        self.pbx.ivr_numbers = await self.store.ivr_numbers()
        self.pbx.queues.configure(list(queue_specs(await self.store.document("queues")).values()))
        self.pbx.recording_policy = recording_policy(await self.store.document("recording"))
        vm = await self.store.document("voicemail") or {}
        self.pbx.mailboxes = {str(n): dict(b) for n, b in (vm.get("mailboxes") or {}).items()}
        self.pbx.voicemail_max = int(vm.get("max_seconds", DEFAULT_MAX_SECONDS))

    async def _load_routes(self) -> None:
        self.pbx.outbound = Routes.from_document(await self.store.document("routes"),
                                                 self.settings["analog.trunk_prefix"])

    async def reload(self) -> None:
        """Applies configuration changed by the CLI or web admin, without a restart."""
        await self._load_ivr()
        await self.lines.configure(await self.store.document("ports"))
        self.extensions.clear()
        self.extensions.update({e.number: e for e in await self.store.extensions()})
        self.settings.update(effective(await self.store.settings()))
        await self._load_routes()  # the default route follows analog.trunk_prefix
        self.pbx.end_subscriptions(time.time())  # an extension or mailbox removed
        s = self.settings
        self.guard.configure(ban_failures=s["security.ban_failures"], ban_window=s["security.ban_window"],
                             ban_seconds=s["security.ban_seconds"], rate=s["security.rate"])
        self.auth.nonce_ttl = s["sip.nonce_ttl"]
        self.pbx.admission.configure(setups_per_second=s["call.max_setups_per_second"],
                                     refuse_overload=s["call.refuse_overload"] == "yes")
        self.recordings.quota_bytes = s["recording.quota_mb"] * 1024 * 1024
        self.auth.realm = s["sip.realm"]
        self.registrar.min_expires, self.registrar.max_expires = s["sip.min_expires"], s["sip.max_expires"]
        for aor in [b.aor for b in self.registrar.all(time.time()) if b.aor not in self.extensions]:
            self.registrar.remove_aor(aor)
        for call in self.pbx.calls:
            if call.bridge is not None:
                call.bridge.timeout = s["rtp.hold_timeout" if call.on_hold else "rtp.timeout"]
        log.info("configuration reloaded: %d extension(s)", len(self.extensions))

    def _housekeeping(self) -> None:
        now = time.time()
        self.registrar.expire(now)
        self.pbx.end_subscriptions(now)
        self.writer.expire_bindings(now)
        self.writer.heartbeat(now)
        self.auth.housekeeping(now)
        self.guard.housekeeping(self.loop.time())

    async def _retention(self) -> None:
        """Deletes what is older than the retention settings (0 keeps it)."""
        now = time.time()
        days = self.settings["cdr.retention_days"]
        if days:
            gone = await self.store.forget_before(now - days * 86400)
            if gone:
                log.info("retention: deleted %d call record(s) older than %d days", gone, days)
        days = self.settings["recording.retention_days"]
        if days:
            gone = await self.loop.run_in_executor(None, self.recordings.expire, now - days * 86400)
            if gone:
                log.info("retention: deleted %d recording(s) older than %d days", len(gone), days)

    def _restart(self, args: dict[str, Any]) -> dict[str, Any]:
        """The web admin's "restart": calls are hung up, the process starts itself again."""
        log.warning("restart asked for by %s", str(args.get("who", "the local API"))[:64])
        self.restart_requested = True
        self.loop.call_later(0.2, self._stop.set)  # after this answer has left
        return {"restarting": True}

    def _agent(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.pbx.queues.agent_action(args)
        except (ValueError, QueueError) as exc:
            raise ActionError("409 Conflict", str(exc)) from None

    def _voicemail(self, args: dict[str, Any]) -> dict[str, Any]:
        """The web admin marks a message heard or deletes it: done here, on the loop where *97
        moves messages too (so the two never interleave), and the mailbox's lamps follow at once."""
        mailbox = str(args.get("mailbox", ""))
        try:
            done = change_message(self.pbx.messages, mailbox, str(args.get("id", "")), str(args.get("action", "")))
        except LookupError as exc:
            raise ActionError("404 Not Found", str(exc)) from None
        except ValueError as exc:
            raise ActionError("400 Bad Request", str(exc)) from None
        self.pbx.mailbox_changed(mailbox)
        return done

    def _simulate_media_clock(self, args: dict[str, Any]) -> dict[str, Any]:
        """Test hook (only with LINEBOX_TEST_HOOKS=1 in the environment): the load probe reads a
        media clock that is ``late_share`` late instead of the engine's, or the engine's again
        when it is null. End-to-end tests drive the overload path this way: a really late clock
        needs a saturated core, which a CI machine can neither promise nor spare."""
        share = args.get("late_share")
        if share is None:
            self.load_probe.clock_stats = lambda: self.media.clock_stats
            return {"simulated": None}
        if not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ActionError("400 Bad Request", "late_share is a number from 0 to 1, or null")
        self.load_probe.clock_stats = SimulatedClock(float(share))
        return {"simulated": float(share)}

    def _line_test(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.lines.start_line_test(args)
        except LineTestError as exc:
            raise ActionError("409 Conflict", str(exc)) from None

    def _health(self) -> dict[str, Any]:
        return {"status": "ok", **self.pbx.status()}

    def _registrations(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{"extension": b.aor, "contact": b.contact, "source": f"{b.source[0]}:{b.source[1]}",
                 "transport": b.transport, "expires_in": int(b.expires_at - now), "user_agent": b.user_agent,
                 "reachable": (b.aor, b.contact) not in self.registrar.unreachable}
                for b in self.registrar.all(now)]

    async def _abandon_start(self) -> None:
        """Start failed half-way (a port in use): close what was opened so the process can exit."""
        for name in ("http", "sip"):
            part = getattr(self, name, None)
            if part is not None:
                try:
                    await part.close()
                except Exception:
                    log.debug("closing %s after a failed start", name, exc_info=True)
        if getattr(self, "media", None) is not None:
            self.media.close()
        if getattr(self, "writer", None) is not None:
            await self.writer.stop()
        if getattr(self, "store", None) is not None:
            await self.store.close()

    async def stop(self) -> bool:
        """Stops the box: no new call is taken, every call ends with its CDR row closed (cause
        "shutdown"), the phones get their BYEs (their answers are waited for FAREWELL_WAIT at
        most), the rows are committed (by COMMITTED_BY: they are what a stop must not lose),
        then the sockets and the database are closed (see the time line by STOP_SECONDS).

        A step that fails or overruns does not keep the next from running. Returns False when
        something was left unfinished (rows the database did not take, a part that would not
        close): the process must then leave without waiting for it (run_forever does).
        """
        loop = self.loop
        t0 = loop.time()

        def until(t: float) -> float:
            return max(0.0, t0 + t - loop.time())

        for t in self._tasks:
            t.cancel()
        self.load_probe.stop()
        clean = True
        try:
            ended = self.pbx.shut_down()
        except Exception:
            log.exception("stop: ending the calls failed")
            ended, clean = len(self.pbx.calls), False
        byes = len(self.pbx.farewells)
        log.info("stopping: %d call(s) ended, %d BYE/CANCEL(s) sent", ended, byes)
        if byes:
            try:
                async with asyncio.timeout(FAREWELL_WAIT):
                    await self.pbx.farewells_answered()
            except TimeoutError:
                # A phone that is off or unreachable must not hold the stop: its call ends by
                # its own timers (no more RTP, or its next request gets no answer).
                log.warning("stop: %d of %d BYE/CANCEL(s) unanswered after %.1f s; not waiting longer",
                            len(self.pbx.farewells), byes, FAREWELL_WAIT)
        # A call set up in the meantime (an agent answering a queue callback) ends too.
        stragglers = self.pbx.hang_up_all(SHUTDOWN)
        if stragglers:
            log.info("stopping: %d more call(s) ended", stragglers)
        if not await self._stop_step("committing the call records", self.writer.flush, until(COMMITTED_BY)):
            # The database's thread may be stuck in a transaction: closing would wait for it.
            log.error("stop: call records still queued were not committed; calls among them are "
                      "closed as INTERRUPTED at the next start")
            return False
        clean &= await self._stop_step("analog lines", self.lines.stop, CLOSE_WAIT)
        clean &= await self._stop_step("HTTP API", self.http.close, CLOSE_WAIT)
        clean &= await self._stop_step("SIP transport", self.sip.close, CLOSE_WAIT)
        try:
            self.media.close()
        except Exception:
            log.exception("stop: closing the media engine failed")
            clean = False
        # what came since the flush (a binding refreshed), then the file
        clean &= await self._stop_step("database writer", self.writer.stop, until(DB_CLOSED_BY))
        return await self._stop_step("database", self.store.close, until(DB_CLOSED_BY)) and clean

    @staticmethod
    async def _stop_step(what: str, step: Callable[[], Any], seconds: float) -> bool:
        """One step of the stop, given ``seconds``; False if it failed or overran (logged)."""
        try:
            async with asyncio.timeout(seconds):
                await step()
            return True
        except TimeoutError:
            log.error("stop: %s did not finish within %.1f s", what, seconds)
        except Exception:
            log.exception("stop: %s failed", what)
        return False

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        """SIGTERM or SIGINT: the first stops the box; one more while it stops means whoever
        sent it will not wait, so the process leaves at once. What was committed is on the disk
        already (WAL, synchronous=FULL); rows still queued are lost, and their calls are closed
        as INTERRUPTED at the next start, like after a kill -9."""
        if not self._stop.is_set():
            log.info("%s: stopping", sig.name)
            self._stop.set()
            return
        log.warning("%s while stopping: exiting at once", sig.name)
        os._exit(128 + sig)

    def _watch_stop(self) -> None:
        """The stop's owner of last resort: a thread, because what could overrun it (a database
        thread stuck on a lock, a recording's fsync in the executor, a bug blocking the loop) is
        out of the loop's reach, and the interpreter will not exit before those threads end."""
        def overran() -> None:
            # Straight to fd 2, not through logging: the thread that is stuck may hold its lock.
            with contextlib.suppress(OSError):
                os.write(2, f"linebox: the stop took more than {STOP_SECONDS:g} s: exiting without "
                            "waiting for the rest\n".encode())
            os._exit(1)

        watchdog = threading.Timer(STOP_SECONDS, overran)
        watchdog.daemon = True  # never what keeps the process alive
        watchdog.start()

    async def run_forever(self, ready: Callable[[], None] | None = None) -> None:
        try:
            await self.start()
        except BaseException:
            await self._abandon_start()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                self.loop.add_signal_handler(sig, self._on_stop_signal, sig)
        if ready is not None:
            ready()
        with contextlib.suppress(NotImplementedError):
            # The CLI (and later the web admin) signal a configuration change, so it applies
            # at once; the once-a-second config_rev poll stays as the safety net.
            self.loop.add_signal_handler(signal.SIGHUP, lambda: self.loop.create_task(self._tick_config()))
        pidfile = self.opts.data / PID_NAME
        pidfile.write_text(f"{os.getpid()}\n")
        try:
            await self._stop.wait()
        finally:
            with contextlib.suppress(OSError):
                pidfile.unlink()
        self._watch_stop()
        if not await self.stop():
            log.error("the stop left work unfinished: exiting without waiting for it")
            logging.shutdown()
            os._exit(1)


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def primary_address() -> str:
    """The source address the kernel would use for the default route (connect() on UDP sends nothing)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only a route lookup, no packet leaves
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def raise_file_limit() -> None:
    """Each call holds four sockets; a default soft limit of 1024 files would cap the box near 250
    calls, so take the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d", soft)


def install_uvloop() -> bool:
    """uvloop relays RTP at about a third of stock asyncio's cost per packet (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
