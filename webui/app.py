"""The web admin's pages: a bottle app whose handlers gather data and templates render it.

Every configuration read or write goes through firmware.api.localapi; web-only state (the admin
account, sessions, login failures, the audit log, the region) lives in webui.db. The request
gate in :meth:`WebAdmin._gate` is the one place that decides who may see what: no admin account
yet -> the wizard; no live session -> the login page; every POST carries the CSRF token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, unquote, urlsplit

import bottle
from bottle import request, response

from firmware.api.localapi import Applied, BoxUnreachable, Invalid, LocalApi
from firmware.system.heap import release_free
from firmware.system.netconf import NetError
from firmware.system.netconf import describe as describe_net
from webui import auth, charts, pages, sysinfo
from webui.live import Live
from webui.webdb import Session, WebDb

log = logging.getLogger("linebox.web")

HERE = Path(__file__).resolve().parent
VIEWS = HERE / "views"
STATIC = HERE / "static"
# The types of what static/ holds. Left to bottle, the first file served would have mimetypes read
# the system's whole table (/etc/mime.types: 0.4 MB, kept for the life of the process).
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".md": "text/markdown"}

SESSION_COOKIE = "lb_session"
ANON_CSRF_COOKIE = "lb_csrf"  # double-submit token for the two forms used before a session exists
ANON_MAX_BODY = 64 * 1024  # a form posted before login (login, first admin, network confirm) is far smaller

# The regions of board.regions (tone plan, ring cadence, caller-ID standard, line impedance).
# The choice goes to the box's setting REGION_SETTING where the firmware has it; a firmware
# without it gets it kept in webui.db under "region", so the wizard works on either.
REGION_SETTING = "analog.region"
REGIONS = (("us", "United States"), ("uk", "United Kingdom"), ("de", "Germany"), ("fr", "France"),
           ("cn", "China"), ("jp", "Japan"), ("au", "Australia"), ("in", "India"))
WIZARD_ROWS = 3

# img-src allows data: for Pico's inline SVG icons (the <select> arrow); scripts and styles
# come from our own files only, so no inline script or style runs.
SECURITY_HEADERS = [
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


@dataclass(frozen=True)
class WebConfig:
    data: Path
    api: str | None = "http://127.0.0.1:8080"
    session_idle: float = 15 * 60
    session_lifetime: float = 12 * 3600
    lockout: auth.LockoutPolicy = field(default_factory=auth.LockoutPolicy)
    sip_host: str | None = None  # what phones are told to register with; default: the host the admin browses
    sip_port: int = 5060
    secure_cookies: bool = False  # set when served over HTTPS
    sse_interval: float = 2.0
    max_sse: int = 32
    network_rollback: float = 60.0  # seconds to confirm an address change from the new address


# What a local path after login may hold: the URL characters of RFC 3986 and nothing a browser or
# urljoin would quietly drop or reinterpret (tabs and newlines are stripped, a backslash reads as
# a slash, so "/\t/evil.example" and "/\\evil.example" both become "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")


def local_path(nxt: str) -> str:
    """``nxt`` when it is a path on this site, else "/": the one check of where a login may lead.

    Decoded once more as well: no page of ours has an encoded control character or slash in its
    path, and a proxy or browser that decodes again must not find "//evil.example" there either.
    """
    for form in (nxt, unquote(nxt)):
        if not _LOCAL_PATH.fullmatch(form):
            return "/"
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return "/"
    return nxt


def _client_ip() -> str:
    # REMOTE_ADDR, never X-Forwarded-For: a client that could name its own address could
    # step around the per-address lock-out.
    return str(request.environ.get("REMOTE_ADDR", ""))


def applied_text(a: Applied) -> str:
    if a.live:
        return "Applied to the running box."
    if a.running:
        return "Saved; the running box has not confirmed it yet (it applies changes within a few seconds)."
    return "Saved; the box is not running and will use it when it starts."


class WebAdmin:
    def __init__(self, config: WebConfig, api: LocalApi, db: WebDb, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.api, self.db, self.clock = config, api, db, clock
        self.live = Live(api, config.data, config.sse_interval)
        self.stopping = threading.Event()
        self._sse = threading.BoundedSemaphore(config.max_sse)
        self.app = bottle.Bottle()
        self.app.add_hook("before_request", self._gate)
        self._routes()
        self.nav: list[tuple[str, str]] = []
        for page in pages.modules():
            page.install(self)
            self.nav += list(getattr(page, "NAV", []))
        for code in (400, 401, 403, 404, 405, 429, 500, 503):
            self.app.error(code)(self._error_page)
        self._modules = 0  # how many modules were loaded at the last settle()

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The WSGI entry: the app with the security headers on every answer, errors included."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {h.lower() for h, _ in headers}
            extra = [(h, v) for h, v in SECURITY_HEADERS if h.lower() not in names]
            if "cache-control" not in names:
                extra.append(("Cache-Control", "no-store"))
            return start_response(status, headers + extra, exc_info)

        out = self.app(environ, start)
        self.settle()
        return out

    def settle(self) -> None:
        """Gives the heap's free pages back to the kernel if modules were imported since the last
        time: once the admin is built, then after a request that loaded a page's modules.
        Compiling them (where no .pyc can be written) frees megabytes in holes glibc would keep."""
        if len(sys.modules) != self._modules:
            self._modules = len(sys.modules)
            release_free()

    # --- the gate ----------------------------------------------------------------------------------

    def _gate(self) -> None:
        path = request.path
        if path.startswith("/static/"):
            return
        if path == "/api/v1" or path.startswith("/api/v1/"):
            return  # webui.pages.apiv1 authenticates these with a Bearer token (no session, no CSRF)
        post = request.method == "POST"
        if self.db.admin() is None:
            if path != "/setup/admin":
                raise bottle.redirect("/setup/admin", 303)
            if post:
                self._check_anon_csrf()
            return
        if path == "/setup/admin":
            raise bottle.redirect("/", 303)
        if path == "/login" or path.startswith("/network/confirm/"):
            # The confirmation of an address change is reached at the new address, where the
            # browser has no session yet; the change's secret id in the path is the credential.
            if post:
                self._check_anon_csrf()
            return
        token = request.get_cookie(SESSION_COOKIE)
        sse = path.startswith("/events/")
        # A dashboard left open does not keep a session alive: only what the admin does counts.
        # ... except a wallboard, which is there to be watched from across the room: its stream
        # keeps the session (up to its lifetime, 12 h by default).
        sess = self.db.session(token, self.clock(), idle=self.cfg.session_idle, lifetime=self.cfg.session_lifetime,
                               touch=not sse or path == "/events/wallboard") if token else None
        if sess is None:
            if post or sse:
                bottle.abort(401, "Your session has ended; log in again.")
            raise bottle.redirect("/login?next=" + quote(request.fullpath), 303)
        request.environ["webui.session"] = sess
        request.environ["webui.token"] = token
        if post and not auth.same_token(request.forms.get("csrf"), sess.csrf):
            bottle.abort(403, "The form's CSRF token is missing or wrong; nothing was changed. Reload the page and try again.")

    def _check_anon_csrf(self) -> None:
        # Nobody is logged in, and reading the form for its token would let a stranger make the
        # server spool a body up to the largest upload (a restore) to disk: refuse it unread.
        if request.content_length > ANON_MAX_BODY:
            bottle.abort(413, "This form is far larger than a login or account form can be.")
        if not auth.same_token(request.forms.get("csrf"), request.get_cookie(ANON_CSRF_COOKIE)):
            bottle.abort(403, "The form's CSRF token is missing or wrong; nothing was changed. Reload the page and try again.")

    def _anon_csrf(self) -> str:
        token = request.get_cookie(ANON_CSRF_COOKIE)
        if not token or len(token) < 32:
            token = auth.new_token()
            response.set_cookie(ANON_CSRF_COOKIE, token, path="/", httponly=True, samesite="strict",
                                secure=self.cfg.secure_cookies)
        return token

    @property
    def session(self) -> Session:
        return request.environ["webui.session"]

    def _who(self) -> str:
        sess = request.environ.get("webui.session")
        return sess.username if sess else "-"

    def _audit(self, what: str) -> None:
        self.db.audit(self._who(), _client_ip(), what, self.clock())

    def _start_session(self, username: str) -> None:
        token = auth.new_token()
        self.db.create_session(token, username, auth.new_token(), self.clock())
        response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="strict",
                            secure=self.cfg.secure_cookies)
        request.environ["webui.session"] = Session(username, "", self.clock(), self.clock())

    def _render(self, name: str, status: int = 200, **ctx: Any) -> str:
        sess = request.environ.get("webui.session")
        ctx.setdefault("csrf", sess.csrf if sess else "")
        ctx.setdefault("user", sess.username if sess else None)
        ctx.setdefault("errors", {})
        ctx.setdefault("form", {})
        ctx.setdefault("notice", None)
        ctx.setdefault("path", request.path)
        ctx.setdefault("nav", self.nav)
        response.status = status
        return bottle.template(name, template_lookup=[str(VIEWS)], h=Helpers, **ctx)

    def _error_page(self, err: bottle.HTTPError) -> str:
        response.content_type = "text/html; charset=utf-8"
        return bottle.template("error", template_lookup=[str(VIEWS)], h=Helpers, status=err.status_line,
                               message=err.body, user=None, csrf="", path=request.path, notice=None, nav=[])

    # --- routes --------------------------------------------------------------------------------------

    def _routes(self) -> None:
        a = self.app
        a.get("/static/<name:path>", callback=self.static)
        a.get("/setup", callback=self.setup)
        a.route("/setup/admin", ["GET", "POST"], self.setup_admin)
        a.route("/setup/region", ["GET", "POST"], self.setup_region)
        a.route("/setup/extensions", ["GET", "POST"], self.setup_extensions)
        a.get("/setup/done", callback=self.setup_done)
        a.post("/setup/finish", callback=self.setup_finish)
        a.route("/login", ["GET", "POST"], self.login)
        a.post("/logout", callback=self.logout)
        a.get("/", callback=self.dashboard)
        a.get("/events/dashboard", callback=self.dashboard_events)
        a.post("/calls/<call_id>/hangup", callback=self.hang_up)
        a.get("/extensions", callback=self.extensions)
        a.post("/extensions", callback=self.add_extension)
        a.post("/extensions/<number>/remove", callback=self.remove_extension)
        a.post("/extensions/<number>/secret", callback=self.renew_secret)
        a.get("/settings", callback=self.settings)
        a.post("/settings", callback=self.save_settings)
        a.get("/audit", callback=self.audit)
        a.get("/backup.json", callback=self.backup)

    def static(self, name: str) -> Any:
        # Vendored files carry their version in the name; an hour bounds how long app.css lags.
        return bottle.static_file(name, root=str(STATIC), mimetype=STATIC_TYPES.get(Path(name).suffix, "text/plain"),
                                  headers={"Cache-Control": "public, max-age=3600"})

    # first boot

    def _region(self) -> str | None:
        if self.api.has_setting(REGION_SETTING):
            return self.db.get("region") and str(self.api.settings()[REGION_SETTING])
        return self.db.get("region")

    def setup(self) -> None:
        if self._region() is None:
            raise bottle.redirect("/setup/region", 303)
        if self.db.get("wizard_done") is None:
            raise bottle.redirect("/setup/extensions", 303)
        raise bottle.redirect("/", 303)

    def setup_admin(self) -> str:
        csrf = self._anon_csrf()
        form = {"username": request.forms.getunicode("username", "admin") or ""}
        if request.method == "GET":
            return self._render("wizard_admin", csrf=csrf, form=form, step=1)
        password = request.forms.getunicode("password", "") or ""
        errors: dict[str, str] = {}
        try:
            auth.check_username(form["username"])
        except auth.PasswordError as exc:
            errors["username"] = str(exc)
        try:
            auth.check_password(password, form["username"])
        except auth.PasswordError as exc:
            errors["password"] = str(exc)
        if "password" not in errors and password != (request.forms.getunicode("confirm", "") or ""):
            errors["confirm"] = "the two passwords differ"
        if errors:
            return self._render("wizard_admin", 400, csrf=csrf, form=form, errors=errors, step=1)
        if not self.db.create_admin(form["username"], auth.hash_password(password), self.clock()):
            bottle.abort(403, "The admin account was created meanwhile; log in with it.")
        self._start_session(form["username"])
        self._audit("created the admin account")
        raise bottle.redirect("/setup/region", 303)

    def _region_page(self, status: int = 200, **ctx: Any) -> str:
        """The wizard's region step, which also shows the network and the analog ports found."""
        net = getattr(self, "net", None)
        try:
            state = describe_net(net.backend.state()) if net is not None else None
        except OSError:
            state = None
        try:
            ports = self.api.ports()
        except (BoxUnreachable, Invalid):
            ports = None
        ctx.setdefault("form", {})
        return self._render("wizard_region", status, regions=REGIONS, step=2, net=state, ports=ports,
                            browsed=request.urlparts.hostname, **ctx)

    def setup_region(self) -> str:
        form = {k: (request.forms.getunicode(k) or "").strip() for k in ("net", "interface", "address", "prefix", "gateway")}
        form["region"] = request.forms.getunicode("region") or self._region() or ""
        form["net"] = form["net"] or "dhcp"
        if request.method == "GET":
            return self._region_page(form=form)
        if form["region"] not in dict(REGIONS):
            return self._region_page(400, form=form, errors={"region": "pick the country the box's analog lines are in"})
        pending = None
        if form["net"] == "static":
            net = getattr(self, "net", None)
            if net is None:
                return self._region_page(400, form=form, errors={"address": "this box cannot change its network here"})
            try:
                pending = net.change(form["interface"], form["address"], form["prefix"] or "24",
                                     form["gateway"] or None, delay=1.0)
            except NetError as exc:
                return self._region_page(400, form=form, errors={exc.field: str(exc)})
            self._audit(f"network: {pending.ifname} -> {pending.address} from the wizard (rolls back unless confirmed)")
        notice = None
        if self.api.has_setting(REGION_SETTING):
            try:
                applied = self.api.set_setting(REGION_SETTING, form["region"])
            except Invalid as exc:
                return self._region_page(400, form=form, errors={"region": exc.errors.get(REGION_SETTING, str(exc))})
            notice = applied_text(applied)
            log.info("region %s: %s", form["region"], notice)
        # Also noted here: it tells the wizard this step was done (the setting has a default).
        self.db.put("region", form["region"])
        self._audit(f"set the region to {form['region'].upper()}")
        if pending is not None:
            port = request.urlparts.port or 80
            url = f"{request.urlparts.scheme}://{pending.address.address}:{port}/network/confirm/{pending.id}"
            return self._render("wizard_network_moved", step=2, url=url, address=str(pending.address),
                                window=self.net.window)
        raise bottle.redirect("/setup/extensions", 303)

    def setup_extensions(self) -> str:
        if request.method == "GET":
            return self._render("wizard_extensions", rows=[("", "")] * WIZARD_ROWS, step=3)
        rows = [((request.forms.getunicode(f"number{i}") or "").strip(), (request.forms.getunicode(f"name{i}") or "").strip())
                for i in range(WIZARD_ROWS)]
        wanted = [(i, r) for i, r in enumerate(rows) if r[0] or r[1]]
        if not wanted:
            raise bottle.redirect("/setup/done", 303)
        try:
            made, applied = self.api.add_extensions([r for _, r in wanted])
        except Invalid as exc:
            errors = _row_errors(exc.errors, [i for i, _ in wanted])
            return self._render("wizard_extensions", 400, rows=rows, errors=errors, step=3)
        for number, name in (r for _, r in wanted):
            self._audit(f"added extension {number}" + (f" ({name})" if name else ""))
        return self._render("wizard_secrets", step=3, notice=applied_text(applied),
                            made=[self._provisioning(n, made[n], name) for n, name in (r for _, r in wanted)])

    def setup_done(self) -> str:
        return self._render("wizard_done", step=4)

    def setup_finish(self) -> None:
        self.db.put("wizard_done", "1")
        self._audit("finished the first-boot wizard")
        raise bottle.redirect("/", 303)

    # login

    def login(self) -> str:
        csrf = self._anon_csrf()
        nxt = local_path(request.query.getunicode("next") or request.forms.getunicode("next") or "/")
        form = {"username": request.forms.getunicode("username", "") or "", "next": nxt}
        if request.method == "GET":
            return self._render("login", csrf=csrf, form=form)
        ip, now = _client_ip(), self.clock()
        until = self.db.locked_until(ip, now, self.cfg.lockout)
        if until is not None:
            return self._render("login", 429, csrf=csrf, form=form, errors={"form": _locked_text(until - now)})
        try:
            ban = self.api.ban_state(ip)
        except (BoxUnreachable, Invalid) as exc:
            log.warning("cannot ask the box whether %s is banned: %s", ip, exc)
            ban = None
        if ban is not None and ban.banned:
            return self._render("login", 429, csrf=csrf, form=form, errors={
                "form": f"Your address is blocked by the box's brute-force guard (SIP and web); "
                        f"try again in {_minutes(ban.retry_in)}."})
        password = request.forms.getunicode("password", "") or ""
        admin = self.db.admin()
        assert admin is not None  # the gate sent us to the wizard otherwise
        right_user = auth.same_token(form["username"], admin[0])
        ok = auth.verify_password(password, admin[1] if right_user else auth.DUMMY_HASH) and right_user
        if not ok:
            until = self.db.login_failed(ip, now, self.cfg.lockout)
            self.db.audit(form["username"][:32] or "-", ip, "failed login", now)
            try:
                self.api.login_failed(ip, form["username"][:32])
            except (BoxUnreachable, Invalid) as exc:
                log.warning("cannot report a failed login to the box: %s", exc)
            if until is not None:
                return self._render("login", 429, csrf=csrf, form=form, errors={"form": _locked_text(until - now)})
            return self._render("login", 401, csrf=csrf, form=form, errors={"form": "Wrong user name or password."})
        self.db.login_succeeded(ip)
        self._start_session(admin[0])
        self._audit("logged in")
        raise bottle.redirect(nxt, 303)

    def logout(self) -> None:
        self._audit("logged out")
        self.db.end_session(request.environ["webui.token"])
        response.delete_cookie(SESSION_COOKIE, path="/")
        raise bottle.redirect("/login", 303)

    # dashboard

    def dashboard(self) -> str:
        if self.db.get("wizard_done") is None:
            raise bottle.redirect("/setup", 303)
        return self._render("dashboard", live=self.live.snapshot(recount=True), csrf=self.session.csrf)

    def dashboard_events(self) -> Iterator[str]:
        def events(sess: Any) -> str:
            live = self.live.snapshot()
            return "".join(_sse_event(name, bottle.template(name, template_lookup=[str(VIEWS)], h=Helpers,
                                                             live=live, csrf=sess.csrf))
                           for name in ("live_calls", "live_registrations", "live_health", "live_security",
                                        "live_volume", "live_ports"))
        return self.sse(events)

    def sse(self, events: Callable[[Any], str]) -> Iterator[str]:
        """A live page's event stream: ``events(session)`` every ``sse_interval`` while the
        session lasts (it is checked each time, so logging out or idling ends the stream)."""
        if not self._sse.acquire(blocking=False):
            bottle.abort(503, "Too many live pages are open; close one.")
        token = request.environ["webui.token"]
        response.content_type = "text/event-stream"
        response.set_header("Cache-Control", "no-store")
        response.set_header("X-Accel-Buffering", "no")
        return self._stream(token, events)

    def _stream(self, token: str, events: Callable[[Any], str]) -> Iterator[str]:
        try:
            yield "retry: 3000\n\n"
            while not self.stopping.is_set():
                sess = self.db.session(token, self.clock(), idle=self.cfg.session_idle,
                                       lifetime=self.cfg.session_lifetime, touch=False)
                if sess is None:
                    return
                yield events(sess)
                self.stopping.wait(self.cfg.sse_interval)
        finally:
            self._sse.release()

    def hang_up(self, call_id: str) -> None:
        try:
            self.api.hang_up(call_id)
        except Invalid as exc:
            bottle.abort(404, str(exc.errors.get("box", exc)))
        except BoxUnreachable as exc:
            bottle.abort(503, str(exc))
        self._audit(f"hung up call {call_id}")
        raise bottle.redirect("/", 303)

    # extensions

    def _extension_rows(self) -> list[dict[str, Any]]:
        registered: dict[str, int] = {}
        try:
            registrations = self.api.registrations()
        except BoxUnreachable:
            registrations = []
        for r in registrations:
            registered[str(r.get("extension"))] = registered.get(str(r.get("extension")), 0) + 1
        return [{"number": e.number, "name": e.name, "contacts": registered.get(e.number, 0)}
                for e in self.api.extensions()]

    def extensions(self) -> str:
        removed = request.query.getunicode("removed")
        return self._render("extensions", rows=self._extension_rows(),
                            notice=f"Removed extension {removed}." if removed else None)

    def add_extension(self) -> str:
        form = {"number": (request.forms.getunicode("number") or "").strip(),
                "name": (request.forms.getunicode("name") or "").strip()}
        try:
            made, applied = self.api.add_extensions([(form["number"], form["name"])])
        except Invalid as exc:
            return self._render("extensions", 400, rows=self._extension_rows(), form=form, errors=exc.errors)
        self._audit(f"added extension {form['number']}" + (f" ({form['name']})" if form["name"] else ""))
        return self._render("secret", notice=applied_text(applied),
                            made=[self._provisioning(form["number"], made[form["number"]], form["name"])])

    def remove_extension(self, number: str) -> str:
        # Removing cuts a phone off: the list's button asks first, on a page of its own (no
        # script needed), and only the confirmation's form carries confirm=yes.
        if request.forms.get("confirm") != "yes":
            if number not in {e.number for e in self.api.extensions()}:
                bottle.abort(404, f"There is no extension {number}.")
            return self._render("remove", number=number)
        try:
            applied = self.api.remove_extension(number)
        except Invalid as exc:
            bottle.abort(404, exc.errors.get("number", str(exc)))
        self._audit(f"removed extension {number}")
        log.info("extension %s removed: %s", number, applied_text(applied))
        raise bottle.redirect("/extensions?removed=" + quote(number), 303)

    def renew_secret(self, number: str) -> str:
        try:
            secret, applied = self.api.new_secret(number)
        except Invalid as exc:
            bottle.abort(404, exc.errors.get("number", str(exc)))
        self._audit(f"generated a new SIP secret for extension {number}")
        name = {e.number: e.name for e in self.api.extensions()}.get(number, "")
        return self._render("secret", notice=applied_text(applied) + " Phones using the old secret must be re-provisioned.",
                            made=[self._provisioning(number, secret, name)])

    def _provisioning(self, number: str, secret: str, name: str) -> dict[str, Any]:
        host = self.cfg.sip_host or (request.urlparts.hostname or "linebox.local")
        realm = self.api.settings().get("sip.realm", "linebox")
        text = (f"SIP server: {host}\nPort: {self.cfg.sip_port} (UDP or TCP)\nUser name: {number}\n"
                f"Authentication user: {number}\nPassword: {secret}\nDomain / realm: {realm}\n")
        return {"number": number, "name": name, "secret": secret, "text": text, "qr": _qr_svg(text)}

    # settings: one form generated from the firmware's settings table

    def settings(self) -> str:
        return self._render("settings", groups=_grouped(self.api.setting_fields()))

    def save_settings(self) -> str:
        fields = self.api.setting_fields()
        texts = {f["name"]: request.forms.getunicode(f["name"]) for f in fields}
        texts = {name: text for name, text in texts.items() if text is not None}
        try:
            changed, applied = self.api.set_settings(texts)
        except Invalid as exc:
            for f in fields:  # show what was typed, to be fixed
                if f["name"] in texts:
                    f["value"] = texts[f["name"]]
            return self._render("settings", 400, groups=_grouped(fields), errors=exc.errors,
                                notice="Nothing was changed: fix the fields marked below.")
        for name, value in changed.items():
            self._audit(f"set {name} to {value}")
        notice = applied_text(applied) if applied else "Nothing to change."
        if any("read at start" in f["help"] for f in fields if f["name"] in changed):
            notice += " Settings marked 'read at start' take effect when the box restarts."
        return self._render("settings", groups=_grouped(self.api.setting_fields()), notice=notice)

    # audit log and backup

    def audit(self) -> str:
        return self._render("audit", entries=self.db.audit_log())

    def backup(self) -> bytes:
        doc = self.api.export_document()
        self._audit("downloaded a configuration backup")
        stamp = time.strftime("%Y%m%d-%H%M", time.localtime(self.clock()))
        response.content_type = "application/json"
        response.set_header("Content-Disposition", f'attachment; filename="linebox-backup-{stamp}.json"')
        return (json.dumps(doc, indent=1) + "\n").encode()


