"""``cndp-deviceplugin``: the AF_XDP device plugin for Kubernetes.

One gRPC server per pool speaks the kubelet device-plugin API v1beta1 on
``<device-plugin-dir>/afxdp-<pool>.sock`` and registers ``afxdp/<pool>`` with the kubelet
(``<device-plugin-dir>/kubelet.sock``). Pools and their netdevs come from a ``config.json``
in the AF_XDP plugins' format (:mod:`cndp.k8s.dp_config`, :mod:`cndp.k8s.discovery`).

- ``ListAndWatch`` streams the pool's devices; a device is ``Healthy`` while its netdev
  exists and is up. An rtnetlink listener pushes a new list as soon as that changes.
- ``GetPreferredAllocation`` keeps the devices that must be included and fills up with
  healthy devices on the same NUMA node first, then by name.
- ``Allocate``, per container: loads our XDP redirect program with a fresh XSKMAP on each
  device, then serves the handshake (:mod:`cndp.k8s.udsserver`) on
  ``<uds-base>/afxdp_<pool>/<uuid>.sock``, mounted in the container at
  ``/tmp/afxdp_dp/<dev>/afxdp.sock``; with ``bpfMapPinningEnable`` it pins each XSKMAP in a
  bpffs of its own under ``<pin-base>/afxdp_<pool>/<uuid>/`` and mounts it at
  ``/tmp/afxdp_dp/<dev>/xsks_map``. The env var ``AFXDP_DEVICES_<POOL>`` lists the devices.
  The handshake accepts only the pod that the kubelet's PodResources API shows holding
  exactly these devices, whose process has the pool's uid and lives in a UTS namespace named
  after the pod. A failure undoes everything of the call and answers a gRPC error.
- ``PreStartContainer`` checks the devices and puts our program back where it was removed.
- Pods that go away: the plugin polls PodResources; an allocation that no container holds
  any more (or never held within the grace period) is undone — server, socket, programs,
  pins and bpffs mounts. A device the kubelet allocates again is released first.
- Kubelet restarts: when ``kubelet.sock`` is re-created, or our socket disappears (the
  kubelet wipes the directory), the plugin serves again and re-registers.
- SIGTERM/SIGINT: everything is undone and the process exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc

from ..bpf import xdp
from ..bpf.xdp import XdpMode
from ..errors import CndpError, ConfigError, NetdevError
from ..sys import bpf as sysbpf
from . import discovery
from . import handshake as hs
from . import udsserver as us
from .dp_config import LOG_DIR, DpConfig, PoolConfig, load_config
from .podresources import PodResourcesClient
from .proto import deviceplugin_v1beta1_pb2 as pb
from .proto import deviceplugin_v1beta1_pb2_grpc as pbg

log = logging.getLogger("cndp.k8s.deviceplugin")

API_VERSION = "v1beta1"
HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"
KUBELET_SOCKET = "kubelet.sock"
DEFAULT_KUBELET_DIR = "/var/lib/kubelet"
DEFAULT_UDS_BASE = "/tmp/afxdp_dp"
DEFAULT_PIN_BASE = "/var/run/afxdp_dp"
DEFAULT_CONFIG = "./config.json"
PIN_NAME = "xsks_map"
OPTIONS = pb.DevicePluginOptions(pre_start_required=True, get_preferred_allocation_available=True)
EXIT_CONFIG, EXIT_LOG, EXIT_HOST = 1, 2, 3  # as the Go plugin's exit codes

PodLookup = Callable[[], Iterable[us.PodResources]]


@dataclass
class Options:
    """Where things live and how often the plugin looks. Paths default to the kubelet's."""

    kubelet_dir: str = DEFAULT_KUBELET_DIR
    device_plugin_dir: str | None = None  # default <kubelet_dir>/device-plugins
    pod_resources_socket: str | None = None  # default <kubelet_dir>/pod-resources/kubelet.sock
    uds_base_dir: str = DEFAULT_UDS_BASE
    pin_base_dir: str = DEFAULT_PIN_BASE
    node_name: str | None = None  # for per-node config sections; default $NODE_NAME, hostname
    netns: str | None = None  # manage the netdevs of this network namespace
    watch_interval: float = 1.0  # seconds between kubelet-restart checks
    reap_interval: float = 10.0  # seconds between PodResources polls for pods gone
    reap_grace: float = 120.0  # an allocation no container ever showed is undone after this
    health_interval: float = 5.0  # health is re-read this often even without link events
    register_timeout: float = 10.0

    @property
    def dp_dir(self) -> str:
        return os.path.abspath(
            self.device_plugin_dir or os.path.join(self.kubelet_dir, "device-plugins")
        )

    @property
    def pr_socket(self) -> str:
        return os.path.abspath(
            self.pod_resources_socket
            or os.path.join(self.kubelet_dir, "pod-resources", KUBELET_SOCKET)
        )

    @property
    def kubelet_socket(self) -> str:
        return os.path.join(self.dp_dir, KUBELET_SOCKET)


