"""FIB: IPv4 longest-prefix-match forwarding table, DIR-24-8 (DPDK ``rte_fib`` / CNDP ``cne_fib``).

Data plane: ``tbl24``, one entry per /24 (2**24 entries), and a fixed pool of ``num_tbl8``
groups of 256 entries (``tbl8``) for the /24s that hold routes longer than /24. An entry is
``next_hop << 1`` or, with the low bit set, ``group << 1 | 1`` (the "extended" flag, as in
DPDK), so the entry width ``nh_sz`` (1, 2, 4 or 8 bytes) leaves ``8 * nh_sz - 1`` bits for next
hops. ``lookup_bulk`` is a fixed handful of numpy calls on a whole vector: gather tbl24, pick the
extended entries, gather tbl8 for those.

Control plane: routes live in a ``Rib`` (``fib.rib``). Each add/delete rewrites only the entries
of the route's own range, using a per-entry shadow of the depth of the route that wrote it (one
uint8 per entry, as DPDK's rte_lpm keeps): an add overwrites entries owned by shorter routes and
keeps those of longer ones; a delete hands the entries the route owned to its closest covering
route (or the default next hop). A tbl8 group exists exactly while its /24 holds a route longer
than /24; the last such delete folds the (then uniform) group back into its tbl24 entry and
returns it to the pool. An add that would need more groups than are free fails with
``FibError`` (ENOSPC) before anything changes. ``add_bulk`` loads many routes at once: a big
batch rebuilds the whole table with numpy (a million routes in a few seconds).

The same engine with more 8-bit levels is the IPv6 trie (``cndp.lib.fib6.Fib6``).
"""

from __future__ import annotations

import errno
from typing import Any

import numpy as np

from ..errors import CndpError
from .rib import Rib, Rib6, Route, ip4_vector, parse_depth, parse_ip, parse_nh

__all__ = ["NH_SIZES", "Fib", "FibError"]

NH_SIZES = (1, 2, 4, 8)
_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_TBL24 = 1 << 24
_GRP = 256
_SLICE_SPAN = 1 << 16  # ranges at least this long are painted with slices, shorter by gathers
_CHUNK = 1 << 20  # fancy-index entries per paint step (bounds the temporary index arrays)
_U32_8 = np.uint32(8)
_U32_FF = np.uint32(0xFF)


class FibError(CndpError):
    """A FIB was configured or used wrongly (bad depth, next hop too big, tbl8 pool full...)."""


def _level_of(d: int) -> int:
    """The level holding a /d route's entries: 0 (tbl24) for d <= 24, else its 8-bit group."""
    return 0 if d <= 24 else (d - 17) // 8


