"""The jcfg decoder: units, defaults, lports and flags, lcore groups, threads, options,
lport-groups, custom sections, errors with file:line and key path, host checks, and config over
a Unix socket (in-process; the end-to-end run is in tests/e2e/test_jsonc_tool.py)."""

from __future__ import annotations

import copy
import json
import os
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.app import config as C
from cndp.app import config_sock
from cndp.app.config import (
    ConfigFileError,
    LportFlag,
    StaticHost,
    loads,
    register_decoder,
    unregister_decoder,
)
from cndp.errors import ConfigError

HOST = StaticHost(
    cpus=range(64),
    netdevs={"eth0": 16, "eth1": 16, "eth2": 4, "eth3": 2},
    hugepages={2 << 20: 100000, 1 << 30: 64},
)

BASE = {
    "application": {"name": "t", "description": "test"},
    "defaults": {"bufcnt": 16, "bufsz": 2, "rxdesc": 2, "txdesc": 2, "cache": 256, "mtype": "2MB"},
    "umems": {
        "umem0": {"bufcnt": 32, "bufsz": 2, "mtype": "2MB", "regions": [16, 16]},
    },
    "lports": {
        "eth0:0": {"pmd": "net_af_xdp", "qid": 1, "umem": "umem0", "region": 0},
        "eth1:0": {"pmd": "net_af_xdp", "qid": 2, "umem": "umem0", "region": 1},
    },
    "lcore-groups": {"initial": [0], "group0": [1], "group1": [2], "default": ["3-4"]},
    "options": {"pkt_api": "xskdev", "mode": "drop", "cli": False},
    "threads": {
        "main": {"group": "initial"},
        "fwd:0": {"group": "group0", "lports": ["eth0:0"]},
        "fwd:1": {"group": "group1", "lports": ["eth1:0"]},
    },
}


def base(**changes) -> dict:
    """BASE with sections replaced (None deletes a section)."""
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        k = k.replace("_", "-") if k in ("lcore_groups", "lport_groups") else k
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


def load(doc, *, host=HOST, **kw) -> C.Config:
    text = doc if isinstance(doc, str) else json.dumps(doc, indent=2)
    return loads(text, "t.jsonc", host=host, **kw)


def fails(doc, *, host=HOST, **kw) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as ei:
        load(doc, host=host, **kw)
    assert isinstance(ei.value, ConfigError)
    return ei.value


# --------------------------------------------------------------------------------------------
# the happy path


def test_base_loads_without_warnings():
    cfg = load(BASE)
    assert cfg.warnings == []
    assert cfg.application.name == "t"
    assert list(cfg.lports) == ["eth0:0", "eth1:0"]
    assert [lp.lpid for lp in cfg.lports.values()] == [0, 1]
    json.dumps(cfg.to_dict())  # JSON-able


def test_k_units():
    u = load(BASE).umems["umem0"]
    assert (u.bufcnt, u.bufsz, u.regions) == (32768, 2048, (16384, 16384))
    assert u.size == 32768 * 2048
    assert u.region_first(1) == 16384


def test_umem_regions_are_mem_regions():
    from cndp.mem.umem import Region

    regions = load(BASE).umem_regions("umem0")
    assert regions == [
        Region(0, 0, 16384, 0, 16384 * 2048),
        Region(1, 16384, 16384, 16384 * 2048, 16384 * 2048),
    ]
    with pytest.raises(ConfigError, match="UMEM 'nope' not found"):
        load(BASE).umem_regions("nope")


def test_missing_regions_means_one_region():
    cfg = load(base(umems={"u": {"bufcnt": 8, "bufsz": 2}}, lports={}, threads={}))
    assert cfg.umems["u"].regions == (8192,)
    assert cfg.umems["u"].mtype == "2MB"  # from defaults


def test_mtype_default_without_defaults_is_4kb():
    umems = {"u": {"bufcnt": 1, "bufsz": 2, "mtype": ""}}
    cfg = load(base(defaults=None, umems=umems, lports={}, threads={}))
    assert cfg.umems["u"].mtype == "4KB"


def test_rxdesc_defaults_are_scaled_and_explicit_zero_means_xskdev_default():
    umems = {
        "given0": {"bufcnt": 1, "bufsz": 2, "rxdesc": 0, "txdesc": 0},
        "absent": {"bufcnt": 1, "bufsz": 2},
        "own": {"bufcnt": 1, "bufsz": 2, "rxdesc": 4, "txdesc": 1},
    }
    cfg = load(base(defaults={"rxdesc": 8, "txdesc": 2}, umems=umems, lports={}, threads={}))
    u = cfg.umems
    assert (u["given0"].rxdesc, u["given0"].rx_size) == (0, 2048)
    assert (u["absent"].rxdesc, u["absent"].txdesc) == (8192, 2048)  # defaults x 1024 (fixed)
    assert (u["own"].rx_size, u["own"].tx_size) == (4096, 1024)


def test_defaults_section():
    d = load(BASE).defaults
    assert (d.bufcnt, d.bufsz, d.rxdesc, d.txdesc, d.cache, d.mtype) == (16, 2, 2, 2, 256, "2MB")
    assert load(base(defaults=None)).defaults.cache_size == 256


def test_lport_fields_and_netdev_without_tag():
    lports = {"ens17f0": {"pmd": "net_af_xdp:opt=1:x", "qid": 3, "umem": "umem0", "desc": "d"}}
    cfg = load(base(lports=lports, threads={"rx:0": {"lports": ["ens17f0"]}}))
    lp = cfg.lports["ens17f0"]
    assert (lp.netdev, lp.tag, lp.pmd, lp.pmd_opts) == ("ens17f0", None, "net_af_xdp", "opt=1:x")
    assert (lp.qid, lp.region, lp.description) == (3, 0, "d")
    assert cfg.lports is not None and cfg.lport(0) is lp and cfg.lport_by_index(0) is lp


