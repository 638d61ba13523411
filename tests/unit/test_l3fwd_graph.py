"""l3fwd-graph without privileges: arguments, --trace, routes (CNDP's static table and
options."l3fwd-fib-rules", against an oracle), the configuration checks, and the worker's graph
forwarding over net_ring ports (TTL - 1, MACs, checksum, each drop reason on its own node)."""

from __future__ import annotations

import argparse
import ipaddress
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp import nodes, pktdev
from cndp.app import config as cfgmod
from cndp.apps import l3fwd_graph as L
from cndp.apps.fwd_steer import FibRule
from cndp.errors import CndpError
from cndp.graph import graph_destroy, isolated_registry
from cndp.mem import Mempool, PktVec, Umem
from cndp.net.frames import checksum16, udp4_frame

BROKEN_CNDP = "/work/shared/reference/cndp-configs/examples_l3fwd-graph_l3fwd-graph.jsonc"
PEER = bytes.fromhex("020000aa0001")


# ---------------------------------------------------------------------------- arguments
def test_parse_trace_examples():
    assert L.parse_trace("16:/tmp/x") == (16, "/tmp/x")
    assert L.parse_trace("1:a:b") == (1, "a:b")  # the first colon splits
    for bad in ("", "16", ":x", "0:/tmp/x", "x:/tmp", "16:", "-1:/x", f"{L.MAX_TRACE + 1}:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            L.parse_trace(bad)


@given(st.text(max_size=30))
def test_parse_trace_is_a_result_or_a_clear_error(text):
    try:
        n, path = L.parse_trace(text)
    except argparse.ArgumentTypeError as e:
        assert "N:PATH" in str(e)
    else:
        assert 1 <= n <= L.MAX_TRACE and path and text.partition(":")[2] == path


@given(st.integers(1, L.MAX_TRACE), st.text(min_size=1, max_size=20))
def test_parse_trace_round_trip(n, path):
    assert L.parse_trace(f"{n}:{path}") == (n, path)


TOKENS = st.sampled_from(
    [
        "-c",
        "-b",
        "-L",
        "--no-color",
        "-d",
        "--duration",
        "--trace",
        "--dot",
        "--no-node-stats",
        "--runtime-dir",
        "--no-telemetry",
        "0",
        "300",
        "-1",
        "8:/tmp/t",
        "x",
        "debug",
        "/nonexistent",
        BROKEN_CNDP,
        "-h",
    ]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(TOKENS, st.text(max_size=10)), max_size=7))
def test_random_argv_never_crashes(capsys, argv):
    argv = [a for a in argv if a != "-C"]  # would wait for a configuration on a socket
    try:
        rc = L.main(argv)
    except SystemExit as e:  # argparse: usage error (2) or -h (0)
        assert e.code in (0, 2)
    else:
        assert rc != 0  # no argv here names a usable configuration
    assert "Traceback" not in capsys.readouterr().err


def test_defaults_for_cndpfwd_app():
    a = L.parse_args(["-c", "x"])
    assert (a.mode, a.api, a.dst_mac, a.node_stats, a.trace, a.dot) == (
        "l3fwd-graph",
        "pktdev",
        None,
        True,
        None,
        False,
    )
    a = L.parse_args(["-c", "x", "--trace", "4:/tmp/t", "--dot", "--no-node-stats", "-b", "32"])
    assert (a.trace, a.dot, a.node_stats, a.burst) == ((4, "/tmp/t"), True, False, 32)


def test_cndp_broken_config_is_rejected_like_cndp(capsys):
    """CNDP's examples/l3fwd-graph/l3fwd-graph.jsonc names lports eth2:0/eth3:0 it does not
    define: one clear line, as C jcfg's "lport 'eth2:0' not found"."""
    assert L.main(["-c", BROKEN_CNDP]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lport 'eth2:0' not found" in err[0] and "Traceback" not in err[0]


# ------------------------------------------------------------------------------- routes
@given(st.sets(st.integers(0, 40), max_size=12))
def test_default_routes_are_cndps_static_table(lpids):
    routes = L.default_routes(lpids)
    want = sorted(n for n in lpids if n < 8)
    assert [r.lport for r in routes] == want
    for r in routes:
        n = r.lport
        assert L.route_text(r) == f"198.18.{n}.0/24"
        assert r.mac == bytes((2, 0, 0, 0, 0, n))


def _rule_text(net: ipaddress.IPv4Network, mac: bytes, lp: int) -> str:
    return f"{net.with_prefixlen},{':'.join(f'{b:02x}' for b in mac)},{lp}"


RULE = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 3),
)


