"""cndp.sys.netdev on a real veth, called from inside the namespace (Host.enter())."""

from __future__ import annotations

import errno
import json
import time

import pytest

from cndp.errors import ConfigError, NetdevError
from cndp.sys import netdev

pytestmark = pytest.mark.e2e


def _wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _link(host):
    r = host.run(["ip", "-j", "-d", "link", "show", "dev", host.ifname], check=True)
    return json.loads(r.stdout)[0]


def test_ifindex_inside_and_outside(veth_pair):
    b = veth_pair.b
    with b.enter():
        assert netdev.ifindex(b.ifname) == b.ifindex
    with pytest.raises(NetdevError, match="does not exist in this network namespace"):
        netdev.ifindex(b.ifname)


def test_mac_matches_requested(veth_pair):
    for host in veth_pair.hosts:
        with host.enter():
            assert netdev.get_mac(host.ifname) == host.mac_bytes
    with veth_pair.b.enter():
        assert netdev.get_mac(veth_pair.b.ifname) == b"\x02\x00\xc6\x12\x00\x02"


def test_driver_is_veth(veth_pair):
    with veth_pair.a.enter():
        assert netdev.driver_name(veth_pair.a.ifname) == "veth"


def test_channels_and_queue_counts(make_pair):
    pair = make_pair(rxqueues=4, txqueues=2)
    b = pair.b
    with b.enter():
        ch = netdev.get_channels(b.ifname)
        assert ch == {
            "max_rx": 4,
            "max_tx": 2,
            "max_combined": 0,
            "rx_count": 4,
            "tx_count": 2,
            "combined_count": 0,
            "source": "ethtool",
        }
        assert netdev.rx_queue_count(b.ifname) == 4
        assert netdev.tx_queue_count(b.ifname) == 2
    # ethtool -L lowers the queues in use below what was allocated
    b.run(["ethtool", "-L", b.ifname, "rx", "2"], check=True)
    assert [q for q in b.sysfs_listdir("queues") if q.startswith("rx-")] == ["rx-0", "rx-1"]
    with b.enter():
        assert netdev.get_channels(b.ifname)["rx_count"] == 2
        assert netdev.rx_queue_count(b.ifname) == 2
        assert netdev.rx_queue_count(b.ifname, allocated=True) == 4
        assert netdev.tx_queue_count(b.ifname, allocated=True) == 2


def test_sysfs_view_detected_as_foreign_after_setns(veth_pair):
    """After setns /sys still shows the original namespace: we notice, and lo's queue
    count comes from rtnetlink instead."""
    with veth_pair.a.enter():
        assert netdev.sysfs_view_is_ours() is False
        ch = netdev.get_channels("lo")
        assert ch["source"] == "netlink"
        assert (ch["rx_count"], ch["tx_count"]) == (1, 1)


def test_mtu_get_set(veth_pair):
    a = veth_pair.a
    with a.enter():
        assert netdev.get_mtu(a.ifname) == 1500
        netdev.set_mtu(a.ifname, 9000)
        assert netdev.get_mtu(a.ifname) == 9000
    assert a.sysfs_read("mtu") == "9000"
    assert _link(a)["mtu"] == 9000
    with a.enter():
        with pytest.raises(ConfigError, match=r"refuses MTU 70000 \(accepted range 68\.\.\d+\)"):
            netdev.set_mtu(a.ifname, 70000)
        assert netdev.get_mtu(a.ifname) == 9000


def test_link_down_up_and_carrier(veth_pair):
    a, b = veth_pair.a, veth_pair.b
    with b.enter():
        assert netdev.is_up(b.ifname) and netdev.is_running(b.ifname)
        netdev.link_down(b.ifname)
        assert not netdev.is_up(b.ifname)
    assert "UP" not in _link(b)["flags"]
    with a.enter():
        # admin up, but no carrier while the peer is down; IFF_RUNNING follows via linkwatch
        assert netdev.is_up(a.ifname)
        assert not netdev.has_carrier(a.ifname)
        assert _wait_for(lambda: not netdev.is_running(a.ifname))
    assert a.run(["ping", "-c", "1", "-W", "1", b.ipv4]).returncode != 0
    with b.enter():
        netdev.link_up(b.ifname)
        netdev.link_up(b.ifname)  # idempotent
        assert netdev.is_up(b.ifname)
    assert "UP" in _link(b)["flags"]
    with a.enter():
        assert netdev.has_carrier(a.ifname)
        assert _wait_for(lambda: netdev.is_running(a.ifname))


def test_promisc(veth_pair):
    b = veth_pair.b
    with b.enter():
        assert not netdev.is_promisc(b.ifname)
        netdev.set_promisc(b.ifname, True)
        assert netdev.is_promisc(b.ifname)
    assert _link(b)["promiscuity"] >= 1
    assert "PROMISC" in _link(b)["flags"]
    with b.enter():
        netdev.set_promisc(b.ifname, False)
        assert not netdev.is_promisc(b.ifname)
    assert "PROMISC" not in _link(b)["flags"]


def test_missing_device_inside_namespace(veth_pair):
    with veth_pair.a.enter():
        with pytest.raises(NetdevError) as ei:
            netdev.get_mtu("eth0")  # exists in the root namespace, not here
        assert ei.value.errno == errno.ENODEV
