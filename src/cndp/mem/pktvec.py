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
# A packet field of L bytes at any offset is one element of a "window" view: the UMEM seen as
# overlapping L-byte void items with a stride of one byte. Gathering or scattering a field of a
# whole burst is then one fancy index of n items (memcpy each), instead of an n x L index
# matrix. The right-hand side of a scatter is always a separate array, so numpy's overlap
# check stays a cheap bounds test.
_WIN_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def window(umem_data: np.ndarray, length: int) -> np.ndarray:
    """The UMEM as overlapping ``length``-byte items: item i is bytes [i, i+length)."""
    key = (id(umem_data), length)
    hit = _WIN_CACHE.get(key)
    if hit is not None and hit[0] is umem_data:
        return hit[1]
    if umem_data.dtype != np.uint8 or umem_data.ndim != 1:
        raise ConfigError("byte helpers need the UMEM as a 1-D uint8 array (umem.data)")
    n = umem_data.size - length + 1
    if n <= 0:
        raise ConfigError(f"a {length}-byte field does not fit in {umem_data.size} bytes")
    w = np.ndarray(buffer=umem_data, dtype=f"V{length}", shape=(n,), strides=(1,))
    if len(_WIN_CACHE) > 32:
        _WIN_CACHE.clear()
    _WIN_CACHE[key] = (umem_data, w)
    return w


def _as_intp(offsets: np.ndarray) -> np.ndarray:
    # Index arithmetic must be intp: uint64 + int64 would give float64 in numpy. UMEM offsets
    # are far below 2**63, so a uint64 array is reinterpreted in place instead of copied.
    o = np.asarray(offsets)
    if o.dtype == np.uint64 and o.ndim == 1 and o.flags.c_contiguous:
        return o.view(np.intp)
    return o.astype(np.intp, copy=False)


def _range_error(data: np.ndarray, offsets: np.ndarray, length: int) -> CndpError:
    return CndpError(
        f"packet byte range out of bounds: offsets+{length} exceed the {data.size}-byte UMEM "
        f"(max offset {int(np.max(offsets)) if len(offsets) else 0})",
        fix="check data_off/data_len of the vector; offsets must be UMEM offsets",
    )


def gather(umem_data: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` bytes at each offset, as a new n x length uint8 matrix."""
    o = _as_intp(offsets)
    try:
        items = window(umem_data, length)[o]
    except IndexError:
        raise _range_error(umem_data, offsets, length) from None
    return items.view(np.uint8).reshape(len(o), length)


def scatter(umem_data: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    """Write row i of the n x length matrix ``values`` at ``offsets[i]``."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != len(offsets):
        raise ConfigError(
            f"scatter: values has shape {values.shape}, expected ({len(offsets)}, length)",
            fix="pass one row of bytes per offset",
        )
    length = values.shape[1]
    rows = np.ascontiguousarray(values, dtype=np.uint8).view(f"V{length}").reshape(len(offsets))
    try:
        window(umem_data, length)[_as_intp(offsets)] = rows
    except IndexError:
        raise _range_error(umem_data, offsets, length) from None


def mac_swap(umem_data: np.ndarray, offsets: np.ndarray) -> None:
    """Swap destination and source MAC of every packet (Ethernet header at each offset).

    Four fancy-index operations on n six-byte items, at any alignment. (One 12-byte gather
    with the halves swapped by slice copies measured slower: view and reshape overheads.)
    """
    a = _as_intp(offsets)
    if a.size == 0:
        return
    w = window(umem_data, 6)
    a6 = a + 6
    try:
        dst = w[a]
        src = w[a6]
    except IndexError:
        raise _range_error(umem_data, a, 12) from None
    w[a] = src
    w[a6] = dst