@given(st.lists(RULE, min_size=1, max_size=12))
def test_rules_parse_to_what_they_say(rules):
    texts, want = [], []
    for ip, d, mac, lp in rules:
        net = ipaddress.IPv4Network((ip, d), strict=False)
        texts.append(_rule_text(net, mac, lp))
        want.append(FibRule(int(net.network_address), d, mac, lp))
    used = {0: "a", 1: "b", 2: "c", 3: "d"}
    got, source = L.routes_from_config(texts, set(used), used)
    assert got == want and source == L.RULES_KEY


@given(st.lists(RULE, min_size=1, max_size=6), st.integers(0, 5))
def test_rule_to_an_unused_lport_names_the_rule(rules, k):
    texts = [
        _rule_text(ipaddress.IPv4Network((ip, d), strict=False), mac, lp)
        for ip, d, mac, lp in rules
    ]
    used = {0: "a", 1: "b"}  # lports 2, 3 exist but no thread uses them
    bad = [i for i, (_, _, _, lp) in enumerate(rules) if lp not in used]
    try:
        L.routes_from_config(texts, {0, 1, 2, 3}, used)
    except L.UsageError as e:
        assert bad and f"[{bad[0]}] {texts[bad[0]]!r}" in str(e)
        assert "not used by any fwd thread" in str(e) and "fix:" in str(e)
    else:
        assert not bad


@given(st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=40), st.integers()), max_size=4)))
def test_any_rules_value_is_routes_or_a_clear_error(rules):
    used = {0: "a", 1: "b"}
    try:
        routes, _ = L.routes_from_config(rules, {0, 1}, used)
    except CndpError as e:
        assert "l3fwd-fib-rules" in str(e)
    else:
        assert all(r.lport in used for r in routes)
        assert rules is not None or len(routes) == 2


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ([], "non-empty list"),
        ("198.18.1.0/24,02:00:00:00:00:01,1", "non-empty list"),
        (["198.18.1.0/24,02:00:00:00:00:01"], "has 2 fields, not 3"),
        (["198.18.1.0,02:00:00:00:00:01,1"], "needs a length"),
        (["198.18.1.0/33,02:00:00:00:00:01,1"], "198.18.1.0/33"),
        (["198.18.1.0/24,02:00:00:00:01,1"], "198.18.1.0/24,02:00:00:00:01,1"),
        (["198.18.1.0/24,02:00:00:00:00:01,9"], "lport index '9' is not an lport"),
    ],
)
def test_bad_rules_are_one_clear_error(rules, needle):
    with pytest.raises(CndpError, match="l3fwd-fib-rules") as e:
        L.routes_from_config(rules, {0, 1, 2}, {0: "a", 1: "b"})
    assert needle in str(e.value)


# -------------------------------------------------------------------------- config checks
def _cfg(tmp_path, threads: dict, options: dict | None = None):
    doc = {
        "application": {"name": "t"},
        "umems": {
            "umem0": {"bufcnt": 16, "bufsz": 2, "regions": [4, 4, 4, 4]},
            "umem1": {"bufcnt": 16, "bufsz": 2},
        },
        "lports": {
            "ra:0": {"pmd": "net_ring", "qid": 0, "umem": "umem0", "region": 0},
            "rb:0": {"pmd": "net_ring", "qid": 0, "umem": "umem0", "region": 1},
            "rc:0": {"pmd": "net_ring", "qid": 0, "umem": "umem0", "region": 2},
            "rd:0": {"pmd": "net_ring", "qid": 0, "umem": "umem1"},
        },
        "lcore-groups": {"initial": [0], "g0": [0]},
        "options": options or {},
        "threads": {"main": {"group": "initial"}, **threads},
    }
    p = tmp_path / "c.jsonc"
    p.write_text(json.dumps(doc))
    return cfgmod.load(str(p))


def _app(cfg, *argv):
    return L.L3fwdGraph(cfg, L.parse_args(["-c", "x", *argv]))


def test_app_takes_cndps_thread_types_and_default_routes(tmp_path):
    cfg = _cfg(
        tmp_path,
        {
            "stats": {"group": "initial"},
            "fwd:0": {"group": "g0", "lports": ["ra:0", "rb:0"]},
            "fwd:1": {"group": "g0", "lports": ["rc:0"]},
        },
    )
    app = _app(cfg)
    assert [t.name for t in app.fwd_threads] == ["fwd:0", "fwd:1"]
    assert [L.route_text(r) for r in app.routes] == [f"198.18.{n}.0/24" for n in range(3)]
    assert app.lport_owner == {0: "fwd:0", 1: "fwd:0", 2: "fwd:1"}
    assert app.describe().startswith("3 route(s) from CNDP's static routes")


