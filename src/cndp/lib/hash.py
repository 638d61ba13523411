"""Flow hashing over key vectors: CRC32C, Toeplitz (RSS) and a bulk flow table.

Every function takes a whole vector of fixed-length keys, an ``(N, K)`` ``uint8`` array, and
costs a fixed number of numpy calls whatever N is.

Both hashes are linear over GF(2) in the key bytes, so for a fixed key length K the hash is the
XOR of K per-byte-position contributions (plus a constant for CRC's initial value). We
precompute one 256-entry ``uint32`` table per byte position (K x 1 KiB, cached per K) and hash a
vector with one gather of ``N*K`` entries and one XOR reduction: no per-key or per-byte loop.

CRC32C (Castagnoli, reflected polynomial 0x82F63B78) comes in two forms:

* ``crc32c(keys)``: the standard CRC-32C (iSCSI, RFC 3720): initial value 0xFFFFFFFF and a
  final XOR with 0xFFFFFFFF. Equals the ``crc32c`` PyPI package, ``google-crc32c`` and
  ``calculate_crc32c``-style software checksums; ``b"123456789"`` gives 0xE3069283.
* ``hash_crc(keys, init_val)``: DPDK's ``rte_hash_crc(key, len, init_val)`` (and CNDP's hash
  table CRC): the raw SSE4.2 ``crc32`` instruction chain started at ``init_val``, no final XOR.
  ``crc32c(k) == hash_crc(k, 0xFFFFFFFF) ^ 0xFFFFFFFF``.

Toeplitz is the RSS hash NICs compute (Microsoft RSS; DPDK ``rte_softrss``): input bytes in
network order, for IPv4/TCP ``src ip, dst ip, src port, dst port``. ``ipv4_5tuple`` packs keys
as ``src(4) dst(4) sport(2) dport(2) proto(1)`` so ``keys[:, :12]`` is the TCP/UDP RSS input and
``keys[:, :8]`` the IPv4-only one.

``FlowTable`` is a bucketised cuckoo hash like DPDK's ``rte_hash``: fixed capacity, keys stored
in numpy arrays, stable positions (an entry keeps its position for its lifetime, so callers can
keep per-flow state in their own arrays indexed by it), 8-entry buckets, two candidate buckets
per key (primary = hash & mask, secondary = (primary ^ signature) & mask with a 16-bit
signature = hash >> 16). A bulk lookup gathers the 16 candidate signatures of every key,
compares full keys only where a signature matches, and scatters the hits: about 20 numpy calls
for any N.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np

from ..errors import CndpError, ConfigError

CRC32C_POLY = 0x82F63B78  # Castagnoli, bit-reflected
M32 = 0xFFFFFFFF

# The 40-byte key of Microsoft's RSS verification suite (and the default of many NIC drivers).
RSS_KEY_MS = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
# A key whose 16-bit period makes Toeplitz symmetric for IPv4/IPv6 address and port swaps
# (Woo & Park, "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling").
RSS_KEY_SYMMETRIC = bytes([0x6D, 0x5A]) * 20

_U32 = np.uint32


class HashError(CndpError):
    """A flow table operation failed (table full, bad key shape)."""


class TableFullError(HashError):
    """The flow table has no room for the keys being added."""


# --------------------------------------------------------------------------------------------
# key vectors


def as_keys(keys: np.ndarray | bytes | bytearray | memoryview, key_len: int | None = None):
    """Return ``keys`` as a C-contiguous ``(N, K)`` uint8 array (a single bytes key -> N=1)."""
    if isinstance(keys, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(bytes(keys), np.uint8).reshape(1, -1)
    else:
        arr = np.asarray(keys)
        if arr.dtype != np.uint8:
            raise ConfigError(
                f"keys have dtype {arr.dtype}, expected uint8",
                fix="pass an (N, K) uint8 array (np.frombuffer / .view(np.uint8))",
            )
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        elif arr.ndim != 2:
            raise ConfigError(
                f"keys have shape {arr.shape}, expected (N, K)",
                fix="stack the keys into one (N, K) uint8 array",
            )
        arr = np.ascontiguousarray(arr)
    if key_len is not None and arr.shape[1] != key_len:
        raise ConfigError(
            f"keys are {arr.shape[1]} bytes long, this table holds {key_len}-byte keys",
            fix=f"pad or cut every key to {key_len} bytes",
        )
    return arr


def _be_bytes(values, width: int, n: int) -> np.ndarray:
    a = np.broadcast_to(np.asarray(values), (n,))
    dt = {1: ">u1", 2: ">u2", 4: ">u4"}[width]
    return a.astype(dt).view(np.uint8).reshape(n, width)


def ipv4_5tuple(src, dst, sport, dport, proto) -> np.ndarray:
    """Pack IPv4 5-tuples (host-order integers or arrays) into ``(N, 13)`` network-order keys:
    ``src(4) dst(4) sport(2) dport(2) proto(1)``."""
    n = max(np.size(x) for x in (src, dst, sport, dport, proto))
    out = np.empty((n, 13), np.uint8)
    out[:, 0:4] = _be_bytes(src, 4, n)
    out[:, 4:8] = _be_bytes(dst, 4, n)
    out[:, 8:10] = _be_bytes(sport, 2, n)
    out[:, 10:12] = _be_bytes(dport, 2, n)
    out[:, 12:13] = _be_bytes(proto, 1, n)
    return out


def ipv6_5tuple(src, dst, sport, dport, proto) -> np.ndarray:
    """Pack IPv6 5-tuples into ``(N, 37)`` keys: ``src(16) dst(16) sport dport proto``.
    ``src``/``dst`` are ``(N, 16)`` uint8 arrays (or 16-byte ``bytes`` for N=1)."""
    s = as_keys(src)
    d = as_keys(dst)
    n = max(len(s), len(d), np.size(sport), np.size(dport), np.size(proto))
    out = np.empty((n, 37), np.uint8)
    out[:, 0:16] = s
    out[:, 16:32] = d
    out[:, 32:34] = _be_bytes(sport, 2, n)
    out[:, 34:36] = _be_bytes(dport, 2, n)
    out[:, 36:37] = _be_bytes(proto, 1, n)
    return out


# --------------------------------------------------------------------------------------------
# CRC32C


@lru_cache(maxsize=1)
def _crc_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    poly = _U32(CRC32C_POLY)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ poly, t >> 1).astype(np.uint32)
    return t


def _crc_zero_step(crc: np.ndarray | int) -> np.ndarray | int:
    """One CRC byte step over a zero byte (linear in crc)."""
    t = _crc_table()
    if isinstance(crc, np.ndarray):
        return t[crc & 0xFF] ^ (crc >> 8)
    return int(t[crc & 0xFF]) ^ (crc >> 8)


@lru_cache(maxsize=64)
def _crc_pos_tables(key_len: int) -> np.ndarray:
    """Flat (K*256,) table: entry [i*256 + b] is what byte b at position i of a K-byte message
    adds to the raw CRC (init 0). Built right to left: a byte i positions from the end is
    followed by K-1-i zero-byte steps."""
    tabs = np.empty((key_len, 256), np.uint32)
    cur = _crc_table().copy()
    for i in range(key_len - 1, -1, -1):
        tabs[i] = cur
        cur = _crc_zero_step(cur)
    tabs.setflags(write=False)
    return tabs.reshape(-1)


@lru_cache(maxsize=256)
def _crc_init_term(key_len: int, init_val: int) -> int:
    c = init_val & M32
    for _ in range(key_len):
        c = _crc_zero_step(c)
    return c


@lru_cache(maxsize=64)
def _pos_offsets(key_len: int) -> np.ndarray:
    off = np.arange(key_len, dtype=np.intp) * 256
    off.setflags(write=False)
    return off


def _xor_gather(flat: np.ndarray, keys: np.ndarray) -> np.ndarray:
    n, k = keys.shape
    if k == 0:
        return np.zeros(n, np.uint32)
    # (K, N) C-order indices: the XOR reduction then runs over contiguous rows (4x faster
    # than reducing the short axis of an (N, K) array)
    idx = np.empty((k, n), np.intp)
    np.add(keys.T, _pos_offsets(k)[:, None], out=idx)
    return np.bitwise_xor.reduce(flat.take(idx), axis=0)


def hash_crc(keys, init_val: int = 0) -> np.ndarray:
    """DPDK ``rte_hash_crc(key, K, init_val)`` of every key: raw CRC32C, no final XOR.

    ``keys``: ``(N, K)`` uint8 (or one ``bytes`` key). Returns ``(N,)`` uint32."""
    k = as_keys(keys)
    out = _xor_gather(_crc_pos_tables(k.shape[1]), k)
    term = _crc_init_term(k.shape[1], int(init_val))
    if term:
        out ^= _U32(term)
    return out


def crc32c(keys) -> np.ndarray:
    """Standard CRC-32C (RFC 3720 / iSCSI) of every key: ``(N, K)`` uint8 -> ``(N,)`` uint32."""
    out = hash_crc(keys, M32)
    out ^= _U32(M32)
    return out


def crc32c_bytes(data: bytes, init_val: int = M32, final_xor: bool = True) -> int:
    """CRC32C of one byte string of any length (slow path: a Python loop over bytes)."""
    t = _crc_table()
    c = init_val & M32
    for b in data:
        c = int(t[(c ^ b) & 0xFF]) ^ (c >> 8)
    return c ^ M32 if final_xor else c


# --------------------------------------------------------------------------------------------
# Toeplitz


@lru_cache(maxsize=64)
def _toeplitz_tables(rss_key: bytes, in_len: int) -> np.ndarray:
    if in_len + 4 > len(rss_key):
        raise ConfigError(
            f"Toeplitz input of {in_len} bytes needs a key of at least {in_len + 4} bytes, "
            f"got {len(rss_key)}",
            fix="use a longer RSS key (40 bytes covers IPv6 + ports) or hash fewer bytes",
        )
    kbits = len(rss_key) * 8
    kint = int.from_bytes(rss_key, "big")
    # window[p]: the 32 key bits starting at bit p (bit 0 = MSB of key byte 0)
    windows = np.array(
        [(kint >> (kbits - 32 - p)) & M32 for p in range(in_len * 8)], dtype=np.uint32
    ).reshape(in_len, 8)
    b = np.arange(256, dtype=np.uint32)
    tabs = np.zeros((in_len, 256), np.uint32)
    for j in range(8):  # input bit j of a byte (MSB first) selects window 8i + j
        sel = ((b >> (7 - j)) & 1).astype(bool)
        tabs[:, sel] ^= windows[:, j : j + 1]
    tabs.setflags(write=False)
    return tabs.reshape(-1)


def toeplitz(keys, rss_key: bytes = RSS_KEY_MS) -> np.ndarray:
    """Toeplitz (RSS) hash of every input: ``(N, n)`` uint8 in network order -> ``(N,)`` uint32.

    ``n`` may be up to ``len(rss_key) - 4`` (36 bytes with a 40-byte key: IPv6 + ports)."""
    k = as_keys(keys)
    return _xor_gather(_toeplitz_tables(bytes(rss_key), k.shape[1]), k)


def toeplitz_bytes(data: bytes, rss_key: bytes = RSS_KEY_MS) -> int:
    """Bitwise Toeplitz of one input, straight from the definition (slow path, for checks)."""
    kbits = len(rss_key) * 8
    kint = int.from_bytes(rss_key, "big")
    h = 0
    for p in range(len(data) * 8):
        if data[p // 8] >> (7 - p % 8) & 1:
            h ^= (kint >> (kbits - 32 - p)) & M32
    return h


# --------------------------------------------------------------------------------------------
# flow table

BUCKET_ENTRIES = 8
_CUCKOO_MAX_DEPTH = 6
_CUCKOO_MAX_NODES = 4096


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class FlowTable:
    """Fixed-capacity hash table of fixed-size keys with int64 data, bulk operations.

    ``capacity`` keys of ``key_len`` bytes. Positions (0..capacity-1) are stable for an entry's
    lifetime and index ``values`` (int64, one per position). ``hash_func`` maps ``(N, K)`` keys
    to ``(N,)`` uint32 (default: ``hash_crc(keys, init_val)``, DPDK's CRC hash).

    Bulk operations behave exactly as the same single operations applied in vector order:
    ``add_bulk`` with a key repeated inside the vector inserts it once, returns the same
    position for every copy, and leaves the value of the last copy; ``delete_bulk`` with a
    repeated key deletes it once (the later copies return -1).
    """

    def __init__(
        self,
        capacity: int,
        key_len: int,
        *,
        name: str = "",
        init_val: int = 0,
        hash_func: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        if capacity <= 0:
            raise ConfigError(f"flow table capacity {capacity} must be > 0", fix="capacity >= 1")
        if key_len <= 0:
            raise ConfigError(f"key length {key_len} must be > 0", fix="key_len >= 1")
        self.name = name
        self.capacity = int(capacity)
        self.key_len = int(key_len)
        self.init_val = int(init_val) & M32
        self._hash_func = hash_func
        # Buckets for 80% slot load when full: cuckoo insertion then practically never fails
        # before ``capacity`` keys are in (DPDK's extendable buckets give the same guarantee).
        self.num_buckets = _next_pow2(max(1, -(-self.capacity * 5 // (4 * BUCKET_ENTRIES))))
        self.bucket_mask = self.num_buckets - 1
        self._words = -(-self.key_len // 8)
        nb = self.num_buckets
        # per slot: 16-bit signature (-1 = empty) and the key's position (-1 = empty)
        self._sig = np.full((nb, BUCKET_ENTRIES), -1, np.int32)
        self._pos = np.full((nb, BUCKET_ENTRIES), -1, np.int64)
        self._keys = np.zeros((self.capacity, self._words), np.uint64)
        self._kv = self._keys.view(f"V{self._words * 8}").reshape(-1)
        self.values = np.zeros(self.capacity, np.int64)
        self._live = np.zeros(self.capacity, bool)
        # free positions as a stack; the top is at the end (the next add takes position 0 first)
        self._free = np.arange(self.capacity - 1, -1, -1, dtype=np.int64)
        self._nfree = self.capacity
        self.cuckoo_moves = 0  # entries displaced to make room (a measure of crowding)

    # -- properties -------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self.capacity - self._nfree

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"FlowTable({self.name!r}, {self.count}/{self.capacity} keys of {self.key_len} B, "
            f"{self.num_buckets} buckets)"
        )

    # -- helpers ----------------------------------------------------------------------------

    def hash(self, keys) -> np.ndarray:
        k = as_keys(keys, self.key_len)
        if self._hash_func is not None:
            return np.asarray(self._hash_func(k), dtype=np.uint32)
        return hash_crc(k, self.init_val)

    def _words_of(self, k: np.ndarray) -> np.ndarray:
        if self.key_len == self._words * 8:
            return k.view(np.uint64)
        pad = np.zeros((len(k), self._words * 8), np.uint8)
        pad[:, : self.key_len] = k
        return pad.view(np.uint64)

    def _buckets(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signatures as int32, (N, 2) primary and secondary bucket indices)."""
        sig = (h >> 16).astype(np.int32)
        bk = np.empty((len(h), 2), np.intp)
        np.bitwise_and(h, self.bucket_mask, out=bk[:, 0], casting="unsafe")
        np.bitwise_xor(bk[:, 0], sig, out=bk[:, 1])
        bk[:, 1] &= self.bucket_mask
        return sig, bk

    def _find(self, k: np.ndarray, h: np.ndarray | None):
        """Vector lookup: (positions or -1, flat slot index or -1, sig, buckets, key words)."""
        n = len(k)
        if h is None:
            h = self.hash(k)
        else:
            h = np.asarray(h, dtype=np.uint32)
            if h.shape != (n,):
                raise ConfigError(
                    f"{h.shape} hashes for {n} keys", fix="pass one precomputed hash per key"
                )
        sig, bk = self._buckets(h)
        words = self._words_of(k)
        # take(axis=0) copies whole 32-byte bucket rows: much faster than element gathers
        cand = self._sig.take(bk, axis=0).reshape(n, 2 * BUCKET_ENTRIES) == sig[:, None]
        f = np.flatnonzero(cand)
        r = f >> 4
        flat = bk.reshape(-1).take(f >> 3) * BUCKET_ENTRIES + (f & 7)
        pos = self._pos.reshape(-1).take(flat)
        # keys compared as whole fixed-size byte strings (one void compare per candidate)
        hit = self._kv.take(pos) == words.view(self._kv.dtype).reshape(-1).take(r)
        res = np.full(n, -1, np.int64)
        slot = np.full(n, -1, np.int64)
        res[r[hit]] = pos[hit]
        slot[r[hit]] = flat[hit]
        return res, slot, sig, bk, words

    # -- lookup -----------------------------------------------------------------------------

    def lookup_bulk(self, keys, hashes: np.ndarray | None = None) -> np.ndarray:
        """Positions of ``keys`` ((N, K) uint8), -1 where absent. ``hashes``: precomputed
        ``hash(keys)`` (e.g. from the NIC), like ``rte_hash_lookup_with_hash_bulk``."""
        return self._find(as_keys(keys, self.key_len), hashes)[0]

    def lookup(self, key) -> int:
        return int(self.lookup_bulk(key)[0])

    def get_bulk(self, keys, default: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """(positions, values): values of absent keys are ``default``."""
        pos = self.lookup_bulk(keys)
        vals = np.where(pos >= 0, self.values[np.maximum(pos, 0)], default)
        return pos, vals

    def __contains__(self, key) -> bool:
        return self.lookup(key) >= 0

    # -- add --------------------------------------------------------------------------------

    def add(self, key, value: int = 0) -> int:
        return int(self.add_bulk(key, np.array([value], np.int64))[0])

    def add_bulk(self, keys, values=None) -> np.ndarray:
        """Insert or update every key (in vector order); returns their positions.

        All or nothing: if the new keys do not fit, nothing changes and ``TableFullError``
        is raised."""
        k = as_keys(keys, self.key_len)
        n = len(k)
        vals = None if values is None else np.broadcast_to(np.asarray(values, np.int64), (n,))
        if n == 0:
            return np.zeros(0, np.int64)
        words = self._words_of(k)
        # one representative per distinct key, in order of first appearance (so new keys take
        # positions in vector order); its value is the last copy's (sequential adds)
        _, first, inv = np.unique(
            words.view(self._kv.dtype).reshape(n), return_index=True, return_inverse=True
        )
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(first), np.int64)
        rank[order] = np.arange(len(first))
        inv = rank[inv.reshape(-1)]
        first = first[order]
        last = np.zeros(len(first), np.int64)
        np.maximum.at(last, inv, np.arange(n))
        pos, _, sig, bk, uwords = self._find(k[first], None)
        new = pos < 0
        m = int(new.sum())
        if m > self._nfree:
            raise TableFullError(
                f"flow table {self.name!r} is full: {m} new keys, {self._nfree} free of "
                f"{self.capacity}",
                fix="delete stale flows first or create the table with a larger capacity",
            )
        old_vals = self.values[pos[~new]].copy()
        if vals is not None:
            self.values[pos[~new]] = vals[last[~new]]
        if m:
            newpos = self._free[self._nfree - m : self._nfree][::-1].copy()
            self._nfree -= m
            self._keys[newpos] = uwords[new]
            self.values[newpos] = 0 if vals is None else vals[last[new]]
            self._live[newpos] = True
            pos[new] = newpos
            try:
                self._insert_slots(sig[new], bk[new, 0], bk[new, 1], newpos)
            except TableFullError:
                self._undo_add(newpos, pos[~new], old_vals)
                raise
        return pos[inv]

    def _undo_add(self, newpos: np.ndarray, upd: np.ndarray, old_vals: np.ndarray) -> None:
        flat = self._pos.reshape(-1)
        gone = np.isin(flat, newpos)
        flat[gone] = -1
        self._sig.reshape(-1)[gone] = -1
        self._release(newpos)
        self.values[upd] = old_vals

    def _place(self, bkt: np.ndarray, sig: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Put each key in a free slot of its bucket ``bkt`` if there is one left (keys of the
        same bucket take its free slots in order). Returns the placed mask."""
        m = len(bkt)
        order = np.argsort(bkt, kind="stable")
        b = bkt[order]
        start = np.ones(m, bool)
        np.not_equal(b[1:], b[:-1], out=start[1:])
        idx = np.arange(m)
        rank = idx - np.maximum.accumulate(np.where(start, idx, 0))
        empty = self._pos[b] < 0  # (m, 8)
        ok = rank < empty.sum(axis=1)
        slot_order = np.argsort(~empty, axis=1, kind="stable")  # free slots first, in order
        slot = slot_order[idx, np.minimum(rank, BUCKET_ENTRIES - 1)]
        bo, so, oo = b[ok], slot[ok], order[ok]
        self._sig[bo, so] = sig[oo]
        self._pos[bo, so] = pos[oo]
        placed = np.zeros(m, bool)
        placed[oo] = True
        return placed

    def _insert_slots(self, sig, prim, sec, pos) -> None:
        placed = self._place(prim, sig, pos)
        rest = np.flatnonzero(~placed)
        if len(rest):
            placed2 = self._place(sec[rest], sig[rest], pos[rest])
            rest = rest[~placed2]
        # both buckets full: cuckoo displacement, one key at a time (slow path, rare below
        # ~90% slot load; the table is sized for 80% when at capacity)
        for i in rest.tolist():
            if not self._cuckoo(int(sig[i]), int(prim[i]), int(sec[i]), int(pos[i])):
                raise TableFullError(
                    f"flow table {self.name!r}: no cuckoo path for a new key "
                    f"({self.count} of {self.capacity} keys)",
                    fix="create the table with a larger capacity",
                )

    def _cuckoo(self, sig: int, prim: int, sec: int, pos: int) -> bool:
        """Breadth-first search for a chain of moves ending in a free slot (Python; rare)."""
        bsig, bpos, mask = self._sig, self._pos, self.bucket_mask
        queue: deque[tuple[int, tuple[tuple[int, int], ...]]] = deque()
        seen = {prim, sec}
        queue.append((prim, ()))
        if sec != prim:
            queue.append((sec, ()))
        nodes = 0
        while queue:
            b, path = queue.popleft()
            for s in range(BUCKET_ENTRIES):
                alt = (b ^ int(bsig[b, s])) & mask
                free = np.flatnonzero(bpos[alt] < 0)
                if len(free):
                    # move the chain's occupants one step along, from the end backwards
                    chain = (*path, (b, s))
                    dst_b, dst_s = alt, int(free[0])
                    self.cuckoo_moves += len(chain)
                    for cb, cs in reversed(chain):
                        bsig[dst_b, dst_s] = bsig[cb, cs]
                        bpos[dst_b, dst_s] = bpos[cb, cs]
                        dst_b, dst_s = cb, cs
                    bsig[dst_b, dst_s] = sig
                    bpos[dst_b, dst_s] = pos
                    return True
                nodes += 1
                if alt not in seen and len(path) + 1 < _CUCKOO_MAX_DEPTH:
                    seen.add(alt)
                    queue.append((alt, (*path, (b, s))))
            if nodes > _CUCKOO_MAX_NODES:
                break
        return False

    # -- delete -----------------------------------------------------------------------------

    def _release(self, positions: np.ndarray) -> None:
        k = len(positions)
        self._live[positions] = False
        self._free[self._nfree : self._nfree + k] = positions[::-1]
        self._nfree += k

    def delete_bulk(self, keys) -> np.ndarray:
        """Delete every key; returns the positions they had (-1: absent, or an earlier copy in
        the same vector already deleted it). Values are left as they were."""
        k = as_keys(keys, self.key_len)
        pos, slot, *_ = self._find(k, None)
        hit = np.flatnonzero(pos >= 0)
        # a key repeated in the vector: only its first copy deletes it
        _, first = np.unique(pos[hit], return_index=True)
        dup = np.ones(len(hit), bool)
        dup[first] = False
        pos[hit[dup]] = -1
        hit = hit[~dup]
        flat_slots = slot[hit]
        self._sig.reshape(-1)[flat_slots] = -1
        self._pos.reshape(-1)[flat_slots] = -1
        self._release(pos[hit])
        return pos

    def delete(self, key) -> int:
        return int(self.delete_bulk(key)[0])

    # -- iteration, reset -------------------------------------------------------------------

    def positions(self) -> np.ndarray:
        """Positions of all live entries, ascending."""
        return np.flatnonzero(self._live)

    def keys_at(self, positions) -> np.ndarray:
        """Keys stored at ``positions`` as ``(n, K)`` uint8."""
        p = np.asarray(positions, dtype=np.int64).reshape(-1)
        return self._keys[p].view(np.uint8)[:, : self.key_len]

    def items(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, keys (n, K), values) of every live entry, in position order."""
        p = self.positions()
        return p, self.keys_at(p), self.values[p]

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        """(key bytes, value) per live entry (slow path: one Python object per entry)."""
        p, k, v = self.items()
        for i in range(len(p)):
            yield k[i].tobytes(), int(v[i])

    def reset(self) -> None:
        """Remove every entry (like ``rte_hash_reset``)."""
        self._sig.fill(-1)
        self._pos.fill(-1)
        self._keys.fill(0)
        self.values.fill(0)
        self._live.fill(False)
        self._free[:] = np.arange(self.capacity - 1, -1, -1)
        self._nfree = self.capacity
