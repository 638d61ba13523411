"""cndp.graph: node registry, graph creation checks, the walk, vector splitting, stats,
trace and dot export. Nodes are plain functions over PktVecs filled directly (no ports)."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp import graph as G
from cndp.graph import (
    ClusterStats,
    GraphError,
    graph_create,
    isolated_registry,
    node_clone,
    node_edge_count,
    node_edge_get,
    node_edge_shrink,
    node_edge_update,
    node_from_name,
    node_id_to_name,
    node_register,
)
from cndp.mem import PktVec, Umem
from cndp.net.pcap import read_pcap


@pytest.fixture(autouse=True)
def _registry():
    with isolated_registry():
        yield


def _sink(node, pv):
    return None


def _pass(node, pv):
    return 0


def source_of(batches):
    """A source that produces the next batch (list of hash values) on each walk."""
    it = iter(batches)

    def src(node, pv):
        vals = next(it, [])
        k = len(vals)
        pv.hash[:k] = vals
        pv.addr[:k] = np.arange(k, dtype=np.uint64) * np.uint64(2048) + np.uint64(256)
        pv.n = k
        return 0

    return src


class Recorder:
    """A node that remembers the hash values it saw and passes them on edge 0 (if any)."""

    def __init__(self):
        self.seen: list[list[int]] = []

    def __call__(self, node, pv):
        self.seen.append(pv.hash[: pv.n].tolist())
        return 0 if node.ne else None


# --------------------------------------------------------------------------------------------
# registry


def test_register_lookup_and_duplicates():
    a = node_register("a", _sink)
    b = node_register("b", _sink, ["a"])
    assert (a, b) == (0, 1)
    assert node_from_name("b") == 1 and node_id_to_name(0) == "a"
    assert G.node_max_count() == 2 and [nd.name for nd in G.node_list()] == ["a", "b"]
    with pytest.raises(GraphError) as ei:
        node_register("a", _sink)
    assert ei.value.errno == errno.EEXIST and "'a'" in str(ei.value)
    with pytest.raises(GraphError) as ei:
        node_from_name("nope")
    assert ei.value.errno == errno.ENOENT and "registered nodes: a, b" in str(ei.value)
    with pytest.raises(GraphError, match="no node with id 7"):
        node_id_to_name(7)
    assert "edge 0: a" in G.node_dump("b") and "node 0 'a'" in G.node_list_dump()


@pytest.mark.parametrize("bad", ["", "x" * 64, "has space", 'q"uote', "back\\slash", 3])
def test_bad_node_names_are_refused(bad):
    with pytest.raises(GraphError):
        node_register(bad, _sink)  # type: ignore[arg-type]


def test_register_argument_errors():
    with pytest.raises(GraphError, match="callable"):
        node_register("x", 5)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r'next_nodes=\["y"\]'):
        node_register("x", _sink, "y")  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="init must be callable"):
        node_register("x", _sink, init=1)  # type: ignore[arg-type]
    assert G.node_max_count() == 0


def test_decorator_registers():
    @G.node("deco", next_nodes=["z"], source=True, data={"k": 1})
    def deco(node, pv):
        return None

    nd = G.node_def("deco")
    assert nd.process is deco and nd.source and nd.next_nodes == ["z"] and nd.data == {"k": 1}


def test_clone_rules_as_cndp():
    base = node_register("test_node00", _sink, ["e0"], data={"lport": None})
    c = node_clone(base, "x")
    with pytest.raises(GraphError) as ei:
        node_clone(base, "x")  # the same clone name twice
    assert ei.value.errno == errno.EEXIST and "'test_node00-x'" in str(ei.value)
    nd = G.node_def(c)
    assert nd.parent_id == base and nd.next_nodes == ["e0"] and nd.process is _sink
    nd.data["lport"] = 3  # clones own a copy of the data
    assert G.node_def(base).data == {"lport": None}
    with pytest.raises(GraphError) as ei:
        node_clone(c, "dummy")  # cloning a clone fails
    assert ei.value.errno == errno.EEXIST and "clone its parent 'test_node00'" in str(ei.value)
    with pytest.raises(GraphError):
        node_clone("nope", "1")
    # by name or id
    assert G.node_def(node_clone("test_node00", "0")).name == "test_node00-0"


def test_edge_update_shrink_get_count():
    n = node_register("n", _sink, ["a", "b"])
    assert node_edge_count(n) == 2 and node_edge_get("n") == ["a", "b"]
    assert node_edge_update(n, 1, ["c", "d"]) == 2  # overwrite edge 1, append edge 2
    assert node_edge_get(n) == ["a", "c", "d"]
    assert node_edge_update(n, None, ["e"]) == 1  # None appends (CNE_EDGE_ID_INVALID)
    assert node_edge_update(n, 0, ["z"]) == 1 and node_edge_get(n) == ["z", "c", "d", "e"]
    with pytest.raises(GraphError) as ei:
        node_edge_update(n, 9, ["x"])  # no holes in the edge list
    assert ei.value.errno == errno.ENOMEM
    assert node_edge_shrink(n, 4) == 4  # shrinking to the current size is fine
    assert node_edge_shrink(n, 2) == 2 and node_edge_get(n) == ["z", "c"]
    with pytest.raises(GraphError) as ei:
        node_edge_shrink(n, 3)
    assert ei.value.errno == errno.E2BIG
    with pytest.raises(GraphError):
        node_edge_update(n, -1, ["x"])


# --------------------------------------------------------------------------------------------
# graph creation checks


def test_create_pulls_in_edges_and_lookups():
    node_register("src", source_of([]), ["mid"], source=True)
    node_register("mid", _pass, ["end"])
    node_register("end", _sink)
    g = graph_create("worker0", ["src"])
    assert [gn.name for gn in g.nodes] == ["src", "mid", "end"]
    assert G.graph_lookup("worker0") is g and G.graph_lookup("nope") is None
    assert G.graph_from_name("worker0") == g.id == 0 and G.graph_id_to_name(0) == "worker0"
    assert G.graph_get(0) is g and G.graph_list() == [g] and G.graph_max_count() == 1
    mid = G.graph_node_get("worker0", node_from_name("mid"))
    assert mid is G.graph_node_get_by_name("worker0", "mid") is g.node_get_by_name("mid")
    assert mid.edges == (g.node_get_by_name("end"),) and mid.edge_index("end") == 0
    assert "mid" in g and "nope" not in g
    with pytest.raises(GraphError, match="has no node 'nope'"):
        g.node_get_by_name("nope")
    with pytest.raises(GraphError, match="no edge to 'x'"):
        mid.edge_index("x")
    with pytest.raises(GraphError) as ei:
        graph_create("worker0", ["src"])
    assert ei.value.errno == errno.EEXIST
    assert "edge 0 -> mid" in G.graph_dump("worker0") and "worker0" in G.graph_list_dump()


def test_unmatched_pattern_names_the_pattern():
    node_register("src", source_of([]), ["sink"], source=True)
    node_register("sink", _sink)
    with pytest.raises(GraphError) as ei:
        graph_create("g", ["src", "ip4_*"])
    msg = str(ei.value)
    assert "pattern 'ip4_*' matches no registered node" in msg and "sink, src" in msg
    assert G.graph_lookup("g") is None


def test_isolated_node_as_cndp_graph_test():
    """CNDP's graph test: a clone nothing points to makes creation fail; without it the
    same patterns build a graph."""
    node_register("test_node_source1", source_of([]), ["test_node00"], source=True)
    n0 = node_register("test_node00", _sink, ["test_node00-test_node11"])
    node_clone(n0, "test_node11")
    node_clone(n0, "dummy_node")
    node_edge_update("test_node00-test_node11", 0, ["sink"])
    node_edge_update("test_node00-dummy_node", 0, ["sink"])
    node_register("sink", _sink)
    pats = ["test_node_source1", "test_node00", "test_node00-test_node11"]
    with pytest.raises(GraphError) as ei:
        graph_create("worker0", [*pats, "test_node00-dummy_node"])
    assert ei.value.errno == errno.ENODEV
    assert "node 'test_node00-dummy_node' is isolated" in str(ei.value)
    g = graph_create("worker0", pats)
    assert len(g.nodes) == 4


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda: node_register("a", _sink, ["a"]), "has no source node"),
        (
            lambda: (
                node_register("s", _sink, ["a"], source=True),
                node_register("a", _sink, ["s"]),
            ),
            "edge 0 points to source node 's'",
        ),
        (
            lambda: (
                node_register("s", _sink, ["a"], source=True),
                node_register("a", _sink, ["a"]),
            ),
            "node 'a' edge 0 points to itself",
        ),
        (
            lambda: node_register("s", _sink, ["ghost"], source=True),
            "points to 'ghost', which is not registered",
        ),
    ],
)
def test_create_refuses_bad_topologies(setup, match):
    setup()
    pats = ["s"] if "s" in [nd.name for nd in G.node_list()] else ["a"]
    with pytest.raises(GraphError, match=match):
        graph_create("g", pats)
    assert G.graph_max_count() == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"patterns": "src"}, "list of strings"),
        ({"patterns": []}, "no node patterns"),
        ({"patterns": [""]}, "not a non-empty string"),
        ({"burst": 0}, "burst"),
        ({"name": ""}, "graph name"),
    ],
)
def test_create_argument_errors(kw, match):
    node_register("src", source_of([]), [], source=True)
    args = {"name": "g", "patterns": ["src"], **kw}
    with pytest.raises(GraphError, match=match):
        graph_create(args.pop("name"), args.pop("patterns"), **args)


def test_init_failure_runs_fini_of_initialised_nodes_and_creates_nothing():
    log = []
    node_register(
        "src",
        source_of([]),
        ["a"],
        source=True,
        init=lambda n: log.append("i-src"),
        fini=lambda n: log.append("f-src"),
    )
    node_register(
        "a", _pass, ["b"], init=lambda n: log.append("i-a"), fini=lambda n: log.append("f-a")
    )

    def bad(n):
        raise GraphError("b cannot start")

    node_register("b", _sink, init=bad, fini=lambda n: log.append("f-b"))
    with pytest.raises(GraphError, match="b cannot start"):
        graph_create("g", ["src"])
    assert log == ["i-src", "i-a", "f-a", "f-src"] and G.graph_lookup("g") is None


def test_destroy_runs_fini_and_frees_the_name_and_id():
    log = []
    node_register("src", source_of([[1]]), ["a"], source=True)
    node_register(
        "a", _sink, init=lambda n: log.append(n.graph.name), fini=lambda n: log.append("fini")
    )
    g0 = graph_create("w0", ["src"])
    g1 = graph_create("w1", ["src"])
    assert (g0.id, g1.id) == (0, 1)
    G.graph_destroy("w0")
    assert log == ["w0", "w1", "fini"] and G.graph_lookup("w0") is None
    with pytest.raises(GraphError, match="was destroyed"):
        g0.walk()
    g0.destroy()  # idempotent
    assert graph_create("w2", ["src"]).id == 0  # lowest free id
    with pytest.raises(GraphError) as ei:
        G.graph_destroy("w0")
    assert ei.value.errno == errno.ENOENT


# --------------------------------------------------------------------------------------------
# walking


def test_walk_order_sources_first_then_fifo():
    calls = []

    def rec(tag, ret):
        def f(node, pv):
            calls.append(tag)
            return ret

        return f

    def s(tag):
        def f(node, pv):
            calls.append(tag)
            pv.n = 2
            return 0

        return f

    node_register("s1", s("s1"), ["a"], source=True)
    node_register("s2", s("s2"), ["b"], source=True)
    node_register("a", rec("a", 0), ["c"])
    node_register("b", rec("b", 0), ["c"])
    node_register("c", rec("c", None))
    g = graph_create("g", ["s1", "s2"], stats=False)
    assert g.walk() == 4
    # both sources, then a and b (queued in that order), then c once with both vectors
    assert calls == ["s1", "s2", "a", "b", "c"]
    assert g.pending() == 0


def test_home_run_swaps_vectors_without_copy():
    node_register("src", source_of([[7, 8, 9]]), ["a"], source=True)
    seen = {}

    def a(node, pv):
        seen["a"] = pv
        return 0

    def b(node, pv):
        seen["b"] = pv
        return None

    node_register("a", a, ["b"])
    node_register("b", b)
    g = graph_create("g", ["src"], stats=False)
    src_vec = g.node_get_by_name("src").pv
    g.walk()
    # the source's vector itself travelled src -> a -> b (no copy on the way)
    assert seen["a"] is src_vec and seen["b"] is src_vec
    assert g.node_get_by_name("src").pv is not src_vec


def test_accumulation_from_two_sources_grows_the_vector():
    burst = 8
    node_register("s1", source_of([list(range(8))]), ["sink"], source=True)
    node_register("s2", source_of([list(range(100, 108))]), ["sink"], source=True)
    rec = Recorder()
    node_register("sink", rec)
    g = graph_create("g", ["s*"], burst=burst)
    assert g.walk() == 16
    assert rec.seen == [list(range(8)) + list(range(100, 108))]
    st_ = {s.name: s for s in g.stats()}
    assert st_["sink"].realloc_count == 1 and st_["sink"].calls == 1 and st_["sink"].objs == 16
    assert g.node_get_by_name("sink").pv.capacity >= 16


def _split_graph(k_edges, edge_fn, burst=256):
    recs = [Recorder() for _ in range(k_edges)]
    names = [f"out{i}" for i in range(k_edges)]
    for n, r in zip(names, recs, strict=True):
        node_register(n, r)
    node_register("split", edge_fn, names)
    return recs


@settings(max_examples=60, deadline=None)
@given(
    edges=st.lists(st.integers(0, 4), min_size=1, max_size=300),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.uint64]),
)
def test_split_by_edge_array_matches_oracle(edges, dtype):
    with isolated_registry():
        arr = np.array(edges, dtype=dtype)
        vals = list(range(1000, 1000 + len(edges)))
        node_register("src", source_of([vals]), ["split"], source=True)
        recs = _split_graph(5, lambda node, pv: arr)
        g = graph_create("g", ["src"], burst=len(edges))
        g.walk()
        for i, r in enumerate(recs):
            want = [v for v, e in zip(vals, edges, strict=True) if e == i]
            assert r.seen == ([want] if want else [])
        assert g.pending() == 0


def test_split_keeps_every_field():
    def src(node, pv):
        k = 6
        for name, dt in (
            ("addr", np.uint64),
            ("data_len", np.uint16),
            ("port", np.uint16),
            ("ptype", np.uint32),
            ("next", np.uint16),
            ("hash", np.uint32),
        ):
            getattr(pv, name)[:k] = (np.arange(k) * 11 + 1).astype(dt)
        pv.n = k
        return 0

    got = {}

    def out(tag):
        def f(node, pv):
            got[tag] = {
                nm: getattr(pv, nm)[: pv.n].tolist()
                for nm in ("addr", "data_len", "port", "ptype", "next", "hash")
            }
            return None

        return f

    node_register("src", src, ["split"], source=True)
    node_register("split", lambda node, pv: np.array([1, 0, 1, 1, 0, 1]), ["o0", "o1"])
    node_register("o0", out(0))
    node_register("o1", out(1))
    graph_create("g", ["src"]).walk()
    assert got[0] == {nm: [12, 45] for nm in got[0]}
    assert got[1] == {nm: [1, 23, 34, 56] for nm in got[1]}


@pytest.mark.parametrize(
    ("ret", "match"),
    [
        (5, r"returned edge 5 but has 2 edge\(s\)"),
        (-1, "returned edge -1"),
        (np.array([0, 1]), "returned 2 edge indices for 3 packets"),
        (np.array([0, 3, 1]), "returned edge 3 but has 2"),
        (np.array([0, -1, 1]), "negative edge index"),
        (np.array([0.0, 1.0, 1.0]), "dtype float64"),
        ("x", "process must return an edge index"),
        (True, "process must return an edge index"),
    ],
)
def test_bad_process_results_name_the_node_and_leave_the_graph_usable(ret, match):
    node_register("src", source_of([[1, 2, 3], [4, 5, 6]]), ["bad"], source=True)
    flip = {"n": 0}

    def bad(node, pv):
        flip["n"] += 1
        return ret if flip["n"] == 1 else 1

    rec = Recorder()
    node_register("bad", bad, ["x", "y"])
    node_register("x", _sink)
    node_register("y", rec)
    for stats in (False, True):
        flip["n"] = 0
        rec.seen.clear()
        g = graph_create(f"g{stats}", ["src"], stats=stats)
        g.node_get_by_name("src").process = source_of([[1, 2, 3], [4, 5, 6]])
        with pytest.raises(GraphError, match=match) as ei:
            g.walk()
        assert "node 'bad'" in str(ei.value)
        assert g.pending() == 0
        g.walk()
        assert rec.seen == [[4, 5, 6]]


def test_numpy_scalar_and_zero_dim_results_are_edges():
    node_register("src", source_of([[1], [2], [3], [4]]), ["a"], source=True)
    rets = iter([np.intp(1), np.uint16(0), np.array([1], np.uint8), np.array(0)])
    node_register("a", lambda node, pv: next(rets), ["x", "y"])
    rx, ry = Recorder(), Recorder()
    node_register("x", rx)
    node_register("y", ry)
    g = graph_create("g", ["src"])
    for _ in range(4):
        g.walk()
    assert rx.seen == [[2], [4]] and ry.seen == [[1], [3]]


def test_enqueue_slices_masks_and_indices():
    vals = list(range(10))
    node_register("src", source_of([vals]), ["fan"], source=True)

    def fan(node, pv):
        assert node.enqueue(0, pv) == 10
        assert node.enqueue(1, pv, slice(2, 5)) == 3
        assert node.enqueue(1, pv, slice(0, 10, 4)) == 3
        assert node.enqueue(2, pv, pv.hash[: pv.n] % 3 == 0) == 4
        assert node.enqueue(2, pv, np.array([9, 0], np.int64)) == 2
        assert node.enqueue(2, pv, np.array([], np.int64)) == 0
        for bad in (np.array([10]), np.array([-1]), np.ones(3, bool), np.array([0.5])):
            with pytest.raises(GraphError):
                node.enqueue(2, pv, bad)
        with pytest.raises(GraphError, match="edge 3 does not exist"):
            node.enqueue(3, pv)
        with pytest.raises(GraphError, match="not an edge index"):
            node.enqueue(1.0, pv)  # type: ignore[arg-type]
        return None

    recs = [Recorder() for _ in range(3)]
    for i, r in enumerate(recs):
        node_register(f"out{i}", r)
    node_register("fan", fan, ["out0", "out1", "out2"])
    g = graph_create("g", ["src"])
    assert g.walk() == 10
    assert recs[0].seen == [vals]
    assert recs[1].seen == [[2, 3, 4, 0, 4, 8]]
    assert recs[2].seen == [[0, 3, 6, 9, 9, 0]]
    assert g.node_get_by_name("fan").enq_objs == 22


def test_source_that_enqueues_itself_is_counted():
    def src(node, pv):
        pv.hash[:3] = [1, 2, 3]
        pv.n = 3
        node.enqueue(0, pv)
        pv.n = 0
        return None

    rec = Recorder()
    node_register("src", src, ["a"], source=True)
    node_register("a", rec)
    for stats in (False, True):
        g = graph_create(f"g{stats}", ["src"], stats=stats)
        assert g.walk() == 3
    assert rec.seen == [[1, 2, 3], [1, 2, 3]]
    assert {s.name: s.objs for s in g.stats()} == {"src": 3, "a": 3}


def test_cndp_graph_test_walk_with_cycle_and_stats():
    """CNDP's graph test, ported: source -> node0/node1, node0 -> node1/node2, node1 ->
    node2, node2 -> node3 (first pass only), node3 -> node0 (a cycle, marked second pass).
    Every node checks it received whole chunks in order; objects and calls per node must
    equal what the graph's (cluster) stats say."""
    burst = 256
    obj_stats = [0] * 5
    fn_calls = [0] * 5
    rng = random.Random(7)
    LAST, SECOND = 1 << 16, 1 << 17

    def chunk(tag, k, second=False):
        """k objects for node ``tag``: ptype = target tag, hash = index | flags."""
        v = PktVec(max(k, 1))
        v.ptype[:k] = tag
        v.hash[:k] = np.arange(k, dtype=np.uint32) | (SECOND if second else 0)
        if k:
            v.hash[k - 1] |= LAST
        v.n = k
        return v

    def check(tag, pv):
        h = pv.hash[: pv.n]
        assert (pv.ptype[: pv.n] == tag).all(), f"node {tag} got another node's objects"
        count = 0
        for i, x in enumerate(h.tolist()):  # the test's own check, not the data path
            assert (x & 0xFFFF) == i - count, f"chunk order broken at node {tag}"
            if x & LAST:
                count = i + 1
        assert count == pv.n
        return bool((h & SECOND).any())

    def source(node, pv):
        k0 = burst * rng.randrange(100) // 100
        node.enqueue(0, chunk(1, k0))
        node.enqueue(1, chunk(2, burst - k0))
        obj_stats[0] += burst
        fn_calls[0] += 1
        return None

    def node0(node, pv):
        obj_stats[1] += pv.n
        fn_calls[1] += 1
        second = check(1, pv)
        k0 = pv.n * rng.randrange(100) // 100
        node.enqueue(0, chunk(2, k0, second))
        node.enqueue(1, chunk(3, pv.n - k0, second))
        return None

    def node1(node, pv):
        obj_stats[2] += pv.n
        fn_calls[2] += 1
        node.enqueue(0, chunk(3, pv.n, check(2, pv)))
        return None

    def node2(node, pv):
        obj_stats[3] += pv.n
        fn_calls[3] += 1
        if not check(3, pv):
            node.enqueue(0, chunk(4, pv.n))
        return None

    def node3(node, pv):
        obj_stats[4] += pv.n
        fn_calls[4] += 1
        assert not check(4, pv), "second-pass objects reached node 3"
        v = chunk(1, pv.n * 2, True)
        node.enqueue(0, v)
        return None

    node_register(
        "test_node_source1", source, ["test_node00", "test_node00-test_node11"], source=True
    )
    n0 = node_register("test_node00", node0)
    for nm in ("test_node11", "test_node22", "test_node33"):
        node_clone(n0, nm)
    node_edge_update("test_node00", 0, ["test_node00-test_node11", "test_node00-test_node22"])
    node_edge_update("test_node00-test_node11", 0, ["test_node00-test_node22"])
    node_edge_update("test_node00-test_node22", 0, ["test_node00-test_node33"])
    node_edge_update("test_node00-test_node33", 0, ["test_node00"])
    g = graph_create(
        "worker0",
        [
            "test_node_source1",
            "test_node00",
            "test_node00-test_node11",
            "test_node00-test_node22",
            "test_node00-test_node33",
        ],
        burst=burst,
    )
    # clones share the parent's process: give each its own, as the C test does via ctx
    for nm, fn in (
        ("test_node00-test_node11", node1),
        ("test_node00-test_node22", node2),
        ("test_node00-test_node33", node3),
    ):
        g.node_get_by_name(nm).process = fn
    for _ in range(5):
        g.walk()
    assert g.pending() == 0
    names = [
        "test_node_source1",
        "test_node00",
        "test_node00-test_node11",
        "test_node00-test_node22",
        "test_node00-test_node33",
    ]
    seen = []

    def cb(first, last, row):
        i = names.index(row.name)
        assert (row.objs, row.calls) == (obj_stats[i], fn_calls[i]), row.name
        seen.append((first, last))
        return 0

    cs = ClusterStats(["worker*"], fn=cb)
    rows = cs.get()
    assert len(rows) == 5 == cs.node_count() and seen[0] == (True, False) and seen[-1][1]
    assert all(r.ns > 0 for r in rows)
    assert fn_calls[4] == 5 and obj_stats[1] > 0