@pytest.mark.parametrize(
    ("threads", "options", "needle"),
    [
        ({"rx:0": {"group": "g0", "lports": ["ra:0"]}}, {}, "unknown thread type 'rx'"),
        (
            {"fwd:0": {"group": "g0", "lports": ["ra:0", "rd:0"]}},
            {},
            "a worker's graph forwards frames within one UMEM",
        ),
        (
            {"fwd:0": {"group": "g0", "lports": ["ra:0"]}},
            {"l3fwd-fib-rules": ["198.18.1.0/24,02:00:00:00:00:01,1"]},
            "lport 1 is not used by any fwd thread",
        ),
        ({"main:1": {"group": "g0"}}, {}, "no fwd thread"),
    ],
)
def test_app_config_errors(tmp_path, threads, options, needle):
    cfg = _cfg(tmp_path, threads, options)
    with pytest.raises(CndpError) as e:
        _app(cfg)
    assert needle in str(e.value) and "fix:" in str(e.value)


def test_trace_directory_must_exist(tmp_path):
    cfg = _cfg(tmp_path, {"fwd:0": {"group": "g0", "lports": ["ra:0"]}})
    with pytest.raises(CndpError, match="does not exist"):
        _app(cfg, "--trace", f"4:{tmp_path}/nope/t")
    assert _app(cfg, "--trace", f"4:{tmp_path}/t").trace == (4, f"{tmp_path}/t")


# ------------------------------------------------------------------ the graph over rings
@pytest.fixture
def registry():
    assert pktdev.port_count() == 0, "a previous test leaked ports"
    with isolated_registry():
        nodes.register()
        try:
            yield
        finally:
            nodes.reset()
            pktdev.close_all()


@pytest.fixture
def umem():
    with Umem(1024, 2048) as u:
        yield u


@pytest.fixture
def rig(registry, umem):
    """inj -> ringA -> lport 0 (graph rx); lport 1 (graph tx) -> ringB -> sink. The pktdev
    ids (0..3 here) differ from the config lport indices the graph is built with."""
    pool = Mempool.for_region(umem, 0)

    def mk(name, ring):
        return pktdev.port_setup(
            pktdev.PortConfig(name, "net_ring:size=1024", ifname=ring, umem=umem, pool=pool)
        )

    p = {"inj": mk("inj", "ringA"), "in": mk("in", "ringA")}
    p["out"] = mk("out", "ringB")
    p["sink"] = mk("sink", "ringB")
    return p, pool


def _inject(p, umem, pool, frames):
    pv = PktVec(len(frames))
    assert pv.alloc_from(pool, len(frames)) == len(frames)
    for i, f in enumerate(frames):
        a = int(pv.addr[i])
        umem.data[a : a + len(f)] = np.frombuffer(f, np.uint8)
        pv.data_len[i] = len(f)
    assert p["inj"].tx_burst(pv, pv.n) == pv.n


def _drain(port, umem, pool):
    pv = PktVec(1024)
    k = port.rx_burst(pv)
    out = [
        bytes(umem.data[a : a + n])
        for a, n in zip(pv.addr[:k].tolist(), pv.data_len[:k].tolist(), strict=True)
    ]
    pool.put_bulk(pv.addr[:k])
    return out


