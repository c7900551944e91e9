"""The data directory belongs to the box's user alone.

It holds ``linebox.db`` with every SIP secret (kept retrievable: phone provisioning writes them
into each phone's configuration), the voicemail and recordings, uploaded prompts and the web
admin's ``webui.db``. So everything the box makes there is created 0700 (directories) or 0600
(files): the processes that write there (`linebox`, the web admin) run under :data:`UMASK`, and
the files that hold secrets are also created with an explicit mode, whatever the umask.

A data directory from before (0755 and 0644 were the defaults) is not changed behind the
admin's back, since a looser mode may be deliberate (a backup user's group): `linebox run`
warns at start about each path that others may read, with the command that fixes it.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
# What start-up looks at: the directory, the ones beneath it that hold callers' voices and the
# files that hold secrets. Inside a 0700 directory nothing is reachable by others anyway; these
# are named so a loosened one is found even when the directory above is right.
SUBDIRS = ("recordings", "voicemail", "prompts")
SECRET_FILES = tuple(f"{db}{suffix}" for db in ("linebox.db", "webui.db") for suffix in ("", "-wal", "-shm"))


def keep_private() -> None:
    """From now on this process creates files 0600 and directories 0700 (unless a mode says less)."""
    os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """``mkdir -p`` that makes every level it creates 0700 (``Path.mkdir(parents=True)`` gives
    the levels above the last the default mode)."""
    path = Path(path)
    if not path.is_dir():
        if path.parent != path and not path.parent.exists():
            private_dir(path.parent)
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # made meanwhile by another process
    return path


def private_file(path: Path) -> None:
    """Creates ``path`` empty and 0600 if it does not exist (before SQLite opens it: SQLite gives
    its -wal and -shm files the mode of the database file)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass


@dataclass(frozen=True)
class Loose:
    """A path others may read or enter, and the command that makes it private."""

    path: Path
    mode: int

    @property
    def fix(self) -> str:
        return f"chmod {DIR_MODE if stat.S_ISDIR(self.mode) else FILE_MODE:o} {self.path}"

    def __str__(self) -> str:
        what = "directory" if stat.S_ISDIR(self.mode) else "file"
        return (f"{what} {self.path} is open to other users (mode {stat.S_IMODE(self.mode):04o}); it holds "
                f"SIP secrets or callers' voices: fix with `{self.fix}`")


def loose(data: Path) -> list[Loose]:
    """The data directory, its known subdirectories and its secret files that have any group or
    other permission bit."""
    paths = [data, *(data / d for d in SUBDIRS), *(data / f for f in SECRET_FILES)]
    out = []
    for p in paths:
        try:
            mode = p.stat().st_mode
        except OSError:
            continue  # not made yet: it will be made private
        if mode & 0o077:
            out.append(Loose(p, mode))
    return out


def warn_loose(data: Path, log: logging.Logger) -> list[Loose]:
    """One warning in the log per loose path (see :func:`loose`); returns them."""
    found = loose(data)
    for item in found:
        log.warning("%s", item)
    return found
