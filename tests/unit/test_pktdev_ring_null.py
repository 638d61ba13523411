"""pktdev core (registry, config, admin state) and the two drivers that need no device:
net_ring and net_null. No privileges needed."""

from __future__ import annotations

import errno
import os
import struct

import numpy as np
import pytest

from cndp import pktdev
from cndp.errors import CndpError, ConfigError
from cndp.mem import Mempool, PktVec, Umem
from cndp.pktdev import (
    MAX_ETHPORTS,
    PKTDEV_ADMIN_STATE_DOWN,
    STAT_KEYS,
    PortConfig,
    PortError,
    port_setup,
)
from cndp.pktdev.port import ByteLog, parse_pmd


@pytest.fixture(autouse=True)
def _no_ports_left():
    assert pktdev.port_count() == 0, "a previous test leaked ports"
    yield
    pktdev.close_all()


@pytest.fixture
def umem():
    with Umem(2048, 2048, regions=[1024, 1024]) as u:
        yield u


def fill(umem: Umem, pv: PktVec, lens: np.ndarray, seed: int = 0) -> list[bytes]:
    """Write distinct bytes into every packet of pv (test setup; returns the payloads)."""
    out = []
    for i in range(pv.n):
        n = int(lens[i])
        data = bytes((seed + i * 7 + j) & 0xFF for j in range(n))
        off = int(pv.addr[i])
        umem.data[off : off + n] = np.frombuffer(data, np.uint8)
        pv.data_len[i] = n
        out.append(data)
    return out


def payloads(umem: Umem, pv: PktVec) -> list[bytes]:
    return [
        bytes(umem.data[int(a) : int(a) + int(n)])
        for a, n in zip(pv.addr[: pv.n], pv.data_len[: pv.n], strict=True)
    ]


# --------------------------------------------------------------------------------------------
# configuration and registry


def test_config_defaults_and_validation():
    c = PortConfig("eth0:3", "net_af_xdp", qid=3)
    assert c.ifname == "eth0" and c.pmd_name == "net_af_xdp" and c.pmd_opts == {}
    assert PortConfig("r", "net_ring:size=64, x").pmd_opts == {"size": "64", "x": ""}
    assert parse_pmd("net_memif_socket:server") == ("net_memif_socket", {"server": ""})
    with pytest.raises(ConfigError, match="qid"):
        PortConfig("eth0:0", "net_af_xdp", qid=-1)
    with pytest.raises(ConfigError, match="name"):
        PortConfig("", "net_null")
    with pytest.raises(ConfigError, match="pmd"):
        PortConfig("x", "")
    with pytest.raises(ConfigError, match="umem"):
        PortConfig("x", "net_null", umem=object())  # type: ignore[arg-type]
    assert "pmd" in PortConfig("n0", "net_null").dump()


@pytest.mark.parametrize("bad", ["net_af_xdp_", "net_rings", "NET_NULL", "net_null_"])
def test_unknown_pmd_is_refused_with_the_known_list(bad):
    with pytest.raises(ConfigError) as ei:
        port_setup(PortConfig("x0", bad))
    msg = str(ei.value)
    for known in ("net_af_xdp", "net_ring", "net_null", "net_tap", "net_af_packet"):
        assert known in msg
    assert pktdev.port_count() == 0


def test_unknown_pmd_option_is_refused(umem):
    with pytest.raises(ConfigError, match="bogus"):
        port_setup(PortConfig("r0", "net_ring:bogus=1", umem=umem))
    with pytest.raises(ConfigError, match="power of two"):
        port_setup(PortConfig("r0", "net_ring:size=1000", umem=umem))
    with pytest.raises(ConfigError, match="not an integer"):
        port_setup(PortConfig("r0", "net_ring:size=big", umem=umem))
    assert pktdev.port_count() == 0


