"""The firmware's one local API for the web admin (STYLE.md §10), both ends of it.

The web admin is its own process, so a crash there drops no call. It reaches the box only
through :class:`LocalApi`:

* configuration is read and written through :class:`~firmware.store.db.Store` (the database is
  the source of truth), validated with the same rules as the CLI (``firmware.config.extensions``,
  ``firmware.config.settings``, ``firmware.config.document``), written in one transaction, then the running
  box is told to apply it (SIGHUP; it reports the revision it applied in ``config.applied``);
* live status and the few things only the running box can do (hang up a call, count a failed
  web login against the SIP brute-force blocklist) go over the box's HTTP API on loopback.

The box side of those actions is :func:`box_actions`, plugged into ``HttpApi`` by the
composition root, so the paths and their arguments are written down once, here.

``LocalApi`` is synchronous: bottle's worker threads call it. It opens the Store blocking (no
event loop in this process: ``Store.open_blocking``), and one lock serialises every database
use, so a transaction of one request never interleaves with another's statements.

The document's rules and tables, the reports, the prompts and the voicemail files are imported
by the methods that use them: a web admin nobody is using holds none of them
(``scripts/bench memory``).
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Iterable, Mapping, TypeVar

from firmware.api.running import API_SECRET_HEADER, api_secret, notify
from firmware.config.extensions import ExtensionError, check_number, generate_secret
from firmware.config.settings import SETTINGS, SettingError, effective
from firmware.store.datadir import FILE_MODE, keep_private, private_dir, private_file  # noqa: F401 (for the web)
from firmware.store.db import Store, run_blocking

if TYPE_CHECKING:
    from firmware.api.httpapi import Action

T = TypeVar("T")

# The box's POST actions (firmware.api.httpapi): what the web asks of the running box.
AUTH_FAILURE = "/api/auth-failure"
BAN_CHECK = "/api/ban-check"
HANGUP = "/api/hangup"
VOICEMAIL = "/api/voicemail"  # mark a message heard or delete it (firmware.system.app, change_message)
WEB_LOGIN = "WEB-LOGIN"  # the "method" of a failed web login in the box's security events


MAX_NAME = 64


class Invalid(ValueError):
    """Input the box cannot take: one message per form field; nothing was changed."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class BoxUnreachable(OSError):
    """The running box's HTTP API did not answer (the box is stopped or starting)."""


@dataclass(frozen=True)
class ExtensionView:
    """An extension as the web shows it: never its secret."""

    number: str
    name: str


@dataclass(frozen=True)
class BanState:
    banned: bool
    retry_in: float = 0.0


@dataclass(frozen=True)
class Applied:
    """What became of a configuration change: committed at ``rev``; ``live`` says whether the
    running box applied it before we returned (False: not running, or not yet)."""

    rev: int
    live: bool
    running: bool


def check_name(name: str) -> str:
    """The display-name rule of the CLI and configdoc: it ends up in SIP From headers."""
    if len(name) > MAX_NAME or any(c in name for c in '"\r\n<>'):
        raise ExtensionError(f"up to {MAX_NAME} characters, no quotes, angle brackets or line breaks")
    return name



def document_problems(doc: Any, *, files: set[str] | None) -> list[Any]:
    """Every problem of a configuration document (firmware.config.document.validate): the one
    check the CLI, the web's forms and a restored backup share."""
    from firmware.config import document as configdoc

    return configdoc.validate(doc, files=files)


