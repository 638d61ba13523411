"""Packet memory allocation: anonymous shared mmap with 4 KiB, 2 MiB or 1 GiB pages.

Mirrors CNDP's ``cne_mmap``: ``mmap_alloc(bufcnt, bufsz, type)`` maps ``bufcnt * bufsz`` bytes
rounded up to the page size. Hugepages are tried first when asked for; when the kernel has none
of that size we fall back (1GB -> 2MB -> 4KB) and log one warning per step saying how to add them.
"""

from __future__ import annotations

import enum
import errno as _errno
import logging
from typing import Any

import numpy as np

from ..errors import ConfigError, MemoryError_
from ..sys import mman

log = logging.getLogger("cndp.mem")

_SIZES = {"PAGE_4K": 4096, "PAGE_2M": 2 << 20, "PAGE_1G": 1 << 30}
_NAMES = {"PAGE_4K": "4KB", "PAGE_2M": "2MB", "PAGE_1G": "1GB"}
_SHIFTS = {"PAGE_2M": 21, "PAGE_1G": 30}
_SYSFS_DIR = {"PAGE_2M": "hugepages-2048kB", "PAGE_1G": "hugepages-1048576kB"}


class PageType(enum.Enum):
    """Page size used to back packet memory. DEFAULT resolves to the module default (4KB)."""

    DEFAULT = "default"
    PAGE_4K = "4KB"
    PAGE_2M = "2MB"
    PAGE_1G = "1GB"

    def resolve(self) -> PageType:
        """The concrete page type (DEFAULT -> the current module default)."""
        return _default_page_type if self is PageType.DEFAULT else self

    @property
    def size(self) -> int:
        """Page size in bytes."""
        return _SIZES[self.resolve().name]


_default_page_type: PageType = PageType.PAGE_4K

ALLOWED_PAGE_NAMES = ("default", "4KB", "2MB", "1GB")


def page_type_by_name(name: str) -> PageType:
    """Page type from CNDP's names ("default", "4KB", "2MB", "1GB"; case-insensitive).

    Like CNDP, "default" returns the current default type (a concrete type, never DEFAULT).
    """
    if isinstance(name, str):
        key = name.strip().lower()
        if key == "default":
            return _default_page_type
        for t in (PageType.PAGE_4K, PageType.PAGE_2M, PageType.PAGE_1G):
            if t.value.lower() == key:
                return t
    raise ConfigError(
        f"unknown page type {name!r}",
        fix=f"use one of {', '.join(repr(n) for n in ALLOWED_PAGE_NAMES)} (case-insensitive)",
    )


def name_by_page_type(t: PageType) -> str:
    """CNDP's name for a page type ("4KB", "2MB", "1GB"); DEFAULT gives the default's name."""
    return _as_page_type(t).resolve().value


def set_default_page_type(t: PageType | str) -> None:
    """Set the page type that PageType.DEFAULT (and the name "default") resolve to."""
    global _default_page_type
    _default_page_type = _as_page_type(t).resolve()


def default_page_type() -> PageType:
    return _default_page_type