# --------------------------------------------------------------------------------------------
# stats


def test_stats_off_never_reads_the_clock(monkeypatch):
    node_register("src", source_of([[1, 2]] * 3), ["a"], source=True)
    node_register("a", _pass, ["b"])
    rec = Recorder()
    node_register("b", rec)
    g = graph_create("g", ["src"], stats=False)

    def boom():
        raise AssertionError("the plain walk read the clock")

    monkeypatch.setattr(time, "perf_counter_ns", boom)
    assert g.walk() == 2
    monkeypatch.undo()
    assert all(s.calls == 0 and s.objs == 0 and s.ns == 0 for s in g.stats())
    g.stats_enable(True)
    assert g.stats_enabled and g.walk() == 2
    got = {s.name: (s.calls, s.objs) for s in g.stats()}
    assert got == {"src": (1, 2), "a": (1, 2), "b": (1, 2)}
    g.stats_enable(False)
    g.walk()
    assert {s.name: (s.calls, s.objs) for s in g.stats()} == got
    assert rec.seen == [[1, 2]] * 3


def test_stats_counts_empty_source_calls_reset_and_array():
    node_register("src", source_of([[1, 2, 3], [], [4]]), ["b"], source=True)
    node_register("b", _sink)
    g = graph_create("g", ["src"])
    for _ in range(3):
        g.walk()
    s = {x.name: x for x in g.stats()}
    assert (s["src"].calls, s["src"].objs) == (3, 4)  # a source is called every walk
    assert (s["b"].calls, s["b"].objs) == (2, 4)
    assert s["b"].objs_per_call == 2.0 and s["b"].ns_per_obj > 0 and s["b"].ns_per_call > 0
    arr = np.zeros((2, 4), np.int64)
    g.stats_into(arr)
    assert arr[:, :2].tolist() == [[3, 4], [2, 4]]
    rows = G.stats_from_array(["src", "b"], [0, 1], arr)
    assert rows[1].objs == 4
    with pytest.raises(GraphError, match="shape"):
        g.stats_into(np.zeros((3, 4), np.int64))
    text = G.format_stats(g.stats())
    assert "src" in text and "Objs/c" in text
    g.stats_reset()
    assert all(x.calls == x.objs == x.ns == 0 for x in g.stats())


