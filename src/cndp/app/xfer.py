"""Moving frames between worker processes: descriptor rings in shared memory.

Workers share each UMEM (it is mapped before fork), so a frame is just an offset that means
the same in every worker. What needs care is ownership:

* ``DescRing``: a single-producer/single-consumer ring of (addr, len) descriptors in shared
  memory, laid out like an AF_XDP ring and driven by the same numpy ring verbs. cndpfwd's fwd
  mode hands a burst whose destination lport belongs to another worker over such a ring; the
  owner transmits it.
* ``AddrRing``: frames must end up back in the mempool of the region they came from (C CNDP's
  pktmbufs remember their pool for the same reason); a frame of another worker's region goes
  home over such a ring (see ``xfer_pool.RegionRouter``).
"""

from __future__ import annotations

import mmap

import numpy as np

from ..sys.xsk import ADDR_SIZE, XDP_DESC_SIZE
from ..xskdev.ring import ConsRing, ProdRing
from ..xskdev.simring import _OFFS


class _SharedRing:
    def __init__(self, size: int, xdp_desc: bool):
        if size <= 0 or size & (size - 1):
            raise ValueError(f"ring size {size} is not a power of two")
        self.size = size
        self.xdp_desc = xdp_desc
        width = XDP_DESC_SIZE if xdp_desc else ADDR_SIZE
        # MAP_SHARED anonymous memory: created before fork, both processes see it.
        self.mm = mmap.mmap(-1, _OFFS.desc + size * width, flags=mmap.MAP_SHARED)
        self._prod: ProdRing | None = None
        self._cons: ConsRing | None = None

    @property
    def producer(self) -> ProdRing:
        if self._prod is None:
            self._prod = ProdRing(self.mm, _OFFS, self.size, xdp_desc=self.xdp_desc)
        return self._prod

    @property
    def consumer(self) -> ConsRing:
        if self._cons is None:
            self._cons = ConsRing(self.mm, _OFFS, self.size, xdp_desc=self.xdp_desc)
        return self._cons


class DescRing(_SharedRing):
    """SPSC ring of (addr, len) descriptors between two processes."""

    def __init__(self, size: int = 4096):
        super().__init__(size, xdp_desc=True)

    def push(self, addrs: np.ndarray, lens: np.ndarray) -> int:
        """Enqueue up to len(addrs) descriptors; returns how many fitted."""
        p = self.producer
        start, k = p.reserve(len(addrs))
        if k:
            p.write_descs(start, addrs[:k], lens[:k])
            p.submit(k)
        return k

    def pop(self, addrs: np.ndarray, lens: np.ndarray, n: int) -> int:
        c = self.consumer
        start, k = c.peek(n)
        if k:
            c.read_descs(start, k, addrs, lens)
            c.release(k)
        return k


class AddrRing(_SharedRing):
    """SPSC ring of frame addresses (frames going home to their region's owner)."""

    def __init__(self, size: int = 8192):
        super().__init__(size, xdp_desc=False)

    def push(self, addrs: np.ndarray) -> int:
        p = self.producer
        start, k = p.reserve(len(addrs))
        if k:
            p.write_addrs(start, addrs[:k])
            p.submit(k)
        return k

    def pop_into(self, put, n: int) -> int:
        """Hand up to n queued addresses to ``put`` (a pool's put_bulk)."""
        c = self.consumer
        start, k = c.peek(n)
        if not k:
            return 0
        end = start + k
        if end <= c.size:
            put(c.addr[start:end])
        else:
            put(c.addr[start:])
            put(c.addr[: end - c.size])
        c.release(k)
        return k