def test_registry_ids_names_and_limits(umem):
    a = port_setup(PortConfig("null0", "net_null", umem=umem))
    b = port_setup(PortConfig("ring0", "net_ring", umem=umem))
    assert (a.lport, b.lport) == (0, 1)
    assert pktdev.port_count() == 2
    assert pktdev.get_port_by_name("ring0") == 1 and pktdev.port_name(0) == "null0"
    assert pktdev.get_port(1) is b and pktdev.ports() == [a, b]
    assert pktdev.is_valid_port(1) and not pktdev.is_valid_port(2)
    assert not pktdev.is_valid_port(MAX_ETHPORTS + 5) and not pktdev.is_valid_port(-1)
    assert pktdev.port_name(5) is None and pktdev.port_name(MAX_ETHPORTS) is None
    with pytest.raises(PortError) as ei:
        pktdev.get_port_by_name("nope")
    assert ei.value.errno == errno.ENODEV
    with pytest.raises(ConfigError, match="already exists"):
        port_setup(PortConfig("ring0", "net_null"))
    # info: ENOTSUP below the maximum, ENODEV beyond it (CNDP's pktdev test)
    assert pktdev.info(1).driver_name == "net_ring"
    with pytest.raises(PortError) as ei:
        pktdev.info(2)
    assert ei.value.errno == errno.ENOTSUP
    with pytest.raises(PortError) as ei:
        pktdev.info(MAX_ETHPORTS + 1)
    assert ei.value.errno == errno.ENODEV
    # the lowest free id is reused
    a.close()
    assert not pktdev.is_valid_port(0)
    c = port_setup(PortConfig("null1", "net_null"))
    assert c.lport == 0
    # all ids in use -> ENOSPC, and nothing half-made stays behind
    more = [port_setup(PortConfig(f"n{i}", "net_null")) for i in range(MAX_ETHPORTS - 2)]
    assert pktdev.port_count() == MAX_ETHPORTS and more[-1].lport == MAX_ETHPORTS - 1
    with pytest.raises(PortError) as ei:
        port_setup(PortConfig("one-too-many", "net_null"))
    assert ei.value.errno == errno.ENOSPC
    pktdev.close_all()
    assert pktdev.port_count() == 0


def test_module_level_api_by_lport_id(umem):
    p = port_setup(PortConfig("null0", "net_null", umem=umem))
    pv = PktVec(16)
    assert pktdev.rx_burst(p.lport, pv, 8) == 8
    assert pktdev.tx_burst(p.lport, pv) == 8
    assert pktdev.stats_get(p.lport)["ipackets"] == 8
    pktdev.stats_reset(p.lport)
    assert pktdev.stats_get(p.lport)["ipackets"] == 0
    pktdev.stop(p.lport)
    assert not pktdev.admin_state(p.lport)
    assert pktdev.rx_burst(p.lport, pv) == PKTDEV_ADMIN_STATE_DOWN
    pktdev.admin_state_set(p.lport, True)
    assert pktdev.admin_state(p.lport) and not pktdev.admin_state(7)
    assert len(pktdev.macaddr_get(p.lport)) == 6
    assert pktdev.offloads_get(p.lport).rx_checksum_offload is False
    pv.n = 0
    assert pktdev.buf_alloc(p.lport, pv, 4) == 4
    p.buf_free(pv.addr[:4])
    pktdev.close(p.lport)
    assert pktdev.port_count() == 0


def test_bytelog_sums_across_flushes():
    b = ByteLog(size=8)
    total = 0
    for k in (3, 5, 7, 20, 1):
        lens = np.arange(k, dtype=np.uint16) + 60
        b.add(lens)
        total += int(lens.sum())
    assert b.total() == total
    b.reset()
    assert b.total() == 0


# --------------------------------------------------------------------------------------------
# net_null


def test_null_rx_allocates_64_byte_packets_and_tx_frees(umem):
    pool = Mempool.for_region(umem, 1)
    p = port_setup(PortConfig("null0", "net_null", umem=umem, pool=pool))
    pv = PktVec(32)
    assert p.rx_burst(pv, 20) == 20 and pv.n == 20
    assert (pv.data_len[:20] == 64).all() and (pv.port[:20] == p.lport).all()
    assert pool.avail == pool.capacity - 20
    # frames come from region 1, data at frame + 256
    assert ((pv.addr[:20] - 256) % 2048 == 0).all() and (pv.addr[:20] >= 1024 * 2048).all()
    assert p.tx_burst(pv, 15) == 15
    assert pool.avail == pool.capacity - 5
    st = p.stats()
    assert set(st) == set(STAT_KEYS)
    assert (st["ipackets"], st["opackets"], st["ibytes"], st["obytes"]) == (20, 15, 1280, 960)
    assert all(
        v == 0 for k, v in st.items() if k not in ("ipackets", "opackets", "ibytes", "obytes")
    )
    p.reset_stats()
    assert all(v == 0 for v in p.stats().values())
    p.buf_free(pv.addr[15:20])
    p.close()
    assert pool.avail == pool.capacity


