"""The multi-process runtime: one worker process per configured thread.

Before any worker starts, the main process creates every UMEM (shared anonymous memory, so
frame offsets mean the same thing in every process) and, for AF_XDP lports it is allowed to
manage, loads and attaches our XDP program once per netdev. Then it forks one worker per
thread of the configuration (except the ``main`` thread, which is the main process itself),
pins it to the CPUs of its lcore group, and lets it open its own lports and run its loop.

Stopping: SIGINT and SIGTERM set a stop flag in shared memory; workers leave their loops,
close their ports (returning frames, leaving XSKMAPs) and exit; the main process then detaches
the XDP programs and frees the UMEMs.

A worker that dies is reported (name, pid, CPUs, exit status) and the whole application stops
and exits non-zero. We do not restart it: a data-plane worker that crashed left its sockets
and frames in an unknown state, and in a cluster the orchestrator restarts the pod cleanly
(CNDP's "process disposability" principle); restarting in place could loop on the same fault.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CndpError, ConfigError
from ..telemetry import logs
from ..telemetry.control import PortControl, WorkerPorts
from ..telemetry.registry import (
    PORT_BLOCK,
    WORKER_BLOCK,
    WORKER_HELP,
    WORKER_KEYS,
    WORKER_TYPES,
    CounterBlock,
    Registry,
)

log = logging.getLogger("cndp.runtime")

PUBLISH_EVERY_S = 0.25


def shared_array(shape: tuple[int, ...] | int, dtype=np.uint64) -> np.ndarray:
    """A zeroed numpy array in shared memory that survives fork (MAP_SHARED)."""
    shape = (shape,) if isinstance(shape, int) else shape
    n = int(np.prod(shape)) if shape else 1
    raw = mp.RawArray("b", max(n, 1) * np.dtype(dtype).itemsize)
    return np.frombuffer(raw, dtype=dtype, count=n).reshape(shape)


def online_cpus() -> set[int]:
    """CPUs that are online (a worker may be pinned to any of them, whatever the affinity
    of the process that started us, e.g. under taskset)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return set(os.sched_getaffinity(0))
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


@dataclass
class WorkerSpec:
    """What one worker runs: a thread of the configuration."""

    name: str
    type: str
    index: int
    cpus: tuple[int, ...]
    lports: list[str]
    idle_timeout: int = 0
    intr_timeout: int = 0


