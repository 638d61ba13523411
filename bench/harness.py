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
    """

    def __init__(self, host: netns.Host, frame: bytes, cpu: int, chunk: int = 50_000):
        self.host = host
        self.frame = frame
        self.cpu = cpu
        self.chunk = chunk
        self.ctl = shared_array(2)  # [state, ready]
        self.count = shared_array(1)
        self.proc: mp.Process | None = None

    def _main(self) -> None:
        ctl = self.ctl
        child_signals(lambda: ctl.__setitem__(0, GEN_EXIT))
        pin(self.cpu)
        try:
            with self.host.enter(), LiveFrameGen(self.host.ifname, self.frame) as gen:
                ctl[1] = 1
                while ctl[0] != GEN_EXIT:
                    if ctl[0] == GEN_RUN:
                        self.count[0] += gen.send(self.chunk).frames
                    else:
                        time.sleep(0.005)
        except CndpError as e:
            print(f"generator: {e}", file=sys.stderr)
            ctl[1] = 2
            sys.exit(1)

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
        self.ctl[0] = GEN_PAUSE
        time.sleep(0.05)  # let the chunk in flight finish

    def frames(self) -> int:
        return int(self.count[0])

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
    bufcnt: int = 8192
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
        try:
            with (
                self.host.enter(),
                Umem(bufcnt=self.bufcnt, bufsz=2048) as umem,
                XskDev(XskConfig(self.host.ifname, 0), umem) as dev,
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


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if k != "peer_ifindex"}
