"""An application without privileges for the exporter and REST unit tests.

The real :class:`cndp.app.runtime.Runtime` forks real worker processes; only the lports are
stand-ins (``FakePort``: counters that grow while the worker "receives", an XskDev-like
``sock``/``in_xskmap`` pair for the readiness bits). Everything between the control side and
the workers — telemetry socket, app commands, shared-memory port control, the worker's
publish path with pause, admin state and clear requests — is the production code.
"""

from __future__ import annotations

import contextlib
import time

from cndp.app.runtime import Runtime, WorkerSpec
from cndp.telemetry.app import AppControl, PortInfo, ThreadInfo, register_app_commands
from cndp.telemetry.control import ModeCell
from cndp.telemetry.uds import CommandTable, TelemetryServer
from cndp.xskdev.xskdev import STAT_KEYS

RATE = 1000  # packets per lport per second while admin up and not paused
SIZE = 64


class FakePort:
    """An lport stand-in that looks like an XskDev to the readiness code."""

    def __init__(self, name: str):
        self.name = name
        self.counters = dict.fromkeys(STAT_KEYS, 0)
        self.sock = object()  # bound
        self.in_xskmap = True  # in the XSKMAP
        self.rx_burst = self.tx_burst = None

    def receive(self, n: int) -> None:
        c = self.counters
        c["ipackets"] += n
        c["rx_rcvd_count"] += n
        c["ibytes"] += n * SIZE
        c["opackets"] += n
        c["obytes"] += n * SIZE

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    def reset_stats(self) -> None:
        self.counters = dict.fromkeys(STAT_KEYS, 0)

    def fileno(self) -> int:
        return 3

    def flush(self, timeout: float = 1.0) -> bool:
        return True

    def close(self) -> None:
        self.sock = None
        self.in_xskmap = False


def _open(name: str, gate) -> FakePort:
    """Open an lport; with a gate (a multiprocessing Event), only once it is set: the time a
    real worker spends binding its sockets, held open for as long as a test needs."""
    if gate is not None and not gate.wait(20):
        raise TimeoutError("the test never opened the gate")
    return FakePort(name)


def worker_fn(mode_cell: ModeCell | None):
    def run(ctx) -> None:
        if mode_cell is not None:
            mode_cell.entered(ctx.index, mode_cell.wanted())
        last = time.monotonic()
        loops = 0
        while not ctx.stop():
            time.sleep(0.005)
            now = time.monotonic()
            n = int((now - last) * RATE)
            if n:
                last += n / RATE
                for name, port in ctx.ports.items():
                    if ctx.admin_up(name):  # as the fwd loops: admin down = no bursts
                        port.receive(n)
            loops += 1
            ctx.publish({"loops": loops << 8})
            if mode_cell is not None:  # as cndpfwd's loops: switch between publishes
                mode_cell.entered(ctx.index, mode_cell.wanted())

    return run


class FakeApp:
    """Two workers (w0, w1), one lport each (ethA:0, ethB:0), a telemetry socket at
    ``path``. ``mode`` enables /app/mode between drop and loopback."""

    def __init__(
        self, path: str, *, name: str = "fakeapp", mode: bool = True, start=True, gate=None
    ):
        self.path = path
        self.lports = ["ethA:0", "ethB:0"]
        specs = [
            WorkerSpec("w0", "fwd", 1, (0,), [self.lports[0]]),
            WorkerSpec("w1", "fwd", 2, (0,), [self.lports[1]]),
        ]
        self.mode_cell = (
            ModeCell(["drop", "loopback", "fwd"], "drop", 2, switchable={"loopback"}, aliases={})
            if mode
            else None
        )
        self.rt = Runtime(
            specs,
            umems={},
            lport_names=self.lports,
            open_port=lambda name, umems: _open(name, gate),
            worker_fn=worker_fn(self.mode_cell),
            stat_keys=STAT_KEYS,
        )
        self.ctl = AppControl(
            name=name,
            threads=[
                ThreadInfo(0, "main", "initial", "main"),
                ThreadInfo(1, "w0", "g0", "fwd", (self.lports[0],)),
                ThreadInfo(2, "w1", "g0", "fwd", (self.lports[1],)),
            ],
            ports=[
                PortInfo(0, self.lports[0], "ethA", 0, "net_af_xdp", "w0"),
                PortInfo(1, self.lports[1], "ethB", 0, "net_af_xdp", "w1"),
            ],
            registry=self.rt.registry,
            workers=["w0", "w1"],
            pause=self.rt.pause,
            info={"mode": "drop", "api": "xskdev"},
            port_ctl=self.rt.port_ctl,
            runtime=self.rt,
            config={"application": {"name": name}, "text": "x" * 5000, "quote": '"' * 3000},
            mode=self.mode_cell,
        )
        self.ctl.label_ports()
        self.table = CommandTable()
        register_app_commands(self.table, self.ctl)
        self.server: TelemetryServer | None = None
        if start:
            self.start()

    def start(self, wait: bool = True) -> FakeApp:
        self.rt.spawn()
        self.server = TelemetryServer(self.path, table=self.table).start()
        if wait:
            self.rt.wait_ready()
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        with contextlib.suppress(Exception):
            self.rt.stop()

    def __enter__(self) -> FakeApp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(fn, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


__all__ = ["RATE", "SIZE", "FakeApp", "FakePort", "wait_for"]
