"""bpf() wrappers, our XDP programs and attach policy, against the real kernel."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import tempfile

import pytest

from cndp.bpf import asm, progs, xdp
from cndp.errors import BpfError, NetdevError, VerifierError, XdpBusyError
from cndp.sys import bpf as sysbpf


@contextlib.contextmanager
def bpffs():
    """A private bpffs mount (pins vanish with the unmount, so nothing can leak)."""
    d = tempfile.mkdtemp(prefix="cndp-bpffs-")
    subprocess.run(["mount", "-t", "bpf", "bpf", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=False)
        os.rmdir(d)


def test_hash_map_crud():
    fd = sysbpf.map_create(sysbpf.MAP_TYPE_HASH, 4, 8, 16, name="cndp_t")
    try:
        k = struct.pack("I", 7)
        assert sysbpf.map_lookup(fd, k, 8) is None
        sysbpf.map_update(fd, k, struct.pack("Q", 99))
        assert struct.unpack("Q", sysbpf.map_lookup(fd, k, 8))[0] == 99
        with pytest.raises(BpfError) as ei:
            sysbpf.map_update(fd, k, struct.pack("Q", 1), sysbpf.BPF_NOEXIST)
        assert ei.value.errno == 17  # EEXIST
        sysbpf.map_update(fd, struct.pack("I", 8), struct.pack("Q", 1))
        assert sorted(sysbpf.map_keys(fd, 4)) == [struct.pack("I", 7), struct.pack("I", 8)]
        assert sysbpf.map_delete(fd, k) is True
        assert sysbpf.map_delete(fd, k) is False
        info = sysbpf.map_info(fd)
        assert (info.type, info.key_size, info.value_size, info.max_entries, info.name) == (
            sysbpf.MAP_TYPE_HASH,
            4,
            8,
            16,
            "cndp_t",
        )
    finally:
        os.close(fd)


def test_pin_and_get_xskmap():
    m = xdp.XskMap.create(8)
    try:
        with bpffs() as d:
            path = os.path.join(d, "xsks_map")
            m.pin(path)
            m2 = xdp.XskMap.from_pin(path)
            assert m2.max_entries == 8
            assert sysbpf.map_info(m2.fd).id == sysbpf.map_info(m.fd).id
            m2.close()
            with pytest.raises(BpfError, match="no pinned BPF object"):
                xdp.XskMap.from_pin(os.path.join(d, "missing"))
    finally:
        m.close()


def test_xskmap_from_fd_rejects_other_map_types():
    fd = sysbpf.map_create(sysbpf.MAP_TYPE_ARRAY, 4, 4, 1)
    try:
        with pytest.raises(BpfError, match="not an XSKMAP"):
            xdp.XskMap.from_fd(fd)
    finally:
        os.close(fd)


def test_verifier_refusal_carries_the_log():
    with pytest.raises(VerifierError) as ei:
        sysbpf.prog_load(sysbpf.PROG_TYPE_XDP, asm.exit_(), name="cndp_bad")
    assert "R0 !read_ok" in ei.value.log
    assert "verifier log" in str(ei.value)


@pytest.mark.parametrize("action", [asm.XDP_DROP, asm.XDP_PASS, asm.XDP_TX])
def test_verdict_programs_return_their_action(action):
    fd = progs.load("verdict", progs.verdict(action))
    try:
        info = sysbpf.prog_info(fd)
        assert info.name == "cndp_verdict" and info.type == sysbpf.PROG_TYPE_XDP
        r = sysbpf.prog_test_run(fd, bytes(64), repeat=3)
        assert r.retval == action
    finally:
        os.close(fd)


def test_counting_program_counts_frames_and_bytes():
    c = progs.Counter()
    fd = progs.load("count", progs.counting(asm.XDP_DROP, c.fd))
    try:
        r = sysbpf.prog_test_run(fd, bytes(100), repeat=25)
        assert r.retval == asm.XDP_DROP
        assert c.read() == (25, 2500)
        assert sysbpf.prog_info(fd).map_ids == (sysbpf.map_info(c.fd).id,)
    finally:
        os.close(fd)
        c.close()


def test_redirect_program_falls_back_to_pass_without_a_socket():
    m = xdp.XskMap.create(4)
    fd = progs.load("xsk_redir", progs.xsk_redirect(m.fd))
    try:
        assert sysbpf.prog_test_run(fd, bytes(64)).retval == asm.XDP_PASS
    finally:
        os.close(fd)
        m.close()


@pytest.mark.parametrize("mode", [xdp.XdpMode.SKB, xdp.XdpMode.DRV])
def test_attach_query_detach_on_veth(veth_pair, mode):
    b = veth_pair.b
    with b.enter():
        assert xdp.query(b.ifname) is None
        prog = xdp.XskProgram.acquire(b.ifname, mode)
        try:
            att = xdp.query(b.ifname)
            assert att is not None and att.ours
            assert att.mode == mode.value and att.prog_id == prog.prog_id
            assert att.name == "cndp_xsk_redir"
            # a second socket on the same netdev shares the program
            again = xdp.XskProgram.acquire(b.ifname, mode)
            assert again is prog and prog.refs == 2
            again.release()
            assert xdp.query(b.ifname) is not None
        finally:
            prog.release()
        assert xdp.query(b.ifname) is None


def test_foreign_program_is_not_replaced_unless_forced(veth_pair):
    b = veth_pair.b
    with b.enter():
        fd = sysbpf.prog_load(sysbpf.PROG_TYPE_XDP, progs.verdict(asm.XDP_PASS), name="theirs")
        try:
            xdp.attach(b.ifname, fd, xdp.XdpMode.SKB, force=True)
            with pytest.raises(XdpBusyError, match=r"'theirs'.*did not load"):
                xdp.XskProgram.acquire(b.ifname, xdp.XdpMode.SKB)
            att = xdp.query(b.ifname)
            assert att is not None and att.name == "theirs"  # untouched
            prog = xdp.XskProgram.acquire(b.ifname, xdp.XdpMode.SKB, force=True)
            assert xdp.query(b.ifname).name == "cndp_xsk_redir"
            prog.release()
            assert xdp.query(b.ifname) is None
        finally:
            os.close(fd)


def test_detach_with_expected_id_spares_a_newer_program(veth_pair):
    b = veth_pair.b
    with b.enter():
        fd = progs.load("pass", progs.verdict(asm.XDP_PASS))
        try:
            xdp.attach(b.ifname, fd, xdp.XdpMode.SKB)
            assert xdp.detach(b.ifname, expected_id=123456789) is False
            assert xdp.query(b.ifname) is not None
            assert xdp.detach(b.ifname) is True
        finally:
            os.close(fd)


def test_unknown_netdev_is_a_clear_error():
    with pytest.raises(NetdevError, match="does not exist"):
        xdp.query("nosuchdev0")


def test_bpf_link_attach_goes_away_with_the_link(veth_pair):
    """BPF_LINK_CREATE: the program stays attached only while the link fd lives."""
    b = veth_pair.b
    with b.enter():
        fd = progs.load("pass", progs.verdict(asm.XDP_PASS))
        try:
            link = sysbpf.link_create(fd, b.ifindex, sysbpf.ATTACH_XDP, xdp.XDP_FLAGS_SKB_MODE)
            try:
                att = xdp.query(b.ifname)
                assert att is not None and att.name == "cndp_pass" and att.mode == "skb"
                # a link-held program cannot be replaced over netlink
                with pytest.raises(Exception):  # noqa: B017 - kernel answers EBUSY
                    xdp.attach(b.ifname, fd, xdp.XdpMode.SKB)
            finally:
                os.close(link)
            assert xdp.query(b.ifname) is None
        finally:
            os.close(fd)


def test_live_frames_generator_sends_real_frames_and_parks_its_program(veth_pair):
    """The generator's frames arrive at the peer; its parked program makes a call cheap; the
    parking veth goes away on close."""
    import socket
    import time

    from cndp.bpf.trafficgen import LiveFrameGen
    from cndp.net.frames import udp4_frame

    a, b = veth_pair.a, veth_pair.b
    with b.enter():
        c = progs.Counter()
        fd = progs.load("sink", progs.counting(asm.XDP_DROP, c.fd))
        xdp.attach(b.ifname, fd, xdp.XdpMode.DRV)
    try:
        f = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
        with a.enter():
            with LiveFrameGen(a.ifname, f) as gen:
                assert gen.parked is not None
                assert xdp.query(gen.parked).name == "cndp_gen_tx"
                t0 = time.perf_counter()
                for _ in range(10):
                    gen.send(1000)
                per_call = (time.perf_counter() - t0) / 10
                parked = gen.parked
            names = [n for _, n in socket.if_nameindex()]
            assert parked not in names  # removed with the generator
        frames, nbytes = c.read()
        # ours, plus at most a few the Linux side sent on its own (IPv6 ND, ...)
        assert 10_000 <= frames <= 10_005 and nbytes >= 10_000 * len(f)
        assert per_call < 0.02  # not the ~25 ms RCU wait of an unparked program
    finally:
        with b.enter():
            xdp.detach(b.ifname)
        os.close(fd)
        c.close()