def test_lport_flags():
    umems = {
        "shared": {"bufcnt": 4, "bufsz": 2, "shared_umem": True},
        "plain": {"bufcnt": 4, "bufsz": 2},
    }
    lports = {
        "eth0:0": {"pmd": "net_af_xdp", "qid": 0, "umem": "plain"},
        "eth0:1": {"pmd": "net_af_xdp", "qid": 1, "umem": "plain", "xsk_pin_path": "/sys/fs/bpf/m"},
        "eth0:2": {"pmd": "net_af_xdp", "qid": 2, "umem": "plain", "uds_path": "/tmp/dp.sock"},
        "eth0:3": {"pmd": "net_af_xdp", "qid": 3, "umem": "plain", "force_wakeup": True},
        "eth0:4": {"pmd": "net_af_xdp", "qid": 4, "umem": "plain", "skb_mode": True},
        "eth0:5": {"pmd": "net_af_xdp", "qid": 5, "umem": "plain", "busy_poll": True},
        "eth0:6": {"pmd": "net_af_xdp", "qid": 6, "umem": "plain", "busy_polling": True},
        "eth0:7": {"pmd": "net_af_xdp", "qid": 7, "umem": "shared"},
        "eth0:8": {"pmd": "net_af_xdp", "qid": 8, "umem": "plain", "unaligned_buffers": True},
        "eth0:9": {
            "pmd": "net_af_xdp",
            "qid": 9,
            "umem": "shared",
            "xsk_pin_path": "/p",
            "busy_poll": True,
            "skb_mode": True,
            "force_wakeup": True,
        },
    }
    cfg = load(base(umems=umems, lports=lports, threads={}))
    flags = {n: lp.flags for n, lp in cfg.lports.items()}
    assert flags == {
        "eth0:0": 0,
        "eth0:1": 1,
        "eth0:2": 1,
        "eth0:3": 2,
        "eth0:4": 4,
        "eth0:5": 8,
        "eth0:6": 8,
        "eth0:7": 16,
        "eth0:8": 64,
        "eth0:9": 1 | 2 | 4 | 8 | 16,
    }
    assert cfg.lports["eth0:9"].flag_names == (
        "LPORT_UNPRIVILEGED",
        "LPORT_FORCE_WAKEUP",
        "LPORT_SKB_MODE",
        "LPORT_BUSY_POLLING",
        "LPORT_SHARED_UMEM",
    )
    assert cfg.lports["eth0:1"].unprivileged
    assert LportFlag.LPORT_USER_MANAGED_BUFFERS == 32
    assert LportFlag.LPORT_UMEM_UNALIGNED_BUFFERS == 64
    out = cfg.to_dict()["lports"]["eth0:9"]
    assert out["flags"] == 31 and "LPORT_SHARED_UMEM" in out["flag_names"]


def test_busy_defaults_reuse_xskdev_constants():
    from cndp.xskdev.xskdev import DEFAULT_BUSY_BUDGET, DEFAULT_BUSY_TIMEOUT

    lports = {
        "eth0:0": {"pmd": "net_af_xdp", "qid": 0, "umem": "umem0"},
        "eth0:1": {
            "pmd": "net_af_xdp",
            "qid": 1,
            "umem": "umem0",
            "busy_timeout": 7,
            "busy_budget": 0xFFFF,
        },
    }
    cfg = load(base(lports=lports, threads={}))
    a, b = cfg.lports["eth0:0"], cfg.lports["eth0:1"]
    assert (a.busy_timeout, a.busy_timeout_value) == (0, DEFAULT_BUSY_TIMEOUT) == (0, 20)
    assert (a.busy_budget, a.busy_budget_value) == (0, DEFAULT_BUSY_BUDGET) == (0, 64)
    assert (b.busy_timeout_value, b.busy_budget_value) == (7, 0xFFFF)


def test_lport_xsk_config():
    from cndp.xskdev.xskdev import XskConfig

    lports = {
        "eth0:0": {
            "pmd": "net_af_xdp",
            "qid": 5,
            "umem": "u",
            "skb_mode": True,
            "busy_poll": True,
            "force_wakeup": True,
            "xsk_pin_path": "/sys/fs/bpf/eth0/xsk_map",
        },
        "ring:0": {"pmd": "net_ring", "qid": 0, "umem": "u"},
    }
    umems = {"u": {"bufcnt": 4, "bufsz": 2, "rxdesc": 1, "txdesc": 0}}
    cfg = load(base(umems=umems, lports=lports, threads={}))
    x = cfg.lport_xsk_config("eth0:0")
    assert isinstance(x, XskConfig)
    assert (x.ifname, x.qid, x.rx_size, x.tx_size) == ("eth0", 5, 1024, 2048)
    assert (x.skb_mode, x.busy_poll, x.force_wakeup) == (True, True, True)
    assert (x.busy_timeout, x.busy_budget) == (20, 64)
    assert x.xsk_pin_path == "/sys/fs/bpf/eth0/xsk_map"
    assert cfg.lport_xsk_config(0) == x == cfg.lport_xsk_config(cfg.lports["eth0:0"])
    with pytest.raises(ConfigError, match="PMD 'net_ring', not net_af_xdp"):
        cfg.lport_xsk_config("ring:0")
    with pytest.raises(ConfigError, match="lport 'nope' not found"):
        cfg.lport_xsk_config("nope")
    with pytest.raises(ConfigError, match="no lport with index 9"):
        cfg.lport_xsk_config(9)


def test_lcore_groups():
    groups = {
        "a": [3, 1, "2", " 5 - 7 "],
        "b": ["10-12", 11],
        "initial": [0],
        "default": [0],
    }
    cfg = load(base(lcore_groups=groups, threads={"main": {"group": "a"}}))
    assert cfg.lcore_groups["a"].cpus == (1, 2, 3, 5, 6, 7)
    assert cfg.lcore_groups["b"].cpus == (10, 11, 12)
    assert cfg.thread_cpus("main") == (1, 2, 3, 5, 6, 7)
    assert cfg.to_dict()["lcore-groups"]["a"] == [1, 2, 3, 5, 6, 7]


def test_lcore_group_comma_list_is_read_whole_with_a_portability_warning():
    groups = dict(BASE["lcore-groups"], default=["10-14,16"])
    cfg = load(base(lcore_groups=groups))
    assert cfg.lcore_groups["default"].cpus == (10, 11, 12, 13, 14, 16)
    (w,) = [w for w in cfg.warnings if "10-14,16" in w]
    assert "reads only '10-14'" in w and w.startswith("t.jsonc:")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("abc", "is not a CPU list"),
        ("3-1", "runs backwards"),
        ("1-", "is not a CPU list"),
        ("", "is not a CPU list"),
        (1024, "must be in 0..1023"),
        (-1, "must be in 0..1023"),
        ("0-2000", "out of range"),
        (True, "expected an integer"),
        (1.5, "expected an integer"),
    ],
)
def test_bad_lcore_items(item, words):
    e = fails(base(lcore_groups={"default": [item], "initial": [0]}))
    assert words in str(e)
    assert e.path.startswith("lcore-groups.default")


def test_empty_lcore_group_used_by_a_thread():
    e = fails(base(lcore_groups=dict(BASE["lcore-groups"], initial=[])))
    assert "lcore group 'initial' is empty but thread 'main' runs on it" in str(e)
    load(base(lcore_groups=dict(BASE["lcore-groups"], spare=[])))  # unused: fine


def test_threads():
    threads = {
        "main": {"group": "initial", "description": "CLI"},
        "fwd:0": {"lports": ["eth0:0"], "idle_timeout": 10, "intr_timeout": 2000, "desc": "x"},
        "fwd:1": {"group": "group1", "lports": ["eth1:0"]},
    }
    cfg = load(base(threads=threads))
    t = cfg.threads["fwd:0"]
    assert (t.type, t.id, t.group, t.index) == ("fwd", "0", "default", 1)
    assert (t.idle_timeout, t.intr_timeout, t.description) == (10, 2000, "x")
    assert cfg.threads["main"].id is None
    assert [x.name for x in cfg.threads_of_type("fwd")] == ["fwd:0", "fwd:1"]
    assert [lp.name for lp in cfg.thread_lports("fwd:0")] == ["eth0:0"]
    assert cfg.lports["eth0:0"].threads == ["fwd:0"]


