"""The device plugin's config.json (AF_XDP plugins' format), pool selection, preferred
allocation, PodResources records and the CLI's config errors — no privileges needed."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.errors import ConfigError
from cndp.k8s import deviceplugin as dp
from cndp.k8s import discovery as disc
from cndp.k8s.dp_config import DeviceSel, load_config, parse_config
from cndp.k8s.podresources import to_records
from cndp.k8s.proto import podresources_v1_pb2 as pr

# The ConfigMap of the Go plugin's deployments/daemonset.yml, and of its kind variant.
GO_DAEMONSET = """{
   "logLevel":"debug",
   "logFile":"afxdp-dp.log",
   "pools":[
      {"name":"myPool", "mode":"primary", "drivers":[{"name":"i40e"}, {"name":"ice"}]}
   ]
}"""
GO_KIND = """{"clusterType": "kind", "logLevel":"debug", "logFile":"afxdp-dp.log",
  "pools":[{"name":"myPool", "mode":"primary", "drivers":[{"name":"veth"}]}]}"""

FULL = {
    "logLevel": "warning",
    "logFile": "dp.txt",
    "kindCluster": True,
    "pools": [
        {
            "name": "pool1",
            "mode": "primary",
            "drivers": [
                {
                    "name": "veth",
                    "primary": 2,
                    "excludeDevices": [{"name": "veth9"}, {"mac": "02-00-00-00-00-09"}],
                    "excludeAddressed": True,
                }
            ],
            "devices": [{"name": "ens1"}, {"pci": "0000:3B:00.1"}, {"mac": "02:AA:00:00:00:01"}],
            "nodes": [{"hostname": "node-1.example", "devices": [{"name": "ens9"}]}],
            "udsTimeout": 120,
            "udsServerDisable": False,
            "bpfMapPinningEnable": True,
            "requiresUnprivilegedBpf": False,
            "uid": 1500,
            "xdpMode": "skb",
            "podHostnameCheck": False,
        },
        {"name": "pool2", "mode": "primary", "devices": [{"name": "ens2"}], "udsTimeout": -1},
    ],
}


def parse(obj) -> object:
    return parse_config(json.dumps(obj))


def err(obj_or_text) -> str:
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
    with pytest.raises(ConfigError) as ei:
        parse_config(text)
    return str(ei.value)


# ---------------------------------------------------------------------------------------------
# valid configs


def test_the_go_plugins_configmaps_parse():
    c = parse_config(GO_DAEMONSET)
    (p,) = c.pools
    assert (p.name, p.mode, [d.name for d in p.drivers]) == ("myPool", "primary", ["i40e", "ice"])
    assert (c.log_level, c.log_file, c.kind_cluster) == ("debug", "afxdp-dp.log", False)
    assert (p.resource, p.env_var, p.idle_timeout) == ("afxdp/myPool", "AFXDP_DEVICES_MYPOOL", 30)
    k = parse_config(GO_KIND)
    assert k.kind_cluster and any("clusterType" in n for n in k.notes)


def test_every_key_and_its_meaning():
    c = parse(FULL)
    p1, p2 = c.pools
    assert (c.log_level, c.log_file, c.kind_cluster) == ("warning", "dp.txt", True)
    (drv,) = p1.drivers
    assert (drv.name, drv.primary, drv.exclude_addressed) == ("veth", 2, True)
    assert drv.exclude_devices == (DeviceSel(name="veth9"), DeviceSel(mac="02:00:00:00:00:09"))
    assert p1.devices == (
        DeviceSel(name="ens1"),
        DeviceSel(pci="0000:3b:00.1"),
        DeviceSel(mac="02:aa:00:00:00:01"),
    )
    assert (p1.idle_timeout, p1.uid, p1.xdp_mode, p1.pod_hostname_check) == (
        120,
        1500,
        "skb",
        False,
    )
    assert p1.bpf_map_pinning_enable and not p1.uds_server_disable
    assert p1.for_node("node-1.example") == ((), (DeviceSel(name="ens9"),))
    assert p1.for_node("other") == (p1.drivers, p1.devices)
    assert p2.idle_timeout is None  # -1: no idle timeout
    assert c.pool("pool2") is p2


def test_keys_match_whatever_their_case_as_in_go():
    c = parse({"POOLS": [{"Name": "a", "MODE": "primary", "Devices": [{"NAME": "x"}]}]})
    assert c.pools[0].devices == (DeviceSel(name="x"),)


def test_null_leaves_the_default_and_ignored_keys_are_noted():
    c = parse(
        {
            "logLevel": None,
            "pools": [
                {
                    "name": "a",
                    "mode": "primary",
                    "devices": [{"name": "x"}],
                    "udsTimeout": None,
                    "udsFuzz": True,
                    "ethtoolCmds": ["-N -device- flow-type udp4"],
                }
            ],
        }
    )
    assert c.log_level == "info" and c.pools[0].idle_timeout == 30
    assert sorted(n.split(":")[0] for n in c.notes) == [
        "pools[0].ethtoolCmds",
        "pools[0].udsFuzz",
    ]


# ---------------------------------------------------------------------------------------------
# errors: the key path, then what is wrong, then a fix


def P(**kw):  # a valid pool plus changes
    return {"pools": [{"name": "a", "mode": "primary", "devices": [{"name": "x"}], **kw}]}


BAD = [
    ("{", r"^config\.json: not valid JSON: .* line 1 column 2"),
    ("", r"^config\.json: empty"),
    ('{"a": NaN}', r"NaN is not JSON"),
    ("[1, 2]", r"^config\.json: must be an object, not a list"),
    ('{"pools": {}}', r"^config\.json: pools: must be a list, not an object"),
    ('{"pools": [null]}', r"pools\[0\]: cannot be null"),
    ('{"pools": [{"name": "a", "name": "b"}]}', r"pools\[0\]\.name: key 'name' is given twice"),
    (P(udsTimout=30), r"pools\[0\]\.udsTimout: unknown key \(fix: did you mean 'udsTimeout'\?\)"),
    ({"pool": []}, r"^config\.json: pool: unknown key \(fix: did you mean 'pools'\?\)"),
    (P(udsTimeout=5), r"pools\[0\]\.udsTimeout: 5 is out of range .*-1 \(no timeout\)"),
    (P(udsTimeout="30"), r"pools\[0\]\.udsTimeout: must be an integer, not a string \(\"30\"\)"),
    (P(udsTimeout=30.5), r"udsTimeout: must be an integer, not a number with a fraction"),
    (P(udsTimeout=True), r"udsTimeout: must be an integer, not a boolean"),
    (P(uid=999), r"pools\[0\]\.uid: 999 is out of range \(fix: use 0 \(unset\) or 1000\.\.256000"),
    (P(mode="cdqq"), r"pools\[0\]\.mode: \"cdqq\" is not allowed \(fix: use one of: primary, cdq"),
    (P(mode=None), r"pools\[0\]: pool 'a' needs a mode"),
    (P(name="my-pool"), r"pools\[0\]\.name: \"my-pool\" is not a pool name of 1\.\.20 letters"),
    (P(name="a" * 21), r"pools\[0\]\.name: .* is not a pool name"),
    (P(devices=[]), r"pools\[0\]: pool 'a' has no drivers, devices or nodes"),
    (P(devices=[{}]), r"pools\[0\]\.devices\[0\]: a device needs a name, pci or mac"),
    (
        P(devices=[{"name": "x", "pci": "0000:00:01.0"}]),
        r"devices\[0\]: a device is named by one of name, pci or mac, not by name and pci",
    ),
    (P(devices=[{"pci": "0000:00:01"}]), r"devices\[0\]\.pci: \"0000:00:01\" is not a PCI addr"),
    (P(devices=[{"mac": "02:00:00:00:00"}]), r"devices\[0\]\.mac: .* is not a MAC address"),
    (P(devices=[{"name": "a b"}]), r"devices\[0\]\.name: \"a b\" is not 1\.\.50 letters"),
    (P(devices=["x"]), r"devices\[0\]: must be an object, not a string"),
    (P(drivers=[{"primary": 1}]), r"drivers\[0\]: a driver needs a name"),
    (P(drivers=[{"name": "ice", "primary": 11}]), r"drivers\[0\]\.primary: 11 is out of range"),
    (
        P(drivers=[{"name": "ice", "excludeAddressed": "yes"}]),
        r"drivers\[0\]\.excludeAddressed: must be true or false, not a string",
    ),
    (
        P(drivers=[{"name": "ice", "excludeDevices": [{"nam": "x"}]}]),
        r"drivers\[0\]\.excludeDevices\[0\]\.nam: unknown key \(fix: did you mean 'name'\?\)",
    ),
    (P(nodes=[{"devices": [{"name": "x"}]}]), r"nodes\[0\]: a node section needs a hostname"),
    (P(nodes=[{"hostname": "n1"}]), r"nodes\[0\]: a node section needs drivers or devices"),
    (
        P(nodes=[{"hostname": "n1", "devices": [{"name": "x"}]}] * 2),
        r"pools\[0\]\.nodes: node 'n1' appears twice",
    ),
    (P(xdpMode="hw"), r"pools\[0\]\.xdpMode: \"hw\" is not allowed \(fix: use one of: native, skb"),
    ({"logLevel": "trace"}, r"logLevel: \"trace\" is not allowed \(fix: use one of: debug"),
    ({"logFile": "/var/log/x.log"}, r"logFile: .* is not a file name ending in \.log or \.txt"),
    ({"kindCluster": 1}, r"kindCluster: must be true or false, not an integer"),
    (
        {"pools": [P()["pools"][0], P()["pools"][0]]},
        r"pools\[1\]\.name: pool 'a' appears twice",
    ),
]


@pytest.mark.parametrize("cfg,pattern", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_configs_name_the_key_and_say_how_to_fix_it(cfg, pattern):
    msg = err(cfg)
    assert re.search(pattern, msg), msg
    assert "(fix: " in msg


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read the device-plugin config .*nope\.json"):
        load_config(str(tmp_path / "nope.json"))
    f = tmp_path / "config.json"
    f.write_bytes(b'{"logLevel": "\xff"}')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))}: not UTF-8 text"):
        load_config(str(f))
    f.write_text(GO_DAEMONSET)
    assert load_config(str(f)).pools[0].name == "myPool"


# ---------------------------------------------------------------------------------------------
# fuzzing: a clear ConfigError or a config, never anything else


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _parse_or_error(text: str):
    try:
        return parse_config(text)
    except ConfigError as e:
        assert str(e).startswith("config.json: ")
        return e


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_fuzz_any_text(text):
    _parse_or_error(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_any_json(value):
    _parse_or_error(json.dumps(value))


def _paths(obj, path=""):
    """Every (path, container, key) of a parsed JSON tree, as the parser names paths."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else k
            yield p, obj, k
            yield from _paths(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            p = f"{path}[{i}]"
            yield p, obj, i
            yield from _paths(v, p)


FULL_PATHS = [p for p, _, _ in _paths(FULL)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FULL_PATHS), json_values)
def test_fuzz_one_value_replaced_the_error_names_that_key(path, value):
    cfg = copy.deepcopy(FULL)
    container, key = {p: (c, k) for p, c, k in _paths(cfg)}[path]
    container[key] = value
    out = _parse_or_error(json.dumps(cfg))
    if not isinstance(out, ConfigError):  # accepted: then it had the key's type
        want = dict if path.endswith("]") else EXPECT[path.rsplit(".", 1)[-1]]
        is_bool = isinstance(value, bool)
        assert value is None or (isinstance(value, want) and is_bool == (want is bool)), path
    elif "appears twice" not in str(out):
        # The key itself, one of its parents (a pool without devices), or a key inside the
        # new value (an unknown key in an object put there).
        named = str(out)[len("config.json: ") :].split(":", 1)[0]
        assert path.startswith(named) or named.startswith(path), (path, str(out))


