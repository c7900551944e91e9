"""The configuration document in and out of the database: export it whole, apply it all or nothing.

What a valid document is, is firmware.config.document; here it is read from the tables and
written to them, in one transaction.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from firmware.config.document import DOCUMENT_SECTIONS, STORED_FORM, VERSION, new_conflicts
from firmware.numberplan import Claim, Conflict
from firmware.store.db import Store


async def export(store: Store) -> dict[str, Any]:
    return {
        "version": VERSION,
        "extensions": [{"number": e.number, "name": e.name, "secret": e.secret} for e in await store.extensions()],
        "settings": await store.settings(),
        "ivr": await store.ivr_document() or {"menus": []},
        "ivr_numbers": await store.ivr_numbers(),
        **{name: await _stored(store, name) for name in DOCUMENT_SECTIONS},
    }


async def _stored(store: Store, name: str) -> Any:
    doc = await store.document(name)
    return _empty(name) if doc is None else doc


def _empty(name: str) -> Any:
    return copy.deepcopy(DOCUMENT_SECTIONS[name])


class Changed(RuntimeError):
    """The configuration changed since the document being applied was read from it."""


async def apply(store: Store, doc: Mapping[str, Any], *, expect_rev: int | None = None) -> None:
    """Replaces the configuration with a validated ``doc`` in one transaction. ``expect_rev``:
    the revision ``doc`` was exported at; if another change came in since, nothing is applied
    and ``Changed`` is raised (an edit of one section must not undo someone else's edit)."""
    conn = store.conn
    await conn.execute("BEGIN IMMEDIATE")
    try:
        if expect_rev is not None and await store.config_rev() != expect_rev:
            raise Changed("the configuration was changed meanwhile")
        await conn.execute("DELETE FROM extensions")
        for ext in doc.get("extensions", []):
            await store.add_extension(str(ext["number"]), str(ext["secret"]), str(ext.get("name", "")))
        await conn.execute("DELETE FROM settings")
        for key, value in doc.get("settings", {}).items():
            await store.set_setting(key, str(value))
        await store.set_ivr_document(dict(doc.get("ivr", {"menus": []})))
        await conn.execute("DELETE FROM ivr_numbers")
        for number, target in doc.get("ivr_numbers", {}).items():
            await store.set_ivr_number(number, target)
        for name in DOCUMENT_SECTIONS:  # a section left out is emptied, like extensions
            section = doc.get(name)
            stored = STORED_FORM.get(name, lambda s: s)
            await store.set_document(name, _empty(name) if section is None else stored(section))
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


async def number_conflicts(store: Store, added: list[Claim], *, without: Callable[[dict[str, Any]], None] | None = None
                           ) -> list[Conflict]:
    """What the numbers ``added`` would clash with in the stored configuration (the number plan's
    rule, firmware.numberplan), before anything is written. ``without`` edits the exported
    document first (a number being re-pointed is not its own rival)."""
    doc = await export(store)
    if without is not None:
        without(doc)
    return new_conflicts(doc, added)
