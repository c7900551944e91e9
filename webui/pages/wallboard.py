"""The supervisor's wallboard (``/wallboard``): every queue in large type, live over SSE.

Per queue: callers waiting (in line, with their wait), the longest wait, agents by state, and
today's answered / abandoned counts and service level against the queue's target. The live part
is the box's ``/api/queues``; today's figures are ``LocalApi.queue_report`` over the queue log
since local midnight. Both are gathered once per interval by :class:`QueueBoard` and shared by
every open wallboard and agent panel (ten screens cost the box one set of calls, not ten).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable, Iterator

import bottle

from firmware.api.localapi import BoxUnreachable, Invalid
from webui.app import VIEWS, Helpers, _sse_event

log = logging.getLogger("linebox.web.wallboard")

NAV = [("Wallboard", "/wallboard")]

# Service level colours: at or above GOOD is green, at or above FAIR amber, below red.
GOOD, FAIR = 80.0, 60.0
STATES = ("idle", "ringing", "on call", "wrap-up", "paused", "logged out")


def local_midnight(now: float) -> float:
    """The start of today in the box's local time zone (what 'today' means on a wallboard)."""
    return datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def sl_class(pct: float | None) -> str:
    if pct is None:
        return "sl-none"
    return "sl-good" if pct >= GOOD else "sl-fair" if pct >= FAIR else "sl-bad"


def clock(seconds: float | None) -> str:
    """A wait as a wall clock reads it: 0:07, 3:25, 1:02:10."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class QueueBoard:
    """One snapshot of the queues, shared by every wallboard and agent panel stream."""

    def __init__(self, admin: Any, interval: float, *, clock: Callable[[], float] = time.time) -> None:
        self.admin, self.interval, self.clock = admin, interval, clock
        self._lock = threading.Lock()
        self._at = -1e9
        self._snap: dict[str, Any] = {}
        self._members: tuple[int, dict[str, list[str]]] = (-1, {})

    def configured_agents(self) -> dict[str, list[str]]:
        """Queue id -> its configured agents (static members and dynamic agents). The box lists
        a dynamic agent only once they have logged in; the board shows the others as logged out.
        Read again only when the configuration's revision changes."""
        rev = self.admin.api.config_rev()
        if rev != self._members[0]:
            doc = self.admin.api.export_document()
            self._members = (rev, {q.get("id", ""): [m["agent"] for m in q.get("members", []) + q.get("agents", [])
                                                     if isinstance(m, dict) and "agent" in m]
                                   for q in doc.get("queues", []) if isinstance(q, dict)})
        return self._members[1]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.interval * 0.75:
                self._snap = self._take()
                self._at = now
            return self._snap

    def _take(self) -> dict[str, Any]:
        api = self.admin.api
        now = self.clock()
        snap: dict[str, Any] = {"at": now, "queues": [], "box_error": None, "names": {}, "contacts": {}}
        try:
            live = api.queues()
        except (BoxUnreachable, Invalid) as exc:
            snap["box_error"] = str(exc)
            return snap
        try:
            report = api.queue_report(period="all", since=local_midnight(now), now=now)
            today = {r["queue"]: r for r in report["queues"]}
        except Exception as exc:  # the figures of today are secondary: the live board still shows
            log.warning("queue report failed: %s", exc)
            today = {}
        snap["names"] = {e.number: e.name for e in api.extensions()}
        callers = [w["caller"] for q in live for w in q["waiting"]] + [r["caller"] for q in live for r in q["ringing"]]
        contacts = getattr(self.admin, "contacts", None)
        snap["contacts"] = contacts.names(callers) if contacts is not None else {}
        configured = self.configured_agents()
        for q in live:
            q["agents"] = {**{a: "logged out" for a in configured.get(q["queue"], [])}, **q["agents"]}
            counts = {s: 0 for s in STATES}
            for state in q["agents"].values():
                counts[state] = counts.get(state, 0) + 1
            t = today.get(q["queue"], {})
            waiting = sorted(q["waiting"], key=lambda w: (w.get("position") or 1e9))
            snap["queues"].append({
                **q, "waiting": waiting, "counts": counts,
                "answered": t.get("answered", 0), "abandoned": t.get("abandoned", 0),
                "offered": t.get("offered", 0), "sl_pct": t.get("service_level_pct"),
                "sl_class": sl_class(t.get("service_level_pct")),
            })
        return snap


def board(admin: Any) -> QueueBoard:
    """The admin's one QueueBoard (made on first use; the wallboard and the agent panel share it)."""
    b = getattr(admin, "queue_board", None)
    if b is None:
        b = admin.queue_board = QueueBoard(admin, admin.cfg.sse_interval, clock=admin.clock)
    return b


def short_when(t: float | None, now: float | None = None) -> str:
    """A call's time as a narrow column wants it: 14:05 today, 21 Nov 14:05 before."""
    if not t:
        return ""
    lt, today = time.localtime(t), time.localtime(now if now is not None else time.time())
    return time.strftime("%H:%M" if lt[:3] == today[:3] else "%d %b %H:%M", lt)


def render(name: str, **ctx: Any) -> str:
    return bottle.template(name, template_lookup=[str(VIEWS)], h=Helpers, clock=clock, short_when=short_when, **ctx)


def install(admin: Any) -> None:
    qb = board(admin)

    def wallboard() -> str:
        return admin._render("wallboard", snap=qb.snapshot(), clock=clock, good=GOOD, fair=FAIR)

    def events() -> Iterator[str]:
        return admin.sse(lambda sess: _sse_event("wallboard", render("wallboard_live", snap=qb.snapshot())))

    admin.app.get("/wallboard", callback=wallboard)
    admin.app.get("/events/wallboard", callback=events)