def test_cluster_stats_aggregates_clones_over_graphs():
    node_register("src", source_of([[1, 2]] * 4), ["b"], source=True)
    node_register("b", _sink)
    g0 = graph_create("worker0", ["src"])
    g1 = graph_create("worker1", ["src"])
    g1.node_get_by_name("src").process = source_of([[9]] * 4)
    for _ in range(2):
        g0.walk()
        g1.walk()
    cs = ClusterStats(["worker*"])
    rows = {r.name: r for r in cs.get()}
    assert rows["b"].objs == 2 * 2 + 2 * 1 and rows["b"].calls == 4
    g0.walk()
    assert "b" in cs.text(interval=True)
    with pytest.raises(GraphError, match="matches no graph"):
        ClusterStats(["nope*"])
    g2 = graph_create("other", ["src"], stats=False)
    with pytest.raises(GraphError, match="disabled"):
        ClusterStats(["other"])
    g2.destroy()


# --------------------------------------------------------------------------------------------
# trace


@pytest.fixture
def umem():
    with Umem(256, 2048) as u:
        yield u


def _frame_source(umem, batches):
    """Each walk writes distinct frames into UMEM frames and produces them."""
    it = iter(batches)
    state = {"seq": 0}

    def src(node, pv):
        k = next(it, 0)
        base = (state["seq"] % 64) * 2  # different frames each walk
        addrs = (np.arange(k, dtype=np.uint64) + np.uint64(base)) * np.uint64(2048) + np.uint64(256)
        for i in range(k):  # test setup only
            a = int(addrs[i])
            umem.data[a : a + 60] = (state["seq"] + i) % 251
            umem.data[a] = 0xAA
        state["seq"] += k
        pv.addr[:k] = addrs
        pv.data_len[:k] = 60
        pv.port[:k] = 3
        pv.n = k
        return 0

    return src


