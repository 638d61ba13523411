"""The kernel's side of the four AF_XDP rings, in ordinary memory.

``RingPeer`` lays out rings exactly as the kernel's mmap does (producer, consumer and flags
words, then the descriptors) in anonymous memory and holds the opposite end of each: it
consumes the fill and TX rings and produces into the RX and completion rings, with the same
ring classes the data path uses. It lets the ring verbs and the xskdev burst code run, and be
measured, with no socket: ``deliver`` stands for frames arriving, ``complete`` for the NIC
finishing transmits.
"""

from __future__ import annotations

import mmap

import numpy as np

from ..sys.xsk import ADDR_SIZE, XDP_DESC_SIZE, RingOffsets
from .ring import ConsRing, ProdRing

_OFFS = RingOffsets(producer=0, consumer=64, desc=192, flags=128)


def _memory(size: int, desc_size: int) -> mmap.mmap:
    return mmap.mmap(-1, _OFFS.desc + size * desc_size)


class RingPeer:
    """Owns the ring memory; ``user_rings()`` gives the application's ends."""

    def __init__(self, rx_size: int, tx_size: int, fill_size: int, comp_size: int):
        self.maps = [
            _memory(rx_size, XDP_DESC_SIZE),
            _memory(tx_size, XDP_DESC_SIZE),
            _memory(fill_size, ADDR_SIZE),
            _memory(comp_size, ADDR_SIZE),
        ]
        m_rx, m_tx, m_fq, m_cq = self.maps
        # kernel ends: produce RX and completions, consume fill and TX
        self.rx = ProdRing(m_rx, _OFFS, rx_size, xdp_desc=True)
        self.tx = ConsRing(m_tx, _OFFS, tx_size, xdp_desc=True)
        self.fq = ConsRing(m_fq, _OFFS, fill_size, xdp_desc=False)
        self.cq = ProdRing(m_cq, _OFFS, comp_size, xdp_desc=False)
        self._sizes = (rx_size, tx_size, fill_size, comp_size)
        self._addrs = np.zeros(max(self._sizes), np.uint64)
        self._lens = np.zeros(max(self._sizes), np.uint32)

    def user_rings(self) -> tuple[ConsRing, ProdRing, ProdRing, ConsRing]:
        rx_size, tx_size, fill_size, comp_size = self._sizes
        m_rx, m_tx, m_fq, m_cq = self.maps
        return (
            ConsRing(m_rx, _OFFS, rx_size, xdp_desc=True),
            ProdRing(m_tx, _OFFS, tx_size, xdp_desc=True),
            ProdRing(m_fq, _OFFS, fill_size, xdp_desc=False),
            ConsRing(m_cq, _OFFS, comp_size, xdp_desc=False),
        )

    def deliver(self, n: int, length: int = 60, headroom: int = 256) -> int:
        """Receive up to n frames: take fill-ring frames, put them on RX (data at
        frame + headroom, ``length`` bytes). Returns how many (limited by both rings)."""
        start, k = self.fq.peek(n)
        if k == 0:
            return 0
        rs, k2 = self.rx.reserve(k)
        k = min(k, k2)
        if k == 0:
            return 0
        a = self._addrs[:k]
        self.fq.read_addrs(start, k, a)
        self.fq.release(k)
        a += np.uint64(headroom)
        self._lens[:k] = length
        self.rx.write_descs(rs, a, self._lens[:k])
        self.rx.submit(k)
        return k

    def complete(self, n: int | None = None) -> int:
        """Transmit up to n queued TX frames: move their addresses to the completion ring."""
        start, k = self.tx.peek(n or self._sizes[1])
        if k == 0:
            return 0
        cs, k2 = self.cq.reserve(k)
        k = min(k, k2)
        a = self._addrs[:k]
        ln = self._lens[:k]
        self.tx.read_descs(start, k, a, ln)
        self.tx.release(k)
        self.cq.write_addrs(cs, a)
        self.cq.submit(k)
        return k

    def transmitted(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like ``complete`` but also return copies of the (addr, len) descriptors sent."""
        start, k = self.tx.peek(n or self._sizes[1])
        a = np.zeros(k, np.uint64)
        ln = np.zeros(k, np.uint32)
        self.tx.read_descs(start, k, a, ln)
        self.tx.release(k)
        done = 0
        while done < k:
            cs, k2 = self.cq.reserve(k - done)
            if k2 == 0:
                break
            self.cq.write_addrs(cs, a[done : done + k2])
            self.cq.submit(k2)
            done += k2
        return a, ln