@dataclass
class WorkerContext:
    """Handed to the worker function inside the worker process."""

    spec: WorkerSpec
    ports: dict[str, Any]  # lport name -> open port (pktdev Port or XskDev)
    lpids: dict[str, int]  # lport name -> lport index (order in the config)
    umems: dict[str, Any]
    stats: CounterBlock  # the registry's lport block
    stop_flag: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # this worker's row in ``workers`` and cell in ``pause``
    workers: CounterBlock | None = None  # the registry's worker block
    pause: np.ndarray | None = None  # set by the control side (/app/stop): pause this worker
    portctl: WorkerPorts | None = None  # admin state / clear requests of the control side
    # lpid -> counters the worker's own code keeps per lport (e.g. a forwarding mode's ACL
    # counters), published with the port's; their keys must be in the runtime's stat_keys
    port_extra: Callable[[int], dict[str, int]] | None = None

    def stop(self) -> bool:
        return bool(self.stop_flag[0])

    def _publish(self, worker: dict[str, int] | None) -> None:
        rx = tx = rxb = txb = 0
        extra = self.port_extra
        for name, port in self.ports.items():
            st = port.stats()
            if extra is not None:
                st = {**st, **extra(self.lpids[name])}
            self.stats.publish(self.lpids[name], st)
            rx += st.get("ipackets", 0)
            tx += st.get("opackets", 0)
            rxb += st.get("ibytes", 0)
            txb += st.get("obytes", 0)
        if self.workers is not None:
            row = {"rx_packets": rx, "tx_packets": tx, "rx_bytes": rxb, "tx_bytes": txb}
            if worker:
                row.update(worker)
            self.workers.publish(self.index, row)

    @property
    def port_epoch(self) -> int:
        """Grows when the control side changed an lport's admin state (see admin_up)."""
        return self.portctl.epoch if self.portctl is not None else 0

    def admin_up(self, lport: str) -> bool:
        return self.portctl.admin_up.get(lport, True) if self.portctl is not None else True

    def _control(self, worker: dict[str, int] | None) -> None:
        # admin state and clear requests first, so a clear shows in this very publish
        done = self.portctl.service() if self.portctl is not None else []
        self._publish(worker)
        if done:
            self.portctl.acknowledge(done)

    def publish(self, worker: dict[str, int] | None = None) -> None:
        """Store the ports' counters (and ``worker``'s, e.g. loops and idle counts) in the
        registry. Also where a worker takes a new log level, applies lport admin state and
        clear requests, and honours a pause request, so all act within one publish period."""
        self._control(worker)
        logs.follow()
        if self.pause is not None and self.pause[self.index] and not self.stop():
            self._paused(worker)

    def _paused(self, worker: dict[str, int] | None) -> None:
        w = self.workers.writer(self.index) if self.workers is not None else None
        if w is not None:
            w.set("paused", 1)
        log.info("worker %s paused", self.spec.name)
        next_pub = time.monotonic() + PUBLISH_EVERY_S
        while self.pause is not None and self.pause[self.index] and not self.stop():
            time.sleep(0.01)
            if time.monotonic() >= next_pub:
                self._control(worker)  # kernel counters (drops) still move while paused
                next_pub += PUBLISH_EVERY_S
        if w is not None:
            w.set("paused", 0)
        log.info("worker %s resumed", self.spec.name)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Runtime:
    """Runs ``worker_fn(ctx)`` in one process per worker spec.

    ``open_port(lport_name, umems)`` is called inside the worker to open each of its lports;
    ``setup()`` (main process, before fork) and ``teardown()`` (after the workers ended) are
    optional hooks for privileged steps such as attaching XDP programs.
    """

    def __init__(
        self,
        workers: list[WorkerSpec],
        *,
        umems: dict[str, Any],
        lport_names: list[str],
        open_port: Callable[[str, dict], Any],
        worker_fn: Callable[[WorkerContext], None],
        stat_keys: tuple[str, ...],
        options: dict | None = None,
        extra: dict | None = None,
        registry: Registry | None = None,
    ):
        self.workers = workers
        self.umems = umems
        self.lpids = {n: i for i, n in enumerate(lport_names)}
        self.open_port = open_port
        self.worker_fn = worker_fn
        self.options = options or {}
        self.extra = extra or {}
        # Counters live in the metrics registry (shared memory, created before the fork):
        # per lport (queue) and per worker. The telemetry socket and the CLI read them.
        self.registry = registry if registry is not None else Registry()
        self.stats = self.registry.add_block(PORT_BLOCK, lport_names, stat_keys, kind="queue")
        self.worker_stats = self.registry.add_block(
            WORKER_BLOCK,
            [w.name for w in workers],
            WORKER_KEYS,
            kind="worker",
            types=WORKER_TYPES,
            help=WORKER_HELP,
        )
        self.pause = shared_array(max(len(workers), 1))  # control -> worker: 1 = pause
        self.stop_flag = shared_array(2)  # [stop, unused]
        self.ready = shared_array(max(len(workers), 1))
        self.port_ctl = PortControl(lport_names)  # control <-> worker: admin, clear, state
        self.procs: list[mp.Process] = []
        self.failed: list[str] = []
        ncpu = online_cpus()
        for w in workers:
            missing = sorted(set(w.cpus) - ncpu)
            if missing:
                raise ConfigError(
                    f"thread {w.name!r} is pinned to CPUs {list(w.cpus)} but this machine "
                    f"offers CPUs {sorted(ncpu)} (missing {missing})",
                    fix="edit the lcore-groups of the configuration for this machine",
                )

    # ---------------------------------------------------------------- worker side
    def _child(self, idx: int) -> None:
        spec = self.workers[idx]
        # The main process decides when to stop; a worker only raises the flag on SIGTERM
        # sent to it directly, and ignores the terminal's SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: self.stop_flag.__setitem__(0, 1))
        try:
            os.sched_setaffinity(0, set(spec.cpus))
        except OSError as e:
            print(
                f"worker {spec.name}: cannot run on CPUs {list(spec.cpus)}: {e.strerror} "
                "(a cpuset may forbid them)",
                file=sys.stderr,
            )
            os._exit(1)
        ports: dict[str, Any] = {}
        code = 0
        try:
            for name in spec.lports:
                ports[name] = self.open_port(name, self.umems)
            ctx = WorkerContext(
                spec,
                ports,
                {n: self.lpids[n] for n in spec.lports},
                self.umems,
                self.stats,
                self.stop_flag,
                self.options,
                self.extra,
                index=idx,
                workers=self.worker_stats,
                pause=self.pause,
                portctl=WorkerPorts(self.port_ctl, ports),
            )
            ctx.portctl.report()  # bound and in the XSKMAP: readiness sees it from here on
            self.worker_stats.writer(idx).set("pid", os.getpid())
            self.ready[idx] = 1
            self.worker_fn(ctx)
            ctx.publish()
        except CndpError as e:
            print(f"worker {spec.name}: {e}", file=sys.stderr)
            code = 1
        except Exception:  # a bug: show it, then fail the app
            print(f"worker {spec.name} crashed:\n{traceback.format_exc()}", file=sys.stderr)
            code = 2
        finally:
            self.ready[idx] = 2 if code else self.ready[idx]
            for p in ports.values():
                with contextlib.suppress(Exception):
                    p.close()
            WorkerPorts(self.port_ctl, ports).report(closed=True)
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    # ---------------------------------------------------------------- main side
    def start(self, timeout: float = 20.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Fork the workers (they open their lports on their own); :meth:`wait_ready` next.
        Between the two the main process may start threads (the telemetry socket), so its
        readiness report covers the workers' start."""
        ctx = mp.get_context("fork")
        self.registry.freeze()  # blocks added after the fork would not be shared
        for i, w in enumerate(self.workers):
            p = ctx.Process(target=self._child, args=(i,), name=w.name, daemon=False)
            p.start()
            self.procs.append(p)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until every worker opened its lports; raises if one died or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [int(x) for x in self.ready[: len(self.workers)]]
            if all(s == 1 for s in states):
                return
            if self.stop_flag[0]:
                return  # asked to stop while starting (SIGTERM, the shell's quit): not a failure
            dead = [
                (w, p) for w, p in zip(self.workers, self.procs, strict=True) if not p.is_alive()
            ]
            if dead:
                w, p = dead[0]
                raise CndpError(
                    f"worker {w.name!r} failed to start: it {_describe_exit(p.exitcode)}"
                )
            time.sleep(0.01)
        raise CndpError(f"workers did not start within {timeout:.0f} s")

    def wait(
        self,
        *,
        tick: Callable[[], None] | None = None,
        period: float = 1.0,
        duration: float | None = None,
    ) -> int:
        """Run until the stop flag is raised, a worker dies, or ``duration`` elapses.

        ``tick`` runs every ``period`` seconds in the main process (the stats screen).
        Returns the exit status for the application.
        """
        start = time.monotonic()
        next_tick = start + period
        sentinels = {p.sentinel: (w, p) for w, p in zip(self.workers, self.procs, strict=True)}
        while not self.stop_flag[0]:
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            timeout = max(0.0, min(next_tick - now, 0.2))
            ready = multiprocessing.connection.wait(list(sentinels), timeout=timeout)
            for s in ready:
                w, p = sentinels.pop(s)
                p.join(0.1)
                if not self.stop_flag[0]:
                    msg = (
                        f"worker {w.name!r} (pid {p.pid}, CPUs {list(w.cpus)}) "
                        f"{_describe_exit(p.exitcode)}; stopping the application"
                    )
                    self.failed.append(msg)
                    print(msg, file=sys.stderr)
                    self.stop_flag[0] = 1
            if tick is not None and time.monotonic() >= next_tick:
                tick()
                next_tick += period
        return 1 if self.failed else 0

    def stop(self, timeout: float = 5.0) -> int:
        """Stop every worker and wait for them; returns non-zero if any failed."""
        self.stop_flag[0] = 1
        deadline = time.monotonic() + timeout
        for w, p in zip(self.workers, self.procs, strict=True):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("worker %s did not stop in time: terminating it", w.name)
                p.terminate()
                p.join(2)
                if p.is_alive():
                    p.kill()
                    p.join(1)
            if p.exitcode not in (0, None) and not any(w.name in f for f in self.failed):
                self.failed.append(f"worker {w.name!r} {_describe_exit(p.exitcode)}")
        return 1 if self.failed else 0


def install_stop_signals(runtime: Runtime) -> None:
    """SIGINT and SIGTERM in the main process stop the application cleanly.

    Processes forked by libraries (pyroute2 forks helpers) inherit the handler: they simply
    exit on SIGTERM instead of running our shutdown.
    """
    main_pid = os.getpid()

    def handler(signum, _frame):
        if os.getpid() != main_pid:
            os._exit(128 + signum)
        runtime.stop_flag[0] = 1

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
