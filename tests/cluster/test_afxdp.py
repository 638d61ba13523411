"""The AF_XDP device plugin and CNI plugin on the real node.

Setup (module): two veth pairs; the ``d`` ends are the pool's netdevs in the host namespace,
the ``g`` ends sit in a generator namespace. ``cndp-deviceplugin`` (``python -m
cndp.k8s.deviceplugin``) runs on the host with the node's kubelet paths given by flag, pool
``cndptest`` over both ``d`` ends. The NAD ``afxdp-net`` names the pool as its resource, so
the nad-delegate stand-in for Multus calls the ``afxdp`` CNI plugin with the allocated netdev
as ``deviceID`` when containerd sets the pod's sandbox up (ADD) and tears it down (DEL).

Then, in order: the pool registers and shows as allocatable; a pod asking for more devices
than the pool has stays Pending; a pod gets its device (env, handshake socket mount, the
netdev moved into its namespace with an address), and deleting it runs CNI DEL and leaves
nothing (netdev back, program gone, socket gone); an unprivileged cndpfwd pod (NET_RAW and
IPC_LOCK only) gets its XSKMAP over the handshake and forwards the generator's traffic; a
kubelet restart makes the plugin register again, and pods still get devices afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pnetns

from cndp.k8s.podresources import PodResourcesClient
from cndp.net.frames import udp4_frame
from cndp.testing import netns as testnet
from e2e.xsk_helpers import RawPeer, is_udp_to, seq_of

from .k8s import VENV, Cluster, env_of, pod, wait_for

POOL = "cndptest"
RES = f"afxdp/{POOL}"
ENV = f"AFXDP_DEVICES_{POOL.upper()}"
NAD = "afxdp-net"
NAD_SUBNET = "198.18.250.0/24"
CAP_NET_RAW, CAP_IPC_LOCK = 13, 14
N_DEV = 2


@dataclass
class Devices:
    """The pool's veth pairs: ``d<i>`` in the host namespace, ``g<i>`` in ``<prefix>-gen``."""

    prefix: str
    gen_ns: str
    names: list[str] = field(default_factory=list)
    macs: dict[str, str] = field(default_factory=dict)

    def peer(self, dev: str) -> str:
        return self.prefix + "g" + dev[len(self.prefix) + 1 :]

    def close(self) -> list[str]:
        # deleting the generator namespace destroys the g ends and with them the d ends,
        # wherever they are; cleanup_prefix also catches a d end left in the host namespace
        return testnet.cleanup_prefix(self.prefix)


def make_devices(n: int) -> Devices:
    prefix = testnet.run_prefix() + "k"
    devs = Devices(prefix, f"{prefix}-gen")
    pnetns.create(devs.gen_ns)
    try:
        with IPRoute() as ipr:
            for i in range(n):
                d, g = f"{prefix}d{i}", f"{prefix}g{i}"
                dmac, gmac = f"02:00:c6:12:10:{i:02x}", f"02:00:c6:12:20:{i:02x}"
                ipr.link(
                    "add",
                    ifname=d,
                    kind="veth",
                    address=dmac,
                    peer={"ifname": g, "address": gmac, "net_ns_fd": devs.gen_ns},
                )
                ipr.link("set", index=ipr.link_lookup(ifname=d)[0], state="up")
                devs.names.append(d)
                devs.macs[d], devs.macs[g] = dmac, gmac
        with IPRoute(netns=devs.gen_ns, flags=0) as ipr:
            for name in ["lo", *(devs.peer(d) for d in devs.names)]:
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
    except BaseException:
        devs.close()
        raise
    return devs


def host_link(name: str) -> dict | None:
    """`ip -d -j link show` of a host-namespace link, or None."""
    r = subprocess.run(
        ["ip", "-d", "-j", "link", "show", "dev", name], capture_output=True, text=True, check=False
    )
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def ns_run(pid: int, cmd: list[str]) -> subprocess.CompletedProcess:
    """Run cmd in the network namespace of host process pid (a container's)."""
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@dataclass
class Afxdp:
    cluster: Cluster
    devs: Devices
    dp: subprocess.Popen
    dp_log: Path
    uds_base: Path


