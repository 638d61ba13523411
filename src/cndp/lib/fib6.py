"""FIB6: IPv6 longest-prefix-match forwarding table, a stride trie (DPDK ``rte_fib6`` "trie").

Level 0 is a table indexed by the first 24 bits of the address (2**24 entries); every further
level is a pool of 256-entry groups indexed by the next byte, up to 13 more levels for /128.
Entries are ``nh << 1`` or ``group << 1 | 1`` as in the IPv4 DIR-24-8 table (``cndp.lib.fib``),
whose engine this shares: the same route bookkeeping (a ``Rib6`` plus a depth shadow), the same
fold-back of groups that no longer hold a longer route, the same all-or-nothing errors.

``lookup_bulk`` takes an (N, 16) uint8 matrix of addresses (network byte order, one row per
address, as ``cndp.net.hdr.Parsed.dst6()`` returns) and walks the levels with a fixed number of
numpy calls per level over only the addresses still on an extended entry; it stops as soon as
none is left, so a burst costs at most 14 rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fib import _GRP, FibError, _FibBase
from .rib import Rib6, ints_to_rows6, ip6_matrix

__all__ = ["NH_SIZES6", "Fib6"]

NH_SIZES6 = (2, 4, 8)
_W24 = np.array([1 << 16, 1 << 8, 1], np.intp)  # first three bytes -> level-0 index


class Fib6(_FibBase):
    """IPv6 FIB (``cne_fib6``): ``type`` ``"trie"`` (default) or ``"dummy"`` (RIB lookups).

    ``nh_sz`` is the entry size in bytes (2, 4, 8; DPDK's trie has no 1-byte entries): next
    hops up to ``2**(8*nh_sz-1)-1``. ``num_tbl8`` is the pool of 256-entry groups shared by
    all levels below the first (default 65536, at most ``2**(8*nh_sz-1)``). A route of depth
    ``d > 24`` needs one group per level between /24 and ``d`` that no other route already
    made; routes sharing leading bytes share groups.
    """

    width = 128
    _types = ("trie", "dummy")
    _nh_sizes = NH_SIZES6
    _rib_cls = Rib6
    _default_tbl8 = 1 << 16

    def __init__(
        self,
        name: str = "fib6",
        *,
        type: str = "trie",
        max_routes: int = 1 << 24,
        default_nh: int = 0,
        nh_sz: int = 4,
        num_tbl8: int | None = None,
    ) -> None:
        super().__init__(
            name,
            type=type,
            max_routes=max_routes,
            default_nh=default_nh,
            nh_sz=nh_sz,
            num_tbl8=num_tbl8,
        )

    def _key_bytes(self, keys: list[int]) -> np.ndarray:
        return ints_to_rows6(keys)

    def lookup_bulk(self, addrs: np.ndarray) -> np.ndarray:
        """Next hops for an (N, 16) uint8 matrix of IPv6 addresses (rows in network order).

        A sequence of ints, strings or ``IPv6Address`` is converted first (slow path).
        Returns an array of the table's entry dtype (uint64 for the dummy type).
        """
        a = addrs
        if not (
            type(a) is np.ndarray
            and a.dtype == np.uint8
            and a.ndim == 2
            and a.shape[1] == 16
            and a.flags.c_contiguous
        ):
            a = ip6_matrix(addrs, FibError)
        dr = self._dir
        if dr is None:
            return self.rib.lookup_bulk(a, self.default_nh)[0]
        one = dr.one
        cols = a.T.copy()  # one contiguous row per byte position: cheap per-level gathers
        v = dr.tbl24.take(_W24 @ cols[:3])
        sel = np.flatnonzero(v & one)
        tbl8 = dr.tbl8
        col = 3
        while sel.size:
            nv = tbl8.take(((v.take(sel) >> one).astype(np.intp) << 8) | cols[col].take(sel))
            v[sel] = nv
            sel = sel[(nv & one).astype(bool)]
            col += 1
        return v >> one

    def lookup(self, ip: Any) -> int:
        """Next hop for one address (scalar convenience; use ``lookup_bulk`` on bursts)."""
        a = self._ip(ip)
        dr = self._dir
        if dr is None:
            r = self.rib.lookup(a)
            return self.default_nh if r is None else r.nh
        v = int(dr.tbl24[a >> 104])
        shift = 96
        while v & 1:
            v = int(dr.tbl8[(v >> 1) * _GRP + ((a >> shift) & 0xFF)])
            shift -= 8
        return v >> 1
