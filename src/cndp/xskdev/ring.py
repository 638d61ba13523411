"""The four AF_XDP rings as numpy views with burst verbs.

A ring is a kernel mmap: producer and consumer words (free-running u32) and a descriptor
array. We move whole bursts with numpy slice copies (wrap-around is at most two slices) and
touch the index words once per burst through a memoryview.

Memory ordering: Python cannot issue barriers. We rely on x86-64 TSO: descriptor writes are
issued before the producer store in program order and TSO keeps stores in order; loads are
not reordered with other loads, and a store is not moved above an earlier load. Index words
are single aligned 32-bit stores (memoryview 'I' item assignment). On weakly ordered CPUs
(arm64) this module would need real barriers.
"""

from __future__ import annotations

import mmap

import numpy as np

from ..sys.xsk import XDP_RING_NEED_WAKEUP, RingOffsets

M32 = 0xFFFFFFFF


class _Ring:
    __slots__ = (
        "_cons",
        "_flags",
        "_prod",
        "addr",
        "cached_cons",
        "cached_prod",
        "len",
        "mask",
        "mm",
        "opts",
        "size",
    )

    def __init__(self, mm: mmap.mmap, offs: RingOffsets, size: int, *, xdp_desc: bool):
        self.mm = mm
        self.size = size
        self.mask = size - 1
        buf = memoryview(mm)
        self._prod = buf[offs.producer : offs.producer + 4].cast("I")
        self._cons = buf[offs.consumer : offs.consumer + 4].cast("I")
        self._flags = buf[offs.flags : offs.flags + 4].cast("I")
        buf.release()
        if xdp_desc:
            # struct xdp_desc {u64 addr; u32 len; u32 options} as three strided views
            d64 = np.frombuffer(mm, np.uint64, count=size * 2, offset=offs.desc)
            d32 = np.frombuffer(mm, np.uint32, count=size * 4, offset=offs.desc)
            self.addr = d64[0::2]
            self.len = d32[2::4]
            self.opts = d32[3::4]
        else:
            self.addr = np.frombuffer(mm, np.uint64, count=size, offset=offs.desc)
            self.len = None
            self.opts = None
        self.cached_prod = self._prod[0]
        self.cached_cons = self._cons[0]

    @property
    def producer(self) -> int:
        return self._prod[0]

    @property
    def consumer(self) -> int:
        return self._cons[0]

    def need_wakeup(self) -> bool:
        return bool(self._flags[0] & XDP_RING_NEED_WAKEUP)

    def release_views(self) -> None:
        """Drop every export of the mmap so it can be closed."""
        for name in ("_prod", "_cons", "_flags"):
            mv = getattr(self, name, None)
            if isinstance(mv, memoryview):
                mv.release()
        self.addr = self.len = self.opts = None  # type: ignore[assignment]


class ProdRing(_Ring):
    """A ring we produce into (fill, TX)."""

    __slots__ = ()

    def __init__(self, mm: mmap.mmap, offs: RingOffsets, size: int, *, xdp_desc: bool):
        super().__init__(mm, offs, size, xdp_desc=xdp_desc)
        # A producer may fill the whole ring: pretend the consumer is one lap ahead.
        self.cached_cons = (self.cached_cons + size) & M32

    def free(self, n: int) -> int:
        """Free slots, refreshing the consumer word only when the cache says fewer than n."""
        free = (self.cached_cons - self.cached_prod) & M32
        if free < n:
            self.cached_cons = (self._cons[0] + self.size) & M32
            free = (self.cached_cons - self.cached_prod) & M32
        return free

    def reserve(self, n: int) -> tuple[int, int]:
        """Reserve up to n slots: (start index, count). Write them, then submit(count)."""
        k = min(n, self.free(n))
        return self.cached_prod & self.mask, k

    def write_addrs(self, start: int, values: np.ndarray) -> None:
        k = len(values)
        end = start + k
        if end <= self.size:
            self.addr[start:end] = values
        else:
            first = self.size - start
            self.addr[start:] = values[:first]
            self.addr[: end - self.size] = values[first:]

    def write_descs(self, start: int, addrs: np.ndarray, lens: np.ndarray) -> None:
        k = len(addrs)
        end = start + k
        if end <= self.size:
            self.addr[start:end] = addrs
            self.len[start:end] = lens
        else:
            first = self.size - start
            self.addr[start:] = addrs[:first]
            self.addr[: end - self.size] = addrs[first:]
            self.len[start:] = lens[:first]
            self.len[: end - self.size] = lens[first:]

    def submit(self, k: int) -> None:
        self.cached_prod = (self.cached_prod + k) & M32
        self._prod[0] = self.cached_prod

    def pending(self) -> int:
        """Entries produced but not yet consumed by the kernel."""
        return (self.cached_prod - self._cons[0]) & M32


class ConsRing(_Ring):
    """A ring we consume from (RX, completion)."""

    __slots__ = ()

    def avail(self, n: int) -> int:
        avail = (self.cached_prod - self.cached_cons) & M32
        if avail < n:
            self.cached_prod = self._prod[0]
            avail = (self.cached_prod - self.cached_cons) & M32
        return avail

    def peek(self, n: int) -> tuple[int, int]:
        """Up to n ready entries: (start index, count). Read them, then release(count)."""
        k = min(n, self.avail(n))
        return self.cached_cons & self.mask, k

    def read_addrs(self, start: int, k: int, out: np.ndarray) -> None:
        end = start + k
        if end <= self.size:
            out[:k] = self.addr[start:end]
        else:
            first = self.size - start
            out[:first] = self.addr[start:]
            out[first:k] = self.addr[: end - self.size]

    def read_descs(self, start: int, k: int, addrs: np.ndarray, lens: np.ndarray) -> None:
        end = start + k
        if end <= self.size:
            addrs[:k] = self.addr[start:end]
            lens[:k] = self.len[start:end]
        else:
            first = self.size - start
            rest = end - self.size
            addrs[:first] = self.addr[start:]
            addrs[first:k] = self.addr[:rest]
            lens[:first] = self.len[start:]
            lens[first:k] = self.len[:rest]

    def release(self, k: int) -> None:
        self.cached_cons = (self.cached_cons + k) & M32
        self._cons[0] = self.cached_cons
