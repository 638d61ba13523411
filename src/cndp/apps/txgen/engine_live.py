"""txgen's live-frames transmit engine: line-rate generation without AF_XDP.

AF_XDP TX in copy mode builds one kernel buffer per frame and tops out near 1 Mpps on a veth.
This engine has the kernel itself send: ``BPF_PROG_RUN`` with ``BPF_F_TEST_XDP_LIVE_FRAMES``
runs our XDP program ``repeat`` times on page-pool copies of the template, and the program's
XDP_TX sends each copy out of the netdev (see :mod:`cndp.bpf.trafficgen`). Range fields and
the checksums they touch are rewritten per frame by the program
(:mod:`cndp.bpf.txgen_prog`), so Python never touches a frame: the data path is one syscall
per call of many frames.

Rate: a call's ``repeat`` sets how many frames leave back to back. With ``rate_pps`` the calls
are paced against the monotonic clock as a token bucket: frame ``k`` may leave once
``k / rate`` seconds have passed since the start, so the count stays exact over any window
whatever the sleep jitter. Calls carry ``batch`` frames, fewer at low rates (frames are then
at most ~1 ms apart instead of bunched), and after a stall one call sends all that is due (up
to 0.5 s of frames; more is forgiven and counted in ``forgiven``). Stalls do happen: every
call with ``repeat > 1`` takes the kernel's global XDP dispatcher mutex twice, and another
process attaching or detaching an XDP program holds it across an RCU grace period (10-20 ms
seen here while other test suites ran). Without ``rate_pps`` it sends as fast as it can.

Run it inside the network namespace of ``ifname``. The program is also attached ("parked") to
one end of a private idle veth pair for the engine's lifetime: a BPF_PROG_RUN call of a
program that is not already in the kernel's XDP dispatcher waits ~25 ms for RCU.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import math
import socket
import struct
import time
from collections.abc import Callable, Sequence

from ...bpf.trafficgen import LiveFrameGen
from ...bpf.txgen_prog import (
    FrameLayout,
    LiveRange,
    LiveRangeError,
    RangeProgram,
    TemplateError,
    render_frames,
    sequence,
)
from ...errors import BpfError, ConfigError

__all__ = [
    "LiveEngine",
    "LiveRange",
    "LiveRangeError",
    "TemplateError",
    "render_frames",
    "sequence",
]

MAX_KERNEL_BATCH = 256  # the kernel refuses a larger batch_size (TEST_XDP_MAX_BATCH)
MAX_CALL = 1 << 22  # frames per BPF_PROG_RUN call at most (~0.6 s at 7 Mpps)
SMOOTH_S = 0.001  # at low rates, calls at most this far apart
CATCH_UP_S = 0.5  # after a stall, frames owed beyond this much time are forgiven
UNPACED_CALL_S = 0.005  # unpaced calls last about this long (stop() is checked between)
POLL_S = 0.05  # longest sleep between stop() checks


def _mtu(ifname: str) -> int | None:
    """The netdev's MTU in the calling thread's namespace (sysfs would show the root one)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16si", ifname.encode()[:15], 0)
            return struct.unpack_from("i", fcntl.ioctl(s, 0x8921, req), 16)[0]  # SIOCGIFMTU
    except OSError:
        return None  # no such netdev: LiveFrameGen says so


def _check_frame(ifname: str, frame: bytes) -> None:
    if len(frame) < 14:
        raise TemplateError(
            f"a {len(frame)}-byte frame has no room for an Ethernet header",
            fix="give a whole frame (at least 14 bytes; 60 is the minimum on the wire)",
        )
    mtu = _mtu(ifname)
    if mtu is not None and len(frame) > mtu + 18:  # Ethernet header + one VLAN tag
        raise TemplateError(
            f"a {len(frame)}-byte frame exceeds the MTU {mtu} of {ifname} (the peer would drop it)",
            fix=f"use frames of at most {mtu + 14} bytes (+4 with a VLAN tag), or raise the MTU",
        )