def test_null_without_umem_gives_no_packets():
    p = port_setup(PortConfig("null0", "net_null"))
    pv = PktVec(8)
    assert p.pool is None
    assert p.rx_burst(pv) == 0 and pv.n == 0
    assert p.buf_alloc(pv, 4) == 0
    with pytest.raises(PortError):
        p.buf_free(np.zeros(1, np.uint64))


def test_null_rx_limited_by_pool(umem):
    pool = Mempool(np.arange(10, dtype=np.uint64) * 2048, bufsz=2048)
    p = port_setup(PortConfig("null0", "net_null", umem=umem, pool=pool))
    pv = PktVec(64)
    assert p.rx_burst(pv) == 10
    assert p.rx_burst(PktVec(64)) == 0
    p.tx_burst(pv)
    assert pool.avail == 10


def test_default_pool_is_shared_per_region_and_reset_by_last_user(umem):
    a = port_setup(PortConfig("null0", "net_null", umem=umem, region=1))
    b = port_setup(PortConfig("ring0", "net_ring", umem=umem, region=1))
    c = port_setup(PortConfig("null1", "net_null", umem=umem, region=0))
    assert a.pool is b.pool and a.pool is not c.pool
    pv = PktVec(64)
    a.rx_burst(pv)
    a.close()
    assert b.pool.avail == b.pool.capacity - 64  # b still uses it: not reset
    pool = b.pool
    b.close()
    assert pool.avail == pool.capacity  # last user gone: every frame is free again
    with pytest.raises(ConfigError, match="region"):
        port_setup(PortConfig("null2", "net_null", umem=umem, region=5))


# --------------------------------------------------------------------------------------------
# admin state, control calls


@pytest.mark.parametrize("pmd", ["net_null", "net_ring"])
def test_admin_down_returns_0xffff_and_leaves_the_vector(umem, pmd):
    p = port_setup(PortConfig("p0", pmd, umem=umem))
    assert p.admin_state
    pv = PktVec(8)
    p.buf_alloc(pv, 4)
    p.stop()
    assert not p.admin_state
    assert p.rx_burst(pv) == PKTDEV_ADMIN_STATE_DOWN
    assert p.tx_burst(pv) == PKTDEV_ADMIN_STATE_DOWN
    assert pv.n == 4  # untouched: the caller still owns the 4 frames
    assert p.stats()["opackets"] == 0
    p.start()
    assert p.tx_burst(pv) == 4
    assert p.rx_burst(pv) == (4 if pmd == "net_ring" else 8)


@pytest.mark.parametrize("pmd", ["net_null", "net_ring"])
def test_no_netdev_control_calls(umem, pmd):
    p = port_setup(PortConfig("p0", pmd, umem=umem))
    with pytest.raises(PortError) as ei:
        p.promiscuous(True)
    assert ei.value.errno == errno.ENOTSUP
    assert len(p.mac) == 6 and p.mac[0] & 0x02 and not p.mac[0] & 0x01  # local unicast
    assert p.mtu == 1500
    p.set_mtu(1400)
    assert p.mtu == 1400
    with pytest.raises(ConfigError):
        p.set_mtu(10)
    assert p.link_up()
    assert p.fileno() is None
    inf = p.info()
    assert (inf.driver_name, inf.lport, inf.admin_state, inf.socket_id) == (pmd, p.lport, True, 0)
    assert inf.rx_fd == -1 and inf.if_index == 0
    p.close()
    p.close()  # idempotent
    assert p.rx_burst(PktVec(4)) == PKTDEV_ADMIN_STATE_DOWN
    assert not p.link_up()
    with pytest.raises(PortError):
        p.info()


# --------------------------------------------------------------------------------------------
# net_ring


