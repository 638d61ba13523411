"""libc mmap/munmap/madvise/mlock wrappers and a zero-copy numpy view over raw memory.

Python's ``mmap`` module cannot return the virtual address of a mapping (which AF_XDP needs to
register a UMEM) and gives no control over MAP_HUGETLB page sizes, so packet memory is mapped
here with ctypes. This is the only module of the mem layer that touches ctypes.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

# A private CDLL instance so our argtypes never clash with other users of libc.
_libc = ctypes.CDLL(None, use_errno=True)

_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.mmap.restype = ctypes.c_void_p
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munmap.restype = ctypes.c_int
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int
_libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mlock.restype = ctypes.c_int
_libc.munlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munlock.restype = ctypes.c_int

PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_POPULATE = 0x8000
MAP_HUGETLB = 0x40000
MAP_HUGE_SHIFT = 26
MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT
MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT

MADV_NORMAL = 0
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15

# (void *)-1 as ctypes returns it for a c_void_p restype.
_MAP_FAILED = ctypes.c_void_p(-1).value


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def mmap_anon(
    size: int,
    *,
    shared: bool = True,
    hugetlb_shift: int | None = None,
    populate: bool = False,
) -> int:
    """Map ``size`` bytes of anonymous read/write memory and return its virtual address.

    ``hugetlb_shift`` (21 for 2 MiB, 30 for 1 GiB) asks for MAP_HUGETLB pages of that size;
    ``shared`` (the default) makes the mapping MAP_SHARED so forked workers see the same memory.
    Raises OSError (with errno) on failure.
    """
    if size <= 0:
        raise ValueError(f"mmap size must be > 0, got {size}")
    flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS
    if hugetlb_shift is not None:
        flags |= MAP_HUGETLB | (hugetlb_shift << MAP_HUGE_SHIFT)
    if populate:
        flags |= MAP_POPULATE
    addr = _libc.mmap(None, size, PROT_READ | PROT_WRITE, flags, -1, 0)
    if addr is None or addr == _MAP_FAILED:
        _raise(f"mmap({size} bytes, flags={flags:#x})")
    return int(addr)


def munmap(addr: int, size: int) -> None:
    """Unmap ``size`` bytes at ``addr`` (raises OSError on failure)."""
    if _libc.munmap(addr, size) != 0:
        _raise(f"munmap({addr:#x}, {size})")


def madvise(addr: int, size: int, advice: int) -> None:
    """madvise(2); raises OSError on failure."""
    if _libc.madvise(addr, size, advice) != 0:
        _raise(f"madvise({addr:#x}, {size}, {advice})")


def mlock(addr: int, size: int) -> None:
    """Lock pages in RAM (needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK)."""
    if _libc.mlock(addr, size) != 0:
        _raise(f"mlock({addr:#x}, {size})")


def munlock(addr: int, size: int) -> None:
    if _libc.munlock(addr, size) != 0:
        _raise(f"munlock({addr:#x}, {size})")


class _RawBuffer:
    """Exposes raw memory to numpy through the array interface.

    numpy keeps this object as the ``base`` of every view derived from the array, so ``owner``
    (e.g. the MmapRegion) stays alive as long as any view exists: the mapping cannot be
    garbage-collected (and unmapped) under a live view.
    """

    __slots__ = ("__array_interface__", "owner")

    def __init__(self, addr: int, size: int, owner: Any) -> None:
        self.__array_interface__ = {
            "shape": (size,),
            "typestr": "|u1",
            "data": (addr, False),  # False: writable
            "version": 3,
        }
        self.owner = owner


def as_uint8_array(addr: int, size: int, *, owner: Any = None) -> np.ndarray:
    """A writable numpy uint8 view (no copy) over ``size`` bytes at ``addr``.

    The view does not own the memory: using it after the memory is unmapped crashes the
    process. Pass ``owner`` to keep the object that owns the mapping alive while views exist.
    """
    if addr == 0 or size < 0:
        raise ValueError(f"bad memory range addr={addr:#x} size={size}")
    return np.asarray(_RawBuffer(addr, size, owner))