def test_thread_sharing_an_lport_is_allowed():
    threads = {"rx:0": {"lports": ["eth0:0"]}, "tx:0": {"lports": ["eth0:0"]}}
    cfg = load(base(threads=threads))
    assert cfg.lports["eth0:0"].threads == ["rx:0", "tx:0"]


@pytest.mark.parametrize(
    ("thread", "words"),
    [
        ({"busy": True}, 'threads."fwd:9".busy: unknown key'),
        ({"idle_timout": 5}, 'did you mean "idle_timeout"'),
        ({"Group": "initial"}, 'did you mean "group"'),
        ({"idle_timeout": -1}, "must be >= 0"),
        ({"idle_timeout": True}, "expected an integer, got true"),
        ({"group": 3}, "expected a string, got 3"),
        ({"lports": "eth0:0"}, "expected an array"),
        ({"lports": ["eth0:0", "eth0:0"]}, "lport 'eth0:0' is listed twice"),
        ({"lports": ["eth9:0"]}, "lport 'eth9:0' not found"),
        ({"group": "nope"}, "Group 'nope' not found"),
    ],
)
def test_bad_threads(thread, words):
    threads = dict(BASE["threads"], **{"fwd:9": thread})
    e = fails(base(threads=threads))
    assert words in str(e), str(e)


def test_missing_default_group():
    e = fails(base(lcore_groups={"initial": [0]}, threads={"fwd:0": {}}))
    assert e.path == 'threads."fwd:0"'
    assert "Group 'default' not found" in str(e)


def test_thread_name_needs_a_type():
    e = fails(base(threads={":0": {}}))
    assert "starts with its type" in str(e)


def test_options():
    opts = {
        "pkt_api": "pktdev",
        "no-metrics": True,
        "burst-size": 64,
        "ratio": 0.5,
        "l3fwd-fib-rules": ["198.18.0.0/24,02:00:01:02:03:04,1"],
        "graph:0": ["ip4*", "udp*"],
        "empty": [],
        "nested": {"a": [1, 2]},
    }
    cfg = load(base(options=opts))
    assert cfg.options == opts
    assert cfg.option("PKT_API") == "pktdev"
    assert cfg.option("Burst-Size") == 64
    assert cfg.option("absent", 7) == 7


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([1, "x"], "one type of value, got number and string"),
        ([True, 1], "one type of value"),
        (None, "null is not a valid option value"),
        ([None], "null is not a valid option value"),
    ],
)
def test_bad_options(value, words):
    e = fails(base(options={"x": value}))
    assert words in str(e)


def test_option_schema_rules():
    assert 'options.pkt_api: expected one of "xskdev", "pktdev"' in str(
        fails(base(options={"pkt_api": "dpdk"}))
    )
    assert "options.cli: expected true or false" in str(fails(base(options={"cli": "yes"})))


def test_mode_enum_not_enforced_unknown_mode_warns():
    cfg = load(base(options={"mode": "l3fwd"}))
    assert cfg.option("mode") == "l3fwd" and cfg.warnings == []
    cfg = load(base(options={"mode": "warp"}))
    assert any('unknown mode "warp"' in w for w in cfg.warnings)


def test_duplicate_option_case_warns():
    cfg = load('{"application": {}, "options": {"cli": true, "CLI": false}}')
    assert cfg.option("cli") is True
    assert any('"CLI" repeats "cli"' in w for w in cfg.warnings)


# --------------------------------------------------------------------------------------------
# lport-groups


def group_cfg(groups, **kw) -> dict:
    return base(lport_groups=groups, **kw)


def test_lport_group_queue_forms():
    groups = {
        "a": {"netdevs": ["eth2"], "queues": 3, "threads": ["fwd:0"]},
        "b": {"netdevs": ["eth3"], "queues": "0-1", "threads": ["fwd:0"]},
        "c": {"netdevs": ["eth4"], "queues": [9, "5 - 6", "6", 5], "threads": ["fwd:1"]},
    }
    cfg = load(group_cfg(groups))
    assert cfg.lport_groups["a"].queues == [3]
    assert cfg.lport_groups["b"].queues == [0, 1]
    assert cfg.lport_groups["c"].queues == [5, 6, 9]
    assert list(cfg.lports)[2:] == ["eth2:3", "eth3:0", "eth3:1", "eth4:5", "eth4:6", "eth4:9"]
    assert [lp.lpid for lp in cfg.lports.values()] == list(range(8))
    lp = cfg.lports["eth4:9"]
    assert (lp.netdev, lp.qid, lp.pmd, lp.umem, lp.region) == (
        "eth4",
        9,
        "net_af_xdp",
        "lport-group",
        0,
    )
    assert lp.lport_group == "c" and lp.threads == ["fwd:1"]


def test_lport_group_all_queues_uses_the_netdev_queue_count():
    groups = {"g": {"netdevs": ["eth2", "eth3"], "queues": "all", "threads": ["fwd:0", "fwd:1"]}}
    cfg = load(group_cfg(groups))
    g = cfg.lport_groups["g"]
    assert g.queues is None and g.queues_by_netdev == {"eth2": [0, 1, 2, 3], "eth3": [0, 1]}
    assert g.lports == ["eth2:0", "eth2:1", "eth2:2", "eth2:3", "eth3:0", "eth3:1"]
    assert [cfg.lports[n].threads[0] for n in g.lports] == ["fwd:0", "fwd:1"] * 3
    # no "queues" key means all queues too
    del groups["g"]["queues"]
    assert load(group_cfg(groups)).lport_groups["g"].lports == g.lports


def test_lport_group_all_queues_of_a_missing_netdev_is_an_error():
    groups = {"g": {"netdevs": ["eth2", "ethX"], "queues": "all", "threads": ["fwd:0"]}}
    e = fails(group_cfg(groups))
    assert e.path == "lport-groups.g.netdevs[1]"
    assert "queue count of netdev 'ethX'" in str(e)
    assert "list the queues explicitly" in str(e)


def test_lport_group_all_on_the_real_host_names_the_netdev():
    groups = {"g": {"netdevs": ["cnNoSuchDev0"], "threads": ["fwd:0"]}}
    e = fails(group_cfg(groups), host=C.Host())
    assert "cnNoSuchDev0" in str(e)


def test_lport_group_common_umem_from_defaults():
    groups = {"g": {"netdevs": ["eth2"], "queues": [0, 1], "threads": ["fwd:0"]}}
    cfg = load(group_cfg(groups, defaults={"bufcnt": 8, "bufsz": 4, "rxdesc": 1, "mtype": "2MB"}))
    u = cfg.umems["lport-group"]
    assert u.auto and u.index == 1
    assert (u.bufcnt, u.bufsz, u.rxdesc, u.txdesc, u.mtype) == (8192, 4096, 1024, 4096, "2MB")
    assert u.regions == (8192,)


