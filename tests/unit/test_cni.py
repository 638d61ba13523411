"""The afxdp CNI plugin without privileges: environment and config parsing, results, and the
ADD/DEL/CHECK logic against a recording in-memory system (the e2e tests in
tests/e2e/test_cni_cnitool.py run the same code on the kernel through cnitool).

Hypothesis feeds random stdin configs and CNI_ARGS: the answer is always the spec's error JSON
with the code the fault calls for (or a success), never a traceback or code 999."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.k8s import cni
from cndp.k8s.cni import CniError, Completed, LinkInfo

POD = "/var/run/netns/pod-under-test"
DEV = "ens1f0"
MAC = "02:00:c6:12:00:0a"
ETHTOOL = "/fake/ethtool"


# ---------------------------------------------------------------------------------------------
# a recording in-memory system


class FakeSystem:
    """Namespaces holding links, a recorded command runner, XDP state. ``ethtool`` answers
    what ``ethtool_replies`` says (default: success); the IPAM plugin answers ``ipam_reply``."""

    def __init__(self) -> None:
        self.links: dict[str | None, dict[str, LinkInfo]] = {
            None: {DEV: LinkInfo(7, DEV, MAC, True)},
            POD: {},
        }
        self.addrs: dict[tuple[str | None, str], list[str]] = {}
        self.routes: list[tuple[str | None, str, str, str | None]] = []
        self.calls: list[tuple] = []
        self.xdp: dict[str, int] = {DEV: 42}
        self.ethtool_replies: dict[str, Completed] = {
            "-k": Completed(0, b"ntuple-filters: off\n", b""),
            "-N": Completed(0, b"Added rule with ID 1023\n", b""),
        }
        self.fail_on: tuple[str, ...] | None = None  # argv prefix that fails
        self.ipam_reply = Completed(
            0,
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "ips": [{"address": "198.18.0.10/24", "gateway": "198.18.0.1"}],
                    "routes": [{"dst": "198.18.2.0/24"}],
                    "dns": {},
                }
            ).encode(),
            b"",
        )
        self.ipam_del_reply = Completed(0, b"", b"")

    def close(self) -> None:
        self.calls.append(("close",))

    def netns_exists(self, netns: str) -> bool:
        return netns in self.links

    def find_link(self, netns, name):
        return self.links.get(netns, {}).get(name)

    def move_link(self, name, src, dst):
        self.calls.append(("move", name, src, dst))
        link = self.links[src].pop(name)
        self.links[dst][name] = replace(link, up=False)  # a move takes the link down
        self.addrs.pop((src, name), None)  # and its addresses stay behind (flushed)

    def set_link_up(self, netns, name, up):
        self.calls.append(("up" if up else "down", name, netns))
        self.links[netns][name] = replace(self.links[netns][name], up=up)

    def add_address(self, netns, name, cidr):
        self.calls.append(("addr", name, netns, cidr))
        self.addrs.setdefault((netns, name), []).append(cidr)

    def addresses(self, netns, name):
        return list(self.addrs.get((netns, name), []))

    def add_route(self, netns, name, dst, gw):
        self.calls.append(("route", name, netns, dst, gw))
        self.routes.append((netns, name, dst, gw))

    def run(self, argv: Sequence[str], stdin=None, env: Mapping[str, str] | None = None):
        argv = list(argv)
        if argv[0] == ETHTOOL:
            self.calls.append(("ethtool", *argv[1:]))
            if self.fail_on and tuple(argv[1 : 1 + len(self.fail_on)]) == self.fail_on:
                return Completed(1, b"", b"Cannot insert classification rule\n")
            return self.ethtool_replies.get(argv[1], Completed(0, b"", b""))
        # an IPAM plugin from CNI_PATH
        cmd = (env or {}).get("CNI_COMMAND")
        self.calls.append(("ipam", os.path.basename(argv[0]), cmd, stdin))
        if cmd == "ADD":
            return self.ipam_reply
        if cmd == "DEL":
            return self.ipam_del_reply
        return Completed(0, b"", b"")

    def xdp_attached(self, name):
        return self.xdp.get(name)

    def xdp_detach(self, name):
        self.calls.append(("xdp-detach", name))
        self.xdp.pop(name, None)

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def cni_path(tmp_path: Path) -> str:
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("host-local", "static"):
        p = d / name
        p.write_text("#!/bin/sh\nexit 1\n")  # never run: FakeSystem.run answers instead
        p.chmod(0o755)
    return str(d)


def base_conf(**kw) -> dict:
    conf = {
        "cniVersion": "1.0.0",
        "name": "afxdp-net",
        "type": "afxdp",
        "mode": "primary",
        "deviceID": DEV,
    }
    conf.update(kw)
    return conf


IPAM = {"type": "host-local", "subnet": "198.18.0.0/24"}


def env_for(command: str, cni_path: str = "", netns: str = POD, **kw) -> dict[str, str]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "net1",
        "CNI_PATH": cni_path,
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p",
        cni.ENV_ETHTOOL: ETHTOOL,
    }
    env.update(kw)
    return env


def invoke(sysm: FakeSystem, command: str, conf: dict | bytes, tmp_path: Path, **envkw):
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    status, out = cni.run(
        env_for(command, **envkw), stdin, lambda: sysm, state_dir=str(tmp_path / "state")
    )
    if out is not None:
        json.dumps(out)  # always serialisable
    return status, out


# ---------------------------------------------------------------------------------------------
# environment


def test_cni_args_parse():
    assert cni.parse_cni_args("") == {}
    got = cni.parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=p;FOO=")
    assert got == {"IgnoreUnknown": "1", "K8S_POD_NAME": "p", "FOO": ""}
    assert cni.parse_cni_args("K8S_POD_NAMESPACE=default") == {"K8S_POD_NAMESPACE": "default"}


@pytest.mark.parametrize(
    "text,needle",
    [
        ("K8S_POD_NAME", "not KEY=VALUE"),
        ("=x", "not KEY=VALUE"),
        ("A=1=2;IgnoreUnknown=1", "not KEY=VALUE"),
        ("K8S_POD_NAME=p;", "not KEY=VALUE"),
        ("FOO=1", "unknown keys ['FOO']"),
        ("FOO=1;IgnoreUnknown=0", "unknown keys"),
        ("IgnoreUnknown=yes", "not a boolean"),
    ],
)
def test_cni_args_errors_are_code_4(text, needle):
    with pytest.raises(CniError) as ei:
        cni.parse_cni_args(text)
    assert ei.value.code == cni.ERR_INVALID_ENV
    assert needle in ei.value.msg


def test_env_requirements_per_command():
    assert cni.parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"
    full = env_for("ADD")
    e = cni.parse_env(full)
    assert (e.container_id, e.netns, e.ifname) == ("c0ffee", POD, "net1")
    assert e.args["K8S_POD_NAME"] == "p"
    # DEL: CNI_NETNS is optional
    assert cni.parse_env({**env_for("DEL"), "CNI_NETNS": ""}).netns == ""
    for cmd in ("ADD", "CHECK"):
        with pytest.raises(CniError) as ei:
            cni.parse_env({**env_for(cmd), "CNI_NETNS": ""})
        assert ei.value.code == 4 and "CNI_NETNS" in ei.value.msg
    for var in ("CNI_CONTAINERID", "CNI_IFNAME"):
        with pytest.raises(CniError) as ei:
            cni.parse_env({k: v for k, v in env_for("DEL").items() if k != var})
        assert ei.value.code == 4 and var in ei.value.msg


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"CNI_COMMAND": ""}, "CNI_COMMAND missing"),
        ({"CNI_COMMAND": "GC"}, "CNI_COMMAND 'GC'"),
        ({"CNI_COMMAND": "add"}, "CNI_COMMAND 'add'"),
        ({"CNI_CONTAINERID": "-leading-dash"}, "CNI_CONTAINERID"),
        ({"CNI_CONTAINERID": "a b"}, "CNI_CONTAINERID"),
        ({"CNI_IFNAME": "much-too-long-ifname"}, "CNI_IFNAME"),
        ({"CNI_IFNAME": "a/b"}, "CNI_IFNAME"),
        ({"CNI_NETNS": "relative/ns"}, "CNI_NETNS"),
    ],
)
def test_env_errors_name_the_variable(changes, needle):
    with pytest.raises(CniError) as ei:
        cni.parse_env({**env_for("ADD"), **changes})
    assert ei.value.code == cni.ERR_INVALID_ENV
    assert needle in ei.value.msg


# ---------------------------------------------------------------------------------------------
# network config


def test_config_full_example():
    conf = cni.parse_config(
        json.dumps(
            base_conf(
                cniVersion="0.4.0",
                logLevel="debug",
                logFile="afxdp-cni.log",
                queues="4",
                ethtoolCmds=[
                    "-X -device- equal 4 start 0",
                    "ethtool -N -device- flow-type udp4 dst-ip -ip- action 3",
                ],
                dpSyncer=True,
                skipUnloadBpf=True,
                ipam=IPAM,
                someOtherKey={"multus": "adds these"},
            )
        ).encode(),
        log_dir="/var/log/afxdp-k8s-plugins",
    )
    assert conf.cni_version == "0.4.0"
    assert conf.device == DEV and conf.mode == "primary"
    assert conf.log_file == "/var/log/afxdp-k8s-plugins/afxdp-cni.log"
    assert conf.queues == "4" and conf.dp_syncer and conf.skip_unload_bpf
    assert conf.ipam_type == "host-local"
    assert [c.tokens[0] for c in conf.ethtool_cmds] == ["-X", "-N"]
    assert conf.ethtool_cmds[1].render(DEV, "198.18.0.10") == [
        "-N",
        DEV,
        "flow-type",
        "udp4",
        "dst-ip",
        "198.18.0.10",
        "action",
        "3",
    ]


def test_config_device_from_runtime_config_and_defaults():
    conf = cni.parse_config(
        {k: v for k, v in base_conf(runtimeConfig={"deviceID": "eth7"}).items() if k != "deviceID"}
    )
    assert conf.device == "eth7"
    assert conf.ipam is None and conf.ethtool_cmds == () and not conf.skip_unload_bpf
    assert cni.parse_config(base_conf(ipam={})).ipam is None  # upstream: empty type = no IPAM
    assert cni.parse_config(base_conf(queues=8)).queues == "8"
    assert cni.parse_config(base_conf(queues="0-3")).queues == "0-3"


def _code(conf) -> CniError:
    with pytest.raises(CniError) as ei:
        cni.parse_config(conf, log_dir="/var/log/afxdp-k8s-plugins")
    return ei.value


@pytest.mark.parametrize(
    "conf,code,needle",
    [
        (b"\xff\xfe", 6, "not UTF-8"),
        (b"{", 6, "not JSON"),
        (b"[1, 2]", 6, "not an object"),
        (b'"x"', 6, "not an object"),
        ({"type": "afxdp", "mode": "primary", "deviceID": DEV}, 7, "cniVersion is missing"),
        (base_conf(cniVersion=1.0), 7, "cniVersion must be a string"),
        (base_conf(cniVersion="0.2.0"), 1, "not supported"),
        (base_conf(cniVersion="1.1.0"), 1, "not supported"),
        (base_conf(type=None), 7, "type"),
        ({**base_conf(), "mode": None}, 7, "mode is missing"),
        (base_conf(mode="cndp"), 7, "mode"),
        (base_conf(mode="cdq"), 2, "mode=cdq"),
        ({**base_conf(), "deviceID": None}, 7, "deviceID is missing"),
        (base_conf(deviceID="a/b"), 7, "not a valid netdev"),
        (base_conf(deviceID="sixteen-chars-xx"), 7, "not a valid netdev"),
        (base_conf(deviceID=5), 7, "not a valid netdev"),
        (base_conf(logFile="/etc/passwd"), 7, "outside"),
        (base_conf(logFile="../../etc/x.log"), 7, "plain"),
        (base_conf(logFile="/var/log/afxdp-k8s-plugins/../x.log"), 7, "outside"),
        (base_conf(logFile="cni.conf"), 7, "plain"),
        (base_conf(logFile=3), 7, "logFile must be a string"),
        (base_conf(logLevel="trace"), 7, "logLevel"),
        (base_conf(queues="all"), 7, "queues"),
        (base_conf(queues=True), 7, "queues"),
        (base_conf(ethtoolCmds="-N -device-"), 7, "list of strings"),
        (base_conf(ethtoolCmds=[3]), 7, "must be a string"),
        (base_conf(ethtoolCmds=["-N"]), 7, "too short"),
        (base_conf(ethtoolCmds=["-f -device- firmware.bin"]), 7, "not allowed"),
        (base_conf(ethtoolCmds=["--reset -device- all"]), 7, "not allowed"),
        (base_conf(ethtoolCmds=["-N eth0 delete 1"]), 7, "not on the pod's netdev"),
        (base_conf(ethtoolCmds=["-N -device- action 1;reboot"]), 7, "disallowed word"),
        (base_conf(ethtoolCmds=["-N -device- dst-ip -ip- action 1"]), 7, "no ipam"),
        (base_conf(skipUnloadBpf="true"), 7, "skipUnloadBpf"),
        (base_conf(dpSyncer=1), 7, "dpSyncer"),
        (base_conf(ipam={"type": "../../bin/sh"}), 7, "ipam.type"),
        (base_conf(ipam="host-local"), 7, "ipam must be an object"),
        (base_conf(prevResult=[]), 7, "prevResult must be an object"),
        (base_conf(prevResult={"ips": [{"address": "nope"}]}), 7, "CIDR"),
        (base_conf(prevResult={"interfaces": "x"}), 7, "list of objects"),
        (base_conf(prevResult={"routes": [{"dst": "x"}]}), 7, "routes[0]"),
    ],
)
def test_config_errors_have_the_right_code(conf, code, needle):
    err = _code(conf if isinstance(conf, bytes) else json.dumps(conf).encode())
    assert err.code == code, err.msg
    assert needle in err.msg


def test_log_file_inside_the_log_dir_is_accepted():
    conf = cni.parse_config(
        base_conf(logFile="/var/log/afxdp-k8s-plugins/cndp-cni.log"),
        log_dir="/var/log/afxdp-k8s-plugins/",
    )
    assert conf.log_file == "/var/log/afxdp-k8s-plugins/cndp-cni.log"


# ---------------------------------------------------------------------------------------------
# results


def test_results_per_version():
    ips = [{"address": "198.18.0.10/24", "gateway": "198.18.0.1", "interface": 0}]
    r1 = cni.build_result("1.0.0", [{"name": DEV}], ips)
    assert "version" not in r1["ips"][0] and r1["cniVersion"] == "1.0.0"
    r04 = cni.build_result("0.4.0", [{"name": DEV}], [*ips, {"address": "fd00:198:18::a/64"}])
    assert [i["version"] for i in r04["ips"]] == ["4", "6"]
    assert "routes" not in r1 and "dns" not in r1


def test_version_command_echoes_the_input_version():
    for stdin, want in [
        (b'{"cniVersion":"0.4.0"}', "0.4.0"),
        (b"", "1.0.0"),
        (b"garbage", "1.0.0"),
    ]:
        status, out = cni.run({"CNI_COMMAND": "VERSION"}, stdin)
        assert status == 0
        assert out == {
            "cniVersion": want,
            "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"],
        }


def test_ethtool_output_parsers():
    assert cni.parse_ntuple("rx-vlan-filter: on\nntuple-filters: off [fixed]\n") == (False, True)
    assert cni.parse_ntuple("ntuple-filters: on\n") == (True, False)
    assert cni.parse_ntuple("nothing here") is None
    text = (
        "Channel parameters for cnx:\nPre-set maximums:\nRX:\t\t2\nTX:\t\t2\nOther:\t\tn/a\n"
        "Combined:\tn/a\nCurrent hardware settings:\nRX:\t\t1\nTX:\t\t2\nOther:\t\tn/a\n"
        "Combined:\tn/a\n"
    )
    assert cni.parse_channels(text) == {"rx": 1, "tx": 2}


# ---------------------------------------------------------------------------------------------
# ADD / DEL / CHECK against the recording system

FILTERS = ["-N -device- flow-type udp4 dst-ip -ip- action 3", "-X -device- equal 1 start 3"]


def test_add_moves_configures_and_records(tmp_path, cni_path):
    sysm = FakeSystem()
    conf = base_conf(ipam=IPAM, ethtoolCmds=FILTERS)
    status, out = invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)
    assert status == 0, out
    # IPAM got our exact stdin, with CNI_COMMAND=ADD
    ipam_calls = [c for c in sysm.calls if c[0] == "ipam"]
    assert ipam_calls == [("ipam", "host-local", "ADD", json.dumps(conf).encode())]
    # placeholders: -device- -> the netdev, -ip- -> the first IPAM address without its prefix
    eth = [c[1:] for c in sysm.calls if c[0] == "ethtool"]
    assert eth == [
        ("-k", DEV),
        ("-K", DEV, "ntuple", "on"),
        ("-N", DEV, "flow-type", "udp4", "dst-ip", "198.18.0.10", "action", "3"),
        ("-X", DEV, "equal", "1", "start", "3"),
    ]
    # filters go on before the move, the address after it
    order = sysm.kinds()
    assert order.index("ethtool") < order.index("move") < order.index("up") < order.index("addr")
    assert DEV not in sysm.links[None] and sysm.links[POD][DEV].up
    assert sysm.addresses(POD, DEV) == ["198.18.0.10/24"]
    # a route without gw takes the gateway of its family's address
    assert sysm.routes == [(POD, DEV, "198.18.2.0/24", "198.18.0.1")]
    assert out == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": DEV, "mac": MAC, "sandbox": POD}],
        "ips": [{"address": "198.18.0.10/24", "gateway": "198.18.0.1", "interface": 0}],
        "routes": [{"dst": "198.18.2.0/24"}],
    }
    state = json.loads((tmp_path / "state" / "c0ffee-net1.json").read_text())
    assert state["rule_ids"] == [1023] and state["ntuple_enabled"] and state["rss_changed"]
    assert state["host_up"] is True


def test_add_chained_passes_prev_result_through(tmp_path, cni_path):
    prev = {
        "cniVersion": "0.4.0",
        "interfaces": [
            {"name": "cni0", "mac": "02:00:00:00:00:01"},
            {"name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": POD},
        ],
        "ips": [
            {"version": "4", "address": "198.18.1.2/24", "gateway": "198.18.1.1", "interface": 1}
        ],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["198.18.1.1"]},
    }
    sysm = FakeSystem()
    status, out = invoke(
        sysm, "ADD", base_conf(cniVersion="0.4.0", ipam=IPAM, prevResult=prev), tmp_path,
        cni_path=cni_path,
    )  # fmt: skip
    assert status == 0, out
    assert out["interfaces"] == [*prev["interfaces"], {"name": DEV, "mac": MAC, "sandbox": POD}]
    assert out["ips"] == [
        prev["ips"][0],
        {"address": "198.18.0.10/24", "gateway": "198.18.0.1", "interface": 2, "version": "4"},
    ]
    assert out["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "198.18.2.0/24"}]
    assert out["dns"] == prev["dns"]
    # without IPAM the result is prevResult plus our interface, nothing else changed
    sysm2 = FakeSystem()
    status, out2 = invoke(
        sysm2, "ADD", base_conf(cniVersion="0.4.0", prevResult=prev), tmp_path, cni_path=cni_path
    )
    assert status == 0
    assert {k: v for k, v in out2.items() if k != "interfaces"} == {
        k: v for k, v in prev.items() if k != "interfaces"
    }


def test_del_undoes_everything_and_is_idempotent(tmp_path, cni_path):
    sysm = FakeSystem()
    conf = base_conf(ipam=IPAM, ethtoolCmds=FILTERS)
    assert invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)[0] == 0
    sysm.calls.clear()
    status, out = invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path)
    assert (status, out) == (0, None)
    assert DEV in sysm.links[None] and sysm.links[None][DEV].up  # back, and up as it was
    assert [c[1:] for c in sysm.calls if c[0] == "ethtool"] == [
        ("-N", DEV, "delete", "1023"),
        ("-X", DEV, "default"),
        ("-K", DEV, "ntuple", "off"),
    ]
    assert ("xdp-detach", DEV) in sysm.calls and DEV not in sysm.xdp
    assert [c[2] for c in sysm.calls if c[0] == "ipam"] == ["DEL"]
    assert not (tmp_path / "state" / "c0ffee-net1.json").exists()
    # again: nothing to move, no state; filters are cleared the upstream way, IPAM released
    sysm.calls.clear()
    assert invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path) == (0, None)
    assert "move" not in sysm.kinds() and [c[2] for c in sysm.calls if c[0] == "ipam"] == ["DEL"]
    # with an empty CNI_NETNS (containerd's second DEL)
    assert invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path, CNI_NETNS="") == (0, None)


def test_del_after_the_netdev_is_gone(tmp_path, cni_path):
    """A veth dies with the pod's namespace: DEL still releases the lease and the state."""
    sysm = FakeSystem()
    conf = base_conf(ipam=IPAM)
    assert invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)[0] == 0
    del sysm.links[POD]
    sysm.calls.clear()
    assert invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path) == (0, None)
    assert [c[2] for c in sysm.calls if c[0] == "ipam"] == ["DEL"]
    assert "xdp-detach" not in sysm.kinds()
    assert not list((tmp_path / "state").iterdir())