def test_trace_records_bytes_as_received_and_paths(umem, tmp_path):
    node_register("src", _frame_source(umem, [4, 4, 4]), ["cls"], source=True)

    def cls(node, pv):
        data = node.graph.umem.data
        a = pv.addr[: pv.n].astype(np.intp)
        data[a] = 0xBB  # a node rewriting bytes: the trace must keep the received ones
        return (np.arange(pv.n) % 2).astype(np.uint8)

    node_register("cls", cls, ["even", "odd"])
    node_register("even", _pass, ["out"])
    node_register("odd", _sink)
    node_register("out", _sink)
    g = graph_create("g", ["src"], umem=umem, stats=False)
    tr = g.trace(6, tmp_path / "t.pcap")
    assert g.walk.__func__ is G.Graph._walk_trace
    g.walk()
    assert not tr.done and len(tr.packets) == 4
    g.walk()
    assert tr.done and g.walk.__func__ is G.Graph._walk_plain  # back to the plain walk
    g.walk()
    recs = read_pcap(tmp_path / "t.pcap")
    assert len(recs) == 6
    assert all(r.data[0] == 0xAA and len(r.data) == 60 for r in recs)
    assert [r.data[1] for r in recs] == [0, 1, 2, 3, 4, 5]
    doc = json.loads((tmp_path / "t.json").read_text())
    paths = [p["path"] for p in doc["packets"]]
    assert paths == [["src", "cls", "even", "out"], ["src", "cls", "odd"]] * 2 + [
        ["src", "cls", "even", "out"],
        ["src", "cls", "odd"],
    ]
    assert [p["walk"] for p in doc["packets"]] == [1, 1, 1, 1, 2, 2]
    assert doc["packets"][0]["port"] == 3 and doc["packets"][0]["len"] == 60
    text = (tmp_path / "t.txt").read_text().splitlines()
    assert text[1] == "#1 walk 1 port 3 len 60: src -> cls -> odd"


