"""A txgen worker process: the transmit and receive loops of its lports.

One worker per ``rxtx``/``tx_only``/``rx_only`` thread of the configuration (forked by
:class:`cndp.app.runtime.Runtime`, pinned to its lcore group). The loop, per iteration:
check the mailbox word (control messages from the main process wait on a pipe), let every
running transmitter send what its token bucket allows, receive one burst per port, publish
counters every 50 ms, and sleep in ``poll()`` on the receive sockets when there is nothing
due (so an arriving frame wakes it at once and latency is measured without a sleep's delay).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ...errors import CndpError
from .board import Board
from .engine import CopyEngine, LiveTx, PcapSource, RxPort, TxPort, XskBlockEngine, publish_port
from .state import PortDesc
from .stream import FCS_LEN, FrameSource, PortSettings, TxgenError

log = logging.getLogger("cndp.txgen")

PUBLISH_NS = 50_000_000
SPIN_NS = 300_000  # waits shorter than this spin instead of sleeping in poll()
IDLE_MS = 20


@dataclass
class Shared:
    """What the main process hands every worker (inherited through fork)."""

    board: Board
    conns: dict[str, Any]  # worker name -> its end of the control pipe
    mailbox_index: dict[str, int]
    descs: dict[int, PortDesc]
    settings: dict[int, dict]  # lpid -> PortSettings.to_dict() at start
    roles: dict[str, tuple[bool, bool]]  # worker name -> (transmits, receives)
    capture_limit: int = 1_000_000
    capture_dir: str = "."
    extra: dict = field(default_factory=dict)


def target_pps(s: PortSettings, desc: PortDesc, source) -> float:
    """Packets per second for the token bucket (0: as fast as the engine goes)."""
    if s.pps > 0:
        return float(s.pps)
    if s.rate >= 100.0:
        return 0.0
    if isinstance(source, PcapSource):
        size = source.total_bytes / source.nframes + FCS_LEN
        return s.rate / 100.0 * desc.link_bps / ((size + 20) * 8)
    return s.pps_for(desc.link_bps)


def make_engine(port, desc: PortDesc, s: PortSettings, lpid: int):
    """The engine and source for a port's settings."""
    if s.pcap_mode:
        source = PcapSource(s.pcap_file, desc.max_frame)
    else:
        source = FrameSource(s, stream_id=lpid)
    if s.engine == "live":
        eng = LiveTx(desc.netdev, source)
    elif getattr(port, "pmd_name", "") == "net_af_xdp":
        eng = XskBlockEngine(port, source)
    else:
        eng = CopyEngine(port, source)
    return eng, source