EXPECT = {
    **dict.fromkeys(("pools", "drivers", "devices", "nodes", "excludeDevices"), list),
    **dict.fromkeys(("udsTimeout", "uid", "primary", "secondary"), int),
    **dict.fromkeys(
        ("kindCluster", "udsServerDisable", "bpfMapPinningEnable", "requiresUnprivilegedBpf"), bool
    ),
    **dict.fromkeys(("podHostnameCheck", "excludeAddressed"), bool),
    **dict.fromkeys(("logLevel", "logFile", "name", "mode", "pci", "mac", "hostname"), str),
    "xdpMode": str,
}
KNOWN_KEYS = {
    k.lower()
    for k in [
        *("pools", "logFile", "logLevel", "kindCluster", "clusterType", "name", "mode"),
        *("drivers", "devices", "nodes", "udsServerDisable", "bpfMapPinningEnable"),
        *("udsTimeout", "udsFuzz", "requiresUnprivilegedBpf", "uid", "ethtoolCmds", "xdpMode"),
        *("podHostnameCheck", "pci", "mac", "secondary", "primary", "excludeDevices"),
        *("excludeAddressed", "hostname"),
    ]
}
FULL_OBJECTS = [""] + [p for p, c, k in _paths(FULL) if isinstance(c[k], dict)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FULL_OBJECTS), st.text(min_size=1, max_size=10))
def test_fuzz_an_unknown_key_is_named(where, key):
    if key.lower() in KNOWN_KEYS:
        return
    cfg = copy.deepcopy(FULL)
    obj = cfg if not where else {p: c[k] for p, c, k in _paths(cfg)}[where]
    obj[key] = 1
    msg = err(cfg)
    assert msg.startswith(f"config.json: {where + '.' if where else ''}{key}: unknown key"), msg


