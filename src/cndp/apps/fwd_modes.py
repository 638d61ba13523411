"""cndpfwd's forwarding modes: one poll loop per worker over the worker's lports.

Every loop costs a fixed number of numpy calls per burst, whatever the burst size.
``IO`` wraps one open lport (a pktdev ``Port`` or an ``XskDev``) with what the loops need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..mem import PktVec, gather, mac_swap, scatter
from ..net.frames import udp4_frame

DOWN = 0xFFFF  # PKTDEV_ADMIN_STATE_DOWN
BROADCAST = "ff:ff:ff:ff:ff:ff"
TXONLY_LEN = 60
ECHO = -1  # steering verdict: send back out of the ingress lport
DROP = -2  # steering verdict: free the frame


def _down(pv: Any = None, n: int | None = None) -> int:
    """The burst function of an lport that is admin down (as pktdev's)."""
    return DOWN


class ModeChange(Exception):
    """Raised out of a mode loop when the control side switched the mode (``/app/mode``)."""

    def __init__(self, mode: str):
        super().__init__(mode)
        self.mode = mode


class MacIndexSteer:
    """CNDP fwd: the last octet of the destination MAC names the egress lport; MACs swapped."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table  # 256 entries: lpid, or -1 (ECHO)

    def __call__(self, io: IO, pv: PktVec, k: int) -> np.ndarray:
        data = io.data
        a = pv.addr[:k]
        dst = self.table[data[a.view(np.intp) + 5]]
        mac_swap(data, a)
        return dst


@dataclass(eq=False)
class IO:
    name: str
    lpid: int
    port: Any
    umem: Any
    mac: bytes
    rx: Any = None
    tx: Any = None
    pool: Any = None
    data: np.ndarray | None = None
    copied: int = 0
    xfer_in: list = field(default_factory=list)  # DescRings whose frames this lport sends

    def __post_init__(self) -> None:
        self.rx = self.port.rx_burst
        self.tx = self.port.tx_burst
        self.pool = self.port.pool
        self.data = self.umem.data

    def send(self, pv: PktVec, n: int, free) -> int:
        """Transmit the first n packets; frames not taken go to ``free``."""
        s = self.tx(pv, n)
        if s == DOWN:
            s = 0
        if s < n:
            free(pv.addr[s:n])
        return s


class Loop:
    """State shared by the mode loops of one worker."""

    def __init__(
        self,
        ctx,
        ios: list[IO],
        burst: int,
        idle,
        *,
        dst_mac: str | None = None,
        route: dict | None = None,
        mode_cell: Any = None,
    ):
        self.ctx = ctx
        self.ios = ios
        self.burst = burst
        self.idle = idle
        self.stop = ctx.stop_flag
        self.pv = PktVec(burst)
        self.pv2 = PktVec(burst)
        self.dst_mac = dst_mac
        self.route = route or {}
        self._next_publish = 0.0
        self._ticks = 0  # publish() calls from the loops: one per 256 iterations
        self.mode = ""  # the mode running now (set by the worker)
        self.mode_cell = mode_cell  # telemetry.control.ModeCell: /app/mode switches
        self._port_epoch = 0

    def publish(self, force: bool = False) -> None:
        if not force:
            self._ticks += 1
        now = time.monotonic()
        if force or now >= self._next_publish:
            self.ctx.publish({"loops": self._ticks << 8, **self.idle.stats()})
            self._next_publish = now + 0.25
            if getattr(self.ctx, "port_epoch", 0) != self._port_epoch:
                self._apply_admin()
            if self.mode_cell is not None and not force:
                new = self.mode_cell.changed(self.mode)
                if new is not None:
                    raise ModeChange(new)  # between bursts: every frame was sent or freed

    def _apply_admin(self) -> None:
        """An lport went admin down (bursts return DOWN) or up again (the port's own)."""
        self._port_epoch = self.ctx.port_epoch
        for io in self.ios:
            up = self.ctx.admin_up(io.name)
            io.rx = io.port.rx_burst if up else _down
            io.tx = io.port.tx_burst if up else _down

    # -------------------------------------------------------------------- modes
    def drop(self) -> None:
        pv, burst, ios, idle, stop = self.pv, self.burst, self.ios, self.idle, self.stop
        it = 0
        while not stop[0]:
            got = 0
            for io in ios:
                k = io.rx(pv, burst)
                if k and k != DOWN:
                    io.pool.put_bulk(pv.addr[:k])
                    got += k
            idle.process(got)
            it += 1
            if not it & 255:
                self.publish()

    def loopback(self) -> None:
        pv, burst, ios, idle, stop = self.pv, self.burst, self.ios, self.idle, self.stop
        it = 0
        while not stop[0]:
            got = 0
            for io in ios:
                k = io.rx(pv, burst)
                if k and k != DOWN:
                    mac_swap(io.data, pv.addr[:k])
                    io.send(pv, k, io.pool.put_bulk)
                    got += k
                else:
                    io.tx(pv, 0)  # reap completions, kick what is queued
            idle.process(got)
            it += 1
            if not it & 255:
                self.publish()

    def _templates(self) -> dict[IO, np.ndarray]:
        rows = {}
        for io in self.ios:
            f = udp4_frame(io.mac, self.dst_mac or BROADCAST, size=TXONLY_LEN)
            rows[io] = np.tile(np.frombuffer(f, np.uint8), (self.burst, 1))
        return rows

    def tx_only(self, with_rx: bool = False) -> None:
        pv, burst, ios, stop = self.pv, self.burst, self.ios, self.stop
        rxv = self.pv2
        rows = self._templates()
        it = 0
        while not stop[0]:
            for io in ios:
                pv.n = 0
                k = pv.alloc_from(io.pool, burst)
                if k:
                    scatter(io.data, pv.addr[:k], rows[io][:k])
                    pv.data_len[:k] = TXONLY_LEN
                    io.send(pv, k, io.pool.put_bulk)
                else:
                    io.tx(pv, 0)  # every frame is in flight: reap completions
                if with_rx:
                    r = io.rx(rxv, burst)
                    if r and r != DOWN:
                        io.pool.put_bulk(rxv.addr[:r])
            it += 1
            if not it & 255:
                self.publish()

    def fwd(self, decide=None) -> None:
        """Steer each packet to an lport. ``decide(io, pv, k)`` returns one int per packet:
        an lpid, ECHO (back out of the ingress lport) or DROP; it rewrites headers itself.
        Without one, CNDP's fwd: destination lport = last octet of the destination MAC (its
        index in the config), no such lport: ECHO; MACs are swapped."""
        pv, pv2, burst, ios, idle, stop = (
            self.pv,
            self.pv2,
            self.burst,
            self.ios,
            self.idle,
            self.stop,
        )
        if decide is None:
            decide = MacIndexSteer(self.route["table"])
        local = self.route["local"]  # lpid -> IO of this worker
        remote = self.route["remote"]  # lpid -> DescRing towards its owner
        routers = self.route["routers"]
        inbound = [(io, ring) for io in ios for ring in io.xfer_in]
        it = 0
        while not stop[0]:
            got = 0
            for io in ios:
                k = io.rx(pv, burst)
                if not k or k == DOWN:
                    io.tx(pv, 0)
                    continue
                got += k
                dst = decide(io, pv, k)
                first = int(dst[0])
                if (dst == first).all():
                    if first == DROP:
                        io.pool.put_bulk(pv.addr[:k])
                    else:
                        self._deliver(io, first if first >= 0 else io.lpid, pv, k, local, remote)
                    continue
                dropped = dst == DROP
                if dropped.any():
                    io.pool.put_bulk(pv.addr[:k][dropped])
                dst = np.where(dst == ECHO, io.lpid, dst)
                for t in np.unique(dst).tolist():  # a loop over lports, not packets
                    if t == DROP:
                        continue
                    pv.select(dst == t, out=pv2)
                    self._deliver(io, t, pv2, pv2.n, local, remote)
            for io, ring in inbound:  # bursts other workers routed to our lports
                n = ring.pop(pv.addr, pv.data_len, burst)
                if n:
                    pv.n = n
                    io.send(pv, n, io.pool.put_bulk)
                    got += n
            for r in routers:
                r.drain()
            idle.process(got)
            it += 1
            if not it & 255:
                self.publish()

    def _deliver(self, src: IO, t: int, pv: PktVec, n: int, local, remote) -> None:
        dst = local.get(t)
        if dst is not None:
            if dst.umem is not src.umem:
                self._copy_send(src, dst, pv, n)
            else:
                dst.send(pv, n, src.pool.put_bulk)
            return
        ring = remote.get(t)
        if ring is None:  # another worker's lport in another UMEM: back out of the ingress
            src.send(pv, n, src.pool.put_bulk)
            return
        s = ring.push(pv.addr[:n], pv.data_len[:n])
        if s < n:
            src.pool.put_bulk(pv.addr[s:n])

    def _copy_send(self, src: IO, dst: IO, pv: PktVec, n: int) -> None:
        """Frames must be in the sending socket's UMEM: copy the burst (CNDP's tx_copied)."""
        out = self.pv2 if pv is not self.pv2 else PktVec(self.burst)
        out.n = 0
        m = out.alloc_from(dst.pool, n)
        if m:
            length = int(pv.data_len[:m].max())
            scatter(dst.data, out.addr[:m], gather(src.data, pv.addr[:m], length))
            out.data_len[:m] = pv.data_len[:m]
            dst.copied += m
            dst.send(out, m, dst.pool.put_bulk)
        src.pool.put_bulk(pv.addr[:n])
