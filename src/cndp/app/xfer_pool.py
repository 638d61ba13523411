"""Region-aware mempools for forwarding between lports (see ``cndp.app.xfer``)."""

from __future__ import annotations

import numpy as np

from ..mem.mempool import Mempool
from .xfer import AddrRing


class RegionRouter:
    """Sends frames home: to the local pool of their region or to the owning worker.

    One router per worker and UMEM. ``pools`` are the worker's ``RoutedPool`` objects by
    region; ``remote`` the return rings towards the owners of the other regions.
    """

    def __init__(self, starts: list[int], remote: dict[int, AddrRing], inbound: list[AddrRing]):
        self.starts = np.asarray(starts, dtype=np.uint64)
        self.pools: dict[int, RoutedPool] = {}
        self.remote = remote
        self.inbound = inbound
        self.returned = 0
        self.lost = 0  # a return ring was full: counted, never silent

    def route(self, addrs: np.ndarray) -> None:
        reg = np.searchsorted(self.starts, addrs, side="right") - 1
        for r in np.unique(reg).tolist():  # a loop over regions, not over packets
            part = addrs[reg == r]
            pool = self.pools.get(r)
            if pool is not None:
                Mempool.put_bulk(pool, part)
                continue
            ring = self.remote.get(r)
            if ring is None:
                self.lost += len(part)
                continue
            k = ring.push(part)
            self.returned += k
            self.lost += len(part) - k

    def drain(self, n: int = 4096) -> int:
        """Take the frames other workers sent home (once per loop iteration)."""
        got = 0
        for ring in self.inbound:
            if ring.consumer.avail(1):
                got += ring.pop_into(self.route, n)
        return got


class RoutedPool(Mempool):
    """A region's pool whose ``put_bulk`` accepts frames of any region of the UMEM."""

    def __init__(
        self,
        addrs: np.ndarray,
        *,
        bufsz: int,
        name: str,
        router: RegionRouter,
        region: int,
        lo: int,
        hi: int,
    ):
        super().__init__(addrs, bufsz=bufsz, name=name)
        self._router = router
        self._lo = np.uint64(lo)
        self._hi = np.uint64(hi)
        router.pools[region] = self

    def put_bulk(self, addrs: np.ndarray) -> None:
        if len(addrs) == 0:
            return
        if addrs.min() >= self._lo and addrs.max() < self._hi:
            Mempool.put_bulk(self, addrs)
        else:
            self._router.route(addrs)