# ---------------------------------------------------------------------------------------------
# pool selection (pure: made-up netdevs)


def nd(name, driver="ice", **kw):
    defaults = {"ifindex": abs(hash(name)) % 1000 + 1, "physical": True, "up": True}
    return disc.Netdev(name=name, driver=driver, **{**defaults, **kw})


NETDEVS = {
    d.name: d
    for d in (
        nd("ens1", pci="0000:3b:00.0", mac="02:00:00:00:00:01"),
        nd("ens2", pci="0000:3b:00.1", mac="02:00:00:00:00:02", addressed=True),
        nd("ens3", pci="0000:3b:00.2", mac="02:00:00:00:00:03"),
        nd("ens4", driver="i40e", pci="0000:5e:00.0"),
        nd("eth0", driver="virtio_net", pci="0000:00:03.0"),
        nd("eno1", driver="ice"),
        nd("lo", driver="", physical=False),
        nd("br0", driver="bridge", kind="bridge", physical=False),
        nd("vethA", driver="veth", kind="veth", physical=False),
        nd("vethB", driver="veth", kind="veth", physical=False, master=7),
        nd("vethC", driver="veth", kind="veth", physical=False),
    )
}


def select(cfg: dict, node="node-1", netdevs=NETDEVS):
    return disc.select(parse(cfg), netdevs, node)