def test_del_keeps_xdp_with_skip_unload_bpf(tmp_path, cni_path):
    sysm = FakeSystem()
    conf = base_conf(skipUnloadBpf=True)
    assert invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)[0] == 0
    assert invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path) == (0, None)
    assert sysm.xdp == {DEV: 42} and "xdp-detach" not in sysm.kinds()


def test_del_restores_a_host_link_that_was_down(tmp_path, cni_path):
    sysm = FakeSystem()
    sysm.links[None][DEV] = replace(sysm.links[None][DEV], up=False)
    conf = base_conf()
    assert invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)[0] == 0
    assert sysm.links[POD][DEV].up  # up in the pod whatever it was
    assert invoke(sysm, "DEL", conf, tmp_path, cni_path=cni_path) == (0, None)
    assert not sysm.links[None][DEV].up


def test_add_failure_rolls_back(tmp_path, cni_path):
    sysm = FakeSystem()
    sysm.fail_on = ("-X",)
    status, out = invoke(
        sysm, "ADD", base_conf(ipam=IPAM, ethtoolCmds=FILTERS), tmp_path, cni_path=cni_path
    )
    assert status == 1
    assert out["code"] == cni.ERR_ETHTOOL
    assert f"ethtool -X {DEV} equal 1 start 3 failed" in out["msg"]
    assert "Cannot insert classification rule" in out["msg"]
    # undone in reverse: rule deleted, ntuple back off, lease released; never moved
    eth = [c[1:] for c in sysm.calls if c[0] == "ethtool"]
    assert eth[-2:] == [("-N", DEV, "delete", "1023"), ("-K", DEV, "ntuple", "off")]
    assert [c[2] for c in sysm.calls if c[0] == "ipam"] == ["ADD", "DEL"]
    assert "move" not in sysm.kinds() and DEV in sysm.links[None]
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").iterdir())