def test_lport_group_common_umem_without_defaults():
    groups = {"g": {"netdevs": ["eth2"], "queues": [0, 1, 2], "threads": ["fwd:0"]}}
    cfg = load(group_cfg(groups, defaults=None))
    u = cfg.umems["lport-group"]
    assert (u.rxdesc, u.txdesc, u.bufsz, u.mtype) == (2048, 4096, 2048, "4KB")
    assert u.bufcnt == (2048 * 3 + 4096 * 3) * 3


def test_lport_group_user_defined_common_umem_and_named_umem():
    umems = dict(BASE["umems"], **{"lport-group": {"bufcnt": 2, "bufsz": 2}})
    groups = {
        "g": {"netdevs": ["eth2"], "queues": [0], "threads": ["fwd:0"]},
        "h": {"netdevs": ["eth3"], "queues": [0], "threads": ["fwd:0"], "umem": "umem0"},
    }
    cfg = load(group_cfg(groups, umems=umems))
    assert not cfg.umems["lport-group"].auto and cfg.umems["lport-group"].bufcnt == 2048
    assert cfg.lports["eth3:0"].umem == "umem0"


def test_lport_group_settings_apply_to_every_lport():
    groups = {
        "g": {
            "netdevs": ["eth2"],
            "queues": [0, 1],
            "threads": ["fwd:0"],
            "pmd": "net_af_xdp:x=1",
            "busy_polling": True,
            "busy_timeout": 5,
            "busy_budget": 9,
            "skb_mode": True,
            "force_wakeup": True,
            "description": "rss",
        }
    }
    cfg = load(group_cfg(groups))
    for n in ("eth2:0", "eth2:1"):
        lp = cfg.lports[n]
        assert (lp.pmd_opts, lp.busy_timeout, lp.busy_budget) == ("x=1", 5, 9)
        assert lp.flags == 2 | 4 | 8 and lp.description == "rss"


@pytest.mark.parametrize(
    ("group", "words"),
    [
        ({"netdevs": [], "threads": ["fwd:0"], "queues": [0]}, "needs at least one netdev"),
        ({"netdevs": ["eth2"], "threads": [], "queues": [0]}, "needs at least one thread"),
        ({"netdevs": ["eth2"], "threads": ["fwd:7"], "queues": [0]}, "Thread 'fwd:7' not found"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": []}, "needs at least one queue"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": "allx"}, "is not a queue"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": ["all"]}, "only on its own"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": "3-1"}, "runs backwards"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": 70000}, "0..65535"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": [[1]]}, "nested arrays"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": 1.5}, "expected an integer"),
        ({"netdevs": ["eth2", "eth2"], "threads": ["fwd:0"], "queues": 0}, "listed twice"),
        ({"netdevs": [3], "threads": ["fwd:0"], "queues": 0}, "expected a string"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "queues": 0, "umem": "x"}, "UMEM 'x'"),
        ({"netdevs": ["eth0"], "threads": ["fwd:0"], "queues": 1}, "Netdev 'eth0' queue 1 is"),
        (
            {"netdevs": ["r" * 20], "threads": ["fwd:0"], "queues": 65535, "pmd": "net_ring"},
            "is too long",
        ),
        ({"netdevs": ["a" * 16], "threads": ["fwd:0"], "queues": 1}, "cannot be a netdev"),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "uds_path": "/x"}, "not supported in lport"),
        ({"netdevs": ["eth2"], "queues": 0}, 'missing required key "threads"'),
        ({"netdevs": ["eth2"], "threads": ["fwd:0"], "q": 0}, 'did you mean "queues"'),
    ],
)
def test_bad_lport_groups(group, words):
    e = fails(group_cfg({"g": group}))
    assert words in str(e), str(e)


def test_lport_group_name_collision():
    lports = dict(BASE["lports"], **{"eth2:5": {"pmd": "net_ring", "qid": 0, "umem": "umem0"}})
    groups = {"g": {"netdevs": ["eth2"], "queues": [5], "threads": ["fwd:0"]}}
    e = fails(group_cfg(groups, lports=lports))
    assert "Logical port 'eth2:5' is already configured" in str(e)


def test_two_groups_on_the_same_queue():
    groups = {
        "g": {"netdevs": ["eth2"], "queues": [1], "threads": ["fwd:0"]},
        "h": {"netdevs": ["eth2"], "queues": [1], "threads": ["fwd:1"]},
    }
    assert "Logical port 'eth2:1' is already configured" in str(fails(group_cfg(groups)))


def test_thread_cannot_list_a_generated_lport():
    threads = dict(BASE["threads"], **{"x:0": {"lports": ["eth2:1"]}})
    groups = {"g": {"netdevs": ["eth2"], "queues": [1], "threads": ["fwd:0"]}}
    assert "lport 'eth2:1' not found" in str(fails(group_cfg(groups, threads=threads)))


# --------------------------------------------------------------------------------------------
# errors name the file, the line and the key path


FWD_TEXT = """{
    "application": {"name": "x"},
    "umems": {
        "umem0": {"bufcnt": 32, "bufsz": 2, "regions": [16, 16]}
    },
    "lports": {
        "eth0:0": {
            "pmd": "net_af_xdp",
            "qid": "x",
            "umem": "umem0"
        }
    }
}"""


def test_error_message_format():
    with pytest.raises(ConfigFileError) as ei:
        loads(FWD_TEXT, "fwd.jsonc", host=HOST)
    e = ei.value
    assert str(e) == 'fwd.jsonc:9: lports."eth0:0".qid: expected an integer, got "x"'
    assert (e.source, e.line, e.path) == ("fwd.jsonc", 9, 'lports."eth0:0".qid')
    assert e.reason == 'expected an integer, got "x"'


def test_several_schema_problems_are_all_kept():
    text = FWD_TEXT.replace('"regions": [16, 16]', '"regions": [16, "x"]')
    with pytest.raises(ConfigFileError) as ei:
        loads(text, "fwd.jsonc", host=HOST)
    e = ei.value
    assert e.line == 4 and "(and 1 more problem)" in str(e)
    assert len(e.problems) == 2
    assert e.problems[1].startswith("fwd.jsonc:9: ")