def test_trace_stop_errors_and_stats_kept(umem, tmp_path):
    node_register("src", _frame_source(umem, [2, 2]), ["out"], source=True)
    node_register("out", _sink)
    g = graph_create("g", ["src"], umem=umem, stats=True)
    tr = g.trace(100, tmp_path / "a.pcap")
    with pytest.raises(GraphError) as ei:
        g.trace(1, tmp_path / "b.pcap")
    assert ei.value.errno == errno.EBUSY
    g.walk()
    tr.stop()
    assert tr.done and g.walk.__func__ is G.Graph._walk_stats
    assert len(read_pcap(tmp_path / "a.pcap")) == 2
    assert {s.name: s.objs for s in g.stats()} == {"src": 2, "out": 2}
    with pytest.raises(GraphError, match="positive integer"):
        g.trace(0, tmp_path / "c.pcap")
    no_umem = graph_create("h", ["src"])
    with pytest.raises(GraphError, match="has no UMEM"):
        no_umem.trace(1, tmp_path / "d.pcap")


# --------------------------------------------------------------------------------------------
# dot, idle, workers


def test_dot_export():
    node_register("pktdev_rx-0", source_of([]), ["pkt_cls"], source=True)
    node_register("pkt_cls", _pass, ["pkt_drop", "ip4_lookup"])
    node_register("ip4_lookup", _pass, ["pkt_drop"])
    node_register("pkt_drop", _sink)
    g = graph_create("worker-0", ["pktdev_rx-0"])
    dot = g.dot()
    assert dot.startswith('digraph "worker-0" {\n\trankdir=LR;\n')
    assert '\t"pktdev_rx-0" -> "pkt_cls" [label=0,color=blue];' in dot
    assert '\t"pkt_cls" -> "ip4_lookup" [label=1];' in dot
    assert '\t"pktdev_rx-0" [shape=box,color=blue];' in dot
    assert '\t"pkt_drop" [shape=doublecircle];' in dot
    assert dot.count("->") == 4 and dot.endswith("}\n")
    buf = io.StringIO()
    assert G.graph_export("worker-0", buf) == dot == buf.getvalue()