class LocalApi:
    def __init__(self, data: Path, api: str | None = "http://127.0.0.1:8080", *, timeout: float = 3.0) -> None:
        self.data = Path(data)
        self.api = api.rstrip("/") if api else None
        self.timeout = timeout
        self._store: Store | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                run_blocking(self._store.close())
                self._store = None

    # --- configuration (through the Store) -----------------------------------------------------

    def extensions(self) -> list[ExtensionView]:
        return [ExtensionView(e.number, e.name) for e in self._call(lambda s: s.extensions())]

    def add_extensions(self, rows: Iterable[tuple[str, str]]) -> tuple[dict[str, str], Applied]:
        """Adds extensions (number, name) with generated secrets, all or none.

        Errors are keyed ``number``/``name`` for one row, ``rows[i].number`` for several.
        Returns {number: secret}: the only moment a secret leaves the box through the web.
        """
        from firmware.config.document import new_conflicts
        from firmware.numberplan import Claim
        from firmware.store import document as stored

        rows = [(n.strip(), name.strip()) for n, name in rows]

        async def add(store: Store) -> dict[str, str]:
            errors: dict[str, str] = {}
            current = await stored.export(store)  # read once: every row is checked against it
            claimed: list[Claim] = []  # the rows before this one: two rows may clash too
            for i, (number, name) in enumerate(rows):
                key = "" if len(rows) == 1 else f"rows[{i}]."
                try:
                    check_number(number)
                    mine = Claim("extension", number, key + "number")
                    # The number plan's rule, as the CLI and a document import apply it.
                    clash = new_conflicts(current, [*claimed, mine])
                    clash = [c for c in clash if c.path == mine.path or c.path.startswith("routes[")]
                    if clash:
                        raise ExtensionError(clash[0].message)
                    claimed.append(mine)
                except ExtensionError as exc:
                    errors[key + "number"] = str(exc)
                try:
                    check_name(name)
                except ExtensionError as exc:
                    errors[key + "name"] = str(exc)
            if errors:
                raise Invalid(errors)
            made = {number: generate_secret() for number, _ in rows}
            try:
                await _transaction(store, [lambda n=n, name=name: store.add_extension(n, made[n], name)
                                           for n, name in rows])
            except sqlite3.IntegrityError:  # the CLI added one of them since we looked
                raise Invalid({"number": "one of these extensions was just added elsewhere; reload"}) from None
            return made

        made = self._call(add)
        return made, self._applied()

    def remove_extension(self, number: str) -> Applied:
        async def remove(store: Store) -> None:
            if not await store.remove_extension(number):
                raise Invalid({"number": f"there is no extension {number}"})

        self._call(remove)
        return self._applied()

    def new_secret(self, number: str) -> tuple[str, Applied]:
        """Replaces an extension's secret with a generated one (the phone must be re-provisioned)."""
        secret = generate_secret()

        async def renew(store: Store) -> None:
            ext = {e.number: e for e in await store.extensions()}.get(number)
            if ext is None:
                raise Invalid({"number": f"there is no extension {number}"})
            # The Store has no update; delete and insert in one transaction is the same row.
            await _transaction(store, [lambda: store.remove_extension(number),
                                       lambda: store.add_extension(number, secret, ext.name)])

        self._call(renew)
        return secret, self._applied()

    def secret_for_provisioning(self, number: str) -> str:
        """One extension's secret, for the page shown right after it was made or renewed."""
        ext = {e.number: e for e in self._call(lambda s: s.extensions())}.get(number)
        if ext is None:
            raise Invalid({"number": f"there is no extension {number}"})
        return ext.secret

    def has_setting(self, key: str) -> bool:
        return key in SETTINGS

    def settings(self) -> dict[str, Any]:
        return effective(self._call(lambda s: s.settings()))

    def set_setting(self, key: str, text: str) -> Applied:
        setting = SETTINGS.get(key)
        if setting is None:
            raise Invalid({key: "unknown setting"})
        try:
            value = setting.parse(text)
        except SettingError as exc:
            raise Invalid({key: str(exc)}) from None
        self._call(lambda s: s.set_setting(key, str(value)))
        return self._applied()

    def setting_fields(self) -> list[dict[str, Any]]:
        """Every setting as a form field: the table of firmware.config.settings, with current values."""
        current = self.settings()
        fields = []
        for name, setting in SETTINGS.items():
            label = getattr(setting.kind, "__name__", "")
            fields.append({"name": name, "value": current[name], "default": setting.default, "help": setting.help,
                           "choices": label[len("one of "):].split(", ") if label.startswith("one of ") else None,
                           "low": setting.low, "high": setting.high})
        return fields

    def set_settings(self, texts: Mapping[str, str]) -> tuple[dict[str, Any], Applied | None]:
        """Validates every given setting, then writes those that change, in one transaction.

        Returns ({name: new value}, Applied) -- (``{}``, None) when nothing changed; raises
        ``Invalid`` keyed by setting name, having changed nothing.
        """
        errors: dict[str, str] = {}
        parsed: dict[str, Any] = {}
        current = self.settings()
        for name, text in texts.items():
            setting = SETTINGS.get(name)
            if setting is None:
                errors[name] = "unknown setting"
                continue
            if text.strip() == str(current[name]):
                continue  # a form sends every field: only the ones edited are checked and written
            try:
                parsed[name] = setting.parse(text.strip())
            except SettingError as exc:
                errors[name] = str(exc)
        if errors:
            raise Invalid(errors)

        async def write(store: Store) -> dict[str, Any]:
            current = effective(await store.settings())
            changed = {n: v for n, v in parsed.items() if v != current[n]}
            if changed:
                await _transaction(store, [lambda n=n, v=v: store.set_setting(n, str(v)) for n, v in changed.items()])
            return changed

        changed = self._call(write)
        return changed, (self._applied() if changed else None)

    def export_document(self) -> dict[str, Any]:
        """The whole configuration as one document (docs/config.md): the backup. Holds secrets."""
        from firmware.store import document as stored

        return self._call(stored.export)

    def config_rev(self) -> int:
        return self._call(lambda s: s.config_rev())

    def apply_document(self, doc: Mapping[str, Any], *, expect_rev: int | None = None) -> Applied:
        """Validates a whole configuration document and applies it at once (a restore, or an
        edited section). ``Invalid`` keyed by field path (``queues[sales].strategy``) and
        nothing changed when any field is wrong. Texts to speak are rendered first.
        ``expect_rev``: refuse (``Invalid`` on "document") if the configuration changed since."""
        from firmware.ivr.schema import said_texts
        from firmware.prompts import PromptError, say, uploads
        from firmware.store import document as stored

        problems = document_problems(doc, files=uploads.names(self.data))
        if problems:
            raise Invalid({p.path or "document": p.message for p in problems})
        for text in said_texts(doc.get("ivr", {})):
            try:
                say(self.data / "prompts" / "say", text)
            except PromptError as exc:
                raise Invalid({"ivr": f"cannot render {text!r} to speech: {exc}"}) from None
        try:
            self._call(lambda s: stored.apply(s, doc, expect_rev=expect_rev))
        except stored.Changed:
            raise Invalid({"document": "someone changed the configuration meanwhile; nothing was changed: "
                                       "reload the page and make the change again"}) from None
        return self._applied()

    def set_section(self, name: str, value: Any) -> Applied:
        """Replaces one section of the configuration (``ivr``, ``ivr_numbers``, ``queues``,
        ``recording``, ``ports``...), validated with everything else, all or nothing, and only
        if nothing else changed the configuration while it was being made."""
        rev = self.config_rev()
        doc = self.export_document()
        doc[name] = value
        return self.apply_document(doc, expect_rev=rev)

    def remove_prompt(self, name: str) -> None:
        """Deletes an uploaded prompt; ``Invalid`` while a menu plays it or when there is none."""
        from firmware.ivr.schema import validate as validate_ivr
        from firmware.prompts import uploads

        try:
            uploads.check_name(name)
            ivr = self.export_document().get("ivr") or {"menus": []}
            used = validate_ivr(ivr, files=uploads.names(self.data) - {name})
            if used:
                raise Invalid({"file": f"{name} is still played by {used[0].path}; change that menu first"})
            uploads.remove(self.data, name)
        except uploads.UploadError as exc:
            raise Invalid({"file": str(exc)}) from None

    def upload_prompt(self, src: Path, name: str | None = None, *, replace: bool = False) -> Any:
        """Stores a sound file as a prompt menus can play (firmware.prompts.uploads); ``Invalid`` if not."""
        from firmware.prompts import uploads

        try:
            return uploads.save(self.data, src, name, replace=replace)
        except uploads.UploadError as exc:
            raise Invalid({"file": str(exc)}) from None

    def prompts(self) -> list[Any]:
        from firmware.prompts import uploads

        return uploads.describe(self.data)

    def queue_report(self, **kw: Any) -> dict[str, Any]:
        """Queue (and with ``agents=True`` agent) statistics, as `linebox queue stats --json`."""
        from firmware.acd.report import queue_report

        return self._call(lambda s: queue_report(s, **kw))

    def history(self) -> dict[str, Any]:
        """The call history for a backup: every CDR row and the whole queue log."""
        cdrs = self._call(lambda s: s.cdrs(10_000_000))
        events = self._call(lambda s: s.queue_events())
        return {"cdr": cdrs, "queue_log": [{**asdict(e), "kind": e.kind.value} for e in events]}

    def merge_history(self, history: Mapping[str, Any]) -> tuple[int, int]:
        """Adds the rows of a (checked) backup's history the box lacks; (CDR rows, log lines) added."""
        from firmware.acd.events import Kind, QueueEvent

        events = [QueueEvent(**{**e, "kind": Kind(e["kind"])}) for e in history.get("queue_log", [])]
        return self._call(lambda s: s.merge_history(list(history.get("cdr", [])), events))

    def cdrs(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._call(lambda s: s.cdrs(limit))

    def voicemail_messages(self, mailbox: str) -> list[Any]:
        """A mailbox's messages on disk (firmware.store.messages.Message), new ones first; [] for a
        mailbox number that is not one (the web passes what a URL said)."""
        from firmware.store.messages import Mailboxes

        return Mailboxes(self.data / "voicemail").messages(mailbox) if is_mailbox(mailbox) else []

    def voicemail_message(self, mailbox: str, ident: str) -> Any | None:
        """One message, found by listing its mailbox: the file served is always one the listing
        found, never a path put together from a request."""
        if not is_message_id(ident):
            return None
        return next((m for m in self.voicemail_messages(mailbox) if m.id == ident), None)

    def voicemail_action(self, mailbox: str, ident: str, action: str) -> dict[str, Any]:
        """Marks a message heard (``"heard"``: new -> old) or deletes it (``"delete"``).

        The running box does it, so the mailbox's phones are told at once (message-summary
        NOTIFY, analog VMWI). A box that does not answer is taken as stopped and the files are
        changed here; it sets the analog indicators when it starts and tells a SIP phone when
        it registers. Returns the message's ``as_dict()`` with ``"live"``; ``Invalid`` (keyed
        ``message``) for no such message or action.
        """
        try:
            done = self._post(VOICEMAIL, {"mailbox": mailbox, "id": ident, "action": action})
            return {**done, "live": True}
        except BoxUnreachable:
            pass
        except Invalid as exc:
            raise Invalid({"message": "; ".join(exc.errors.values())}) from None

        from firmware.store.messages import Mailboxes

        try:
            return {**change_message(Mailboxes(self.data / "voicemail"), mailbox, ident, action), "live": False}
        except (LookupError, ValueError) as exc:
            raise Invalid({"message": str(exc)}) from None

    def recording_path(self, name: str) -> Path | None:
        """The file of a recording named in a CDR row, or None (no such file, or a bad name)."""
        if not name or "/" in name or name.startswith(".") or not name.endswith(".wav"):
            return None
        path = self.data / "recordings" / name
        return path if path.is_file() else None

    # --- the running box (its HTTP API) --------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._get("/health")

    def calls(self) -> list[dict[str, Any]]:
        return self._get("/api/calls")

    def registrations(self) -> list[dict[str, Any]]:
        return self._get("/api/registrations")

    def security_events(self) -> list[dict[str, Any]]:
        return self._get("/api/security-events")

    def hang_up(self, call_id: str) -> None:
        self._post(HANGUP, {"call": call_id})

    def queues(self) -> list[dict[str, Any]]:
        """Each queue live: waiting callers (number, wait), agents' states, offers ringing, talks."""
        return self._get("/api/queues")

    def queue_events(self) -> list[dict[str, Any]]:
        return self._get("/api/queue-events")

    def agent(self, agent: str, verb: str, reason: str = "") -> dict[str, Any]:
        """An agent's login / logout / pause / unpause from the web (as *51-*54 from the phone)."""
        return self._post("/api/agent", {"agent": agent, "verb": verb, "reason": reason})

    def ports(self) -> list[dict[str, Any]]:
        return self._get("/api/ports")

    def line_test(self, port: str, number: str, *, inbound: bool = True) -> dict[str, Any]:
        """Starts the guided line test on an FXO port (``Invalid`` with the box's reason if not)."""
        return self._post("/api/line-test", {"port": port, "number": number, "inbound": inbound})

    def line_tests(self) -> dict[str, Any]:
        """Each port's latest line test: phase, the prompts for the installer, the report."""
        return self._get("/api/line-test")

    def restart(self, who: str) -> None:
        """Restarts the PBX service (calls in progress are hung up; back within seconds)."""
        self._post("/api/restart", {"who": who})

    def login_failed(self, ip: str, user: str) -> BanState:
        """Counts a failed web login against ``ip`` in the box's SIP brute-force guard."""
        return BanState(**self._post(AUTH_FAILURE, {"ip": ip, "user": user}))

    def ban_state(self, ip: str) -> BanState:
        return BanState(**self._post(BAN_CHECK, {"ip": ip}))

    def _get(self, path: str) -> Any:
        return self._http("GET", path, None, {})

    def _post(self, path: str, args: dict[str, Any]) -> Any:
        # The secret is read at each action: it changes whenever the box restarts.
        return self._http("POST", path, json.dumps(args).encode(),
                          {"Content-Type": "application/json", API_SECRET_HEADER: api_secret(self.data)})

    # http.client is imported by the first call to the box, not at import: the box imports this
    # module for box_actions and never calls itself. Not urllib: the API is plain HTTP on this
    # machine, and urllib's openers would load ssl into the web admin (webui/__main__.py).

    def _http(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        import http.client
        from urllib.parse import urlsplit

        if self.api is None:
            raise BoxUnreachable("no box API configured (--api)")
        try:
            url = urlsplit(self.api)
            port = url.port or 80  # ValueError for a port that is no number in 0-65535, as for a bad [host]
            if url.scheme != "http" or not url.hostname:
                raise ValueError(self.api)
        except ValueError:
            raise BoxUnreachable(f"the box's API must be an http:// URL on this machine, not {self.api!r}") from None
        conn = http.client.HTTPConnection(url.hostname, port, timeout=self.timeout)
        try:
            conn.request(method, url.path.rstrip("/") + path, body=body, headers=headers)
            answer = conn.getresponse()
            status, reason, data = answer.status, answer.reason, answer.read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise BoxUnreachable(f"the box's API at {self.api} did not answer: {exc}") from None
        finally:
            conn.close()
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if status < 400 and value is not None:
            return value
        if status < 400:
            raise BoxUnreachable(f"the box's API at {self.api} answered what is not JSON")
        message = value.get("error", reason) if isinstance(value, dict) else reason
        if 400 <= status < 500:
            raise Invalid({"box": str(message)})
        raise BoxUnreachable(f"the box answered {status}: {message}")

    # --- plumbing --------------------------------------------------------------------------------

    def _call(self, fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
        with self._lock:
            if self._store is None:
                self._store = Store.open_blocking(self.data)
            return run_blocking(fn(self._store))

    def _applied(self) -> Applied:
        rev = self.config_rev()
        running, live = notify(self.data, rev)
        return Applied(rev, live, running)


async def _transaction(store: Store, steps: list[Callable[[], Awaitable[Any]]]) -> None:
    conn = store.conn
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for step in steps:
            await step()
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


# --- the box's side ---------------------------------------------------------------------------


def box_actions(*, guard: Any, calls: Callable[[], Iterable[Any]], clock: Callable[[], float]) -> dict[str, Action]:
    """The POST actions the running box offers the web admin (plugged into ``HttpApi``).

    ``guard`` is the SIP brute-force guard (firmware.pbx.guard.Guard), so a web login failure
    counts towards the same ban as a SIP digest failure, and a banned address can log in to
    neither; ``calls`` yields the live calls (``.id``, ``.end(cause)``); ``clock`` is the
    guard's clock (the event loop's).
    """
    from firmware.api.httpapi import ActionError  # the box's side: the web never loads the HTTP server (asyncio)

    def address_of(args: Mapping[str, Any]) -> str:
        try:
            return str(ipaddress.ip_address(str(args.get("ip", ""))))
        except ValueError:
            raise ActionError("400 Bad Request", "ip must be an IPv4 or IPv6 address") from None

    def ban_state(ip: str) -> dict[str, Any]:
        until = guard.banned(clock()).get(ip)
        return {"banned": until is not None, "retry_in": 0.0 if until is None else round(until - clock(), 1)}

    def auth_failure(args: dict[str, Any]) -> dict[str, Any]:
        ip = address_of(args)
        user = str(args.get("user") or "")[:MAX_NAME] or None
        guard.auth_failed(ip, 0, clock(), user=user, method=WEB_LOGIN, reason="wrong web admin password")
        return ban_state(ip)

    def ban_check(args: dict[str, Any]) -> dict[str, Any]:
        return ban_state(address_of(args))

    def hangup(args: dict[str, Any]) -> dict[str, Any]:
        wanted = str(args.get("call", ""))
        for call in list(calls()):
            if str(call.id) == wanted:
                call.end("admin-hangup")
                return {"ended": wanted}
        raise ActionError("404 Not Found", f"no call {wanted!r} is in progress")

    return {AUTH_FAILURE: auth_failure, BAN_CHECK: ban_check, HANGUP: hangup}


VOICEMAIL_ACTIONS = ("heard", "delete")


def is_mailbox(mailbox: str) -> bool:
    """An extension number as a mailbox folder name: ASCII digits only, so no URL can name a
    path outside ``<data>/voicemail``."""
    return 2 <= len(mailbox) <= 10 and mailbox.isascii() and mailbox.isdigit()


def is_message_id(ident: str) -> bool:
    """The ids ``Mailboxes.new_message`` makes: milliseconds, a dash, six hex digits."""
    stamp, dash, tail = ident.partition("-")
    return (bool(dash) and 1 <= len(stamp) <= 16 and stamp.isascii() and stamp.isdigit()
            and len(tail) == 6 and all(c in "0123456789abcdef" for c in tail))


def change_message(mailboxes: Any, mailbox: str, ident: str, action: str) -> dict[str, Any]:
    """Marks one message of ``mailboxes`` (firmware.store.messages.Mailboxes) heard or deletes it;
    the box's ``/api/voicemail`` and LocalApi's stopped-box fallback share it. ``ValueError``
    for a bad action or name, ``LookupError`` for no such message (already heard or deleted
    from a phone, say). Returns the message as it was."""
    if action not in VOICEMAIL_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(VOICEMAIL_ACTIONS)}, not {action!r}")
    if not is_mailbox(mailbox) or not is_message_id(ident):
        raise ValueError("no such mailbox or message id")
    message = next((m for m in mailboxes.messages(mailbox) if m.id == ident), None)
    if message is None:
        raise LookupError(f"mailbox {mailbox} has no message {ident} (heard or deleted meanwhile?)")
    if action == "delete":
        mailboxes.delete(message)
    elif message.folder == "new":
        mailboxes.move(message, "old")
    return message.as_dict()


__all__ = ["LocalApi", "Invalid", "BoxUnreachable", "ExtensionView", "BanState", "Applied", "box_actions",
           "notify", "check_name"]
