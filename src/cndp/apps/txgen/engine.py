"""txgen's transmit engines and receiver, run inside a worker process.

Transmit engines (``send(k, q0, ts_ns) -> frames queued``; ``q0`` is the stream sequence
number of the first frame):

- :class:`XskBlockEngine` (``net_af_xdp`` lports): takes a block of UMEM frames out of the
  port's pool for good and cycles through it. Frame content is written only when it changes:
  a stream whose period divides the block is written once, and each burst then writes just
  the 12-byte stamp of each frame (sequence, timestamp, balance word: the L4 checksum stays
  valid without an update, see :class:`.stream.Stamper`). Completed frames
  are not returned to the pool (the socket's free sink discards them); a slot is reused only
  once the kernel completed it (completions arrive in order).
- :class:`CopyEngine` (any other pktdev lport, e.g. ``net_af_packet``): allocates frames
  from the pool per burst and copies the stream's rows into them.
- :class:`LiveTx`: the kernel's XDP live-frames mode, through ``engine_live.LiveEngine``.

:class:`TxPort` wraps an engine with the token bucket (rate), the count and the counters;
:class:`RxPort` receives, counts, decodes stamps (loss, reordering, latency per stream) and
captures to pcap. Every step costs a fixed number of numpy calls per burst.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from pathlib import Path

import numpy as np

from ...mem import PktVec
from ...mem.pktvec import window
from ...net.pcap import LINKTYPE_ETHERNET, PcapError, load_frames
from .board import LAT_MIN_INIT, NB_HIST, PK, SK, Board, hist_bucket
from .stream import (
    STAMP_DTYPE,
    STAMP_LEN,
    STAMP_MAGIC,
    TS_MASK,
    FrameSource,
    Rows,
    Stamper,
    TxgenError,
)

log = logging.getLogger("cndp.txgen")

DOWN = 0xFFFF  # PKTDEV_ADMIN_STATE_DOWN
RX_BURST = 256
BLOCK_FRAMES = 4096
LIVE_CHUNK = 16384  # frames per live-frames call when the rate allows (a few ms)


# --------------------------------------------------------------------------------------------
# pcap replay source


class PcapSource:
    """A pcap file's frames, replayed in order and looped: ``rows(q0, k)`` gives file frames
    ``q0 mod N ...`` as a window gather over the file's flat bytes (rows hold the next
    frame's bytes past their own length; only ``lengths`` bytes are sent)."""

    stamped = False

    def __init__(self, path: str | Path, max_len: int) -> None:
        try:
            pf = load_frames(path)
        except PcapError as e:
            raise TxgenError(str(e)) from None
        if pf.linktype != LINKTYPE_ETHERNET:
            raise TxgenError(
                f"pcap file {str(path)!r} has link type {pf.linktype}, not Ethernet (1)",
                fix="replay an Ethernet capture",
            )
        if len(pf) == 0:
            raise TxgenError(f"pcap file {str(path)!r} holds no frames")
        mx = int(pf.lengths.max())
        if mx > max_len:
            raise TxgenError(
                f"pcap file {str(path)!r} has a frame of {mx} bytes; the port sends at most "
                f"{max_len}",
                fix="use a larger UMEM frame size (bufsz) or trim the capture",
            )
        mn = int(pf.lengths.min())
        if mn < 14:
            raise TxgenError(f"pcap file {str(path)!r} has a frame of {mn} bytes (< 14)")
        self.path = str(path)
        self.nframes = len(pf)
        self.width = mx
        self.period = len(pf)
        self.total_bytes = int(pf.lengths.sum())
        self._flat = np.concatenate([pf.data, np.zeros(mx, np.uint8)])
        self._offs = pf.offsets.astype(np.intp)
        self._lens = pf.lengths.astype(np.int64)

    def rows(self, q0: int, k: int) -> Rows:
        idx = np.arange(q0, q0 + k, dtype=np.int64) % self.period
        data = window(self._flat, self.width)[self._offs[idx]]
        return Rows(data.view(np.uint8).reshape(k, self.width), self._lens[idx])


# --------------------------------------------------------------------------------------------
# transmit engines


