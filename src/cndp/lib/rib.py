"""RIB: the control-plane routing table (DPDK ``rte_rib`` / CNDP ``cne_rib`` semantics).

``Rib`` (IPv4) and ``Rib6`` (IPv6) hold routes ``prefix/depth -> next hop`` and answer
longest-prefix match (``lookup``), exact match (``lookup_exact``), the closest covering route
(``lookup_parent``) and ordered iteration over the routes inside a prefix (``subnets`` and the
DPDK-style cursor ``get_nxt``). The FIBs (``cndp.lib.fib``, ``cndp.lib.fib6``) keep their route
state here and derive their data-plane tables from it.

Storage is one dict per prefix length (``{masked prefix: next hop}``) rather than a binary trie
of Python nodes: insert, remove and exact match are one dict operation, LPM is at most one probe
per prefix length in use, and a million IPv4 routes load in about a second. Iteration needs the
routes in address order; that index (a sorted list) is rebuilt lazily, once after a batch of
changes, not per change. ``lookup_bulk`` does LPM for a whole vector with a fixed number of numpy
calls per prefix length in use (binary search in per-length sorted key arrays).

Addresses are host-order integers, strings (``"10.0.0.1"``, ``"fd00::1"``) or ``ipaddress``
objects. Host bits beyond ``depth`` are cleared on insert, as DPDK does. Iteration order is
(address, depth) ascending: a prefix comes before the more-specific prefixes inside it.
"""

from __future__ import annotations

import bisect
import errno
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import CndpError

__all__ = ["Rib", "Rib6", "RibError", "Route", "parse_prefix"]

_NH_MAX = (1 << 64) - 1  # rte_rib keeps next hops as uint64_t


class RibError(CndpError):
    """A RIB call got a bad address, depth or next hop, or the route state forbids it."""


class Route(NamedTuple):
    """One route: ``prefix`` (host-order int, host bits clear), ``depth``, next hop ``nh``."""

    prefix: int
    depth: int
    nh: int
    width: int = 32  # 32 for IPv4, 128 for IPv6: only used to print the prefix

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        cls = ipaddress.IPv4Network if self.width == 32 else ipaddress.IPv6Network
        return cls((self.prefix, self.depth))

    def __str__(self) -> str:
        return f"{self.network} nh {self.nh}"


def _depth_masks(width: int) -> list[int]:
    full = (1 << width) - 1
    return [full ^ ((1 << (width - d)) - 1) for d in range(width + 1)]


def parse_ip(ip: Any, width: int, err: type[CndpError] = RibError, what: str = "address") -> int:
    """An address as a host-order int; ``err`` (a CndpError subclass) names what is wrong."""
    fam = "IPv4" if width == 32 else "IPv6"
    if isinstance(ip, (bool, np.bool_)):
        pass  # a bool is an int to Python, never an address
    elif isinstance(ip, (int, np.integer)):
        v = int(ip)
        if 0 <= v < (1 << width):
            return v
        raise err(
            f"{what} {v} is out of range for {fam} (0 .. 2**{width}-1)",
            fix=f"pass a host-order {width}-bit integer or a string like "
            f"{'10.0.0.1' if width == 32 else 'fd00::1'}",
        )
    elif isinstance(ip, str):
        try:
            a = ipaddress.ip_address(ip.strip())
        except ValueError:
            raise err(
                f"{what} {ip!r} is not an {fam} address",
                fix=f"write it like {'10.0.0.1' if width == 32 else 'fd00::1'}",
            ) from None
        if a.max_prefixlen == width:
            return int(a)
    elif isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        if ip.max_prefixlen == width:
            return int(ip)
    elif isinstance(ip, (bytes, bytearray, memoryview)) and len(ip) == width // 8:
        return int.from_bytes(bytes(ip), "big")
    raise err(
        f"{what} {ip!r} is not an {fam} address",
        fix=f"pass an int, a string or ipaddress.{fam}Address ({width // 8} bytes if bytes)",
    )


