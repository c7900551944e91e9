"""What the socket module cannot say: dissolve a connected UDP socket's association.

POSIX: connect() with an address of family AF_UNSPEC removes it (Linux: udp_disconnect), so the
socket hears every source again. Python's socket.connect only takes addresses of the socket's
own family, so the call goes through libc.
"""

from __future__ import annotations

import ctypes
import os
import socket

_libc = ctypes.CDLL(None, use_errno=True)
_UNSPEC = (ctypes.c_ubyte * 16)()   # sa_family 0 (AF_UNSPEC), the rest ignored


def disconnect(sock: socket.socket) -> None:
    if _libc.connect(sock.fileno(), _UNSPEC, ctypes.sizeof(_UNSPEC)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