def test_select_by_driver_name_mac_pci_first_pool_wins():
    s = select(
        {
            "pools": [
                {"name": "p1", "mode": "primary", "devices": [{"mac": "02:00:00:00:00:03"}]},
                {"name": "p2", "mode": "primary", "drivers": [{"name": "ice"}]},
                {"name": "p3", "mode": "primary", "devices": [{"pci": "0000:5e:00.0"}]},
                {"name": "p4", "mode": "primary", "devices": [{"name": "ens1"}]},
            ]
        }
    )
    # ens3 went to p1 first; eno1 is never offered (prefix); ens1 is p2's before p4 asks.
    assert s.pools == {"p1": ("ens3",), "p2": ("ens1", "ens2"), "p3": ("ens4",), "p4": ()}
    assert any("p4" in n and "ens1" in n and "'p2' already holds it" in n for n in s.notes)
    assert any("eno1" in n and "never offered" in n for n in s.notes)


def test_select_primary_limit_excludes_and_addressed():
    drv = {"name": "ice", "primary": 1, "excludeDevices": [{"pci": "0000:3b:00.0"}]}
    s = select({"pools": [{"name": "p", "mode": "primary", "drivers": [drv]}]})
    assert s.pools["p"] == ("ens2",)
    drv = {"name": "ice", "excludeAddressed": True}
    s = select({"pools": [{"name": "p", "mode": "primary", "drivers": [drv]}]})
    assert s.pools["p"] == ("ens1", "ens3")


def test_select_virtual_netdevs_only_in_a_kind_cluster_never_bridge_ports():
    pools = [{"name": "p", "mode": "primary", "drivers": [{"name": "veth"}]}]
    assert select({"pools": pools}).pools["p"] == ()
    s = select({"kindCluster": True, "pools": pools})
    assert s.pools["p"] == ("vethA", "vethC")  # vethB is a bridge port
    s = select({"kindCluster": True, "pools": [{"name": "p", "mode": "primary",
                "devices": [{"name": "br0"}, {"name": "lo"}, {"name": "nope"}]}]})  # fmt: skip
    assert s.pools["p"] == ()
    assert [n.split(": ", 1)[1] for n in s.notes] == [
        "device br0 left out: it is a bridge",
        "device lo left out: its name starts with eno/eth/lo/docker/flannel/cni (never offered)",
        "device nope does not exist on this node",
    ]


def test_select_a_node_section_replaces_the_pool_lists():
    pool = {
        "name": "p",
        "mode": "primary",
        "drivers": [{"name": "ice"}],
        "nodes": [{"hostname": "node-2", "devices": [{"name": "ens4"}]}],
    }
    assert select({"pools": [pool]}, node="node-2").pools["p"] == ("ens4",)
    assert select({"pools": [pool]}, node="node-1").pools["p"] == ("ens1", "ens2", "ens3")


def test_cdq_mode_is_refused_clearly():
    cfg = parse({"pools": [{"name": "p", "mode": "cdq", "drivers": [{"name": "ice"}]}]})
    with pytest.raises(ConfigError, match=r"pools\[0\]\.mode: .* cdq .* not support"):
        disc.check_pool_modes(cfg)


