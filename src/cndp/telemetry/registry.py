"""The metrics registry: named counter blocks in shared memory.

A *block* is a 2-D ``uint64`` numpy array (one row per object, one column per key) in an
anonymous ``MAP_SHARED`` mapping, so it means the same memory in the process that created it
and in every worker forked after. Blocks are created in the main process **before** the
workers fork (:meth:`Registry.freeze` enforces it); workers write, the control side (telemetry
socket, CLI, exporter) reads.

The standard blocks of an application run by :class:`cndp.app.runtime.Runtime`:

- ``lport``, per queue (an lport is one queue of one netdev): one row per lport in config
  order, CNDP's ``lport_stats`` keys (``STAT_KEYS``);
- ``worker``, per worker process: one row per thread, :data:`WORKER_KEYS`.

Per port (netdev) figures are the ``lport`` rows summed by their ``netdev`` label
(:meth:`BlockSnapshot.group_by`).

Writing (worker side): one writer per row, never two. A :class:`RowWriter` stores a whole row
with a single numpy assignment between two increments of the row's sequence number (a
seqlock): no lock, no syscall, a few microseconds per publish. Readers copy the block and
retry the rows whose sequence number changed or was odd during the copy, a bounded number of
times, so a worker that died half-way through a write can never hang a reader (its row is
reported in ``torn``). On x86 (total store order) a reader never sees a torn row that the
seqlock did not flag.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import CndpError

__all__ = [
    "COUNTER",
    "GAUGE",
    "PORT_BLOCK",
    "WORKER_BLOCK",
    "WORKER_HELP",
    "WORKER_KEYS",
    "WORKER_TYPES",
    "BlockSnapshot",
    "CounterBlock",
    "Registry",
    "RegistryError",
    "RowWriter",
    "Snapshot",
    "shared_zeros",
]

COUNTER = "counter"  # only grows (until the object is reset)
GAUGE = "gauge"  # a level: may go up and down
U64_MAX = (1 << 64) - 1
SEQ_RETRIES = 32

PORT_BLOCK = "lport"
WORKER_BLOCK = "worker"
WORKER_KEYS = (
    "pid",
    "loops",
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "called_epoll",
    "intr_timedout",
    "intr_woken",
    "paused",
)
WORKER_TYPES = {"pid": GAUGE, "paused": GAUGE}
WORKER_HELP = {
    "pid": "process id of the worker",
    "loops": "poll-loop iterations (counted in steps of 256)",
    "rx_packets": "packets received on the worker's lports",
    "tx_packets": "packets sent on the worker's lports",
    "rx_bytes": "bytes received on the worker's lports",
    "tx_bytes": "bytes sent on the worker's lports",
    "called_epoll": "idle waits in epoll (idle_timeout reached)",
    "intr_timedout": "idle waits that ended by timeout",
    "intr_woken": "idle waits that ended because packets arrived",
    "paused": "1 while the worker is paused (/app/stop), else 0",
}


class RegistryError(CndpError):
    """A block, row or key that does not exist, or a block added too late."""


def shared_zeros(shape: tuple[int, ...] | int, dtype=np.uint64) -> np.ndarray:
    """A zeroed numpy array over an anonymous MAP_SHARED mapping (shared across fork).

    The array keeps the mapping alive; it is unmapped when the last view is gone.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    count = int(np.prod(shape)) if shape else 1
    size = max(count * dtype.itemsize, 1)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


def _check_names(what: str, names: Sequence[str]) -> tuple[str, ...]:
    out = tuple(names)
    for n in out:
        if not isinstance(n, str) or not n:
            raise RegistryError(f"{what} names must be non-empty strings, got {n!r}")
    if len(set(out)) != len(out):
        dup = sorted({n for n in out if out.count(n) > 1})
        raise RegistryError(f"{what} names must be unique: {dup} appear twice")
    return out


def _u64(v) -> int:
    v = int(v)
    return 0 if v < 0 else U64_MAX if v > U64_MAX else v


class RowWriter:
    """Writes one row of a block. Exactly one process may hold the writer of a row."""

    __slots__ = ("_kidx", "_r", "_seq", "_stamp", "keys", "values")

    def __init__(self, block: CounterBlock, r: int):
        self.keys = block.keys
        self.values = block.array[r]
        self._seq = block.seq
        self._stamp = block.stamp
        self._r = r
        self._kidx = block.key_index

    def _begin(self) -> None:
        self._seq[self._r] += 1  # odd: a write is in progress

    def _end(self) -> None:
        self._stamp[self._r] = time.monotonic()  # vDSO clock: no syscall
        self._seq[self._r] += 1  # even: the row is consistent again

    def publish(self, stats: Mapping[str, int]) -> None:
        """Store the known keys of ``stats`` (others are ignored) as one consistent update.

        A Python loop over the keys (~30): this runs a few times a second, not per packet.
        """
        idx = []
        vals = []
        kidx = self._kidx
        for k, v in stats.items():
            i = kidx.get(k)
            if i is not None:
                idx.append(i)
                vals.append(_u64(v))
        self._begin()
        if idx:
            self.values[idx] = vals
        self._end()

    def store(self, values: np.ndarray) -> None:
        """Store a whole row given as an array aligned with ``keys``."""
        self._begin()
        self.values[:] = values
        self._end()

    def set(self, key: str, value: int) -> None:
        i = self._kidx[key]
        self._begin()
        self.values[i] = _u64(value)
        self._end()

    def add(self, key: str, n: int = 1) -> None:
        i = self._kidx[key]
        self._begin()
        self.values[i] += n
        self._end()


