"""The IVR document's menus and time conditions as lists, for the pages that show them (the IVR
editor and the prompts page, which says which menus play an upload)."""

from __future__ import annotations

from typing import Any, Mapping


def _list(container: Any) -> list[dict[str, Any]]:
    """Menus or conditions as a list of objects with an id (the document allows a mapping too)."""
    if isinstance(container, Mapping):
        return [{**v, "id": str(k)} for k, v in container.items() if isinstance(v, Mapping)]
    return [dict(v) for v in container or [] if isinstance(v, Mapping) and isinstance(v.get("id"), str)]


def menus(ivr: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _list(ivr.get("menus"))


def conditions(ivr: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _list(ivr.get("time_conditions"))
