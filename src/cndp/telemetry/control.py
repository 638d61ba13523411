"""Run-time control of the data path through shared memory: lport admin state, clearing
counters, readiness of the lports, and a switchable forwarding mode.

The control side (telemetry socket, REST sidecar through it) never calls into a worker: it
writes a request into a small ``uint64`` array created before the workers fork, and each
worker applies it when it next publishes its counters (``WorkerContext.publish``, at most every
0.25 s while it polls, also while it is paused). The worker writes back what it actually did,
so what the control side reports is the data path's state, not the last request.

Per lport (one row each, in config order):

======  ===========  =================================================================
column  name         meaning
======  ===========  =================================================================
0       admin_down   control -> worker: 1 = admin down (rx_burst/tx_burst return DOWN)
1       clear_req    control -> worker: bumped to ask the worker to zero the counters
2       clear_done   worker -> control: the last ``clear_req`` the worker carried out
3       state        worker -> control: :data:`OPEN` | :data:`BOUND` | ... bits
======  ===========  =================================================================

A leaf module (numpy only): the runtime imports it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..errors import CndpError
from .registry import shared_zeros

__all__ = [
    "ADMIN_UP",
    "BOUND",
    "CLOSED",
    "OPEN",
    "XSK",
    "XSKMAP",
    "ControlError",
    "ModeCell",
    "PortControl",
    "WorkerPorts",
    "port_state",
    "state_dict",
]

# state bits, written by the worker that owns the lport
OPEN = 1  # the worker opened the lport
BOUND = 2  # its socket is bound to the netdev queue (ports without a socket: when open)
XSKMAP = 4  # its AF_XDP socket is in the XSKMAP of the netdev's XDP program
ADMIN_UP = 8  # the worker applied admin up (bursts reach the driver)
XSK = 16  # an AF_XDP lport: XSKMAP applies to it
CLOSED = 32  # the worker closed it (stopping)

_ADMIN_DOWN, _CLEAR_REQ, _CLEAR_DONE, _STATE = range(4)
_COLS = 4


class ControlError(CndpError):
    """A control request that names no such lport or mode, or a mode the app cannot take."""


def _xsk_of(port: Any) -> Any:
    """The XskDev behind a port: the port itself (xskdev API), ``port.dev`` (pktdev
    net_af_xdp), False for a net_af_xdp port whose device is gone, None for other PMDs."""
    if hasattr(port, "in_xskmap") and hasattr(port, "sock"):
        return port
    dev = getattr(port, "dev", None)
    if dev is not None and hasattr(dev, "in_xskmap"):
        return dev
    if getattr(port, "pmd_name", "") == "net_af_xdp":
        return False
    return None


def port_state(port: Any, admin_up: bool) -> int:
    """The state bits of an open port, read from the port object itself.

    XSKMAP membership cannot be read back from user space (the kernel answers EOPNOTSUPP to
    a lookup in an XSKMAP), so it is the XskDev's own record (``XskDev.in_xskmap``).
    """
    if getattr(port, "closed", False) or getattr(port, "_closed", False):
        return CLOSED
    bits = OPEN
    xsk = _xsk_of(port)
    if xsk is None:  # no AF_XDP socket: bound when its fd (if it has one) exists
        fd = port.fileno() if hasattr(port, "fileno") else None
        if fd is None or fd >= 0:
            bits |= BOUND
    else:
        bits |= XSK
        if xsk is not False and getattr(xsk, "sock", None) is not None:
            bits |= BOUND
            if getattr(xsk, "in_xskmap", False):
                bits |= XSKMAP
    if admin_up:
        bits |= ADMIN_UP
    return bits


def state_dict(bits: int) -> dict[str, bool]:
    return {
        "open": bool(bits & OPEN),
        "bound": bool(bits & BOUND),
        "xsk": bool(bits & XSK),
        "xskmap": bool(bits & XSKMAP),
        "admin_up": bool(bits & ADMIN_UP),
        "closed": bool(bits & CLOSED),
    }


class PortControl:
    """Requests and state of every lport in shared memory (create before the fork)."""

    def __init__(self, lports: Sequence[str]):
        self.lports = tuple(lports)
        self.row = {n: i for i, n in enumerate(self.lports)}
        self.array = shared_zeros((max(len(self.lports), 1), _COLS))

    def _r(self, lport: str) -> int:
        r = self.row.get(lport)
        if r is None:
            raise ControlError(f"no lport {lport!r}", fix="one of " + ", ".join(self.lports))
        return r

    # ------------------------------------------------------------------ control side
    def set_admin(self, lport: str, up: bool) -> None:
        self.array[self._r(lport), _ADMIN_DOWN] = 0 if up else 1

    def admin_requested(self, lport: str) -> bool:
        return not self.array[self._r(lport), _ADMIN_DOWN]

    def request_clear(self, lport: str) -> int:
        """Ask the owner to zero the lport's counters; returns the request number."""
        r = self._r(lport)
        self.array[r, _CLEAR_REQ] += 1
        return int(self.array[r, _CLEAR_REQ])

    def clear_pending(self, lport: str) -> bool:
        r = self._r(lport)
        return int(self.array[r, _CLEAR_DONE]) < int(self.array[r, _CLEAR_REQ])

    def state(self, lport: str) -> int:
        return int(self.array[self._r(lport), _STATE])

    def view(self, lport: str) -> dict[str, Any]:
        """What the REST API and ``/app/port_state`` show for an lport."""
        bits = self.state(lport)
        out: dict[str, Any] = state_dict(bits)
        out["admin"] = "up" if self.admin_requested(lport) else "down"
        out["admin_applied"] = out["admin_up"] == (out["admin"] == "up") and bool(bits & OPEN)
        out["clear_pending"] = self.clear_pending(lport)
        return out

    # ------------------------------------------------------------------ worker side
    def report(self, row: int, bits: int) -> None:
        self.array[row, _STATE] = bits


