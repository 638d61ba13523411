"""ctypes access to libc: raw syscalls, bind() for sockaddr_xdp, errno.

ctypes is confined to ``cndp.sys``; everything above talks to typed wrappers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

libc.syscall.restype = ctypes.c_long
libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
libc.bind.restype = ctypes.c_int


def raise_errno(what: str) -> None:
    """Raise OSError for the errno the last libc call left behind."""
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def buffer_address(buf: ctypes.Array | ctypes.Structure) -> int:
    return ctypes.addressof(buf)


def bind_raw(fd: int, sockaddr: bytes) -> None:
    """bind() with a raw sockaddr (Python's socket.bind cannot encode sockaddr_xdp)."""
    buf = ctypes.create_string_buffer(sockaddr, len(sockaddr))
    if libc.bind(fd, ctypes.addressof(buf), len(sockaddr)) != 0:
        raise_errno("bind")
