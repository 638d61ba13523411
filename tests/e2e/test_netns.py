"""Test hosts (cndp.testing.netns) against the real kernel: namespaces, veth, addresses,
queues, teardown, and namespace switching."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cndp.errors import ConfigError, NetdevError
from cndp.testing import netns as tn

pytestmark = pytest.mark.e2e


def _wait_for(pred, timeout=3.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _ip_json(host: tn.Host, *args: str):
    r = host.run(["ip", "-j", *args], check=True)
    return json.loads(r.stdout)


def _fresh_prefix() -> str:
    # A prefix under the run prefix that no pair prefix (run prefix + 2 hex digits) can be a
    # prefix of, so the session leak check still covers it.
    return f"{tn.run_prefix()}x{os.urandom(1).hex()}"


def _ping(src: tn.Host, dst_addr: str) -> subprocess.CompletedProcess:
    return src.run(["ping", "-c", "1", "-W", "1", dst_addr])


# --------------------------------------------------------------------------------------------
# what make_veth_pair builds


def test_run_prefix_is_short_and_stable(run_prefix):
    assert re.fullmatch(r"cn[0-9a-f]{4}", run_prefix)
    assert tn.run_prefix() == run_prefix
    assert len(f"{run_prefix}00a0") <= 15


def test_pair_names_macs_addresses_as_requested(veth_pair):
    a, b = veth_pair.a, veth_pair.b
    assert veth_pair.prefix.startswith(tn.run_prefix())
    assert (a.ns, b.ns) == (f"{veth_pair.prefix}-a", f"{veth_pair.prefix}-b")
    assert (a.ifname, b.ifname) == (f"{veth_pair.prefix}a0", f"{veth_pair.prefix}b0")
    assert {a.ns, b.ns} <= set(os.listdir("/var/run/netns"))
    for host, mac, v4, v6 in (
        (a, "02:00:c6:12:00:01", "198.18.0.1", "fd00:198:18::1"),
        (b, "02:00:c6:12:00:02", "198.18.0.2", "fd00:198:18::2"),
    ):
        (link,) = _ip_json(host, "-d", "link", "show", "dev", host.ifname)
        assert link["address"] == mac == host.mac
        assert link["ifindex"] == host.ifindex
        assert link["linkinfo"]["info_kind"] == "veth"
        assert "UP" in link["flags"] and link["operstate"] == "UP"
        assert link["mtu"] == 1500
        (addrs,) = _ip_json(host, "addr", "show", "dev", host.ifname)
        got = {(x["local"], x["prefixlen"]) for x in addrs["addr_info"] if x["scope"] == "global"}
        assert got == {(v4, 24), (v6, 64)}
        (v6info,) = [x for x in addrs["addr_info"] if x["local"] == v6]
        assert not v6info.get("tentative"), "IPv6 address must be usable at once (nodad)"
        (lo,) = _ip_json(host, "link", "show", "dev", "lo")
        assert "UP" in lo["flags"]
        # nothing else lives in the namespace
        names = {x["ifname"] for x in _ip_json(host, "link", "show")}
        assert names == {"lo", host.ifname}
    # the veth never shows up in the namespace the test runs in
    assert not any(n.startswith(veth_pair.prefix) for _, n in socket.if_nameindex())


def test_mac_bytes_deterministic(veth_pair):
    assert veth_pair.a.mac_bytes == bytes([0x02, 0x00, 0xC6, 0x12, 0x00, 0x01])
    assert veth_pair.b.mac_bytes == bytes([0x02, 0x00, 0xC6, 0x12, 0x00, 0x02])


@pytest.mark.parametrize("direction", ["a_to_b", "b_to_a"])
def test_ping_ipv4(veth_pair, direction):
    src, dst = (veth_pair.a, veth_pair.b) if direction == "a_to_b" else (veth_pair.b, veth_pair.a)
    r = _ping(src, dst.ipv4)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 received" in r.stdout


@pytest.mark.parametrize("direction", ["a_to_b", "b_to_a"])
def test_ping_ipv6(veth_pair, direction):
    src, dst = (veth_pair.a, veth_pair.b) if direction == "a_to_b" else (veth_pair.b, veth_pair.a)
    r = _ping(src, dst.ipv6)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 received" in r.stdout


def test_ping_to_unassigned_address_fails(veth_pair):
    # the ping checks above can fail: an address nobody holds does not answer
    r = _ping(veth_pair.a, "198.18.0.99")
    assert r.returncode != 0


def test_neighbour_learns_requested_mac(veth_pair):
    assert _ping(veth_pair.a, veth_pair.b.ipv4).returncode == 0
    neigh = _ip_json(veth_pair.a, "neigh", "show", "dev", veth_pair.a.ifname)
    macs = {n["dst"]: n.get("lladdr") for n in neigh}
    assert macs[veth_pair.b.ipv4] == veth_pair.b.mac


@pytest.mark.parametrize(("rx", "tx"), [(1, 1), (4, 2), (2, 4)])
def test_queue_counts_as_requested(make_pair, rx, tx):
    pair = make_pair(rxqueues=rx, txqueues=tx)
    want = sorted([f"rx-{i}" for i in range(rx)] + [f"tx-{i}" for i in range(tx)])
    for host in pair.hosts:
        assert host.sysfs_listdir("queues") == want
        (link,) = _ip_json(host, "-d", "link", "show", "dev", host.ifname)
        assert (link["num_rx_queues"], link["num_tx_queues"]) == (rx, tx)


def test_mtu_as_requested(make_pair):
    pair = make_pair(mtu=9000)
    for host in pair.hosts:
        assert host.sysfs_read("mtu") == "9000"
    # a 9000-byte IPv4 packet crosses unfragmented (DF set)
    r = pair.a.run(["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "8972", pair.b.ipv4])
    assert r.returncode == 0, r.stdout + r.stderr


def test_custom_addresses_inside_the_ranges(make_pair):
    pair = make_pair(
        ipv4=("198.19.255.1", "198.19.255.2"), ipv6=("fd00:198:18:ffff::a", "fd00:198:18:ffff::b")
    )
    assert _ping(pair.a, "198.19.255.2").returncode == 0
    assert _ping(pair.b, "fd00:198:18:ffff::a").returncode == 0


def test_gro_enabled_on_b_only(make_pair):
    pair = make_pair(gro=True)

    def gro(host):
        out = host.run(["ethtool", "-k", host.ifname], check=True).stdout
        return re.search(r"^generic-receive-offload: (\w+)", out, re.M).group(1)

    assert gro(pair.b) == "on"
    assert gro(pair.a) == "off"


def test_two_pairs_at_once_do_not_collide(make_pair):
    p1, p2 = make_pair(), make_pair()
    assert p1.prefix != p2.prefix
    assert not p1.prefix.startswith(p2.prefix) and not p2.prefix.startswith(p1.prefix)
    assert _ping(p1.a, p1.b.ipv4).returncode == 0
    assert _ping(p2.a, p2.b.ipv4).returncode == 0


# --------------------------------------------------------------------------------------------
# teardown and failure paths


def test_close_removes_everything_and_is_idempotent():
    pair = tn.make_veth_pair()
    proc = pair.b.popen(["sleep", "30"])
    assert len(tn.leftovers(pair.prefix)) == 2  # the two namespaces
    pair.close()
    assert tn.leftovers(pair.prefix) == []
    assert proc.poll() is not None, "processes started in the namespace must be stopped"
    assert not {pair.a.ns, pair.b.ns} & set(tn._pnetns.listnetns())
    pair.close()  # second close is a no-op
    assert tn.leftovers(pair.prefix) == []


def test_context_manager_tears_down_on_exception():
    with pytest.raises(RuntimeError, match="boom"), tn.make_veth_pair() as pair:
        prefix = pair.prefix
        assert tn.leftovers(prefix)
        raise RuntimeError("boom")
    assert tn.leftovers(prefix) == []


def test_setup_failure_bad_mtu_leaves_nothing():
    prefix = _fresh_prefix()
    with pytest.raises(NetdevError, match="MTU 70000"):
        tn.make_veth_pair(prefix, mtu=70000)
    assert tn.leftovers(prefix) == []
    assert not any(n.startswith(prefix) for n in tn._pnetns.listnetns())


def test_setup_failure_after_addresses_leaves_nothing(monkeypatch):
    # fail at the very last step (GRO), when namespaces, veth and addresses all exist
    prefix = _fresh_prefix()

    def fail(host, on):
        assert tn.leftovers(prefix), "namespaces should exist at this point"
        raise NetdevError("injected GRO failure")

    monkeypatch.setattr(tn, "_set_gro", fail)
    with pytest.raises(NetdevError, match="injected"):
        tn.make_veth_pair(prefix, gro=True)
    assert tn.leftovers(prefix) == []


def test_setup_refuses_existing_namespace_and_keeps_it():
    with tn.make_veth_pair() as pair:
        with pytest.raises(NetdevError, match="already exists"):
            tn.make_veth_pair(pair.prefix)
        # the failed attempt must not have removed the pair it collided with
        assert _ping(pair.a, pair.b.ipv4).returncode == 0


@pytest.mark.parametrize(
    ("kw", "rule"),
    [
        ({"ipv4": ("10.0.0.1", "10.0.0.2")}, "198.18.0.0/15"),
        ({"ipv4": ("198.18.0.1", "198.20.0.1")}, "198.18.0.0/15"),
        ({"ipv4": ("192.168.1.1", "198.18.0.2")}, "198.18.0.0/15"),
        ({"ipv6": ("2001:db8::1", "2001:db8::2")}, "fd00:198:18::/48"),
        ({"ipv6": ("fd00:198:18::1", "fd00:198:19::1")}, "fd00:198:18::/48"),
        ({"ipv4": ("not-an-ip", "198.18.0.2")}, "198.18.0.0/15"),
        ({"prefixlen4": 8}, "198.18.0.0/15"),
        ({"prefixlen6": 32}, "fd00:198:18::/48"),
    ],
)
def test_refuses_addresses_outside_the_rule(kw, rule):
    prefix = _fresh_prefix()
    with pytest.raises(ConfigError, match=re.escape(rule)):
        tn.make_veth_pair(prefix, **kw)
    assert tn.leftovers(prefix) == []


@pytest.mark.parametrize("bad", ["", "cn", "eth", "a b c", "cn/../x"])
def test_short_or_odd_prefixes_refused(bad):
    with pytest.raises(ConfigError):
        tn.cleanup_prefix(bad)
    with pytest.raises(ConfigError):
        tn.leftovers(bad)
    with pytest.raises(ConfigError):
        tn.make_veth_pair(bad)


def test_prefix_too_long_for_interface_names():
    with pytest.raises(ConfigError, match="15 characters"):
        tn.make_veth_pair("cn" + "x" * 12)


def test_cleanup_prefix_removes_namespaces_links_xdp_and_pins():
    from cndp.bpf import progs, xdp
    from cndp.sys import bpf as sysbpf

    prefix = _fresh_prefix()
    # a leaked pair (never closed) ...
    tn.make_veth_pair(prefix + "p")
    # ... a veth in this namespace with an XDP program (kept down, no addresses: no traffic;
    # this kernel has no dummy driver) ...
    dummy = f"{prefix}d0"
    with tn.IPRoute() as ipr:
        ipr.link("add", ifname=dummy, kind="veth", peer=f"{prefix}d1")
    fd = progs.load("leak", progs.verdict(2))  # XDP_PASS
    try:
        xdp.attach(dummy, fd, xdp.XdpMode.SKB)
    finally:
        sysbpf.close(fd)
    # ... and a pin path
    made_dir = not os.path.isdir("/run/cndp/bpf")
    os.makedirs("/run/cndp/bpf", exist_ok=True)
    Path(f"/run/cndp/bpf/{prefix}-xsks").write_text("")
    try:
        found = tn.leftovers(prefix)
        assert f"netns {prefix}p-a" in found and f"netns {prefix}p-b" in found
        assert any(x.startswith(f"link {dummy} ") and "kind veth" in x for x in found)
        assert any(x.startswith(f"link {prefix}d1 ") for x in found)
        assert any(x.startswith("xdp program id") and x.endswith(f"on {dummy}") for x in found)
        assert f"pin /run/cndp/bpf/{prefix}-xsks" in found
        assert tn.cleanup_prefix(prefix) == []
        assert tn.leftovers(prefix) == []
        assert tn.cleanup_prefix(prefix) == []  # idempotent
    finally:
        tn.cleanup_prefix(prefix)
        if made_dir:
            os.rmdir("/run/cndp/bpf")


def test_cleanup_never_touches_other_prefixes(veth_pair):
    other = _fresh_prefix()
    assert not veth_pair.prefix.startswith(other)
    assert tn.cleanup_prefix(other) == []
    assert _ping(veth_pair.a, veth_pair.b.ipv4).returncode == 0


# --------------------------------------------------------------------------------------------
# switching namespaces


def test_in_netns_switches_and_restores(veth_pair):
    a = veth_pair.a
    with pytest.raises(OSError):
        socket.if_nametoindex(a.ifname)
    outside = tn.current_netns_inode()
    with tn.in_netns(a.ns):
        assert socket.if_nametoindex(a.ifname) == a.ifindex
        assert tn.current_netns_inode() == os.stat(f"/var/run/netns/{a.ns}").st_ino
        with pytest.raises(OSError):
            socket.if_nametoindex(veth_pair.b.ifname)
    assert tn.current_netns_inode() == outside
    with pytest.raises(OSError):
        socket.if_nametoindex(a.ifname)


def test_host_enter_restores_on_exception(veth_pair):
    outside = tn.current_netns_inode()
    with pytest.raises(ValueError), veth_pair.b.enter():
        assert socket.if_nametoindex(veth_pair.b.ifname) == veth_pair.b.ifindex
        raise ValueError
    assert tn.current_netns_inode() == outside
    with pytest.raises(OSError):
        socket.if_nametoindex(veth_pair.b.ifname)


def test_in_netns_nests(veth_pair):
    outside = tn.current_netns_inode()
    with veth_pair.a.enter():
        with veth_pair.b.enter():
            assert socket.if_nametoindex(veth_pair.b.ifname) == veth_pair.b.ifindex
        assert socket.if_nametoindex(veth_pair.a.ifname) == veth_pair.a.ifindex
    assert tn.current_netns_inode() == outside


def test_in_netns_is_per_thread(veth_pair):
    """Only the calling thread moves; a worker thread restores its own namespace."""
    a = veth_pair.a
    entered, release = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def worker():
        with a.enter():
            result["inside"] = socket.if_nametoindex(a.ifname)
            entered.set()
            release.wait(5)
        result["after"] = tn.current_netns_inode()

    outside = tn.current_netns_inode()
    t = threading.Thread(target=worker)
    t.start()
    assert entered.wait(5)
    try:
        # the main thread is still outside while the worker is inside
        assert tn.current_netns_inode() == outside
        with pytest.raises(OSError):
            socket.if_nametoindex(a.ifname)
    finally:
        release.set()
        t.join(5)
    assert result["inside"] == a.ifindex
    assert result["after"] == outside


def test_in_netns_missing_namespace():
    with pytest.raises(NetdevError, match="does not exist"), tn.in_netns(_fresh_prefix() + "-a"):
        pass


def test_sockets_opened_inside_stay_in_the_namespace(veth_pair):
    """A socket keeps the namespace it was created in: UDP from a socket created in a, used
    after leaving, still reaches b."""
    b = veth_pair.b
    rx = b.popen(
        [
            sys.executable,
            "-c",
            "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.bind(('{b.ipv4}', 9999)); s.settimeout(5); "
            "print(s.recvfrom(100)[0].decode()); sys.stdout.flush()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with veth_pair.a.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(50):  # until the receiver is bound
            s.sendto(b"hello-from-a", (b.ipv4, 9999))
            if rx.poll() is not None:
                break
            time.sleep(0.05)
        out, _ = rx.communicate(timeout=5)
    finally:
        s.close()
    assert out.strip() == "hello-from-a"


# --------------------------------------------------------------------------------------------
# benchmark helpers


def test_threaded_napi_threads_pinning_and_off(make_pair):
    pair = make_pair(rxqueues=2, txqueues=2, gro=True)
    b = pair.b
    assert tn.napi_thread_pids(b) == []
    tn.set_threaded_napi(b, True)
    assert b.sysfs_read("threaded") == "1"
    pids = _wait_for(lambda: tn.napi_thread_pids(b))
    assert len(pids) == 2, "one NAPI thread per rx queue"
    for pid in pids:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        assert comm.startswith(f"napi/{b.ifname}"[:15])
        tn.pin_pid(pid, 0)
        assert os.sched_getaffinity(pid) == {0}
    assert tn.napi_thread_pids(pair.a) == [], "a has no GRO/XDP, so no NAPI"
    tn.set_threaded_napi(b, False)
    assert b.sysfs_read("threaded") == "0"
    assert _wait_for(lambda: tn.napi_thread_pids(b) == []), "threads stop when disabled"


def test_threaded_napi_needs_napi_on_veth(veth_pair):
    # veth has NAPI only while GRO is on or XDP is attached; without it the kernel refuses
    # the sysfs write, and we say how to fix it
    with pytest.raises(NetdevError, match="gro=True"):
        tn.set_threaded_napi(veth_pair.b, True)
    assert veth_pair.b.sysfs_read("threaded") == "0"
    assert tn.napi_thread_pids(veth_pair.b) == []


def test_pin_pid_refuses_bad_cpu():
    p = subprocess.Popen(["sleep", "5"])
    try:
        with pytest.raises(ConfigError):
            tn.pin_pid(p.pid, 4096)
        tn.pin_pid(p.pid, 0)
        assert os.sched_getaffinity(p.pid) == {0}
    finally:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------------------------
# the session leak check


def test_session_leak_check_fails_the_run(pytester):
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    pytester.makeconftest(conftest.read_text())
    pytester.makepyfile(
        test_leaky="""
        from cndp.testing import netns as tn

        def test_leaks():
            pair = tn.make_veth_pair()
            print("LEAKED-PREFIX", pair.prefix)
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    out = result.stdout.str()
    m = re.search(r"LEAKED-PREFIX (\S+)", out)
    assert m, out
    prefix = m.group(1)
    try:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, out
        assert "LEAK CHECK FAILED" in out
        assert f"netns {prefix}-a" in out
        assert "1 passed" in out
        # the check cleaned up after itself
        assert tn.leftovers(prefix) == []
    finally:
        tn.cleanup_prefix(prefix)


def test_session_leak_check_passes_clean_run(pytester):
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    pytester.makeconftest(conftest.read_text())
    pytester.makepyfile(
        test_clean="""
        def test_uses_pair(veth_pair):
            assert veth_pair.a.ifindex > 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "LEAK CHECK FAILED" not in result.stdout.str()


def test_e2e_fails_not_skips_without_root(pytester):
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    # pretend not to be root: the policy must fail e2e tests with a clear message
    text = conftest.read_text().replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\nimport os\nos.geteuid = lambda: 1000\n",
        1,
    )
    pytester.makeconftest(text)
    pytester.makepyfile(
        test_priv="""
        import pytest

        def test_needs_pair(veth_pair):
            raise AssertionError("must not get here")

        @pytest.mark.e2e
        def test_marked():
            pass

        def test_plain_unit():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    out = result.stdout.str()
    # a failure in setup is reported as an error: either way the run fails
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "e2e test needs root" in out
    assert "must not get here" not in out
