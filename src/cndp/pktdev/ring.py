"""net_ring: a loopback pseudo-NIC over one single-producer/single-consumer descriptor ring.

As in CNDP, one ring (1024 entries by default; ``"net_ring:size=N"`` or ``rx_nb_desc`` for
another power of two) serves as both TX and RX of the port: ``tx_burst`` enqueues each packet's
(UMEM offset, length) and ``rx_burst`` dequeues them, so a port receives what was sent on it.
Frames are not copied; ownership travels with the descriptor (the sender gives the frame up,
the receiver owns it).

The ring name is ``ifname``. Every port set up with the same ring name attaches to the same
ring, so ``tx`` on one lport is ``rx`` on another. The ring lives in MAP_SHARED anonymous
memory laid out like an AF_XDP ring (``cndp.xskdev.simring``'s layout: producer, consumer and
header words, then 16-byte descriptors), so a port created *before* ``fork()`` keeps working
across processes: e.g. the runtime sets up ``ring0`` in the main process, worker A transmits on
it and worker B receives from it. Descriptors are UMEM offsets, so both sides must map the same
UMEM (also created before the fork).

Rules (they are what make a lock-free SP/SC ring safe):

- one producer process and one consumer process per ring (the same process may be both). The
  first burst in a process claims the role by writing its pid into the ring header; a second
  live process trying to take a claimed role gets a CndpError. A role is released when its
  process closes its last port on the ring, or exits.
- threads: a process may use the ring from one thread at a time (no locking).
- ``close()`` of the last port on a ring in the process that created it drains the ring: frames
  still queued go back to the pools of the ports that used it (frames of other pools are
  dropped with a warning). In any other process ``close()`` only detaches.

There is no file descriptor to sleep on: ``fileno()`` is None, so an idle loop must poll.
Memory ordering relies on x86-64 TSO, exactly as the AF_XDP rings do (``cndp/xskdev/ring.py``).
"""

from __future__ import annotations

import errno as _errno
import logging
import mmap
import os
from typing import Any

import numpy as np

from ..errors import CndpError, ConfigError
from ..mem.mempool import Mempool
from ..sys.xsk import XDP_DESC_SIZE, RingOffsets
from ..xskdev.ring import M32, ConsRing, ProdRing
from .port import Port, register_driver

log = logging.getLogger("cndp.pktdev.ring")

RING_SIZE = 1024  # CNDP: cne_ring_create(name, 0, 1024, RING_F_SP_ENQ | RING_F_SC_DEQ)
_OFFS = RingOffsets(producer=0, consumer=64, desc=192, flags=128)
# header words (u32 index) in the flags cache line; the flags word itself stays unused
_H_MAGIC = 33
_H_SIZE = 34
_H_PROD_PID = 35
_H_CONS_PID = 36
_MAGIC = 0x474E5243  # "CRNG"

# Bumped in every forked child: a port re-claims its ring roles on its first burst after a fork.
_gen = 0


