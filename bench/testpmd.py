"""Drive ``dpdk-testpmd`` (AF_XDP PMD on the veth) interactively for the baseline rows.

testpmd runs in namespace B under ``ip netns exec`` with both EAL lcores (main and the one
forwarding lcore) on the receiver CPU. It is driven over stdin (``start``, ``show port stats
all``, ``stop``, ``quit``) with stdout line-buffered (``stdbuf -oL``) into a log file, which
is parsed as it grows: each ``show port stats all`` block gives the port's RX/TX packet
counts at (about) the moment the command was sent, so the rate over a window is the count
difference divided by our own clock. testpmd's own ``Rx-pps``/``Tx-pps`` (rdtsc-based, since
the previous show) are kept as a cross-check.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from cndp.testing import netns

PROMPT = "testpmd> "
DEBS = ("dpdk-dev", "librte-net-af-xdp23")

_BLOCK = re.compile(
    r"NIC statistics for port 0.*?RX-packets:\s*(\d+).*?TX-packets:\s*(\d+)"
    r".*?Rx-pps:\s*(\d+).*?Tx-pps:\s*(\d+).*?#{20,}",
    re.S,
)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench dies (kept across execve)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class TestPmdError(RuntimeError):
    pass


@dataclass
class PortStats:
    t: float  # our monotonic clock when the show command was sent
    rx: int
    tx: int
    rx_pps: int  # testpmd's own rate since the previous show
    tx_pps: int


def find_binary() -> str | None:
    return shutil.which("dpdk-testpmd")


def ensure_installed(repo: str) -> tuple[str | None, str]:
    """Find dpdk-testpmd; when missing, install it (Debian: ``dpdk-dev`` carries testpmd
    and ``librte-net-af-xdp23`` the AF_XDP PMD; the ``dpdk`` package alone has neither).
    Returns (path or None, why-not)."""
    path = find_binary()
    if path and _have_af_xdp_pmd():
        return path, ""
    script = os.path.join(repo, "scripts", "ensure-debs")
    if os.geteuid() == 0 and os.access(script, os.X_OK):
        r = subprocess.run([script, *DEBS], capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"installing {' '.join(DEBS)} failed: {r.stderr.strip()[-300:]}"
    path = find_binary()
    if not path:
        return None, f"dpdk-testpmd not found (install the Debian packages {' '.join(DEBS)})"
    if not _have_af_xdp_pmd():
        return None, "DPDK's AF_XDP PMD is missing (install librte-net-af-xdp23)"
    return path, ""


def _have_af_xdp_pmd() -> bool:
    for d in ("/usr/lib/x86_64-linux-gnu/dpdk", "/usr/lib/dpdk", "/usr/local/lib"):
        for root, _dirs, files in os.walk(d):
            if any(f.startswith("librte_net_af_xdp.so") for f in files):
                return True
            del root
    return False


class TestPmd:
    """One testpmd run (``rxonly`` or ``macswap``) on ``host``'s veth, queue 0."""

    def __init__(
        self,
        host: netns.Host,
        mode: str,
        cpu: int,
        log_path: str,
        *,
        burst: int | None = None,
        vdev_args: str = "",
        mbufs: int = 16384,
        file_prefix: str = "pycndp-bench",
    ):
        self.file_prefix = file_prefix
        self.host = host
        self.mode = mode
        self.cpu = cpu
        self.log_path = log_path
        self.burst = burst
        self.vdev_args = vdev_args
        self.mbufs = mbufs
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._shows = 0

    def command(self) -> list[str]:
        vdev = f"net_af_xdp0,iface={self.host.ifname},start_queue=0,queue_count=1"
        if self.vdev_args:
            vdev += "," + self.vdev_args
        cmd = [
            "stdbuf",
            "-oL",
            find_binary() or "dpdk-testpmd",
            # both EAL threads (lcore 0 = main, lcore 1 = forwarding) on the receiver CPU
            "--lcores",
            f"0@{self.cpu},1@{self.cpu}",
            "--main-lcore",
            "0",
            "--no-pci",
            "--no-huge",
            "-m",
            "512",
            # our own runtime directory (/var/run/dpdk/<prefix>): no clash with other DPDK
            # processes; removed in stop(). (--in-memory is refused together with --no-huge.)
            f"--file-prefix={self.file_prefix}",
            "--log-level",
            "pmd.net.af_xdp:info",
            "--vdev",
            vdev,
            "--",
            "-i",
            f"--forward-mode={self.mode}",
            f"--total-num-mbufs={self.mbufs}",
            "--nb-cores=1",
        ]
        if self.burst:
            cmd.append(f"--burst={self.burst}")
        return cmd

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def error_line(self) -> str:
        """The last line of the log that looks like an error (for failure notes)."""
        for line in reversed(self.log_text().splitlines()):
            if re.search(r"error|invalid|fail|cannot|unable", line, re.I):
                return line.strip()[:160]
        return ""

    def start(self, timeout: float = 30.0) -> None:
        """Start testpmd and wait for its prompt and its XDP program on the veth; then
        ``start`` forwarding."""
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self._log.write("# " + " ".join(self.command()) + "\n")
        self._log.flush()
        self.proc = self.host.popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # our Ctrl-C is not delivered to it; we stop it ourselves
            preexec_fn=_die_with_parent,  # ... and if we are killed outright, so is it
        )
        deadline = time.monotonic() + timeout
        while PROMPT not in self.log_text():
            if self.proc.poll() is not None:
                raise TestPmdError(
                    f"testpmd exited with {self.proc.returncode} before its prompt:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise TestPmdError(f"no testpmd prompt after {timeout} s:\n" + self.log_tail())
            time.sleep(0.05)
        self.send("start")

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise TestPmdError(f"testpmd died (exit {self.proc.returncode}):\n" + self.log_tail())
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def show(self, timeout: float = 10.0) -> PortStats:
        """``show port stats all``; waits for the block to be printed and parses it."""
        t = time.monotonic()
        self.send("show port stats all")
        want = self._shows + 1
        deadline = t + timeout
        while True:
            blocks = _BLOCK.findall(self.log_text())
            if len(blocks) >= want:
                break
            if not self.alive() or time.monotonic() > deadline:
                raise TestPmdError("no port statistics from testpmd:\n" + self.log_tail())
            time.sleep(0.01)
        self._shows = want
        rx, tx, rx_pps, tx_pps = (int(x) for x in blocks[want - 1])
        return PortStats(t, rx, tx, rx_pps, tx_pps)

    def stop(self) -> int | None:
        """``stop`` + ``quit``; SIGTERM/SIGKILL if it hangs. Returns the exit code."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            with contextlib.suppress(OSError, ValueError, TestPmdError):
                self.send("stop")
                self.send("quit")
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)
        with contextlib.suppress(OSError, ValueError):
            if p.stdin:
                p.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None
        shutil.rmtree(f"/var/run/dpdk/{self.file_prefix}", ignore_errors=True)
        return p.returncode
