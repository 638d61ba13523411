"""net_null: a source and sink.

``rx_burst`` hands out ``n`` fresh frames from the port's pool with ``data_len`` 64 (the frame
content is whatever the frame held: nothing is written), and none when the port has no pool
(no umem). ``tx_burst`` frees the packets to the pool. Only ipackets/opackets and the byte
counters move, as in CNDP.
"""

from __future__ import annotations

from typing import Any

from .port import Port, register_driver

NULL_PKT_LEN = 64


@register_driver
class NullPort(Port):
    pmd_name = "net_null"
    needs_umem = False
    counters = ("ipackets", "opackets")

    def _rx(self, pv: Any, n: int | None = None) -> int:
        pool = self.pool
        if n is None or n > pv.capacity:
            n = pv.capacity
        pv.n = 0
        if pool is None:
            return 0
        k = pv.alloc_from(pool, n)
        if k:
            pv.data_len[:k] = NULL_PKT_LEN
            pv.port[:k] = self.lport
            self.st_ipackets += k
            self.ibytes.sum += NULL_PKT_LEN * k
        return k

    def _tx(self, pv: Any, n: int | None = None) -> int:
        if n is None or n > pv.n:
            n = pv.n
        if n <= 0:
            return 0
        self.obytes.add(pv.data_len[:n])
        if self.pool is not None:
            self.pool.put_bulk(pv.addr[:n])
        self.st_opackets += n
        return n