class RpcRefused(Exception):
    """An RPC that must fail with ``code`` and ``message`` (after cleaning up)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# helpers


def _inode(path: str) -> tuple[int, int, int] | None:
    """Who ``path`` is: device, inode and change time (a socket re-created at once may
    get the same inode number back; not the same ctime)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def _unescape_mount(s: str) -> str:
    return (
        s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    )


def _mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of this mount namespace, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) >= 5 and right:
                out.append((_unescape_mount(fields[4]), right.split()[0]))
    return out


def fs_type(path: str) -> str:
    """The file system type ``path`` lives on (the last mount covering it)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    for mp, fstype in _mounts():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, kind = mp, fstype
    return kind


def is_mountpoint(path: str) -> bool:
    path = os.path.realpath(path)
    return any(mp == path for mp, _ in _mounts())


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CndpError(f"{what}: {r.stderr.strip() or r.returncode}", fix="needs CAP_SYS_ADMIN")


def unprivileged_bpf_allowed() -> bool:
    try:
        with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


def preferred(
    available: Sequence[str],
    must: Sequence[str],
    size: int,
    numa: Mapping[str, int],
    healthy: Mapping[str, bool],
) -> list[str]:
    """The devices to offer: ``must`` first, then healthy ones on the NUMA nodes of ``must``
    (or of the first pick), then by name."""
    out = list(dict.fromkeys(must))
    rest = [d for d in dict.fromkeys(available) if d not in out]
    nodes = {numa.get(d, -1) for d in out}
    if not out and rest:
        first = min(rest, key=lambda d: (not healthy.get(d, False), d))
        nodes = {numa.get(first, -1)}
    rest.sort(key=lambda d: (not healthy.get(d, False), numa.get(d, -1) not in nodes, d))
    out += rest
    return out[: max(size, len(dict.fromkeys(must)))]


# ---------------------------------------------------------------------------------------------
# one allocation (one container's devices)


class Allocation:
    """The XDP programs, handshake server and pins of one container's devices."""

    def __init__(self, pool: PoolServer, devices: Sequence[str]):
        self.pool = pool
        self.cfg = pool.cfg
        self.id = str(uuid.uuid4())
        self.devices = tuple(devices)
        self.host_devices: list[us.HostDevice] = []
        self.endpoint: us.PodEndpoint | None = None
        self.validator: us.PodResourcesValidator | None = None
        self.uds_path: str | None = None
        self.pin_dir: str | None = None
        self._mounted = False
        self.created = time.monotonic()
        self.seen = False  # a container held exactly these devices at some reaper tick
        self.closed = False

    @property
    def key(self) -> frozenset[str]:
        return frozenset(self.devices)

    def pin_path(self, dev: str) -> str:
        assert self.pin_dir is not None
        return os.path.join(self.pin_dir, dev)

    def build(self) -> None:
        """Load, pin and serve; on failure undo what was done and raise."""
        cfg = self.cfg
        uid = cfg.uid or None
        mode = XdpMode.SKB if cfg.xdp_mode == "skb" else XdpMode.DRV
        try:
            if cfg.bpf_map_pinning_enable:
                self._make_pin_dir()
            if cfg.bpf_map_pinning_enable or not cfg.uds_server_disable:
                with discovery.netns(self.pool.plugin.opts.netns):
                    for dev in self.devices:
                        pin = self.pin_path(dev) if self.pin_dir else None
                        self.host_devices.append(
                            us.HostDevice(dev, mode=mode, pin_path=pin, uid=uid)
                        )
            if not cfg.uds_server_disable:
                self.validator = us.PodResourcesValidator(
                    self.pool.plugin.lookup,
                    cfg.resource,
                    uids=frozenset({cfg.uid}) if cfg.uid else None,
                    check_hostname=cfg.pod_hostname_check,
                )
                path = os.path.join(self.pool.uds_dir, f"{self.id}.sock")
                self.endpoint = us.PodEndpoint(
                    path, self.host_devices, self.validator, idle_timeout=cfg.idle_timeout, uid=uid
                )
                self.endpoint.start()
                self.uds_path = path
        except BaseException:
            self.close()
            raise

    def _make_pin_dir(self) -> None:
        d = os.path.join(self.pool.pin_dir, self.id)
        os.mkdir(d, 0o700)
        self.pin_dir = d
        if fs_type(d) != "bpf":
            # A bpffs of its own per allocation (as the Go plugin): the pins of one pod
            # never sit next to another's, and umount takes them all.
            _run(["mount", "-t", "bpf", "-o", "mode=0700", "bpf", d], f"mounting a bpffs at {d}")
            self._mounted = True

    def response(self) -> pb.ContainerAllocateResponse:
        r = pb.ContainerAllocateResponse()
        r.envs[self.cfg.env_var] = " ".join(self.devices)
        for dev in self.devices:
            if self.uds_path:
                r.mounts.add(
                    container_path=hs.POD_UDS_PATH.format(dev=dev), host_path=self.uds_path
                )
            if self.pin_dir:
                r.mounts.add(
                    container_path=hs.POD_PIN_PATH.format(dev=dev), host_path=self.pin_path(dev)
                )
        return r

    def repair(self) -> list[str]:
        """Put our program back on devices (present here) where it is no longer attached.
        Returns the devices repaired; raises CndpError when one cannot be."""
        fixed = []
        with discovery.netns(self.pool.plugin.opts.netns):
            for hd in self.host_devices:
                try:
                    cur = xdp.query(hd.ifname)
                except NetdevError:
                    continue  # not in our namespace (the CNI moved it into the pod) or gone
                if cur is not None and cur.prog_id == hd.prog_id:
                    continue
                xdp.attach(hd.ifname, hd.prog_fd, hd.mode)
                hd.ifindex = xdp.resolve_ifindex(hd.ifname)
                hd.prog_id = sysbpf.prog_info(hd.prog_fd).id
                fixed.append(hd.ifname)
        return fixed

    def close(self) -> None:
        """Undo everything: server and socket, programs, pins, the bpffs mount. Idempotent;
        errors are logged (the rest is still undone)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.ExitStack() as stack:
            # When the namespace is gone, its netdevs went with it: closing still releases
            # the fds, and detaching checks the program id, so it never touches another netdev.
            with contextlib.suppress(CndpError):
                stack.enter_context(discovery.netns(self.pool.plugin.opts.netns))
            if self.endpoint is not None:
                try:
                    self.endpoint.close()
                except CndpError as e:
                    log.warning("allocation %s: %s", self.id, e)
            for hd in self.host_devices:
                try:
                    hd.close()
                except (CndpError, OSError) as e:
                    log.warning("allocation %s: closing %s: %s", self.id, hd.ifname, e)
        if self.pin_dir:
            if self._mounted:
                try:
                    _run(["umount", self.pin_dir], f"unmounting {self.pin_dir}")
                    self._mounted = False
                except CndpError as e:
                    log.warning("allocation %s: %s", self.id, e)
            if not self._mounted:
                with contextlib.suppress(OSError):
                    os.rmdir(self.pin_dir)
        log.info("%s: released %s (allocation %s)", self.cfg.resource, list(self.devices), self.id)


# ---------------------------------------------------------------------------------------------
# one pool: the DevicePlugin service


class PoolServer(pbg.DevicePluginServicer):
    def __init__(
        self,
        plugin: DevicePlugin,
        cfg: PoolConfig,
        devices: Sequence[str],
        numa: Mapping[str, int],
    ):
        self.plugin = plugin
        self.cfg = cfg
        self.devices = tuple(devices)
        self.numa = dict(numa)
        self.health = dict.fromkeys(self.devices, False)  # what ListAndWatch reports
        self.raw_health = dict.fromkeys(self.devices, False)  # what the host netns shows
        self.allocations: dict[str, Allocation] = {}
        self.endpoint = f"afxdp-{cfg.name}.sock"
        self.socket_path = os.path.join(plugin.opts.dp_dir, self.endpoint)
        self.uds_dir = os.path.join(os.path.abspath(plugin.opts.uds_base_dir), f"afxdp_{cfg.name}")
        self.pin_dir = os.path.join(os.path.abspath(plugin.opts.pin_base_dir), f"afxdp_{cfg.name}")
        self.registered_with: tuple[int, int, int] | None = None
        self.registrations = 0
        self.stopping = False
        self._lock = threading.RLock()
        self._alloc_lock = threading.Lock()  # one Allocate at a time
        self._watchers: set[threading.Event] = set()
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._sock_id: tuple[int, int, int] | None = None
        self._register_failed: str = ""

    # -- serving and registering

    def serve(self) -> None:
        """(Re)start the gRPC server on our socket."""
        self._stop_server()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # a leftover; the kubelet removes it on restart anyway
        ex = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"dp-{self.cfg.name}")
        server = grpc.server(ex)
        pbg.add_DevicePluginServicer_to_server(self, server)
        try:
            server.add_insecure_port("unix://" + self.socket_path)
        except RuntimeError as e:
            ex.shutdown(wait=False)
            raise CndpError(
                f"cannot serve {self.cfg.resource} on {self.socket_path}: {e}",
                fix="the device-plugin directory must exist and be writable (--device-plugin-dir)",
            ) from None
        server.start()
        self._server, self._executor = server, ex
        self._sock_id = _inode(self.socket_path)
        log.info("%s: serving on %s", self.cfg.resource, self.socket_path)

    def socket_alive(self) -> bool:
        return self._server is not None and _inode(self.socket_path) == self._sock_id

    def register(self, kubelet_id: tuple[int, int, int]) -> bool:
        req = pb.RegisterRequest(
            version=API_VERSION,
            endpoint=self.endpoint,
            resource_name=self.cfg.resource,
            options=OPTIONS,
        )
        target = "unix://" + self.plugin.opts.kubelet_socket
        try:
            with grpc.insecure_channel(target) as ch:
                pbg.RegistrationStub(ch).Register(req, timeout=self.plugin.opts.register_timeout)
        except grpc.RpcError as e:
            why = f"{e.code().name}: {e.details()}" if hasattr(e, "code") else str(e)
            level = logging.DEBUG if why == self._register_failed else logging.WARNING
            log.log(level, "%s: registering with the kubelet failed: %s", self.cfg.resource, why)
            self._register_failed = why
            return False
        self._register_failed = ""
        self.registered_with = kubelet_id
        self.registrations += 1
        log.info(
            "%s: registered with the kubelet (%d devices)", self.cfg.resource, len(self.devices)
        )
        return True

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5.0)
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._notify()

    def stop(self) -> None:
        self.stopping = True
        self._stop_server()
        if self._sock_id is not None and _inode(self.socket_path) == self._sock_id:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        self._sock_id = None
        with self._lock:
            allocs = list(self.allocations.values())
            self.allocations.clear()
        for a in allocs:
            a.close()

    # -- health

    def _notify(self) -> None:
        with self._lock:
            for ev in self._watchers:
                ev.set()

    def update_health(self, health: Mapping[str, bool]) -> None:
        with self._lock:
            for d, h in health.items():
                if d in self.raw_health:
                    self.raw_health[d] = h
        self._recompute_health()

    def _recompute_health(self) -> None:
        """A device an allocation holds stays Healthy: the CNI moved it into its pod (gone
        from our namespace), and reporting it Unhealthy would shrink the node's allocatable
        count while the scheduler still counts the pod that uses it."""
        with self._lock:
            held = set().union(*(a.key for a in self.allocations.values()))
            want = {d: self.raw_health[d] or d in held for d in self.devices}
            changed = {d: h for d, h in want.items() if self.health[d] != h}
            if not changed:
                return
            self.health.update(changed)
        for d, h in changed.items():
            log.info("%s: %s is %s", self.cfg.resource, d, HEALTHY if h else UNHEALTHY)
        self._notify()

    def snapshot(self) -> tuple[tuple[str, bool], ...]:
        with self._lock:
            return tuple((d, self.health[d]) for d in self.devices)

    def _device(self, name: str, healthy: bool) -> pb.Device:
        d = pb.Device(ID=name, health=HEALTHY if healthy else UNHEALTHY)
        node = self.numa.get(name, -1)
        if node >= 0:
            d.topology.nodes.add(ID=node)
        return d

    # -- the DevicePlugin service

    def GetDevicePluginOptions(self, request, context):
        return OPTIONS

    def ListAndWatch(self, request, context):
        ev = threading.Event()
        with self._lock:
            self._watchers.add(ev)
        context.add_callback(ev.set)  # the kubelet went away: stop waiting at once
        try:
            last = None
            while not self.stopping and context.is_active():
                snap = self.snapshot()
                if snap != last:
                    last = snap
                    yield pb.ListAndWatchResponse(devices=[self._device(d, h) for d, h in snap])
                ev.wait(self.plugin.opts.health_interval)
                ev.clear()
        finally:
            with self._lock:
                self._watchers.discard(ev)

    def GetPreferredAllocation(self, request, context):
        resp = pb.PreferredAllocationResponse()
        health = dict(self.snapshot())
        for c in request.container_requests:
            ids = preferred(
                list(c.available_deviceIDs),
                list(c.must_include_deviceIDs),
                c.allocation_size,
                self.numa,
                health,
            )
            resp.container_responses.add(deviceIDs=ids)
        return resp

    def Allocate(self, request, context):
        try:
            return self.allocate([list(c.devices_ids) for c in request.container_requests])
        except RpcRefused as e:
            log.error("%s: Allocate refused: %s", self.cfg.resource, e.message)
            context.abort(e.code, e.message)

    def allocate(self, requests: Sequence[Sequence[str]]) -> pb.AllocateResponse:
        """Allocate for each container's device list; all or nothing."""
        seen: set[str] = set()
        for ids in requests:
            self._check_ids(ids)
            dup = seen.intersection(ids)
            if dup or len(set(ids)) != len(ids):
                raise RpcRefused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{self.cfg.resource}: device(s) {sorted(dup) or list(ids)} requested twice",
                )
            seen.update(ids)
        built: list[Allocation] = []
        with self._alloc_lock:
            try:
                self._release_holders(seen)
                resp = pb.AllocateResponse()
                for ids in requests:
                    a = Allocation(self, ids)
                    a.build()
                    built.append(a)
                    resp.container_responses.append(a.response())
            except BaseException as e:
                for a in built:
                    a.close()
                if isinstance(e, CndpError):
                    raise RpcRefused(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"{self.cfg.resource}: allocating {[list(r) for r in requests]}: {e}",
                    ) from None
                if isinstance(e, OSError):
                    raise RpcRefused(
                        grpc.StatusCode.INTERNAL,
                        f"{self.cfg.resource}: allocating {[list(r) for r in requests]}: {e}",
                    ) from None
                raise
            with self._lock:
                for a in built:
                    self.allocations[a.id] = a
            self._recompute_health()
        for a in built:
            log.info(
                "%s: allocated %s (allocation %s, socket %s)",
                self.cfg.resource,
                list(a.devices),
                a.id,
                a.uds_path,
            )
        return resp

    def _check_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            raise RpcRefused(grpc.StatusCode.INVALID_ARGUMENT, f"{self.cfg.resource}: no devices")
        unknown = [d for d in ids if d not in self.health]
        if unknown:
            raise RpcRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{self.cfg.resource}: unknown device(s) {unknown}; this pool has "
                f"{list(self.devices)}",
            )

    def _release_holders(self, ids: Iterable[str]) -> None:
        """The kubelet gives a device again only once its pod is gone: undo that pod's
        allocation before loading anything."""
        ids = set(ids)
        with self._lock:
            old = [a for a in self.allocations.values() if ids & a.key]
            for a in old:
                del self.allocations[a.id]
        for a in old:
            log.info("%s: %s allocated again: its previous pod is gone", self.cfg.resource, a.id)
            a.close()
        if old:
            self._recompute_health()

    def PreStartContainer(self, request, context):
        ids = list(request.devices_ids)
        try:
            self._check_ids(ids)
            with self._lock:
                a = next((a for a in self.allocations.values() if a.key == frozenset(ids)), None)
            if a is None:
                log.warning("%s: PreStartContainer for %s: no allocation", self.cfg.resource, ids)
            else:
                try:
                    fixed = a.repair()
                except CndpError as e:
                    raise RpcRefused(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"{self.cfg.resource}: our XDP program cannot go back on {ids}: {e}",
                    ) from None
                if fixed:
                    log.warning("%s: put our XDP program back on %s", self.cfg.resource, fixed)
        except RpcRefused as e:
            log.error("%s: PreStartContainer refused: %s", self.cfg.resource, e.message)
            context.abort(e.code, e.message)
        return pb.PreStartContainerResponse()

    # -- pods going away

    def current(self) -> list[Allocation]:
        with self._lock:
            return list(self.allocations.values())

    def drop(self, a: Allocation, why: str) -> None:
        with self._lock:
            if self.allocations.pop(a.id, None) is None:
                return
        log.info("%s: undoing allocation %s of %s: %s", self.cfg.resource, a.id, a.devices, why)
        a.close()
        self._recompute_health()