def test_add_failure_after_the_move_returns_the_netdev(tmp_path, cni_path):
    sysm = FakeSystem()

    def broken(*a):
        raise CniError(cni.ERR_NETLINK, "adding 198.18.0.10/24 to netdev ens1f0: File exists")

    sysm.add_address = broken
    status, out = invoke(sysm, "ADD", base_conf(ipam=IPAM), tmp_path, cni_path=cni_path)
    assert (status, out["code"]) == (1, cni.ERR_NETLINK)
    assert [c[0] for c in sysm.calls if c[0] in ("move", "up")] == ["move", "up", "move", "up"]
    assert DEV in sysm.links[None] and sysm.links[None][DEV].up and not sysm.links[POD]
    assert [c[2] for c in sysm.calls if c[0] == "ipam"] == ["ADD", "DEL"]


def test_ntuple_fixed_off_runs_the_command_and_explains(tmp_path, cni_path):
    sysm = FakeSystem()
    sysm.ethtool_replies["-k"] = Completed(0, b"ntuple-filters: off [fixed]\n", b"")
    sysm.fail_on = ("-N",)
    status, out = invoke(
        sysm, "ADD", base_conf(ipam=IPAM, ethtoolCmds=FILTERS[:1]), tmp_path, cni_path=cni_path
    )
    assert status == 1 and out["code"] == cni.ERR_ETHTOOL
    assert "dst-ip 198.18.0.10" in out["msg"]
    assert "ntuple-filters: off [fixed]" in out["details"]
    assert ("ethtool", "-K", DEV, "ntuple", "on") not in sysm.calls