@pytest.fixture(scope="module")
def afxdp(cluster: Cluster) -> Iterator[Afxdp]:
    devs = make_devices(N_DEV)
    st = cluster.state
    cfg = st / "dp-config.json"
    cfg.write_text(
        json.dumps(
            {
                "logLevel": "debug",
                "kindCluster": True,  # veth netdevs may join a pool
                "pools": [
                    {
                        "name": POOL,
                        "mode": "primary",
                        "uid": 0,
                        "devices": [{"name": d} for d in devs.names],
                    }
                ],
            }
        )
    )
    uds_base = st / "afxdp_dp"
    dp_log = st / "logs" / "deviceplugin.log"
    # The plugin runs as a host process (as a DaemonSet pod with hostPath mounts would see
    # the node), pointed at the node's kubelet dir by flag.
    with open(dp_log, "ab") as out:
        dp = subprocess.Popen(
            [
                f"{VENV}/bin/python",
                "-m",
                "cndp.k8s.deviceplugin",
                "--config",
                str(cfg),
                "--kubelet-dir",
                str(cluster.kubelet_dir),
                "--uds-base-dir",
                str(uds_base),
                "--pin-base-dir",
                str(st / "afxdp_pins"),
                "--node-name",
                "localhost",
                "--reap-interval",
                "2",
                "--reap-grace",
                "60",
                "--log-level",
                "debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ctx = Afxdp(cluster, devs, dp, dp_log, uds_base)
    try:
        nad = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": NAD, "annotations": {"k8s.v1.cni.cncf.io/resourceName": RES}},
            "spec": {
                "config": json.dumps(
                    {
                        "cniVersion": "0.4.0",
                        "type": "afxdp",
                        "mode": "primary",
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": NAD_SUBNET}]],
                            "dataDir": str(st / "cni" / "ipam-afxdp"),
                        },
                    }
                )
            },
        }
        cluster.apply(
            json.loads((Path(__file__).parents[2] / "scripts/k8s/nad-crd.json").read_text())
        )
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/network-attachment-definitions.k8s.cni.cncf.io",
        )
        cluster.apply(nad)
        yield ctx
    finally:
        problems = []
        with contextlib.suppress(Exception):
            cluster.kubectl(
                "delete",
                "pods",
                "--all",
                "--grace-period=1",
                "--wait=true",
                "--timeout=90s",
                timeout=100,
            )
        if dp.poll() is None:
            dp.send_signal(signal.SIGTERM)
            try:
                rc = dp.wait(30)
                if rc != 0:
                    problems.append(f"the device plugin exited {rc} on SIGTERM")
            except subprocess.TimeoutExpired:
                os.killpg(dp.pid, signal.SIGKILL)
                dp.wait(10)
                problems.append("the device plugin ignored SIGTERM for 30 s")
        for d in devs.names:
            link = host_link(d)
            if link is None:
                problems.append(f"{d} did not come back to the host namespace")
            elif "xdp" in link:
                problems.append(f"{d} still has an XDP program after the plugin stopped")
        left = [str(p) for p in uds_base.rglob("*")] if uds_base.exists() else []
        if any(p.endswith(".sock") for p in left):
            problems.append(f"handshake sockets left: {left}")
        problems += devs.close()
        if problems:
            pytest.fail("; ".join(problems) + f"\n(device plugin log: {dp_log})", pytrace=False)


def dp_log_text(a: Afxdp) -> str:
    return a.dp_log.read_text(errors="replace")


def device_pod(name: str, cmd: str, n: int = 1, **kw) -> dict:
    return pod(
        name,
        ["/bin/sh", "-c", cmd],
        python=True,
        limits={RES: str(n)},
        annotations={"k8s.v1.cni.cncf.io/networks": NAD},
        **kw,
    )


# ---------------------------------------------------------------------------------------------


def test_the_plugin_registers_and_the_node_offers_the_pool(afxdp: Afxdp):
    c = afxdp.cluster
    wait_for(
        f"{RES} allocatable",
        lambda: c.allocatable(RES) == str(N_DEV),
        60,
        on_fail=lambda: dp_log_text(afxdp)[-3000:],
    )
    assert c.node_obj()["status"]["capacity"][RES] == str(N_DEV)
    assert f'Got registration request from device plugin with resource name "{RES}"' in c.log(
        "kubelet"
    )
    socks = [p.name for p in (c.kubelet_dir / "device-plugins").iterdir() if p.is_socket()]
    assert "kubelet.sock" in socks and len(socks) >= 2, socks


def test_a_pod_asking_for_more_devices_than_the_pool_has_stays_pending(afxdp: Afxdp):
    c = afxdp.cluster
    name = "too-many"
    c.apply(device_pod(name, "sleep 3600", n=N_DEV + 1))
    try:

        def unschedulable():
            p = c.pod(name)
            cond = {x["type"]: x for x in p["status"].get("conditions", [])}
            sched = cond.get("PodScheduled", {})
            return sched.get("reason") == "Unschedulable" and sched

        cond = wait_for("Unschedulable", unschedulable, 60)
        assert f"Insufficient {RES}" in cond["message"]
        time.sleep(3)  # and it stays so
        p = c.pod(name)
        assert p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName")
        assert not (afxdp.uds_base / f"afxdp_{POOL}").exists() or not any(
            (afxdp.uds_base / f"afxdp_{POOL}").glob("*.sock")
        ), "Allocate ran for an unschedulable pod"
    finally:
        c.delete_pod(name)


