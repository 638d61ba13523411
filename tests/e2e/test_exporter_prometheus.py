"""cndp-exporter scraped by a real Prometheus server while cndpfwd forwards a steady stream.

The Linux peer sends a known number of frames at a known rate through cndpfwd (loopback
mode: every frame comes back); ``cndp-exporter`` reads cndpfwd's telemetry socket; the
Debian ``prometheus`` binary (started here on loopback with a temporary config and storage,
scraping every second) is asked for ``rate(...)`` and for the increase over the run: both
must match what was sent within 5 %.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from .test_cndpfwd import Fwd, open_peers, peer_frames, star, write_config

__all__ = ["star"]

PROMETHEUS = shutil.which("prometheus") or "prometheus"  # make test installs the package
RATE = 1000  # frames per second from the peer
SECONDS = 12
SIZE = 60


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """A child process whose stderr is collected; stopped (and killed if need be) on close."""

    def __init__(self, argv: list[str], ready: str | None = None, timeout: float = 15.0):
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.found = threading.Event()
        self.match: re.Match | None = None
        self._ready = re.compile(ready) if ready else None
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        if self._ready is not None and not self.found.wait(timeout):
            self.close()
            raise AssertionError(f"{argv[0]} did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if self._ready is not None and not self.found.is_set():
                m = self._ready.search(line)
                if m:
                    self.match = m
                    self.found.set()
        self.found.set()

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._t.join(5)
        return self.proc.returncode


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class PromServer:
    def __init__(self, tmp_path, target: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: cndp\n    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        # the binary itself, never the Debian service: its own config and storage, loopback
        self.proc = Proc(
            [
                PROMETHEUS,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ]
        )
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.base + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            if self.proc.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("prometheus did not start:\n" + "".join(self.proc.lines))
            time.sleep(0.1)

    def query(self, q: str, at: float | None = None) -> list[dict]:
        params = {"query": q}
        if at is not None:
            params["time"] = f"{at:.3f}"
        r = get_json(self.base + "/api/v1/query?" + urllib.parse.urlencode(params))
        assert r["status"] == "success", r
        return r["data"]["result"]

    def value(self, q: str, at: float | None = None) -> float:
        res = self.query(q, at)
        assert len(res) == 1, (q, res)
        return float(res[0]["value"][1])

    def close(self) -> None:
        self.proc.close()


def send_steady(peer, frames: list[bytes], rate: int) -> tuple[float, float]:
    """Send ``frames`` at ``rate`` per second in bursts of rate/50 on absolute deadlines (no
    drift); returns (start, end) wall-clock times of the first and the last burst."""
    step = max(rate // 50, 1)
    t0 = time.time()
    for i in range(0, len(frames), step):
        due = t0 + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        peer.send(frames[i : i + step])
    return t0, time.time()


def test_prometheus_rate_matches_the_frames_sent(star, tmp_path):
    rundir = tmp_path / "run"
    cfg, names = write_config(tmp_path, star)
    peers = open_peers(star)
    fwd = exporter = prom = None
    try:
        fwd = Fwd(star, ["-c", str(cfg), "--runtime-dir", str(rundir), "lb"])
        exporter = Proc(
            [
                sys.executable,
                "-m",
                "cndp.telemetry.exporter",
                "--dir",
                str(rundir),
                "--listen",
                "127.0.0.1:0",
            ],
            ready=r"listening on http://127\.0\.0\.1:(\d+)/metrics",
        )
        target = f"127.0.0.1:{exporter.match.group(1)}"
        prom = PromServer(tmp_path, target)
        # Prometheus scrapes the exporter, and the exporter sees cndpfwd
        deadline = time.monotonic() + 20
        while True:
            up = prom.query('cndp_up{app="cndpfwd"}')
            if up and up[0]["value"][1] == "1":
                break
            assert time.monotonic() < deadline, ("no cndp_up", prom.query("up"))
            time.sleep(0.25)
        lbl = f'port="{names[0]}",netdev="{star.dut[0].ifname}",queue="0",app="cndpfwd"'
        assert prom.value('cndp_ready{app="cndpfwd"}') == 1
        before = time.time()
        n = RATE * SECONDS
        t0, t1 = send_steady(peers[0], peer_frames(star, 0, n, size=SIZE), RATE)
        sent_rate = n / (t1 - t0 + 1 / 50)  # the last burst covers 1/50 s
        time.sleep(3.5)  # two scrapes after the last frame, plus the 0.25 s publish period
        after = time.time()

        # rate over the steady middle of the run (10 s ending 1 s before the last burst)
        at = t1 - 1.0
        window = min(10, int(t1 - t0) - 2)
        for metric, per in (
            ("cndp_port_receive_packets_total", 1),
            ("cndp_port_transmit_packets_total", 1),
            ("cndp_port_receive_bytes_total", SIZE),
        ):
            got = prom.value(f"rate({metric}{{{lbl}}}[{window}s])", at)
            want = sent_rate * per
            print(f"rate {metric}: prometheus {got:.1f}/s, sent {want:.1f}/s")
            assert abs(got - want) <= 0.05 * want, (metric, got, want)
        # the whole run: the counter after minus the counter before (no extrapolation)
        q = f"cndp_port_receive_packets_total{{{lbl}}}"
        total = prom.value(q, after) - prom.value(q, before)
        assert abs(total - n) <= 0.05 * n and total >= n - 5, (total, n)
        # the worker's own counters agree, and the idle lport saw (almost) nothing
        wq = 'cndp_worker_receive_packets_total{worker="fwd:0",app="cndpfwd"}'
        w = prom.value(wq, after) - prom.value(wq, before)
        assert abs(w - n) <= 0.05 * n, (w, n)
        other = f'cndp_port_receive_packets_total{{port="{names[1]}",app="cndpfwd"}}'
        assert prom.value(other, after) - prom.value(other, before) < 20
        build = prom.query("cndp_build_info")
        assert build and build[0]["metric"]["python"] == ".".join(map(str, sys.version_info[:3]))
    finally:
        for p in (prom, exporter):
            if p is not None:
                p.close()
        if fwd is not None:
            fwd.stop()
        for p in peers:
            p.close()
