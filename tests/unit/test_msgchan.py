"""msgchan: parent/child by name, batches both ways, timeouts, counters, and across fork."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from cndp.errors import ConfigError
from cndp.lib import msgchan as mc
from cndp.lib.msgchan import MC_NO_CHILD_CREATE, MsgChanError

DEADBEEF = 0xDEADBEEF


@pytest.fixture(autouse=True)
def shm_dir(tmp_path, monkeypatch):
    """Channels of these tests live in a per-test directory (inherited across fork)."""
    monkeypatch.setattr(mc, "SHM_DIR", str(tmp_path))
    yield tmp_path
    for ends in list(mc._open.values()):
        for end in list(ends):
            end.destroy()
    assert not list(tmp_path.glob("pycndp-mc.*")), "a channel file was left behind"


def _fork(fn) -> int:
    """Run fn() in a forked child; its exit status is 0 only if fn returned normally."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _wait(pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("child process did not finish")


@pytest.mark.parametrize("size", [64, 256, 1024, 8192])
def test_parent_child_same_name_swapped_rings(size):
    parent = mc.create("chan", size)
    child = mc.create("chan", size)
    assert (parent.role, child.role) == ("parent", "child")
    assert (parent.label, child.label) == ("P:chan", "C0:chan")
    for n in (1, 4, 7, 8, 16, 32, 63, 64, 128, 256):
        if n > size:
            continue
        vals = np.arange(n, dtype=np.uint64) * 0x1000 + n
        assert parent.send(vals) == n
        got = child.recv(n)
        assert got.tolist() == vals.tolist()
        assert child.send(vals[::-1]) == n
        assert parent.recv(512).tolist() == vals[::-1].tolist()
    assert parent.recv(8).size == 0 and child.recv(8).size == 0
    assert mc.lookup("chan") is parent  # this process holds both: the parent is found


def test_wraparound_and_full_ring():
    p = mc.create("wrap", 64)
    c = mc.create("wrap")
    assert c.size == 64  # a child takes the parent's size
    sent = 0
    for _ in range(40):  # 40 x 37 values run the u32 indices around the 64-entry ring 23 times
        vals = np.arange(sent, sent + 37, dtype=np.uint64)
        assert p.send(vals) == 37
        sent += 37
        assert c.recv(64).tolist() == vals.tolist()
    assert p.send(np.arange(100, dtype=np.uint64)) == 64  # only the capacity fits
    assert p.size_info() == (64, 64, 0)
    assert c.size_info() == (64, 0, 64)
    info = p.info()
    assert info["send_full"] == 1 and info["send_cnt"] == 40 * 37 + 64
    assert c.info()["peer"]["send_cnt"] == info["send_cnt"]
    out = np.zeros(10, np.uint64)
    assert c.recv_into(out) == 10 and out.tolist() == list(range(10))
    assert c.recv_count() == 54 and p.send_count() == 54
    assert p.send([1, 2, 3]) == 3  # plain ints are fine


def test_recv_timeout():
    p = mc.create("tmo", 64)
    c = mc.create("tmo")
    t0 = time.monotonic()
    assert c.recv(4, timeout_ms=30).size == 0
    assert time.monotonic() - t0 >= 0.03
    assert c.info()["recv_empty"] == 1
    p.send([5])
    assert c.recv(4, timeout_ms=10_000).tolist() == [5]  # data there: no wait


def test_names_sizes_flags_errors():
    for bad in ("", "a/b", "x" * 33, "sp ace", "a#b"):
        with pytest.raises(ConfigError, match="name"):
            mc.create(bad)
    for bad in (0, 1, 100, 1 << 25):
        with pytest.raises(ConfigError, match="power of two"):
            mc.create("ok", bad)
    with pytest.raises(ConfigError, match="flags"):
        mc.create("ok", 64, 0x1)
    p = mc.create("solo", 64, MC_NO_CHILD_CREATE)
    with pytest.raises(MsgChanError, match="MC_NO_CHILD_CREATE"):
        mc.create("solo", 64, MC_NO_CHILD_CREATE)
    c = mc.create("solo")
    assert c.role == "child"
    p.destroy()
    with pytest.raises(MsgChanError, match="destroyed"):
        p.send([1])


