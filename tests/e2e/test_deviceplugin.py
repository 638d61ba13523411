"""The device plugin against a kubelet played by the test, over real gRPC on Unix sockets.

The test serves ``v1beta1.Registration`` on ``kubelet.sock`` in a temporary device-plugin
directory and ``v1.PodResourcesLister`` on its own socket; the plugin manages the veths of a
test namespace (``Options.netns``, kind-style: ``kindCluster``, driver ``veth``). Every
DevicePlugin method is called over the plugin's socket; health follows the links; Allocate
really loads our XDP program and serves the handshake, through which a client in the pod's
UTS namespace fetches the very XSKMAP the plugin holds; pods that go away, refused
allocations and SIGTERM leave no program, socket, pin or mount behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from cndp.bpf import progs, xdp
from cndp.k8s import deviceplugin as dp
from cndp.k8s import handshake as hs
from cndp.k8s.dp_config import parse_config
from cndp.k8s.proto import deviceplugin_v1beta1_pb2 as pb
from cndp.k8s.proto import deviceplugin_v1beta1_pb2_grpc as pbg
from cndp.k8s.proto import podresources_v1_pb2 as pr
from cndp.k8s.proto import podresources_v1_pb2_grpc as prg
from cndp.sys import bpf as sysbpf
from cndp.testing import netns as testnet

POD = "cndp-dp-pod"
UID = 4242  # the pool's "uid": the socket and pins belong to it
WAIT = 30.0  # generous: a loaded two-core machine
XDP_PASS = 2

CLIENT = r"""
import json, sys
from cndp.k8s.handshake import HandshakeClient
from cndp.sys import bpf
path, dev = sys.argv[1:3]
if path.endswith("/xsks_map"):  # xsk_pin_path
    info = bpf.map_info(bpf.obj_get(path))
    print(json.dumps({"type": info.type, "id": info.id}), flush=True)
else:  # uds_path
    with HandshakeClient(path, timeout=10) as c:
        c.connect()
        info = bpf.map_info(c.xsk_map_fd(dev))
        print(json.dumps({"type": info.type, "id": info.id, "version": c.version()}), flush=True)
