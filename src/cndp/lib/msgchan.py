"""Named two-way message channels between worker processes (CNDP ``msgchan``).

CNDP semantics: the first ``create(name)`` makes the *parent*; a later ``create`` of the same
name returns the *child*, whose send and receive rings are the parent's swapped, so what one
side sends the other receives. Messages are 64-bit values (frame addresses, small ids,
encoded commands), sent and received in batches.

Our workers are forked processes, so a channel lives in shared memory: a file in ``/dev/shm``
(``pycndp-mc.<name>``) holding a header page and two single-producer/single-consumer rings.
The rings are the AF_XDP-layout rings of ``cndp.xskdev.ring`` (the same ``ProdRing``/
``ConsRing`` verbs and layout that ``cndp.app.xfer.AddrRing`` uses between workers), so a batch
moves with a slice copy and one index store. Because the name is in the file system, the
parent and the child need not be related: a channel created before the workers fork, or by
one worker after they forked, is found by name from any process of the same user.

Differences from CNDP, by design:

* One child per channel (the rings are SPSC; CNDP's default MP/MC rings allow several). A
  second child while the first is alive is refused: use another name.
* Ring capacity is ``size`` (a power of two), not ``size - 1``.
* Destroying the parent unlinks the name; a child keeps its mapping (no use-after-free) until
  it destroys its end. If the creating process died without destroying, the next ``create``
  of the name reclaims the stale file and becomes the parent.
* Each endpoint must be used by one process: a forked worker calls ``create(name)`` to get its
  own (child) end rather than using an endpoint inherited from its parent process.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import re
import struct
import time
from pathlib import Path

import numpy as np

from ..errors import CndpError, ConfigError
from ..sys.xsk import ADDR_SIZE, RingOffsets
from ..xskdev.ring import ConsRing, ProdRing

MC_NO_CHILD_CREATE = 0x80000000
SHM_DIR = "/dev/shm"
PREFIX = "pycndp-mc."
NAME_MAX = 32  # CNDP: CNE_NAME_LEN
MAX_SIZE = 1 << 24

_PAGE = mmap.PAGESIZE
_MAGIC = 0x434D_5044_4E43_5950  # "PYCNDPMC" little-endian
_VERSION = 1
# header: magic u64, version u32, size u32, parent pid i64, child pid i64
_HDR = struct.Struct("<QIIqq")
_CTR_OFF = 64  # two blocks of 8 u64 counters: parent's at 64, child's at 128
_NAME_OFF = 256
_OFFS = RingOffsets(producer=0, consumer=64, desc=192, flags=128)  # as simring/xfer
_COUNTERS = ("send_calls", "send_cnt", "send_full", "recv_calls", "recv_cnt", "recv_empty")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:@+-]+$")

# endpoints opened by this process: name -> list of MsgChan (filtered by pid on use)
_open: dict[str, list[MsgChan]] = {}


class MsgChanError(CndpError):
    """A message channel cannot be created, attached or used."""


def _path(name: str) -> Path:
    return Path(SHM_DIR) / f"{PREFIX}{name}"


def _ring_bytes(size: int) -> int:
    raw = _OFFS.desc + size * ADDR_SIZE
    return -(-raw // _PAGE) * _PAGE


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not _NAME_RE.match(name):
        raise ConfigError(
            f"msgchan name {name!r} is invalid",
            fix=f"1..{NAME_MAX} characters from A-Z a-z 0-9 _ . : @ + -",
        )


class MsgChan:
    """One end of a channel: ``send`` goes to the other end's ``recv``."""

    def __init__(self, name: str, fd: int, size: int, role: str):
        self.name = name
        self.size = size
        self.role = role  # "parent" or "child"
        self.pid = os.getpid()
        self._fd = fd
        rb = _ring_bytes(size)
        self._hdr = mmap.mmap(fd, _PAGE, offset=0)
        maps = [mmap.mmap(fd, rb, offset=_PAGE), mmap.mmap(fd, rb, offset=_PAGE + rb)]
        # ring 0 carries parent -> child, ring 1 child -> parent
        send_mm, recv_mm = maps if role == "parent" else maps[::-1]
        self._maps = [send_mm, recv_mm]
        self._send = ProdRing(send_mm, _OFFS, size, xdp_desc=False)
        self._recv = ConsRing(recv_mm, _OFFS, size, xdp_desc=False)
        side = 0 if role == "parent" else 1
        mv = memoryview(self._hdr)
        self._ctr = mv[_CTR_OFF + side * 64 : _CTR_OFF + side * 64 + 64].cast("Q")
        self._peer_ctr = mv[_CTR_OFF + (1 - side) * 64 : _CTR_OFF + (2 - side) * 64].cast("Q")
        mv.release()
        self.closed = False

    # -- names ------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """CNDP's ``mc_name``: ``P:<name>`` for the parent, ``C0:<name>`` for the child."""
        return f"{'P' if self.role == 'parent' else 'C0'}:{self.name}"

    def __repr__(self) -> str:
        return f"MsgChan({self.label!r}, size={self.size}, pid={self.pid})"

    def _live(self) -> None:
        if self.closed:
            raise MsgChanError(f"msgchan {self.label} is destroyed", fix="create it again")

    # -- data -------------------------------------------------------------------------------

    def send(self, objs) -> int:
        """Enqueue up to ``len(objs)`` 64-bit values; returns how many fitted (``mc_send``)."""
        self._live()
        vals = np.asarray(objs)
        if vals.dtype != np.uint64:
            vals = vals.astype(np.uint64)
        vals = vals.reshape(-1)
        c = self._ctr
        c[0] += 1
        p = self._send
        start, k = p.reserve(len(vals))
        if k:
            p.write_addrs(start, vals[:k])
            p.submit(k)
            c[1] += k
        if k != len(vals):
            c[2] += 1
        return k

    def recv_into(self, out: np.ndarray, timeout_ms: float = 0) -> int:
        """Dequeue up to ``len(out)`` values into ``out`` (uint64); waits up to ``timeout_ms``
        for the first one (``mc_recv``). Returns how many."""
        self._live()
        c = self._ctr
        c[3] += 1
        n = len(out)
        if n == 0:
            return 0
        r = self._recv
        start, k = r.peek(n)
        if not k and timeout_ms > 0:
            deadline = time.monotonic() + timeout_ms / 1000.0
            nap = 20e-6  # back off from 20 us to 1 ms: little latency, little CPU
            while True:
                start, k = r.peek(n)
                if k:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(nap, left))
                nap = min(nap * 2, 1e-3)
        if not k:
            c[5] += 1
            return 0
        r.read_addrs(start, k, out)
        r.release(k)
        c[4] += k
        return k

    def recv(self, n: int = 256, timeout_ms: float = 0) -> np.ndarray:
        """Up to ``n`` values as a new uint64 array (empty on timeout)."""
        out = np.empty(n, np.uint64)
        return out[: self.recv_into(out, timeout_ms)]

    # -- state ------------------------------------------------------------------------------

    def recv_count(self) -> int:
        return (self._recv.producer - self._recv.consumer) & 0xFFFFFFFF

    def send_count(self) -> int:
        return (self._send.producer - self._send.consumer) & 0xFFFFFFFF

    def size_info(self) -> tuple[int, int, int]:
        """``mc_size``: (capacity, free slots in the receive ring, free in the send ring)."""
        self._live()
        return self.size, self.size - self.recv_count(), self.size - self.send_count()

    def info(self) -> dict:
        """``mc_info``: this end's counters (and the peer's, from shared memory)."""
        self._live()
        _, _, size, ppid, cpid = _HDR.unpack_from(self._hdr, 0)
        return {
            "name": self.name,
            "label": self.label,
            "size": size,
            "parent_pid": ppid,
            "child_pid": cpid,
            "recv_count": self.recv_count(),
            "send_count": self.send_count(),
            **{k: self._ctr[i] for i, k in enumerate(_COUNTERS)},
            "peer": {k: self._peer_ctr[i] for i, k in enumerate(_COUNTERS)},
        }

    # -- teardown ---------------------------------------------------------------------------

    def destroy(self) -> None:
        """``mc_destroy``: the parent unlinks the name; the child frees the child slot."""
        if self.closed:
            return
        self.closed = True
        if self.pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                cpid = _HDR.unpack_from(self._hdr, 0)[4]
                if self.role == "parent":
                    path = _path(self.name)
                    try:
                        if os.stat(path).st_ino == os.fstat(self._fd).st_ino:
                            path.unlink()
                    except FileNotFoundError:
                        pass
                    struct.pack_into("<q", self._hdr, 16, 0)
                elif cpid == self.pid:
                    struct.pack_into("<q", self._hdr, 24, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._close()
        ends = _open.get(self.name, [])
        if self in ends:
            ends.remove(self)
        if not ends:
            _open.pop(self.name, None)

    def _close(self) -> None:
        self._send.release_views()
        self._recv.release_views()
        self._ctr.release()
        self._peer_ctr.release()
        for mm in (*self._maps, self._hdr):
            mm.close()
        os.close(self._fd)

    def __enter__(self) -> MsgChan:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


# --------------------------------------------------------------------------------------------
# create / lookup / list


def _new_file(name: str, size: int) -> tuple[int, Path]:
    """A fully initialised channel file under a temporary name ('#' is not allowed in names)."""
    path = _path(name)
    tmp = path.with_name(f"{path.name}#tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        raise MsgChanError(
            f"cannot create msgchan {name!r} in {SHM_DIR}: {e.strerror}",
            errno=e.errno,
            fix=f"{SHM_DIR} must be a writable tmpfs",
        ) from e
    try:
        os.ftruncate(fd, _PAGE + 2 * _ring_bytes(size))
        os.pwrite(fd, _HDR.pack(_MAGIC, _VERSION, size, os.getpid(), 0), 0)
        os.pwrite(fd, name.encode(), _NAME_OFF)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd, tmp


def _read_hdr(fd: int) -> tuple[int, int, int, int, int]:
    raw = os.pread(fd, _HDR.size, 0)
    if len(raw) < _HDR.size:
        return (0, 0, 0, 0, 0)
    return _HDR.unpack(raw)


def create(name: str, size: int = 1024, flags: int = 0) -> MsgChan:
    """``mc_create``: the parent end if ``name`` is new, else the child end of that channel.

    ``size``: ring entries (power of two; a child takes the parent's). ``flags``:
    ``MC_NO_CHILD_CREATE`` makes an existing name an error instead of a child."""
    _check_name(name)
    if flags & ~MC_NO_CHILD_CREATE:
        raise ConfigError(
            f"msgchan flags {flags:#x} unknown",
            fix="only MC_NO_CHILD_CREATE (rings are always single-producer/single-consumer)",
        )
    if size < 2 or size > MAX_SIZE or size & (size - 1):
        raise ConfigError(
            f"msgchan size {size} is not a power of two in 2..{MAX_SIZE}",
            fix="use e.g. 256, 1024 or 4096 entries",
        )
    path = _path(name)
    for _ in range(16):  # retries only when racing other creators/destroyers of the name
        fd, tmp = _new_file(name, size)
        try:
            os.link(tmp, path)  # atomic: only a fully initialised file ever has the name
        except FileExistsError:
            os.close(fd)
        else:
            return _register(MsgChan(name, fd, size, "parent"))
        finally:
            tmp.unlink(missing_ok=True)
        mc = _attach(name, size, flags)
        if mc is not None:
            return mc
    raise MsgChanError(f"msgchan {name!r} keeps changing under us", fix="retry")


def _attach(name: str, size: int, flags: int) -> MsgChan | None:
    """Child end of an existing channel (or a reclaimed stale one); None: retry create."""
    path = _path(name)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None  # its parent destroyed it meanwhile
    keep = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return None  # replaced while we waited for the lock
        except FileNotFoundError:
            return None
        magic, ver, fsize, ppid, cpid = _read_hdr(fd)
        if magic != _MAGIC or ver != _VERSION:
            raise MsgChanError(
                f"{path} is not a pycndp msgchan (or another version)",
                fix="remove the file or use another name",
            )
        if not _alive(ppid):
            # The creator died without destroying. Reclaim the name with a new file (an old
            # child still mapping the old one keeps it, unharmed) and become its parent.
            nfd, tmp = _new_file(name, size)
            try:
                os.replace(tmp, path)
                mc = MsgChan(name, nfd, size, "parent")
            except BaseException:
                os.close(nfd)
                tmp.unlink(missing_ok=True)
                raise
            return _register(mc)
        if flags & MC_NO_CHILD_CREATE:
            raise MsgChanError(
                f"msgchan {name!r} exists (parent pid {ppid}) and MC_NO_CHILD_CREATE is set",
                errno=errno.EEXIST,
                fix="use another name or drop MC_NO_CHILD_CREATE to attach as its child",
            )
        if cpid and cpid != os.getpid() and _alive(cpid):
            raise MsgChanError(
                f"msgchan {name!r} already has a child (pid {cpid})",
                errno=errno.EBUSY,
                fix="one child per channel (SPSC rings): create another channel name",
            )
        os.pwrite(fd, struct.pack("<q", os.getpid()), 24)
        mc = MsgChan(name, fd, fsize, "child")
        keep = True
        return _register(mc)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        if not keep:
            os.close(fd)


def _register(mc: MsgChan) -> MsgChan:
    _open.setdefault(mc.name, []).append(mc)
    return mc


def lookup(name: str) -> MsgChan | None:
    """``mc_lookup``: this process's end of ``name`` (the parent end if it holds both)."""
    pid = os.getpid()
    ends = [m for m in _open.get(name, []) if m.pid == pid and not m.closed]
    ends.sort(key=lambda m: m.role != "parent")
    return ends[0] if ends else None


def destroy(mc: MsgChan) -> None:
    mc.destroy()


def list_channels() -> list[dict]:
    """``mc_list``: every channel in ``SHM_DIR`` (any process of this user)."""
    out = []
    for p in sorted(Path(SHM_DIR).glob(f"{PREFIX}*")):
        if "#" in p.name:
            continue  # a channel file still being created
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            magic, _, size, ppid, cpid = _read_hdr(fd)
        finally:
            os.close(fd)
        if magic != _MAGIC:
            continue
        out.append(
            {
                "name": p.name[len(PREFIX) :],
                "size": size,
                "parent_pid": ppid,
                "child_pid": cpid,
                "stale": not _alive(ppid),
            }
        )
    return out
