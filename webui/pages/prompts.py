"""Prompts menus and queues play (``/prompts``): uploads, and previews in the browser.

An upload (any WAV, FLAC or OGG) goes through ``LocalApi.upload_prompt``, which converts it to
8 kHz mono and refuses what is not sound. ``/prompts/play/KIND/NAME`` serves a prompt for an
``<audio>`` element, and only a prompt the box knows: an uploaded file (``upload``), a prompt of
the sound set (``set``, by its name in the phrase table), or a text the IVR document speaks
(``say``, by the name ``firmware.prompts.said_name`` gives it). Nothing else on disk is
reachable: names are looked up, never joined into paths as typed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bottle
from bottle import request

from firmware.api.localapi import Invalid
from firmware.prompts import PromptMissing, PromptSet, language, said_name
from firmware.prompts.uploads import default_name, uploads_dir
from webui.pages._ivrdoc import menus

NAV = [("Prompts", "/prompts")]
CSS = "/static/config.css"
MAX_UPLOAD = 50 * 1024 * 1024  # what the browser may send; the converter limits length further


def preview_path(kind: str, value: str) -> str | None:
    """The preview URL of a greeting item (kind prompt/say/file), or None."""
    if not value:
        return None
    if kind == "prompt":
        return f"/prompts/play/set/{quote(value)}"
    if kind == "file":
        return f"/prompts/play/upload/{quote(value)}"
    if kind == "say":
        return f"/prompts/play/say/{said_name(value)}"
    return None


def save_upload(api: Any, upload: Any, name: str = "") -> tuple[str | None, str | None]:
    """A browser upload (bottle FileUpload) as a prompt: (stored name, None) or (None, message)."""
    wanted = name.strip() or default_name(Path(upload.raw_filename or upload.filename or "upload"))
    if not wanted.endswith(".wav"):
        wanted += ".wav"
    with tempfile.TemporaryDirectory(prefix="lb-upload-") as tmp:
        # No extension of the uploader's: firmware.prompts.uploads decides the type by the content.
        src = Path(tmp) / "upload"
        size = 0
        with open(src, "wb") as out:
            while chunk := upload.file.read(1 << 16):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    return None, f"the file is larger than {MAX_UPLOAD // (1024 * 1024)} MB"
                out.write(chunk)
        try:
            saved = api.upload_prompt(src, wanted)
        except Invalid as exc:
            message = exc.errors.get("file", str(exc)).replace(str(src), f"'{upload.raw_filename or 'the file'}'")
            return None, message
    return saved.name, None


def forget_upload(api: Any, name: str) -> None:
    """Removes an upload made for a form that was then refused."""
    try:
        api.remove_prompt(name)
    except Invalid:
        pass  # already gone, or kept by a menu after all: nothing to undo


class PromptPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        a = self.admin.app
        a.get("/prompts", callback=self.index)
        a.post("/prompts", callback=self.upload)
        a.post("/prompts/<name>/remove", callback=self.remove)
        a.get("/prompts/play/<kind>/<name>", callback=self.play)

    def _used(self) -> dict[str, list[str]]:
        """upload name -> the menus that play it."""
        used: dict[str, list[str]] = {}
        for m in menus(self.api.export_document().get("ivr") or {}):
            for key in ("greeting", "invalid"):
                for item in m.get(key) or []:
                    if isinstance(item, dict) and "file" in item:
                        used.setdefault(str(item["file"]), []).append(m["id"])
        return used

    def index(self, errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
              status: int = 200) -> str:
        return self.admin._render("prompts", status, uploads=self.api.prompts(), used=self._used(),
                                  phrases=sorted(language("en").phrases),
                                  errors=errors or {}, form=form or {},
                                  notice=request.query.getunicode("done") or None, css=CSS)

    def upload(self) -> str:
        form = {"name": (request.forms.getunicode("name") or "").strip()}
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return self.index({"file": "choose a sound file (WAV, FLAC or OGG)"}, form, 400)
        name, error = save_upload(self.api, upload, form["name"])
        if error:
            key = "name" if error.startswith("name ") or "already an upload" in error else "file"
            return self.index({key: error}, form, 400)
        self.admin._audit(f"uploaded prompt {name}")
        raise bottle.redirect("/prompts?done=" + quote(f"Uploaded {name}: menus can play it now."), 303)

    def remove(self, name: str) -> str:
        if name not in {u.name for u in self.api.prompts()}:
            bottle.abort(404, f"No uploaded prompt {name!r}.")
        users = self._used().get(name)
        if users:
            return self.index({"remove": f"{name} is played by menu {', '.join(users)}; take it out there first"},
                              status=400)
        forget_upload(self.api, name)
        self.admin._audit(f"removed uploaded prompt {name}")
        raise bottle.redirect("/prompts?done=" + quote(f"Removed {name}."), 303)

    def play(self, kind: str, name: str) -> Any:
        path = self._known(kind, name)
        if path is None or not path.is_file():
            bottle.abort(404, "No such prompt.")
        return bottle.static_file(path.name, root=str(path.parent), mimetype="audio/wav",
                                  headers={"Cache-Control": "no-store"})

    def _known(self, kind: str, name: str) -> Path | None:
        if kind == "upload":
            return uploads_dir(self.api.data) / name if name in {u.name for u in self.api.prompts()} else None
        if kind == "set":
            if name not in language("en").phrases:
                return None
            try:
                return PromptSet().path(name)
            except PromptMissing:
                return None
        if kind == "say":
            from firmware.ivr.schema import said_texts  # the IVR's rules: not loaded until a preview needs them

            texts = said_texts(self.api.export_document().get("ivr") or {})
            if name in {said_name(t) for t in texts}:
                return self.api.data / "prompts" / "say" / f"{name}.wav"
        return None


def install(admin: Any) -> None:
    PromptPages(admin).install()
