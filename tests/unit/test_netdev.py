"""cndp.sys.netdev on ``lo``: read-only, no namespaces, no privileges needed."""

from __future__ import annotations

import errno
import os
import socket
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cndp.errors import NetdevError
from cndp.sys import netdev


def _sysfs(rel: str) -> str:
    with open(f"/sys/class/net/lo/{rel}") as f:
        return f.read().strip()


def test_ifindex_lo_matches_libc():
    assert netdev.ifindex("lo") == socket.if_nametoindex("lo") == 1


def test_ifindex_missing_names_the_problem_and_the_fix():
    with pytest.raises(NetdevError) as ei:
        netdev.ifindex("cnnosuchdev0")
    msg = str(ei.value)
    assert "netdev 'cnnosuchdev0' does not exist in this network namespace" in msg
    assert "check `ip link`" in msg
    assert ei.value.errno == errno.ENODEV


@pytest.mark.parametrize("bad", ["", "x" * 16, "a/b", "a\0b", "\udcff"])
def test_invalid_names_are_netdev_errors(bad):
    with pytest.raises(NetdevError):
        netdev.ifindex(bad)
    with pytest.raises(NetdevError):
        netdev.get_mtu(bad)


@pytest.mark.parametrize(
    "call",
    [
        netdev.get_mac,
        netdev.get_mtu,
        netdev.is_up,
        netdev.driver_name,
        netdev.get_channels,
        netdev.rx_queue_count,
    ],
)
def test_missing_device_every_call(call):
    with pytest.raises(NetdevError, match="does not exist in this network namespace"):
        call("cnnosuchdev0")


def test_lo_mac_is_zero():
    assert netdev.get_mac("lo") == bytes(6)


def test_lo_mtu_matches_sysfs():
    assert netdev.get_mtu("lo") == int(_sysfs("mtu"))


def test_lo_flags_match_sysfs():
    flags = int(_sysfs("flags"), 16)
    assert netdev.is_up("lo") == bool(flags & 0x1)
    assert netdev.is_promisc("lo") == bool(flags & 0x100)
    assert netdev.is_up("lo")  # lo is up on any sane machine


def test_lo_has_no_ethtool_driver_info():
    with pytest.raises(NetdevError) as ei:
        netdev.driver_name("lo")
    assert ei.value.errno == errno.EOPNOTSUPP


def test_lo_channels_fall_back_to_queue_count():
    ch = netdev.get_channels("lo")
    rx = len([q for q in os.listdir("/sys/class/net/lo/queues") if q.startswith("rx-")])
    tx = len([q for q in os.listdir("/sys/class/net/lo/queues") if q.startswith("tx-")])
    if netdev.sysfs_view_is_ours():
        assert ch["source"] == "sysfs"
    else:
        assert ch["source"] == "netlink"
    assert (ch["rx_count"], ch["tx_count"], ch["combined_count"]) == (rx, tx, 0)
    assert (ch["max_rx"], ch["max_tx"], ch["max_combined"]) == (rx, tx, 0)
    assert netdev.rx_queue_count("lo") == rx
    assert netdev.tx_queue_count("lo") == tx
    assert netdev.rx_queue_count("lo", allocated=True) >= 1


def test_sysfs_view_check_agrees_with_if_nameindex():
    expected = set()
    for name in os.listdir("/sys/class/net"):
        with open(f"/sys/class/net/{name}/ifindex") as f:
            expected.add((name, int(f.read())))
    ours = {(n, i) for i, n in socket.if_nameindex()}
    assert netdev.sysfs_view_is_ours() == (ours == expected)


@given(st.text(alphabet=string.printable + "\u00e9\udcff\0", max_size=20))
def test_any_name_gives_int_or_netdev_error(name):
    try:
        idx = netdev.ifindex(name)
    except NetdevError:
        return
    assert isinstance(idx, int) and idx > 0
    assert socket.if_indextoname(idx) == name
