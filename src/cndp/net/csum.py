"""Vectorised Internet checksums (RFC 1071) over many frames at once.

Frames are the rows of an ``(N, L)`` ``uint8`` matrix. A checksum is a ones'-complement sum
of big-endian 16-bit words, so for a byte range ``[start, stop)`` of every row it is the sum
of the bytes at even distance from ``start`` times 256 plus the sum of the others: two column
reductions for the whole matrix, whatever ``N``. Nothing here loops over frames.

Sums are kept unfolded in ``uint64`` (no overflow below 2**48 bytes) until :func:`fold`
reduces them to 16 bits. Byte ranges past a frame's own end must be zero, which the frame
builder guarantees, so frames of different lengths share one matrix.

Incremental updates (RFC 1624) let a sender patch a field and its checksum without summing
the frame again: ``update(csum, old_sum, new_sum)``.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_M16 = _U64(0xFFFF)
_S16 = _U64(16)


def ones_sum(rows: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Unfolded sum of the big-endian 16-bit words of ``rows[:, start:stop]`` (uint64 per row).

    An odd-length range is summed as if padded with one zero byte (RFC 1071).
    """
    if rows.ndim != 2:
        raise ValueError(f"ones_sum needs an (N, L) matrix, got shape {rows.shape}")
    seg = rows[:, start:stop]
    hi = seg[:, 0::2].sum(axis=1, dtype=_U64)
    lo = seg[:, 1::2].sum(axis=1, dtype=_U64)
    return (hi << _U64(8)) + lo


def fold(s: np.ndarray | int) -> np.ndarray:
    """Fold unfolded sums to 16 bits (end-around carry); uint64 results in 0..0xFFFF."""
    s = np.asarray(s, dtype=_U64)
    for _ in range(5):  # 2**64 -> 2**48+ -> 2**32+ -> 0x1FFFF -> 0x10000 -> at most 0xFFFF
        s = (s & _M16) + (s >> _S16)
    return s


def finish(s: np.ndarray | int) -> np.ndarray:
    """The checksum field for unfolded sum ``s``: ``~fold(s)`` as uint16."""
    return (~fold(s) & _M16).astype(np.uint16)


def checksum(
    rows: np.ndarray, start: int = 0, stop: int | None = None, extra: np.ndarray | int = 0
) -> np.ndarray:
    """Checksum of ``rows[:, start:stop]`` plus an unfolded ``extra`` sum (pseudo header)."""
    return finish(ones_sum(rows, start, stop) + np.asarray(extra, dtype=_U64))


def swap16(v: np.ndarray) -> np.ndarray:
    """Swap the two bytes of 16-bit values (a sum of words that start at an odd offset
    equals the byte-swapped sum at even alignment, RFC 1071 section 2(B))."""
    v = np.asarray(v, dtype=_U64)
    return ((v & _U64(0xFF)) << _U64(8)) | ((v >> _U64(8)) & _U64(0xFF))


def words_sum(values: np.ndarray, nbytes: int) -> np.ndarray:
    """Unfolded sum of the 16-bit words of unsigned integers of ``nbytes`` bytes (2, 4, 6 or
    8), as they appear big-endian on the wire (an IPv4 address, a MAC, a port)."""
    v = np.asarray(values).astype(_U64)
    s = np.zeros(v.shape, dtype=_U64)
    for i in range(0, nbytes, 2):  # a loop over the words of one field, not over packets
        s += (v >> _U64(8 * i)) & _M16
    return s


def update(csum: np.ndarray, old_sum: np.ndarray, new_sum: np.ndarray) -> np.ndarray:
    """RFC 1624 eqn. 3: the checksum after words summing to ``old_sum`` were replaced by
    words summing to ``new_sum``: ``HC' = ~(~HC + ~m + m')``."""
    hc = np.asarray(csum, dtype=_U64)
    m = fold(old_sum)
    m2 = fold(new_sum)
    return finish((~hc & _M16) + (~m & _M16) + m2)


def put_be16(rows: np.ndarray, off: int, values: np.ndarray | int) -> None:
    """Write a big-endian 16-bit value into column ``off`` of every row."""
    v = np.asarray(values)
    rows[:, off] = (v >> 8) & 0xFF
    rows[:, off + 1] = v & 0xFF


def get_be16(rows: np.ndarray, off: int) -> np.ndarray:
    """The big-endian 16-bit value at column ``off`` of every row (uint16)."""
    return (rows[:, off].astype(np.uint16) << 8) | rows[:, off + 1]


def ipv4_pseudo_sum(rows: np.ndarray, l3: int, proto: int, l4_len: np.ndarray | int) -> np.ndarray:
    """Unfolded sum of the IPv4 pseudo header of every row (addresses read from the IPv4
    header at column ``l3``)."""
    addrs = ones_sum(rows, l3 + 12, l3 + 20)
    return addrs + _U64(proto) + np.asarray(l4_len, dtype=_U64)


def ipv6_pseudo_sum(rows: np.ndarray, l3: int, nxt: int, l4_len: np.ndarray | int) -> np.ndarray:
    """Unfolded sum of the IPv6 pseudo header (RFC 8200 section 8.1) of every row."""
    addrs = ones_sum(rows, l3 + 8, l3 + 40)
    ln = np.asarray(l4_len, dtype=_U64)
    return addrs + (ln >> _S16) + (ln & _M16) + _U64(nxt)


def verify(rows: np.ndarray, start: int = 0, stop: int | None = None, extra=0) -> np.ndarray:
    """True for rows whose range (checksum field included) plus ``extra`` sums to 0xFFFF."""
    return fold(ones_sum(rows, start, stop) + np.asarray(extra, dtype=_U64)) == _M16