# ---------------------------------------------------------------------------------------------
# preferred allocation, PodResources records


def test_preferred_allocation():
    numa = {"a": 0, "b": 1, "c": 0, "d": 1}
    healthy = {"a": True, "b": True, "c": True, "d": False}
    assert dp.preferred(["d", "c", "b", "a"], [], 2, numa, healthy) == ["a", "c"]
    assert dp.preferred(["d", "c", "b", "a"], ["b"], 2, numa, healthy) == ["b", "a"]
    assert dp.preferred(["a", "b", "c"], ["b", "c"], 1, numa, healthy) == ["b", "c"]
    assert dp.preferred(["a"], [], 3, {}, {}) == ["a"]


@given(
    st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8),
    st.data(),
)
def test_preferred_allocation_properties(available, data):
    must = data.draw(
        st.lists(st.sampled_from(available), unique=True) if available else st.just([])
    )
    size = data.draw(st.integers(0, 10))
    numa = {d: data.draw(st.integers(-1, 2)) for d in available}
    healthy = {d: data.draw(st.booleans()) for d in available}
    out = dp.preferred(available, must, size, numa, healthy)
    assert out[: len(must)] == must  # must-include first, in order
    assert len(out) == max(len(must), min(size, len(available)))
    assert len(set(out)) == len(out) and set(out) <= set(available)


def test_podresources_records_merge_a_resource_listed_per_numa_node():
    resp = pr.ListPodResourcesResponse()
    p = resp.pod_resources.add(name="pod", namespace="ns")
    c = p.containers.add(name="app")
    c.devices.add(resource_name="afxdp/p", device_ids=["a"])
    c.devices.add(resource_name="afxdp/p", device_ids=["b"])
    c.devices.add(resource_name="other/x", device_ids=["z"])
    (rec,) = to_records(resp)
    assert rec.name == "pod" and rec.namespace == "ns"
    assert rec.containers[0].devices == {"afxdp/p": ("a", "b"), "other/x": ("z",)}


# ---------------------------------------------------------------------------------------------
# the command line: one line naming the problem, no traceback


@pytest.mark.parametrize(
    "text,rc,needle",
    [
        (P(udsTimeout=10), 1, "pools[0].udsTimeout: 10 is out of range"),
        ({"pools": [{"name": "p", "mode": "cdq", "devices": [{"name": "x"}]}]}, 1, "cdq"),
        ("not json", 1, "not valid JSON"),
    ],
)
def test_cli_config_errors(tmp_path, capsys, text, rc, needle):
    f = tmp_path / "config.json"
    f.write_text(text if isinstance(text, str) else json.dumps(text))
    assert dp.main(["--config", str(f)]) == rc
    out = capsys.readouterr()
    assert needle in out.err and "Traceback" not in out.err
    assert out.err.startswith("cndp-deviceplugin: ")


def test_cli_usage_errors(tmp_path, capsys):
    assert dp.main(["--config", str(tmp_path / "missing.json")]) == 1
    assert "cannot read the device-plugin config" in capsys.readouterr().err
    assert dp.main(["--config", "x", "--reap-interval", "0"]) == 2
    assert "--reap-interval must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:
        dp.main(["--log-level", "loud"])
    assert ei.value.code == 2


# ---------------------------------------------------------------------------------------------
# udsTimeout -1: the handshake server's idle_timeout=None


@pytest.mark.parametrize("uds_timeout", [-1, 0])
def test_uds_timeout_minus_one_keeps_an_idle_connection(tmp_path, uds_timeout):
    import socket
    import time

    from cndp.k8s import udsserver as us

    idle = parse(P(udsTimeout=uds_timeout)).pools[0].idle_timeout
    assert idle == (None if uds_timeout == -1 else 30.0)
    # 30 s is too long for a unit test: compare "no limit" with a short limit.
    limit = None if idle is None else 0.2
    srv = us.UdsServer(str(tmp_path / "s.sock"), {}, us.AllowPods(), idle_timeout=limit).start()
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c.connect(srv.path)
        c.settimeout(10)
        if limit is None:
            time.sleep(0.6)  # three times what the limited server waits before closing
            c.send(b"/version")  # before /connect: answered /nak, then closed
            assert c.recv(64) == b"/nak" and srv.stats.timeouts == 0
        else:
            assert c.recv(64) == b""  # closed by the server for idling
            assert srv.stats.timeouts == 1
        c.close()
    finally:
        srv.close()
