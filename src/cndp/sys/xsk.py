"""AF_XDP socket constants, structs and the calls Python's socket module cannot make."""

from __future__ import annotations

import errno as _errno
import mmap
import socket
import struct
import time
from dataclasses import dataclass

from .libc import bind_raw

AF_XDP = 44
SOL_XDP = 283

XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8
XDP_MAX_TX_SKB_BUDGET = 9  # kernel >= 6.17

XDP_OPTIONS_ZEROCOPY = 1 << 0

# sockaddr_xdp.sxdp_flags
XDP_SHARED_UMEM = 1 << 0
XDP_COPY = 1 << 1
XDP_ZEROCOPY = 1 << 2
XDP_USE_NEED_WAKEUP = 1 << 3

# ring flags word
XDP_RING_NEED_WAKEUP = 1 << 0

PGOFF_RX_RING = 0
PGOFF_TX_RING = 0x80000000
UMEM_PGOFF_FILL_RING = 0x100000000
UMEM_PGOFF_COMPLETION_RING = 0x180000000

SO_BUSY_POLL = 46
SO_PREFER_BUSY_POLL = 69
SO_BUSY_POLL_BUDGET = 70

XDP_DESC_SIZE = 16  # struct xdp_desc {u64 addr; u32 len; u32 options;}
ADDR_SIZE = 8  # fill/completion rings carry u64 addresses

STAT_NAMES = (
    "rx_dropped",
    "rx_invalid_descs",
    "tx_invalid_descs",
    "rx_ring_full",
    "rx_fill_ring_empty_descs",
    "tx_ring_empty_descs",
)


@dataclass(frozen=True)
class RingOffsets:
    producer: int
    consumer: int
    desc: int
    flags: int


@dataclass(frozen=True)
class MmapOffsets:
    rx: RingOffsets
    tx: RingOffsets
    fr: RingOffsets
    cr: RingOffsets


def xsk_socket() -> socket.socket:
    return socket.socket(AF_XDP, socket.SOCK_RAW, 0)


def umem_reg(
    sock: socket.socket, addr: int, length: int, chunk_size: int, headroom: int = 0, flags: int = 0
) -> None:
    sock.setsockopt(
        SOL_XDP, XDP_UMEM_REG, struct.pack("QQIIII", addr, length, chunk_size, headroom, flags, 0)
    )


def set_ring_size(sock: socket.socket, opt: int, n: int) -> None:
    sock.setsockopt(SOL_XDP, opt, struct.pack("I", n))


def mmap_offsets(sock: socket.socket) -> MmapOffsets:
    raw = sock.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, 128)
    vals = struct.unpack("16Q", raw)
    rings = [RingOffsets(*vals[i : i + 4]) for i in range(0, 16, 4)]
    return MmapOffsets(*rings)


def map_ring(
    sock: socket.socket, offs: RingOffsets, size: int, desc_size: int, pgoff: int
) -> mmap.mmap:
    length = offs.desc + size * desc_size
    return mmap.mmap(
        sock.fileno(),
        length,
        flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
        prot=mmap.PROT_READ | mmap.PROT_WRITE,
        offset=pgoff,
    )


def bind(
    sock: socket.socket, ifindex: int, queue_id: int, flags: int, shared_umem_fd: int = 0
) -> None:
    """bind(); EBUSY is retried briefly because the kernel frees a closed socket's buffer
    pool on (netdev, queue) from a workqueue, a moment after close() returns."""
    addr = struct.pack("HHIII", AF_XDP, flags, ifindex, queue_id, shared_umem_fd)
    deadline = time.monotonic() + 0.5
    while True:
        try:
            bind_raw(sock.fileno(), addr)
            return
        except OSError as e:
            if e.errno != _errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def statistics(sock: socket.socket) -> dict[str, int]:
    raw = sock.getsockopt(SOL_XDP, XDP_STATISTICS, 48)
    vals = struct.unpack("6Q", raw.ljust(48, b"\0"))
    return dict(zip(STAT_NAMES, vals, strict=True))


def options(sock: socket.socket) -> int:
    return struct.unpack("I", sock.getsockopt(SOL_XDP, XDP_OPTIONS, 4))[0]


def set_busy_poll(sock: socket.socket, timeout_us: int, budget: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, timeout_us)
    sock.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET, budget)


def set_tx_skb_budget(sock: socket.socket, budget: int) -> bool:
    """Raise the copy-mode TX batch (kernel >= 6.17). False when the kernel lacks it."""
    try:
        sock.setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, budget)
    except OSError as e:
        if e.errno in (_errno.ENOPROTOOPT, _errno.EINVAL, _errno.EOPNOTSUPP):
            return False
        raise
    return True
