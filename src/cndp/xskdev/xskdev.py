"""xskdev: one AF_XDP socket on (netdev, queue) over a UMEM region.

The data path is ``rx_burst``/``tx_burst`` on packet vectors: a burst moves with a few numpy
slice copies between the kernel rings, the packet vector and the mempool. Frames are
identified by their UMEM offset; a mempool holds *frame handles* (any offset inside a free
frame): the kernel masks fill-ring addresses to the chunk in aligned mode, so RX and
completion addresses go back to the pool as they are, and only code that builds a new packet
rounds a handle down to its frame (``PktVec.alloc_from``).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import logging
import os
import select
import socket
import time
from dataclasses import dataclass

import numpy as np

from ..bpf.xdp import XdpMode, XskMap, XskProgram, resolve_ifindex
from ..errors import BpfError, ConfigError, PrivilegeError, XskError
from ..mem.mempool import Mempool
from ..mem.umem import Umem
from ..sys import xsk as sx
from ..sys.netdev import rx_queue_count, tx_queue_count
from .ring import ConsRing, ProdRing

log = logging.getLogger("cndp.xskdev")

DEFAULT_RING_SIZE = 2048  # CNDP: rx/tx descriptors when the config says 0
DEFAULT_BUSY_TIMEOUT = 20  # CNDP AF_XDP_DFLT_BUSY_TIMEOUT (us)
DEFAULT_BUSY_BUDGET = 64  # CNDP AF_XDP_DFLT_BUSY_BUDGET
_BYTES_LOG = 1 << 16
# the (always empty) fill ring a tx_qid socket's buffer pool must have
_TX_SOCKET_FILL_SIZE = 64

# CNDP lport_stats_t key names, in CNDP's order
STAT_KEYS = (
    "ipackets",
    "opackets",
    "ibytes",
    "obytes",
    "ierrors",
    "oerrors",
    "imissed",
    "odropped",
    "rx_invalid",
    "tx_invalid",
    "rx_ring_empty",
    "rx_buf_alloc",
    "rx_busypoll_wakeup",
    "rx_poll_wakeup",
    "rx_rcvd_count",
    "rx_burst_called",
    "rx_ring_full",
    "rx_fill_ring_empty",
    "tx_ring_empty",
    "fq_add_called",
    "fq_add_count",
    "fq_full",
    "fq_alloc_zero",
    "fq_reserve_failed",
    "tx_kicks",
    "tx_kick_failed",
    "tx_kick_again",
    "tx_ring_full",
    "tx_copied",
    "cq_empty",
    "cq_buf_freed",
)


def _pow2(name: str, v: int) -> None:
    if v <= 0 or v & (v - 1):
        raise ConfigError(
            f"{name} = {v} is not a power of two",
            fix=f"use a power of two such as {1 << max(v, 1).bit_length()}",
        )


@dataclass
class XskConfig:
    """How to open one AF_XDP socket (CNDP lport keys in brackets)."""

    ifname: str  # [netdev]
    qid: int = 0  # [qid]
    rx_size: int = DEFAULT_RING_SIZE  # [rxdesc]; 0 = default
    tx_size: int = DEFAULT_RING_SIZE  # [txdesc]; 0 = default
    fill_size: int = 0  # 0 = 2 * rx_size
    comp_size: int = 0  # 0 = tx_size
    skb_mode: bool = False  # [skb_mode] generic XDP + copy mode
    zero_copy: bool | None = None  # None: try zero-copy in drv mode, fall back to copy
    need_wakeup: bool = True
    force_wakeup: bool = False  # [force_wakeup] kick TX even when the kernel did not ask
    busy_poll: bool = False  # [busy_poll]
    busy_timeout: int = 0  # [busy_timeout]; 0 = 20
    busy_budget: int = 0  # [busy_budget]; 0 = 64
    xsk_pin_path: str | None = None  # [xsk_pin_path] pinned XSKMAP: no program load
    xsk_map_fd: int | None = None  # XSKMAP fd from the device plugin: no program load
    uds_path: str | None = None  # [uds_path] device-plugin socket: the XSKMAP fd comes over it
    force: bool = False  # replace an XDP program that is not ours
    tx_skb_budget: int = 256  # XDP_MAX_TX_SKB_BUDGET for copy mode; 0 = kernel default
    # Transmit through a second socket bound to this queue of the same netdev, sharing the
    # UMEM (its own TX and completion rings; never in the XSKMAP, so it receives nothing).
    # Keeps the kernel's TX path off the buffer pool that the RX path, often running on
    # another CPU, writes for every frame: see docs/xskdev.md "tx_qid".
    tx_qid: int | None = None
    fill_batch: int = 64  # refill the fill ring when this many slots are free


class _UmemShare:
    """Which socket registered a UMEM: later sockets bind with XDP_SHARED_UMEM to it."""

    owners: dict[int, list[XskDev]] = {}

    @classmethod
    def owner(cls, umem: Umem) -> XskDev | None:
        lst = cls.owners.get(id(umem))
        return lst[0] if lst else None

    @classmethod
    def add(cls, umem: Umem, dev: XskDev) -> None:
        cls.owners.setdefault(id(umem), []).append(dev)

    @classmethod
    def remove(cls, umem: Umem, dev: XskDev) -> None:
        lst = cls.owners.get(id(umem), [])
        if dev in lst:
            lst.remove(dev)
        if not lst:
            cls.owners.pop(id(umem), None)


class XskDev:
    """An AF_XDP socket bound to (netdev, queue).

    ``pool`` supplies the frames for the fill ring and takes back completed TX frames; by
    default it is a mempool over ``umem.region(region)``.
    """

    def __init__(
        self,
        cfg: XskConfig,
        umem: Umem,
        *,
        region: int = 0,
        pool: Mempool | None = None,
        lport: int = 0,
    ):
        self.cfg = cfg
        self.umem = umem
        self.lport = lport
        self.sock: socket.socket | None = None
        self._program: XskProgram | None = None
        self._xskmap: XskMap | None = None
        self._in_map = False  # our socket's entry in the XSKMAP was written (and not deleted)
        self._uds = None  # the device-plugin connection (cndp.k8s.handshake) for uds_path
        self._uds_map_fd: int | None = None
        self._maps: list = []
        self._rings: list = []
        self._closed = False
        self._txsock: socket.socket | None = None
        self.zero_copy = False
        self.mode = XdpMode.SKB if cfg.skb_mode else XdpMode.DRV
        self._init_counters()
        try:
            self._open(region, pool)
        except BaseException:
            self.close()
            raise

    def _init_counters(self) -> None:
        for k in STAT_KEYS:
            setattr(self, "st_" + k, 0)
        self._bytes_log = np.zeros(_BYTES_LOG, np.uint32)
        self._bytes_pos = 0
        self._obytes_log = np.zeros(_BYTES_LOG, np.uint32)
        self._obytes_pos = 0
        self._kstats_base = dict.fromkeys(sx.STAT_NAMES, 0)

    @classmethod
    def over_memory_rings(
        cls, cfg: XskConfig, umem: Umem, *, region: int = 0, pool: Mempool | None = None
    ):
        """An xskdev whose four rings live in ordinary memory, with no socket or kernel.

        Returns ``(dev, peer)``: ``peer`` (a ``simring.RingPeer``) plays the kernel's side of
        the rings. Used by unit tests of the ring verbs and by the software-only
        microbenchmark; the data-path code that runs is exactly the one real sockets use.
        """
        from .simring import RingPeer

        dev = cls.__new__(cls)
        dev.cfg = cfg
        dev.umem = umem
        dev.lport = 0
        dev.sock = None
        dev._program = None
        dev._xskmap = None
        dev._uds = None
        dev._uds_map_fd = None
        dev._maps = []
        dev._rings = []
        dev._closed = False
        dev._txsock = None
        dev.zero_copy = False
        dev.mode = XdpMode.SKB if cfg.skb_mode else XdpMode.DRV
        dev._init_counters()
        dev._configure(region, pool)
        peer = RingPeer(dev.rx_size, dev.tx_size, dev.fill_size, dev.comp_size)
        dev.rx, dev.tx, dev.fq, dev.cq = peer.user_rings()
        dev._maps = []  # the peer owns the ring memory
        dev._peer = peer
        dev._rings = [dev.rx, dev.tx, dev.fq, dev.cq]
        dev.tx_base = dev.tx.cached_prod
        dev.cq_base = dev.cq.cached_cons
        dev._refill(dev.fill_target)
        return dev, peer

    # ---------------------------------------------------------------- setup
    def _configure(self, region: int, pool: Mempool | None) -> None:
        """Ring sizes, frame size, pool and fill level: everything checked before a socket."""
        cfg = self.cfg
        self.rx_size = cfg.rx_size or DEFAULT_RING_SIZE
        self.tx_size = cfg.tx_size or DEFAULT_RING_SIZE
        self.fill_size = cfg.fill_size or 2 * self.rx_size
        self.comp_size = cfg.comp_size or self.tx_size
        for name, v in (
            ("rx ring size", self.rx_size),
            ("tx ring size", self.tx_size),
            ("fill ring size", self.fill_size),
            ("completion ring size", self.comp_size),
        ):
            _pow2(name, v)
        bufsz = self.umem.bufsz
        page = os.sysconf("SC_PAGE_SIZE")
        if bufsz < 2048 or bufsz > page or bufsz & (bufsz - 1):
            raise ConfigError(
                f"frame size {bufsz} is refused by AF_XDP: aligned UMEM chunks must be a power "
                f"of two between 2048 and the page size ({page})",
                fix="use bufsz 2048 or 4096",
            )
        self._own_pool = pool is None
        self._free = None
        self.pool = (
            pool
            if pool is not None
            else Mempool.for_region(self.umem, region, name=f"{cfg.ifname}:{cfg.qid}")
        )
        if self._free is None:
            self._free = self.pool.put_bulk
        self._always_kick = cfg.force_wakeup or not cfg.need_wakeup
        need = self.rx_size + self.tx_size
        # Frames parked in the fill ring: as many as fit, keeping tx_size frames for TX.
        self.fill_target = max(min(self.fill_size, self.pool.capacity - self.tx_size), 0)
        self.fill_batch = max(1, min(cfg.fill_batch, self.fill_target // 4 or 1))
        if self.pool.capacity < need:
            raise ConfigError(
                f"UMEM region {region} has {self.pool.capacity} frames but the rings of "
                f"{cfg.ifname}:{cfg.qid} need at least rx+tx = {need}",
                fix="raise bufcnt (or the region's share), or lower rxdesc/txdesc",
            )

    def _open(self, region: int, pool: Mempool | None) -> None:
        cfg = self.cfg
        self._configure(region, pool)
        bufsz = self.umem.bufsz
        self.ifindex = resolve_ifindex(cfg.ifname)
        nq = rx_queue_count(cfg.ifname)
        if not 0 <= cfg.qid < nq:
            raise ConfigError(
                f"queue {cfg.qid} does not exist on {cfg.ifname}: it has {nq} rx queue(s)",
                fix=f"use qid 0..{nq - 1}, or add channels with `ethtool -L {cfg.ifname}`",
            )
        if cfg.tx_qid is not None:
            ntx = tx_queue_count(cfg.ifname)
            if cfg.tx_qid == cfg.qid:
                raise ConfigError(
                    f"{cfg.ifname}:{cfg.qid}: tx_qid {cfg.tx_qid} is the socket's own queue",
                    fix="give another queue of the netdev, or leave tx_qid out",
                )
            if not 0 <= cfg.tx_qid < ntx:
                raise ConfigError(
                    f"tx_qid {cfg.tx_qid} does not exist on {cfg.ifname}: it has {ntx} tx queue(s)",
                    fix=f"use a tx_qid in 0..{ntx - 1} other than qid {cfg.qid}, or add "
                    f"channels with `ethtool -L {cfg.ifname}`",
                )
        if cfg.uds_path:
            self._uds_handshake()

        try:
            self.sock = sx.xsk_socket()
        except PermissionError as e:
            raise PrivilegeError(
                "creating an AF_XDP socket: permission denied",
                errno=e.errno,
                fix="needs CAP_NET_RAW",
            ) from None
        owner = _UmemShare.owner(self.umem)
        self._shared = owner is not None and owner.sock is not None
        if not self._shared:
            try:
                sx.umem_reg(self.sock, self.umem.addr, self.umem.size, bufsz)
            except OSError as e:
                # ENOBUFS: the pages would exceed RLIMIT_MEMLOCK (xdp_umem_account_pages)
                if e.errno in (_errno.EPERM, _errno.ENOMEM, _errno.EAGAIN, _errno.ENOBUFS):
                    raise PrivilegeError(
                        f"registering the UMEM ({self.umem.size} bytes) failed: "
                        f"{os.strerror(e.errno)}",
                        errno=e.errno,
                        fix="needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK",
                    ) from None
                raise XskError(
                    f"registering the UMEM failed: {os.strerror(e.errno)}", errno=e.errno
                ) from None
        try:
            sx.set_ring_size(self.sock, sx.XDP_RX_RING, self.rx_size)
            sx.set_ring_size(self.sock, sx.XDP_TX_RING, self.tx_size)
            sx.set_ring_size(self.sock, sx.XDP_UMEM_FILL_RING, self.fill_size)
            sx.set_ring_size(self.sock, sx.XDP_UMEM_COMPLETION_RING, self.comp_size)
        except OSError as e:
            raise XskError(
                f"setting AF_XDP ring sizes failed: {os.strerror(e.errno)}", errno=e.errno
            ) from None
        offs = sx.mmap_offsets(self.sock)
        mm_rx = sx.map_ring(self.sock, offs.rx, self.rx_size, sx.XDP_DESC_SIZE, sx.PGOFF_RX_RING)
        self._maps.append(mm_rx)
        mm_tx = sx.map_ring(self.sock, offs.tx, self.tx_size, sx.XDP_DESC_SIZE, sx.PGOFF_TX_RING)
        self._maps.append(mm_tx)
        mm_fr = sx.map_ring(
            self.sock, offs.fr, self.fill_size, sx.ADDR_SIZE, sx.UMEM_PGOFF_FILL_RING
        )
        self._maps.append(mm_fr)
        mm_cr = sx.map_ring(
            self.sock, offs.cr, self.comp_size, sx.ADDR_SIZE, sx.UMEM_PGOFF_COMPLETION_RING
        )
        self._maps.append(mm_cr)
        self.rx = ConsRing(mm_rx, offs.rx, self.rx_size, xdp_desc=True)
        self.tx = ProdRing(mm_tx, offs.tx, self.tx_size, xdp_desc=True)
        self.fq = ProdRing(mm_fr, offs.fr, self.fill_size, xdp_desc=False)
        self.cq = ConsRing(mm_cr, offs.cr, self.comp_size, xdp_desc=False)
        self._rings = [self.rx, self.tx, self.fq, self.cq]
        self.tx_base = self.tx.cached_prod
        self.cq_base = self.cq.cached_cons

        # The fill ring must hold frames before bind, or the first frames are dropped.
        self._refill(self.fill_target)
        self._bind(owner)
        _UmemShare.add(self.umem, self)
        self._attach_map()
        if cfg.busy_poll:
            if self._uds is not None:
                self._uds_busy_poll()
            else:
                self._setup_busy_poll()
        if cfg.tx_qid is not None:
            self._open_tx_socket()
        if cfg.tx_skb_budget and not self.zero_copy:
            sx.set_tx_skb_budget(self._txsock or self.sock, cfg.tx_skb_budget)
        self._poll = select.poll()
        self._poll.register(self.sock.fileno(), select.POLLIN)
        log.info(
            "xskdev %s:%d up (%s mode, %s, need_wakeup=%s, busy_poll=%s)",
            cfg.ifname,
            cfg.qid,
            self.mode.value,
            "zero-copy" if self.zero_copy else "copy",
            cfg.need_wakeup,
            cfg.busy_poll,
        )

    def _open_tx_socket(self) -> None:
        """The TX socket of ``tx_qid``: TX and completion rings on a buffer pool of its own.

        Binding with XDP_SHARED_UMEM to another queue makes the kernel create a second
        buffer pool for that queue, which wants a fill ring too; it stays empty (the socket
        has no RX ring and is not in the XSKMAP, so nothing is ever received on it). From
        here on ``tx``/``cq`` and the kick are this socket's; the main socket's TX ring is
        never used.
        """
        cfg = self.cfg
        assert self.sock is not None and cfg.tx_qid is not None
        try:
            ts = self._txsock = sx.xsk_socket()
        except PermissionError as e:
            raise PrivilegeError(
                "creating the AF_XDP TX socket (tx_qid): permission denied",
                errno=e.errno,
                fix="needs CAP_NET_RAW",
            ) from None
        try:
            sx.set_ring_size(ts, sx.XDP_TX_RING, self.tx_size)
            sx.set_ring_size(ts, sx.XDP_UMEM_FILL_RING, _TX_SOCKET_FILL_SIZE)
            sx.set_ring_size(ts, sx.XDP_UMEM_COMPLETION_RING, self.comp_size)
        except OSError as e:
            raise XskError(
                f"setting the TX socket's ring sizes failed: {os.strerror(e.errno)}",
                errno=e.errno,
            ) from None
        offs = sx.mmap_offsets(ts)
        mm_tx = sx.map_ring(ts, offs.tx, self.tx_size, sx.XDP_DESC_SIZE, sx.PGOFF_TX_RING)
        self._maps.append(mm_tx)
        mm_cr = sx.map_ring(
            ts, offs.cr, self.comp_size, sx.ADDR_SIZE, sx.UMEM_PGOFF_COMPLETION_RING
        )
        self._maps.append(mm_cr)
        try:
            sx.bind(ts, self.ifindex, cfg.tx_qid, sx.XDP_SHARED_UMEM, self.sock.fileno())
        except OSError as e:
            where = f"{cfg.ifname}:{cfg.tx_qid}"
            if e.errno == _errno.EBUSY:
                raise XskError(
                    f"tx_qid: queue {where} is already bound by another AF_XDP socket",
                    errno=e.errno,
                    fix="a tx_qid takes its queue for itself: choose one that no lport uses",
                ) from None
            raise XskError(
                f"binding the TX socket to {where} failed: {os.strerror(e.errno)}",
                errno=e.errno,
            ) from None
        self.tx = ProdRing(mm_tx, offs.tx, self.tx_size, xdp_desc=True)
        self.cq = ConsRing(mm_cr, offs.cr, self.comp_size, xdp_desc=False)
        self._rings += [self.tx, self.cq]
        self.tx_base = self.tx.cached_prod
        self.cq_base = self.cq.cached_cons

    def _bind(self, owner: XskDev | None) -> None:
        cfg = self.cfg
        flags = sx.XDP_USE_NEED_WAKEUP if cfg.need_wakeup else 0
        if self._shared and owner is not None and owner.sock is not None:
            # A socket sharing a UMEM takes its mode from the UMEM's owner: the kernel
            # refuses copy/zero-copy/need_wakeup flags on it.
            try:
                sx.bind(self.sock, self.ifindex, cfg.qid, sx.XDP_SHARED_UMEM, owner.sock.fileno())
            except OSError as e:
                self._bind_error(e)
            self.zero_copy = bool(sx.options(self.sock) & sx.XDP_OPTIONS_ZEROCOPY)
            return
        shared_fd = 0
        want_zc = cfg.zero_copy is True or (cfg.zero_copy is None and not cfg.skb_mode)
        if cfg.skb_mode and cfg.zero_copy:
            raise ConfigError(
                "zero-copy was required but skb_mode is set",
                fix="drop skb_mode (zero-copy needs driver mode)",
            )
        attempts = (
            [flags | sx.XDP_ZEROCOPY, flags | sx.XDP_COPY] if want_zc else [flags | sx.XDP_COPY]
        )
        if cfg.zero_copy is True:
            attempts = attempts[:1]
        last: OSError | None = None
        for f in attempts:
            try:
                sx.bind(self.sock, self.ifindex, cfg.qid, f, shared_fd)
            except OSError as e:
                last = e
                if (
                    f & sx.XDP_ZEROCOPY
                    and e.errno in (_errno.EOPNOTSUPP, _errno.EINVAL)
                    and len(attempts) > 1
                ):
                    log.info(
                        "%s does not support AF_XDP zero-copy (%s): using copy mode",
                        cfg.ifname,
                        os.strerror(e.errno),
                    )
                    continue
                break
            else:
                self.zero_copy = bool(sx.options(self.sock) & sx.XDP_OPTIONS_ZEROCOPY)
                return
        assert last is not None
        self._bind_error(last)

    def _bind_error(self, exc: OSError) -> None:
        cfg = self.cfg
        err = exc.errno
        where = f"{cfg.ifname}:{cfg.qid}"
        if err == _errno.EBUSY:
            raise XskError(
                f"queue {where} is already bound by another AF_XDP socket",
                errno=err,
                fix="close the other socket or use another qid",
            )
        if err == _errno.EOPNOTSUPP and cfg.zero_copy:
            raise XskError(
                f"{cfg.ifname} does not support AF_XDP zero-copy",
                errno=err,
                fix="allow copy mode (zero_copy=None/False) or use skb_mode",
            )
        if err == _errno.EINVAL:
            raise XskError(
                f"binding the AF_XDP socket to {where} was refused (EINVAL)",
                errno=err,
                fix="check the queue id, and that a shared UMEM is "
                "not bound twice to the same netdev and queue",
            )
        raise XskError(
            f"binding the AF_XDP socket to {where} failed: {os.strerror(err)}", errno=err
        )

    def _attach_map(self) -> None:
        cfg = self.cfg
        assert self.sock is not None
        if self._uds_map_fd is not None:
            self._xskmap = XskMap.from_fd(self._uds_map_fd)
        elif cfg.xsk_map_fd is not None:
            self._xskmap = XskMap.from_fd(cfg.xsk_map_fd)
        elif cfg.xsk_pin_path:
            try:
                self._xskmap = XskMap.from_pin(cfg.xsk_pin_path)
            except BpfError as e:
                raise XskError(
                    f"cannot use the pinned XSKMAP {cfg.xsk_pin_path}: {e}", errno=e.errno
                ) from None
        else:
            self._program = XskProgram.acquire(self.ifindex, self.mode, force=cfg.force)
            self._xskmap = self._program.xskmap
        self._xskmap.set(cfg.qid, self.sock.fileno())
        self._in_map = True

    def _uds_handshake(self) -> None:
        """Unprivileged: get the XSKMAP fd of our netdev from the device plugin (CNDP's
        uds_path). The connection is shared by every lport on the same socket."""
        from ..k8s import handshake  # the k8s layer sits above; only the client is needed

        cfg = self.cfg
        if cfg.xsk_pin_path or cfg.xsk_map_fd is not None:
            raise ConfigError(
                f"{cfg.ifname}:{cfg.qid}: uds_path and "
                f"{'xsk_pin_path' if cfg.xsk_pin_path else 'xsk_map_fd'} are two ways to get "
                "the XSKMAP",
                fix="give one",
            )
        assert cfg.uds_path is not None
        self._uds = handshake.acquire(cfg.uds_path)
        self._uds_map_fd = self._uds.xsk_map_fd(cfg.ifname)

    def _uds_busy_poll(self) -> None:
        # Busy-poll socket options need CAP_NET_ADMIN: the device plugin sets them on our fd.
        assert self.sock is not None and self._uds is not None
        self._uds.config_busy_poll(
            self.sock.fileno(),
            self.cfg.busy_timeout or DEFAULT_BUSY_TIMEOUT,
            self.cfg.busy_budget or DEFAULT_BUSY_BUDGET,
        )

    def _setup_busy_poll(self) -> None:
        assert self.sock is not None
        t = self.cfg.busy_timeout or DEFAULT_BUSY_TIMEOUT
        b = self.cfg.busy_budget or DEFAULT_BUSY_BUDGET
        try:
            sx.set_busy_poll(self.sock, t, b)
        except OSError as e:
            if e.errno in (_errno.EPERM, _errno.EACCES):
                raise PrivilegeError(
                    "setting busy-poll socket options: permission denied",
                    errno=e.errno,
                    fix="needs CAP_NET_ADMIN, or let the device plugin set it (/config_busy_poll)",
                ) from None
            raise XskError(
                f"busy-poll socket options refused: {os.strerror(e.errno)}", errno=e.errno
            ) from None

    # ---------------------------------------------------------------- data path
    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def _refill(self, want: int) -> int:
        """Move up to ``want`` frames from the pool to the fill ring.

        Callers keep the fill ring at or below ``fill_target`` <= its size, so there is room.
        """
        handles = self.pool.take(want)
        k = len(handles)
        if k == 0:
            self.st_fq_alloc_zero += 1
            return 0
        fq = self.fq
        start = fq.cached_prod & fq.mask
        end = start + k
        if end <= fq.size:
            fq.addr[start:end] = handles
        else:
            fq.write_addrs(start, handles)
        fq.cached_prod = prod = (fq.cached_prod + k) & 0xFFFFFFFF
        fq._prod[0] = prod
        self.st_fq_add_called += 1
        self.st_fq_add_count += k
        return k

    def rx_burst(self, pv, n: int | None = None) -> int:
        """Receive up to n packets into the packet vector ``pv`` (replacing its content).

        The common case (no ring wrap) is written out inline: at a burst of 64 every Python
        call saved is about a nanosecond per packet.
        """
        self.st_rx_burst_called += 1
        rx = self.rx
        if n is None or n > pv.capacity:
            n = pv.capacity
        cons = rx.cached_cons
        avail = (rx.cached_prod - cons) & 0xFFFFFFFF
        if avail < n:
            rx.cached_prod = rx._prod[0]
            avail = (rx.cached_prod - cons) & 0xFFFFFFFF
        k = n if avail > n else avail
        if k:
            start = cons & rx.mask
            end = start + k
            if end <= rx.size:
                pv.addr[:k] = rx.addr[start:end]
                pv.data_len[:k] = rx.len[start:end]
            else:
                rx.read_descs(start, k, pv.addr, pv.data_len)
            rx.cached_cons = cons = (cons + k) & 0xFFFFFFFF
            rx._cons[0] = cons
            self.st_rx_rcvd_count += k
            pos = self._bytes_pos
            if pos + k > _BYTES_LOG:
                self._flush_bytes()
                pos = 0
            self._bytes_log[pos : pos + k] = pv.data_len[:k]
            self._bytes_pos = pos + k
        else:
            self.st_rx_ring_empty += 1
            if self.cfg.busy_poll:
                self._wakeup_rx()
                self.st_rx_busypoll_wakeup += 1
            elif self.cfg.need_wakeup and self.fq.need_wakeup():
                self._wakeup_rx()
                self.st_rx_poll_wakeup += 1
        pv.n = k
        # Keep the fill ring at its target level (refilled in batches); the rest of the pool
        # stays free for TX.
        fq = self.fq
        want = self.fill_target - ((fq.cached_prod - fq._cons[0]) & 0xFFFFFFFF)
        if want >= self.fill_batch:
            self._refill(want)
        return k

    def _wakeup_rx(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.recv(0, socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            if e.errno not in (_errno.EAGAIN, _errno.EBUSY, _errno.ENETDOWN, _errno.ENOBUFS):
                raise

    def set_free_sink(self, put_bulk) -> None:
        """Where completed TX frames go (default: this socket's pool). cndpfwd's fwd mode
        routes them back to the pool of the region they came from."""
        self._free = put_bulk

    def reap(self, n: int | None = None) -> int:
        """Return completed TX frames to the pool (or the free sink)."""
        cq = self.cq
        start, k = cq.peek(n or self.comp_size)
        if k == 0:
            self.st_cq_empty += 1
            return 0
        end = start + k
        if end <= cq.size:
            self._free(cq.addr[start:end])
        else:
            self._free(cq.addr[start:])
            self._free(cq.addr[: end - cq.size])
        cq.release(k)
        self.st_cq_buf_freed += k
        return k

    def kick(self) -> None:
        """Ask the kernel to transmit (sendto with MSG_DONTWAIT)."""
        self.st_tx_kicks += 1
        sock = self._txsock or self.sock
        if sock is None:
            return
        try:
            sock.send(b"", socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self.st_tx_kick_again += 1
        except OSError as e:
            if e.errno in (_errno.EAGAIN, _errno.EBUSY, _errno.ENOBUFS):
                self.st_tx_kick_again += 1
            elif e.errno == _errno.ENETDOWN:
                self.st_tx_kick_failed += 1
            else:
                self.st_tx_kick_failed += 1
                raise XskError(f"TX kick failed: {os.strerror(e.errno)}", errno=e.errno) from None

    def tx_burst(self, pv, n: int | None = None) -> int:
        """Queue the first n packets of ``pv`` for transmit; returns how many were queued.

        Queued frames belong to the kernel until they come back on the completion ring (and
        then to the pool); the caller still owns packets [sent:n] and must free or resend them.
        The no-wrap case is written out inline, as in rx_burst.
        """
        if n is None:
            n = pv.n
        cq = self.cq
        if cq.cached_prod != cq.cached_cons or cq._prod[0] != cq.cached_cons:
            self.reap()
        else:
            self.st_cq_empty += 1
        tx = self.tx
        prod = tx.cached_prod
        free = (tx.cached_cons - prod) & 0xFFFFFFFF
        if free < n:
            tx.cached_cons = (tx._cons[0] + tx.size) & 0xFFFFFFFF
            free = (tx.cached_cons - prod) & 0xFFFFFFFF
        k = n if free >= n else free
        if k < n:
            self.st_tx_ring_full += 1
        if k:
            start = prod & tx.mask
            end = start + k
            if end <= tx.size:
                tx.addr[start:end] = pv.addr[:k]
                tx.len[start:end] = pv.data_len[:k]
            else:
                tx.write_descs(start, pv.addr[:k], pv.data_len[:k])
            tx.cached_prod = prod = (prod + k) & 0xFFFFFFFF
            tx._prod[0] = prod
            pos = self._obytes_pos
            if pos + k > _BYTES_LOG:
                self._flush_bytes()
                pos = 0
            self._obytes_log[pos : pos + k] = pv.data_len[:k]
            self._obytes_pos = pos + k
            self.st_opackets += k
            if self._always_kick or tx._flags[0] & 1:  # XDP_RING_NEED_WAKEUP
                self.kick()
        elif (prod - tx._cons[0]) & 0xFFFFFFFF and (self._always_kick or tx._flags[0] & 1):
            self.kick()  # frames still queued from earlier bursts
        return k

    def flush(self, timeout: float = 1.0) -> bool:
        """Kick until the TX ring is drained and every frame completed (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap()
            if self.tx.pending() == 0 and self.in_flight() == 0:
                return True
            self.kick()
            time.sleep(0.0005)
        return False

    def in_flight(self) -> int:
        """Frames owned by the kernel on the TX side (queued or not yet completed)."""
        return (
            self.tx.cached_prod - self.tx_base - self.cq.cached_cons + self.cq_base
        ) & 0xFFFFFFFF

    def poll(self, timeout_ms: int) -> bool:
        """Sleep in poll() until the RX ring has frames; True when readable."""
        return bool(self._poll.poll(timeout_ms))

    # ---------------------------------------------------------------- stats
    def _flush_bytes(self) -> None:
        if self._bytes_pos:
            self.st_ibytes += int(self._bytes_log[: self._bytes_pos].sum(dtype=np.uint64))
            self._bytes_pos = 0
        if self._obytes_pos:
            self.st_obytes += int(self._obytes_log[: self._obytes_pos].sum(dtype=np.uint64))
            self._obytes_pos = 0

    def kernel_stats(self) -> dict[str, int]:
        if self.sock is None:
            return dict.fromkeys(sx.STAT_NAMES, 0)
        st = sx.statistics(self.sock)
        if self._txsock is not None:  # the TX counters are the TX socket's
            tst = sx.statistics(self._txsock)
            for k in st:
                if k.startswith("tx_"):
                    st[k] = tst[k]
        return st

    def stats(self) -> dict[str, int]:
        """CNDP lport_stats: our counters plus the kernel's XDP_STATISTICS."""
        self._flush_bytes()
        out = {k: getattr(self, "st_" + k) for k in STAT_KEYS}
        out["ipackets"] = self.st_rx_rcvd_count
        out["rx_buf_alloc"] = self.st_fq_add_count  # buffers handed to the kernel for RX
        kst = self.kernel_stats()
        base = self._kstats_base
        out["imissed"] = kst["rx_dropped"] - base["rx_dropped"]
        out["rx_invalid"] = kst["rx_invalid_descs"] - base["rx_invalid_descs"]
        out["tx_invalid"] = kst["tx_invalid_descs"] - base["tx_invalid_descs"]
        out["rx_ring_full"] = kst["rx_ring_full"] - base["rx_ring_full"]
        out["rx_fill_ring_empty"] = (
            kst["rx_fill_ring_empty_descs"] - base["rx_fill_ring_empty_descs"]
        )
        out["tx_ring_empty"] = kst["tx_ring_empty_descs"] - base["tx_ring_empty_descs"]
        out["ierrors"] = out["rx_invalid"]
        out["oerrors"] = out["tx_invalid"]
        return out

    def reset_stats(self) -> None:
        self._flush_bytes()
        for k in STAT_KEYS:
            setattr(self, "st_" + k, 0)
        self._kstats_base = self.kernel_stats()

    # ---------------------------------------------------------------- teardown
    @property
    def in_xskmap(self) -> bool:
        """Whether our socket is in the XSKMAP (so the XDP program redirects to it). The
        kernel refuses lookups in an XSKMAP from user space, so this is our own record of
        the successful insert, cleared when close() deletes the entry."""
        return self._in_map

    def close(self) -> None:
        """Detach what we attached, return every frame to the pool, unmap, close."""
        if self._closed:
            return
        self._closed = True
        cfg = self.cfg
        if self._xskmap is not None and self.sock is not None:
            with contextlib.suppress(BpfError):
                self._xskmap.delete(cfg.qid)
        self._in_map = False
        if self._program is not None:
            self._program.release()
            self._program = None
        elif self._xskmap is not None and self._xskmap.owned:
            self._xskmap.close()
        self._xskmap = None
        if self._rings:
            self._return_frames()
        for r in self._rings:
            r.release_views()
        self._rings = []
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:
                log.warning(
                    "a ring of %s:%d is still referenced; it is unmapped when the last view goes",
                    cfg.ifname,
                    cfg.qid,
                )
        self._maps = []
        if self._txsock is not None:
            self._txsock.close()
            self._txsock = None
        if self.sock is not None:
            _UmemShare.remove(self.umem, self)
            self.sock.close()
            self.sock = None
        if getattr(self, "_uds", None) is not None:
            from ..k8s import handshake

            handshake.release(self._uds)  # the last lport on the connection sends /fin
            self._uds = None
            self._uds_map_fd = None
        if getattr(self, "_own_pool", False):
            # Nobody else draws from a pool we created: with the socket gone every frame
            # is free again, including those the kernel still held internally.
            self.pool.reset()

    def _return_frames(self) -> None:
        """Give the pool back every frame the rings still hold (the socket is going away)."""
        # Frames in the fill ring, on RX not yet read, and TX not yet completed: the kernel
        # stops using them once the socket is closed, and we free them now, in bulk.
        if self.sock is not None:
            # We already left the XSKMAP: give a NAPI poll that may still be redirecting into
            # this socket a moment to finish before we take the fill ring's frames back.
            time.sleep(0.002)
        self.reap()
        # fill-ring frames came from our pool; queued TX frames may be anyone's (fwd mode)
        for ring, put in ((self.fq, self.pool.put_bulk), (self.tx, self._free)):
            cons = ring._cons[0]
            k = (ring.cached_prod - cons) & 0xFFFFFFFF
            if k:
                start = cons & ring.mask
                end = start + k
                if end <= ring.size:
                    put(ring.addr[start:end])
                else:
                    put(ring.addr[start:])
                    put(ring.addr[: end - ring.size])
        start, k = self.rx.peek(self.rx_size)
        if k:
            end = start + k
            if end <= self.rx.size:
                self.pool.put_bulk(self.rx.addr[start:end])
            else:
                self.pool.put_bulk(self.rx.addr[start:])
                self.pool.put_bulk(self.rx.addr[: end - self.rx.size])
            self.rx.release(k)
        # Frames the kernel consumed from the fill ring but never put on RX are lost to
        # the socket's teardown; they are the kernel's internal buffers.

    def __enter__(self) -> XskDev:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close()