def test_idle_hooks():
    hits = []
    node_register("src", source_of([]), ["tx"], source=True)
    node_register("tx", _sink, idle=lambda n: hits.append(n.name))
    g = graph_create("g", ["src"])
    assert g.walk() == 0
    g.idle()
    assert hits == ["tx"]


def test_per_worker_clones_have_their_own_state():
    base = node_register("src", source_of([]), ["sink"], source=True)
    for w in (0, 1):
        c = node_clone(base, str(w))
        G.node_def(c).data["worker"] = w
    rec = Recorder()
    node_register("sink", rec)

    def init(node):
        node.ctx = [node.data["worker"] * 10 + i for i in range(node.data["worker"] + 1)]

    def produce(node, pv):
        k = len(node.ctx)
        pv.hash[:k] = node.ctx
        pv.n = k
        return 0

    for w in (0, 1):
        nd = G.node_def(f"src-{w}")
        nd.init = init
        nd.process = produce
    g0 = graph_create("worker0", ["src-0"])
    g1 = graph_create("worker1", ["src-1"])
    g0.walk()
    g1.walk()
    assert rec.seen == [[0], [10, 11]]
    assert g0.node_get_by_name("sink") is not g1.node_get_by_name("sink")


def test_graph_built_in_a_forked_worker():
    """Nodes registered before the fork are inherited; the worker builds its own graph."""
    rec_path = []
    node_register("src", source_of([[5, 6, 7]]), ["sink"], source=True)
    node_register("sink", lambda node, pv: rec_path.append(pv.hash[: pv.n].tolist()))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            g = graph_create("worker0", ["src"])
            g.walk()
            os.write(w, json.dumps(rec_path).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    data = os.read(r, 4096)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(data) == [[5, 6, 7]]
    assert G.graph_lookup("worker0") is None  # the parent has no graph
