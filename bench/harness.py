"""The moving parts of ``make bench``: generator, receivers, counters and layouts.

Everything here runs on one veth pair made by :func:`cndp.testing.netns.make_veth_pair`:
namespace A sends (the live-frames generator) and sinks returning frames (a counting
XDP_DROP program on A's veth); namespace B receives (the kernel ceiling program, testpmd, or
our AF_XDP loops). Workers are forked processes that talk to the parent through shared numpy
arrays only, so sampling a counter never disturbs the data path.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from cndp.bpf import progs, xdp
from cndp.bpf.trafficgen import LiveFrameGen
from cndp.errors import CndpError
from cndp.testing import netns

PR_SET_PDEATHSIG = 1

# generator control word values
GEN_PAUSE, GEN_RUN, GEN_EXIT = 0, 1, 2


def shared_array(n: int, dtype=np.uint64) -> np.ndarray:
    """A numpy array in anonymous shared memory (survives fork, shared both ways)."""
    buf = mp.RawArray("b", n * np.dtype(dtype).itemsize)
    return np.frombuffer(buf, dtype=dtype)


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM us when the parent dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def pin(cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})


def child_signals(on_term) -> None:
    """A worker ignores SIGINT (the parent decides when to stop) and stops on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: on_term())
    die_with_parent()


# --------------------------------------------------------------------------------------------
# generator