def test_ipam_error_is_passed_on_and_released(tmp_path, cni_path):
    sysm = FakeSystem()
    sysm.ipam_reply = Completed(
        1, b'{"cniVersion":"1.0.0","code":7,"msg":"invalid range","details":"x"}', b""
    )
    status, out = invoke(sysm, "ADD", base_conf(ipam=IPAM), tmp_path, cni_path=cni_path)
    assert status == 1 and out["code"] == 7 and "invalid range" in out["msg"]
    assert [c[2] for c in sysm.calls if c[0] == "ipam"] == ["ADD", "DEL"]
    assert "move" not in sysm.kinds()
    # garbage from the IPAM plugin: our IPAM code, with its output
    for reply in (Completed(0, b"not json", b""), Completed(1, b"[1]", b""),
                  Completed(1, b'{"code": 0, "msg": "ok?"}', b"")):  # fmt: skip
        sysm = FakeSystem()
        sysm.ipam_reply = reply
        status, out = invoke(sysm, "ADD", base_conf(ipam=IPAM), tmp_path, cni_path=cni_path)
        assert (status, out["code"]) == (1, cni.ERR_IPAM), out
    # a missing IPAM plugin / no CNI_PATH
    status, out = invoke(FakeSystem(), "ADD", base_conf(ipam={"type": "dhcp"}), tmp_path,
                         cni_path=cni_path)  # fmt: skip
    assert out["code"] == cni.ERR_IPAM and "'dhcp' not found" in out["msg"]
    status, out = invoke(FakeSystem(), "ADD", base_conf(ipam=IPAM), tmp_path, cni_path="")
    assert out["code"] == cni.ERR_INVALID_ENV and "CNI_PATH" in out["msg"]


