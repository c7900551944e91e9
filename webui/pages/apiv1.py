"""The REST API under ``/api/v1`` (documented by docs/openapi.json) and the page that makes and
revokes its tokens (``/tokens``).

Clients authenticate with ``Authorization: Bearer <token>`` (webui.tokens), not with the
session cookie: the API is for scripts, and a cross-site page cannot set that header, so the
API needs no CSRF token. Every write goes through the same LocalApi calls as the forms, so it is
validated by the same rules; ``Invalid`` becomes 422 with the errors keyed by field path::

    {"errors": {"number": "extension 1001 already exists; pick another number"}}

How it gets past the session gate: ``WebAdmin._gate`` leaves ``/api/v1`` alone, and this
module's ``before_request`` hook takes every such request whole -- token check, routing, JSON
answer -- and ends it by raising the answer. The routes are ordinary bottle routes of
``admin.app``, so the OpenAPI test can list them.
"""

from __future__ import annotations

import calendar
import json
import time
from typing import Any

import bottle
from bottle import HTTPResponse, request

from firmware.api.localapi import Applied, BoxUnreachable, Invalid
from webui import tokens as tokenmod
from webui.pages import cdr as cdrmod
from webui.webdb import Session

NAV = [("API", "/tokens")]

PREFIX = "/api/v1"
MAX_BODY = 16 * 1024
MAX_LIMIT = 1000