class Generator:
    """One live-frames generator process in namespace A for the whole bench.

    It is paused between measurements (so receivers start on an idle link) and counts the
    frames it has handed to the kernel in a shared counter; its rate over a measurement
    window is printed next to every row so one can see it was not the bottleneck.

    The XDP dispatcher: a BPF_PROG_RUN call with repeat > 1 puts the program into the
    kernel's XDP dispatcher and takes it out again at the end, and each change waits for an
    RCU grace period (``synchronize_rcu`` in ``bpf_dispatcher_change_prog``): about 25 ms of
    sleep per call whatever its repeat count (6.18: 1000 frames take 25 ms wall, 0.5 ms CPU;
    50k-frame calls top out near 1.6 Mpps). When the program is already in the dispatcher
    (attached in native mode to some netdev) the dispatcher does not change and a call costs
    0.1 ms. So, given ``park`` (one end of an otherwise unused veth pair), the generator
    attaches its own XDP_TX program there for its lifetime: no traffic ever crosses that
    pair. Without ``park`` it falls back to 2M-frame chunks, which lose a few per cent.

    The counter is updated once per chunk together with the chunk's completion time, so
    :meth:`rate` measures whole chunks.
    """

    def __init__(
        self,
        host: netns.Host,
        frame: bytes,
        cpu: int,
        *,
        park: netns.Host | None = None,
        chunk: int | None = None,
    ):
        self.host = host
        self.frame = frame
        self.cpu = cpu
        self.park = park
        self.chunk = chunk or (200_000 if park is not None else 2_000_000)
        self.ctl = shared_array(4)  # [state, ready, busy (a chunk is in flight), parked]
        self.alt = shared_array(1, np.int64)  # second CPU to alternate chunks with; -1: none
        self.alt[0] = -1
        self.count = shared_array(2)  # [frames sent, monotonic ns when the last chunk ended]
        self.proc: mp.Process | None = None

    def _park(self, gen: LiveFrameGen) -> None:
        if self.park is None:
            return
        try:
            with self.park.enter():
                xdp.attach(self.park.ifname, gen.fd, xdp.XdpMode.DRV)
            self.ctl[3] = 1
        except CndpError as e:
            print(f"generator: cannot park its program in the XDP dispatcher: {e}", file=sys.stderr)
            self.chunk = max(self.chunk, 2_000_000)

    def _unpark(self) -> None:
        if self.ctl[3]:
            with contextlib.suppress(CndpError), self.park.enter():
                xdp.detach(self.park.ifname)
            self.ctl[3] = 0

    def _main(self) -> None:
        ctl = self.ctl
        child_signals(lambda: ctl.__setitem__(0, GEN_EXIT))
        pin(self.cpu)
        try:
            with self.host.enter(), LiveFrameGen(self.host.ifname, self.frame) as gen:
                self._park(gen)
                try:
                    ctl[1] = 1
                    flip = False
                    while ctl[0] != GEN_EXIT:
                        ctl[2] = 1  # busy before looking at the state: see pause()
                        if ctl[0] == GEN_RUN:
                            other = int(self.alt[0])
                            if other >= 0:  # veth picks the rx queue by the sending CPU
                                flip = not flip
                                pin(other if flip else self.cpu)
                            elif flip:
                                flip = False
                                pin(self.cpu)
                            n = gen.send(self.chunk).frames
                            self.count[0] += n
                            self.count[1] = time.monotonic_ns()
                            ctl[2] = 0
                        else:
                            ctl[2] = 0
                            time.sleep(0.005)
                finally:
                    self._unpark()
        except CndpError as e:
            print(f"generator: {e}", file=sys.stderr)
            ctl[1] = 2
            sys.exit(1)

    @property
    def parked(self) -> bool:
        return bool(self.ctl[3])

    def start(self) -> None:
        self.proc = mp.get_context("fork").Process(target=self._main, daemon=True)
        self.proc.start()
        if not wait_for(lambda: self.ctl[1] != 0 or not self.proc.is_alive(), 10):
            raise RuntimeError("generator did not start within 10 s")
        if self.ctl[1] != 1:
            raise RuntimeError("generator failed to start (see above)")

    def run(self) -> None:
        self.ctl[0] = GEN_RUN

    def pause(self) -> None:
        """Stop sending; returns once the chunk in flight has ended."""
        self.ctl[0] = GEN_PAUSE
        idle = 0
        while self.alive() and idle < 2:  # seen idle twice, 10 ms apart
            time.sleep(0.01)
            idle = idle + 1 if self.ctl[2] == 0 else 0

    def alternate(self, cpu: int | None) -> None:
        """Send every other chunk from ``cpu`` (None: only from the generator's own CPU)."""
        self.alt[0] = -1 if cpu is None else cpu

    def sample(self) -> tuple[int, int]:
        """(frames sent, ns timestamp of the end of the last chunk)."""
        return int(self.count[0]), int(self.count[1])

    @staticmethod
    def rate(s0: tuple[int, int], s1: tuple[int, int]) -> float:
        """Frames/s between two samples (whole chunks only; 0 when unknown)."""
        if s0[1] == 0:  # no chunk had ended at the first sample
            return 0.0
        dt = (s1[1] - s0[1]) / 1e9
        return (s1[0] - s0[0]) / dt if dt > 0 else 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def stop(self) -> None:
        self.ctl[0] = GEN_EXIT
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def wait_for(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def stop_process(p: mp.Process, grace: float = 5.0) -> None:
    """Wait for a worker that was told to stop; SIGTERM, then SIGKILL, if it does not."""
    p.join(grace)
    if p.is_alive():
        p.terminate()
        p.join(2)
    if p.is_alive():
        p.kill()
        p.join(2)


# --------------------------------------------------------------------------------------------
# our receivers


RECV_LOOPS = {"rx-drop": "rx_drop", "macswap": "mac_swap_loop"}


@dataclass
class OurReceiver:
    """Our AF_XDP loop (``cndp.apps.loops``) in a forked process in namespace B on ``cpu``."""

    host: netns.Host
    mode: str  # "rx-drop" or "macswap"
    cpu: int
    idle_polls: int = 0
    burst: int = 64
    rx_size: int = 2048  # RX ring (the fill ring is twice that); CNDP's and testpmd's default
    bufcnt: int = 0  # 0: enough for the rings (4 x rx_size, at least 8192)
    xsk: dict = field(default_factory=dict)  # more XskConfig fields (tx_qid, ...)
    counters: np.ndarray = field(default=None)  # type: ignore[assignment]
    ctl: np.ndarray = field(default=None)  # type: ignore[assignment]
    proc: mp.Process | None = None

    def __post_init__(self) -> None:
        from cndp.apps import loops

        self.loops = loops
        self.counters = shared_array(loops.NCOUNTERS)
        self.ctl = shared_array(2)  # [stop, ready(1)/failed(2)]
        self._stats_r, self._stats_w = mp.get_context("fork").Pipe(duplex=False)
        self.stats: dict[str, int] = {}

    def _main(self) -> None:
        from cndp.mem.umem import Umem
        from cndp.xskdev.xskdev import XskConfig, XskDev

        ctl = self.ctl
        child_signals(lambda: ctl.__setitem__(0, 1))
        pin(self.cpu)
        loop = getattr(self.loops, RECV_LOOPS[self.mode])
        cfg = XskConfig(self.host.ifname, 0, rx_size=self.rx_size, **self.xsk)
        try:
            with (
                self.host.enter(),
                Umem(bufcnt=self.bufcnt or max(8192, 4 * self.rx_size), bufsz=2048) as umem,
                XskDev(cfg, umem) as dev,
            ):
                ctl[1] = 1
                loop(
                    dev,
                    lambda: ctl[0],
                    self.counters,
                    burst=self.burst,
                    idle_polls=self.idle_polls,
                )
                with contextlib.suppress(Exception):
                    self._stats_w.send(dev.stats())
        except CndpError as e:
            print(f"receiver: {e}", file=sys.stderr)
            ctl[1] = 2
            sys.exit(1)

    def start(self) -> None:
        self.proc = mp.get_context("fork").Process(target=self._main, daemon=True)
        self.proc.start()
        if not wait_for(lambda: self.ctl[1] != 0 or not self.proc.is_alive(), 10):
            raise RuntimeError("our receiver did not start within 10 s")
        if self.ctl[1] != 1:
            raise RuntimeError("our receiver failed to start (see above)")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def rx(self) -> int:
        return int(self.counters[self.loops.RX])

    def tx(self) -> int:
        return int(self.counters[self.loops.TX])

    def stop(self) -> None:
        self.ctl[0] = 1
        if self.proc is not None:
            if self._stats_r.poll(5):
                with contextlib.suppress(Exception):
                    self.stats = self._stats_r.recv()
            stop_process(self.proc)
            self.proc = None
        self._stats_r.close()
        self._stats_w.close()


# --------------------------------------------------------------------------------------------
# kernel programs


class XdpCounterProg:
    """A counting XDP program attached (native mode) to a host's veth: the kernel ceiling on
    B (XDP_DROP), and the sink for returning frames on A."""

    def __init__(self, host: netns.Host, name: str, action: int = progs.asm.XDP_DROP):
        self.host = host
        self.counter = progs.Counter()
        self.fd = -1
        try:
            self.fd = progs.load(name, progs.counting(action, self.counter.fd))
            with host.enter():
                xdp.attach(host.ifname, self.fd, xdp.XdpMode.DRV)
        except BaseException:
            self.close()
            raise

    def frames(self) -> int:
        return self.counter.read()[0]

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(CndpError), self.host.enter():
                xdp.detach(self.host.ifname)
            os.close(self.fd)
            self.fd = -1
        if self.counter.fd >= 0:
            self.counter.close()


def xdp_attached(host: netns.Host) -> xdp.Attached | None:
    with host.enter():
        return xdp.query(host.ifname)


def force_detach(host: netns.Host) -> str | None:
    """Detach whatever XDP program is left on ``host``'s veth; returns its name if any."""
    with host.enter():
        cur = xdp.query(host.ifname)
        if cur is None:
            return None
        with contextlib.suppress(CndpError):
            xdp.detach(host.ifname)
        return f"{cur.name or '?'} (id {cur.prog_id})"


# --------------------------------------------------------------------------------------------
# layouts


def apply_layout(host: netns.Host, layout: str, rx_cpu: int) -> list[int]:
    """Set the receiving veth's NAPI mode once its NAPI exists (an XDP program is attached).

    threaded: NAPI runs in kernel threads ``napi/<if>-<id>``, pinned here to ``rx_cpu`` (the
    receiver's CPU). softirq: threaded NAPI off, so the receive-side XDP and the copy into
    the UMEM run in the softirq of the sending CPU. Returns the NAPI thread pids (threaded).
    """
    if layout == "threaded":
        netns.set_threaded_napi(host, True)
        pids: list[int] = []
        for _ in range(50):
            pids = netns.napi_thread_pids(host)
            if pids:
                break
            time.sleep(0.02)
        if not pids:
            raise RuntimeError(f"no NAPI thread found for {host.ifname} after enabling it")
        for pid in pids:
            netns.pin_pid(pid, rx_cpu)
        return pids
    with contextlib.suppress(CndpError):
        netns.set_threaded_napi(host, False)
    return []


# --------------------------------------------------------------------------------------------
# veth statistics (the cross-check that every receiver is counted right)


def veth_stats(host: netns.Host) -> dict[str, int]:
    """``ethtool -S`` of the host's veth (rx_queue_0_xdp_redirect, ..._xdp_drops, ...)."""
    try:
        r = host.run(["ethtool", "-S", host.ifname], timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    out: dict[str, int] = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.strip().partition(":")
        if sep and v.strip().isdigit():
            out[k.strip()] = int(v)
    return out


def cpu_times() -> dict[int, list[int]]:
    """Per-CPU jiffies from /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    out: dict[int, list[int]] = {}
    with contextlib.suppress(OSError), open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                out[int(name[3:])] = [int(v) for v in vals]
    return out


PF_KTHREAD = 0x00200000


def process_cpu() -> dict[int, tuple[int, int, int, int]]:
    """pid -> (ppid, own CPU jiffies, reaped children's CPU jiffies, flags), every process."""
    out: dict[int, tuple[int, int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()  # fields after "(comm)"; rest[0] is state
        try:
            own = int(rest[11]) + int(rest[12])  # utime stime
            reaped = int(rest[13]) + int(rest[14])  # cutime cstime
            out[int(entry.name)] = (int(rest[1]), own, reaped, int(rest[6]))
        except (IndexError, ValueError):
            continue
    return out


def foreign_cpu_pct(p0: dict, p1: dict, seconds: float, root: int) -> tuple[float, list[str]]:
    """CPU used during a window by user processes that are not ``root`` or its descendants
    (other people's work on this machine), in per cent of one CPU, with the top names.

    A process's own time is counted as its change over the window. Children that exited
    during the window show up in their parent's reaped-children time; from that change we
    subtract what those children had already used at the start of the window (their whole
    life is added at once when they are reaped), so a long job ending mid-window does not
    count its whole past.
    """
    hz = os.sysconf("SC_CLK_TCK")
    zero = (0, 0, 0, 0)

    def ours(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == root:
                return True
            pid = p1.get(pid, p0.get(pid, zero))[0]
            seen += 1
        return False

    gone_by_parent: dict[int, int] = {}
    for pid, (ppid, own, reaped, _f) in p0.items():
        if pid not in p1:
            gone_by_parent[ppid] = gone_by_parent.get(ppid, 0) + own + reaped
    used: list[tuple[float, int]] = []
    for pid, (_ppid, own, reaped, flags) in p1.items():
        if flags & PF_KTHREAD or ours(pid):
            continue
        b = p0.get(pid)
        if b is None:
            d = own + reaped
        else:
            d = (own - b[1]) + max(0, reaped - b[2] - gone_by_parent.get(pid, 0))
        if d > 0:
            used.append((d / hz, pid))
    total = sum(u for u, _ in used)
    top = []
    for u, pid in sorted(used, reverse=True)[:3]:
        try:
            with open(f"/proc/{pid}/comm") as f:
                top.append(f"{f.read().strip()}({100 * u / seconds:.0f}%)")
        except OSError:
            top.append(f"pid {pid}")
    return 100.0 * total / seconds if seconds > 0 else 0.0, top


def steal_pct(t0: list[int] | None, t1: list[int] | None) -> float | None:
    if not t0 or not t1 or len(t0) < 8:
        return None
    total = sum(t1[:8]) - sum(t0[:8])
    return round(100.0 * (t1[7] - t0[7]) / total, 2) if total > 0 else None


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if k != "peer_ifindex"}