def test_add_refusals(tmp_path, cni_path):
    sysm = FakeSystem()
    status, out = invoke(sysm, "ADD", base_conf(deviceID="nosuch0"), tmp_path, cni_path=cni_path)
    assert status == 1 and out["code"] == cni.ERR_NETDEV and "nosuch0" in out["msg"]
    status, out = invoke(sysm, "ADD", base_conf(), tmp_path, CNI_NETNS="/var/run/netns/gone")
    assert status == 1 and out["code"] == cni.ERR_UNKNOWN_CONTAINER
    sysm.links[POD][DEV] = LinkInfo(3, DEV, MAC, True)  # a same-named link in the pod
    _, out = invoke(sysm, "ADD", base_conf(), tmp_path, cni_path=cni_path)
    assert out["code"] == cni.ERR_NETDEV and "already has" in out["msg"]
    assert "move" not in sysm.kinds()


def test_check(tmp_path, cni_path):
    sysm = FakeSystem()
    conf = base_conf(ipam=IPAM)
    _, res = invoke(sysm, "ADD", conf, tmp_path, cni_path=cni_path)
    checked = dict(conf, prevResult=res)
    assert invoke(sysm, "CHECK", checked, tmp_path, cni_path=cni_path) == (0, None)
    assert [c[2] for c in sysm.calls if c[0] == "ipam"][-1] == "CHECK"

    def code(c, **kw):
        return invoke(sysm, "CHECK", c, tmp_path, cni_path=cni_path, **kw)[1]["code"]

    assert code(conf) == cni.ERR_INVALID_CONFIG  # no prevResult
    assert code(dict(checked, cniVersion="0.3.1")) == cni.ERR_INCOMPATIBLE_VERSION
    assert code(checked, CNI_NETNS="/var/run/netns/gone") == cni.ERR_UNKNOWN_CONTAINER
    other = copy.deepcopy(res)
    other["interfaces"][0]["name"] = "other0"
    assert code(dict(conf, prevResult=other)) == cni.ERR_CHECK
    sysm.addrs[(POD, DEV)] = []
    assert code(checked) == cni.ERR_CHECK
    sysm.addrs[(POD, DEV)] = ["198.18.0.10/24"]
    sysm.set_link_up(POD, DEV, False)
    assert code(checked) == cni.ERR_CHECK
    sysm.links[POD].pop(DEV)
    assert code(checked) == cni.ERR_CHECK