class Worker:
    def __init__(self, ctx, shared: Shared) -> None:
        self.ctx = ctx
        self.sh = shared
        self.board = shared.board
        name = ctx.spec.name
        self.conn = shared.conns[name]
        self.mi = shared.mailbox_index[name]
        self.seen = int(self.board.mailbox[self.mi])
        transmits, receives = shared.roles[name]
        self.ports: dict[int, Any] = {}
        self.settings: dict[int, PortSettings] = {}
        self.tx: dict[int, TxPort] = {}
        self.tx_ok: set[int] = set()
        self.rx: dict[int, RxPort] = {}
        for lname in ctx.spec.lports:
            lpid = ctx.lpids[lname]
            port = ctx.ports[lname]
            self.ports[lpid] = port
            self.settings[lpid] = PortSettings.from_dict(shared.settings[lpid])
            if transmits:
                self.tx_ok.add(lpid)
            if receives:
                self.rx[lpid] = RxPort(lpid, port, self.board)
        self.poller = select.poll()
        for lpid in self.rx:
            fd = self.ports[lpid].fileno()
            if fd is not None:
                self.poller.register(fd, select.POLLIN)
        self.active: list[TxPort] = []

    # ----------------------------------------------------------------------------- control
    def _tx_for(self, lpid: int) -> TxPort:
        tx = self.tx.get(lpid)
        s = self.settings[lpid]
        if tx is None:
            eng, src = make_engine(self.ports[lpid], self.sh.descs[lpid], s, lpid)
            tx = TxPort(
                lpid,
                eng,
                pps=target_pps(s, self.sh.descs[lpid], src),
                count=s.count,
                burst=s.burst,
            )
            tx.source = src
            self.tx[lpid] = tx
        return tx

    def _apply_settings(self, lpid: int, d: dict) -> None:
        s = PortSettings.from_dict(d)
        old = self.settings[lpid]
        self.settings[lpid] = s
        tx = self.tx.get(lpid)
        if tx is None:
            return
        desc = self.sh.descs[lpid]
        rebuild = _frames_differ(old, s)
        try:
            if rebuild:
                eng, src = make_engine(self.ports[lpid], desc, s, lpid)
                tx.replace_engine(eng)
                tx.source = src
            tx.configure(pps=target_pps(s, desc, tx.source), count=s.count, burst=s.burst)
        except BaseException:
            # the old engine is gone or unusable: drop the port's transmitter entirely
            self.settings[lpid] = s
            self._drop_tx(lpid)
            raise

    def _drop_tx(self, lpid: int) -> None:
        tx = self.tx.pop(lpid, None)
        if tx is not None:
            if tx in self.active:
                self.active.remove(tx)
            with contextlib.suppress(Exception):
                tx.close()

    def _start(self, lpid: int) -> str:
        if lpid not in self.tx_ok:
            raise TxgenError(f"port {lpid} is on a receive-only thread: it does not transmit")
        tx = self._tx_for(lpid)
        tx.start(time.monotonic_ns())
        if tx not in self.active:
            self.active.append(tx)
        return ""

    def _stop(self, lpid: int) -> str:
        tx = self.tx.get(lpid)
        if tx is not None:
            tx.stop()
            if tx in self.active:
                self.active.remove(tx)
            tx.engine.flush()
        return ""

    def _clear(self, lpid: int) -> str:
        tx = self.tx.get(lpid)
        if tx is not None:
            tx.reset()
        rx = self.rx.get(lpid)
        if rx is not None:
            rx.reset()
        with contextlib.suppress(Exception):
            self.ports[lpid].reset_stats()
        return ""

    def _capture(self, lpid: int, path: str | None) -> str:
        from .engine import Capture

        rx = self.rx.get(lpid)
        if rx is None:
            raise TxgenError(f"port {lpid} does not receive (it is on a transmit-only thread)")
        if path is None:
            if rx.capture is None:
                return f"port {lpid}: no capture running"
            c = rx.capture
            rx.close()
            return f"port {lpid}: {c.count} frame(s) captured to {c.path}"
        if rx.capture is not None:
            raise TxgenError(f"port {lpid} is already capturing to {rx.capture.path}")
        if not path:
            name = self.sh.descs[lpid].name.replace(":", "-").replace("/", "-")
            path = os.path.join(self.sh.capture_dir, f"txgen-{name}.pcap")
        rx.capture = Capture(path, self.sh.capture_limit)
        return f"port {lpid}: capturing to {path}"

    def handle_messages(self) -> None:
        self.seen = int(self.board.mailbox[self.mi])
        while self.conn.poll():
            try:
                mid, op, lpid, arg = self.conn.recv()
            except (EOFError, OSError):
                self.ctx.stop_flag[0] = 1
                return
            ok, text = True, ""
            try:
                if op == "settings":
                    self._apply_settings(lpid, arg)
                elif op == "start":
                    text = self._start(lpid)
                elif op == "stop":
                    text = self._stop(lpid)
                elif op == "clear":
                    text = self._clear(lpid)
                elif op == "capture":
                    text = self._capture(lpid, arg)
                elif op == "publish":
                    pass
                else:
                    raise TxgenError(f"unknown control message {op!r}")
            except CndpError as e:
                ok, text = False, str(e)
            except Exception as e:  # a bug: report it to the CLI instead of killing the worker
                ok, text = False, f"internal error: {e!r}"
                log.error("worker %s: %s", self.ctx.spec.name, traceback.format_exc())
            self.publish(time.monotonic_ns())
            try:
                self.conn.send((mid, ok, text))
            except (OSError, BrokenPipeError):
                self.ctx.stop_flag[0] = 1
                return

    # ----------------------------------------------------------------------------- loop
    def publish(self, now: int) -> None:
        # the runtime's publish: the drivers' lport_stats into its registry (telemetry,
        # exporter), and its control requests (log level, pause)
        try:
            self.ctx.publish()
        except Exception as e:  # a port that cannot report must not stop the generator
            log.debug("worker %s: publish: %s", self.ctx.spec.name, e)
        for lpid in self.ports:
            try:
                stats = self.ctx.stats.read(lpid)
            except Exception:
                stats = None
            publish_port(self.board, lpid, self.tx.get(lpid), self.rx.get(lpid), stats)
        self.next_pub = now + PUBLISH_NS

    def run(self) -> None:
        stop = self.ctx.stop_flag
        mailbox = self.board.mailbox
        mi = self.mi
        rxs = list(self.rx.values())
        self.publish(time.monotonic_ns())
        clock = time.monotonic_ns
        poll = self.poller.poll
        while not stop[0]:
            if mailbox[mi] != self.seen:
                self.handle_messages()
            now = clock()
            did = 0
            active = self.active
            for tx in active:
                did += tx.step(now)
            for rx in rxs:
                did += rx.step()
            if active and not all(t.running for t in active):
                for t in active:
                    if not t.running:
                        t.engine.flush()  # the count is sent: push out what is queued
                self.active = [t for t in active if t.running]
            if now >= self.next_pub:
                self.publish(now)
            if did:
                continue
            wait = IDLE_MS * 1_000_000
            for tx in self.active:
                w = tx.wait_ns()
                if w < wait:
                    wait = w
            if wait < SPIN_NS:
                continue
            poll(min(wait // 1_000_000, IDLE_MS))

    def close(self) -> None:
        now = time.monotonic_ns()
        for tx in self.tx.values():
            tx.stop()
        with contextlib.suppress(Exception):
            self.publish(now)
        for tx in list(self.tx.values()):
            with contextlib.suppress(Exception):
                tx.close()
        for rx in self.rx.values():
            with contextlib.suppress(Exception):
                rx.close()


def _frames_differ(a: PortSettings, b: PortSettings) -> bool:
    """Whether a settings change needs new frames (not just a new rate/count/burst)."""
    da, db = a.to_dict(), b.to_dict()
    for k in ("count", "rate", "pps", "burst"):
        da.pop(k)
        db.pop(k)
    return da != db


def worker_main(ctx) -> None:
    shared: Shared = ctx.extra["txgen"]
    w = Worker(ctx, shared)
    try:
        w.run()
    finally:
        w.close()
