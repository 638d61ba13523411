"""A line-rate frame generator: BPF_PROG_RUN in live-frames mode.

AF_XDP transmit in copy mode builds one kernel buffer per frame and tops out near 1 Mpps on
veth. The kernel's live-frames test-run mode (as xdp-trafficgen uses) instead runs an XDP
program ``repeat`` times on a page-pool frame and carries out its verdict for real: our
program returns XDP_TX, so each run transmits the frame out of ``ifname`` (into the veth peer).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import struct
import time
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import CndpError
from ..sys import bpf as sysbpf
from . import asm, progs
from .xdp import XdpMode, attach, resolve_ifindex

log = logging.getLogger("cndp.trafficgen")
_park_ids = itertools.count()


@dataclass
class GenResult:
    frames: int
    seconds: float

    @property
    def pps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class LiveFrameGen:
    """Transmit copies of one frame out of ``ifname`` (must be called in its namespace)."""

    def __init__(
        self,
        ifname: str,
        frame: bytes,
        *,
        batch_size: int = 64,
        park: bool = True,
        prog_fd: int | None = None,
    ):
        """``prog_fd``: run this XDP program instead of a plain XDP_TX one (the caller keeps
        owning it; txgen's range-rewriting program comes this way)."""
        if len(frame) < 14:
            raise ValueError("a frame needs at least an Ethernet header (14 bytes)")
        self.ifindex = resolve_ifindex(ifname)
        self.frame = frame
        self.batch_size = batch_size
        self._own_fd = prog_fd is None
        self.fd = progs.load("gen_tx", progs.verdict(asm.XDP_TX)) if prog_fd is None else prog_fd
        # struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress
        # data_end must equal the frame length or the kernel refuses the context
        self.ctx = struct.pack("6I", 0, len(frame), 0, self.ifindex, 0, 0)
        self.parked: str | None = None
        if park:
            try:
                self._park()
            except BaseException:
                self.close()
                raise

    def _park(self) -> None:
        """Hold the program in the XDP dispatcher: attach it to an unused veth."""
        name = f"cndpgen{os.getpid() & 0xFFFF:04x}{next(_park_ids) % 16:x}"
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname=name + "a", kind="veth", peer={"ifname": name + "b"})
                self.parked = name + "a"
            attach(self.parked, self.fd, XdpMode.DRV)
        except (NetlinkError, CndpError) as e:
            # still works, at ~25 ms per call: callers should then send large chunks
            log.warning(
                "live-frames generator: cannot park its program (%s); each call will wait ~25 ms", e
            )
            self._unpark()

    def _unpark(self) -> None:
        if self.parked is None:
            return
        with contextlib.suppress(NetlinkError, OSError), IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=self.parked)
            if idx:
                ipr.link("del", index=idx[0])  # the peer and the attachment go with it
        self.parked = None

    def send(self, count: int) -> GenResult:
        """Send ``count`` frames (blocks until done)."""
        t0 = time.perf_counter()
        done = 0
        while done < count:
            n = min(count - done, 1 << 24)
            sysbpf.prog_test_run(
                self.fd,
                self.frame,
                repeat=n,
                ctx=self.ctx,
                flags=sysbpf.F_TEST_XDP_LIVE_FRAMES,
                batch_size=self.batch_size,
            )
            done += n
        return GenResult(done, time.perf_counter() - t0)

    def run_for(self, seconds: float, chunk: int = 200_000, stop=None) -> GenResult:
        """Send for about ``seconds`` (in chunks, so it stays responsive to ``stop()``)."""
        t0 = time.perf_counter()
        end = t0 + seconds
        done = 0
        while time.perf_counter() < end and not (stop and stop()):
            sysbpf.prog_test_run(
                self.fd,
                self.frame,
                repeat=chunk,
                ctx=self.ctx,
                flags=sysbpf.F_TEST_XDP_LIVE_FRAMES,
                batch_size=self.batch_size,
            )
            done += chunk
        return GenResult(done, time.perf_counter() - t0)

    def close(self) -> None:
        self._unpark()
        if self.fd >= 0 and self._own_fd:
            sysbpf.close(self.fd)
        self.fd = -1

    def __enter__(self) -> LiveFrameGen:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
