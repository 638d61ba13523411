"""net_af_packet: AF_PACKET with PACKET_MMAP rings (TPACKET_V2) on a kernel netdev.

One socket, bound to ``ifname`` for every protocol, with an RX ring and a TX ring mapped
together (RX first). TPACKET_V2 (not V3) because its ring is an array of fixed-size slots,
each with its own status word, which numpy can view as strided arrays: the status, length and
MAC-offset words of all slots are just ``uint32``/``uint16`` views with a stride of one slot.
(V3 packs variable-length frames into blocks that have to be walked frame by frame.)

- RX: the ready slots of a burst are found with one gather of their status words (the kernel
  fills slots in order; the burst stops at the first slot still owned by the kernel), their
  bytes are copied into fresh UMEM frames with one fancy-index assignment over "window" views
  (every packet copies the burst's longest length, rounded up to 64 bytes, which stays inside
  both the ring slot and the UMEM frame), and the slots are handed back by one scatter of
  TP_STATUS_KERNEL into their status words.
- TX: the free slots from the TX head are found the same way, the packets are copied into them
  with one window assignment, lengths and TP_STATUS_SEND_REQUEST are scattered, and one
  ``send()`` per burst makes the kernel transmit every requested slot. The UMEM frames are
  free again as soon as they are copied, so they go back to the pool at once. (sendmsg per
  frame would cost one syscall and several Python calls per packet instead.)

The socket sets PACKET_IGNORE_OUTGOING (so the port does not receive its own transmissions or
the host's outgoing traffic) and PACKET_LOSS (a malformed TX slot is skipped instead of
stalling the ring). Note that AF_PACKET taps the netdev: the kernel stack still gets every
frame the port receives.
"""

from __future__ import annotations

import errno as _errno
import logging
import mmap
import socket
import struct
from typing import Any

import numpy as np

from ..errors import ConfigError, NetdevError, PrivilegeError
from ..mem.pktvec import window
from ..mem.umem import XDP_PKT_HEADROOM
from .port import ETHER_HDR_LEN, VLAN_HLEN, Port, register_driver

log = logging.getLogger("cndp.pktdev.af_packet")

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1

TPACKET2_HDR = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): TX data starts here
DEFAULT_FRAMES = 1024  # slots per ring (CNDP: 512 blocks of 4 KiB, 2 KiB frames)

_U64 = np.uint64
_REQ = struct.Struct("=IIII")  # struct tpacket_req
_STATS = struct.Struct("=II")  # struct tpacket_stats


def _pow2_at_least(v: int) -> int:
    return 1 << max(v - 1, 1).bit_length()


