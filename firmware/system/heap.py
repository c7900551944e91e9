"""glibc's heap in a LineBox process: what it freed while starting given back to the kernel
(``release_free``), and its thresholds held where a small board needs them (``tame_malloc``).

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


def tame_malloc() -> None:
    """Keeps glibc from holding on to scrypt's 16 MiB after each login.

    glibc raises its mmap threshold to the size of the last large block it freed, so after the
    first password hash every later 16 MiB scrypt buffer came from the heap and stayed there:
    49 MiB RSS idle against 33 MiB with the threshold pinned (docs/web.md). Two arenas instead of
    one per core-times-eight also spare the SSE worker threads their own heaps (Python's GIL
    serialises them anyway).
    """
    try:
        libc = ctypes.CDLL(None)  # the process's own libc: no ldconfig run to find its name
        M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: nothing to tame
        pass