def _as_page_type(t: PageType | str) -> PageType:
    if isinstance(t, PageType):
        return t
    if isinstance(t, str):
        return page_type_by_name(t)
    raise ConfigError(
        f"page type must be a PageType or a name, got {type(t).__name__} {t!r}",
        fix=f"use PageType.PAGE_4K/PAGE_2M/PAGE_1G or one of {ALLOWED_PAGE_NAMES}",
    )


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def _hugepage_hint(t: PageType, size: int) -> str:
    pages = max(1, -(-size // t.size))
    return (
        f"echo {pages} > /sys/kernel/mm/hugepages/{_SYSFS_DIR[t.name]}/nr_hugepages "
        f"(as root), or boot with hugepagesz={t.value[:-1]} hugepages={pages}"
    )


class MmapRegion:
    """One anonymous mapping holding ``bufcnt`` buffers of ``bufsz`` bytes.

    ``array`` is a numpy uint8 view of the whole mapping. Views keep this object alive (so the
    mapping is never unmapped by garbage collection under a live view), but an explicit
    ``close()`` unmaps immediately: do not touch views after closing.
    """

    addr: int
    size: int
    page_type: PageType
    requested_page_type: PageType
    bufcnt: int
    bufsz: int
    shared: bool

    def __init__(
        self,
        addr: int,
        size: int,
        page_type: PageType,
        requested_page_type: PageType,
        bufcnt: int,
        bufsz: int,
        shared: bool,
    ) -> None:
        self.addr = addr
        self.size = size
        self.page_type = page_type
        self.requested_page_type = requested_page_type
        self.bufcnt = bufcnt
        self.bufsz = bufsz
        self.shared = shared
        self._closed = False
        self.array: np.ndarray = mman.as_uint8_array(addr, size, owner=self)

    @property
    def closed(self) -> bool:
        return self._closed

    def addr_at_offset(self, off: int) -> int | None:
        """Virtual address ``addr + off`` for 0 <= off < size, else None.

        (CNDP's mmap_addr_at_offset also accepts off == size; an address one past the end is
        never a valid buffer, so we return None for it.)
        """
        if self._closed or off < 0 or off >= self.size:
            return None
        return self.addr + off

    def close(self) -> None:
        """Unmap the memory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        mman.munmap(self.addr, self.size)

    def __enter__(self) -> MmapRegion:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Only reached when no numpy view is alive (views keep us referenced). A plain
        # try/except because module globals (contextlib) may be gone at interpreter exit.
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"addr={self.addr:#x}"
        return (
            f"MmapRegion({state}, size={self.size}, page_type={self.page_type.value}, "
            f"bufcnt={self.bufcnt}, bufsz={self.bufsz})"
        )


# Fallback chain for each concrete page type.
_FALLBACK = {
    PageType.PAGE_1G: (PageType.PAGE_1G, PageType.PAGE_2M, PageType.PAGE_4K),
    PageType.PAGE_2M: (PageType.PAGE_2M, PageType.PAGE_4K),
    PageType.PAGE_4K: (PageType.PAGE_4K,),
}


def mmap_alloc(
    bufcnt: int,
    bufsz: int,
    page_type: PageType | str = PageType.DEFAULT,
    *,
    shared: bool = True,
) -> MmapRegion:
    """Map ``bufcnt * bufsz`` bytes (rounded up to the page size actually used).

    Hugepage requests fall back to smaller pages when the kernel has none free, logging one
    warning per step on the ``cndp.mem`` logger. The mapping is MAP_SHARED by default so worker
    processes forked afterwards share it. ``page_type`` of the result says what was used.
    """
    for what, v in (("bufcnt", bufcnt), ("bufsz", bufsz)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ConfigError(
                f"mmap_alloc: {what} must be a positive integer, got {v!r}",
                fix=f"pass {what} >= 1",
            )
    bufcnt, bufsz = int(bufcnt), int(bufsz)
    requested = _as_page_type(page_type).resolve()
    want = bufcnt * bufsz

    last_err: OSError | None = None
    for t in _FALLBACK[requested]:
        size = _round_up(want, t.size)
        try:
            addr = mman.mmap_anon(size, shared=shared, hugetlb_shift=_SHIFTS.get(t.name))
        except OSError as e:
            last_err = e
            if t is PageType.PAGE_4K:
                break
            # ENOMEM: no free hugepages of this size; EINVAL: size unsupported by the kernel.
            log.warning(
                "no %s hugepages available for %d bytes (%s); falling back to smaller pages. "
                "To add them: %s",
                t.value,
                size,
                _errno.errorcode.get(e.errno or 0, e.errno),
                _hugepage_hint(t, want),
            )
            continue
        return MmapRegion(addr, size, t, requested, bufcnt, bufsz, shared)

    assert last_err is not None
    raise MemoryError_(
        f"mmap of {want} bytes ({bufcnt} x {bufsz}) failed: {last_err.strerror}",
        errno=last_err.errno,
        fix="use fewer or smaller buffers (bufcnt/bufsz), or free memory / raise the memory limit",
    )
