"""System (``/system``): backup and restore of the whole box in one archive (webui.backup), and
the logs with a filter (``/system/logs``).

A restore is all or nothing: the uploaded archive is checked whole (manifest, paths, sizes,
SHA-256 of every file, the configuration validated) before anything is replaced; a corrupt or
foreign archive is refused with the reason next to the file field, and the box is left as it
was. One restore runs at a time.

Both may use a passphrase (webui.encrypted): a backup made with one is encrypted whole, and its
restore asks for it; a wrong or missing one is said next to the passphrase field and changes
nothing. The first-boot wizard's backup step downloads the same archive through the same form.

"Restart the PBX service" asks the box to restart itself (local API ``/api/restart``): calls in
progress are hung up and the same process starts afresh (it re-executes itself, so it needs no
supervisor). The configuration applies live, so no change needs it; it is there for the rare
setting read at start (the analog board).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from bottle import request, response

from firmware.api.localapi import BoxUnreachable, Invalid
from webui import backup, encrypted
from webui.app import applied_text

NAV = [("System", "/system")]

MAX_UPLOAD = backup.MAX_TOTAL + 64 * 1024 * 1024
LOG_FILES = ("linebox.log", "log/linebox.log", "logs/linebox.log")  # where a box may write its log
LOG_TAIL = 2000  # lines of a log file read for the page
SHOWN = 500


def _applied_text(a: Any) -> str:
    return applied_text(a)


class SystemPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.data = Path(admin.cfg.data)
        self._restoring = threading.Lock()
        backup.clear_stale(self.data)

    def page(self, status: int = 200, **ctx: Any) -> str:
        try:
            sizes = backup.sizes(self.data)
        except OSError:
            sizes = {"prompts": 0, "recordings": 0}
        return self.admin._render("system", status, sizes=sizes, log_file=self._log_file(), **ctx)

    def download(self) -> Any:
        return self._download(lambda errors: self.page(400, errors=errors))

    def wizard_download(self) -> Any:
        """The first-boot wizard's backup step: the same archive, its errors on the wizard's page."""
        return self._download(lambda errors: self.admin._render("wizard_done", 400, step=4, errors=errors))

    def _download(self, refuse: Callable[[dict[str, str]], str]) -> Any:
        recordings = request.forms.get("recordings") == "yes"
        passphrase = request.forms.getunicode("passphrase") or ""
        again = request.forms.getunicode("passphrase2") or ""
        # Nothing typed is sent back: after a refusal the form asks for both again.
        if passphrase != again:
            return refuse({"passphrase2": "the two passphrases differ"})
        problem = encrypted.check_passphrase(passphrase) if passphrase else None
        if problem:
            return refuse({"passphrase": problem})
        doc = self.admin.api.export_document()
        out = tempfile.TemporaryFile(dir=self.data, prefix=".backup-")
        manifest = backup.write(out, doc, self.data, recordings=recordings, now=self.admin.clock(),
                                history=self.admin.api.history(), passphrase=passphrase or None)
        size = out.tell()
        out.seek(0)
        self.admin._audit(f"downloaded a full backup ({len(manifest['files'])} files"
                          + (", with recordings" if recordings else "")
                          + (", encrypted)" if passphrase else ")"))
        stamp = time.strftime("%Y%m%d-%H%M", time.localtime(self.admin.clock()))
        name = f"linebox-{stamp}.tar.gz" + (".enc" if passphrase else "")
        response.content_type = "application/octet-stream" if passphrase else "application/gzip"
        response.set_header("Content-Length", str(size))
        response.set_header("Content-Disposition", f'attachment; filename="{name}"')
        return out

    def restore(self) -> str:
        # (a body past MAX_UPLOAD never gets here: the server refuses it unread, webui/server.py)
        upload = request.files.get("archive")
        if upload is None or not upload.raw_filename:
            return self.page(400, errors={"archive": "Choose a backup file (linebox-....tar.gz)."})
        if not self._restoring.acquire(blocking=False):
            return self.page(409, errors={"archive": "Another restore is running; try again when it has finished."})
        try:
            try:
                passphrase = request.forms.getunicode("restore-passphrase")
                checked = backup.check(upload.file, self.data, passphrase=passphrase)
            except backup.Refused as exc:
                self.admin._audit(f"refused to restore {upload.raw_filename[:80]}: {str(exc)[:200]}")
                field = "restore-passphrase" if isinstance(exc, backup.PassphraseRefused) else "archive"
                return self.page(400, errors={field: f"Refused; nothing was changed. {exc}"})
            what = backup.summary(checked)
            try:
                applied = backup.apply(checked, self.admin.api, self.data)
            except Invalid as exc:
                return self.page(400, errors={"archive": f"Refused; nothing was changed. The box did not take the "
                                                         f"configuration: {exc}"})
        finally:
            self._restoring.release()
        self.admin._audit(f"restored a {what}")
        return self.page(notice=f"Restored the {what}. {_applied_text(applied)}")

    # logs

    def _log_file(self) -> Path | None:
        for name in LOG_FILES:
            p = self.data / name
            if p.is_file():
                return p
        return None

    def logs(self) -> str:
        q = (request.query.getunicode("q") or "").strip()
        source = request.query.getunicode("source") or ""
        entries: list[dict[str, Any]] = []
        problems: list[str] = []
        if source in ("", "audit"):
            entries += [{"at": e["at"], "source": "audit", "text": f"{e['who']} from {e['ip']}: {e['what']}"}
                        for e in self.admin.db.audit_log(limit=2000)]
        if source in ("", "security"):
            try:
                events = self.admin.api.security_events()
            except BoxUnreachable as exc:
                events = []
                problems.append(f"Security events: the box does not answer ({exc}).")
            for e in events:
                bits = [str(e.get(k)) for k in ("event", "source", "user", "method", "reason") if e.get(k)]
                entries.append({"at": float(e.get("time") or 0), "source": "security", "text": " ".join(bits)})
        log_file = self._log_file()
        if source in ("", "box") and log_file is not None:
            entries += _log_lines(log_file)
        if q:
            entries = [e for e in entries if q.lower() in e["text"].lower()]
        entries.sort(key=lambda e: e["at"], reverse=True)
        return self.admin._render("system_logs", entries=entries[:SHOWN], total=len(entries), q=q, source=source,
                                  log_file=log_file, problems=problems)


def _log_lines(path: Path) -> list[dict[str, Any]]:
    """The tail of the box's log; lines start "YYYY-MM-DD HH:MM:SS,mmm LEVEL name: text"."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 512 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()[-LOG_TAIL:]
    except OSError:
        return []
    out, last = [], 0.0
    for line in lines:
        try:
            last = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            pass  # a continuation line (a traceback) keeps the time of the line above
        out.append({"at": last, "source": "box", "text": line})
    return out


def _restart(admin: Any) -> str:
    try:
        admin.api.restart(admin._who())
    except BoxUnreachable as exc:
        return admin._render("error", 503, status="503 Service Unavailable", message=f"The box does not answer: {exc}")
    admin._audit("restarted the PBX service")
    return admin._render("system_restarting", title="Restarting")


def install(admin: Any) -> None:
    pages = SystemPages(admin)
    admin.app.post("/system/restart", callback=lambda: _restart(admin))
    admin.app.get("/system", callback=lambda: pages.page())
    admin.app.post("/system/backup", callback=pages.download)
    admin.app.post("/system/restore", callback=pages.restore)
    admin.app.post("/setup/backup", callback=pages.wizard_download)
    admin.app.get("/system/logs", callback=pages.logs)
