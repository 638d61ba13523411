"""FIB (DIR-24-8) and FIB6 (stride trie): lookups checked against pytricia on random tables."""

from __future__ import annotations

import errno
import ipaddress

import numpy as np
import pytest
import pytricia
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.errors import CndpError
from cndp.lib.fib import Fib, FibError
from cndp.lib.fib6 import Fib6
from cndp.lib.rib import ints_to_rows6, parse_prefix, rows6_to_ints

A = int(ipaddress.IPv4Address("198.18.0.0"))
A6 = int(ipaddress.IPv6Address("fd00:198:18::"))


def ip(s: str) -> int:
    return int(ipaddress.ip_address(s))


def u32(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.uint32)


# -- configuration (DPDK test_fib: create rejects bad parameters) --------------------------------
def test_create_rejects_bad_parameters():
    assert issubclass(FibError, CndpError)
    with pytest.raises(FibError, match="unknown type"):
        Fib(type="lpm")
    with pytest.raises(FibError, match="max_routes"):
        Fib(max_routes=0)
    for nh_sz in (0, 3, 16):
        with pytest.raises(FibError, match="nh_sz") as e:
            Fib(nh_sz=nh_sz)
        assert "1, 2, 4, 8" in e.value.fix
    with pytest.raises(FibError, match="nh_sz"):
        Fib6(nh_sz=1)  # DPDK's trie has 2/4/8-byte entries only
    with pytest.raises(FibError, match="num_tbl8"):
        Fib(num_tbl8=0)
    with pytest.raises(FibError, match="num_tbl8"):
        Fib(nh_sz=1, num_tbl8=129)  # a group id must fit in 7 bits
    assert Fib(nh_sz=1).num_tbl8 == 128
    with pytest.raises(FibError, match="next hop"):
        Fib(nh_sz=1, default_nh=128)
    assert Fib(type="DUMMY").type == "dummy"


@pytest.mark.parametrize("nh_sz", [1, 2, 4, 8])
def test_next_hop_limits_per_entry_size(nh_sz):
    f = Fib(nh_sz=nh_sz, num_tbl8=8)
    top = (1 << (8 * nh_sz - 1)) - 1  # one bit of each entry is the extended flag
    assert f.max_nh == top
    f.add("198.18.0.0", 24, top)
    f.add("198.18.1.1", 32, top - 1)
    with pytest.raises(FibError, match="next hop") as e:
        f.add("198.18.2.0", 24, top + 1)
    assert e.value.fix
    with pytest.raises(FibError, match="next hop"):
        f.add("198.18.2.0", 24, -1)
    with pytest.raises(FibError, match="next hop"):
        f.add_bulk(u32(A + 512, A + 768), 24, [1, top + 1])
    assert len(f) == 2
    got = f.lookup_bulk(u32(A + 5, ip("198.18.1.1"), ip("198.18.1.2"), 0))
    assert got.dtype == np.dtype(f"uint{8 * nh_sz}")
    assert got.tolist() == [top, top - 1, 0, 0]


def test_add_delete_reject_bad_arguments():
    f = Fib(num_tbl8=4)
    for d in (33, -1, None, "24"):
        with pytest.raises(FibError, match="depth"):
            f.add("198.18.0.0", d, 1)
    for a in (2**32, -5, "198.18.0.256", "fd00::", b"\x01\x02"):
        with pytest.raises(FibError):
            f.add(a, 24, 1)
    with pytest.raises(FibError) as e:
        f.delete("198.18.0.0", 24)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FibError, match="out of range"):
        f.lookup_bulk(np.array([1, 2**32], dtype=np.int64))
    with pytest.raises(FibError, match="1-D"):
        f.lookup_bulk(np.zeros((2, 2), np.uint32))
    with pytest.raises(FibError, match="network-order"):
        f.lookup_bulk_net(np.zeros((2, 3), np.uint8))
    with pytest.raises(FibError, match="depth"):
        f.add_bulk(u32(A), 40, 1)
    with pytest.raises(FibError, match="expected 2"):
        f.add_bulk(u32(A, A + 256), [24, 24, 24], 1)
    with pytest.raises(FibError, match="max_routes"):
        Fib(max_routes=1).add_bulk(u32(A, A + 256), 24, 1)
    assert len(f) == 0


