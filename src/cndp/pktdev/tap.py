"""net_tap: a TAP device (``/dev/net/tun``, IFF_TAP | IFF_NO_PI) as a port.

``port_setup`` creates the TAP device ``ifname`` in the calling thread's network namespace and
brings it up; ``ip link`` shows it while the port is open and ``close()`` removes it (a
non-persistent TAP goes with its last fd). If a persistent TAP of that name already exists (``ip
tuntap add``) the port attaches to it and leaves it in place on close. A name that belongs to
another kind of netdev is refused (EINVAL from TUNSETIFF).

Data path: a TAP hands over one frame per ``read()`` and takes one per ``write()``; no batching
syscall exists for it, so this is the one driver with a per-packet Python loop. It is kept to
one bound-method call per packet on a non-blocking fd (``FileIO.readinto``/``write`` into
memoryview slices of the UMEM; EAGAIN ends the burst without an exception), with the frame
offsets turned into a Python list once per burst. RX frames come from a small cache refilled
from the pool in bulk, so an idle poll costs one ``read()``. Transmitted frames are copied by
the kernel during ``write()`` and go back to the pool at the end of the burst.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import io
import os
import struct
from typing import Any

import numpy as np

from ..errors import NetdevError, PrivilegeError
from ..mem.umem import XDP_PKT_HEADROOM
from ..sys import netdev
from .port import Port, register_driver

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
RX_CACHE = 256  # frames taken from the pool at a time for RX

_U64 = np.uint64


@register_driver
class TapPort(Port):
    pmd_name = "net_tap"
    needs_netdev = True
    counters = (
        "ipackets",
        "opackets",
        "ierrors",
        "oerrors",
        "odropped",
        "rx_ring_empty",
        "rx_buf_alloc",
        "rx_burst_called",
    )

    def __init__(self, lport: int, cfg: Any) -> None:
        super().__init__(lport, cfg)
        self.fd = -1
        self._fio: io.FileIO | None = None
        self._mv: memoryview | None = None
        self._created = False
        self._cache = np.zeros(RX_CACHE, _U64)  # frame starts
        self._cache_list: list[int] = []  # the same, as Python ints (data offsets)
        self._cpos = 0  # next unused cache entry
        self._ccnt = 0  # valid cache entries

    # -- setup -------------------------------------------------------------------------------
    def _open(self) -> None:
        name = self.ifname
        raw = name.encode() if isinstance(name, str) else b""
        if not raw or len(raw) >= IFNAMSIZ or b"/" in raw or b"\0" in raw or b" " in raw:
            raise NetdevError(
                f"lport {self.name!r}: {name!r} is not a valid TAP device name",
                errno=_errno.EINVAL,
                fix="use 1..15 characters without '/' or spaces",
            )
        try:
            existed = netdev.ifindex(name) > 0
        except NetdevError:
            existed = False
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetdevError(
                f"{TUN_PATH} does not exist", fix="load the tun module (modprobe tun)"
            ) from None
        except PermissionError as e:
            raise PrivilegeError(
                f"opening {TUN_PATH}: permission denied", errno=e.errno, fix="needs CAP_NET_ADMIN"
            ) from None
        self.fd = fd
        ifr = struct.pack("16sH22x", raw, IFF_TAP | IFF_NO_PI)
        try:
            out = fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as e:
            code = e.errno or 0
            if code in (_errno.EPERM, _errno.EACCES):
                raise PrivilegeError(
                    f"creating TAP {name!r}: permission denied",
                    errno=code,
                    fix="needs CAP_NET_ADMIN",
                ) from None
            why = {
                _errno.EINVAL: "a netdev of that name exists and is not a TAP device",
                _errno.EBUSY: "the TAP device is already in use by another fd",
            }.get(code, os.strerror(code))
            raise NetdevError(
                f"creating TAP {name!r} failed: {why}",
                errno=code,
                fix="pick a name that `ip link` does not list",
            ) from None
        self.ifname = out[:IFNAMSIZ].split(b"\0", 1)[0].decode()
        self._created = not existed
        self._fio = io.FileIO(fd, "r+b", closefd=False)
        assert self.umem is not None
        self._mv = memoryview(self.umem.data)
        self._bufsz = self.umem.bufsz
        self._room = self.umem.bufsz - XDP_PKT_HEADROOM
        netdev.link_up(self.ifname)

    def _mtu_limited(self) -> bool:
        return True

    # -- data path ---------------------------------------------------------------------------
    def _refill(self) -> None:
        """Top the RX cache up from the pool (unused entries move to the front)."""
        left = self._ccnt - self._cpos
        cache = self._cache
        if left:
            cache[:left] = cache[self._cpos : self._ccnt]
        got = self.pool.get_burst(RX_CACHE - left, out=cache[left:])  # type: ignore[union-attr]
        k = len(got)
        if k:
            # handles may point inside frames: round down to the frame start
            got -= got % _U64(self._bufsz)
            self.st_rx_buf_alloc += k
        self._ccnt = left + k
        self._cpos = 0
        self._cache_list = (cache[: self._ccnt] + _U64(XDP_PKT_HEADROOM)).tolist()

    def _rx(self, pv: Any, n: int | None = None) -> int:
        self.st_rx_burst_called += 1
        if n is None or n > pv.capacity:
            n = pv.capacity
        pos = self._cpos
        if self._ccnt - pos < n:
            self._refill()
            pos = 0
            if self._ccnt < n:
                n = self._ccnt
        readinto = self._fio.readinto  # type: ignore[union-attr]
        mv = self._mv
        room = self._room
        lens: list[int] = []
        bad = 0
        # One read() per frame: the TAP offers nothing else (see the module docstring). A
        # frame that fills the whole buffer may have been cut short (the tun driver truncates
        # silently); set_mtu() keeps legitimate frames below that size.
        for off in self._cache_list[pos : pos + n]:
            try:
                r = readinto(mv[off : off + room])  # type: ignore[index]
            except OSError:
                r = room  # the frame is lost: treat like a truncated one
            if not r:
                break
            if r >= room:
                bad += 1
            lens.append(r)
        k = len(lens)
        if bad:
            return self._rx_drop_bad(pv, pos, lens)
        if k:
            hi = pos + k
            np.add(self._cache[pos:hi], _U64(XDP_PKT_HEADROOM), out=pv.addr[:k])
            pv.data_len[:k] = lens
            pv.port[:k] = self.lport
            self._cpos = hi
            self.st_ipackets += k
            self.ibytes.sum += sum(lens)
        else:
            self.st_rx_ring_empty += 1
        pv.n = k
        return k

    def _rx_drop_bad(self, pv: Any, pos: int, lens: list[int]) -> int:
        """Slow path: drop truncated frames (ierrors); their frames go back to the pool."""
        m = len(lens)
        la = np.array(lens, np.int64)
        good = la < self._room
        frames = self._cache[pos : pos + m]
        self.pool.put_bulk(frames[~good])  # type: ignore[union-attr]
        g = int(good.sum())
        np.add(frames[good], _U64(XDP_PKT_HEADROOM), out=pv.addr[:g])
        pv.data_len[:g] = la[good]
        pv.port[:g] = self.lport
        self._cpos = pos + m
        self.st_ierrors += m - g
        self.st_ipackets += g
        self.ibytes.sum += int(la[good].sum())
        pv.n = g
        return g

    def _tx(self, pv: Any, n: int | None = None) -> int:
        if n is None or n > pv.n:
            n = pv.n
        if n <= 0:
            return 0
        write = self._fio.write  # type: ignore[union-attr]
        mv = self._mv
        sent = 0
        nbytes = 0
        k = 0
        for off, ln in zip(pv.addr[:n].tolist(), pv.data_len[:n].tolist(), strict=True):
            try:
                w = write(mv[off : off + ln])  # type: ignore[index]
            except OSError as e:
                if e.errno in (_errno.EAGAIN, _errno.ENOBUFS):
                    break
                self.st_oerrors += 1  # dropped (EIO when the link is down, EINVAL...)
                k += 1
                continue
            if w is None:  # EAGAIN: the caller keeps the rest
                break
            k += 1
            sent += 1
            nbytes += ln
        if k:
            self.pool.put_bulk(pv.addr[:k])  # type: ignore[union-attr]
        self.st_opackets += sent
        self.st_odropped += k - sent
        self.obytes.sum += nbytes
        return k

    # -- misc --------------------------------------------------------------------------------
    def fileno(self) -> int | None:
        return self.fd if self.fd >= 0 else None

    def rx_desc(self) -> int:
        return RX_CACHE  # frames staged for RX (the kernel queues up to txqueuelen frames)

    def tx_desc(self) -> int:
        return 0  # write() is synchronous

    def _close(self) -> None:
        # unused RX cache frames go back to the pool
        if self._ccnt > self._cpos and self.pool is not None:
            self.pool.put_bulk(self._cache[self._cpos : self._ccnt])
        self._cpos = self._ccnt = 0
        self._cache_list = []
        if self._fio is not None:
            self._fio.close()  # closefd=False: only the wrapper
            self._fio = None
        if self._mv is not None:
            self._mv.release()
            self._mv = None
        if self.fd >= 0:
            os.close(self.fd)  # a non-persistent TAP disappears with its last fd
            self.fd = -1