"""


# ---------------------------------------------------------------------------------------------
# the kubelet's side


class FakeKubelet(pbg.RegistrationServicer):
    """Serves Registration on <dp_dir>/kubelet.sock and queues what it receives.
    ``restart()`` does what a kubelet restart does to the directory."""

    def __init__(self, dp_dir: str):
        self.dp_dir = dp_dir
        self.sock = os.path.join(dp_dir, "kubelet.sock")
        self.requests: queue.Queue[pb.RegisterRequest] = queue.Queue()
        self.server: grpc.Server | None = None

    def Register(self, request, context):
        self.requests.put(request)
        return pb.Empty()

    def start(self) -> FakeKubelet:
        os.makedirs(self.dp_dir, exist_ok=True)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pbg.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port("unix://" + self.sock)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(None).wait(5)
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)

    def restart(self, *, wipe: bool) -> None:
        self.stop()
        if wipe:  # the kubelet removes every plugin socket when it starts
            for name in os.listdir(self.dp_dir):
                os.unlink(os.path.join(self.dp_dir, name))
        self.start()

    def registrations(self, n: int, timeout: float = WAIT) -> dict[str, pb.RegisterRequest]:
        out = {}
        deadline = time.monotonic() + timeout
        while len(out) < n:
            r = self.requests.get(timeout=max(0.1, deadline - time.monotonic()))
            out[r.resource_name] = r
        return out


class FakePodResources(prg.PodResourcesListerServicer):
    """v1 PodResourcesLister.List from a dict {pod: {container: {resource: [ids]}}}."""

    def __init__(self, sock: str):
        self.sock = sock
        self.pods: dict[str, dict[str, dict[str, list[str]]]] = {}
        self.calls = 0
        self.server: grpc.Server | None = None

    def List(self, request, context):
        self.calls += 1
        resp = pr.ListPodResourcesResponse()
        for pod, containers in dict(self.pods).items():
            p = resp.pod_resources.add(name=pod, namespace="default")
            for cname, res in containers.items():
                c = p.containers.add(name=cname)
                for r, ids in res.items():
                    c.devices.add(resource_name=r, device_ids=ids)
        return resp

    def start(self) -> FakePodResources:
        os.makedirs(os.path.dirname(self.sock), exist_ok=True)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prg.add_PodResourcesListerServicer_to_server(self, self.server)
        self.server.add_insecure_port("unix://" + self.sock)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(None).wait(5)
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)


# ---------------------------------------------------------------------------------------------
# a node: a namespace with three veths, the fake kubelet, the plugin


@dataclass
class Node:
    pair: testnet.VethPair
    base: str
    kubelet: FakeKubelet
    podres: FakePodResources
    devs: dict[str, str]  # role -> netdev name in the plugin's namespace
    macs: dict[str, str]
    plugins: list[dp.DevicePlugin] = field(default_factory=list)
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def ns(self) -> str:
        return self.pair.b.ns

    def options(self, **kw) -> dp.Options:
        o = dp.Options(
            kubelet_dir=os.path.join(self.base, "kubelet"),
            pod_resources_socket=self.podres.sock,
            uds_base_dir=os.path.join(self.base, "uds"),
            pin_base_dir=os.path.join(self.base, "pins"),
            node_name="node-1",
            netns=self.ns,
            watch_interval=0.1,
            reap_interval=0.2,
            reap_grace=30.0,
        )
        for k, v in kw.items():
            setattr(o, k, v)
        return o

    def plugin(self, cfg: dict, **kw) -> dp.DevicePlugin:
        p = dp.DevicePlugin(parse_config(json.dumps(cfg)), self.options(**kw))
        self.plugins.append(p)
        return p.start()

    def stub(self, pool: str) -> pbg.DevicePluginStub:
        ch = grpc.insecure_channel(f"unix://{self.kubelet.dp_dir}/afxdp-{pool}.sock")
        self.channels.append(ch)
        return pbg.DevicePluginStub(ch)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.ns, *args], check=True, capture_output=True)

    def query(self, dev: str) -> xdp.Attached | None:
        with testnet.in_netns(self.ns):
            return xdp.query(dev)

    def leftovers(self) -> list[str]:
        found = []
        for d in ("uds", "pins"):
            for root, dirs, files in os.walk(os.path.join(self.base, d)):
                found += [os.path.join(root, x) for x in dirs + files]
        found += [mp for mp, _ in dp._mounts() if mp.startswith(self.base)]
        dp_dir = self.kubelet.dp_dir
        if os.path.isdir(dp_dir):
            found += [os.path.join(dp_dir, x) for x in os.listdir(dp_dir) if x != "kubelet.sock"]
        return found


@pytest.fixture
def node(make_pair) -> Iterator[Node]:
    pair = make_pair()
    p = pair.prefix
    devs = {"b": pair.b.ifname, "c": f"{p}c0", "e": f"{p}e0"}
    for mine, peer in (("c0", "d0"), ("e0", "f0")):
        add = ["ip", "-n", pair.b.ns, "link", "add", f"{p}{mine}", "type", "veth"]
        subprocess.run([*add, "peer", "name", f"{p}{peer}", "netns", pair.a.ns], check=True)
        subprocess.run(["ip", "-n", pair.b.ns, "link", "set", f"{p}{mine}", "up"], check=True)
        subprocess.run(["ip", "-n", pair.a.ns, "link", "set", f"{p}{peer}", "up"], check=True)
    macs = {}
    with testnet.in_netns(pair.b.ns):
        from cndp.sys import netdev as nd

        for role, name in devs.items():
            macs[role] = nd.get_mac(name).hex(":")
    base = tempfile.mkdtemp(prefix="cndpdp", dir="/tmp")  # short: sun_path is 108 bytes
    kubelet = FakeKubelet(os.path.join(base, "kubelet", "device-plugins")).start()
    podres = FakePodResources(os.path.join(base, "podres", "kubelet.sock")).start()
    n = Node(pair, base, kubelet, podres, devs, macs)
    try:
        yield n
    finally:
        for ch in n.channels:
            ch.close()
        for pl in n.plugins:
            pl.stop()
        left = n.leftovers()
        kubelet.stop()
        podres.stop()
        for mp in [mp for mp, _ in dp._mounts() if mp.startswith(base)]:
            subprocess.run(["umount", mp], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"the plugin left {left}"


def wait_for(cond: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kind_cfg(*pools: dict, **top) -> dict:
    return {"kindCluster": True, "logLevel": "debug", "pools": list(pools), **top}


def pool(name: str, **kw) -> dict:
    return {"name": name, "mode": "primary", **kw}


class Watch:
    """A ListAndWatch stream read by a thread; ``next()`` waits for the next list."""

    def __init__(self, stub: pbg.DevicePluginStub):
        self.calls = stub.ListAndWatch(pb.Empty())
        self.q: queue.Queue = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        try:
            for resp in self.calls:
                self.q.put({d.ID: d.health for d in resp.devices})
        except grpc.RpcError as e:
            self.q.put(e)

    def next(self, timeout: float = WAIT) -> dict[str, str]:
        v = self.q.get(timeout=timeout)
        if isinstance(v, Exception):
            raise v
        return v

    def until(self, want: dict[str, str], timeout: float = WAIT) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.next(max(0.1, deadline - time.monotonic()))
            if all(got.get(k) == v for k, v in want.items()):
                return got

    def close(self) -> None:
        self.calls.cancel()
        self.t.join(5)


def _host_tmp_dirs_needed() -> set[str]:
    """Top-level /tmp entries holding the interpreter, the venv or this code."""
    out = set()
    for p in (Path(sys.executable), Path(sys.prefix), Path(__file__).resolve()):
        for q in (p, p.resolve()):
            if len(q.parts) > 2 and q.parts[:2] == ("/", "tmp"):
                out.add(q.parts[2])
    return out


def pod_client(node: Node, mounts, path: str, dev: str, *, hostname: str, uid: int | None = None):
    """The pod's side, as the container runtime would start it: its own UTS namespace named
    ``hostname`` and its own mount namespace where /tmp is a tmpfs holding the Allocate
    response's ``mounts`` (bind mounts of the host paths), optionally as ``uid``. Runs the
    client on ``path`` (a container path) and returns its output (or raises with stderr)."""
    root = tempfile.mkdtemp(prefix="podroot", dir=node.base)  # mounted over only in the child
    script = ["set -e", 'hostname "$0"', f"mount -t tmpfs -o mode=0755 tmpfs {root}"]
    for m in mounts:
        assert m.container_path.startswith("/tmp/")
        inner = shlex.quote(root + m.container_path[len("/tmp") :])
        script += [f"mkdir -p $(dirname {inner})", f"touch {inner}"]
        script += [f"mount --bind {shlex.quote(m.host_path)} {inner}"]
    # The pod's /tmp hides the host's, which may hold this checkout and its venv (CI clones
    # under /tmp): keep those visible at the same paths.
    for top in _host_tmp_dirs_needed():
        keep = shlex.quote(f"{root}/{top}")
        script += [f"mkdir -p {keep}", f"mount --rbind {shlex.quote('/tmp/' + top)} {keep}"]
    script += [f"mount --rbind {root} /tmp", 'exec "$@"']
    cmd = ["unshare", "--uts", "--mount", "--", "sh", "-c", "\n".join(script), hostname]
    if uid is not None:
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    cmd += [sys.executable, "-c", CLIENT, path, dev]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        os.rmdir(root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---------------------------------------------------------------------------------------------
# tests


def test_registers_and_answers_every_method_then_cleans_up_when_the_pod_goes(node):
    b, c, e = node.devs["b"], node.devs["c"], node.devs["e"]
    # "byMac" comes first and takes e by its MAC; pool1 takes the other veths by driver.
    plugin = node.plugin(
        kind_cfg(
            pool("byMac", devices=[{"mac": node.macs["e"].upper()}], uid=UID),
            pool("pool1", drivers=[{"name": "veth"}]),
        )
    )
    regs = node.kubelet.registrations(2)
    assert set(regs) == {"afxdp/byMac", "afxdp/pool1"}
    r = regs["afxdp/pool1"]
    assert (r.version, r.endpoint) == ("v1beta1", "afxdp-pool1.sock")
    assert r.options.pre_start_required and r.options.get_preferred_allocation_available

    stub = node.stub("pool1")
    opts = stub.GetDevicePluginOptions(pb.Empty(), timeout=WAIT)
    assert opts.pre_start_required and opts.get_preferred_allocation_available
    w = Watch(stub)
    assert w.next() == {b: "Healthy", c: "Healthy"}
    w.close()
    w2 = Watch(node.stub("byMac"))
    assert w2.next() == {e: "Healthy"}
    w2.close()

    pref = stub.GetPreferredAllocation(
        pb.PreferredAllocationRequest(
            container_requests=[
                pb.ContainerPreferredAllocationRequest(
                    available_deviceIDs=[c, b], must_include_deviceIDs=[c], allocation_size=1
                ),
                pb.ContainerPreferredAllocationRequest(
                    available_deviceIDs=[c, b], allocation_size=2
                ),
            ]
        ),
        timeout=WAIT,
    )
    assert [list(x.deviceIDs) for x in pref.container_responses] == [[c], [b, c]]

    resp = stub.Allocate(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[b])]),
        timeout=WAIT,
    )
    (cr,) = resp.container_responses
    assert dict(cr.envs) == {"AFXDP_DEVICES_POOL1": b}
    (m,) = cr.mounts
    assert m.container_path == f"/tmp/afxdp_dp/{b}/afxdp.sock" and not m.read_only
    sock = m.host_path
    assert sock.startswith(os.path.join(node.base, "uds", "afxdp_pool1") + "/")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    (alloc,) = plugin.pool("pool1").allocations.values()
    (hd,) = alloc.host_devices
    att = node.query(b)
    assert att is not None and att.ours and att.prog_id == hd.prog_id
    assert node.query(c) is None  # only the allocated device got a program
    stub.PreStartContainer(pb.PreStartContainerRequest(devices_ids=[b]), timeout=WAIT)

    # The pod, as PodResources lists it, fetches the XSKMAP the plugin holds.
    node.podres.pods = {POD: {"app": {"afxdp/pool1": [b]}, "sidecar": {}}}
    got = pod_client(node, cr.mounts, m.container_path, b, hostname=POD)
    assert got["type"] == sysbpf.MAP_TYPE_XSKMAP
    assert got["id"] == sysbpf.map_info(hd.map_fd).id
    assert got["version"] == hs.HANDSHAKE_VERSION

    # Refused: a name PodResources does not know, and a process whose hostname is not the
    # pod name it claims (this test process).
    for name, why in ((f"{POD}-x", "not on this node"), (POD, "hostname")):
        with pytest.raises(hs.HandshakeError, match="host_nak"):
            hs.HandshakeClient(sock, pod=name, timeout=WAIT).connect()
        assert why in alloc.validator.reason

    # The pod goes away (once the reaper has seen it): everything of it is undone.
    wait_for(lambda: alloc.seen, "the reaper to see the pod")
    node.podres.pods = {}
    wait_for(lambda: not os.path.exists(sock) and node.query(b) is None, "the reaper")
    assert plugin.reaped == 1 and not plugin.pool("pool1").allocations


def test_the_pool_uid_owns_the_socket_and_only_that_uid_gets_the_map(node):
    e = node.devs["e"]
    plugin = node.plugin(kind_cfg(pool("byMac", devices=[{"mac": node.macs["e"]}], uid=UID)))
    node.kubelet.registrations(1)
    resp = node.stub("byMac").Allocate(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[e])]),
        timeout=WAIT,
    )
    mounts = resp.container_responses[0].mounts
    assert os.stat(mounts[0].host_path).st_uid == UID
    node.podres.pods = {POD: {"app": {"afxdp/byMac": [e]}}}
    path = hs.POD_UDS_PATH.format(dev=e)
    got = pod_client(node, mounts, path, e, hostname=POD, uid=UID)
    assert got["type"] == sysbpf.MAP_TYPE_XSKMAP
    # Root in the right UTS namespace is still the wrong uid.
    with pytest.raises(AssertionError, match="host_nak"):
        pod_client(node, mounts, path, e, hostname=POD)
    (alloc,) = plugin.pool("byMac").allocations.values()
    assert f"uid 0 is not one of [{UID}]" in alloc.validator.reason


def test_list_and_watch_follows_link_down_up_and_delete(node):
    b, c, e = node.devs["b"], node.devs["c"], node.devs["e"]
    veth = {"name": "veth", "excludeDevices": [{"name": e}]}
    node.plugin(kind_cfg(pool("pool1", drivers=[veth], devices=[{"name": b}])))
    node.kubelet.registrations(1)
    w = Watch(node.stub("pool1"))
    try:
        assert w.next() == {b: "Healthy", c: "Healthy"}
        node.ip("link", "set", c, "down")
        assert w.until({c: "Unhealthy"}) == {b: "Healthy", c: "Unhealthy"}
        node.ip("link", "set", c, "up")
        assert w.until({c: "Healthy"}) == {b: "Healthy", c: "Healthy"}
        node.ip("link", "del", c)
        assert w.until({c: "Unhealthy"}) == {b: "Healthy", c: "Unhealthy"}
    finally:
        w.close()


def test_kubelet_restart_makes_the_plugin_serve_again_and_re_register(node):
    b = node.devs["b"]
    plugin = node.plugin(kind_cfg(pool("pool1", devices=[{"name": b}])))
    node.kubelet.registrations(1)
    p = plugin.pool("pool1")
    assert p.registrations == 1
    # A kubelet restart: the directory is wiped (our socket too), kubelet.sock comes back.
    node.kubelet.restart(wipe=True)
    r = node.kubelet.registrations(1)["afxdp/pool1"]
    assert r.endpoint == "afxdp-pool1.sock"
    assert os.path.exists(p.socket_path)
    w = Watch(node.stub("pool1"))
    assert w.next() == {b: "Healthy"}
    w.close()
    # Only kubelet.sock re-created: register again on the same socket.
    node.kubelet.restart(wipe=False)
    node.kubelet.registrations(1)
    wait_for(lambda: p.registrations == 3, "Register to return")
    assert node.kubelet.requests.empty()


def test_refused_allocations_leave_nothing_behind(node):
    b, c = node.devs["b"], node.devs["c"]
    plugin = node.plugin(kind_cfg(pool("pool1", drivers=[{"name": "veth"}])))
    node.kubelet.registrations(1)
    stub = node.stub("pool1")

    def allocate(*containers):
        return stub.Allocate(
            pb.AllocateRequest(
                container_requests=[pb.ContainerAllocateRequest(devices_ids=c) for c in containers]
            ),
            timeout=WAIT,
        )

    with pytest.raises(grpc.RpcError) as ei:
        allocate(["nosuchdev"])
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown device" in ei.value.details() and b in ei.value.details()
    with pytest.raises(grpc.RpcError) as ei:
        allocate([b], [b])
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Someone else's XDP program on c: the second container fails, so the first is undone.
    fd = sysbpf.prog_load(
        sysbpf.PROG_TYPE_XDP,
        progs.verdict(XDP_PASS),
        name="foreign_pass",
        expected_attach_type=sysbpf.ATTACH_XDP,
    )
    try:
        with testnet.in_netns(node.ns):
            xdp.attach(c, fd, xdp.XdpMode.DRV, force=True)
        with pytest.raises(grpc.RpcError) as ei:
            allocate([b], [c])
        assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "foreign_pass" in ei.value.details()
        assert node.query(b) is None
        assert node.query(c).name == "foreign_pass"
        assert not plugin.pool("pool1").allocations
        assert not os.listdir(plugin.pool("pool1").uds_dir)
    finally:
        with testnet.in_netns(node.ns):
            xdp.detach(c)
        os.close(fd)


def test_a_device_allocated_again_releases_the_previous_pod(node):
    b = node.devs["b"]
    plugin = node.plugin(kind_cfg(pool("pool1", devices=[{"name": b}])))
    node.kubelet.registrations(1)
    stub = node.stub("pool1")
    req = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[b])])
    first = stub.Allocate(req, timeout=WAIT).container_responses[0].mounts[0].host_path
    prog1 = node.query(b).prog_id
    second = stub.Allocate(req, timeout=WAIT).container_responses[0].mounts[0].host_path
    assert first != second and not os.path.exists(first) and os.path.exists(second)
    assert node.query(b).prog_id != prog1
    assert len(plugin.pool("pool1").allocations) == 1
    # Somebody detaches our program: PreStartContainer puts it back.
    with testnet.in_netns(node.ns):
        xdp.detach(b)
    stub.PreStartContainer(pb.PreStartContainerRequest(devices_ids=[b]), timeout=WAIT)
    (alloc,) = plugin.pool("pool1").allocations.values()
    assert node.query(b).prog_id == alloc.host_devices[0].prog_id


def test_pinned_map_mode_and_the_grace_period(node):
    """bpfMapPinningEnable without the UDS server: each allocation gets a bpffs of its own
    with the XSKMAP pinned for the pod's uid; an allocation no pod ever showed up with is
    undone after reap_grace, mount included."""
    b = node.devs["b"]
    cfg = kind_cfg(
        pool("pins", devices=[{"name": b}], udsServerDisable=True, bpfMapPinningEnable=True)
        | {"uid": UID}
    )
    plugin = node.plugin(cfg, reap_grace=1.0)
    node.kubelet.registrations(1)
    resp = node.stub("pins").Allocate(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[b])]),
        timeout=WAIT,
    )
    (cr,) = resp.container_responses
    assert dict(cr.envs) == {"AFXDP_DEVICES_PINS": b}
    (m,) = cr.mounts
    assert m.container_path == f"/tmp/afxdp_dp/{b}/xsks_map"
    pin = m.host_path
    assert dp.fs_type(pin) == "bpf" and dp.is_mountpoint(os.path.dirname(pin))
    assert os.stat(pin).st_uid == UID
    (alloc,) = plugin.pool("pins").allocations.values()
    got = pod_client(node, cr.mounts, m.container_path, b, hostname=POD, uid=UID)
    assert got["id"] == sysbpf.map_info(alloc.host_devices[0].map_fd).id
    assert node.query(b).prog_id == alloc.host_devices[0].prog_id
    wait_for(lambda: not dp.is_mountpoint(os.path.dirname(pin)), "the grace period")
    assert not os.path.exists(pin) and node.query(b) is None
    assert plugin.reaped == 1 and not plugin.pool("pins").allocations


def test_cndp_deviceplugin_process_in_the_namespace_cleans_up_on_sigterm(node, tmp_path):
    b = node.devs["b"]
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(kind_cfg(pool("pool1", devices=[{"name": b}]))))
    o = node.options()
    cmd = ["ip", "netns", "exec", node.ns, sys.executable, "-m", "cndp.k8s.deviceplugin"]
    cmd += ["--config", str(cfg), "--kubelet-dir", o.kubelet_dir]
    cmd += ["--pod-resources-socket", node.podres.sock, "--uds-base-dir", o.uds_base_dir]
    cmd += ["--pin-base-dir", o.pin_base_dir, "--watch-interval", "0.1"]
    log = tmp_path / "dp.log"
    with open(log, "w") as f:  # a file, not a pipe: a full pipe would block the plugin
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    node.pair.b._procs.append(proc)  # killed by the fixture if the test fails
    node.kubelet.registrations(1, timeout=60)
    resp = node.stub("pool1").Allocate(
        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[b])]),
        timeout=WAIT,
    )
    sock = resp.container_responses[0].mounts[0].host_path
    assert os.path.exists(sock)
    assert node.query(b) is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT) == 0, log.read_text()
    err = log.read_text()
    assert "Traceback" not in err and "registered with the kubelet" in err
    assert node.query(b) is None
    assert not os.path.exists(sock)
    assert not os.path.exists(os.path.join(node.kubelet.dp_dir, "afxdp-pool1.sock"))