# -- semantics -----------------------------------------------------------------------------------
def test_edges_overlaps_and_delete_restoring_covering_routes():
    f = Fib(num_tbl8=16, default_nh=99)
    q = ["1.1.1.1", "198.18.7.1", "198.18.7.129", "198.18.7.200", "198.18.7.201", "198.19.0.1"]

    def look() -> list[int]:
        return f.lookup_bulk(u32(*map(ip, q))).tolist()

    assert look() == [99] * 6
    f.add("0.0.0.0", 0, 1)
    assert look() == [1] * 6
    f.add("198.18.0.0", 15, 2)
    f.add("198.18.7.0", 24, 3)
    f.add("198.18.7.128", 25, 4)
    f.add("198.18.7.200", 32, 5)
    assert look() == [1, 3, 4, 5, 4, 2]
    assert f.tbl8_used == 1
    # a shorter route added later keeps the longer ones inside it
    f.add("198.18.0.0", 16, 6)
    assert look() == [1, 3, 4, 5, 4, 2]
    f.delete("198.18.7.0", 24)  # 198.18.7.1 falls back to /16, not /15 or /0
    assert look() == [1, 6, 4, 5, 4, 2]
    f.delete("198.18.7.128", 25)
    assert look() == [1, 6, 6, 5, 6, 2]
    f.delete("198.18.7.200", 32)  # the group is uniform again: folded back, freed
    assert look() == [1, 6, 6, 6, 6, 2] and f.tbl8_used == 0
    f.delete("198.18.0.0", 16)
    f.delete("0.0.0.0", 0)  # the default next hop again outside the /15
    assert look() == [99, 2, 2, 2, 2, 2]
    f._verify()
    assert [f.lookup(x) for x in q] == look()


def test_changing_a_next_hop_keeps_more_specifics():
    f = Fib(num_tbl8=4)
    f.add("198.18.0.0", 16, 1)
    f.add("198.18.3.0", 24, 2)
    f.add("198.18.3.9", 32, 3)
    f.add("198.18.3.77", 16, 7)  # same /16 (host bits ignored): update
    assert len(f) == 3
    assert f.lookup_bulk(u32(ip("198.18.0.1"), ip("198.18.3.1"), ip("198.18.3.9"))).tolist() == [
        7,
        2,
        3,
    ]
    f.add("198.18.3.0", 24, 8)
    assert f.lookup_bulk(u32(ip("198.18.3.1"), ip("198.18.3.9"))).tolist() == [8, 3]
    f._verify()


def test_dpdk_style_lookup_while_adding_and_deleting_every_depth():
    """Routes X/0 .. X/32 on one address: each add and delete changes exactly the right hops."""
    x = ip("198.18.10.11")
    f = Fib(nh_sz=2, num_tbl8=4, default_nh=7)
    # probe[d] agrees with x on exactly the first d bits (d = 32: x itself)
    probe = u32(*[x ^ (1 << (31 - d)) if d < 32 else x for d in range(33)])

    def expect(present: set[int]) -> list[int]:
        out = []
        for d in range(33):
            cover = [k for k in present if k <= d]
            out.append(100 + max(cover) if cover else 7)
        return out

    present: set[int] = set()
    for d in range(33):
        f.add(x, d, 100 + d)
        present.add(d)
        assert f.lookup_bulk(probe).tolist() == expect(present)
    rng = np.random.default_rng(0)
    for d in rng.permutation(33).tolist():
        f.delete(x, d)
        present.discard(d)
        assert f.lookup_bulk(probe).tolist() == expect(present)
    assert f.tbl8_used == 0 and len(f) == 0
    f._verify()