def test_a_pod_gets_its_device_and_deleting_it_runs_cni_del_and_leaves_nothing(afxdp: Afxdp):
    c, devs = afxdp.cluster, afxdp.devs
    name = "afxdp-env"
    c.apply(device_pod(name, "sleep 3600"))
    try:
        c.wait_pod_ready(name, timeout=120)
        pid = c.container_pid(name)
        env = env_of(pid)
        dev = env.get(ENV, "")
        assert dev in devs.names, f"{ENV}={dev!r}"
        # the handshake socket is mounted where CNDP's xskdev looks for it
        r = subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "ls", "-l", f"/tmp/afxdp_dp/{dev}/afxdp.sock"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0 and r.stdout.startswith("s"), r.stdout + r.stderr
        # CNI ADD moved the netdev into the pod's namespace, up, with its IPAM address
        assert host_link(dev) is None, f"{dev} is still in the host namespace"
        r = ns_run(pid, ["ip", "-d", "-j", "addr", "show", "dev", dev])
        assert r.returncode == 0, r.stderr
        link = json.loads(r.stdout)[0]
        assert "UP" in link["flags"]
        addrs = [a["local"] for a in link.get("addr_info", []) if a["family"] == "inet"]
        assert addrs and addrs[0].startswith(NAD_SUBNET.rsplit(".", 1)[0] + "."), link
        assert "xdp" in link, "the plugin's XDP program is not on the pod's netdev"
        socks = list((afxdp.uds_base / f"afxdp_{POOL}").glob("*.sock"))
        assert len(socks) == 1, socks
        # the kubelet's PodResources API (what the plugin's handshake check asks) agrees
        pr = PodResourcesClient(str(c.kubelet_dir / "pod-resources" / "kubelet.sock"))()
        held = [ctr.devices for p in pr if p.name == name for ctr in p.containers]
        assert held == [{RES: (dev,)}], pr
        cid = c.pod(name)["metadata"]["uid"]
    finally:
        c.delete_pod(name)
    # CNI DEL through the stand-in: the netdev is back, without program or address
    entries = [
        json.loads(x) for x in (c.state / "logs" / "nad-delegate.log").read_text().splitlines()
    ]
    dels = [e for e in entries if e["command"] == "DEL" and e["delegates"]]
    assert dels and dels[-1]["delegates"][0]["rc"] == 0, entries[-4:]
    assert dels[-1]["delegates"][0]["deviceID"] == dev
    back = wait_for(f"{dev} back on the host", lambda: host_link(dev), 30)
    assert "xdp" not in back, f"XDP program left on {dev}"
    r = subprocess.run(
        ["ip", "-j", "addr", "show", "dev", dev], capture_output=True, text=True, check=True
    )
    assert not [a for a in json.loads(r.stdout)[0].get("addr_info", []) if a["family"] == "inet"]
    # the plugin's reaper sees the pod gone and removes the handshake socket
    wait_for(
        "handshake socket removal",
        lambda: not list((afxdp.uds_base / f"afxdp_{POOL}").glob("*.sock")),
        30,
        on_fail=lambda: dp_log_text(afxdp)[-2000:],
    )
    ipam = c.state / "cni" / "ipam-afxdp"
    leases = [f for f in ipam.rglob("*") if f.name[0].isdigit()] if ipam.exists() else []
    assert not leases, f"IPAM leases left: {leases}"
    assert cid  # the pod existed with a uid: the checks above were about it