def test_graph_forwards_rewrites_and_counts_each_drop(rig, umem):
    p, pool = rig
    ports = {0: p["in"], 1: p["out"]}
    routes = [
        *L.default_routes({0, 1}),
        FibRule(int(ipaddress.IPv4Address("198.18.1.128")), 25, PEER, 1),  # longer: wins
        FibRule(int(ipaddress.IPv4Address("198.18.5.0")), 24, PEER, 5),  # another worker's
    ]
    g = L.build_graph("worker_0", ports, routes, burst=256)
    names = [gn.name for gn in g.nodes]
    assert {"pktdev_rx-0", "pktdev_rx-1", "pktdev_tx-0", "pktdev_tx-1"} <= set(names)
    assert {L.DROP_MISS, L.DROP_TTL, L.DROP_REMOTE, "pkt_drop"} <= set(names)
    assert g.node_get_by_name("pktdev_rx-1").ctx is p["out"]  # by config index, not pktdev id
    src = p["inj"].mac
    to1 = [udp4_frame(src, p["in"].mac, dst_ip=f"198.18.1.{i}", sport=i, ttl=9) for i in range(100)]
    to1b = [udp4_frame(src, p["in"].mac, dst_ip="198.18.1.200", sport=i) for i in range(7)]
    miss = [udp4_frame(src, p["in"].mac, dst_ip="198.18.9.1", sport=i) for i in range(5)]
    ttl = [udp4_frame(src, p["in"].mac, dst_ip="198.18.1.7", ttl=1, sport=i) for i in range(4)]
    far = [udp4_frame(src, p["in"].mac, dst_ip="198.18.5.5", sport=i) for i in range(3)]
    arp = [src + p["in"].mac + b"\x08\x06" + bytes(46)] * 2
    _inject(p, umem, pool, to1[:50] + miss + ttl + to1b + far + arp + to1[50:])
    assert g.walk() == 121
    got = _drain(p["sink"], umem, pool)
    assert len(got) == 107
    by_sport = {
        int.from_bytes(f[34:36], "big"): f for f in got if f[30:34] != bytes([198, 18, 1, 200])
    }
    for sent in to1:
        out = by_sport[int.from_bytes(sent[34:36], "big")]
        assert out[:12] == bytes((2, 0, 0, 0, 0, 1)) + p["out"].mac  # CNDP's MAC, egress MAC
        assert out[22] == 8 and checksum16(out[14:34]) == 0  # TTL - 1, checksum still good
        assert out[12:22] == sent[12:22] and out[23:24] == sent[23:24] and out[26:] == sent[26:]
    assert sum(1 for f in got if f[:6] == PEER and f[30:34] == bytes([198, 18, 1, 200])) == 7
    st_ = {s.name: s.objs for s in g.stats()}
    assert st_[L.DROP_MISS] == 5 and st_[L.DROP_TTL] == 4 and st_[L.DROP_REMOTE] == 3
    assert st_["pkt_drop"] == 2 and st_["pktdev_tx-1"] == 107 and st_["pktdev_tx-0"] == 0
    assert pool.avail == pool.capacity  # every frame came back


def test_graph_without_remote_routes_has_no_remote_node(rig):
    p, _ = rig
    g = L.build_graph("worker_0", {0: p["in"], 1: p["out"]}, L.default_routes({0, 1}))
    assert L.DROP_REMOTE not in [gn.name for gn in g.nodes]
    assert "ip4_lookup" in g.dot() and '"pktdev_rx-0" -> "pkt_cls"' in g.dot()
    d = L.describe_graph(g, thread="fwd:0", lport_names={0: "in:0", 1: "out:0"})
    kinds = {n["name"]: (n["kind"], n.get("lport")) for n in d["nodes"]}
    assert kinds["pktdev_rx-0"] == ("source", "in:0") and kinds[L.DROP_MISS] == ("sink", None)
    assert {"from": "ip4_lookup", "to": L.DROP_MISS, "edge": 1} in d["edges"]


def _oracle(routes: list[FibRule], ip: int, local: set[int]) -> tuple[int, int]:
    best = None
    for hop, r in enumerate(routes, start=1):  # the last rule for a prefix wins
        mask = (0xFFFFFFFF << (32 - r.depth)) & 0xFFFFFFFF
        if ip & mask == r.prefix and (best is None or r.depth >= best[1].depth):
            best = (hop, r)
    if best is None:
        return nodes.IP4_LOOKUP_NEXT_PKT_DROP, 0
    hop, r = best
    return (nodes.IP4_LOOKUP_NEXT_REWRITE if r.lport in local else 2), hop


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32), st.integers(0, 3)),
        min_size=1,
        max_size=10,
    ),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64),
    st.data(),
)
def test_lookup_matches_longest_prefix_oracle(rig, rules, addrs, data):
    p, _ = rig
    routes = []
    for ip, d, lp in rules:
        net = ipaddress.IPv4Network((ip, d), strict=False)
        routes.append(FibRule(int(net.network_address), d, PEER, lp))
    # addresses inside the routes too, not only random ones
    addrs += [r.prefix | data.draw(st.integers(0, (1 << (32 - r.depth)) - 1)) for r in routes]
    g = L.build_graph("worker_0", {0: p["in"], 1: p["out"]}, routes)
    try:
        res = np.asarray(nodes.ip4_lookup_get()(np.array(addrs, np.uint32)))
        got = [(int(v) >> 16, int(v) & 0xFFFF) for v in res]
        assert got == [_oracle(routes, a, {0, 1}) for a in addrs]
    finally:
        graph_destroy(g)