def test_abbreviated_key_is_refused_with_a_hint():
    text = FWD_TEXT.replace('"qid": "x"', '"q": 3')
    with pytest.raises(ConfigFileError) as ei:
        loads(text, "fwd.jsonc", host=HOST)
    e = ei.value
    assert e.line == 9 and e.path == 'lports."eth0:0".q'
    assert 'did you mean "qid"?' in str(e) and "abbreviation" in str(e)


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"umems": {"u": {"bufcnt": 1}}}, "umems.u", 'missing required key "bufsz"'),
        ({"umems": {"u": {"bufcnt": 0, "bufsz": 2}}}, "umems.u.bufcnt", "must be in 1.."),
        ({"umems": {"u": {"bufcnt": 2.5, "bufsz": 2}}}, "umems.u.bufcnt", "expected an integer"),
        ({"umems": {"u": {"bufcnt": 4, "bufsz": 2, "regions": []}}}, "umems.u.regions", "empty"),
        (
            {"umems": {"u": {"bufcnt": 4, "bufsz": 2, "regions": [1, 1]}}},
            "umems.u.regions",
            "needs them equal",
        ),
        (
            {"umems": {"u": {"bufcnt": 2, "bufsz": 2, "regions": [2, 0]}}},
            "umems.u.regions[1]",
            "must be in 1",
        ),
        (
            {"umems": {"u": {"bufcnt": 200, "bufsz": 2, "regions": [1] * 200}}},
            "umems.u.regions",
            "at most 128",
        ),
        (
            {"umems": {"u": {"bufcnt": 4, "bufsz": 2, "rxdesc": 3}}},
            "umems.u.rxdesc",
            "not a power of two",
        ),
        (
            {"umems": {"u": {"bufcnt": 4, "bufsz": 2, "mtype": "3MB"}}},
            "umems.u.mtype",
            'expected one of "4KB"',
        ),
        ({"umems": {"u": {"bufcnt": 4194303, "bufsz": 1024}}}, "umems.u", "more than 1 TiB"),
        ({"umems": {"u": {"bufcnt": 4, "bufsz": 2, "extra": 1}}}, "umems.u.extra", "unknown key"),
        ({"defaults": {"bufcnt": "16"}}, "defaults.bufcnt", "expected an integer"),
        ({"defaults": [10, 12]}, "defaults", "expected an object"),
        ({"application": {"nme": "x"}}, "application.nme", 'did you mean "name"'),
        ({"lcore-groups": {"default": 3}}, "lcore-groups.default", "expected an array"),
        ({"lports": []}, "lports", "expected an object"),
    ],
)
def test_section_errors(changes, path, words):
    e = fails(base(**changes))
    assert e.path == path, str(e)
    assert words in str(e), str(e)


@pytest.mark.parametrize(
    ("lport", "words"),
    [
        ({"qid": 1, "umem": "umem0"}, 'missing required key "pmd"'),
        ({"pmd": "net_af_xdp", "qid": 1, "umem": "nope"}, "UMEM 'nope' not found"),
        ({"pmd": "net_af_xdp", "qid": 1, "umem": "umem0", "region": 2}, "has 2 regions (0..1)"),
        ({"pmd": "net_af_xdp", "qid": -1, "umem": "umem0"}, "must be in 0..65535"),
        ({"pmd": "net_af_xdp", "qid": 70000, "umem": "umem0"}, "must be in 0..65535"),
        ({"pmd": "net_af_xdp", "qid": 1, "umem": "umem0", "busy_timeout": 70000}, "<= 65535"),
        ({"pmd": "net_af_xdp", "qid": 1, "umem": "umem0", "busy_poll": 1}, "true or false"),
        ({"pmd": ":x", "qid": 1, "umem": "umem0"}, "no PMD name"),
        ({"pmd": "net_af_xdp", "qid": 1, "umem": ""}, "must not be empty"),
        (
            {
                "pmd": "net_af_xdp",
                "qid": 1,
                "umem": "umem0",
                "xsk_pin_path": "/a",
                "uds_path": "/b",
            },
            "give one",
        ),
        (
            {"pmd": "net_af_xdp", "qid": 1, "umem": "umem0", "inhibit_prog_load": True},
            "unknown key",
        ),
    ],
)
def test_lport_errors(lport, words):
    lports = dict(BASE["lports"], **{"eth2:0": lport})
    e = fails(base(lports=lports))
    assert words in str(e), str(e)
    assert e.path.startswith('lports."eth2:0"')


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (":0", "needs a netdev"),
        ("averyveryverylongname:0", "cannot be a netdev name"),
        ("a/b:0", "cannot be a netdev name"),
        ("", "empty name"),
        ("eth\n0", "control character"),
    ],
)
def test_bad_lport_names(name, words):
    lports = {name: {"pmd": "net_af_xdp", "qid": 1, "umem": "umem0"}}
    assert words in str(fails(base(lports=lports, threads={})))


def test_virtual_pmds_need_no_netdev_and_unknown_pmd_warns():
    lports = {
        "ring0": {"pmd": "net_ring", "qid": 0, "umem": "umem0"},
        ":1": {"pmd": "net_null", "qid": 0, "umem": "umem0"},
        "x:0": {"pmd": "net_warp", "qid": 0, "umem": "umem0"},
    }
    cfg = load(base(lports=lports, threads={}))
    assert any('unknown PMD "net_warp"' in w for w in cfg.warnings)


def test_root_must_be_an_object():
    e = fails("[1, 2]")
    assert "must be a JSON object" in str(e) and e.line == 1


def test_syntax_errors_are_config_errors():
    with pytest.raises(ConfigError, match=r"^t\.jsonc:1:16: expected ':' after key"):
        load('{"application" {}}')


def test_duplicate_keys_are_errors():
    text = '{"application": {},\n "lports": {},\n "lports": {}}'
    with pytest.raises(ConfigError, match=r"t\.jsonc:3:2: duplicate key \"lports\""):
        load(text)


# --------------------------------------------------------------------------------------------
# sections: case, unknown, nested, custom decoders


def test_section_names_are_case_insensitive():
    d = base()
    d["LPorts"] = d.pop("lports")
    cfg = load(d)
    assert list(cfg.lports) == ["eth0:0", "eth1:0"]
    assert any('section name "LPorts" read as "lports"' in w for w in cfg.warnings)
    d["lports"] = {}
    assert "given twice" in str(fails(d))


def test_unknown_and_nested_sections_warn():
    d = base(extra={"lports": {"eth9:0": {}}, "x": [{"threads": {}}]})
    cfg = load(d)
    (w,) = [w for w in cfg.warnings if "extra" in w]
    assert '"lports", "threads" inside it' in w and "unknown section ignored" in w
    assert "eth9:0" not in cfg.lports


def test_missing_application_warns():
    cfg = load(base(application=None))
    assert any('no "application" section' in w for w in cfg.warnings)


def test_multiple_documents_warn_and_last_wins():
    text = '{"application": {"name": "first"}}\n' + json.dumps(BASE)
    cfg = load(text)
    assert cfg.application.name == "t"
    assert any("2 JSON documents" in w for w in cfg.warnings)


def test_custom_decoder_per_call():
    seen = []

    def dec(value, section):
        seen.append((section.name, section.line))
        return {k.upper(): v for k, v in value.items()}

    text = '{ "application": {},\n  "User1-Data": { "a key": "a value" } }'
    cfg = load(text, decoders={"user1-data": dec})
    assert cfg.users == {"User1-Data": {"A KEY": "a value"}}
    assert seen == [("User1-Data", 2)]
    assert cfg.warnings == []
    cfg = load(text)
    assert cfg.users == {}
    assert any("unknown section ignored" in w for w in cfg.warnings)


