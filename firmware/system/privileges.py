"""Who a LineBox process runs as: the user that owns the data directory, never root.

A box is started by root (systemd, ``scripts/run``) because it serves SIP on port 5060 and the
web admin on port 80, both below 1024, and the web admin changes the network. Everything else it
does (the database, recordings, prompt conversion with sox, the web forms) needs no privilege,
and a flaw in any of it must not hand out root. So every process that meets the data directory
becomes the directory's owner before it opens anything there, keeping only the capabilities
named for it: binding low ports (``net_bind_service``) for the box and the web admin, changing
addresses and routes (``net_admin``) for the web admin's network page. The files each process
writes are then the owner's, readable by the others, and nobody else's (firmware.store keeps them
0600/0700).

``scripts/setup`` creates the ``linebox`` system user, and ``scripts/run`` gives it the data
directory; the image's units do the same. Linux only: capabilities are set with prctl/capset
through libc, the standard library has no binding for them.
"""
from __future__ import annotations

import ctypes
import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

__all__ = ["PrivilegeError", "Dropped", "drop_to_owner", "owner_of", "CAPABILITIES"]

# linux/capability.h
CAPABILITIES = {"net_bind_service": 10, "net_admin": 12}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_KEEPCAPS = 8


class PrivilegeError(RuntimeError):
    """The process cannot become the data directory's user; the message says what to do."""


@dataclass(frozen=True)
class Dropped:
    user: str
    uid: int
    gid: int
    kept: tuple[str, ...]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def owner_of(data: Path) -> int | None:
    """The uid that owns ``data`` (its nearest existing parent's while it is still to be made)."""
    for p in (data, *data.resolve().parents):
        try:
            return p.stat().st_uid
        except FileNotFoundError:
            continue
    return None


def drop_to_owner(data: Path, keep: Iterable[str] = ()) -> Dropped | None:
    """When running as root, becomes the owner of ``data`` keeping only the capabilities ``keep``.

    Returns what was done, or None when there was nothing to do: not root, or ``data`` is
    root's own (a development checkout run with sudo). The caller decides whether running on as
    root is acceptable; this module only knows how to stop being root.
    """
    if os.geteuid() != 0:
        return None
    uid = owner_of(data)
    if uid is None or uid == 0:
        return None
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise PrivilegeError(f"{data} belongs to uid {uid}, which has no user on this machine; "
                             f"chown -R linebox: {data}") from None
    names = tuple(keep)
    unknown = [n for n in names if n not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}")
    _check_reach(pw, data)
    libc = _libc()
    if names and libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise PrivilegeError(f"prctl(PR_SET_KEEPCAPS) failed: {os.strerror(ctypes.get_errno())}")
    os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(uid)  # after this there is no way back to root: setuid from root drops the saved id too
    if names:
        mask = 0
        for n in names:
            mask |= 1 << CAPABILITIES[n]
        head = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        # Not inheritable, not ambient: a program we start (sox, espeak-ng) gets none of them.
        caps = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(0, 0, 0))
        if libc.capset(ctypes.byref(head), caps) != 0:
            raise PrivilegeError(f"capset failed: {os.strerror(ctypes.get_errno())}")
        libc.prctl(_PR_SET_KEEPCAPS, 0, 0, 0, 0)
    os.environ["HOME"] = pw.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = pw.pw_name
    return Dropped(pw.pw_name, uid, pw.pw_gid, names)


def _check_reach(pw: pwd.struct_passwd, data: Path) -> None:
    """Refuses early, with the fix, when the owner could not reach the data or our own code: once
    the process has become that user, a module imported later would fail where it is needed."""
    import firmware

    rwx, rx = os.R_OK | os.W_OK | os.X_OK, os.R_OK | os.X_OK
    wanted = [(data if data.exists() else data.parent, rwx), (Path(firmware.__file__).parent, rx),
              (Path(sys.prefix), rx), (Path(os.__file__).parent, rx)]  # the venv, the standard library
    os.setegid(pw.pw_gid)
    os.seteuid(pw.pw_uid)  # effective only: the saved uid is still root's, so this is undone below
    try:
        blocked = [p for p, mode in wanted if not os.access(p, mode, effective_ids=True)]
    finally:
        os.seteuid(0)
        os.setegid(0)
    if blocked:
        raise PrivilegeError(f"user {pw.pw_name} (the owner of {data}) cannot reach {blocked[0]}: install LineBox "
                             f"where every user can read it (e.g. /opt/linebox) or `chmod o+x` the directories "
                             f"above it")


def _libc() -> ctypes.CDLL:
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        raise PrivilegeError("no C library found to set capabilities with")
    return ctypes.CDLL(name, use_errno=True)