@register_driver
class AfPacketPort(Port):
    pmd_name = "net_af_packet"
    needs_netdev = True
    counters = (
        "ipackets",
        "opackets",
        "ierrors",
        "oerrors",
        "odropped",
        "rx_invalid",
        "tx_invalid",
        "rx_ring_empty",
        "rx_buf_alloc",
        "rx_burst_called",
        "fq_alloc_zero",
        "tx_kicks",
        "tx_kick_failed",
        "tx_kick_again",
        "tx_ring_full",
    )

    def __init__(self, lport: int, cfg: Any) -> None:
        super().__init__(lport, cfg)
        self.sock: socket.socket | None = None
        self._mm: mmap.mmap | None = None
        self._views: list[str] = []
        self._wins: dict[int, np.ndarray] = {}
        self._drops = 0

    # -- setup -------------------------------------------------------------------------------
    def _ring_frames(self, what: str, v: int) -> int:
        n = v or DEFAULT_FRAMES
        if n < 8 or n & (n - 1) or n > 1 << 16:
            raise ConfigError(
                f"lport {self.name!r}: {what} = {n} slots is not a power of two in 8..65536",
                fix=f"use e.g. {DEFAULT_FRAMES} (0 = default)",
            )
        return n

    def _open(self) -> None:
        cfg = self.cfg
        umem = self.umem
        assert umem is not None and self.pool is not None
        self._bufsz = umem.bufsz
        self._room = umem.bufsz - XDP_PKT_HEADROOM  # bytes a UMEM frame takes after headroom
        fs = _pow2_at_least(max(2048, umem.bufsz))
        bs = max(mmap.PAGESIZE, fs)
        rx_n = max(self._ring_frames("rx_nb_desc", cfg.rx_nb_desc), bs // fs)
        tx_n = max(self._ring_frames("tx_nb_desc", cfg.tx_nb_desc), bs // fs)
        self._fs = fs
        self._rx_n, self._tx_n = rx_n, tx_n
        self._tx_room = fs - TPACKET2_HDR
        try:
            # protocol 0: nothing is queued before bind()
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        except PermissionError as e:
            raise PrivilegeError(
                "creating an AF_PACKET socket: permission denied",
                errno=e.errno,
                fix="needs CAP_NET_RAW",
            ) from None
        self.sock = sock
        try:
            sock.bind((self.ifname, ETH_P_ALL))
        except OSError as e:
            if e.errno in (_errno.ENODEV, _errno.ENXIO):
                raise NetdevError(
                    f"netdev {self.ifname!r} does not exist in this network namespace",
                    errno=_errno.ENODEV,
                    fix="check `ip link`",
                ) from None
            raise NetdevError(
                f"binding AF_PACKET to {self.ifname!r} failed: {e.strerror}", errno=e.errno
            ) from None
        # Rings are set up after bind so a bad ifname fails before memory is committed. The
        # kernel starts filling the RX ring as soon as it exists.
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _REQ.pack(bs, rx_n * fs // bs, fs, rx_n))
            sock.setsockopt(SOL_PACKET, PACKET_TX_RING, _REQ.pack(bs, tx_n * fs // bs, fs, tx_n))
        except OSError as e:
            raise NetdevError(
                f"setting up PACKET_MMAP rings on {self.ifname!r} failed: {e.strerror}",
                errno=e.errno,
            ) from None
        rx_bytes, tx_bytes = rx_n * fs, tx_n * fs
        self._mm = mm = mmap.mmap(
            sock.fileno(), rx_bytes + tx_bytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._u8 = np.frombuffer(mm, np.uint8)
        u32 = np.frombuffer(mm, np.uint32)
        u16 = np.frombuffer(mm, np.uint16)
        s32, s16 = fs // 4, fs // 2
        t32, t16 = rx_bytes // 4, rx_bytes // 2
        # struct tpacket2_hdr: u32 status, len, snaplen; u16 mac, net; ...
        self._rx_status = u32[0:t32:s32]
        self._rx_snap = u32[2:t32:s32]
        self._rx_mac = u16[6:t16:s16]
        self._tx_status = u32[t32::s32][:tx_n]
        self._tx_len = u32[t32 + 1 :: s32][:tx_n]
        self._rx_slot = np.arange(rx_n, dtype=np.intp) * fs
        self._tx_data = np.arange(tx_n, dtype=np.intp) * fs + (rx_bytes + TPACKET2_HDR)
        # slot numbers twice over: [head : head+n] is a burst's slots with wrap-around, as a view
        self._rx_ring_idx = np.arange(2 * rx_n, dtype=np.intp) % rx_n
        self._tx_ring_idx = np.arange(2 * tx_n, dtype=np.intp) % tx_n
        self._rx_head = 0
        self._tx_head = 0
        self._views = [
            "_u8",
            "_rx_status",
            "_rx_snap",
            "_rx_mac",
            "_tx_status",
            "_tx_len",
        ]
        self._udata = umem.data
        self._aligned = self.pool.base % self._bufsz == 0
        self._rem = np.zeros(max(rx_n, tx_n), _U64)
        mtu = self.mtu
        if mtu + ETHER_HDR_LEN + VLAN_HLEN > self._room:
            log.warning(
                "%s: MTU %d frames do not fit UMEM frames of %d bytes (%d after headroom): "
                "longer frames are dropped (rx_invalid)",
                self.ifname,
                mtu,
                self._bufsz,
                self._room,
            )

    def _mtu_limited(self) -> bool:
        return True

    def _win(self, length: int) -> np.ndarray:
        """The ring memory as overlapping ``length``-byte items (cached per length)."""
        w = self._wins.get(length)
        if w is None:
            u8 = self._u8
            w = np.ndarray(
                buffer=u8, dtype=f"V{length}", shape=(u8.size - length + 1,), strides=(1,)
            )
            self._wins[length] = w
        return w

    # -- RX ----------------------------------------------------------------------------------
    def _rx(self, pv: Any, n: int | None = None) -> int:
        self.st_rx_burst_called += 1
        pv.n = 0
        head = self._rx_head
        st = self._rx_status
        if not st[head] & TP_STATUS_USER:
            self.st_rx_ring_empty += 1
            return 0
        if n is None or n > pv.capacity:
            n = pv.capacity
        if n > self._rx_n:
            n = self._rx_n
        idx = self._rx_ring_idx[head : head + n]
        ready = st[idx] & TP_STATUS_USER
        k = n if ready.all() else int(ready.argmin())
        # fresh frames: data at frame + headroom
        addr = self.pool.get_burst(k, out=pv.addr[:k])  # type: ignore[union-attr]
        got = len(addr)
        if got < k:
            if got == 0:
                self.st_fq_alloc_zero += 1
                return 0  # slots stay with us until frames are free; the kernel drops
            k = got
        rem = self._rem[:k]
        if self._aligned:
            np.remainder(addr, _U64(self._bufsz), out=rem)
            addr -= rem
        else:
            addr[...] = self.pool.frame_of(addr)  # type: ignore[union-attr]
        addr += _U64(XDP_PKT_HEADROOM)
        self.st_rx_buf_alloc += k
        sl = idx[:k]
        snap = self._rx_snap[sl]
        mx = int(snap.max())
        if mx > self._room:
            return self._rx_oversize(pv, sl, snap)
        src = self._rx_slot[sl]
        src += self._rx_mac[sl]
        length = (mx + 63) & ~63
        if length > self._room:
            length = self._room
        window(self._udata, length)[addr.view(np.intp)] = self._win(length)[src]
        pv.data_len[:k] = snap
        pv.port[:k] = self.lport
        st[sl] = TP_STATUS_KERNEL  # hand the slots back (after the copy: x86 TSO)
        self._rx_head = (head + k) % self._rx_n
        self.st_ipackets += k
        self.ibytes.add(pv.data_len[:k])
        pv.n = k
        return k

    def _rx_oversize(self, pv: Any, sl: np.ndarray, snap: np.ndarray) -> int:
        """Slow path: some frames do not fit a UMEM frame; drop them, deliver the rest."""
        k = len(sl)
        good = snap <= self._room
        g = int(good.sum())
        bad_addrs = pv.addr[:k][~good].copy()
        keep_sl = sl[good]
        keep_len = snap[good]
        keep_addr = pv.addr[:k][good].copy()
        if g:
            src = self._rx_slot[keep_sl] + self._rx_mac[keep_sl]
            length = min((int(keep_len.max()) + 63) & ~63, self._room)
            window(self._udata, length)[keep_addr.view(np.intp)] = self._win(length)[src]
        self._rx_status[sl] = TP_STATUS_KERNEL
        self._rx_head = (self._rx_head + k) % self._rx_n
        self.pool.put_bulk(bad_addrs)  # type: ignore[union-attr]
        self.st_rx_invalid += k - g
        self.st_ierrors += k - g
        pv.addr[:g] = keep_addr
        pv.data_len[:g] = keep_len
        pv.port[:g] = self.lport
        self.st_ipackets += g
        self.ibytes.add(pv.data_len[:g])
        pv.n = g
        return g

    # -- TX ----------------------------------------------------------------------------------
    def _tx(self, pv: Any, n: int | None = None) -> int:
        if n is None or n > pv.n:
            n = pv.n
        if n <= 0:
            return 0
        if n > self._tx_n:
            n = self._tx_n
        head = self._tx_head
        idx = self._tx_ring_idx[head : head + n]
        free = self._tx_status[idx] == TP_STATUS_AVAILABLE
        k = n if free.all() else int(free.argmin())
        if k < n:
            self.st_tx_ring_full += 1
            if k == 0:
                self._kick()
                return 0
        lens = pv.data_len[:k]
        mx = int(lens.max())
        if mx > self._tx_room:
            return self._tx_oversize(pv, idx[:k])
        sl = idx[:k]
        self._copy_out(pv.addr[:k], self._tx_data[sl], lens, mx)
        self._tx_len[sl] = lens
        self._tx_status[sl] = TP_STATUS_SEND_REQUEST  # after the data (x86 TSO)
        self._tx_head = (head + k) % self._tx_n
        self._kick()
        self.pool.put_bulk(pv.addr[:k])  # type: ignore[union-attr]  # copied: free again
        self.st_opackets += k
        self.obytes.add(lens)
        return k

    def _copy_out(self, src: np.ndarray, dst: np.ndarray, lens: np.ndarray, mx: int) -> None:
        length = (mx + 63) & ~63
        if length > self._tx_room:
            length = self._tx_room
        s = src.view(np.intp) if src.flags.c_contiguous else src.astype(np.intp)
        try:
            self._win(length)[dst] = window(self._udata, length)[s]
        except IndexError:
            # a packet near the very end of the UMEM: the rounded-up length would read past
            # it. Copy each packet's own length (rare, slow path).
            u8 = self._u8
            data = self._udata
            for a, d, ln in zip(s.tolist(), dst.tolist(), lens.tolist(), strict=True):
                u8[d : d + ln] = data[a : a + ln]

    def _tx_oversize(self, pv: Any, idx: np.ndarray) -> int:
        """Slow path: drop packets longer than a TX slot (tx_invalid); send the others."""
        k = len(idx)
        lens = pv.data_len[:k]
        good = lens <= self._tx_room
        g = int(good.sum())
        if g:
            sl = idx[:g]
            glens = lens[good]
            self._copy_out(pv.addr[:k][good], self._tx_data[sl], glens, int(glens.max()))
            self._tx_len[sl] = glens
            self._tx_status[sl] = TP_STATUS_SEND_REQUEST
            self._tx_head = (self._tx_head + g) % self._tx_n
            self._kick()
            self.obytes.add(glens)
        self.pool.put_bulk(pv.addr[:k])  # type: ignore[union-attr]
        self.st_opackets += g
        self.st_tx_invalid += k - g
        self.st_odropped += k - g
        self.st_oerrors += k - g
        return k

    def _kick(self) -> None:
        self.st_tx_kicks += 1
        try:
            self.sock.send(b"", socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            self.st_tx_kick_again += 1
        except OSError as e:
            if e.errno in (_errno.EAGAIN, _errno.ENOBUFS):
                self.st_tx_kick_again += 1
            else:  # ENETDOWN/ENXIO: link down; the slots stay requested for the next kick
                self.st_tx_kick_failed += 1

    def tx_pending(self) -> int:
        """TX slots not yet free again (requested or being sent)."""
        return int((self._tx_status != TP_STATUS_AVAILABLE).sum())

    def flush(self, timeout: float = 1.0) -> bool:
        """Kick until every TX slot is free again (or timeout)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.tx_pending() == 0:
                return True
            self._kick()
            time.sleep(0.0005)
        return self.tx_pending() == 0

    # -- stats and misc ----------------------------------------------------------------------
    def _kernel_drops(self) -> int:
        if self.sock is None:
            return 0
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        _packets, drops = _STATS.unpack(raw)  # reading resets the kernel's counters
        self._drops += drops
        return self._drops

    def _more_stats(self, out: dict[str, int]) -> None:
        out["imissed"] = self._kernel_drops()

    def reset_stats(self) -> None:
        super().reset_stats()
        self._kernel_drops()
        self._drops = 0

    def fileno(self) -> int | None:
        return self.sock.fileno() if self.sock is not None else None

    def rx_desc(self) -> int:
        return getattr(self, "_rx_n", 0)

    def tx_desc(self) -> int:
        return getattr(self, "_tx_n", 0)

    def _close(self) -> None:
        # Frames are copied both ways, so the port holds none: only the rings go.
        for name in self._views:
            setattr(self, name, None)
        self._views = []
        self._wins.clear()
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                log.warning("%s: ring memory still referenced; unmapped later", self.ifname)
            self._mm = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