def test_registered_decoder():
    register_decoder("my-sect", lambda v, s: len(v))
    try:
        assert C.registered_decoders().keys() == {"my-sect"}
        assert load('{"application": {}, "MY-SECT": [1, 2, 3]}').users == {"MY-SECT": 3}
        with pytest.raises(ConfigError, match="already exists"):
            register_decoder("My-Sect", lambda v, s: v)
    finally:
        assert unregister_decoder("my-sect")
    assert not unregister_decoder("my-sect")
    with pytest.raises(ConfigError, match="built in"):
        register_decoder("LPORTS", lambda v, s: v)
    with pytest.raises(ConfigError, match="built in"):
        load("{}", decoders={"threads": lambda v, s: v})
    with pytest.raises(ConfigError, match="not callable"):
        register_decoder("x", 3)  # type: ignore[arg-type]


def test_custom_decoder_errors():
    def strict(value, section):
        if "port" not in value:
            raise section.error("needs a port", "port")
        return value

    text = '{"application": {},\n "svc": {\n   "host": "x"\n }}'
    with pytest.raises(ConfigFileError) as ei:
        load(text, decoders={"svc": strict})
    assert str(ei.value) == "t.jsonc:2: svc.port: needs a port"

    def broken(value, section):
        return value["nope"]

    with pytest.raises(ConfigError, match=r'decoder for section "svc" failed: KeyError'):
        load(text, decoders={"svc": broken})


# --------------------------------------------------------------------------------------------
# host checks


def test_host_checks_are_warnings_by_default():
    host = StaticHost(cpus=[0, 1], netdevs={"eth0": 1}, hugepages={})
    cfg = load(BASE, host=host)
    text = "\n".join(cfg.warnings)
    assert "lcore-groups.group1: CPU 2 is not available" in text
    assert "lcore-groups.default: CPUs 3-4 are not available" in text
    assert "CPUs 0-1" in text
    assert "netdev 'eth1' does not exist" in text
    assert "netdev 'eth0' has 1 queue (0..0), not queue 1" in text
    assert "need 32 2MB hugepages" in text
    assert all(w.startswith("t.jsonc:") for w in cfg.warnings)
    assert cfg.check_host(strict=False, host=host) == cfg.warnings
    with pytest.raises(ConfigFileError, match="the host lacks what the configuration uses"):
        cfg.check_host(host=host)
    with pytest.raises(ConfigFileError) as ei:
        load(BASE, host=host, strict_host=True)
    assert len(ei.value.problems) == len(cfg.warnings)


def test_host_checks_can_be_skipped():
    cfg = load(BASE, host=StaticHost(cpus=[0]), host_checks=False)
    assert cfg.warnings == []


def test_enough_hugepages_no_warning():
    host = StaticHost(cpus=range(8), netdevs={"eth0": 4, "eth1": 4}, hugepages={2 << 20: 32})
    assert load(BASE, host=host).warnings == []
    host = StaticHost(cpus=range(8), netdevs={"eth0": 4, "eth1": 4}, hugepages={2 << 20: 31})
    assert any(
        "32 2MB hugepages, the host has 31 free" in w for w in load(BASE, host=host).warnings
    )


def test_frame_size_check():
    umems = {"umem0": {"bufcnt": 32, "bufsz": 8, "regions": [16, 16]}}
    cfg = load(base(umems=umems), host=HOST)
    assert any("bufsz 8192 cannot be an AF_XDP frame size" in w for w in cfg.warnings)
    big = StaticHost(netdevs={"eth0": 4, "eth1": 4}, hugepages={2 << 20: 999}, page_size=65536)
    cfg = load(base(umems=umems), host=big)
    assert cfg.warnings == []


def test_generated_lports_are_host_checked():
    groups = {"g": {"netdevs": ["eth3"], "queues": [0, 5], "threads": ["fwd:0"]}}
    cfg = load(group_cfg(groups))
    assert any(
        "lport 'eth3:5': netdev 'eth3' has 2 queues (0..1), not queue 5" in w for w in cfg.warnings
    )


def test_real_host_probe_works():
    h = C.Host()
    assert h.cpus() and h.page_size() >= 4096
    assert h.netdev_exists("lo")
    assert not h.netdev_exists("cnNoSuchDev0")
    assert h.rx_queue_count("lo") >= 1
    assert h.free_hugepages(3 << 20) is None


# --------------------------------------------------------------------------------------------
# the schema copy and its deviations


def test_shipped_schema_is_upstream_plus_a_header():
    from importlib import resources

    from cndp.app import jsonc

    shipped = resources.files("cndp.app").joinpath("cndp.schema").read_text()
    header, _, body = shipped.partition("\n{")
    assert all(line.startswith("//") for line in header.splitlines())
    assert "BSD-3-Clause" in header and "Intel" in header and "tools/cndp.schema" in header
    assert jsonc.loads("{" + body) == C._upstream_schema()


def test_schema_deviations():
    s = C._patched_schema()
    up = C._upstream_schema()
    assert up["required"] == ["application"] and s["required"] == []
    assert "enum" in up["properties"]["options"]["properties"]["mode"]
    assert "enum" not in s["properties"]["options"]["properties"]["mode"]
    thd = s["properties"]["threads"]["patternProperties"]["^"]
    assert thd["additionalProperties"] is False
    assert "unaligned_buffers" in s["properties"]["lports"]["patternProperties"]["^"]["properties"]
    types = []

    def walk(node):
        if isinstance(node, dict):
            types.append(node.get("type"))
            for v in node.values():
                walk(v)

    walk(s)
    assert "integer" in types and not any(t == "number" or "number" in (t or []) for t in types)


def test_pathological_names_do_not_backtrack():
    name = ":" * 40 + "\nx"
    lports = {name: {"pmd": "net_ring", "qid": 1, "umem": "umem0"}}
    assert "control character" in str(fails(base(lports=lports, threads={})))


# --------------------------------------------------------------------------------------------
# load() from files and stdin


def test_load_file(tmp_path):
    p = tmp_path / "cfg.jsonc"
    p.write_text("// comment\n" + json.dumps(BASE, indent=2))
    cfg = C.load(p, host=HOST)
    assert cfg.source == str(p)
    with pytest.raises(ConfigError, match="no such file"):
        C.load(tmp_path / "missing.jsonc")


# --------------------------------------------------------------------------------------------
# config over a socket (in process)


def _serve(tmp_path, **kw):
    result = {}
    ready = threading.Event()

    def run():
        try:
            result["data"] = config_sock.receive_config(
                tmp_path, on_ready=lambda p: (result.setdefault("path", p), ready.set()), **kw
            )
        except BaseException as e:
            result["error"] = e
            ready.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    return t, result