class LiveEngine:
    """Send ``frame`` (with ``ranges`` rewritten per frame) out of ``ifname``.

    ``rate_pps=None`` sends as fast as possible; ``batch`` is the number of frames per
    BPF_PROG_RUN call when paced (also the kernel's batch size, capped at 256).
    """

    def __init__(
        self,
        ifname: str,
        frame: bytes,
        ranges: Sequence[LiveRange] = (),
        *,
        rate_pps: float | None = None,
        batch: int = 64,
        park: bool = True,
    ):
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_CALL:
            raise ConfigError(
                f"live engine batch {batch!r} is not a frame count",
                fix=f"use 1..{MAX_CALL} (64 is the default)",
            )
        self.batch = batch
        self.rate_pps = self._check_rate(rate_pps)
        self.frame = bytes(frame)
        _check_frame(ifname, self.frame)
        self.prog = RangeProgram(self.frame, ranges)
        try:
            self.gen = LiveFrameGen(
                ifname,
                self.frame,
                batch_size=min(batch, MAX_KERNEL_BATCH),
                park=park,
                prog_fd=self.prog.fd,
            )
        except BaseException:
            self.prog.close()
            raise
        self._runs = 0  # frames handed to the kernel (mirrors the program's run counter)
        self.last_seconds = 0.0  # duration of the last send()/run_for()
        self.forgiven = 0  # frames a paced run skipped after stalls longer than CATCH_UP_S

    @staticmethod
    def _check_rate(rate: float | None) -> float | None:
        if rate is None:
            return None
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ConfigError(f"rate {rate!r} is not a number", fix="give frames per second")
        if rate <= 0:
            raise ConfigError(
                f"rate {rate} pps is not positive", fix="give a rate > 0, or None for full speed"
            )
        return float(rate)

    # ---------------------------------------------------------------------------------------
    # state

    @property
    def ranges(self) -> list[LiveRange]:
        return self.prog.ranges

    @property
    def layout(self) -> FrameLayout | None:
        return self.prog.layout

    @property
    def frames_sent(self) -> int:
        """Frames handed to the kernel since construction or :meth:`reset`."""
        return self._runs

    def set_rate(self, rate_pps: float | None) -> None:
        self.rate_pps = self._check_rate(rate_pps)

    def values(self) -> list[int]:
        """The value each range field gets in the next frame."""
        return self.prog.values()

    def reset(self) -> None:
        """Restart every range at its ``start`` and the frame count at 0."""
        self.prog.reset()
        self._runs = 0

    # ---------------------------------------------------------------------------------------
    # sending

    def _call(self, n: int) -> int:
        """One BPF_PROG_RUN of ``n`` frames; returns how many really went."""
        try:
            self.gen.send(n)
        except BpfError as e:
            if e.errno == _errno.EINVAL and self._runs == 0:
                raise TemplateError(
                    f"the kernel refused live frames of {len(self.frame)} bytes",
                    errno=e.errno,
                    fix="a live frame must fit one page with the kernel's headroom: at most "
                    "3408 bytes with 4 KiB pages (Linux 6.x)",
                ) from None
            if e.errno != _errno.EINTR:
                raise
            # a signal stopped the call between two kernel batches: the program's own
            # counter says how many frames it sent
            return self._resync()
        self._runs += n
        return n

    def _resync(self) -> int:
        runs = self.prog.runs()
        done, self._runs = runs - self._runs, runs
        return done

    def send(self, count: int) -> int:
        """Send ``count`` frames (paced when a rate is set); returns frames sent."""
        if count < 0:
            raise ConfigError(f"cannot send {count} frames", fix="give a count >= 0")
        return self._run(count, None, None)

    def run_for(self, seconds: float, stop: Callable[[], bool] | None = None) -> int:
        """Send for ``seconds`` or until ``stop()`` is true; returns frames sent."""
        if not seconds >= 0:
            raise ConfigError(f"cannot run for {seconds} s", fix="give a duration >= 0")
        return self._run(None, time.monotonic() + seconds, stop)

    def _run(self, count: int | None, deadline: float | None, stop) -> int:
        if self.gen.fd < 0:
            raise ConfigError("the live engine is closed", fix="create a new LiveEngine")
        t0 = time.monotonic()
        try:
            if self.rate_pps is None:
                sent = self._unpaced(count, deadline, stop)
            else:
                sent = self._paced(self.rate_pps, count, deadline, stop)
        except BaseException:
            self._resync()  # an exception (Ctrl-C) may have hit between a call and our count
            raise
        finally:
            self.last_seconds = time.monotonic() - t0
        return sent

    def _unpaced(self, count: int | None, deadline: float | None, stop) -> int:
        sent = 0
        est = 0.0  # measured frames/s, sizes the calls
        while count is None or sent < count:
            if stop is not None and stop():
                break
            chunk = int(est * UNPACED_CALL_S) if est else 8192
            chunk = max(256, min(chunk, MAX_CALL))
            if count is not None:
                chunk = min(chunk, count - sent)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if est:  # do not run far past the deadline
                    chunk = max(1, min(chunk, int(left * est) + 1))
            t = time.monotonic()
            n = self._call(chunk)
            dt = time.monotonic() - t
            sent += n
            if dt > 0 and n:
                est = n / dt if not est else 0.7 * est + 0.3 * n / dt
        return sent

    def _paced(self, rate: float, count: int | None, deadline: float | None, stop) -> int:
        smooth = max(1, min(self.batch, int(rate * SMOOTH_S)))
        owed_max = min(MAX_CALL, self.batch + int(rate * CATCH_UP_S))
        t0 = time.monotonic()
        sent = 0
        while count is None or sent < count:
            if stop is not None and stop():
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                # what was owed by the deadline goes too, so a run of T seconds at R pps
                # sends R*T frames even if the process was held up just before the end
                owed = min(int((deadline - t0) * rate) - sent, owed_max)
                while owed > 0:
                    n = self._call(owed)
                    sent, owed = sent + n, owed - n
                break
            owed = int((now - t0) * rate) - sent
            if owed > owed_max:  # a long stall: forgive the excess instead of a huge burst
                t0 += (owed - owed_max) / rate
                self.forgiven += owed - owed_max
                owed = owed_max
            want = smooth if count is None else min(smooth, count - sent)
            if owed < want:
                wake = t0 + (sent + want) / rate
                if deadline is not None:
                    wake = min(wake, deadline)
                time.sleep(min(max(wake - now, 0.0), POLL_S))
                continue
            n = owed  # all that is due: one call catches up after a stall
            if count is not None:
                n = min(n, count - sent)
            sent += self._call(n)
        return sent

    # ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Detach the parked program, delete its veth, unload the program and its map."""
        gen = getattr(self, "gen", None)
        if gen is not None:
            gen.close()
        self.prog.close()

    def __enter__(self) -> LiveEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