def test_ring_loopback_returns_exact_packets_in_order(umem):
    pool = Mempool.for_region(umem, 0)
    p = port_setup(PortConfig("ring0", "net_ring", umem=umem, pool=pool))
    assert p.rx_desc() == 1024
    pv = PktVec(64)
    p.buf_alloc(pv, 40)
    sent = fill(umem, pv, 60 + np.arange(40) * 13)
    addrs = pv.addr[:40].copy()
    assert p.tx_burst(pv, 30) == 30  # only the first 30 are consumed
    assert p.queued() == 30
    got = PktVec(64)
    assert p.rx_burst(got, 10) == 10
    assert p.rx_burst(got, 64) == 20  # the rest; the first vector's content is replaced
    assert p.rx_burst(got) == 0
    p.rx_burst(got)
    # frames travel without copies: same offsets, same bytes
    q = PktVec(64)
    pv2 = PktVec(64)
    pv2.n = 10
    pv2.addr[:10] = pv.addr[30:40]
    pv2.data_len[:10] = pv.data_len[30:40]
    assert p.tx_burst(pv2) == 10
    assert p.rx_burst(q) == 10
    assert payloads(umem, q) == sent[30:40]
    assert (q.addr[:10] == addrs[30:40]).all() and (q.port[:10] == p.lport).all()
    st = p.stats()
    assert st["opackets"] == 40 and st["ipackets"] == 40
    assert st["obytes"] == st["ibytes"] == sum(len(s) for s in sent)
    assert st["rx_ring_empty"] == 2


def test_ring_wraps_and_fills(umem):
    pool = Mempool.for_region(umem, 0)
    p = port_setup(PortConfig("ring0", "net_ring:size=64", umem=umem, pool=pool))
    assert p.rx_desc() == 64
    pv = PktVec(100)
    assert p.buf_alloc(pv, 100) == 100
    pv.data_len[:100] = np.arange(100) + 60
    # a full ring takes only what fits; the caller keeps the rest
    assert p.tx_burst(pv) == 64
    assert p.stats()["tx_ring_full"] == 1
    out = PktVec(100)
    assert p.rx_burst(out) == 64
    assert (out.data_len[:64] == pv.data_len[:64]).all()
    # many odd-sized bursts across the wrap point keep FIFO order
    rng = np.random.default_rng(1)
    src = PktVec(64)
    seq = 0
    expect: list[int] = []
    seen: list[int] = []
    for _ in range(300):
        k = int(rng.integers(1, 40))
        src.n = k
        src.addr[:k] = pv.addr[:k]
        src.data_len[:k] = (np.arange(seq, seq + k) % 1000) + 60
        sent = p.tx_burst(src)
        expect += list((np.arange(seq, seq + sent) % 1000) + 60)
        seq += sent
        got = p.rx_burst(out, int(rng.integers(1, 50)))
        seen += out.data_len[:got].tolist()
    while p.rx_burst(out):
        seen += out.data_len[: out.n].tolist()
    assert seen == expect and len(seen) > 3000


def test_two_ports_on_one_ring_name_share_it(umem):
    pool = Mempool.for_region(umem, 0)
    a = port_setup(PortConfig("ring0:a", "net_ring", ifname="ringX", umem=umem, pool=pool))
    b = port_setup(PortConfig("ring0:b", "net_ring", ifname="ringX", umem=umem, pool=pool))
    c = port_setup(PortConfig("ring1", "net_ring", umem=umem, pool=pool))
    pv = PktVec(8)
    a.buf_alloc(pv, 8)
    pv.data_len[:8] = 77
    assert a.tx_burst(pv) == 8
    out = PktVec(8)
    assert c.rx_burst(out) == 0  # another ring
    assert b.rx_burst(out) == 8 and (out.port[:8] == b.lport).all()
    assert a.stats()["opackets"] == 8 and b.stats()["ipackets"] == 8
    with pytest.raises(ConfigError, match="already exists with 1024"):
        port_setup(PortConfig("ring0:c", "net_ring:size=64", ifname="ringX", umem=umem))
    # closing one port keeps the ring for the other
    b.tx_burst(out)
    a.close()
    assert b.rx_burst(out) == 8