# ---------------------------------------------------------------------------------------------
# the plugin


class DevicePlugin:
    """Every pool of a config, served and registered; ``start()`` / ``stop()``."""

    def __init__(
        self, cfg: DpConfig, opts: Options | None = None, *, lookup: PodLookup | None = None
    ):
        self.cfg = cfg
        self.opts = opts or Options()
        self.lookup: PodLookup = lookup or PodResourcesClient(self.opts.pr_socket)
        self.node = self.opts.node_name or os.environ.get("NODE_NAME") or socket.gethostname()
        self.pools: list[PoolServer] = []
        self.selection: discovery.Selection | None = None
        self.monitor: discovery.LinkMonitor | None = None
        self.reaped = 0
        self._made_dirs: list[str] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._started = False

    def pool(self, name: str) -> PoolServer:
        for p in self.pools:
            if p.cfg.name == name:
                return p
        raise KeyError(name)

    # -- lifecycle

    def start(self) -> DevicePlugin:
        discovery.check_pool_modes(self.cfg)
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        with discovery.netns(self.opts.netns):
            netdevs = discovery.scan()
        self.selection = sel = discovery.select(self.cfg, netdevs, self.node)
        for note in sel.notes:
            log.info("%s", note)
        unpriv = unprivileged_bpf_allowed()
        for pcfg in self.cfg.pools:
            devs = sel.pools.get(pcfg.name, ())
            if pcfg.requires_unprivileged_bpf and not unpriv:
                log.warning("pool %s needs unprivileged BPF, which this node forbids", pcfg.name)
                continue
            if not devs:
                log.warning(
                    "pool %s has no devices on node %s: not advertised", pcfg.name, self.node
                )
                continue
            numa = {d: netdevs[d].numa_node for d in devs}
            self.pools.append(PoolServer(self, pcfg, devs, numa))
            log.info("pool %s: %s", pcfg.resource, list(devs))
        if not self.pools:
            log.warning("no pool has devices on this node: nothing to advertise")
        self._makedirs(self.opts.dp_dir, 0o755)
        for p in self.pools:
            if not p.cfg.uds_server_disable:
                self._makedirs(p.uds_dir, 0o700)
                self._remove_stale_sockets(p.uds_dir)
            if p.cfg.bpf_map_pinning_enable:
                self._makedirs(p.pin_dir, 0o700)
        with discovery.netns(self.opts.netns):
            self.refresh_health()
        self.monitor = discovery.LinkMonitor(
            self.refresh_health, ns=self.opts.netns, interval=self.opts.health_interval
        ).start()
        for p in self.pools:
            p.serve()
        self.check_kubelet()
        self._watcher = threading.Thread(target=self._watch, name="dp-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Undo everything: stop serving, unload our programs, remove sockets, pins and the
        directories we made. Idempotent."""
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(10.0)
        self._watcher = None
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
        for p in self.pools:
            p.stop()
        while self._made_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(self._made_dirs.pop())  # only when empty

    def __enter__(self) -> DevicePlugin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _makedirs(self, path: str, mode: int) -> None:
        missing = []
        d = os.path.abspath(path)
        while d and not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            os.mkdir(d, mode)
            self._made_dirs.append(d)

    @staticmethod
    def _remove_stale_sockets(d: str) -> None:
        for name in os.listdir(d):
            p = os.path.join(d, name)
            with contextlib.suppress(OSError):
                if name.endswith(".sock") and stat.S_ISSOCK(os.lstat(p).st_mode):
                    os.unlink(p)
                    log.info("removed %s (left by an earlier run)", p)

    # -- health, kubelet, pods

    def refresh_health(self) -> None:
        """Re-read every pool device's state (in the calling thread's namespace)."""
        for p in self.pools:
            p.update_health({d: discovery.is_healthy(d) for d in p.devices})

    def check_kubelet(self) -> None:
        """Serve again when our socket went away, register when the kubelet's socket is new."""
        kid = _inode(self.opts.kubelet_socket)
        for p in self.pools:
            if self._stop.is_set():
                return
            if not p.socket_alive():
                log.info("%s: our socket is gone (kubelet restart?): serving again", p.cfg.resource)
                p.serve()
                p.registered_with = None
            if kid is not None and p.registered_with != kid:
                p.register(kid)

    def reap(self) -> int:
        """Undo allocations whose pod is gone; returns how many."""
        allocs = [(p, a) for p in self.pools for a in p.current()]
        if not allocs:
            return 0
        try:
            pods = list(self.lookup())
        except Exception as e:  # never undo anything on a failed lookup
            log.warning("cannot check for pods gone: %s", e)
            return 0
        held = {
            (res, frozenset(ids))
            for pod in pods
            for c in pod.containers
            for res, ids in c.devices.items()
        }
        log.debug("reaper: %d allocations, %d pods hold %s", len(allocs), len(pods), held)
        now = time.monotonic()
        n = 0
        for p, a in allocs:
            if (p.cfg.resource, a.key) in held:
                a.seen = True
                continue
            if a.seen:
                why = "no container holds these devices any more"
            elif now - a.created > self.opts.reap_grace:
                why = f"no container held these devices within {self.opts.reap_grace:g} s"
            else:
                continue
            n += 1
            self.reaped += 1
            p.drop(a, why)
        return n

    def _watch(self) -> None:
        next_reap = time.monotonic() + self.opts.reap_interval
        while not self._stop.wait(min(self.opts.watch_interval, self.opts.reap_interval)):
            try:
                self.check_kubelet()
                if time.monotonic() >= next_reap:
                    self.reap()
                    next_reap = time.monotonic() + self.opts.reap_interval
            except Exception:
                log.exception("device plugin watcher")