def test_tbl8_pool_exhaustion_leaves_the_table_unchanged():
    f = Fib(num_tbl8=2, nh_sz=2)
    f.add("198.18.0.0", 25, 1)
    f.add("198.18.1.0", 25, 2)
    f.add("198.18.1.128", 26, 3)  # the same /24: no new group
    q = u32(*(A + i for i in range(0, 1024, 16)))
    before = f.lookup_bulk(q).copy()
    with pytest.raises(FibError, match="tbl8") as e:
        f.add("198.18.2.0", 25, 4)
    assert e.value.errno == errno.ENOSPC and "num_tbl8" in e.value.fix
    with pytest.raises(FibError, match="tbl8"):
        f.add_bulk(u32(A + 0x300, A + 0x400, A + 0x500), [25, 25, 24], 9)
    with pytest.raises(FibError, match="tbl8"):  # the same through the rebuild path
        f.add_bulk(u32(*(A + (i << 8) for i in range(8))), 25, 9)
    assert (f.lookup_bulk(q) == before).all() and len(f) == 3 and f.tbl8_used == 2
    f._verify()
    f.delete("198.18.0.0", 25)
    assert f.tbl8_used == 1
    f.add("198.18.2.0", 25, 4)  # the freed group is reused
    assert f.lookup(ip("198.18.2.1")) == 4 and f.tbl8_used == 2


def test_groups_are_recycled_after_many_adds_and_deletes():
    f = Fib(num_tbl8=64)
    rng = np.random.default_rng(1)
    routes = {(A + (int(b) << 8) + int(h), int(d)) for b, h, d in rng.integers(0, 40, (300, 3))}
    routes = {((p >> (32 - (25 + d % 8))) << (32 - (25 + d % 8)), 25 + d % 8) for p, d in routes}
    for p, d in routes:
        f.add(p, d, d)
    assert 0 < f.tbl8_used <= 40
    for p, d in routes:
        f.delete(p, d)
    assert f.tbl8_used == 0 and len(f) == 0
    assert not (f.tables()[0] & 1).any()
    f._verify()


def test_network_order_helpers():
    f = Fib(num_tbl8=4)
    f.add("198.18.1.0", 24, 11)
    f.add("198.18.1.9", 32, 12)
    hosts = u32(ip("198.18.1.9"), ip("198.18.1.10"), ip("10.0.0.1"))
    raw = hosts.astype(">u4").view(np.uint8).reshape(-1, 4)  # header bytes
    assert f.lookup_bulk_net(raw).tolist() == [12, 11, 0]
    assert f.lookup_bulk_net(hosts.astype(">u4")).tolist() == [12, 11, 0]
    as_loaded = raw.copy().view(np.uint32).ravel()  # what a native u32 gather of headers gives
    assert f.lookup_bulk_net(as_loaded).tolist() == [12, 11, 0]
    # strided rows (a column slice of a header matrix) work too
    head = np.zeros((3, 20), np.uint8)
    head[:, 16:20] = raw
    assert f.lookup_bulk_net(head[:, 16:20]).tolist() == [12, 11, 0]
    assert f.lookup_bulk(["198.18.1.9", 0]).tolist() == [12, 0]
    assert f.lookup_bulk(hosts.astype(np.int64)).tolist() == [12, 11, 0]


def test_dummy_type_matches_dir24_8():
    rng = np.random.default_rng(5)
    p = (A + rng.integers(0, 1 << 17, 2000)).astype(np.uint32)
    d = rng.choice([15, 16, 20, 24, 25, 28, 32], 2000)
    nh = rng.integers(0, 1 << 20, 2000)
    f, g = Fib(num_tbl8=2048, default_nh=5), Fib(type="dummy", default_nh=5)
    f.add_bulk(p, d, nh)
    g.add_bulk(p, d, nh)
    g.delete(int(p[0]), int(d[0]))
    f.delete(int(p[0]), int(d[0]))
    q = (A - 5000 + rng.integers(0, (1 << 17) + 10000, 4000)).astype(np.uint32)
    assert (f.lookup_bulk(q) == g.lookup_bulk(q)).all()
    assert g.lookup_bulk(q).dtype == np.uint64
    assert g.lookup(int(q[0])) == f.lookup(int(q[0]))
    with pytest.raises(FibError, match="dummy"):
        g.tables()