def test_ring_close_returns_queued_frames_to_their_pools(umem):
    pool0 = Mempool.for_region(umem, 0)
    pool1 = Mempool.for_region(umem, 1)
    a = port_setup(PortConfig("r:a", "net_ring", ifname="rq", umem=umem, pool=pool0))
    b = port_setup(PortConfig("r:b", "net_ring", ifname="rq", umem=umem, pool=pool1))
    pa, pb = PktVec(16), PktVec(16)
    a.buf_alloc(pa, 16)
    b.buf_alloc(pb, 16)
    pa.data_len[:16] = pb.data_len[:16] = 60
    assert a.tx_burst(pa) == 16 and b.tx_burst(pb) == 16
    a.close()
    assert pool0.avail == pool0.capacity - 16  # b may still receive them
    b.close()
    assert pool0.avail == pool0.capacity and pool1.avail == pool1.capacity


def _child(fn) -> int:
    """Run fn() in a forked child; returns its exit status (fn's int, 99 on exception)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_ring_created_before_fork_carries_packets_between_processes(umem):
    pool = Mempool.for_region(umem, 0)
    ring = port_setup(PortConfig("ring0", "net_ring", umem=umem, pool=pool))
    n_total = 3000  # about three times the ring: the producer must wait for the consumer
    rd, wr = os.pipe()

    def producer() -> int:
        os.close(rd)
        pv = PktVec(64)
        sent = 0
        while sent < n_total:
            if pv.n == 0:
                k = min(64, n_total - sent)
                pv.n = k
                pv.addr[:k] = (np.arange(sent, sent + k) % 2048).astype(np.uint64) * 2048 + 256
                pv.data_len[:k] = np.arange(sent, sent + k) % 1400 + 60
                for i in range(k):  # payload carries the sequence number
                    off = int(pv.addr[i])
                    umem.data[off : off + 4] = np.frombuffer(struct.pack("<I", sent + i), np.uint8)
            k = ring.tx_burst(pv)
            if k:
                sent += k
                pv.n -= k
                pv.addr[: pv.n] = pv.addr[k : k + pv.n]
                pv.data_len[: pv.n] = pv.data_len[k : k + pv.n]
            # tx_burst returns fewer when the ring is full: try again
        os.write(wr, struct.pack("<Q", ring.stats()["opackets"]))
        return 0

    pid_status: list[int] = []
    child_pid = os.fork()
    if child_pid == 0:  # pragma: no cover - child
        code = 99
        try:
            code = producer()
        finally:
            os._exit(code)
    os.close(wr)
    out = PktVec(64)
    got_lens: list[int] = []
    got_seq: list[int] = []
    import time

    deadline = time.monotonic() + 20
    while len(got_lens) < n_total and time.monotonic() < deadline:
        k = ring.rx_burst(out)
        if k:
            got_lens += out.data_len[:k].tolist()
            for i in range(k):
                off = int(out.addr[i])
                got_seq.append(struct.unpack("<I", bytes(umem.data[off : off + 4]))[0])
    opackets = struct.unpack("<Q", os.read(rd, 8))[0]
    os.close(rd)
    _, status = os.waitpid(child_pid, 0)
    pid_status.append(os.waitstatus_to_exitcode(status))
    assert pid_status == [0]
    assert opackets == n_total
    assert got_seq == list(range(n_total))
    assert got_lens == [i % 1400 + 60 for i in range(n_total)]
    assert ring.stats()["ipackets"] == n_total


def test_ring_refuses_a_second_live_consumer_process(umem):
    ring = port_setup(PortConfig("ring0", "net_ring", umem=umem))
    pv = PktVec(8)
    assert ring.rx_burst(pv) == 0  # this process is now the consumer
    rd, wr = os.pipe()

    def second_consumer() -> int:
        os.close(rd)
        try:
            ring.rx_burst(PktVec(8))
        except CndpError as e:
            os.write(wr, str(e).encode()[:200])
            return 3 if e.errno == errno.EBUSY else 4
        return 0

    def producer() -> int:  # the producer role is free: allowed
        pv = PktVec(8)
        pv.n = 1
        pv.addr[0] = 256
        pv.data_len[0] = 60
        return 5 if ring.tx_burst(pv) == 1 else 6

    assert _child(second_consumer) == 3
    os.close(wr)
    msg = os.read(rd, 200).decode()
    os.close(rd)
    assert "already its consumer" in msg and str(os.getpid()) in msg
    assert _child(producer) == 5
    assert ring.rx_burst(pv) == 1  # what the child sent
    # the first producer has exited: another process may take the role over
    assert _child(producer) == 5
    assert ring.rx_burst(pv) == 1
