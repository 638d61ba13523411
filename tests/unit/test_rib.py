"""RIB (cndp.lib.rib): DPDK rte_rib semantics, checked against py-radix on random tables."""

from __future__ import annotations

import errno
import ipaddress

import numpy as np
import pytest
import radix
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.errors import CndpError
from cndp.lib.rib import Rib, Rib6, RibError, Route, parse_prefix

A = int(ipaddress.IPv4Address("198.18.0.0"))
A6 = int(ipaddress.IPv6Address("fd00:198:18::"))


def net(r: Route) -> str:
    return str(r.network)


def mknet(p: int, d: int, width: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    cls = ipaddress.IPv4Network if width == 32 else ipaddress.IPv6Network
    return cls((p, d), strict=False)  # never ip_network((0, 0)): that is always IPv4


# -- DPDK test_rib ports: parameters, basic ops, traversal ---------------------------------------
def test_bad_parameters_are_rejected_with_a_fix():
    with pytest.raises(RibError, match="max_routes"):
        Rib(0)
    r = Rib()
    for bad_depth in (33, -1, True, "8", 8.0):
        with pytest.raises(RibError, match="depth") as e:
            r.insert("10.0.0.0", bad_depth, 1)
        assert e.value.fix
    for bad_ip in (2**32, -1, "300.1.1.1", "fd00::1", ipaddress.IPv6Address("::1"), 1.5, None):
        with pytest.raises(RibError, match=r"not an IPv4|out of range"):
            r.insert(bad_ip, 8, 1)
    for bad_nh in (-1, 2**64, True, "1"):
        with pytest.raises(RibError, match="next hop"):
            r.insert("10.0.0.0", 8, bad_nh)
    assert len(r) == 0
    assert issubclass(RibError, CndpError)
    with pytest.raises(RibError, match="not an IPv6"):
        Rib6().insert("10.0.0.1", 8, 1)
    with pytest.raises(RibError, match="depth"):
        Rib6().insert("fd00::", 129, 1)


def test_insert_lookup_exact_parent_remove():
    r = Rib()
    r.insert("198.18.0.0", 15, 1)
    r.insert("198.18.5.0", 24, 2)
    r.insert("198.18.5.128", 25, 3)
    r.insert("198.18.5.77", 32, 4)
    assert r.lookup("198.18.5.77") == Route(int(ipaddress.IPv4Address("198.18.5.77")), 32, 4)
    assert r.lookup("198.18.5.200").nh == 3
    assert r.lookup("198.18.5.1").nh == 2
    assert r.lookup("198.19.255.255").nh == 1
    assert r.lookup("10.0.0.1") is None
    assert r.lookup_exact("198.18.5.0", 24).nh == 2
    assert r.lookup_exact("198.18.5.0", 23) is None
    assert r.lookup_exact("198.18.5.99", 24).nh == 2  # host bits ignored, as DPDK masks them
    assert net(r.lookup_parent("198.18.5.128", 25)) == "198.18.5.0/24"
    assert net(r.lookup_parent("198.18.5.0", 24)) == "198.18.0.0/15"
    assert r.lookup_parent("198.18.0.0", 15) is None
    assert net(r.lookup_parent("198.18.5.129", 32)) == "198.18.5.128/25"  # not a route itself
    with pytest.raises(RibError) as e:
        r.insert("198.18.5.0", 24, 9)
    assert e.value.errno == errno.EEXIST
    assert r.set_nh("198.18.5.0", 24, 9).nh == 9
    assert r.lookup("198.18.5.1").nh == 9
    assert r.remove("198.18.5.0", 24) == Route(int(ipaddress.IPv4Address("198.18.5.0")), 24, 9)
    assert r.lookup("198.18.5.1").nh == 1
    with pytest.raises(RibError) as e:
        r.remove("198.18.5.0", 24)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(RibError):
        r.set_nh("198.18.5.0", 24, 1)
    assert len(r) == 3
    assert ("198.18.5.128", 25) in r and ("198.18.5.0", 24) not in r
    assert ("garbage", 99) not in r


def test_default_route_and_host_routes():
    r = Rib()
    r.insert(0, 0, 7)
    r.insert(2**32 - 1, 32, 8)
    assert r.lookup("1.2.3.4").nh == 7
    assert r.lookup("255.255.255.255").nh == 8
    assert r.lookup_parent("255.255.255.255", 32).depth == 0
    assert [net(x) for x in r] == ["0.0.0.0/0", "255.255.255.255/32"]
    r.remove("9.9.9.9", 0)
    assert r.lookup("1.2.3.4") is None


def test_max_routes_is_enforced_by_insert_and_insert_bulk():
    r = Rib(3)
    for i in range(3):
        r.insert(A + (i << 8), 24, i)
    with pytest.raises(RibError) as e:
        r.insert(A + (9 << 8), 24, 9)
    assert e.value.errno == errno.ENOSPC
    # an update of existing routes fits; one new route among them does not, and changes nothing
    assert r.insert_bulk(np.array([A, A + 256], np.uint32), 24, [5, 6]) == 0
    with pytest.raises(RibError, match="max_routes"):
        r.insert_bulk(np.array([A, A + (7 << 8)], np.uint32), 24, [1, 2])
    assert [x.nh for x in r] == [5, 6, 2]


def test_traversal_subnets_cover_and_get_nxt():
    r = Rib()
    for p, nh in [
        ("198.18.0.0/16", 1),
        ("198.18.0.0/24", 2),
        ("198.18.0.0/25", 3),
        ("198.18.0.128/25", 4),
        ("198.18.1.0/24", 5),
        ("198.18.1.7/32", 6),
        ("198.19.0.0/16", 7),
        ("10.0.0.0/8", 8),
    ]:
        r.insert(*parse_prefix(p), nh)
    allin = [net(x) for x in r.subnets("198.18.0.0", 16)]
    assert allin == [
        "198.18.0.0/24",
        "198.18.0.0/25",
        "198.18.0.128/25",
        "198.18.1.0/24",
        "198.18.1.7/32",
    ]
    assert [net(x) for x in r.subnets("198.18.0.0", 16, cover=True)] == [
        "198.18.0.0/24",
        "198.18.1.0/24",
    ]
    assert [net(x) for x in r.subnets("198.18.0.0", 15, cover=True)] == [
        "198.18.0.0/16",
        "198.19.0.0/16",
    ]
    assert [net(x) for x in r.subnets(cover=True)] == [
        "10.0.0.0/8",
        "198.18.0.0/16",
        "198.19.0.0/16",
    ]
    assert list(r.subnets("198.18.1.7", 32)) == []
    for cover in (False, True):
        seen, last = [], None
        while (last := r.get_nxt("198.18.0.0", 15, last, cover=cover)) is not None:
            seen.append(last)
        assert seen == list(r.subnets("198.18.0.0", 15, cover=cover))
    assert next(net(x) for x in r) == "10.0.0.0/8"
    assert len(list(r)) == len(r) == 8
    # iteration sees the set at its start, skips what was removed meanwhile
    it = r.subnets("198.18.0.0", 16)
    first = next(it)
    r.remove("198.18.0.128", 25)
    assert [net(x) for x in it] == ["198.18.0.0/25", "198.18.1.0/24", "198.18.1.7/32"]
    assert net(first) == "198.18.0.0/24"


def test_route_str_and_parse_prefix():
    r = Rib6()
    x = r.insert("fd00:198:18::", 48, 3)
    assert str(x) == "fd00:198:18::/48 nh 3"
    assert parse_prefix("10.1.2.3/8") == (10 << 24, 8)
    assert parse_prefix("fd00::1/8")[1] == 8
    with pytest.raises(RibError, match="not a prefix"):
        parse_prefix("10.0.0.0/33")


def test_lookup_bulk_matches_scalar_lookup_v4_and_v6():
    rng = np.random.default_rng(7)
    r = Rib()
    p = (A + rng.integers(0, 1 << 17, 3000)).astype(np.uint32)
    d = rng.integers(14, 33, 3000)
    r.insert_bulk(p, d, rng.integers(0, 1000, 3000))
    q = (A - 1000 + rng.integers(0, (1 << 17) + 2000, 5000)).astype(np.uint32)
    nh, dep = r.lookup_bulk(q, default=12345)
    for a, n, dd in zip(q.tolist(), nh.tolist(), dep.tolist(), strict=True):
        x = r.lookup(a)
        assert (n, dd) == ((12345, -1) if x is None else (x.nh, x.depth))
    r6 = Rib6()
    ks = [A6 + (int(v) << 64) for v in rng.integers(0, 1 << 20, 500)]
    r6.insert_bulk(ks, rng.integers(40, 80, 500), np.arange(500))
    r6.insert(0, 0, 4242)
    q6 = [k + int(v) for k, v in zip(ks, rng.integers(0, 1 << 62, 500), strict=True)]
    nh6, _ = r6.lookup_bulk(q6)
    assert nh6.tolist() == [r6.lookup(a).nh for a in q6]


# -- random tables against py-radix --------------------------------------------------------------
def _oracle_check(rib, rdx: radix.Radix, width: int, probes: list[int], routes: list[tuple]):
    fam = ipaddress.IPv4Address if width == 32 else ipaddress.IPv6Address
    for a in probes:
        got = rib.lookup(a)
        want = rdx.search_best(str(fam(a)))
        assert (None if got is None else (net(got), got.nh)) == (
            None if want is None else (want.prefix, want.data["nh"])
        )
    for p, d in routes:
        pfx = str(mknet(p, d, width))
        exact = rib.lookup_exact(p, d)
        w = rdx.search_exact(pfx)
        assert (exact is None) == (w is None)
        par = rib.lookup_parent(p, d)
        cov = [n for n in rdx.search_covering(pfx) if n.prefixlen < d]
        want_par = max(cov, key=lambda n: n.prefixlen).prefix if cov else None
        assert (None if par is None else net(par)) == want_par
        sub = [net(x) for x in rib.subnets(p, d)]
        want_sub = sorted(
            (n for n in rdx.search_covered(pfx) if n.prefixlen > d),
            key=lambda n: (int(ipaddress.ip_network(n.prefix).network_address), n.prefixlen),
        )
        assert sub == [n.prefix for n in want_sub]
    nets = [ipaddress.ip_network(n.prefix) for n in rdx.nodes()]
    nets.sort(key=lambda n: (int(n.network_address), n.prefixlen))
    assert [net(x) for x in rib] == [str(n) for n in nets]


route4 = st.tuples(
    st.integers(0, (1 << 18) - 1),
    st.sampled_from([0, 8, 14, 15, 16, 20, 23, 24, 25, 26, 30, 31, 32]),
)


@settings(max_examples=40, deadline=None)
@given(
    adds=st.lists(st.tuples(route4, st.integers(0, 2**64 - 1)), max_size=60),
    dels=st.lists(st.integers(0, 59), max_size=30),
    probes=st.lists(st.integers(0, (1 << 18) - 1), max_size=40),
)
def test_rib4_against_py_radix(adds, dels, probes):
    base = A - (1 << 16)  # straddle 198.18.0.0/15 so short routes cover and miss
    rib, rdx = Rib(), radix.Radix()
    keys: list[tuple[int, int]] = []
    for (off, d), nh in adds:
        p = mknet(base + off, d, 32)
        pfx = (int(p.network_address), d)
        if rib.lookup_exact(*pfx) is None:
            rib.insert(base + off, d, nh)
            keys.append(pfx)
        else:
            rib.set_nh(*pfx, nh)
        rdx.add(str(p)).data["nh"] = nh
    for i in dels:
        if i < len(keys) and keys[i] in rib:
            rib.remove(*keys[i])
            rdx.delete(str(mknet(*keys[i], 32)))
    assert len(rib) == len(rdx.nodes())
    pr = (
        [base + o for o in probes]
        + [p for p, _ in keys]
        + [p + (1 << (32 - d)) - 1 for p, d in keys]
    )
    _oracle_check(rib, rdx, 32, pr, keys)


route6 = st.tuples(
    st.integers(0, (1 << 20) - 1), st.sampled_from([0, 16, 32, 48, 56, 63, 64, 65, 96, 127, 128])
)


@settings(max_examples=30, deadline=None)
@given(
    adds=st.lists(st.tuples(route6, st.integers(0, 1000)), max_size=40),
    dels=st.lists(st.integers(0, 39), max_size=20),
    probes=st.lists(st.integers(0, (1 << 20) - 1), max_size=30),
)
def test_rib6_against_py_radix(adds, dels, probes):
    def at(off: int) -> int:  # high 10 bits right after the /48, low 10 bits at the very end
        return A6 | ((off >> 10) << 70) | (off & 1023)

    rib, rdx = Rib6(), radix.Radix()
    keys: list[tuple[int, int]] = []
    for (off, d), nh in adds:
        p = mknet(at(off), d, 128)
        pfx = (int(p.network_address), d)
        if rib.lookup_exact(*pfx) is None:
            rib.insert(at(off), d, nh)
            keys.append(pfx)
        else:
            rib.set_nh(*pfx, nh)
        rdx.add(str(p)).data["nh"] = nh
    for i in dels:
        if i < len(keys) and keys[i] in rib:
            rib.remove(*keys[i])
            rdx.delete(str(mknet(*keys[i], 128)))
    pr = [at(o) for o in probes] + [p for p, _ in keys]
    _oracle_check(rib, rdx, 128, pr, keys)
    if pr:
        nh, dep = rib.lookup_bulk(pr, default=99999)
        for a, n, dd in zip(pr, nh.tolist(), dep.tolist(), strict=True):
            x = rib.lookup(a)
            assert (n, dd) == ((99999, -1) if x is None else (x.nh, x.depth))


def test_bulk_load_of_a_million_routes_is_quick():
    """1M routes: insert_bulk and one full iteration each take seconds, not minutes."""
    import time

    rng = np.random.default_rng(3)
    p = rng.integers(0, 1 << 32, 1_000_000, dtype=np.uint64).astype(np.uint32)
    r = Rib()
    t0 = time.perf_counter()
    n = r.insert_bulk(p, 24, rng.integers(0, 1 << 20, p.size))
    t1 = time.perf_counter()
    assert n == len(np.unique(p >> 8)) == len(r)
    assert t1 - t0 < 15, f"insert_bulk of 1M routes took {t1 - t0:.1f} s"
    first = next(iter(r))
    assert first.prefix == int((np.unique(p >> 8)[0]) << 8)
