"""Mempool: a LIFO stack of free frame addresses (UMEM offsets) in one numpy array.

There are no per-buffer Python objects and no per-buffer Python loops: getting or putting a
burst is a slice copy plus an integer update. LIFO order keeps recently used (cache-hot) frames
in circulation, like CNDP's per-lcore mempool cache.

Addresses are UMEM offsets. A fresh pool holds frame *starts*. The kernel hands back addresses
inside frames (RX and completion descriptors point at packet data); those may be put back as
they are (a later get returns them unchanged, and AF_XDP aligned mode masks fill addresses to
the frame anyway) or rounded first with ``frame_of()``. Code that builds packets in a frame
must round down (``PktVec.alloc_from`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CndpError, ConfigError, PoolExhausted

_U64 = np.uint64


class Mempool:
    """A fixed set of frame addresses with O(1)-per-burst get/put.

    Ownership rule: an address returned by a get is owned by the caller until it is given back
    with ``put_bulk``. Putting back an address twice, or one that never came from this pool, is
    a bug: with ``debug=True`` it is caught (and named) on the spot; without it only an overflow
    beyond ``capacity`` is detected, later.
    """

    __slots__ = (
        "_base",
        "_bufsz",
        "_cap",
        "_is_free",
        "_member",
        "_orig",
        "_stack",
        "_top",
        "alloc_fail",
        "alloc_ok",
        "debug",
        "freed",
        "name",
    )

    def __init__(
        self, addrs: np.ndarray, *, bufsz: int, name: str = "mp", debug: bool = False
    ) -> None:
        self.name = name
        a = np.asarray(addrs)
        if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            raise ConfigError(
                f"mempool {name!r}: addrs must be a non-empty 1-D integer array, "
                f"got shape {a.shape} dtype {a.dtype}",
                fix="pass Umem.frame_addrs(region) or use Mempool.for_region(umem, region)",
            )
        if np.issubdtype(a.dtype, np.signedinteger) and (a < 0).any():
            raise ConfigError(
                f"mempool {name!r}: negative frame address {int(a.min())}",
                fix="frame addresses are UMEM offsets (>= 0)",
            )
        if isinstance(bufsz, bool) or not isinstance(bufsz, (int, np.integer)) or bufsz <= 0:
            raise ConfigError(
                f"mempool {name!r}: bufsz must be a positive integer, got {bufsz!r}",
                fix="pass the UMEM frame size, e.g. bufsz=2048",
            )
        a = a.astype(_U64)
        if np.unique(a).size != a.size:
            raise ConfigError(
                f"mempool {name!r}: addrs contains duplicate frame addresses",
                fix="give every frame address exactly once",
            )
        self._bufsz = int(bufsz)
        self._cap = int(a.size)
        self._orig = a
        self._base = int(a.min())
        # Stored reversed and popped from the end so a fresh pool hands out the lowest
        # addresses first, in ascending order.
        self._stack = a[::-1].copy()
        self._top = self._cap
        self.alloc_ok = 0  # buffers handed out
        self.alloc_fail = 0  # requests that could not be fully served
        self.freed = 0  # buffers given back
        self.debug = bool(debug)
        self._member: np.ndarray | None = None
        self._is_free: np.ndarray | None = None
        if self.debug:
            self._init_debug()

    @classmethod
    def for_region(
        cls,
        umem: Any,
        region_index: int = 0,
        name: str | None = None,
        *,
        debug: bool = False,
    ) -> Mempool:
        """A pool over every frame of one UMEM region."""
        addrs = umem.frame_addrs(region_index)
        if name is None:
            name = f"{umem.name}.r{region_index}"
        return cls(addrs, bufsz=umem.bufsz, name=name, debug=debug)

    # -- debug bookkeeping (vectorised; a boolean per frame number) -------------------------
    def _init_debug(self) -> None:
        rel = self._orig - _U64(self._base)
        if (rel % _U64(self._bufsz)).any():
            raise ConfigError(
                f"mempool {self.name!r}: debug mode needs frame addresses on a bufsz grid",
                fix="use frame starts spaced by a multiple of bufsz, or debug=False",
            )
        idx = (rel // _U64(self._bufsz)).astype(np.intp)
        nslots = int(idx.max()) + 1
        self._member = np.zeros(nslots, dtype=bool)
        self._member[idx] = True
        self._is_free = self._member.copy()  # at construction every frame is free

    def _mark_taken(self, got: np.ndarray) -> None:
        assert self._is_free is not None
        idx = ((got - _U64(self._base)) // _U64(self._bufsz)).astype(np.intp)
        self._is_free[idx] = False

    def _check_put(self, addrs: np.ndarray) -> None:
        assert self._is_free is not None and self._member is not None
        a = np.asarray(addrs)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise CndpError(
                f"mempool {self.name!r}: put_bulk needs a 1-D integer array, "
                f"got shape {a.shape} dtype {a.dtype}",
                fix="pass the uint64 frame addresses obtained from this pool",
            )
        if a.size == 0:
            return
        # Any address inside a frame identifies that frame (the kernel hands back addresses
        # inside frames, and AF_XDP aligned mode masks them to the frame anyway).
        rel = a.astype(np.int64) - self._base
        nslots = self._member.size
        bad = (rel < 0) | (rel >= nslots * self._bufsz)
        idx = rel // self._bufsz
        bad[~bad] |= ~self._member[idx[~bad]]
        if bad.any():
            addr = int(a[int(bad.argmax())])
            raise CndpError(
                f"mempool {self.name!r}: put_bulk got address {addr:#x} which is not inside "
                f"a frame of this pool",
                fix="only put back addresses of buffers obtained from this same pool",
            )
        already = self._is_free[idx]
        if already.any():
            i = int(already.argmax())
            addr = int(a[i])
            frame = self._base + int(idx[i]) * self._bufsz
            where = "" if addr == frame else f" (address {addr:#x})"
            raise CndpError(
                f"mempool {self.name!r}: double free of frame {frame:#x}{where}: "
                f"it is already free",
                fix="put each buffer back exactly once",
            )
        s = np.sort(idx)
        dup = s[1:] == s[:-1]
        if dup.any():
            addr = self._base + int(s[1:][dup][0]) * self._bufsz
            raise CndpError(
                f"mempool {self.name!r}: double free of frame {addr:#x} "
                f"(it appears twice in one put_bulk)",
                fix="put each buffer back exactly once",
            )
        self._is_free[idx] = True

    # -- sizes ------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def avail(self) -> int:
        """Number of free buffers."""
        return self._top

    @property
    def in_use(self) -> int:
        return self._cap - self._top

    @property
    def bufsz(self) -> int:
        return self._bufsz

    @property
    def base(self) -> int:
        """Lowest frame address of the pool."""
        return self._base

    def full(self) -> bool:
        return self._top == self._cap

    def empty(self) -> bool:
        return self._top == 0

    def __len__(self) -> int:
        return self._top

    # -- get / put --------------------------------------------------------------------------
    def get_bulk(self, n: int) -> np.ndarray:
        """Exactly ``n`` addresses in a new uint64 array, or PoolExhausted (pool unchanged)."""
        top = self._top
        if n < 0:
            raise ConfigError(f"mempool {self.name!r}: get_bulk({n}) needs n >= 0")
        if n > top:
            self.alloc_fail += 1
            raise PoolExhausted(
                f"mempool {self.name!r}: asked for {n} buffers but only {top} of "
                f"{self._cap} are free",
                fix="return buffers with put_bulk() sooner, ask for fewer, or give the UMEM "
                "region more buffers (bufcnt)",
            )
        new_top = top - n
        out = self._stack[new_top:top][::-1].copy()
        self._top = new_top
        self.alloc_ok += n
        if self._is_free is not None:
            self._mark_taken(out)
        return out

    def get_burst(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Up to ``n`` addresses (possibly fewer, possibly none).

        With ``out`` (a uint64 array of length >= n) they are written to ``out[:k]`` and that
        view is returned, so the call allocates nothing.
        """
        top = self._top
        k = n if n <= top else top
        if k < 0:
            raise ConfigError(f"mempool {self.name!r}: get_burst({n}) needs n >= 0")
        if k < n:
            self.alloc_fail += 1
        new_top = top - k
        src = self._stack[new_top:top][::-1]
        if out is None:
            res = src.copy()
        else:
            res = out[:k]
            res[...] = src
        self._top = new_top
        self.alloc_ok += k
        if self._is_free is not None:
            self._mark_taken(res)
        return res

    def take(self, n: int) -> np.ndarray:
        """Up to ``n`` addresses as a VIEW into the free stack (fast path, no copy).

        The view is valid only until the next ``put_bulk`` (which overwrites that part of the
        stack): copy it (e.g. into a ring or a PktVec) before putting anything back.
        """
        top = self._top
        k = n if n <= top else top
        if k < 0:
            raise ConfigError(f"mempool {self.name!r}: take({n}) needs n >= 0")
        if k < n:
            self.alloc_fail += 1
        new_top = top - k
        res = self._stack[new_top:top][::-1]
        self._top = new_top
        self.alloc_ok += k
        if self._is_free is not None:
            self._mark_taken(res)
        return res

    def put_bulk(self, addrs: np.ndarray) -> None:
        """Give frame-start addresses back. Overflowing capacity raises CndpError."""
        if self._is_free is not None:
            # Debug first: it names the bad address, which the overflow check cannot.
            self._check_put(addrs)
        k = len(addrs)
        top = self._top
        if top + k > self._cap:
            raise CndpError(
                f"mempool {self.name!r}: put_bulk of {k} buffers would overflow the pool "
                f"({top} free of {self._cap}): a buffer was freed twice or does not belong "
                f"to this pool",
                fix="put each buffer back exactly once, to the pool it came from; "
                "create the pool with debug=True to find the culprit",
            )
        self._stack[top : top + k] = addrs
        self._top = top + k
        self.freed += k

    def reset(self) -> None:
        """Make every frame free again (when whoever held frames, e.g. a closed socket, is
        gone and the holdings cannot be returned one by one)."""
        self._stack[:] = self._orig[::-1]
        self._top = self._cap
        if self._member is not None:
            self._is_free = self._member.copy()

    # -- helpers ----------------------------------------------------------------------------
    def frame_of(self, addrs: np.ndarray) -> np.ndarray:
        """Frame start of each address (addresses may point anywhere inside a frame)."""
        a = np.asarray(addrs, dtype=_U64)
        if self._base % self._bufsz == 0:
            return a - a % _U64(self._bufsz)
        return a - (a - _U64(self._base)) % _U64(self._bufsz)

    def all_addrs(self) -> np.ndarray:
        """Copy of every frame address of the pool (free or not), as given at creation."""
        return self._orig.copy()

    def free_addrs(self) -> np.ndarray:
        """Copy of the currently free addresses (top of stack last)."""
        return self._stack[: self._top].copy()

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity": self._cap,
            "avail": self._top,
            "in_use": self._cap - self._top,
            "alloc_ok": self.alloc_ok,
            "alloc_fail": self.alloc_fail,
            "freed": self.freed,
        }

    def __repr__(self) -> str:
        return (
            f"Mempool({self.name!r}, capacity={self._cap}, avail={self._top}, "
            f"bufsz={self._bufsz}, debug={self.debug})"
        )