def _exactly_caps(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapEff")


def _cndpfwd_pid(container_pid: int) -> int:
    """The cndpfwd main process: the container's pid 1 after `exec`."""
    cmd = Path(f"/proc/{container_pid}/cmdline").read_bytes().split(b"\0")
    assert any(b"cndpfwd" in x for x in cmd), cmd
    return container_pid


def test_an_unprivileged_pod_forwards_the_generators_traffic_over_af_xdp(afxdp: Afxdp):
    """deploy/pod.yaml's cndp container on our runtime: cndp-jsonc-gen -k, then cndpfwd lb;
    securityContext drops every capability but NET_RAW and IPC_LOCK. It cannot create an
    XSKMAP or load a program itself: the map comes over the handshake socket."""
    c, devs = afxdp.cluster, afxdp.devs
    name = "cndp-fwd"
    security = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "runAsUser": 0,
        "capabilities": {"drop": ["ALL"], "add": ["NET_RAW", "IPC_LOCK"]},
    }
    cmd = (
        "cndp-jsonc-gen -k -q --bufcnt 4 -o /tmp/config.jsonc"
        " && exec cndpfwd -c /tmp/config.jsonc lb"
    )
    c.apply(device_pod(name, cmd, security=security))
    try:
        c.wait_pod_ready(name, timeout=120)
        wait_for(
            "cndpfwd running",
            lambda: "cndpfwd: running" in c.logs(name),
            60,
            on_fail=lambda: c.logs(name),
        )
        pid = _cndpfwd_pid(c.container_pid(name))
        dev = env_of(pid)[ENV]
        assert _exactly_caps(pid) == (1 << CAP_NET_RAW) | (1 << CAP_IPC_LOCK)
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        assert ns_run(pid, ["ip", "link", "show", "dev", dev]).returncode == 0
        # the generator on the host side of the veth sends; cndpfwd swaps MACs and sends back
        g = devs.peer(dev)
        with testnet.in_netns(devs.gen_ns):
            peer = RawPeer(g)
        try:
            n = 300
            frames = [
                udp4_frame(
                    devs.macs[g],
                    devs.macs[dev],
                    "198.18.250.200",
                    "198.18.250.2",
                    sport=1024 + i,
                    dport=9,
                    size=64,
                    payload=i.to_bytes(4, "big") + bytes(60),
                )
                for i in range(n)
            ]
            peer.send(frames)
            back = peer.recv_until(n, timeout=15, match=is_udp_to(9))
        finally:
            peer.close()
        got = sorted(seq_of(f) for f in back)
        assert got == list(range(n)), f"{len(got)} of {n} frames came back"
        for f in back:
            assert f[0:6] == bytes.fromhex(devs.macs[g].replace(":", ""))
        # the pod's process is the one that connected to the plugin's handshake socket
        assert f"connection from pid {pid} uid 0" in dp_log_text(afxdp)
    finally:
        c.delete_pod(name)


def test_a_device_in_use_stays_healthy_and_the_pool_keeps_its_size(afxdp: Afxdp):
    """The CNI moves an allocated netdev into its pod: the plugin no longer sees it in its own
    namespace, but the device is in use, not broken. Were it reported Unhealthy, the node's
    allocatable would drop while the scheduler still counts the pod's request against it, so
    every pod holding a device would cost the pool two."""
    c = afxdp.cluster
    name = "in-use"
    c.apply(device_pod(name, "sleep 3600"))
    try:
        c.wait_pod_ready(name, timeout=120)
        dev = env_of(c.container_pid(name))[ENV]
        assert host_link(dev) is None  # it is in the pod now
        deadline = time.monotonic() + 10  # > 2 node status updates (every 4 s)
        while time.monotonic() < deadline:
            assert c.allocatable(RES) == str(N_DEV), (
                f"allocatable {RES} dropped to {c.allocatable(RES)} while {dev} is in use; "
                f"device plugin: {[x for x in dp_log_text(afxdp).splitlines() if dev in x][-3:]}"
            )
            time.sleep(1)
    finally:
        c.delete_pod(name)


def test_a_kubelet_restart_makes_the_plugin_register_again(afxdp: Afxdp):
    c = afxdp.cluster
    holder = "holder"
    c.apply(device_pod(holder, "sleep 3600"))
    c.wait_pod_ready(holder, timeout=120)
    before = len(c.log("kubelet"))
    dp_sockets = c.kubelet_dir / "device-plugins"
    old = {p.name: p.stat().st_ino for p in dp_sockets.iterdir() if p.name != "kubelet.sock"}
    try:
        c.restart_kubelet()
        wait_for(
            "re-registration",
            lambda: (
                f'Got registration request from device plugin with resource name "{RES}"'
                in c.log("kubelet")[before:]
            ),
            60,
            on_fail=lambda: dp_log_text(afxdp)[-3000:],
        )
        new = {p.name: p.stat().st_ino for p in dp_sockets.iterdir() if p.name != "kubelet.sock"}
        assert new and new != old, "the plugin's socket was not served anew"
        wait_for(
            "node Ready",
            lambda: (
                {x["type"]: x["status"] for x in c.node_obj()["status"]["conditions"]}.get("Ready")
                == "True"
            ),
            60,
        )
        assert c.pod(holder)["status"]["phase"] == "Running"
        held = env_of(c.container_pid(holder))[ENV]
        c.delete_pod(holder)
        # a new pod gets a device: its env comes from the Allocate answer of the plugin's
        # new server (the kubelet had no endpoint for the pool in between)
        after = "after-restart"
        c.apply(device_pod(after, "sleep 3600"))
        c.wait_pod_ready(after, timeout=120)
        got = env_of(c.container_pid(after))[ENV]
        assert got in afxdp.devs.names and held in afxdp.devs.names
        c.delete_pod(after)
    finally:
        c.delete_pod(holder)