class ApiError(Exception):
    def __init__(self, status: int, message: str | None = None, errors: dict[str, str] | None = None) -> None:
        super().__init__(message or "")
        self.status, self.errors = status, errors
        self.message = message or bottle.HTTP_CODES.get(status, "error")


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    return HTTPResponse(json.dumps(body, separators=(",", ":")) + "\n", status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def _applied(a: Applied) -> dict[str, Any]:
    return {"rev": a.rev, "live": a.live, "running": a.running}


def _body() -> dict[str, Any]:
    if (request.content_type or "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "send a JSON object with Content-Type: application/json")
    if request.content_length > MAX_BODY:
        raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        doc = json.loads(request.body.read(MAX_BODY + 1) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "the body must be a JSON object", {"": "a JSON object"})
    return doc


def _utc(text: str, key: str) -> float:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    raise ApiError(422, "invalid query", {key: "a UTC time: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z]"})


def _int(key: str, default: int, low: int, high: int) -> int:
    text = request.query.get(key)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, "invalid query", {key: f"a whole number from {low} to {high}"}) from None
    if not low <= value <= high:
        raise ApiError(422, "invalid query", {key: f"a whole number from {low} to {high}"})
    return value


class Api:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.tokens = tokenmod.TokenStore(admin.cfg.data)

    # --- the front door: every /api/v1 request, before the session gate -----------------------

    def hook(self) -> None:
        path = request.path
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return
        raise self.dispatch()

    def dispatch(self) -> HTTPResponse:
        auth = request.get_header("Authorization") or ""
        scheme, _, secret = auth.partition(" ")
        tok = self.tokens.verify(secret.strip(), self.admin.clock()) if scheme.lower() == "bearer" else None
        if tok is None:
            return answer(401, {"error": "a valid API token is required: Authorization: Bearer lbx_..."},
                          {"WWW-Authenticate": 'Bearer realm="linebox"'})
        # The audit log names the token ("api:crm-sync") as the one who made a change.
        now = self.admin.clock()
        request.environ["webui.session"] = Session(f"api:{tok.name}", "", now, now)
        try:
            try:
                route, args = self.admin.app.router.match(request.environ)
            except bottle.HTTPError as exc:
                raise ApiError(exc.status_code, "no such API route" if exc.status_code == 404 else str(exc.body)) from None
            request.environ["route.handle"] = request.environ["bottle.route"] = route
            request.environ["route.url_args"] = args
            status, body = route.callback(**args)
            return answer(status, body)
        except ApiError as exc:
            body: dict[str, Any] = {"error": exc.message}
            if exc.errors is not None:
                body["errors"] = exc.errors
            return answer(exc.status, body)
        except Invalid as exc:
            return answer(422, {"error": "invalid input; nothing was changed", "errors": exc.errors})
        except BoxUnreachable as exc:
            return answer(503, {"error": str(exc)})

    # --- routes ---------------------------------------------------------------------------------

    def extensions(self) -> tuple[int, Any]:
        return 200, {"extensions": [{"number": e.number, "name": e.name} for e in self.admin.api.extensions()]}

    def add_extension(self) -> tuple[int, Any]:
        doc = _body()
        errors = {k: "a string" for k in ("number", "name") if k in doc and not isinstance(doc[k], str)}
        if "number" not in doc:
            errors["number"] = "required"
        unknown = sorted(set(doc) - {"number", "name"})
        errors.update({k: "unknown field" for k in unknown})
        if errors:
            raise Invalid(errors)
        number, name = doc["number"].strip(), str(doc.get("name", "")).strip()
        made, applied = self.admin.api.add_extensions([(number, name)])
        self.admin._audit(f"added extension {number}" + (f" ({name})" if name else ""))
        return 201, {"number": number, "name": name, "secret": made[number], "applied": _applied(applied)}

    def remove_extension(self, number: str) -> tuple[int, Any]:
        try:
            applied = self.admin.api.remove_extension(number)
        except Invalid as exc:
            raise ApiError(404, exc.errors.get("number", str(exc))) from None
        self.admin._audit(f"removed extension {number}")
        return 200, {"removed": number, "applied": _applied(applied)}

    def calls(self) -> tuple[int, Any]:
        return 200, {"calls": self.admin.api.calls()}

    def hang_up(self, call_id: str) -> tuple[int, Any]:
        try:
            self.admin.api.hang_up(call_id)
        except Invalid as exc:
            raise ApiError(404, str(exc.errors.get("box", exc))) from None
        self.admin._audit(f"hung up call {call_id}")
        return 200, {"ended": call_id}

    def queues(self) -> tuple[int, Any]:
        return 200, {"queues": self.admin.api.queues()}

    def queue_stats(self) -> tuple[int, Any]:
        q = request.query.decode()
        period = q.get("period") or "all"
        errors: dict[str, str] = {}
        if period not in ("hour", "day", "all"):
            errors["period"] = "one of hour, day, all"
        agents = (q.get("agents") or "false").lower()
        if agents not in ("true", "false", "1", "0"):
            errors["agents"] = "true or false"
        since = until = None
        try:
            since = _utc(q["since"], "since") if q.get("since") else None
        except ApiError as exc:
            errors.update(exc.errors or {})
        try:
            until = _utc(q["until"], "until") if q.get("until") else None
        except ApiError as exc:
            errors.update(exc.errors or {})
        if since is not None and until is not None and until <= since:
            errors["until"] = "after since"
        if errors:
            raise Invalid(errors)
        return 200, self.admin.api.queue_report(queue=q.get("queue") or None, agents=agents in ("true", "1"),
                                                period=period, since=since, until=until, now=self.admin.clock())

    def cdrs(self) -> tuple[int, Any]:
        flt, errors = cdrmod.parse_filter(request.query.decode())
        if errors:
            raise Invalid(errors)
        limit = _int("limit", 100, 1, MAX_LIMIT)
        offset = _int("offset", 0, 0, cdrmod.SCAN_LIMIT)
        rows = cdrmod.search(self.admin.api.cdrs(cdrmod.SCAN_LIMIT), flt)
        return 200, {"total": len(rows), "offset": offset, "cdrs": rows[offset:offset + limit]}

    # --- the token page ---------------------------------------------------------------------------

    def page(self, status: int = 200, **ctx: Any) -> str:
        return self.admin._render("tokens", status, tokens=self.tokens.tokens(), **ctx)

    def create(self) -> str:
        name = request.forms.getunicode("name") or ""
        try:
            tok, secret = self.tokens.create(name, self.admin.clock())
        except tokenmod.TokenError as exc:
            return self.page(400, form={"name": name}, errors={"name": str(exc)})
        self.admin._audit(f"created API token {tok.name!r} ({tok.shown}...)")
        parts = request.urlparts
        return self.page(made={"token": tok, "secret": secret}, base=f"{parts.scheme}://{parts.netloc}",
                         notice="Token created. Copy it now: it is not shown again.")

    def revoke(self, tid: str) -> Any:
        tok = self.tokens.revoke(int(tid), self.admin.clock()) if tid.isdigit() else None
        if tok is None:
            bottle.abort(404, "There is no such live token.")
        self.admin._audit(f"revoked API token {tok.name!r} ({tok.shown}...)")
        raise bottle.redirect("/tokens", 303)


ROUTES: list[tuple[str, str, str]] = [  # (method, path, Api method) -- docs/openapi.json says the same
    ("GET", "/extensions", "extensions"),
    ("POST", "/extensions", "add_extension"),
    ("DELETE", "/extensions/<number>", "remove_extension"),
    ("GET", "/calls", "calls"),
    ("POST", "/calls/<call_id>/hangup", "hang_up"),
    ("GET", "/queues", "queues"),
    ("GET", "/queues/stats", "queue_stats"),
    ("GET", "/cdrs", "cdrs"),
]


def install(admin: Any) -> None:
    api = Api(admin)
    for method, path, name in ROUTES:
        admin.app.route(PREFIX + path, method, getattr(api, name))
    admin.app.add_hook("before_request", api.hook)
    admin.app.get("/tokens", callback=lambda: api.page())
    admin.app.post("/tokens", callback=api.create)
    admin.app.post("/tokens/<tid>/revoke", callback=api.revoke)
