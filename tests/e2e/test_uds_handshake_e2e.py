"""The device-plugin handshake end to end: our device-plugin side (HostDevice + UdsServer)
loads the XDP program on the pod's veth end; an unprivileged process — its own UTS namespace
with the pod's hostname, uid 65534, no capability but CAP_NET_RAW — gets the XSKMAP over the
socket, opens its AF_XDP socket, inserts it into the map and forwards the Linux peer's
traffic back to it.

What this proves about privileges (kernel of the run; see docs/uds-handshake.md):
- CAP_NET_RAW is needed to create an AF_XDP socket (without it: PrivilegeError);
- nothing is needed to put the socket into an XSKMAP reached through a received fd (or a
  bpffs pin the uid may open), even with kernel.unprivileged_bpf_disabled set;
- the UMEM counts against RLIMIT_MEMLOCK, so a UMEM above it needs CAP_IPC_LOCK;
- busy polling needs CAP_NET_ADMIN: the device plugin sets it on the fd we send.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cndp.bpf import xdp
from cndp.bpf.xdp import XdpMode
from cndp.k8s import udsserver as us

from .xsk_helpers import RawPeer, frame, is_udp_to, seq_of

POD = "cndp-0-0"
NOBODY = 65534
RES = "afxdp/myPool"
CAP_NET_RAW, CAP_IPC_LOCK = 13, 14
MEMLOCK = 8 << 20  # a fixed RLIMIT_MEMLOCK for the app, whatever the host's default
BIN = Path(sys.executable).parent

APP = r"""
import json, socket, sys, time
from cndp.errors import CndpError
from cndp.mem import PktVec, Umem, mac_swap
from cndp.xskdev.xskdev import XskConfig, XskDev

ifname, key, path, n, frames, busy, skb = sys.argv[1:8]
kw = {key: path}
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
try:
    cfg = XskConfig(ifname, rx_size=512, tx_size=512, busy_poll=busy == "1", skb_mode=skb == "1",
                    **kw)
    with Umem(int(frames)) as umem, XskDev(cfg, umem) as dev:
        print("READY", flush=True)
        pv, got, deadline = PktVec(64), 0, time.monotonic() + 10
        while got < int(n) and time.monotonic() < deadline:
            k = dev.rx_burst(pv)
            if k:
                mac_swap(umem.data, pv.addr[:k])  # and back where it came from
                sent = dev.tx_burst(pv, k)
                dev.pool.put_bulk(pv.addr[sent:k])
                got += k
            else:
                dev.poll(20)
        dev.flush(1.0)
        opt = lambda o: dev.sock.getsockopt(socket.SOL_SOCKET, o)
        print(json.dumps({"got": got, "caps": caps, "uid": __import__("os").getuid(),
                          "busy_poll": opt(46), "prefer": opt(69)}), flush=True)
except CndpError as e:
    print("ERR", type(e).__name__, e, flush=True)
    sys.exit(3)