# ---------------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cndp-deviceplugin",
        description="AF_XDP device plugin for Kubernetes (config.json in the AF_XDP plugins' "
        "format; kubelet device-plugin API v1beta1).",
    )
    ap.add_argument("--config", default=DEFAULT_CONFIG, help="config.json (default %(default)s)")
    ap.add_argument("--kubelet-dir", default=DEFAULT_KUBELET_DIR, help="default %(default)s")
    ap.add_argument(
        "--device-plugin-dir", help="default <kubelet-dir>/device-plugins (kubelet.sock is there)"
    )
    ap.add_argument(
        "--pod-resources-socket", help="default <kubelet-dir>/pod-resources/kubelet.sock"
    )
    ap.add_argument("--uds-base-dir", default=DEFAULT_UDS_BASE, help="default %(default)s")
    ap.add_argument("--pin-base-dir", default=DEFAULT_PIN_BASE, help="default %(default)s")
    ap.add_argument("--node-name", help="this node's name (default $NODE_NAME, else hostname)")
    ap.add_argument("--netns", help="manage the netdevs of this network namespace")
    ap.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="overrides logLevel"
    )
    ap.add_argument("--log-dir", default=LOG_DIR, help="where logFile goes (default %(default)s)")
    ap.add_argument("--reap-interval", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--reap-grace", type=float, default=120.0, help="seconds (default 120)")
    ap.add_argument("--watch-interval", type=float, default=1.0, help="seconds (default 1)")
    return ap


def _setup_logging(level: str, log_file: str | None) -> None:
    # The level is ours: third-party libraries (pyroute2 logs every netlink message at
    # debug) stay at warning.
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    logging.getLogger("cndp").setLevel(getattr(logging, level.upper()))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(log_file), mode=0o744, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for flag in ("reap_interval", "reap_grace", "watch_interval"):
        if not getattr(args, flag) > 0:
            print(f"cndp-deviceplugin: --{flag.replace('_', '-')} must be > 0", file=sys.stderr)
            return 2
    try:
        cfg = load_config(args.config)
        discovery.check_pool_modes(cfg)
    except ConfigError as e:
        print(f"cndp-deviceplugin: {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        _setup_logging(
            args.log_level or cfg.log_level,
            os.path.join(args.log_dir, cfg.log_file) if cfg.log_file else None,
        )
    except OSError as e:
        print(f"cndp-deviceplugin: cannot open the log file: {e}", file=sys.stderr)
        return EXIT_LOG
    for note in cfg.notes:
        log.warning("%s", note)
    opts = Options(
        kubelet_dir=args.kubelet_dir,
        device_plugin_dir=args.device_plugin_dir,
        pod_resources_socket=args.pod_resources_socket,
        uds_base_dir=args.uds_base_dir,
        pin_base_dir=args.pin_base_dir,
        node_name=args.node_name,
        netns=args.netns,
        watch_interval=args.watch_interval,
        reap_interval=args.reap_interval,
        reap_grace=args.reap_grace,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    plugin = DevicePlugin(cfg, opts)
    try:
        plugin.start()
    except (CndpError, OSError) as e:
        log.error("cannot start: %s", e)
        return EXIT_HOST
    try:
        while not stop.wait(0.5):
            pass
        log.info("stopping: undoing every allocation")
    finally:
        plugin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