def test_dev_state_file_unwritable_is_io_error(tmp_path, cni_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    sysm = FakeSystem()
    status, out = cni.run(
        env_for("ADD", cni_path=cni_path),
        json.dumps(base_conf()).encode(),
        lambda: sysm,
        state_dir=str(blocker / "sub"),
    )
    assert status == 1 and out["code"] == cni.ERR_IO
    assert DEV in sysm.links[None]


def test_internal_errors_are_json_too(tmp_path, cni_path):
    sysm = FakeSystem()

    def boom(*a):
        raise ZeroDivisionError("simulated bug")

    sysm.find_link = boom
    status, out = invoke(sysm, "ADD", base_conf(), tmp_path, cni_path=cni_path)
    assert status == 1 and out["code"] == cni.ERR_INTERNAL and "ZeroDivisionError" in out["msg"]


# ---------------------------------------------------------------------------------------------
# fuzzing: random stdin and CNI_ARGS


KNOWN_KEYS = [
    "cniVersion",
    "name",
    "type",
    "mode",
    "deviceID",
    "logFile",
    "logLevel",
    "queues",
    "ethtoolCmds",
    "dpSyncer",
    "skipUnloadBpf",
    "ipam",
    "prevResult",
    "dns",
    "runtimeConfig",
]
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["1.0.0", "0.4.0", "0.3.1", "primary", "cdq", DEV, "host-local", "-device-"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from([*KNOWN_KEYS, "address", "ips", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)
configs = st.dictionaries(st.sampled_from([*KNOWN_KEYS, "junk"]), json_value, max_size=10)
ALLOWED_CODES = {1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 104, 105}

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_cni_answer(status, out, command):
    if status == 0:
        if command == "ADD":
            assert set(out) >= {"cniVersion", "interfaces"}
        else:
            assert out is None
        return
    assert status == 1
    assert set(out) == {"cniVersion", "code", "msg", "details"}
    assert out["code"] in ALLOWED_CODES, out
    assert out["cniVersion"] in cni.SUPPORTED_VERSIONS
    assert isinstance(out["msg"], str) and out["msg"]


@FUZZ
@given(raw=st.binary(max_size=200), command=st.sampled_from(["ADD", "DEL", "CHECK"]))
def test_fuzz_raw_stdin(tmp_path_factory, raw, command):
    status, out = cni.run(
        env_for(command), raw, FakeSystem, state_dir=str(tmp_path_factory.mktemp("s"))
    )
    _assert_cni_answer(status, out, command)
    assert status == 1  # random bytes are never a complete valid config


@FUZZ
@given(conf=configs, command=st.sampled_from(["ADD", "DEL", "CHECK"]))
def test_fuzz_config_objects(tmp_path_factory, conf, command):
    tmp = tmp_path_factory.mktemp("s")
    status, out = cni.run(
        env_for(command, cni_path=str(tmp)),
        json.dumps(conf).encode(),
        FakeSystem,
        state_dir=str(tmp / "state"),
    )
    _assert_cni_answer(status, out, command)


_VALID = base_conf(ipam=IPAM, ethtoolCmds=FILTERS)


@FUZZ
@given(
    key=st.sampled_from(
        ["cniVersion", "mode", "deviceID", "logLevel", "queues", "ethtoolCmds", "skipUnloadBpf"]
    ),
    value=json_value,
)
def test_fuzz_one_bad_field_gets_its_code(tmp_path_factory, key, value):
    """Replace one field of a valid config: valid values pass parsing, anything else is code
    1 (a cniVersion string we do not speak), 2 (mode cdq) or 7 (everything else)."""
    conf = dict(_VALID, **{key: value})
    try:
        cni.parse_config(json.dumps(conf).encode(), log_dir="/tmp")
    except CniError as e:
        if key == "cniVersion" and isinstance(value, str):
            assert e.code == cni.ERR_INCOMPATIBLE_VERSION
        elif key == "mode" and value == "cdq":
            assert e.code == cni.ERR_UNSUPPORTED_FIELD
        else:
            assert e.code == cni.ERR_INVALID_CONFIG, (key, value, e.msg)


@FUZZ
@given(args=st.text(alphabet=st.sampled_from("AB=;_1IgnoreUnknowK8S_POD_NAME"), max_size=40))
def test_fuzz_cni_args(tmp_path_factory, cni_path_session, args):
    status, out = cni.run(
        env_for("ADD", cni_path=cni_path_session, CNI_ARGS=args),
        json.dumps(base_conf()).encode(),
        FakeSystem,
        state_dir=str(tmp_path_factory.mktemp("s")),
    )
    try:
        cni.parse_cni_args(args)
    except CniError as e:
        assert e.code == cni.ERR_INVALID_ENV
        assert status == 1 and out["code"] == cni.ERR_INVALID_ENV
    else:
        assert status == 0, out


@pytest.fixture(scope="module")
def cni_path_session(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("bin"))


# ---------------------------------------------------------------------------------------------
# the executable


def _exe(env: dict, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cndp.k8s.cni"],
        input=stdin,
        capture_output=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=60,
    )


def test_executable_prints_error_json_not_a_traceback():
    p = _exe({"CNI_COMMAND": "ADD"}, b"{}")
    assert p.returncode == 1
    err = json.loads(p.stdout)
    assert err["code"] == cni.ERR_INVALID_ENV and "CNI_CONTAINERID" in err["msg"]
    assert b"Traceback" not in p.stderr
    p = _exe(env_for("ADD"), b'{"cniVersion": "0.4.0", "type": "afxdp"')
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == cni.ERR_DECODE
    p = _exe({"CNI_COMMAND": "VERSION"}, b'{"cniVersion":"0.4.0"}')
    assert p.returncode == 0 and json.loads(p.stdout)["cniVersion"] == "0.4.0"


# ---------------------------------------------------------------------------------------------
# the installer (cndp.k8s.cni_install)


def test_installer_writes_shim_and_pid_file(tmp_path):
    from cndp.k8s import cni_install

    pid_file = tmp_path / "run dir" / "afxdp-cni.pid"
    path = cni_install.install(
        str(tmp_path / "bin"), python="/usr/local/bin/python3", pid_file=str(pid_file)
    )
    assert path == str(tmp_path / "bin" / "afxdp")
    assert os.stat(path).st_mode & 0o777 == 0o755
    text = Path(path).read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"PIDFILE='{pid_file}'" in text  # quoted: the path has a space
    assert 'nsenter --target "$pid" --mount -- /usr/local/bin/python3 -m cndp.k8s.cni' in text
    pid, start = pid_file.read_text().split()
    assert int(pid) == os.getpid() and int(start) == cni_install.proc_starttime(os.getpid())
    assert subprocess.run(["sh", "-n", path]).returncode == 0
    # --direct: no shim, no pid file
    d = cni_install.install(str(tmp_path / "d"), python="/opt/venv/bin/python", direct=True)
    assert Path(d).read_text().endswith('exec /opt/venv/bin/python -m cndp.k8s.cni "$@"\n')
    with pytest.raises(cni_install.InstallError, match="no process"):
        cni_install.install(str(tmp_path / "x"), pid_file=str(pid_file), pid=2**22 + 1)


def test_shim_answers_try_again_without_its_container(tmp_path):
    """No pid file, a malformed one, or a reused pid: code 11 JSON, nothing is entered."""
    from cndp.k8s import cni_install

    pid_file = tmp_path / "pid"
    shim = cni_install.install(str(tmp_path), python="/nonexistent/python", pid_file=str(pid_file))
    for content in (None, "", "12 x\n", f"{os.getpid()} 1\n"):
        if content is None:
            pid_file.unlink(missing_ok=True)
        else:
            pid_file.write_text(content)
        p = subprocess.run([shim], input=b"{}", capture_output=True, env={"CNI_COMMAND": "ADD"})
        assert p.returncode == 1
        err = json.loads(p.stdout)
        assert err["code"] == cni.ERR_TRY_AGAIN and "afxdp CNI" in err["msg"], err