"""


def _memlock():
    _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    lim = MEMLOCK if hard == resource.RLIM_INFINITY else min(MEMLOCK, hard)
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (lim, lim))


def unprivileged(pair, args, *, caps=("net_raw",), uid=NOBODY, hostname=POD, **kw):
    """Start ``args`` in the pod's network namespace, in a new UTS namespace named
    ``hostname``, as ``uid`` with exactly ``caps`` (setpriv)."""
    capset = "-all" + "".join(f",+{c}" for c in caps)
    cmd = ["ip", "netns", "exec", pair.b.ns, "unshare", "--uts", "--"]
    cmd += ["sh", "-c", 'hostname "$0" && exec "$@"', hostname, "setpriv"]
    if uid:
        cmd += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    cmd += [f"--inh-caps={capset}", f"--ambient-caps={capset}", f"--bounding-set={capset}"]
    cmd += ["--no-new-privs", "--", *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_memlock,
        **kw,
    )
    pair.b._procs.append(proc)  # killed by the fixture's teardown if still running
    return proc


def read_line(proc, timeout=30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            return proc.stdout.readline()
        if proc.poll() is not None:
            return proc.stdout.readline()
    raise AssertionError("the app printed nothing in time")


def validator(pair, uid=NOBODY):
    b = pair.b
    pods = [us.PodResources(POD, "default", (us.ContainerDevices("cndp", {RES: (b.ifname,)}),))]
    return us.PodResourcesValidator(lambda: pods, RES, uids=frozenset({uid}))


@pytest.fixture
def dp_base(veth_pair):
    base = f"/tmp/afxdp_dp_{veth_pair.prefix}"
    yield base
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run(["umount", f"{base}/bpffs"], check=True, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def device_plugin(pair, base, *, mode=XdpMode.DRV, uid=NOBODY, pin=False, **server_kw):
    """Our device plugin for the pod: program + XSKMAP on b's veth, the handshake socket at
    <base>/<dev>/afxdp.sock (owned by the pod's uid), optionally the pin. On exit: the pod
    went away — and nothing of it may remain."""
    b = pair.b
    sock = f"{base}/{b.ifname}/afxdp.sock"
    pin_path = None
    if pin:
        os.makedirs(f"{base}/bpffs", mode=0o755, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "bpf", "-o", "mode=0755", "bpf", f"{base}/bpffs"], check=True
        )
        pin_path = f"{base}/bpffs/xsks_map"
    with b.enter():
        dev = us.HostDevice(b.ifname, mode=mode, pin_path=pin_path, uid=uid)
        ep = us.PodEndpoint(sock, [dev], validator(pair, uid), uid=uid, **server_kw)
        ep.start()
        prog_id = xdp.query(b.ifname).prog_id
    try:
        yield ep, sock, pin_path, prog_id
    finally:
        with b.enter():
            ep.close()
            assert xdp.query(b.ifname) is None, "the pod's program outlived it"
        assert not os.path.exists(sock), "the handshake socket outlived the pod"
        assert pin_path is None or not os.path.exists(pin_path), "the pin outlived the pod"


def app_args(pair, key, path, n=200, frames=2048, busy=False, skb=False):
    return [
        sys.executable,
        "-c",
        APP,
        pair.b.ifname,
        key,
        path,
        str(n),
        str(frames),
        "1" if busy else "0",
        "1" if skb else "0",
    ]


def exchange(pair, proc, n):
    """Send n frames from the Linux peer; return the seqs that came back MAC-swapped."""
    assert read_line(proc).strip() == "READY", proc.stderr.read()
    with pair.a.enter():
        peer = RawPeer(pair.a.ifname)
    try:
        sent = [frame(pair, i) for i in range(n)]
        peer.send(sent)
        back = peer.recv_until(n, timeout=10, match=is_udp_to(9))
    finally:
        peer.close()
    for f in back:
        assert f[0:6] == pair.a.mac_bytes and f[6:12] == pair.b.mac_bytes
    return sorted(seq_of(f) for f in back)


@pytest.mark.parametrize(
    "mode,busy",
    [(XdpMode.DRV, False), (XdpMode.DRV, True), (XdpMode.SKB, False)],
    ids=["native", "native-busy-poll", "skb"],
)
def test_unprivileged_app_gets_the_xskmap_over_the_handshake_and_forwards(
    veth_pair, dp_base, mode, busy
):
    n = 200
    with device_plugin(veth_pair, dp_base, mode=mode) as (ep, sock, _, prog_id):
        proc = unprivileged(
            veth_pair, app_args(veth_pair, "uds_path", sock, n, busy=busy, skb=mode is XdpMode.SKB)
        )
        seqs = exchange(veth_pair, proc, n)
        out = read_line(proc)
        assert proc.wait(20) == 0, out + proc.stderr.read()
        res = json.loads(out)
        with veth_pair.b.enter():
            assert xdp.query(veth_pair.b.ifname).prog_id == prog_id  # the app loaded nothing
        transcript = list(ep.server.transcript)
    assert seqs == list(range(n))
    assert res["got"] >= n and res["uid"] == NOBODY
    assert int(res["caps"], 16) == 1 << CAP_NET_RAW  # exactly CAP_NET_RAW, nothing else
    assert transcript[0] == (f"/connect,{POD}", ("/host_ok",))
    assert (f"/xsk_map_fd,{veth_pair.b.ifname}", ("/fd_ack",)) in transcript
    assert transcript[-1] == ("/fin", ("/fin_ack",))
    if busy:
        # set by the device plugin on our fd: the app may not (CAP_NET_ADMIN)
        assert ("/config_busy_poll,20,64", ("/config_busy_poll_ack",)) in transcript
        # (SO_BUSY_POLL_BUDGET cannot be read back; the ack says the DP's setsockopt took it)
        assert (res["busy_poll"], res["prefer"]) == (20, 1)
    else:
        assert res["busy_poll"] == 0 and not any("busy" in t[0] for t in transcript)


def test_pinned_xskmap_unprivileged_native(veth_pair, dp_base):
    """xsk_pin_path: bpf_obj_get on a pin the pod's uid owns; no socket, no capability but
    CAP_NET_RAW."""
    with device_plugin(veth_pair, dp_base, pin=True) as (ep, _, pin, _):
        proc = unprivileged(veth_pair, app_args(veth_pair, "xsk_pin_path", pin, 100))
        seqs = exchange(veth_pair, proc, 100)
        out = read_line(proc)
        assert proc.wait(20) == 0, out + proc.stderr.read()
        assert ep.server.stats.connections == 0
    assert seqs == list(range(100))
    assert int(json.loads(out)["caps"], 16) == 1 << CAP_NET_RAW


@pytest.mark.parametrize(
    "caps,frames,needle",
    [
        ((), 2048, "CAP_NET_RAW"),  # no AF_XDP socket without it
        (("net_raw",), 8192, "RLIMIT_MEMLOCK"),  # 16 MiB UMEM over an 8 MiB limit
        (("net_raw", "ipc_lock"), 8192, None),  # ... fine with CAP_IPC_LOCK
    ],
    ids=["no-caps", "umem-over-memlock", "umem-over-memlock-with-ipc-lock"],
)
def test_what_the_capabilities_buy(veth_pair, dp_base, caps, frames, needle):
    with device_plugin(veth_pair, dp_base) as (ep, sock, _, _):
        proc = unprivileged(
            veth_pair, app_args(veth_pair, "uds_path", sock, 1, frames=frames), caps=caps
        )
        if needle is None:
            assert read_line(proc).strip() == "READY"
            proc.terminate()
            proc.wait(20)
        else:
            out = read_line(proc)
            assert proc.wait(20) == 3, out + proc.stderr.read()
            assert out.startswith("ERR PrivilegeError") and needle in out, out
            assert "Traceback" not in proc.stderr.read()
        # the app got its map fd before failing, and left with /fin
        deadline = time.monotonic() + 3
        while not ep.server.stats.fins and needle and time.monotonic() < deadline:
            time.sleep(0.02)
        transcript = [t[0] for t in ep.server.transcript]
    assert transcript[:2] == [f"/connect,{POD}", f"/xsk_map_fd,{veth_pair.b.ifname}"]
    if needle:
        assert transcript[-1] == "/fin"


@pytest.mark.parametrize(
    "hostname,uid,needle",
    [
        ("imposter-7", NOBODY, "refused pod 'imposter-7' (/host_nak)"),  # not a pod here
        (POD, NOBODY - 1, "permission denied"),  # another uid: the socket is not its
    ],
    ids=["unknown-pod", "other-uid"],
)
def test_hostile_pods_are_refused_and_the_pod_is_untouched(
    veth_pair, dp_base, hostname, uid, needle
):
    with device_plugin(veth_pair, dp_base) as (ep, sock, _, prog_id):
        proc = unprivileged(
            veth_pair, app_args(veth_pair, "uds_path", sock, 1), uid=uid, hostname=hostname
        )
        out = read_line(proc)
        assert proc.wait(20) == 3, out + proc.stderr.read()
        assert out.startswith("ERR HandshakeError") and needle in out, out
        with veth_pair.b.enter():
            assert xdp.query(veth_pair.b.ifname).prog_id == prog_id
        assert ep.server.stats.sessions_ok == 0
        assert not any(t[0].startswith("/xsk_map_fd") for t in ep.server.transcript)


def test_cndpfwd_on_the_generated_config_runs_as_the_cndp_pod(veth_pair, dp_base, tmp_path):
    """The CNDP pod: cndp-jsonc-gen writes config.jsonc from AFXDP_DEVICES_MYPOOL, then cndpfwd
    runs in lb mode with the pod's capabilities (NET_RAW, IPC_LOCK; root uid in the
    container), its lport's XSKMAP coming over the handshake."""
    b = veth_pair.b
    cfg = tmp_path / "config.jsonc"
    env = {**os.environ, "AFXDP_DEVICES_MYPOOL": b.ifname}
    gen = subprocess.run(
        [
            str(BIN / "cndp-jsonc-gen"),
            "-k",
            "-q",
            "--bufcnt",
            "4",
            "-o",
            str(cfg),
            "--uds-path",
            f"{dp_base}/{{dev}}/afxdp.sock",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gen.returncode == 0, gen.stderr
    with device_plugin(veth_pair, dp_base, uid=0) as (ep, sock, _, prog_id):
        assert f'"uds_path": "{sock}"' in cfg.read_text()
        proc = unprivileged(
            veth_pair,
            [str(BIN / "cndpfwd"), "-c", str(cfg), "lb"],
            caps=("net_raw", "ipc_lock"),
            uid=0,
        )
        err: list[str] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            r, _, _ = select.select([proc.stderr], [], [], 0.2)
            if r:
                line = proc.stderr.readline()
                err.append(line)
                if line.startswith("cndpfwd: running") or not line:
                    break
            elif proc.poll() is not None:
                break
        assert err and err[-1].startswith("cndpfwd: running"), "".join(err)
        with veth_pair.a.enter():
            peer = RawPeer(veth_pair.a.ifname)
        try:
            peer.send([frame(veth_pair, i) for i in range(300)])
            back = peer.recv_until(300, timeout=10, match=is_udp_to(9))
        finally:
            peer.close()
        proc.terminate()
        _, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, "".join(err) + rest
        with b.enter():
            assert xdp.query(b.ifname).prog_id == prog_id
        transcript = list(ep.server.transcript)
    assert sorted(seq_of(f) for f in back) == list(range(300))
    assert transcript[0] == (f"/connect,{POD}", ("/host_ok",))
    assert transcript[1] == (f"/xsk_map_fd,{b.ifname}", ("/fd_ack",))
    assert transcript[-1] == ("/fin", ("/fin_ack",))
    assert ep.server.stats.connections == 1  # main and worker shared one connection


def test_pod_gone_while_connected_cleans_everything(veth_pair, dp_base):
    """PodEndpoint.close() with a live session: the session ends (EOF for the app), the
    socket file, the pin and the program go. device_plugin() asserts the last three."""
    from cndp.k8s import handshake as hs

    with device_plugin(veth_pair, dp_base, uid=0, pin=True) as (ep, sock, pin, _):
        v = ep.server.validate
        v.check_hostname = False  # this in-process client is not in the pod's UTS namespace
        c = hs.HandshakeClient(sock, pod=POD, timeout=3)
        c.connect()
        fd = c.xsk_map_fd(veth_pair.b.ifname)
        assert os.path.exists(pin)
        with veth_pair.b.enter():
            ep.close()
        with pytest.raises(hs.HandshakeError, match=r"closed the connection|sending"):
            c.version()
        assert os.fstat(fd)  # the map fd the pod holds stays valid: the map lives on with it
        c.detach()
