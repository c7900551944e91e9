"""The recording policy (``/recording``): per extension and per number calls come in on
(IVR numbers, queue numbers), always / never / on-demand, or no entry (the ``recording.calls``
setting decides). The ``recording`` section is replaced whole through ``LocalApi.set_section``;
a number or extension that no longer exists is refused by the firmware with its path
(``recording.numbers.600``), shown on that row.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

import bottle
from bottle import request

from firmware.config.recpolicy import MODES
from webui.pages.ivr import FieldMap, apply_section
from webui.app import applied_text

NAV = [("Recording", "/recording")]
CSS = "/static/config.css"


def _rows(doc: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    policy = doc.get("recording") or {}
    exts = policy.get("extensions") or {}
    nums = policy.get("numbers") or {}
    extensions = [{"number": str(e["number"]), "name": str(e.get("name", "")), "mode": exts.get(str(e["number"]), "")}
                  for e in doc.get("extensions", [])]
    numbers = [{"number": n, "name": f"IVR → {t}", "mode": nums.get(n, "")}
               for n, t in sorted((doc.get("ivr_numbers") or {}).items())]
    numbers += [{"number": str(q.get("number")), "name": f"queue {q.get('id')}", "mode": nums.get(str(q.get("number")), "")}
                for q in doc.get("queues") or [] if isinstance(q, Mapping)]
    # Entries for what no longer exists stay visible, so they can be cleared.
    known = {r["number"] for r in numbers}
    numbers += [{"number": n, "name": "(no such number)", "mode": m} for n, m in nums.items() if n not in known]
    known_ext = {r["number"] for r in extensions}
    extensions += [{"number": n, "name": "(no such extension)", "mode": m} for n, m in exts.items() if n not in known_ext]
    return extensions, numbers


class RecordingPage:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        self.admin.app.get("/recording", callback=self.page)
        self.admin.app.post("/recording", callback=self.save)

    def _render(self, doc: Mapping[str, Any], errors: dict[str, str], status: int = 200,
                typed: dict[str, str] | None = None, notice: str | None = None, failed: str | None = None) -> str:
        extensions, numbers = _rows(doc)
        for r in extensions:
            r["mode"] = (typed or {}).get(f"ext-{r['number']}", r["mode"])
        for r in numbers:
            r["mode"] = (typed or {}).get(f"num-{r['number']}", r["mode"])
        default = str(self.api.settings().get("recording.calls", ""))
        return self.admin._render("recording", status, extensions=extensions, numbers=numbers, modes=MODES,
                                  errors=errors, default=default, notice=notice, failed=failed, css=CSS)

    def page(self) -> str:
        return self._render(self.api.export_document(), {}, notice=request.query.getunicode("done") or None)

    def save(self) -> str:
        doc = self.api.export_document()
        extensions, numbers = _rows(doc)
        fm = FieldMap()
        typed: dict[str, str] = {}
        policy: dict[str, dict[str, str]] = {"extensions": {}, "numbers": {}}
        for section, rows, prefix in (("extensions", extensions, "ext"), ("numbers", numbers, "num")):
            for r in rows:
                field = f"{prefix}-{r['number']}"
                mode = (request.forms.getunicode(field) or "").strip()
                typed[field] = mode
                fm.add(f"recording.{section}.{r['number']}", field)
                if mode:
                    policy[section][r["number"]] = mode
        old = doc.get("recording") or {"extensions": {}, "numbers": {}}
        errors, applied = apply_section(self.admin, "recording", policy, fm)
        if errors:
            return self._render(doc, errors, 400, typed, failed="Nothing was changed: fix the rows marked below.")
        changes = []
        for section in ("extensions", "numbers"):
            before, after = old.get(section) or {}, policy[section]
            for n in sorted(set(before) | set(after)):
                if before.get(n) != after.get(n):
                    changes.append(f"{n} {before.get(n) or 'default'} → {after.get(n) or 'default'}")

        self.admin._audit("recording policy: " + (", ".join(changes) if changes else "saved unchanged"))
        raise bottle.redirect("/recording?done=" + quote("Saved the recording policy. " + applied_text(applied)), 303)


def install(admin: Any) -> None:
    RecordingPage(admin).install()