@dataclass(frozen=True)
class BlockSnapshot:
    """A consistent copy of a block at ``time`` (``time.monotonic()``)."""

    name: str
    kind: str
    rows: tuple[str, ...]
    keys: tuple[str, ...]
    values: np.ndarray  # (rows, keys) uint64, a private copy
    stamp: np.ndarray  # per row: monotonic time of the last publish, 0.0 = never
    time: float
    types: Mapping[str, str] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    torn: tuple[str, ...] = ()  # rows a writer was still writing after every retry

    def _r(self, row: int | str) -> int:
        if isinstance(row, str):
            try:
                return self.rows.index(row)
            except ValueError:
                raise RegistryError(f"block {self.name!r} has no row {row!r}") from None
        if not 0 <= row < len(self.rows):
            raise RegistryError(f"block {self.name!r} has no row {row}")
        return row

    def row(self, row: int | str) -> dict[str, int]:
        r = self._r(row)
        return dict(zip(self.keys, (int(x) for x in self.values[r]), strict=True))

    def get(self, row: int | str, key: str) -> int:
        try:
            k = self.keys.index(key)
        except ValueError:
            raise RegistryError(f"block {self.name!r} has no key {key!r}") from None
        return int(self.values[self._r(row), k])

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {r: self.row(i) for i, r in enumerate(self.rows)}

    def age(self, row: int | str) -> float | None:
        """Seconds since the row was last published, or None if it never was."""
        t = float(self.stamp[self._r(row)])
        return None if t == 0.0 else max(self.time - t, 0.0)

    def total(self) -> dict[str, int]:
        """Every key summed over all rows."""
        sums = self.values.sum(axis=0, dtype=np.uint64)
        return dict(zip(self.keys, (int(x) for x in sums), strict=True))

    def group_by(self, label: str) -> dict[str, dict[str, int]]:
        """Rows summed per value of a label (e.g. lport rows per ``netdev``: per-port
        figures). Rows without the label are left out."""
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.rows):
            v = self.labels.get(r, {}).get(label)
            if v is not None:
                groups.setdefault(str(v), []).append(i)
        out = {}
        for v, idx in groups.items():
            sums = self.values[idx].sum(axis=0, dtype=np.uint64)
            out[v] = dict(zip(self.keys, (int(x) for x in sums), strict=True))
        return out


