"""Giving back to the kernel what a LineBox process freed while it started.

Loading modules frees megabytes that glibc keeps in holes of its heap: above all the compiler's
work on every module whose .pyc could not be written (a source tree the service user may not
write, or PYTHONDONTWRITEBYTECODE). glibc hands back only the top of the heap by itself;
``malloc_trim`` also returns the free pages inside it. ``scripts/bench memory``: 1.3 MB of the
idle box, 1.5 MB of the idle web admin.
"""

from __future__ import annotations

import ctypes


def release_free() -> None:
    """Returns the heap's free pages to the kernel (glibc; nothing elsewhere). For after loading
    modules: when a process is ready, and when the web admin first shows a page that loads its
    own. What the process allocates next reuses those pages."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        pass
