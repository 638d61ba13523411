"""Packet vector: a burst of packets as a struct of numpy arrays (our pktmbuf burst).

Every field is a preallocated array of length ``capacity``; only the first ``n`` entries are
valid. Nothing here loops over packets in Python: each operation is a fixed handful of numpy
calls per burst.

Addressing (see ``cndp.mem.umem`` for the frame layout): ``addr`` is the UMEM offset of each
packet's *first byte* -- exactly what AF_XDP descriptors carry -- so RX and TX move a burst
with plain slice copies and no arithmetic. CNDP's pktmbuf fields are derived on demand:
frame start = ``addr - addr % bufsz``, ``buf_addr`` = frame + 64 and
``data_off = addr % bufsz - 64`` (192 for a frame as AF_XDP delivers or ``alloc_from`` builds
it). Headers are pushed or pulled by moving ``addr`` (``prepend``/``adj``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import CndpError, ConfigError
from .umem import MBUF_HDR_SIZE, XDP_PKT_HEADROOM

if TYPE_CHECKING:
    from .mempool import Mempool

_U64 = np.uint64
_HDR = _U64(MBUF_HDR_SIZE)

# name -> dtype of every per-packet field, in one place so clear/select/append stay in sync.
FIELDS: dict[str, type[np.generic]] = {
    "addr": np.uint64,
    "data_len": np.uint16,
    "port": np.uint16,
    "ptype": np.uint32,
    "next": np.uint16,
    "hash": np.uint32,
}


class PktVec:
    """A burst of up to ``capacity`` packets."""

    __slots__ = ("_scratch", "addr", "capacity", "data_len", "hash", "n", "next", "port", "ptype")

    def __init__(self, capacity: int = 256) -> None:
        if (
            isinstance(capacity, bool)
            or not isinstance(capacity, (int, np.integer))
            or (capacity <= 0)
        ):
            raise ConfigError(
                f"PktVec capacity must be a positive integer, got {capacity!r}",
                fix="use the burst size, e.g. PktVec(256)",
            )
        self.capacity = int(capacity)
        self.n = 0
        for name, dt in FIELDS.items():
            setattr(self, name, np.zeros(self.capacity, dtype=dt))
        self._scratch = np.zeros(self.capacity, dtype=np.uint64)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"PktVec(n={self.n}, capacity={self.capacity})"

    def clear(self) -> None:
        """Empty the vector (the arrays keep their storage)."""
        self.n = 0

    def _check_room(self, k: int, what: str) -> None:
        if k > self.capacity:
            raise ConfigError(
                f"PktVec.{what}: {k} packets do not fit in a vector of capacity {self.capacity}",
                fix="pass at most capacity packets per burst, or create a larger PktVec",
            )

    def _reset_meta(self, lo: int, hi: int) -> None:
        self.ptype[lo:hi] = 0
        self.next[lo:hi] = 0
        self.hash[lo:hi] = 0

    # -- CNDP pktmbuf view ------------------------------------------------------------------
    def data_offsets(self) -> np.ndarray:
        """UMEM offsets of each packet's first byte (a view of ``addr[:n]``)."""
        return self.addr[: self.n]

    def frames(self, bufsz: int) -> np.ndarray:
        """Frame start of each packet (new array)."""
        a = self.addr[: self.n]
        return a - a % _U64(bufsz)

    def data_off(self, bufsz: int) -> np.ndarray:
        """CNDP's ``data_off``: offset of the first byte from buf_addr (frame + 64)."""
        a = self.addr[: self.n]
        return (a % _U64(bufsz) - _HDR).astype(np.uint16)

    # -- descriptors ------------------------------------------------------------------------
    def set_from_rx(
        self, desc_addrs: np.ndarray, desc_lens: np.ndarray, port: int | None = None
    ) -> None:
        """Fill the vector from RX descriptors (two slice copies; metadata reset)."""
        n = len(desc_addrs)
        if n > self.capacity:
            self._check_room(n, "set_from_rx")
        self.addr[:n] = desc_addrs
        self.data_len[:n] = desc_lens
        if port is not None:
            self.port[:n] = port
        self._reset_meta(0, n)
        self.n = n

    def tx_desc(self) -> tuple[np.ndarray, np.ndarray]:
        """(descriptor addresses, lengths) for the ``n`` packets, as views."""
        return self.addr[: self.n], self.data_len[: self.n]

    # -- headers ----------------------------------------------------------------------------
    def prepend(self, nbytes: int) -> None:
        """Make room for ``nbytes`` of header in front of every packet (pktmbuf_prepend).

        The caller keeps the result inside the headroom (at most data_off bytes).
        """
        self.addr[: self.n] -= _U64(nbytes)
        self.data_len[: self.n] += np.uint16(nbytes)

    def adj(self, nbytes: int) -> None:
        """Remove ``nbytes`` from the front of every packet (pktmbuf_adj_offset)."""
        if self.n and int(self.data_len[: self.n].min()) < nbytes:
            raise CndpError(
                f"PktVec.adj: a packet is shorter than {nbytes} bytes",
                fix="check data_len before stripping headers",
            )
        self.addr[: self.n] += _U64(nbytes)
        self.data_len[: self.n] -= np.uint16(nbytes)

    # -- building ---------------------------------------------------------------------------
    def alloc_from(self, pool: Mempool, n: int) -> int:
        """Append up to ``n`` fresh frames from ``pool`` (data at frame + 256, data_len 0).

        The pool may hold handles inside frames (RX/completion addresses go back as they
        came): each is rounded down to its frame first. Returns how many were obtained.
        """
        lo = self.n
        want = min(n, self.capacity - lo)
        got = len(pool.get_burst(want, out=self.addr[lo : lo + want])) if want > 0 else 0
        hi = lo + got
        seg = self.addr[lo:hi]
        bufsz = pool.bufsz
        if pool.base % bufsz == 0:
            rem = self._scratch[:got]
            np.remainder(seg, _U64(bufsz), out=rem)
            seg -= rem
        else:
            seg[...] = pool.frame_of(seg)
        seg += _U64(XDP_PKT_HEADROOM)
        self.data_len[lo:hi] = 0
        self.port[lo:hi] = 0
        self._reset_meta(lo, hi)
        self.n = hi
        return got

    def append(self, other: PktVec) -> None:
        """Append every packet of ``other`` (raises ConfigError if they do not fit)."""
        lo, k = self.n, other.n
        self._check_room(lo + k, "append")
        for name in FIELDS:
            getattr(self, name)[lo : lo + k] = getattr(other, name)[:k]
        self.n = lo + k

    def select(self, which: np.ndarray, out: PktVec | None = None) -> PktVec:
        """A vector of the chosen packets (boolean mask of length n, or integer indices).

        Used to split a vector by next-node: ``v.select(v.next[:v.n] == i)``. Pass ``out`` to
        reuse a vector instead of allocating one.
        """
        n = self.n
        sel = np.asarray(which)
        if sel.dtype == np.bool_ and sel.shape != (n,):
            raise ConfigError(
                f"PktVec.select: boolean mask has shape {sel.shape}, vector has {n} packets",
                fix="build the mask from the first n entries, e.g. v.next[:v.n] == k",
            )
        if out is None:
            out = PktVec(self.capacity)
        try:
            k = 0
            for name in FIELDS:
                chosen = getattr(self, name)[:n][sel]
                k = len(chosen)
                if k > out.capacity:
                    out._check_room(k, "select")
                getattr(out, name)[:k] = chosen
        except IndexError as e:
            raise ConfigError(
                f"PktVec.select: bad index for a vector of {n} packets ({e})",
                fix="use indices in 0..n-1",
            ) from None
        out.n = k
        return out