# -- random tables against pytricia --------------------------------------------------------------
class Oracle:
    """pytricia with the FIB's semantics (host bits cleared, a default next hop)."""

    def __init__(self, width: int, default: int) -> None:
        self.t = pytricia.PyTricia(width)
        self.width, self.default = width, default

    def _net(self, p: int, d: int) -> str:
        cls = ipaddress.IPv4Network if self.width == 32 else ipaddress.IPv6Network
        return str(cls((p, d), strict=False))

    def add(self, p: int, d: int, nh: int) -> None:
        self.t[self._net(p, d)] = nh

    def delete(self, p: int, d: int) -> None:
        del self.t[self._net(p, d)]

    def lookup(self, addrs: list[int]) -> list[int]:
        cls = ipaddress.IPv4Address if self.width == 32 else ipaddress.IPv6Address
        out = []
        for a in addrs:
            v = self.t.get(str(cls(a)))
            out.append(self.default if v is None else v)
        return out


DEPTHS4 = [0, 1, 8, 14, 15, 16, 17, 20, 23, 24, 25, 26, 27, 29, 30, 31, 32]


def _probes4(routes: list[tuple[int, int]], extra: list[int]) -> list[int]:
    out = list(extra)
    for p, d in routes:
        m = (0xFFFFFFFF << (32 - d)) & 0xFFFFFFFF
        s = p & m
        e = s + (1 << (32 - d)) - 1
        out += [s, e, (s - 1) & 0xFFFFFFFF, (e + 1) & 0xFFFFFFFF, (s + e) // 2]
    return out


@settings(max_examples=40, deadline=None)
@given(
    adds=st.lists(
        st.tuples(
            st.integers(0, (1 << 17) - 1),
            st.sampled_from(DEPTHS4[2:]) | st.sampled_from(DEPTHS4),
            st.integers(0, 2**31 - 1),
        ),
        max_size=50,
    ),
    dels=st.lists(st.integers(0, 49), max_size=40),
    extra=st.lists(st.integers(0, (1 << 18) - 1), max_size=30),
    default=st.sampled_from([0, 3]),
)
def test_fib4_against_pytricia(adds, dels, extra, default):
    f = Fib(nh_sz=4, num_tbl8=64, default_nh=default)
    o = Oracle(32, default)
    keys: list[tuple[int, int]] = []
    for off, d, nh in adds:
        p = (A + off) & ((0xFFFFFFFF << (32 - d)) & 0xFFFFFFFF)
        f.add(A + off, d, nh)
        o.add(p, d, nh)
        keys.append((p, d))
    for i in dels:
        if i < len(keys) and keys[i] in f.rib:
            f.delete(*keys[i])
            o.delete(*keys[i])
    probes = _probes4(keys, [A - (1 << 16) + x for x in extra])
    if probes:
        got = f.lookup_bulk(u32(*probes)).tolist()
        assert got == o.lookup(probes)
    f._verify()


def test_add_bulk_equals_route_by_route_and_pytricia_on_a_larger_table():
    rng = np.random.default_rng(11)
    n = 20000
    p = (A + rng.integers(0, 1 << 17, n)).astype(np.uint32)
    d = rng.choice([15, 16, 18, 20, 22, 23, 24, 24, 24, 25, 26, 28, 30, 32], n)
    nh = rng.integers(0, 1 << 30, n)
    bulk = Fib(num_tbl8=1024)
    bulk.add_bulk(p, d, nh)  # the numpy rebuild path
    one = Fib(num_tbl8=1024)
    for a, b, c in zip(p[:3000].tolist(), d[:3000].tolist(), nh[:3000].tolist(), strict=True):
        one.add(a, b, c)
    one.add_bulk(p[3000:], d[3000:], nh[3000:])  # large batch: rebuild over existing routes
    one.add_bulk(p[:100], d[:100], nh[:100] + 1)  # small batch: route by route (updates)
    bulk.add_bulk(p[:100], d[:100], nh[:100] + 1)
    every = np.arange(A - 256, A + (1 << 17) + 256, dtype=np.uint32)  # every address in play
    assert (bulk.lookup_bulk(every) == one.lookup_bulk(every)).all()
    assert bulk.tbl8_used == one.tbl8_used
    o = Oracle(32, 0)
    for r in bulk.rib:
        o.add(r.prefix, r.depth, r.nh)
    sample = every[rng.integers(0, every.size, 20000)]
    assert bulk.lookup_bulk(sample).tolist() == o.lookup(sample.tolist())
    bulk._verify()
    one._verify()
    # delete half of the routes through the incremental path: still equal to a fresh rebuild
    routes = list(bulk.rib)
    for r in routes[::2]:
        bulk.delete(r.prefix, r.depth)
    fresh = Fib(num_tbl8=1024)
    pp, dd, nn = bulk._rib_arrays()
    fresh.add_bulk(pp.view(">u4").ravel().astype(np.uint32), dd, nn)
    assert (bulk.lookup_bulk(every) == fresh.lookup_bulk(every)).all()
    assert bulk.tbl8_used == fresh.tbl8_used
    bulk._verify()


# -- IPv6 ----------------------------------------------------------------------------------------
def rows(*addrs: int) -> np.ndarray:
    return ints_to_rows6(list(addrs))


def test_fib6_edges_and_pool():
    f = Fib6(nh_sz=2, num_tbl8=13, default_nh=9)
    host = ip("fd00:198:18::1:2")
    f.add(host, 128, 1)  # 13 groups: one per byte below the first 24 bits
    assert f.tbl8_used == 13
    with pytest.raises(FibError, match="tbl8") as e:
        f.add("fd01:198:18::", 48, 2)  # another /24: needs 3 more
    assert e.value.errno == errno.ENOSPC
    f.add("fd00:198:18::", 48, 3)  # on the existing path: free of charge
    f.add("fd00:100::", 24, 4)  # the host's /24 (fd 00 01)
    f.add("fd00:180::", 25, 5)  # first byte below /24: shares the path's level-1 group
    f.add("::", 0, 6)
    q = rows(host, host + 1, ip("fd00:198:19::"), ip("fd00:100::"), ip("fd00:1ff::"), ip("::1"))
    assert f.lookup_bulk(q).tolist() == [1, 3, 5, 4, 5, 6]
    assert [f.lookup(a) for a in rows6_to_ints(q)] == [1, 3, 5, 4, 5, 6]
    f.delete(host, 128)
    assert f.lookup_bulk(q).tolist() == [3, 3, 5, 4, 5, 6]
    assert f.tbl8_used == 3  # the /48 keeps levels 1..3
    f.delete("fd00:198:18::", 48)
    f.delete("fd00:180::", 25)
    assert f.tbl8_used == 0
    f.delete("::", 0)
    assert f.lookup_bulk(q).tolist() == [4, 4, 4, 4, 4, 9]
    with pytest.raises(FibError, match="next hop"):
        f.add("fd00::", 64, 1 << 15)
    with pytest.raises(FibError, match="depth"):
        f.add("fd00::", 129, 1)
    with pytest.raises(FibError, match="not an IPv6"):
        f.add("198.18.0.1", 24, 1)
    with pytest.raises(FibError, match=r"\(N, 16\)"):
        f.lookup_bulk(np.zeros((2, 4), np.uint8))
    f._verify()


def _at6(off: int) -> int:
    # 24 bits of offset spread over the first 24 bits after the /48 and the last 8 bits, so
    # routes share leading bytes and land on many trie levels
    return A6 | ((off >> 8) << 64) | ((off >> 12) << 100) | (off & 0xFF)


DEPTHS6 = [0, 16, 24, 25, 32, 47, 48, 49, 56, 63, 64, 65, 72, 100, 104, 120, 127, 128]


@settings(max_examples=30, deadline=None)
@given(
    adds=st.lists(
        st.tuples(st.integers(0, (1 << 24) - 1), st.sampled_from(DEPTHS6), st.integers(0, 2**31)),
        max_size=40,
    ),
    dels=st.lists(st.integers(0, 39), max_size=30),
    extra=st.lists(st.integers(0, (1 << 24) - 1), max_size=20),
)
def test_fib6_against_pytricia(adds, dels, extra):
    f = Fib6(nh_sz=8, num_tbl8=512, default_nh=77)
    o = Oracle(128, 77)
    keys: list[tuple[int, int]] = []
    full = (1 << 128) - 1
    for off, d, nh in adds:
        p = _at6(off) & (full ^ ((1 << (128 - d)) - 1))
        f.add(_at6(off), d, nh)
        o.add(p, d, nh)
        keys.append((p, d))
    for i in dels:
        if i < len(keys) and keys[i] in f.rib:
            f.delete(*keys[i])
            o.delete(*keys[i])
    probes = [_at6(x) for x in extra]
    for p, d in keys:
        e = p + (1 << (128 - d)) - 1
        probes += [p, e, (p - 1) & full, (e + 1) & full]
    if probes:
        assert f.lookup_bulk(rows(*probes)).tolist() == o.lookup(probes)
    f._verify()


def test_fib6_add_bulk_equals_route_by_route():
    rng = np.random.default_rng(2)
    n = 3000
    offs = rng.integers(0, 1 << 24, n)
    ks = [_at6(int(x)) for x in offs]
    d = rng.choice([32, 40, 48, 56, 64, 72, 96, 127, 128], n)
    nh = rng.integers(0, 1 << 20, n)
    bulk, one = Fib6(num_tbl8=1 << 14), Fib6(num_tbl8=1 << 14)
    bulk.add_bulk(rows(*ks), d, nh)
    for k, dd, h in zip(ks, d.tolist(), nh.tolist(), strict=True):
        one.add(k, dd, h)
    probes = [k + int(x) for k, x in zip(ks, rng.integers(0, 1 << 10, n), strict=True)]
    probes += [_at6(int(x)) for x in rng.integers(0, 1 << 24, 3000)]
    q = rows(*probes)
    assert (bulk.lookup_bulk(q) == one.lookup_bulk(q)).all()
    assert bulk.tbl8_used == one.tbl8_used
    o = Oracle(128, 0)
    for r in one.rib:
        o.add(r.prefix, r.depth, r.nh)
    assert one.lookup_bulk(q).tolist() == o.lookup(probes)
    assert Fib6(type="dummy").lookup_bulk(q).tolist() == [0] * len(probes)
    dummy = Fib6(type="dummy")
    dummy.add_bulk(rows(*ks), d, nh)
    assert (dummy.lookup_bulk(q) == one.lookup_bulk(q)).all()
    bulk._verify()
    for r in list(bulk.rib):
        bulk.delete(r.prefix, r.depth)
    assert bulk.tbl8_used == 0 and not (bulk.tables()[0] & 1).any()


def test_memory_report_and_repr():
    f = Fib(nh_sz=2, num_tbl8=100)
    m = f.memory()
    assert m["tbl24"] == 2 * (1 << 24) and m["tbl8"] == 2 * 256 * 100
    assert m["shadow"] == (1 << 24) + 256 * 100
    assert m["total"] == m["tbl24"] + m["tbl8"] + m["shadow"]
    f.add(*parse_prefix("198.18.0.0/15"), 1)
    assert "routes=1" in repr(f) and "tbl8 0/100" in repr(f)
    t24, _ = f.tables()
    with pytest.raises(ValueError):
        t24[0] = 1  # read-only view of the data plane
