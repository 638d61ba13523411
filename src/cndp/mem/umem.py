"""UMEM: one mmap'd area cut into equal frames, optionally split into regions.

Frame layout (CNDP's, so buffers stay interchangeable with pktmbuf semantics)::

    frame start                                     (UMEM offset = k * bufsz)
    +-- MBUF_HDR_SIZE (64)  pktmbuf header space    buf_addr = frame + 64
    +-- PKTMBUF_HEADROOM (192) headroom             data_off = 192 after alloc
    +-- packet data ...                             = frame + XDP_PKT_HEADROOM (256)

All addresses handed around the data path are UMEM *offsets* (what AF_XDP descriptors carry),
never Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .mmap import MmapRegion, PageType, mmap_alloc

MBUF_HDR_SIZE = 64
XDP_PKT_HEADROOM = 256
PKTMBUF_HEADROOM = XDP_PKT_HEADROOM - MBUF_HDR_SIZE  # 192
DEFAULT_BUFSZ = 2048
DEFAULT_BUFCNT = 16384
BUFSZ_ALIGN = 64


def validate_bufsz(bufsz: int) -> int:
    """Check CNDP's frame-size rule (a positive multiple of 64); returns bufsz.

    AF_XDP's own rule for aligned mode (a power of two in 2048..4096) is checked by xskdev.
    """
    if (
        isinstance(bufsz, bool)
        or not isinstance(bufsz, (int, np.integer))
        or bufsz <= 0
        or bufsz % BUFSZ_ALIGN
    ):
        raise ConfigError(
            f"invalid buffer size {bufsz!r}: must be a positive multiple of {BUFSZ_ALIGN}",
            fix=f"use e.g. {DEFAULT_BUFSZ} (AF_XDP aligned mode needs 2048 or 4096)",
        )
    return int(bufsz)


@dataclass(frozen=True)
class Region:
    """A contiguous run of frames inside a UMEM (one per lport/queue in CNDP configs)."""

    index: int
    first: int  # first buffer index in the UMEM
    bufcnt: int
    offset: int  # bytes from UMEM start (= first * bufsz)
    size: int  # bytes (= bufcnt * bufsz)


class Umem:
    """Packet memory for AF_XDP: ``bufcnt`` frames of ``bufsz`` bytes, split into regions."""

    def __init__(
        self,
        bufcnt: int = DEFAULT_BUFCNT,
        bufsz: int = DEFAULT_BUFSZ,
        page_type: PageType | str = PageType.DEFAULT,
        regions: list[int] | None = None,
        *,
        shared: bool = True,
        name: str = "umem0",
    ) -> None:
        self.name = name
        bufsz = validate_bufsz(bufsz)
        if isinstance(bufcnt, bool) or not isinstance(bufcnt, (int, np.integer)) or bufcnt <= 0:
            raise ConfigError(
                f"umem {name!r}: bufcnt must be a positive integer, got {bufcnt!r}",
                fix="set bufcnt to the number of frames (e.g. 16384)",
            )
        bufcnt = int(bufcnt)
        self.regions: list[Region] = self._layout(name, bufcnt, bufsz, regions)
        self.bufcnt = bufcnt
        self.bufsz = bufsz
        self.size = bufcnt * bufsz  # the length registered with the kernel
        self.mem: MmapRegion = mmap_alloc(bufcnt, bufsz, page_type, shared=shared)
        self.addr: int = self.mem.addr
        self.data: np.ndarray = self.mem.array[: self.size]

    @staticmethod
    def _layout(name: str, bufcnt: int, bufsz: int, counts: list[int] | None) -> list[Region]:
        if counts is None:
            counts = [bufcnt]
        counts = list(counts)
        if not counts:
            raise ConfigError(
                f"umem {name!r}: regions list is empty",
                fix="give at least one region buffer count, or omit regions for one region",
            )
        for i, c in enumerate(counts):
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c <= 0:
                raise ConfigError(
                    f"umem {name!r}: region {i} has buffer count {c!r}",
                    fix="every region needs a positive number of buffers",
                )
        if sum(counts) != bufcnt:
            raise ConfigError(
                f"umem {name!r}: regions {counts} sum to {sum(counts)} buffers "
                f"but bufcnt is {bufcnt}",
                fix="make the region buffer counts add up to bufcnt",
            )
        out: list[Region] = []
        first = 0
        for i, c in enumerate(counts):
            c = int(c)
            out.append(Region(i, first, c, first * bufsz, c * bufsz))
            first += c
        return out

    @property
    def page_type(self) -> PageType:
        """The page type actually backing the UMEM (after any hugepage fallback)."""
        return self.mem.page_type

    @property
    def closed(self) -> bool:
        return self.mem.closed

    def region(self, i: int) -> Region:
        if (
            isinstance(i, bool)
            or not isinstance(i, (int, np.integer))
            or not (0 <= i < len(self.regions))
        ):
            raise ConfigError(
                f"umem {self.name!r} has no region {i!r} (it has {len(self.regions)})",
                fix=f"use a region index in 0..{len(self.regions) - 1}",
            )
        return self.regions[int(i)]

    def frame_addrs(self, region_index: int | None = None) -> np.ndarray:
        """UMEM offsets (uint64) of every frame start in one region, or in the whole UMEM."""
        if region_index is None:
            first, cnt = 0, self.bufcnt
        else:
            r = self.region(region_index)
            first, cnt = r.first, r.bufcnt
        return np.arange(first, first + cnt, dtype=np.uint64) * np.uint64(self.bufsz)

    def close(self) -> None:
        """Unmap the UMEM. Idempotent; do not use ``data`` views afterwards."""
        self.mem.close()

    def __enter__(self) -> Umem:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Umem({self.name!r}, bufcnt={self.bufcnt}, bufsz={self.bufsz}, "
            f"regions={[r.bufcnt for r in self.regions]}, page_type={self.page_type.value})"
        )
