"""Pages of the web admin beyond the core ones in ``webui.app``, one module per area.

Each module here has ``NAV`` (a list of ``(label, path)`` for the navigation bar, possibly
empty) and ``install(admin)``, which adds its routes to ``admin.app`` and may use the admin's
helpers (``admin._render``, ``admin._audit``, ``admin.api``, ``admin.session``...). Modules are
found by name, so adding a page means adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{info.name}"))
    return found