# -- vectorised byte helpers ----------------------------------------------------------------
_AR_CACHE: dict[int, np.ndarray] = {}


def _arange(length: int) -> np.ndarray:
    a = _AR_CACHE.get(length)
    if a is None:
        a = _AR_CACHE[length] = np.arange(length, dtype=np.intp)
    return a


def _as_intp(offsets: np.ndarray) -> np.ndarray:
    # Index arithmetic must be intp: uint64 + int64 would give float64 in numpy. UMEM offsets
    # are far below 2**63, so a uint64 array is reinterpreted in place instead of copied.
    o = np.asarray(offsets)
    if o.dtype == np.uint64 and o.ndim == 1 and o.flags.c_contiguous:
        return o.view(np.intp)
    return o.astype(np.intp, copy=False)


def _index(offsets: np.ndarray, length: int) -> np.ndarray:
    # n x length matrix of byte indices.
    return _as_intp(offsets)[:, None] + _arange(length)


def _range_error(data: np.ndarray, offsets: np.ndarray, length: int) -> CndpError:
    return CndpError(
        f"packet byte range out of bounds: offsets+{length} exceed the {data.size}-byte UMEM "
        f"(max offset {int(np.max(offsets)) if len(offsets) else 0})",
        fix="check data_off/data_len of the vector; offsets must be UMEM offsets",
    )


def gather(umem_data: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` bytes at each offset, as a new n x length uint8 matrix."""
    try:
        return umem_data[_index(offsets, length)]
    except IndexError:
        raise _range_error(umem_data, offsets, length) from None


def scatter(umem_data: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    """Write row i of the n x length matrix ``values`` at ``offsets[i]``."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != len(offsets):
        raise ConfigError(
            f"scatter: values has shape {values.shape}, expected ({len(offsets)}, length)",
            fix="pass one row of bytes per offset",
        )
    try:
        umem_data[_index(offsets, values.shape[1])] = values
    except IndexError:
        raise _range_error(umem_data, offsets, values.shape[1]) from None


# Ethernet: dst MAC bytes 0..5, src MAC bytes 6..11. Source index for each destination slot.
_SWAP16 = np.array([3, 4, 5, 0, 1, 2], dtype=np.intp)
_IDX16 = np.arange(6, dtype=np.intp)
_SWAP8 = np.array([6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5], dtype=np.intp)
_IDX8 = np.arange(12, dtype=np.intp)


def mac_swap(umem_data: np.ndarray, offsets: np.ndarray) -> None:
    """Swap destination and source MAC of every packet (Ethernet header at each offset).

    When every offset is even the 12 bytes are moved as six uint16 words; otherwise bytewise.
    The right-hand side gather completes before the scatter, so the swap is safe in place.
    """
    offs = _as_intp(offsets)
    if offs.size == 0:
        return
    try:
        if umem_data.size % 2 == 0 and umem_data.flags.c_contiguous and not (offs & 1).any():
            d = umem_data.view(np.uint16)
            base = (offs >> 1)[:, None]
            d[base + _IDX16] = d[base + _SWAP16]
        else:
            base = offs[:, None]
            umem_data[base + _IDX8] = umem_data[base + _SWAP8]
    except IndexError:
        raise _range_error(umem_data, offs, 12) from None