class _Dir:
    """Stride table: level 0 indexes the first 24 bits, levels 1.. the next bytes, 8 bits each.

    Width 32 gives DIR-24-8 (levels 0, 1); width 128 gives DPDK's IPv6 trie (levels 0..13).
    Group keys are ``(level, prefix >> (width - bits before that level))``.
    """

    def __init__(
        self, width: int, nh_sz: int, num_tbl8: int, default_nh: int, rib: Rib | Rib6
    ) -> None:
        self.width = width
        self.nlevels = 1 + (width - 24) // 8
        self.dtype = np.dtype(_DTYPES[nh_sz])
        self.one = self.dtype.type(1)
        self.num_tbl8 = num_tbl8
        self.default_nh = default_nh
        self.rib = rib
        defval = default_nh << 1
        # np.zeros maps lazily: a table with default next hop 0 costs memory only where written
        self.tbl24 = np.zeros(_TBL24, self.dtype)
        if defval:
            self.tbl24.fill(defval)
        self.dep24 = np.zeros(_TBL24, np.uint8)  # depth + 1 of the owning route, 0 = none
        self.tbl8 = np.zeros(num_tbl8 * _GRP, self.dtype)
        self.dep8 = np.zeros(num_tbl8 * _GRP, np.uint8)
        self._t8 = self.tbl8.reshape(num_tbl8, _GRP)
        self._d8 = self.dep8.reshape(num_tbl8, _GRP)
        self._free: list[int] = list(range(num_tbl8 - 1, -1, -1))  # pop() hands out low ids first
        self._groups: dict[tuple[int, int], list[int]] = {}  # key -> [group id, routes below]
        self._written = False  # a rebuild resets tbl24 only if something changed it since here

    # -- incremental updates -----------------------------------------------------------------
    def _keys(self, ip: int, d: int) -> list[tuple[int, int]]:
        w = self.width
        return [(lv, ip >> (w - 16 - 8 * lv)) for lv in range(1, _level_of(d) + 1)]

    def groups_needed(self, ip: int, d: int) -> int:
        g = self._groups
        return sum(k not in g for k in self._keys(ip, d))

    def _locate(self, ip: int, d: int, ref: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(table, depth shadow, first entry, entry count) of ``ip/d``'s range.

        Creates the missing groups on the way (the caller checked there are enough free) and
        adds ``ref`` to each group's route count.
        """
        w = self.width
        t, dp = self.tbl24, self.dep24
        a = ip >> (w - 24)
        lv_d = _level_of(d)
        groups = self._groups
        for lv in range(1, lv_d + 1):
            key = (lv, ip >> (w - 16 - 8 * lv))
            ent = groups.get(key)
            if ent is None:
                g = self._free.pop()
                self._t8[g] = t[a]  # the new group inherits its parent entry everywhere
                self._d8[g] = dp[a]
                t[a] = (g << 1) | 1
                ent = groups[key] = [g, 0]
            ent[1] += ref
            t, dp = self.tbl8, self.dep8
            a = ent[0] * _GRP + ((ip >> (w - 24 - 8 * lv)) & 0xFF)
        return t, dp, a, 1 << (24 + 8 * lv_d - d)

    def _apply(
        self,
        t: np.ndarray,
        dp: np.ndarray,
        start: int,
        span: int,
        thr: int,
        eq: bool,
        val: tuple[int, int],
    ) -> None:
        """Rewrite the entries of a range whose owner matches, through extended entries.

        ``eq``: entries owned by depth ``thr - 1`` exactly (update, delete); else entries owned
        by routes no longer than ``thr - 1`` (add). ``val`` is ``(nh << 1, owner depth + 1)``.
        One level per loop turn: a fixed number of numpy calls per level, whatever the span.
        """
        nv, nd = val
        v = t[start : start + span]  # views: writes land in the table
        dd = dp[start : start + span]
        ext = (v & 1).astype(bool)
        m = (dd == thr) if eq else (dd <= thr)
        m &= ~ext
        v[m] = nv
        dd[m] = nd
        gids = (v[ext] >> 1).astype(np.intp)
        t8, d8 = self._t8, self._d8
        while gids.size:
            v = t8[gids]  # copies of whole groups, written back below
            dd = d8[gids]
            ext = (v & 1).astype(bool)
            m = (dd == thr) if eq else (dd <= thr)
            m &= ~ext
            v[m] = nv
            dd[m] = nd
            t8[gids] = v
            d8[gids] = dd
            gids = (v[ext] >> 1).astype(np.intp)

    def add(self, ip: int, d: int, nh: int, old: Route | None) -> None:
        """Data-plane part of an add; the RIB already holds the route (``old``: prior route)."""
        self._written = True
        if old is not None:
            if old.nh == nh:
                return
            t, dp, a, span = self._locate(ip, d, 0)
            self._apply(t, dp, a, span, d + 1, True, (nh << 1, d + 1))
            return
        t, dp, a, span = self._locate(ip, d, 1)
        self._apply(t, dp, a, span, d + 1, False, (nh << 1, d + 1))

    def delete(self, ip: int, d: int, parent: Route | None) -> None:
        """Data-plane part of a delete: hand the route's entries to ``parent`` (or default)."""
        val = (self.default_nh << 1, 0) if parent is None else (parent.nh << 1, parent.depth + 1)
        t, dp, a, span = self._locate(ip, d, 0)
        self._apply(t, dp, a, span, d + 1, True, val)
        # the groups on the route's path lose one route; fold the empty ones, deepest first
        for key in reversed(self._keys(ip, d)):
            ent = self._groups[key]
            ent[1] -= 1
            if ent[1] == 0:
                self._fold(key, ent[0])

    def _fold(self, key: tuple[int, int], g: int) -> None:
        lv, pfx = key
        if lv == 1:
            t, dp, a = self.tbl24, self.dep24, pfx
        else:
            t, dp = self.tbl8, self.dep8
            a = self._groups[(lv - 1, pfx >> 8)][0] * _GRP + (pfx & 0xFF)
        # no route below this group's prefix remains, so all 256 entries are equal
        t[a] = self._t8[g, 0]
        dp[a] = self._d8[g, 0]
        del self._groups[key]
        self._free.append(g)

    # -- whole-table build -------------------------------------------------------------------
    def plan(self, p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, list[tuple], int]:
        """Group layout for routes (prefix bytes ``p`` (N, width/8), depths ``d``).

        Returns level-0 indices, per level ``(parent entries, first route, route->group, routes)``
        and the number of groups. Groups get ids 0.. in level order.
        """
        n = len(d)
        idx0 = (p[:, 0].astype(np.int64) << 16) | (p[:, 1].astype(np.int64) << 8) | p[:, 2]
        levels: list[tuple] = []
        total = 0
        sel = np.arange(n)
        cur = idx0
        for lv in range(1, self.nlevels):
            keep = d[sel] > 16 + 8 * lv
            sel, cur = sel[keep], cur[keep]
            if sel.size == 0:
                break
            uniq, first, inv = np.unique(cur, return_index=True, return_inverse=True)
            inv = inv.reshape(-1)
            gids = total + np.arange(uniq.size, dtype=np.int64)
            total += int(uniq.size)
            levels.append((uniq, first, inv, sel))
            cur = gids[inv] * _GRP + p[sel, 2 + lv]
        return idx0, levels, total

    def rebuild(self, p: np.ndarray, d: np.ndarray, nh: np.ndarray) -> None:
        """Rewrite every table from routes sorted by depth (the caller checked the pool)."""
        idx0, levels, total = self.plan(p, d)
        vals = (nh << np.uint64(1)).astype(self.dtype)
        if self._written:  # else still as built (a zero table stays untouched, costing nothing)
            self.tbl24.fill(self.default_nh << 1)
            self.dep24.fill(0)
        self._written = True
        self._groups.clear()
        self._paint_level(self.tbl24, self.dep24, idx0, d, vals, 0, 24)
        base = 0
        for lv, (uniq, first, inv, sel) in enumerate(levels, 1):
            gids = base + np.arange(uniq.size, dtype=np.int64)
            base += uniq.size
            pt, pd = (self.tbl24, self.dep24) if lv == 1 else (self.tbl8, self.dep8)
            self._t8[gids] = pt[uniq][:, None]
            self._d8[gids] = pd[uniq][:, None]
            pt[uniq] = ((gids << 1) | 1).astype(self.dtype)
            refs = np.bincount(inv, minlength=uniq.size)
            nb = 2 + lv  # bytes of prefix above this level
            kb = np.ascontiguousarray(p[sel[first], :nb]).tobytes()
            keys = [int.from_bytes(kb[i : i + nb], "big") for i in range(0, len(kb), nb)]
            self._groups.update(
                zip(
                    ((lv, k) for k in keys),
                    ([g, r] for g, r in zip(gids.tolist(), refs.tolist(), strict=True)),
                    strict=True,
                )
            )
            starts = gids[inv] * _GRP + p[sel, 2 + lv]
            self._paint_level(self.tbl8, self.dep8, starts, d[sel], vals[sel], 16 + 8 * lv, 8)
        self._free = list(range(self.num_tbl8 - 1, total - 1, -1))

    @staticmethod
    def _paint_level(
        t: np.ndarray,
        dp: np.ndarray,
        starts: np.ndarray,
        d: np.ndarray,
        vals: np.ndarray,
        before: int,
        stride: int,
    ) -> None:
        """Paint the routes whose depth ends in this level, shortest first (longer win)."""
        lo_d, hi_d = (0 if before == 0 else before + 1), before + stride
        for depth in range(lo_d, hi_d + 1):
            lo, hi = np.searchsorted(d, [depth, depth + 1])
            if lo == hi:
                continue
            span = 1 << (before + stride - depth)
            st, vv = starts[lo:hi], vals[lo:hi]
            if span >= _SLICE_SPAN:
                for s, v in zip(st.tolist(), vv.tolist(), strict=True):
                    t[s : s + span] = v
                    dp[s : s + span] = depth + 1
                continue
            rows = max(1, _CHUNK // span)
            ar = np.arange(span, dtype=np.int64)
            for c in range(0, len(st), rows):
                idx = (st[c : c + rows, None] + ar).ravel()
                t[idx] = np.repeat(vv[c : c + rows], span)
                dp[idx] = depth + 1

    # -- introspection -----------------------------------------------------------------------
    @property
    def tbl8_used(self) -> int:
        return self.num_tbl8 - len(self._free)

    def verify(self) -> None:
        """Check the bookkeeping against the RIB (slow; for tests). Raises AssertionError."""
        want: dict[tuple[int, int], int] = {}
        for r in self.rib:
            for k in self._keys(r.prefix, r.depth):
                want[k] = want.get(k, 0) + 1
        got = {k: v[1] for k, v in self._groups.items()}
        assert got == want, f"group route counts {got} != {want}"
        ids = [v[0] for v in self._groups.values()]
        assert len(set(ids)) == len(ids), "a group id is used twice"
        assert not set(ids) & set(self._free), "a used group is also free"
        assert len(ids) + len(self._free) == self.num_tbl8, "groups leaked"
        for (lv, pfx), (g, _) in self._groups.items():
            if lv == 1:
                parent = int(self.tbl24[pfx])
            else:
                pg = self._groups[(lv - 1, pfx >> 8)][0]
                parent = int(self.tbl8[pg * _GRP + (pfx & 0xFF)])
            assert parent == (g << 1) | 1, f"group {g} of {(lv, pfx)} is not linked ({parent})"
        ext24 = np.flatnonzero(self.tbl24 & 1)
        assert len(ext24) == sum(1 for k in self._groups if k[0] == 1), "stray extended entries"


# -- the public IPv4 table ---------------------------------------------------------------------
_TYPES4 = ("dir24_8", "dummy")


class _FibBase:
    width = 32
    _types: tuple[str, ...] = _TYPES4
    _nh_sizes: tuple[int, ...] = NH_SIZES
    _rib_cls: type = Rib

    def __init__(
        self,
        name: str,
        *,
        type: str,
        max_routes: int,
        default_nh: int,
        nh_sz: int,
        num_tbl8: int | None,
    ) -> None:
        fam = "fib" if self.width == 32 else "fib6"
        kind = str(type).lower()
        if kind not in self._types:
            raise FibError(
                f"{fam} {name!r}: unknown type {type!r}",
                fix=f"use one of {', '.join(self._types)}",
            )
        if isinstance(max_routes, bool) or not isinstance(max_routes, int) or max_routes <= 0:
            raise FibError(
                f"{fam} {name!r}: max_routes must be a positive integer, got {max_routes!r}",
                fix="pass e.g. max_routes=1 << 20",
            )
        self.name = name
        self.type = kind
        self.max_routes = max_routes
        self.rib = self._rib_cls(max_routes, name=name)
        self._dir: _Dir | None = None
        if kind == "dummy":
            self.nh_sz = 8
            self.max_nh = (1 << 64) - 1
            self.default_nh = parse_nh(default_nh, self.max_nh, FibError)
            self.num_tbl8 = 0
            return
        if nh_sz not in self._nh_sizes:
            raise FibError(
                f"{fam} {name!r}: nh_sz {nh_sz!r} is not supported",
                fix=f"next-hop size in bytes: one of {self._nh_sizes}",
            )
        self.nh_sz = nh_sz
        self.max_nh = (1 << (8 * nh_sz - 1)) - 1  # one bit is the extended flag
        self.default_nh = parse_nh(default_nh, self.max_nh, FibError)
        limit = self.max_nh + 1  # a group id must fit in an entry like a next hop does
        if num_tbl8 is None:
            num_tbl8 = min(self._default_tbl8, limit)
        if (
            isinstance(num_tbl8, bool)
            or not isinstance(num_tbl8, int)
            or not (0 < num_tbl8 <= limit)
        ):
            raise FibError(
                f"{fam} {name!r}: num_tbl8 {num_tbl8!r} is invalid for nh_sz {nh_sz}",
                fix=f"pass 1 .. {limit} (a group id must fit in {8 * nh_sz - 1} bits)",
            )
        self.num_tbl8 = num_tbl8
        self._dir = _Dir(self.width, nh_sz, num_tbl8, self.default_nh, self.rib)

    _default_tbl8 = 1 << 15

    # -- argument checks ---------------------------------------------------------------------
    def _ip(self, ip: Any) -> int:
        return parse_ip(ip, self.width, FibError)

    def _route_args(self, ip: Any, depth: Any) -> tuple[int, int]:
        d = parse_depth(depth, self.width, FibError)
        return self._ip(ip) & self.rib._masks[d], d

    # -- routes ------------------------------------------------------------------------------
    def add(self, ip: Any, depth: int, nh: int) -> None:
        """Add ``ip/depth -> nh``, or change the next hop of an existing ``ip/depth``.

        Host bits of ``ip`` beyond ``depth`` are ignored. Errors leave the table unchanged.
        """
        ip, d = self._route_args(ip, depth)
        nh = parse_nh(nh, self.max_nh, FibError)
        rib = self.rib
        old = rib.lookup_exact(ip, d)
        if old is None:
            if len(rib) >= self.max_routes:
                raise FibError(
                    f"{self._what()}: full ({self.max_routes} routes)",
                    errno=errno.ENOSPC,
                    fix="create the FIB with a larger max_routes",
                )
            self._check_pool(self._dir.groups_needed(ip, d) if self._dir else 0)
            rib.insert(ip, d, nh)
        elif old.nh != nh:
            rib.set_nh(ip, d, nh)
        if self._dir is not None:
            self._dir.add(ip, d, nh, old)

    def delete(self, ip: Any, depth: int) -> None:
        """Remove ``ip/depth``; its addresses fall back to the covering route or the default."""
        ip, d = self._route_args(ip, depth)
        rib = self.rib
        if rib.lookup_exact(ip, d) is None:
            raise FibError(
                f"{self._what()}: no route {rib._fmt(ip, d)}",
                errno=errno.ENOENT,
                fix="fib.rib.lookup_exact(ip, depth) tells whether a route exists",
            )
        if self._dir is not None:
            self._dir.delete(ip, d, rib.lookup_parent(ip, d))
        rib.remove(ip, d)

    def add_bulk(self, prefixes: Any, depths: Any, nhs: Any) -> None:
        """Add (or update) many routes: the same result as ``add`` one by one, in order.

        ``depths`` and ``nhs`` may be arrays or one scalar for all. Everything is checked
        first (values, max_routes, tbl8 pool): on error nothing changes. A batch of more than
        an eighth of the resulting table rebuilds the tables with numpy; a smaller one is
        added route by route.
        """
        rib = self.rib
        keys, d, nh = rib._bulk_args(prefixes, depths, nhs, FibError, self.max_nh)
        new = rib._new_count(keys, d)
        if len(rib) + new > self.max_routes:
            raise FibError(
                f"{self._what()}: {new} new routes exceed max_routes {self.max_routes} "
                f"({len(rib)} present)",
                errno=errno.ENOSPC,
                fix="create the FIB with a larger max_routes",
            )
        dr = self._dir
        if dr is None:
            rib._insert_checked(keys, d, nh)
            return
        if len(keys) * 8 < len(rib) + new:
            need: set[tuple[int, int]] = set()
            for k, dd in zip(keys, d.tolist(), strict=True):
                need.update(x for x in dr._keys(k, dd) if x not in dr._groups)
            self._check_pool(len(need))
            for k, dd, n in zip(keys, d.tolist(), nh.tolist(), strict=True):
                old = rib.lookup_exact(k, dd)
                if old is None:
                    rib.insert(k, dd, n)
                elif old.nh != n:
                    rib.set_nh(k, dd, n)
                dr.add(k, dd, n, old)
            return
        p_old, d_old, _ = self._rib_arrays()
        p_all = np.concatenate([p_old, self._key_bytes(keys)])
        _, _, total = dr.plan(p_all, np.concatenate([d_old, d]))
        self._check_pool(total - dr.tbl8_used)
        rib._insert_checked(keys, d, nh)
        dr.rebuild(*self._rib_arrays())

    def rebuild(self) -> None:
        """Recompute the data-plane tables from the RIB (also compacts the group ids)."""
        if self._dir is not None:
            self._dir.rebuild(*self._rib_arrays())

    def _check_pool(self, need: int) -> None:
        if self._dir is not None and need > len(self._dir._free):
            raise FibError(
                f"{self._what()}: needs {need} more tbl8 groups, {len(self._dir._free)} of "
                f"{self.num_tbl8} free",
                errno=errno.ENOSPC,
                fix="create the FIB with a larger num_tbl8 (memory: 256 * (nh_sz + 1) bytes "
                "per group)",
            )

    def _rib_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All routes as (prefix bytes (N, width/8), depth int64, nh uint64), by depth."""
        ps, ds, ns = [], [], []
        rib = self.rib
        for dd, t in enumerate(rib._t):
            if not t:
                continue
            ps.append(self._key_bytes(list(t.keys())))
            ds.append(np.full(len(t), dd, np.int64))
            ns.append(np.fromiter(t.values(), np.uint64, len(t)))
        if not ps:
            nb = self.width // 8
            return np.zeros((0, nb), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.uint64)
        return np.concatenate(ps), np.concatenate(ds), np.concatenate(ns)

    def _key_bytes(self, keys: list[int]) -> np.ndarray:
        a = np.array(keys, dtype=np.uint32).astype(">u4")
        return a.view(np.uint8).reshape(-1, 4)

    def _what(self) -> str:
        return f"{'fib' if self.width == 32 else 'fib6'} {self.name!r}"

    # -- introspection -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rib)

    @property
    def tbl8_used(self) -> int:
        return self._dir.tbl8_used if self._dir else 0

    @property
    def tbl8_free(self) -> int:
        return len(self._dir._free) if self._dir else 0

    def memory(self) -> dict[str, int]:
        """Bytes of each table as allocated (untouched pages of zero tables cost nothing)."""
        if self._dir is None:
            return {"tbl24": 0, "tbl8": 0, "shadow": 0, "total": 0}
        dr = self._dir
        m = {
            "tbl24": dr.tbl24.nbytes,
            "tbl8": dr.tbl8.nbytes,
            "shadow": dr.dep24.nbytes + dr.dep8.nbytes,
        }
        m["total"] = sum(m.values())
        return m

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Read-only views of the data plane ``(tbl24, tbl8)`` (DPDK ``get_dp``)."""
        if self._dir is None:
            raise FibError(f"{self._what()}: a dummy FIB has no tables", fix="use type dir24_8")
        a, b = self._dir.tbl24.view(), self._dir.tbl8.view()
        a.flags.writeable = b.flags.writeable = False
        return a, b

    def _verify(self) -> None:
        if self._dir is not None:
            self._dir.verify()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, type={self.type}, routes={len(self)}, "
            f"nh_sz={self.nh_sz}, tbl8 {self.tbl8_used}/{self.num_tbl8})"
        )


class Fib(_FibBase):
    """IPv4 FIB (``cne_fib``): ``type`` ``"dir24_8"`` (default) or ``"dummy"`` (RIB lookups).

    ``nh_sz`` is the entry size in bytes (1, 2, 4, 8): next hops up to ``2**(8*nh_sz-1)-1``;
    ``num_tbl8`` groups of 256 entries serve the /24s holding routes longer than /24 (default
    32768, at most ``2**(8*nh_sz-1)``). ``default_nh`` is returned for addresses no route covers.
    """

    def __init__(
        self,
        name: str = "fib",
        *,
        type: str = "dir24_8",
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

    def lookup_bulk(self, addrs: np.ndarray) -> np.ndarray:
        """Next hops for a vector of host-order IPv4 addresses (uint32; other ints are checked).

        Returns an array of the table's entry dtype (uint8/16/32/64 for nh_sz 1/2/4/8; uint64
        for the dummy type). Misses give ``default_nh``.
        """
        a = addrs if type(addrs) is np.ndarray and addrs.dtype == np.uint32 else None
        if a is None or a.ndim != 1:
            a = ip4_vector(addrs, FibError)
        dr = self._dir
        if dr is None:
            return self.rib.lookup_bulk(a, self.default_nh)[0]
        one = dr.one  # typed scalars: no per-call dtype resolution of Python ints
        v = dr.tbl24.take(a >> _U32_8)
        m = (v & one).astype(bool)
        if m.any():
            g = (v[m] >> one).astype(np.intp)
            v[m] = dr.tbl8.take((g << 8) | (a[m] & _U32_FF))
        return v >> one

    def lookup_bulk_net(self, addrs: np.ndarray) -> np.ndarray:
        """``lookup_bulk`` for addresses in network byte order, as gathered from headers.

        Accepts an (N, 4) uint8 matrix (one address per row), a 1-D ``>u4`` array, or a 1-D
        native uint32 array whose memory holds the header bytes (as ``view(np.uint32)`` of
        packet data gives): it is byte-swapped on little-endian hosts.
        """
        a = np.asarray(addrs)
        if a.dtype == np.uint8 and a.ndim == 2 and a.shape[1] == 4:
            h = np.ascontiguousarray(a).view(">u4").reshape(-1).astype(np.uint32)
        elif a.ndim == 1 and a.dtype == np.dtype(">u4"):
            h = a.astype(np.uint32)
        elif a.ndim == 1 and a.dtype == np.uint32:
            h = a.byteswap() if np.little_endian else a
        else:
            raise FibError(
                f"network-order IPv4 addresses: unsupported shape {a.shape} dtype {a.dtype}",
                fix="pass an (N, 4) uint8 matrix or a 1-D uint32 / >u4 array",
            )
        return self.lookup_bulk(h)

    def lookup(self, ip: Any) -> int:
        """Next hop for one address (scalar convenience; use ``lookup_bulk`` on bursts)."""
        a = self._ip(ip)
        dr = self._dir
        if dr is None:
            r = self.rib.lookup(a)
            return self.default_nh if r is None else r.nh
        v = int(dr.tbl24[a >> 8])
        if v & 1:
            v = int(dr.tbl8[(v >> 1) * _GRP + (a & 0xFF)])
        return v >> 1