class CounterBlock:
    """A named block of counters: ``array[row, key]`` in shared memory.

    ``labels`` (row -> {label: value}) and ``help``/``types`` (key -> text / COUNTER|GAUGE)
    are plain metadata for readers (they stay in the process that sets them).
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[str],
        keys: Sequence[str],
        *,
        kind: str = "",
        types: Mapping[str, str] | None = None,
        help: Mapping[str, str] | None = None,
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ):
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a block name must be a non-empty string, got {name!r}")
        self.name = name
        self.kind = kind or name
        self.rows = _check_names(f"block {name!r}: row", rows)
        self.keys = _check_names(f"block {name!r}: key", keys)
        if not self.keys:
            raise RegistryError(f"block {name!r} has no keys")
        types = dict(types or {})
        for k, t in types.items():
            if k not in self.keys or t not in (COUNTER, GAUGE):
                raise RegistryError(f"block {name!r}: bad type {t!r} for key {k!r}")
        self.types = {k: types.get(k, COUNTER) for k in self.keys}
        self.help = dict(help or {})
        self.labels: dict[str, dict[str, str]] = {r: dict(v) for r, v in (labels or {}).items()}
        self.row_index = {r: i for i, r in enumerate(self.rows)}
        self.key_index = {k: i for i, k in enumerate(self.keys)}
        n, k = max(len(self.rows), 1), len(self.keys)
        # one mapping: [seq: n u64][stamp: n f64][values: n*k u64]
        mem = shared_zeros(n * (2 + k), np.uint64)
        self.seq = mem[:n]
        self.stamp = mem[n : 2 * n].view(np.float64)
        self.array = mem[2 * n :].reshape(n, k)
        self._writers: dict[int, RowWriter] = {}

    def __repr__(self) -> str:
        return f"CounterBlock({self.name!r}, {len(self.rows)} rows x {len(self.keys)} keys)"

    # compatibility with the runtime's former SharedStats
    @property
    def lports(self) -> list[str]:
        return list(self.rows)

    def index(self, row: int | str) -> int:
        if isinstance(row, str):
            i = self.row_index.get(row)
            if i is None:
                raise RegistryError(f"block {self.name!r} has no row {row!r}")
            return i
        if isinstance(row, bool) or not 0 <= int(row) < len(self.rows):
            raise RegistryError(
                f"block {self.name!r} has no row {row!r} (it has {len(self.rows)} rows)"
            )
        return int(row)

    # -------------------------------------------------------------------- writer side
    def writer(self, row: int | str) -> RowWriter:
        r = self.index(row)
        w = self._writers.get(r)
        if w is None:
            w = self._writers[r] = RowWriter(self, r)
        return w

    def publish(self, row: int | str, stats: Mapping[str, int]) -> None:
        self.writer(row).publish(stats)

    # -------------------------------------------------------------------- reader side
    def _copy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.rows)
        s1 = self.seq[:n].copy()
        vals = self.array[:n].copy()
        st = self.stamp[:n].copy()
        s2 = self.seq[:n].copy()
        bad = (s1 != s2) | ((s1 & 1) == 1)
        return vals, st, bad

    def snapshot(self) -> BlockSnapshot:
        vals, st, bad = self._copy()
        for _ in range(SEQ_RETRIES):
            if not bad.any():
                break
            v2, st2, bad2 = self._copy()
            fix = bad & ~bad2  # rows that are consistent in the new copy
            vals[fix], st[fix] = v2[fix], st2[fix]
            bad = bad & bad2
        return BlockSnapshot(
            name=self.name,
            kind=self.kind,
            rows=self.rows,
            keys=self.keys,
            values=vals,
            stamp=st,
            time=time.monotonic(),
            types=dict(self.types),
            help=dict(self.help),
            labels={r: dict(v) for r, v in self.labels.items()},
            torn=tuple(r for r, b in zip(self.rows, bad, strict=True) if b),
        )

    def read(self, row: int | str) -> dict[str, int]:
        """One row as {key: value} (a consistent copy of that row)."""
        r = self.index(row)
        for _ in range(SEQ_RETRIES):
            s1 = int(self.seq[r])
            vals = self.array[r].copy()
            if s1 & 1 == 0 and int(self.seq[r]) == s1:
                break
        return dict(zip(self.keys, (int(x) for x in vals), strict=True))


@dataclass(frozen=True)
class Snapshot:
    """Snapshots of every block of a registry, taken one after the other."""

    blocks: Mapping[str, BlockSnapshot]
    time: float

    def __getitem__(self, name: str) -> BlockSnapshot:
        try:
            return self.blocks[name]
        except KeyError:
            raise RegistryError(f"no block {name!r} (have {sorted(self.blocks)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self.blocks


class Registry:
    """The application's counter blocks, by name."""

    def __init__(self) -> None:
        self._blocks: dict[str, CounterBlock] = {}
        self.frozen_by: int | None = None  # pid that froze the registry

    def add_block(
        self,
        name: str,
        rows: Sequence[str],
        keys: Sequence[str],
        **kw,
    ) -> CounterBlock:
        """Create a block. Must happen before the workers fork (see :meth:`freeze`)."""
        if self.frozen_by is not None:
            raise RegistryError(
                f"block {name!r} added after the workers started: they would not share it",
                fix="create every block before Runtime.start()",
            )
        if name in self._blocks:
            raise RegistryError(f"block {name!r} already exists")
        b = CounterBlock(name, rows, keys, **kw)
        self._blocks[name] = b
        return b

    def freeze(self) -> None:
        """No more blocks: called right before the workers fork."""
        self.frozen_by = os.getpid()

    def block(self, name: str) -> CounterBlock:
        try:
            return self._blocks[name]
        except KeyError:
            raise RegistryError(f"no block {name!r} (have {sorted(self._blocks)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._blocks

    def __iter__(self) -> Iterator[CounterBlock]:
        return iter(list(self._blocks.values()))

    def names(self) -> list[str]:
        return list(self._blocks)

    def snapshot(self, names: Sequence[str] | None = None) -> Snapshot:
        chosen = list(self._blocks) if names is None else list(names)
        return Snapshot({n: self.block(n).snapshot() for n in chosen}, time.monotonic())

    def describe(self) -> dict:
        """The layout as plain data (for documentation and REST)."""
        return {
            b.name: {
                "kind": b.kind,
                "rows": list(b.rows),
                "keys": list(b.keys),
                "types": dict(b.types),
                "labels": {r: dict(v) for r, v in b.labels.items()},
            }
            for b in self._blocks.values()
        }