def _row_errors(errors: dict[str, str], indexes: list[int]) -> dict[str, str]:
    """localapi keys a batch's errors by position in the batch; the form by row number."""
    out = {}
    for key, message in errors.items():
        if key.startswith("rows["):
            pos, _, fld = key[5:].partition("].")
            out[f"{fld}{indexes[int(pos)]}"] = message
        else:
            out[f"{key}{indexes[0]}"] = message
    return out


def _grouped(fields: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Settings by the part before the dot (sip, security, rtp, ...), in the table's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in fields:
        f["id"] = "set-" + f["name"].replace(".", "-").replace("_", "-")
        groups.setdefault(f["name"].split(".", 1)[0], []).append(f)
    return list(groups.items())


def _sse_event(name: str, html: str) -> str:
    data = "\n".join("data: " + line for line in html.splitlines() or [""])
    return f"event: {name}\n{data}\n\n"


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _locked_text(seconds: float) -> str:
    return f"Too many failed logins from your address: locked out; try again in {_minutes(seconds)}."


def _qr_svg(text: str) -> str | None:
    try:
        import segno
    except ImportError:  # the provisioning text alone still works
        return None
    return segno.make(text, error="m").svg_inline(scale=3, border=2, dark="#111", light="#fff")


class Helpers:
    """Formatting the templates share."""

    spark = staticmethod(charts.sparkline)
    bars = staticmethod(charts.bars)
    bytes = staticmethod(sysinfo.human_bytes)
    duration = staticmethod(sysinfo.human_duration)

    @staticmethod
    def when(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

    @staticmethod
    def count(n: Any, one: str, many: str | None = None) -> str:
        if not isinstance(n, int):
            return f"? {many or one + 's'}"
        return f"{n} {one if n == 1 else (many or one + 's')}"

    @staticmethod
    def percent(used: float, total: float) -> str:
        return f"{100.0 * used / total:.0f}%" if total else "?"


__all__ = ["WebAdmin", "WebConfig", "REGIONS", "REGION_SETTING"]