class WorkerPorts:
    """A worker's side of :class:`PortControl`: applies requests to the ports it owns.

    ``epoch`` grows whenever an admin state changed, so a poll loop that caches the burst
    functions knows to re-read them (``admin_up[name]``).
    """

    def __init__(self, ctl: PortControl, ports: Mapping[str, Any]):
        self.ctl = ctl
        self.ports = ports
        self.rows = {n: ctl.row[n] for n in ports if n in ctl.row}
        self.admin_up = dict.fromkeys(self.rows, True)
        self.epoch = 0

    def report(self, closed: bool = False) -> None:
        for name, r in self.rows.items():
            port = self.ports[name]
            self.ctl.report(r, CLOSED if closed else port_state(port, self.admin_up[name]))

    def service(self) -> list[tuple[int, int]]:
        """Apply admin changes and clear requests. Returns the clears done, to acknowledge
        with :meth:`acknowledge` once the zeroed counters are published."""
        a = self.ctl.array
        done = []
        for name, r in self.rows.items():
            port = self.ports[name]
            up = not a[r, _ADMIN_DOWN]
            if up != self.admin_up[name]:
                self.admin_up[name] = up
                setter = getattr(port, "set_admin_state", None)
                if setter is not None:  # pktdev ports: their own bursts return DOWN too
                    setter(up)
                self.epoch += 1
            req = int(a[r, _CLEAR_REQ])
            if req != int(a[r, _CLEAR_DONE]):
                port.reset_stats()
                done.append((r, req))
            self.ctl.report(r, port_state(port, up))
        return done

    def acknowledge(self, done: list[tuple[int, int]]) -> None:
        for r, req in done:
            self.ctl.array[r, _CLEAR_DONE] = req


class ModeCell:
    """A forwarding mode the control side may switch at run time (cndpfwd ``/app/mode``).

    ``modes`` are the canonical names the application runs; ``switchable`` those it can
    switch to from its start mode; ``aliases`` map other spellings (``lb``) to them. Cell 0
    holds the requested mode's index; cell 1+i the mode worker i runs (index + 1, 0 = none).
    """

    def __init__(
        self,
        modes: Sequence[str],
        initial: str,
        workers: int,
        *,
        switchable: Collection[str] = (),
        aliases: Mapping[str, str] | None = None,
    ):
        self.modes = tuple(modes)
        if initial not in self.modes:
            raise ControlError(f"mode {initial!r} is not one of {self.modes}")
        self.switchable = tuple(m for m in self.modes if m in switchable or m == initial)
        self.aliases = dict(aliases or {})
        self.array = shared_zeros(1 + max(workers, 1))
        self.array[0] = self.modes.index(initial)

    def canonical(self, mode: str) -> str:
        m = str(mode).strip().lower()
        return self.aliases.get(m, m)

    # ------------------------------------------------------------------ control side
    @property
    def requested(self) -> str:
        return self.modes[int(self.array[0])]

    def request(self, mode: str) -> str:
        m = self.canonical(mode)
        if m not in self.switchable:
            shown = str(mode)[:40]
            if m in self.modes:
                raise ControlError(
                    f"cannot switch to mode {shown!r} at run time from {self.requested!r}",
                    fix="switch to one of "
                    + ", ".join(self.switchable)
                    + " (other modes need a restart)",
                )
            raise ControlError(
                f"unknown mode {shown!r}", fix="one of " + ", ".join(self.switchable)
            )
        self.array[0] = self.modes.index(m)
        return m

    def active(self) -> list[str | None]:
        return [self.modes[int(v) - 1] if v else None for v in self.array[1:]]

    # ------------------------------------------------------------------ worker side
    def wanted(self) -> str:
        return self.modes[int(self.array[0])]

    def entered(self, worker: int, mode: str) -> None:
        self.array[1 + worker] = self.modes.index(mode) + 1

    def changed(self, mode: str) -> str | None:
        """The requested mode if it differs from ``mode`` (one integer compare)."""
        want = int(self.array[0])
        return None if self.modes[want] == mode else self.modes[want]