def test_one_child_at_a_time_and_destroy():
    p = mc.create("one", 64)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def other_child():
        end = mc.create("one")
        assert end.role == "child"
        os.write(ready_w, b"x")
        os.read(go_r, 1)  # hold the child slot until told
        end.destroy()

    pid = _fork(other_child)
    assert os.read(ready_r, 1) == b"x"
    with pytest.raises(MsgChanError, match="already has a child"):
        mc.create("one")
    os.write(go_w, b"x")
    assert _wait(pid) == 0
    c = mc.create("one")  # the slot is free again
    assert c.role == "child" and c.info()["child_pid"] == os.getpid()
    names = [x["name"] for x in mc.list_channels()]
    assert names == ["one"]
    p.destroy()
    assert mc.list_channels() == []
    assert mc.lookup("one") is c
    # the child keeps a working mapping after the parent left (no use-after-free)
    assert c.send([1]) == 1
    c.destroy()
    assert mc.lookup("one") is None
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)


def test_echo_across_fork():
    """CNDP's msgchan test: a server echoes batches of 1..256 values until 0xdeadbeef."""
    p = mc.create("echo", 1024)

    def server():
        end = mc.create("echo")  # the forked worker gets the child end by name
        assert end.role == "child"
        while True:
            vals = end.recv(256, timeout_ms=5000)
            if vals.size == 0:
                raise TimeoutError("no request")
            if vals[-1] == DEADBEEF:
                end.send(vals[:-1] + np.uint64(1))
                break
            while end.send(vals + np.uint64(1)) == 0:
                time.sleep(0.0001)
        end.destroy()

    pid = _fork(server)
    try:
        rng = np.random.default_rng(1)
        for count in (1, 2, 7, 63, 64, 65, 128, 255, 256):
            vals = rng.integers(0, 2**63, count, dtype=np.uint64)
            assert p.send(vals) == count
            got = []
            while len(got) < count:
                part = p.recv(256, timeout_ms=5000)
                assert part.size, "echo timed out"
                got += part.tolist()
            assert got == (vals + np.uint64(1)).tolist()
        p.send(np.array([41, DEADBEEF], np.uint64))
        assert p.recv(4, timeout_ms=5000).tolist() == [42]
    finally:
        assert _wait(pid) == 0
    assert p.info()["child_pid"] == 0  # the server's destroy freed the child slot


def test_worker_creates_after_fork_main_attaches():
    ready_r, ready_w = os.pipe()

    def worker():
        end = mc.create("late", 128)
        assert end.role == "parent"
        os.write(ready_w, b"x")
        vals = end.recv(16, timeout_ms=5000)
        end.send(vals * np.uint64(2))
        time.sleep(0.05)  # let the reply be read before the name goes
        end.destroy()

    pid = _fork(worker)
    try:
        assert os.read(ready_r, 1) == b"x"
        c = mc.create("late")
        assert c.role == "child" and c.size == 128
        c.send([1, 2, 3])
        assert c.recv(16, timeout_ms=5000).tolist() == [2, 4, 6]
    finally:
        assert _wait(pid) == 0
        os.close(ready_r)
        os.close(ready_w)
    c.destroy()


def test_stale_channel_of_a_dead_creator_is_reclaimed(shm_dir: Path):
    def crash():
        end = mc.create("stale", 64)
        end.send([7])
        os._exit(0)  # dies without destroying

    assert _wait(_fork(crash)) == 0
    assert [x["stale"] for x in mc.list_channels()] == [True]
    p = mc.create("stale", 64)
    assert p.role == "parent"  # reclaimed, fresh rings
    assert p.recv(4).size == 0 and mc.create("stale").recv(4).size == 0
    assert [x["stale"] for x in mc.list_channels()] == [False]


def test_default_dir_is_dev_shm_and_nothing_is_left(monkeypatch):
    monkeypatch.setattr(mc, "SHM_DIR", "/dev/shm")
    name = f"t{os.getpid()}-{time.monotonic_ns() % 10**9}"
    path = Path("/dev/shm") / f"pycndp-mc.{name}"
    try:
        with mc.create(name, 64) as p, mc.create(name) as c:
            assert path.exists()
            p.send([9])
            assert c.recv(1).tolist() == [9]
        assert not path.exists()
    finally:
        path.unlink(missing_ok=True)
