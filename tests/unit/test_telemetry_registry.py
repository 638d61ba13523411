"""The metrics registry: shared counter blocks across fork, seqlock-consistent snapshots."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.telemetry.registry import (
    U64_MAX,
    WORKER_KEYS,
    Registry,
    RegistryError,
    shared_zeros,
)
from cndp.xskdev.xskdev import STAT_KEYS


def _fork(fn) -> None:
    """Run fn in a forked child; fail if the child fails."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_forked_writer_is_seen_by_the_parent():
    reg = Registry()
    ports = reg.add_block("lport", ["eth0:0", "eth1:0"], STAT_KEYS, kind="queue")
    workers = reg.add_block("worker", ["fwd:0"], WORKER_KEYS)
    reg.freeze()

    def child():
        ports.publish("eth1:0", {"ipackets": 123, "ibytes": 7380, "not_a_key": 5})
        workers.writer(0).set("pid", os.getpid())
        workers.writer(0).add("loops", 256)
        workers.writer(0).add("loops", 256)

    _fork(child)
    snap = reg.snapshot()
    assert snap["lport"].row("eth1:0")["ipackets"] == 123
    assert snap["lport"].get("eth1:0", "ibytes") == 7380
    assert snap["lport"].row("eth0:0") == dict.fromkeys(STAT_KEYS, 0)
    assert snap["worker"].get("fwd:0", "loops") == 512
    assert snap["worker"].get("fwd:0", "pid") not in (0, os.getpid())
    assert snap["lport"].age("eth1:0") is not None and snap["lport"].age("eth0:0") is None
    assert snap["lport"].torn == ()
    assert ports.read(1)["ipackets"] == 123  # the row API the stats screen uses


def test_blocks_after_freeze_and_bad_names_are_refused():
    reg = Registry()
    reg.add_block("a", ["x"], ["k"])
    with pytest.raises(RegistryError, match="already exists"):
        reg.add_block("a", ["x"], ["k"])
    with pytest.raises(RegistryError, match="unique"):
        reg.add_block("b", ["x", "x"], ["k"])
    with pytest.raises(RegistryError, match="no keys"):
        reg.add_block("c", ["x"], [])
    reg.freeze()
    with pytest.raises(RegistryError, match="after the workers started"):
        reg.add_block("d", ["x"], ["k"])
    with pytest.raises(RegistryError, match="no block"):
        reg.block("zzz")
    with pytest.raises(RegistryError, match="no row"):
        reg.block("a").writer("nope")
    with pytest.raises(RegistryError, match="no row"):
        reg.block("a").read(5)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(STAT_KEYS),
        st.integers(min_value=-(2**70), max_value=2**70),
        max_size=len(STAT_KEYS),
    )
)
def test_publish_stores_every_known_key_clamped_to_u64(stats):
    reg = Registry()
    b = reg.add_block("lport", ["p"], STAT_KEYS)
    b.publish("p", stats)
    got = b.read("p")
    for k in STAT_KEYS:
        want = min(max(stats.get(k, 0), 0), U64_MAX)
        assert got[k] == want


def test_per_port_figures_are_the_queue_rows_summed_by_netdev():
    reg = Registry()
    b = reg.add_block("lport", ["eth0:0", "eth0:1", "eth1:0"], ("ipackets", "ibytes"))
    b.labels.update({"eth0:0": {"netdev": "eth0"}, "eth0:1": {"netdev": "eth0"}})
    b.labels["eth1:0"] = {"netdev": "eth1"}
    b.publish("eth0:0", {"ipackets": 1, "ibytes": 60})
    b.publish("eth0:1", {"ipackets": 2, "ibytes": 120})
    b.publish("eth1:0", {"ipackets": 4, "ibytes": 240})
    snap = b.snapshot()
    assert snap.group_by("netdev") == {
        "eth0": {"ipackets": 3, "ibytes": 180},
        "eth1": {"ipackets": 4, "ibytes": 240},
    }
    assert snap.total() == {"ipackets": 7, "ibytes": 420}


def test_a_writer_that_died_mid_write_does_not_hang_readers():
    reg = Registry()
    b = reg.add_block("lport", ["p", "q"], ("a", "b"))
    b.publish("q", {"a": 1})
    b.seq[0] += 1  # as if the writer died between the two sequence increments
    t0 = time.monotonic()
    snap = b.snapshot()
    assert time.monotonic() - t0 < 0.5
    assert snap.torn == ("p",)
    assert snap.row("q") == {"a": 1, "b": 0}
    assert b.read("p") == {"a": 0, "b": 0}


def test_snapshots_never_show_a_half_written_row():
    """A child rewrites a wide row as fast as it can, every key with the same value; every
    row a reader accepts must have one value throughout (the seqlock's promise)."""
    keys = [f"k{i}" for i in range(256)]
    reg = Registry()
    b = reg.add_block("wide", ["r"], keys)
    reg.freeze()
    flag = shared_zeros(1)  # parent -> child: stop
    pid = os.fork()
    if pid == 0:
        w = b.writer("r")
        row = np.zeros(len(keys), np.uint64)
        v = 0
        try:
            while not flag[0]:
                v += 1
                row[:] = v
                w.store(row)
        finally:
            os._exit(0)
    try:
        seen = set()
        deadline = time.monotonic() + 0.6
        checked = 0
        while time.monotonic() < deadline:
            snap = b.snapshot()
            if snap.torn:
                continue
            vals = snap.values[0]
            assert (vals == vals[0]).all(), f"torn row accepted: {sorted(set(vals.tolist()))[:5]}"
            seen.add(int(vals[0]))
            checked += 1
    finally:
        flag[0] = 1
        os.waitpid(pid, 0)
    assert checked > 50 and len(seen) > 5  # the writer really was writing meanwhile