class XskBlockEngine:
    """AF_XDP transmit from a private, cycled block of UMEM frames (see module docstring)."""

    max_chunk = 256

    def __init__(self, port, source, *, block: int = BLOCK_FRAMES) -> None:
        self.port = port
        self.dev = port.dev
        self.source = source
        self.data = port.umem.data
        pool = port.pool
        bufsz = pool.bufsz
        room = bufsz - 256
        if source.width > room:
            raise TxgenError(
                f"frames of {source.width} bytes do not fit the UMEM frames "
                f"({bufsz} bytes, {room} after headroom)",
                fix="use a smaller size or a UMEM with bufsz 4 (4096 bytes)",
            )
        want = max(block, 2 * self.dev.tx_size)
        period = source.period
        if period and period <= want:
            want = period * -(-want // period)  # a multiple of the period: static content
        # keep at least half the pool for RX (fill ring)
        avail = pool.avail
        m = min(want, avail // 2)
        if period and m < want and period <= m:
            m -= m % period
        if m < self.dev.tx_size // 2 or m < 64:
            raise TxgenError(
                f"lport {port.name!r}: only {avail} free UMEM frames; the transmit block "
                f"needs {min(want, 2 * self.dev.tx_size)}",
                fix="give the lport's umem region more buffers",
            )
        got = pool.get_bulk(m)
        frames = got - got % np.uint64(bufsz)
        self.pool = pool
        self.block = got
        self.m = m
        self.slot_addr = frames + np.uint64(256)
        self.slot_i = self.slot_addr.view(np.intp)
        self.static = bool(period) and m % period == 0
        self.cursor = 0
        self.bytes = 0
        self.pv = PktVec(self.max_chunk)
        self.dev.set_free_sink(_discard)
        self.width = source.width
        self.win = window(self.data, self.width)
        self.stamper = Stamper(self.max_chunk) if source.stamped else None
        if self.static:
            rows = source.rows(0, m)
            self.win[self.slot_i] = rows.data.view(f"V{self.width}").reshape(m)
            self.slot_len = rows.lengths.astype(np.uint16)
            # where each slot's stamp goes (fixed: the slot always holds the same frame)
            self.slot_stamp = self.slot_i + (rows.lengths.astype(np.intp) - STAMP_LEN)
        self.w12 = window(self.data, 12)

    def send(self, k: int, q0: int, ts_ns: int) -> int:
        s0 = self.cursor
        m = self.m
        if k > m - s0:
            k = m - s0  # no wrap inside one burst
        if k > self.max_chunk:
            k = self.max_chunk
        dev = self.dev
        stamped = self.source.stamped
        # slots about to be rewritten must be back from the kernel
        if (not self.static or stamped) and dev.in_flight() + k > m:
            dev.reap()
            free = m - dev.in_flight()
            if free <= 0:
                dev.tx_burst(self.pv, 0)  # kick
                return 0
            k = min(k, free)
        sl = slice(s0, s0 + k)
        if self.static:
            lens = self.slot_len[sl]
            if stamped:
                self.w12[self.slot_stamp[sl]] = self.stamper.fill(k, q0 + 1, ts_ns)
        else:
            addr_i = self.slot_i[sl]
            rows = self.source.rows(q0, k)
            self.win[addr_i] = rows.data.view(f"V{self.width}").reshape(k)
            lens = rows.lengths
            if stamped:
                at = addr_i + (lens.astype(np.intp) - STAMP_LEN)
                self.w12[at] = self.stamper.fill(k, q0 + 1, ts_ns)
        pv = self.pv
        pv.addr[:k] = self.slot_addr[sl]
        pv.data_len[:k] = lens
        pv.n = k
        sent = dev.tx_burst(pv, k)
        if sent == DOWN:
            return 0
        if sent:
            self.cursor = (s0 + sent) % m
            self.bytes += int(pv.data_len[:sent].sum())
            # copy mode sends at most 32 frames per kick: kick while the ring drains, so
            # frames do not wait in it (latency) for later bursts
            tx = dev.tx
            p = tx.pending()
            while p:
                dev.kick()
                q = tx.pending()
                if q >= p:
                    break
                p = q
        return sent

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.dev.flush(0.2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.dev.flush(0.5)
        self.dev.set_free_sink(self.pool.put_bulk)
        if self.block is not None:
            self.pool.put_bulk(self.block)
            self.block = None


def _discard(addrs: np.ndarray) -> None:
    """Completed frames of a transmit block stay with the block."""


class CopyEngine:
    """Transmit through any pktdev port: pool frames, rows copied in per burst."""

    max_chunk = 256

    def __init__(self, port, source) -> None:
        self.port = port
        self.source = source
        self.pool = port.pool
        if self.pool is None or port.umem is None:
            raise TxgenError(f"lport {port.name!r} has no packet memory to build frames in")
        self.data = port.umem.data
        room = self.pool.bufsz - 256
        if source.width > room:
            raise TxgenError(
                f"frames of {source.width} bytes do not fit the UMEM frames "
                f"({self.pool.bufsz} bytes, {room} after headroom)",
                fix="use a smaller size or a UMEM with bufsz 4 (4096 bytes)",
            )
        self.width = source.width
        self.pv = PktVec(self.max_chunk)
        self.bytes = 0
        self.stamper = Stamper(self.max_chunk) if source.stamped else None

    def send(self, k: int, q0: int, ts_ns: int) -> int:
        pv = self.pv
        pv.n = 0
        if k > self.max_chunk:
            k = self.max_chunk
        got = pv.alloc_from(self.pool, k)
        if not got:
            self.port.tx_burst(pv, 0)  # reap completions
            return 0
        rows = self.source.rows(q0, got)
        addr_i = pv.addr[:got].view(np.intp)
        window(self.data, self.width)[addr_i] = rows.data.view(f"V{self.width}").reshape(got)
        if self.stamper is not None:
            at = addr_i + (rows.lengths.astype(np.intp) - STAMP_LEN)
            window(self.data, 12)[at] = self.stamper.fill(got, q0 + 1, ts_ns)
        pv.data_len[:got] = rows.lengths
        sent = self.port.tx_burst(pv, got)
        if sent == DOWN:
            sent = 0
        if sent < got:
            self.pool.put_bulk(pv.addr[sent:got])
        if sent:
            self.bytes += int(rows.lengths[:sent].sum())
        return sent

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.port.flush(0.2)

    def close(self) -> None:
        self.flush()


class LiveTx:
    """The live-frames engine (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES) on a netdev."""

    max_chunk = LIVE_CHUNK

    def __init__(self, ifname: str, source) -> None:
        if not isinstance(source, FrameSource):
            raise TxgenError(
                "the live engine sends a template stream, not a pcap replay",
                fix="use engine port for pcap replay",
            )
        try:
            from .engine_live import LiveEngine, LiveRange
        except ImportError as e:
            raise TxgenError(
                f"the live-frames engine is not available in this build ({e})",
                fix="use engine port",
            ) from None
        ranges = [
            LiveRange(offset=o, width=w, start=s, min=lo, max=hi, inc=inc)
            for o, w, s, lo, hi, inc in source.live_ranges()
        ]
        frame = source.first_frame()
        self.eng = LiveEngine(ifname, frame, ranges)
        self.source = source
        self.frame_len = len(frame)
        self.bytes = 0

    def send(self, k: int, q0: int, ts_ns: int) -> int:
        sent = int(self.eng.send(k))
        self.bytes += sent * self.frame_len
        return sent

    def flush(self) -> None:
        pass  # live frames are transmitted before send() returns

    def close(self) -> None:
        self.eng.close()


# --------------------------------------------------------------------------------------------
# one transmitting port


class TxPort:
    """Rate (token bucket), count and counters around an engine."""

    def __init__(self, lpid: int, engine, *, pps: float, count: int, burst: int) -> None:
        self.lpid = lpid
        self.engine = engine
        self.source = getattr(engine, "source", None)
        self.tokens = 0.0
        self.last = 0
        self.running = False
        self.done = False
        self.q = 0  # next sequence number of the stream
        self.run_sent = 0  # frames sent since the last start (for count)
        self.pkts = 0
        self.bytes_base = 0
        self.first_ns = 0
        self.first_k = 0
        self.last_ns = 0
        self.configure(pps=pps, count=count, burst=burst)

    def configure(self, *, pps: float, count: int, burst: int) -> None:
        engine = self.engine
        self.rate = float(pps) if pps and pps > 0 else 0.0  # 0: as fast as possible
        self.count = int(count)
        burst = max(1, int(burst))
        if engine.max_chunk > 1024:
            # live frames: one call sends up to ~2 ms of frames (each call has a fixed cost)
            want = int(self.rate * 0.002) if self.rate else engine.max_chunk
            self.chunk = max(burst, min(engine.max_chunk, want))
        else:
            self.chunk = min(burst, engine.max_chunk)
        # tokens kept at most: 100 ms worth, so a stall (a busy CPU) is caught up with a
        # burst and the average rate holds; a longer stall is not caught up
        self.cap = max(float(self.chunk), self.rate * 0.1)
        if self.tokens > self.cap:
            self.tokens = self.cap

    def replace_engine(self, engine) -> None:
        """Swap in a new engine (settings changed); counters carry on."""
        total = self.bytes
        self.engine.close()
        self.engine = engine
        self.bytes_base = engine.bytes - total
        self.q = 0

    @property
    def bytes(self) -> int:
        return self.engine.bytes - self.bytes_base

    def reset(self) -> None:
        self.pkts = 0
        self.bytes_base = self.engine.bytes
        self.first_ns = self.last_ns = 0

    def start(self, now: int) -> None:
        self.running = True
        self.done = False
        self.tokens = 0.0
        self.last = now
        self.run_sent = 0

    def stop(self) -> None:
        self.running = False

    def step(self, now: int) -> int:
        if self.rate:
            t = self.tokens + (now - self.last) * self.rate * 1e-9
            self.last = now
            if t > self.cap:
                t = self.cap
            self.tokens = t
            if t < 1.0:
                return 0
            k = int(t)
            if k > self.chunk:
                k = self.chunk
        else:
            k = self.chunk
        if self.count:
            left = self.count - self.run_sent
            if left < k:
                k = left
        sent = self.engine.send(k, self.q, now)
        if sent:
            if not self.pkts:
                self.first_ns = now
                self.first_k = sent
            self.last_ns = now
            self.q += sent
            self.pkts += sent
            self.run_sent += sent
            if self.rate:
                self.tokens -= sent
        if self.count and self.run_sent >= self.count:
            self.running = False
            self.done = True
        return sent

    def wait_ns(self) -> int:
        """Nanoseconds until the next frame is due (0: now)."""
        if not self.rate or self.tokens >= 1.0:
            return 0
        return int((1.0 - self.tokens) / self.rate * 1e9)

    def close(self) -> None:
        self.engine.close()


# --------------------------------------------------------------------------------------------
# receiving


_PCAP_HDR = struct.Struct("IHHiIII")


class Capture:
    """Received frames to a pcap file, a burst per write (vectorised record building)."""

    def __init__(self, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.count = 0
        try:
            self.f = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise TxgenError(f"cannot write capture file {path!r}: {e.strerror}") from None
        self.f.write(_PCAP_HDR.pack(0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))

    def write(self, data: np.ndarray, addr: np.ndarray, lens: np.ndarray, now_ns: int) -> None:
        k = min(len(lens), self.limit - self.count)
        if k <= 0:
            return
        lens = lens[:k].astype(np.int64)
        mx = int(lens.max())
        rows = window(data, mx)[addr[:k].view(np.intp)].view(np.uint8).reshape(k, mx)
        hdr = np.empty((k, 4), dtype="<u4")
        hdr[:, 0] = now_ns // 1_000_000_000
        hdr[:, 1] = now_ns % 1_000_000_000
        hdr[:, 2] = lens
        hdr[:, 3] = lens
        out = np.concatenate([hdr.view(np.uint8).reshape(k, 16), rows], axis=1)
        keep = np.arange(16 + mx) < (lens + 16)[:, None]
        self.f.write(out[keep].tobytes())
        self.count += k

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()


class RxPort:
    """Receive on one port: counters, stamp decoding per stream, optional capture."""

    def __init__(self, lpid: int, port, board: Board) -> None:
        self.lpid = lpid
        self.port = port
        self.pool = port.pool
        self.data = port.umem.data
        self.rx = port.rx_burst
        self.pv = PktVec(RX_BURST)
        self.nstreams = board.nports
        self.pkts = 0
        self.bytes = 0
        self.stamped = 0
        self.st = np.zeros((board.nports, len(SK)), dtype=np.int64)
        self.st[:, SK["lat_min"]] = LAT_MIN_INIT
        self.hist = np.zeros((board.nports, NB_HIST), dtype=np.int64)
        self.sumsq = np.zeros(board.nports, dtype=np.float64)
        self.capture: Capture | None = None
        self.captured_closed = 0  # frames in the last capture file closed (what it holds)
        self._w18 = window(self.data, STAMP_LEN)

    def reset(self) -> None:
        self.pkts = self.bytes = self.stamped = 0
        self.st[:] = 0
        self.st[:, SK["lat_min"]] = LAT_MIN_INIT
        self.hist[:] = 0
        self.sumsq[:] = 0
        self.captured_closed = 0
        if self.capture is not None:
            self.capture.count = 0

    def step(self) -> int:
        pv = self.pv
        k = self.rx(pv, RX_BURST)
        if not k or k == DOWN:
            return 0
        now = time.monotonic_ns()
        addr = pv.addr[:k]
        lens = pv.data_len[:k]
        self.pkts += k
        self.bytes += int(lens.sum())
        if self.capture is not None:
            self.capture.write(self.data, addr, lens, time.time_ns())
        li = lens.astype(np.intp)
        np.maximum(li, STAMP_LEN, out=li)
        st = self._w18[addr.view(np.intp) + (li - STAMP_LEN)].view(STAMP_DTYPE)
        sid = st["stream"]
        ok = (st["magic"] == STAMP_MAGIC) & (sid < self.nstreams)
        n_ok = int(ok.sum())
        if n_ok:
            self.stamped += n_ok
            if n_ok == k and (sid == sid[0]).all():
                self._account(int(sid[0]), st, lens, now)
            else:
                for s in np.unique(sid[ok]).tolist():  # a loop over streams, not packets
                    m = ok & (sid == s)
                    self._account(s, st[m], lens[m], now)
        self.pool.put_bulk(addr)
        return k

    def _account(self, s: int, st: np.ndarray, lens: np.ndarray, now: int) -> None:
        row = self.st[s]
        row[0] += len(st)  # pkts
        row[1] += int(lens.sum())  # bytes
        ts = st["ts_lo"].astype(np.int64) | (st["ts_hi"].astype(np.int64) << 32)
        timed = ts != 0  # 0: sent without a time (live frames)
        if not timed.all():
            ts = ts[timed]
        lat = ((now & TS_MASK) - ts) & TS_MASK  # the clock modulo 2**48 (78 hours)
        if len(lat):
            row[2] += len(lat)
            row[3] += int(lat.sum())
            lo = int(lat.min())
            hi = int(lat.max())
            if lo < row[4]:
                row[4] = lo
            if hi > row[5]:
                row[5] = hi
            lf = lat.astype(np.float64)
            self.sumsq[s] += float(np.dot(lf, lf))
            self.hist[s] += np.bincount(hist_bucket(lat), minlength=NB_HIST)
        seq = st["seq"].astype(np.int64)
        seq = seq[seq != 0]
        if len(seq):
            prev = int(row[7])
            run = np.maximum.accumulate(seq)
            late = int((seq[1:] < run[:-1]).sum()) + int(seq[0] < prev)
            row[6] += late
            top = int(run[-1])
            if top > prev:
                row[7] = top

    def publish(self, board: Board) -> None:
        board.streams[self.lpid] = self.st
        board.hist[self.lpid] = self.hist
        board.sumsq[self.lpid] = self.sumsq

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()
            self.captured_closed = self.capture.count
            self.capture = None


def publish_port(
    board: Board, lpid: int, tx: TxPort | None, rx: RxPort | None, port_stats: dict | None
) -> None:
    row = board.ports[lpid]
    if tx is not None:
        row[PK["tx_pkts"]] = tx.pkts
        row[PK["tx_bytes"]] = tx.bytes
        row[PK["tx_running"]] = int(tx.running)
        row[PK["tx_done"]] = int(tx.done)
        row[PK["tx_pps_target"]] = int(tx.rate)
        row[PK["tx_first_ns"]] = tx.first_ns
        row[PK["tx_first_k"]] = tx.first_k
        row[PK["tx_last_ns"]] = tx.last_ns
    if rx is not None:
        row[PK["rx_pkts"]] = rx.pkts
        row[PK["rx_bytes"]] = rx.bytes
        row[PK["rx_stamped"]] = rx.stamped
        row[PK["rx_foreign"]] = rx.pkts - rx.stamped
        row[PK["capture_pkts"]] = rx.capture.count if rx.capture else rx.captured_closed
        row[PK["capture_on"]] = int(rx.capture is not None)
        rx.publish(board)
    if port_stats:
        row[PK["rx_errors"]] = port_stats.get("ierrors", 0) + port_stats.get("rx_invalid", 0)
        row[PK["rx_missed"]] = port_stats.get("imissed", 0) + port_stats.get("rx_ring_full", 0)
        row[PK["tx_errors"]] = port_stats.get("oerrors", 0) + port_stats.get("tx_invalid", 0)
    row[PK["published_ns"]] = time.monotonic_ns()