def test_socket_round_trip(tmp_path):
    text = json.dumps(BASE) * 1  # several 1024-byte records
    t, result = _serve(tmp_path, timeout=10)
    path = result["path"]
    assert path == os.path.join(tmp_path, f"config.{os.getpid()}")
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666)
    assert config_sock.send_config(path, text) == len(text)
    t.join(5)
    assert result["data"] == text.encode()
    assert not os.path.exists(path)  # removed after use
    assert load(result["data"].decode()).lports.keys() == {"eth0:0", "eth1:0"}


def test_socket_cndp_config_py_style_client(tmp_path):
    """The C tool's client: read(1024) / send() per chunk on SOCK_SEQPACKET."""
    data = ("// x\n" + json.dumps(BASE, indent=4)).encode()
    t, result = _serve(tmp_path, timeout=10)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(result["path"])
    for i in range(0, len(data), 1024):
        s.send(data[i : i + 1024])
    s.close()
    t.join(5)
    assert result["data"] == data


def test_socket_timeout(tmp_path):
    t, result = _serve(tmp_path, timeout=0.2)
    t.join(5)
    assert isinstance(result["error"], ConfigError)
    assert "no configuration arrived" in str(result["error"])


def test_socket_truncated_record_is_refused(tmp_path):
    t, result = _serve(tmp_path, timeout=10)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(result["path"])
    s.send(b" " * (config_sock.RECV_SIZE + 10))
    s.close()
    t.join(5)
    assert "truncated" in str(result["error"])


def test_socket_path_errors(tmp_path):
    with pytest.raises(ConfigError, match="longer than"):
        config_sock.ConfigSocketServer(path=str(tmp_path / ("x" * 120)))
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigError, match="not a socket"):
        config_sock.ConfigSocketServer(path=str(f))
    with pytest.raises(ConfigError, match="sending the configuration"):
        config_sock.send_config(str(tmp_path / "nobody"), b"{}")
    # a stale socket file is replaced
    stale = tmp_path / "stale"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(str(stale))
    s.close()
    with config_sock.ConfigSocketServer(path=str(stale)) as srv:
        assert srv.path == str(stale)
    assert not stale.exists()


def test_load_socket(tmp_path):
    holder = {}

    def sender(path):
        holder["t"] = threading.Thread(
            target=config_sock.send_config, args=(path, json.dumps(BASE)), daemon=True
        )
        holder["t"].start()

    cfg = C.load_socket(tmp_path, timeout=10, on_ready=sender, host=HOST)
    holder["t"].join(5)
    assert cfg.source == "<socket>" and list(cfg.lports) == ["eth0:0", "eth1:0"]


def test_default_runtime_dir():
    d = config_sock.default_runtime_dir()
    if os.geteuid() == 0:
        assert d == "/var/run/cndp"
    else:
        assert d.endswith("/cndp")


# --------------------------------------------------------------------------------------------
# tx_qid (pycndp extension: transmit through a second AF_XDP socket on another queue)


def txq_cfg(*lports: tuple[str, dict], groups: dict | None = None) -> dict:
    """BASE with these lports (name, keys), all listed by thread fwd:0."""
    lps = {n: {"pmd": "net_af_xdp", "umem": "umem0", **kw} for n, kw in lports}
    threads = {"main": {"group": "initial"}, "fwd:0": {"group": "group0", "lports": list(lps)}}
    doc = base(lports=lps, threads=threads)
    if groups is not None:
        doc["lport-groups"] = groups
    return doc


def test_tx_qid_is_parsed_and_passed_on():
    from cndp.pktdev.port import PortConfig
    from cndp.xskdev.xskdev import XskConfig

    cfg = load(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 3}), ("eth1:0", {"qid": 0})))
    lp, plain = cfg.lports["eth0:0"], cfg.lports["eth1:0"]
    assert (lp.tx_qid, plain.tx_qid) == (3, None)
    x = cfg.lport_xsk_config("eth0:0")
    assert isinstance(x, XskConfig) and (x.qid, x.tx_qid) == (0, 3)
    assert cfg.lport_xsk_config("eth1:0").tx_qid is None
    p = cfg.lport_port_config("eth0:0", None)
    assert isinstance(p, PortConfig) and (p.qid, p.tx_qid) == (0, 3)
    assert cfg.lport_port_config("eth1:0", None).tx_qid is None
    d = cfg.to_dict()["lports"]
    assert (d["eth0:0"]["tx_qid"], d["eth1:0"]["tx_qid"]) == (3, None)
    json.dumps(cfg.to_dict())
    assert lp.flags == plain.flags  # no CNDP flag bit: C CNDP has no such key
    assert cfg.warnings == []


def test_tx_qid_integral_float_is_an_integer():
    cfg = load(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 2.0})))
    assert cfg.lports["eth0:0"].tx_qid == 2 and type(cfg.lports["eth0:0"].tx_qid) is int


@pytest.mark.parametrize(
    "value,reason",
    [
        (True, "expected an integer, got true"),
        (False, "expected an integer, got false"),
        ("1", 'expected an integer, got "1"'),
        (1.5, "expected an integer, got 1.5"),
        (None, "expected an integer, got null"),
        ([1], "expected an integer, got [1]"),
        (-1, "must be a queue number in 0..65535, got -1"),
        (65536, "must be a queue number in 0..65535, got 65536"),
    ],
)
def test_tx_qid_must_be_a_queue_number(value, reason):
    e = fails(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": value})))
    assert e.path == 'lports."eth0:0".tx_qid'
    assert e.reason.startswith(reason), e.reason
    assert e.line is not None and str(e).startswith(f"t.jsonc:{e.line}: ")


def test_tx_qid_must_not_be_the_lports_own_qid():
    e = fails(txq_cfg(("eth0:0", {"qid": 4, "tx_qid": 4})))
    assert e.path == 'lports."eth0:0".tx_qid'
    assert (
        e.reason == "tx_qid 4 is the lport's own qid; it must name another queue of netdev 'eth0'"
    )
    assert "leave tx_qid out" in str(e)


@pytest.mark.parametrize("pmd", ["net_af_packet", "net_ring", "net_null", "net_tap"])
def test_tx_qid_only_for_af_xdp(pmd):
    e = fails(txq_cfg(("eth0:0", {"pmd": pmd, "qid": 0, "tx_qid": 1})))
    assert e.path == 'lports."eth0:0".tx_qid'
    assert f"tx_qid is an AF_XDP option, but the pmd of lport 'eth0:0' is '{pmd}'" in e.reason
    assert 'use pmd "net_af_xdp"' in str(e)


def test_tx_qid_takes_its_queue_from_other_lports():
    # another lport's qid on the same netdev
    e = fails(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 1}), ("eth0:1", {"qid": 1})))
    assert e.path == 'lports."eth0:0".tx_qid'
    assert "tx_qid 1 is the queue of lport 'eth0:1' (netdev 'eth0', qid 1)" in e.reason
    assert "give lport 'eth0:0' a tx_qid that no lport of netdev 'eth0' uses" in str(e)
    # ... also when that lport comes first in the file
    e = fails(txq_cfg(("eth0:1", {"qid": 1}), ("eth0:0", {"qid": 0, "tx_qid": 1})))
    assert e.path == 'lports."eth0:0".tx_qid' and "lport 'eth0:1'" in e.reason
    # two lports swapping queues: each tx_qid is the other's qid
    e = fails(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 1}), ("eth0:1", {"qid": 1, "tx_qid": 0})))
    assert e.path.endswith(".tx_qid") and "is the queue of lport" in e.reason
    # another lport's tx_qid: the later one is named, with the first
    e = fails(txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 5}), ("eth0:1", {"qid": 1, "tx_qid": 5})))
    assert e.path == 'lports."eth0:1".tx_qid'
    assert "tx_qid 5 is also the tx_qid of lport 'eth0:0' (netdev 'eth0')" in e.reason