def parse_depth(depth: Any, width: int, err: type[CndpError] = RibError) -> int:
    if isinstance(depth, (int, np.integer)) and not isinstance(depth, (bool, np.bool_)):
        d = int(depth)
        if 0 <= d <= width:
            return d
    raise err(
        f"depth {depth!r} is invalid for {'IPv4' if width == 32 else 'IPv6'}",
        fix=f"a prefix length is an integer 0..{width}",
    )


def parse_nh(nh: Any, max_nh: int, err: type[CndpError] = RibError) -> int:
    if isinstance(nh, (int, np.integer)) and not isinstance(nh, (bool, np.bool_)):
        v = int(nh)
        if 0 <= v <= max_nh:
            return v
    raise err(
        f"next hop {nh!r} is out of range (0 .. {max_nh})",
        fix="use a non-negative integer next hop that fits the table's next-hop size",
    )


def parse_prefix(text: str) -> tuple[int, int]:
    """``"10.0.0.0/8"`` or ``"fd00::/8"`` -> ``(prefix int, depth)``; host bits are cleared."""
    try:
        net = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise RibError(
            f"{text!r} is not a prefix", fix="write it like 10.0.0.0/8 or fd00::/8"
        ) from None
    return int(net.network_address), net.prefixlen


class _RibBase:
    """Everything except the address width; see the module docstring."""

    width = 32
    _nbytes = 4

    def __init__(self, max_routes: int | None = None, *, name: str = "rib") -> None:
        if max_routes is not None and (
            isinstance(max_routes, bool) or not isinstance(max_routes, int) or max_routes <= 0
        ):
            raise RibError(
                f"rib {name!r}: max_routes must be a positive integer or None, got {max_routes!r}",
                fix="pass e.g. max_routes=1 << 20",
            )
        self.name = name
        self.max_routes = max_routes
        w = self.width
        self._masks = _depth_masks(w)
        self._t: list[dict[int, int]] = [{} for _ in range(w + 1)]
        self._live: list[int] = []  # depths holding routes, longest first (LPM probe order)
        self._n = 0
        self._index: list[int] | None = None  # sorted (prefix << 8 | depth), built lazily
        self._np: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # depth -> sorted keys, nhs

    # -- argument checks -------------------------------------------------------------------
    def _ip(self, ip: Any) -> int:
        return parse_ip(ip, self.width, RibError)

    def _depth(self, depth: Any) -> int:
        return parse_depth(depth, self.width, RibError)

    def _changed(self, d: int) -> None:
        self._index = None
        self._np.pop(d, None)
        live = bool(self._t[d])
        if live != (d in self._live):
            self._live = [x for x in range(self.width, -1, -1) if self._t[x]]

    # -- single-route operations -----------------------------------------------------------
    def insert(self, ip: Any, depth: int, nh: int = 0) -> Route:
        """Add ``ip/depth`` with next hop ``nh``; an existing ``ip/depth`` is an error (EEXIST)."""
        d = self._depth(depth)
        key = self._ip(ip) & self._masks[d]
        nh = parse_nh(nh, _NH_MAX)
        t = self._t[d]
        if key in t:
            raise RibError(
                f"rib {self.name!r}: route {self._fmt(key, d)} exists",
                errno=errno.EEXIST,
                fix="use set_nh() to change its next hop, or remove() it first",
            )
        if self.max_routes is not None and self._n >= self.max_routes:
            raise RibError(
                f"rib {self.name!r}: full ({self.max_routes} routes)",
                errno=errno.ENOSPC,
                fix="create the table with a larger max_routes",
            )
        t[key] = nh
        self._n += 1
        self._changed(d)
        return Route(key, d, nh, self.width)

    def remove(self, ip: Any, depth: int) -> Route:
        """Remove ``ip/depth`` and return it; a missing route is an error (ENOENT)."""
        d = self._depth(depth)
        key = self._ip(ip) & self._masks[d]
        nh = self._t[d].pop(key, None)
        if nh is None:
            raise RibError(
                f"rib {self.name!r}: no route {self._fmt(key, d)}",
                errno=errno.ENOENT,
                fix="lookup_exact() tells whether a route exists",
            )
        self._n -= 1
        self._changed(d)
        return Route(key, d, nh, self.width)

    def set_nh(self, ip: Any, depth: int, nh: int) -> Route:
        """Change the next hop of the existing route ``ip/depth``."""
        d = self._depth(depth)
        key = self._ip(ip) & self._masks[d]
        nh = parse_nh(nh, _NH_MAX)
        t = self._t[d]
        if key not in t:
            raise RibError(
                f"rib {self.name!r}: no route {self._fmt(key, d)}",
                errno=errno.ENOENT,
                fix="insert() it first",
            )
        t[key] = nh
        self._np.pop(d, None)
        return Route(key, d, nh, self.width)

    def lookup(self, ip: Any) -> Route | None:
        """Longest-prefix match for one address, or None."""
        a = self._ip(ip)
        masks, t = self._masks, self._t
        for d in self._live:
            k = a & masks[d]
            nh = t[d].get(k)
            if nh is not None:
                return Route(k, d, nh, self.width)
        return None

    def lookup_exact(self, ip: Any, depth: int) -> Route | None:
        d = self._depth(depth)
        k = self._ip(ip) & self._masks[d]
        nh = self._t[d].get(k)
        return None if nh is None else Route(k, d, nh, self.width)

    def lookup_parent(self, ip: Any, depth: int) -> Route | None:
        """The longest route strictly shorter than ``depth`` that covers ``ip/depth``."""
        d0 = self._depth(depth)
        a = self._ip(ip)
        masks, t = self._masks, self._t
        for d in self._live:
            if d >= d0:
                continue
            k = a & masks[d]
            nh = t[d].get(k)
            if nh is not None:
                return Route(k, d, nh, self.width)
        return None

    # -- iteration -------------------------------------------------------------------------
    def _sorted(self) -> list[int]:
        if self._index is None:
            self._index = sorted((k << 8) | d for d, t in enumerate(self._t) for k in t)
        return self._index

    def _range(self, ip: Any, depth: int) -> tuple[int, int, int]:
        """Positions [lo, hi) in the index of the routes strictly inside ``ip/depth``."""
        d = self._depth(depth)
        key = self._ip(ip) & self._masks[d]
        end = key + (1 << (self.width - d))
        idx = self._sorted()
        return bisect.bisect_left(idx, (key << 8) | (d + 1)), bisect.bisect_left(idx, end << 8), d

    def subnets(self, ip: Any = 0, depth: int = 0, *, cover: bool = False) -> Iterator[Route]:
        """Routes strictly more specific than ``ip/depth`` and inside it, in address order.

        ``cover=True`` yields only the outermost ones (DPDK's RTE_RIB_GET_NXT_COVER): a route
        inside another yielded route is skipped. The set iterated is the one at the call;
        routes removed meanwhile are skipped.
        """
        lo, hi, _ = self._range(ip, depth)
        idx, t, w = self._sorted(), self._t, self.width
        limit = -1
        for i in range(lo, hi):
            e = idx[i]
            p, d = e >> 8, e & 0xFF
            if p < limit:
                continue
            nh = t[d].get(p)
            if nh is None:
                continue
            if cover:
                limit = p + (1 << (w - d))
            yield Route(p, d, nh, w)

    def get_nxt(
        self, ip: Any, depth: int, last: Route | None = None, *, cover: bool = False
    ) -> Route | None:
        """DPDK ``get_nxt`` cursor: the route after ``last`` among ``subnets(ip, depth)``."""
        lo, hi, _ = self._range(ip, depth)
        idx, t, w = self._sorted(), self._t, self.width
        limit = -1
        if last is not None:
            lo = max(lo, bisect.bisect_right(idx, (last.prefix << 8) | last.depth))
            if cover:
                limit = last.prefix + (1 << (w - last.depth))
        for i in range(lo, hi):
            e = idx[i]
            p, d = e >> 8, e & 0xFF
            if p < limit:
                continue
            nh = t[d].get(p)
            if nh is not None:
                return Route(p, d, nh, w)
        return None

    def __iter__(self) -> Iterator[Route]:
        """Every route, ``/0`` included, in (address, depth) order."""
        t, w = self._t, self.width
        for e in self._sorted():
            p, d = e >> 8, e & 0xFF
            nh = t[d].get(p)
            if nh is not None:
                yield Route(p, d, nh, w)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Route):
            item = (item.prefix, item.depth)
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        try:
            return self.lookup_exact(item[0], item[1]) is not None
        except RibError:
            return False

    def depths(self) -> list[int]:
        """Prefix lengths in use, longest first."""
        return list(self._live)

    def clear(self) -> None:
        for t in self._t:
            t.clear()
        self._n = 0
        self._live = []
        self._index = None
        self._np.clear()

    # -- bulk ------------------------------------------------------------------------------
    def _keys_array(self, keys: Iterable[int], n: int) -> np.ndarray:
        raise NotImplementedError

    def _masked_keys(self, a: np.ndarray, d: int) -> np.ndarray:
        raise NotImplementedError

    def _np_depth(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        c = self._np.get(d)
        if c is None:
            t = self._t[d]
            keys = self._keys_array(t.keys(), len(t))
            nhs = np.fromiter(t.values(), np.uint64, len(t))
            order = np.argsort(keys, kind="stable")
            c = self._np[d] = (keys[order], nhs[order])
        return c

    def lookup_bulk(self, addrs: Any, default: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """LPM for a vector: ``(next hops uint64, depths int16)``; a miss gives ``default``, -1.

        A fixed number of numpy calls per prefix length in use (a binary search in that
        length's sorted keys), no per-address Python. Slower than a FIB's table lookup, but it
        needs no table build: this is what the FIBs' ``"dummy"`` type uses.
        """
        a = self._addr_vector(addrs)
        n = len(a)
        nh = np.full(n, parse_nh(default, _NH_MAX), np.uint64)
        dep = np.full(n, -1, np.int16)
        rem = np.arange(n)
        for d in self._live:
            if rem.size == 0:
                break
            keys, nhs = self._np_depth(d)
            m = self._masked_keys(a[rem], d)
            pos = np.searchsorted(keys, m)
            np.minimum(pos, len(keys) - 1, out=pos)
            hit = keys[pos] == m
            got = rem[hit]
            nh[got] = nhs[pos[hit]]
            dep[got] = d
            rem = rem[~hit]
        return nh, dep

    def _addr_vector(self, addrs: Any) -> np.ndarray:
        raise NotImplementedError

    def insert_bulk(self, prefixes: Any, depths: Any, nhs: Any) -> int:
        """Add or update many routes (a later duplicate wins); returns how many were new.

        Validates everything first: on any error (bad value, ``max_routes`` exceeded) nothing
        is changed.
        """
        keys, d, nh = self._bulk_args(prefixes, depths, nhs, RibError, _NH_MAX)
        return self._insert_checked(keys, d, nh)

    def _bulk_args(
        self, prefixes: Any, depths: Any, nhs: Any, err: type[CndpError], max_nh: int
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(masked prefixes as ints, depths int64, next hops uint64), all validated."""
        raise NotImplementedError

    def _new_count(self, keys: Sequence[int], d: np.ndarray) -> int:
        """How many of the (key, depth) pairs are not routes yet (duplicates counted once)."""
        seen: set[tuple[int, int]] = set()
        t = self._t
        for k, dd in zip(keys, d.tolist(), strict=True):
            if k not in t[dd]:
                seen.add((k, dd))
        return len(seen)

    def _insert_checked(self, keys: Sequence[int], d: np.ndarray, nh: np.ndarray) -> int:
        if self.max_routes is not None:
            new = self._new_count(keys, d)
            if self._n + new > self.max_routes:
                raise RibError(
                    f"rib {self.name!r}: {new} new routes exceed max_routes {self.max_routes} "
                    f"({self._n} present)",
                    errno=errno.ENOSPC,
                    fix="create the table with a larger max_routes",
                )
        dl, nl = d.tolist(), nh.tolist()
        added = 0
        order = np.argsort(d, kind="stable")
        bounds = np.flatnonzero(np.diff(d[order])) + 1
        for grp in np.split(order, bounds):
            if grp.size == 0:
                continue
            dd = dl[grp[0]]
            t = self._t[dd]
            before = len(t)
            gl = grp.tolist()
            t.update(zip([keys[i] for i in gl], [nl[i] for i in gl], strict=True))
            added += len(t) - before
            self._changed(dd)
            self._np.pop(dd, None)
        self._n += added
        return added

    def _fmt(self, key: int, d: int) -> str:
        return str(Route(key, d, 0, self.width).network)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, routes={self._n})"


class Rib(_RibBase):
    """IPv4 RIB. Addresses are host-order ints (or strings / IPv4Address)."""

    width = 32
    _nbytes = 4

    def __init__(self, max_routes: int | None = None, *, name: str = "rib") -> None:
        super().__init__(max_routes, name=name)
        self._npmask = np.array(self._masks, dtype=np.uint32)

    def _keys_array(self, keys: Iterable[int], n: int) -> np.ndarray:
        return np.fromiter(keys, np.uint32, n)

    def _masked_keys(self, a: np.ndarray, d: int) -> np.ndarray:
        return a & self._npmask[d]

    def _addr_vector(self, addrs: Any) -> np.ndarray:
        return ip4_vector(addrs, RibError)

    def _bulk_args(
        self, prefixes: Any, depths: Any, nhs: Any, err: type[CndpError], max_nh: int
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        p = ip4_vector(prefixes, err, what="prefix")
        d, nh = bulk_depth_nh(len(p), depths, nhs, 32, err, max_nh)
        return (p & self._npmask[d]).tolist(), d, nh


class Rib6(_RibBase):
    """IPv6 RIB. Addresses are 128-bit ints (or strings / IPv6Address)."""

    width = 128
    _nbytes = 16

    def __init__(self, max_routes: int | None = None, *, name: str = "rib6") -> None:
        super().__init__(max_routes, name=name)
        self._maskrows = mask_rows6()

    def _keys_array(self, keys: Iterable[int], n: int) -> np.ndarray:
        return ints_to_rows6(list(keys)).view("V16").ravel()

    def _masked_keys(self, a: np.ndarray, d: int) -> np.ndarray:
        return (a & self._maskrows[d]).view("V16").ravel()

    def _addr_vector(self, addrs: Any) -> np.ndarray:
        return ip6_matrix(addrs, RibError)

    def _bulk_args(
        self, prefixes: Any, depths: Any, nhs: Any, err: type[CndpError], max_nh: int
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        p = ip6_matrix(prefixes, err, what="prefix")
        d, nh = bulk_depth_nh(len(p), depths, nhs, 128, err, max_nh)
        return rows6_to_ints(p & self._maskrows[d]), d, nh


# -- vector helpers shared with the FIBs -------------------------------------------------------
def ip4_vector(addrs: Any, err: type[CndpError], what: str = "address") -> np.ndarray:
    """A 1-D uint32 vector of host-order IPv4 addresses from an int array or a sequence."""
    if isinstance(addrs, np.ndarray) and addrs.dtype == np.uint32 and addrs.ndim == 1:
        return addrs  # the hot path: already what the tables index with
    if isinstance(addrs, np.ndarray) and np.issubdtype(addrs.dtype, np.integer):
        if addrs.ndim != 1:
            raise err(
                f"IPv4 {what}es must be a 1-D vector, got shape {addrs.shape}",
                fix="pass a 1-D uint32 array of host-order addresses",
            )
        if addrs.size and (int(addrs.min()) < 0 or int(addrs.max()) >= 1 << 32):
            raise err(
                f"an IPv4 {what} is out of range (0 .. 2**32-1)",
                fix="pass host-order 32-bit integers",
            )
        return addrs.astype(np.uint32)
    if isinstance(addrs, (str, bytes)) or not isinstance(addrs, Iterable):
        raise err(
            f"IPv4 {what}es must be a vector, got {type(addrs).__name__}",
            fix="pass a 1-D uint32 array or a list of addresses",
        )
    seq = addrs.tolist() if isinstance(addrs, np.ndarray) else list(addrs)
    return np.array([parse_ip(x, 32, err, what) for x in seq], dtype=np.uint32).reshape(-1)


def ip6_matrix(addrs: Any, err: type[CndpError], what: str = "address") -> np.ndarray:
    """An (N, 16) C-contiguous uint8 matrix of IPv6 addresses (network byte order rows)."""
    if isinstance(addrs, np.ndarray) and addrs.dtype == np.uint8:
        if addrs.ndim == 2 and addrs.shape[1] == 16:
            return np.ascontiguousarray(addrs)
        if addrs.ndim == 1 and addrs.size == 16:
            return addrs.reshape(1, 16)
        raise err(
            f"IPv6 {what}es as bytes must be an (N, 16) uint8 array, got shape {addrs.shape}",
            fix="one row of 16 bytes (network order) per address",
        )
    if isinstance(addrs, np.ndarray) and addrs.dtype != object:
        raise err(
            f"IPv6 {what}es: unsupported array dtype {addrs.dtype}",
            fix="pass an (N, 16) uint8 array, or a sequence of ints/strings/IPv6Address",
        )
    if isinstance(addrs, (str, bytes)) or not isinstance(addrs, Iterable):
        raise err(
            f"IPv6 {what}es must be a vector, got {type(addrs).__name__}",
            fix="pass an (N, 16) uint8 array or a list of addresses",
        )
    return ints_to_rows6([parse_ip(x, 128, err, what) for x in addrs])


def ints_to_rows6(vals: list[int]) -> np.ndarray:
    n = len(vals)
    m64 = (1 << 64) - 1
    hi = np.fromiter((v >> 64 for v in vals), np.uint64, n).astype(">u8")
    lo = np.fromiter((v & m64 for v in vals), np.uint64, n).astype(">u8")
    out = np.empty((n, 16), np.uint8)
    out[:, :8] = hi.view(np.uint8).reshape(n, 8)
    out[:, 8:] = lo.view(np.uint8).reshape(n, 8)
    return out


def rows6_to_ints(rows: np.ndarray) -> list[int]:
    r = np.ascontiguousarray(rows)
    hi = r[:, :8].copy().view(">u8").ravel().tolist()
    lo = r[:, 8:].copy().view(">u8").ravel().tolist()
    return [(h << 64) | lo_ for h, lo_ in zip(hi, lo, strict=True)]


def mask_rows6() -> np.ndarray:
    """(129, 16) uint8: row d is the netmask of a /d IPv6 prefix in network order."""
    bits = np.arange(128)[None, :] < np.arange(129)[:, None]
    return np.packbits(bits, axis=1)


def bulk_depth_nh(
    n: int, depths: Any, nhs: Any, width: int, err: type[CndpError], max_nh: int
) -> tuple[np.ndarray, np.ndarray]:
    """Depths (int64) and next hops (uint64) of length n, from arrays or scalars, checked."""
    d = _int_vector(depths, n, "depths", err)
    nh = _int_vector(nhs, n, "next hops", err)
    if n and (int(d.min()) < 0 or int(d.max()) > width):
        raise err(
            f"depth out of range 0..{width} (saw {int(d.min())}..{int(d.max())})",
            fix=f"a prefix length is an integer 0..{width}",
        )
    if n and (int(nh.min()) < 0 or int(nh.max()) > max_nh):
        raise err(
            f"next hop out of range 0..{max_nh} (saw {int(nh.min())}..{int(nh.max())})",
            fix="use non-negative next hops that fit the table's next-hop size",
        )
    return d.astype(np.int64), nh.astype(np.uint64)


def _int_vector(x: Any, n: int, name: str, err: type[CndpError]) -> np.ndarray:
    try:
        a = np.asarray(x)
    except (ValueError, TypeError, OverflowError):
        a = np.asarray(x, dtype=object)
    if a.ndim == 0:
        a = np.full(n, a.item(), dtype=a.dtype if a.dtype != object else object)
    if a.shape != (n,):
        raise err(
            f"{name}: expected {n} values, got shape {a.shape}",
            fix="give one depth and one next hop per prefix (or one scalar for all)",
        )
    if a.dtype == object and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in a.tolist()
    ):
        if n and (min(a.tolist()) < 0 or max(a.tolist()) > _NH_MAX):
            raise err(f"{name}: a value is out of range", fix="use values in 0 .. 2**64-1")
        a = a.astype(np.uint64)
    if n and not np.issubdtype(a.dtype, np.integer):
        raise err(f"{name} must be integers, got dtype {a.dtype}", fix="pass integer arrays")
    return a