def _after_fork_in_child() -> None:
    global _gen
    _gen += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    # state is the field after the parenthesised command name; a zombie has exited
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class SharedRing:
    """One named descriptor ring in shared memory, with this process's ends of it."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        # mmap(-1, n) is MAP_SHARED | MAP_ANONYMOUS: children forked later share it
        self.mm = mmap.mmap(-1, _OFFS.desc + size * XDP_DESC_SIZE)
        self.hdr = np.frombuffer(self.mm, np.uint32, count=_OFFS.desc // 4)
        self.hdr[_H_MAGIC] = _MAGIC
        self.hdr[_H_SIZE] = size
        self.prod = ProdRing(self.mm, _OFFS, size, xdp_desc=True)
        self.cons = ConsRing(self.mm, _OFFS, size, xdp_desc=True)
        self.creator = os.getpid()
        self.users = 0  # ports attached in this process
        self.pools: list[Mempool] = []  # pools of those ports (frames go back there on drain)

    # -- roles -------------------------------------------------------------------------------
    def claim(self, role: str) -> None:
        word = _H_PROD_PID if role == "producer" else _H_CONS_PID
        me = os.getpid()
        cur = int(self.hdr[word])
        if cur and cur != me and _alive(cur):
            raise CndpError(
                f"net_ring {self.name!r}: process {cur} is already its {role}; a net_ring has "
                f"one producer and one consumer process",
                errno=_errno.EBUSY,
                fix="give each direction between two processes its own ring name, and let "
                "one process receive from a ring",
            )
        self.hdr[word] = me
        # Our cached indices may be stale (another process used this end before): resync.
        if role == "producer":
            self.prod.cached_prod = int(self.prod._prod[0])
            self.prod.cached_cons = (int(self.prod._cons[0]) + self.size) & M32
        else:
            self.cons.cached_cons = int(self.cons._cons[0])
            self.cons.cached_prod = int(self.cons._prod[0])

    def unclaim(self) -> None:
        me = os.getpid()
        for word in (_H_PROD_PID, _H_CONS_PID):
            if int(self.hdr[word]) == me:
                self.hdr[word] = 0

    def count(self) -> int:
        """Descriptors queued (producer minus consumer)."""
        return (int(self.prod._prod[0]) - int(self.cons._cons[0])) & M32

    # -- teardown ----------------------------------------------------------------------------
    def drain(self) -> None:
        """Dequeue everything and give each frame back to the pool it belongs to."""
        k = self.count()
        if not k:
            return
        addrs = np.zeros(k, np.uint64)
        lens = np.zeros(k, np.uint16)
        cons = int(self.cons._cons[0])
        self.cons.read_descs(cons & self.cons.mask, k, addrs, lens)
        self.cons.cached_cons = (cons + k) & M32
        self.cons._cons[0] = self.cons.cached_cons
        left = np.ones(k, bool)
        seen: list[int] = []
        for pool in self.pools:
            if id(pool) in seen or not left.any():
                continue
            seen.append(id(pool))
            mine = left & np.isin(pool.frame_of(addrs), pool.all_addrs())
            if mine.any():
                pool.put_bulk(addrs[mine])
                left &= ~mine
        if left.any():
            log.warning(
                "net_ring %r: %d queued frame(s) belong to no pool of its ports; dropped",
                self.name,
                int(left.sum()),
            )

    def release(self) -> None:
        self.prod.release_views()
        self.cons.release_views()
        self.hdr = None  # type: ignore[assignment]
        try:
            self.mm.close()
        except BufferError:  # a view is still alive somewhere: unmapped when it goes
            log.debug("net_ring %r: memory still referenced; unmapped later", self.name)


_rings: dict[str, SharedRing] = {}


@register_driver
class RingPort(Port):
    pmd_name = "net_ring"
    needs_umem = False
    allowed_opts = frozenset({"size"})
    counters = ("ipackets", "opackets", "rx_ring_empty", "tx_ring_full", "rx_burst_called")

    def __init__(self, lport: int, cfg: Any) -> None:
        super().__init__(lport, cfg)
        self._ring: SharedRing | None = None
        self._rx_gen = -1
        self._tx_gen = -1

    def _ring_size(self) -> int:
        raw = self.opts.get("size")
        if raw is not None:
            try:
                size = int(raw, 0)
            except ValueError:
                raise ConfigError(
                    f"lport {self.name!r}: net_ring size {raw!r} is not an integer",
                    fix='write e.g. "net_ring:size=2048"',
                ) from None
        else:
            size = self.cfg.rx_nb_desc or RING_SIZE
        if size < 2 or size & (size - 1) or size > 1 << 20:
            raise ConfigError(
                f"lport {self.name!r}: net_ring size {size} is not a power of two in 2..2^20",
                fix=f"use e.g. {RING_SIZE}",
            )
        return size

    def _open(self) -> None:
        name = self.ifname
        size = self._ring_size()
        r = _rings.get(name)
        if r is not None and r.size != size:
            raise ConfigError(
                f"lport {self.name!r}: ring {name!r} already exists with {r.size} entries, "
                f"not {size}",
                fix="give every port on one ring the same size",
            )
        if r is None:
            r = SharedRing(name, size)
            _rings[name] = r
        r.users += 1
        if self.pool is not None:
            r.pools.append(self.pool)
        self._ring = r
        self._size = size
        self._mask = size - 1

    # -- data path ---------------------------------------------------------------------------
    def _claim(self, role: str) -> None:
        assert self._ring is not None
        self._ring.claim(role)
        if role == "producer":
            self._tx_gen = _gen
        else:
            self._rx_gen = _gen

    def _rx(self, pv: Any, n: int | None = None) -> int:
        if self._rx_gen != _gen:
            self._claim("consumer")
        self.st_rx_burst_called += 1
        cr = self._ring.cons  # type: ignore[union-attr]
        if n is None or n > pv.capacity:
            n = pv.capacity
        cons = cr.cached_cons
        avail = (cr.cached_prod - cons) & M32
        if avail < n:
            cr.cached_prod = cr._prod[0]
            avail = (cr.cached_prod - cons) & M32
        k = n if avail > n else avail
        if k:
            start = cons & self._mask
            end = start + k
            if end <= self._size:
                pv.addr[:k] = cr.addr[start:end]
                pv.data_len[:k] = cr.len[start:end]
            else:
                cr.read_descs(start, k, pv.addr, pv.data_len)
            cr.cached_cons = cons = (cons + k) & M32
            cr._cons[0] = cons
            pv.port[:k] = self.lport
            self.st_ipackets += k
            self.ibytes.add(pv.data_len[:k])
        else:
            self.st_rx_ring_empty += 1
        pv.n = k
        return k

    def _tx(self, pv: Any, n: int | None = None) -> int:
        if self._tx_gen != _gen:
            self._claim("producer")
        if n is None or n > pv.n:
            n = pv.n
        if n <= 0:
            return 0
        pr = self._ring.prod  # type: ignore[union-attr]
        prod = pr.cached_prod
        free = (pr.cached_cons - prod) & M32
        if free < n:
            pr.cached_cons = (pr._cons[0] + self._size) & M32
            free = (pr.cached_cons - prod) & M32
        k = n if free > n else free
        if k:
            start = prod & self._mask
            end = start + k
            if end <= self._size:
                pr.addr[start:end] = pv.addr[:k]
                pr.len[start:end] = pv.data_len[:k]
            else:
                pr.write_descs(start, pv.addr[:k], pv.data_len[:k])
            pr.cached_prod = prod = (prod + k) & M32
            pr._prod[0] = prod
            self.st_opackets += k
            self.obytes.add(pv.data_len[:k])
        if k < n:
            self.st_tx_ring_full += 1
        return k

    # -- misc --------------------------------------------------------------------------------
    def queued(self) -> int:
        """Descriptors waiting in the ring."""
        return self._ring.count() if self._ring is not None else 0

    def rx_desc(self) -> int:
        return self._ring.size if self._ring is not None else 0

    def tx_desc(self) -> int:
        return self.rx_desc()

    def _close(self) -> None:
        r = self._ring
        if r is None:
            return
        self._ring = None
        r.users -= 1
        if r.users > 0:
            return
        r.unclaim()
        if _rings.get(r.name) is r:
            del _rings[r.name]
        if os.getpid() == r.creator:
            r.drain()
        r.release()