def test_tx_qid_queues_of_other_netdevs_and_non_xdp_lports_are_free():
    cfg = load(
        txq_cfg(
            ("eth0:0", {"qid": 0, "tx_qid": 1}),
            ("eth1:0", {"qid": 1, "tx_qid": 0}),  # the same numbers on another netdev
            ("eth0:p", {"pmd": "net_af_packet", "qid": 1}),  # binds no queue
            ("eth0:2", {"qid": 2, "tx_qid": 3}),
        )
    )
    assert [lp.tx_qid for lp in cfg.lports.values()] == [1, 0, None, 3]


def test_tx_qid_against_lport_group_queues():
    groups = {"g": {"netdevs": ["eth0"], "queues": "0-2", "threads": ["fwd:0"]}}
    e = fails(txq_cfg(("eth0:x", {"qid": 5, "tx_qid": 2}), groups=groups))
    assert e.path == 'lports."eth0:x".tx_qid'
    assert "is the queue of lport 'eth0:2' of lport-group 'g' (netdev 'eth0', qid 2)" in e.reason
    # a queue the group does not use is fine
    cfg = load(txq_cfg(("eth0:x", {"qid": 5, "tx_qid": 3}), groups=groups))
    assert cfg.lports["eth0:x"].tx_qid == 3 and "eth0:2" in cfg.lports


def test_tx_qid_is_refused_in_lport_groups():
    groups = {"g": {"netdevs": ["eth2"], "queues": [0], "threads": ["fwd:0"], "tx_qid": 1}}
    e = fails(group_cfg(groups))
    assert e.path == "lport-groups.g.tx_qid"
    assert '"tx_qid" is per lport' in e.reason and 'one by one in "lports"' in e.reason


def test_tx_qid_host_check_counts_tx_queues():
    doc = txq_cfg(("eth0:0", {"qid": 0, "tx_qid": 3}), ("eth1:0", {"qid": 0, "tx_qid": 1}))
    host = StaticHost(
        netdevs={"eth0": 4, "eth1": 4}, hugepages={2 << 20: 999}, tx_queues={"eth0": 2}
    )
    cfg = load(doc, host=host)
    assert len(cfg.warnings) == 1, cfg.warnings
    w = cfg.warnings[0]
    assert w.startswith("t.jsonc:") and 'lports."eth0:0".tx_qid' in w
    assert "netdev 'eth0' has 2 tx queues (0..1), not tx_qid 3" in w
    with pytest.raises(ConfigFileError, match="has 2 tx queues"):
        load(doc, host=host, strict_host=True)
    # without tx_queues a StaticHost has as many TX as RX queues
    assert (
        load(
            doc, host=StaticHost(netdevs={"eth0": 4, "eth1": 4}, hugepages={2 << 20: 999})
        ).warnings
        == []
    )
    assert C.Host().tx_queue_count("lo") >= 1  # the real probe answers


def test_tx_qid_in_the_schema():
    s = C._patched_schema()
    lport = s["properties"]["lports"]["patternProperties"]["^"]["properties"]
    assert lport["tx_qid"] == {"type": "integer"}
    up = C._upstream_schema()["properties"]["lports"]
    assert "tx_qid" not in next(iter(up["patternProperties"].values()))["properties"]


def test_tx_qid_typo_suggests_the_key():
    e = fails(txq_cfg(("eth0:0", {"qid": 0, "tx_quid": 1})))
    assert e.path == 'lports."eth0:0".tx_quid' and 'did you mean "tx_qid"?' in e.reason


def test_port_config_tx_qid():
    import numpy as np

    from cndp.pktdev.port import PortConfig

    assert PortConfig("eth0:0", "net_af_xdp").tx_qid is None
    p = PortConfig("eth0:0", "net_af_xdp", qid=0, tx_qid=np.int64(2))
    assert p.tx_qid == 2 and type(p.tx_qid) is int
    assert "tx_qid       : 2" in p.dump()
    assert PortConfig("eth0:0", "net_af_xdp:x=1", qid=1, tx_qid=0).tx_qid == 0
    for bad in (True, -1, "1", 1.0):
        with pytest.raises(ConfigError, match=r"'eth0:0': tx_qid must be None or an integer >= 0"):
            PortConfig("eth0:0", "net_af_xdp", tx_qid=bad)
    with pytest.raises(ConfigError, match=r"'eth0:0': tx_qid 3 is the lport's own qid"):
        PortConfig("eth0:0", "net_af_xdp", qid=3, tx_qid=3)
    with pytest.raises(ConfigError, match=r"tx_qid is an AF_XDP option, but pmd is 'net_ring'"):
        PortConfig("r:0", "net_ring", tx_qid=1)


# hypothesis: any mix of lports with and without tx_qid on two netdevs loads exactly when the
# rules allow it (the oracle below), and a refusal always points at a tx_qid

LPORT_SPECS = st.lists(
    st.tuples(
        st.sampled_from(["eth0", "eth1"]),
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=4,
)


def tx_qid_allowed(specs: list[tuple[str, int, int | None]]) -> bool:
    for i, (nd, q, t) in enumerate(specs):
        if t is None:
            continue
        if t == q:
            return False
        for j, (nd2, q2, t2) in enumerate(specs):
            if j != i and nd2 == nd and t in (q2, t2):
                return False
    return True


@settings(max_examples=200, deadline=2000, derandomize=True)
@given(LPORT_SPECS)
def test_tx_qid_rules_against_an_oracle(specs):
    lports = []
    for i, (nd, q, t) in enumerate(specs):
        kw = {"qid": q} if t is None else {"qid": q, "tx_qid": t}
        lports.append((f"{nd}:{i}", kw))
    doc = txq_cfg(*lports)
    if tx_qid_allowed(specs):
        cfg = load(doc)
        assert [lp.tx_qid for lp in cfg.lports.values()] == [t for _, _, t in specs]
    else:
        e = fails(doc)
        assert e.path.startswith('lports."') and e.path.endswith('".tx_qid'), str(e)
        assert e.line is not None
