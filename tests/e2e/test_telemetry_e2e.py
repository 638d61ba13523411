"""cndpfwd under traffic, observed and controlled through its telemetry and CLI sockets.

The telemetry client here does what CNDP's tools/cndp-metrics.py does (SOCK_SEQPACKET,
``/info`` read with a 1 KiB buffer, then replies read with ``max_output_len``), so what it
accepts, CNDP's own client accepts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .test_cndpfwd import CNDPFWD, Fwd, open_peers, peer_frames, star, totals, write_config

__all__ = ["star"]  # the fixture, shared with test_cndpfwd

CNECTL = str(Path(sys.executable).with_name("cnectl"))


class MetricsClient:
    def __init__(self, path: str):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(path)
        self.s.send(b"/info")
        self.info = json.loads(self.s.recv(1024).decode())
        self.max = self.info["max_output_len"]

    def ask(self, cmd: str) -> dict:
        self.s.send(cmd.encode())
        return json.loads(self.s.recv(self.max).decode())

    def close(self) -> None:
        self.s.close()


def wait_for(fn, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def default_socket(pid: int) -> str:
    return f"/var/run/cndp/app_socket.{pid}"


def test_cndp_commands_under_traffic_and_cleanup_on_sigterm(star, tmp_path):
    cfg, names = write_config(tmp_path, star)
    cli_sock = str(tmp_path / "cli.sock")
    peers = open_peers(star)
    n = 300
    try:
        fwd = Fwd(star, ["-c", str(cfg), "--cli-socket", cli_sock, "drop"])
        path = default_socket(fwd.proc.pid)
        assert os.path.exists(path) and os.path.exists(cli_sock)
        c = MetricsClient(path)
        assert c.info["pid"] == fwd.proc.pid and c.info["version"].startswith("CNDP ")
        cmds = c.ask("/")["/"]
        assert {"/", "/info", "/app/ports", "/app/threads", "/metrics/port_stats"} <= set(cmds)
        assert [p["name"] for p in c.ask("/app/ports")["ports"]] == names
        assert c.ask("/app/appname") == {"name": "cndpfwd"}
        threads = {t["name"]: t for t in c.ask("/app/threads")["threads"]}
        assert threads["fwd:1"]["ports"] == [names[1]] and threads["main"]["type"] == "main"

        sizes = [60, 70]
        for i, p in enumerate(peers):
            p.send(peer_frames(star, i, n, size=sizes[i]))

        def all_counted():
            st = c.ask("/metrics/port_stats")
            return st if all(st[f"{nm}_n_rx_packets"] >= n for nm in names) else None

        wait_for(all_counted, what="the frames in /metrics/port_stats")
        time.sleep(0.6)  # let the last publish period pass: the counters are final now
        st = c.ask("/metrics/port_stats")
        assert len(st) == 28 * len(names) and all(type(v) is int for v in st.values())
        for i, nm in enumerate(names):
            rx = st[f"{nm}_n_rx_packets"]
            assert n <= rx <= n + 10  # the Linux peer may add a few frames of its own (ND)
            assert st[f"{nm}_n_rx_bytes"] >= n * sizes[i]
            assert st[f"{nm}_n_tx_packets"] == 0  # drop mode sends nothing
            assert st[f"{nm}_n_rx_count"] == rx  # rx_rcvd_count, CNDP's name n_rx_count
        workers = c.ask("/metrics/worker_stats")["workers"]
        assert sorted(w["pid"] for w in workers.values()) == sorted(fwd.worker_pids())
        for w, nm in (("fwd:0", names[0]), ("fwd:1", names[1])):
            assert 0 <= workers[w]["rx_packets"] - st[f"{nm}_n_rx_packets"] <= 10
            assert workers[w]["loops"] > 0 and workers[w]["paused"] == 0
        per_netdev = c.ask("/metrics/netdev_stats")["netdevs"]
        assert per_netdev[names[0].split(":")[0]]["ipackets"] >= st[f"{names[0]}_n_rx_packets"]

        # the CLI over its socket, as cnectl's batch mode drives it
        r = subprocess.run(
            [CNECTL, "-s", cli_sock, "stats"], capture_output=True, text=True, timeout=20
        )
        assert r.returncode == 0, r.stderr
        rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[1:]}
        for nm in names:
            # later than st: the Linux peer's own frames (ND, RS) may have come meanwhile
            assert 0 <= int(rows[nm][1].replace(",", "")) - st[f"{nm}_n_rx_packets"] <= 10
        r = subprocess.run(
            [CNECTL, "-s", cli_sock, "ip", "link", "show", star.dut[0].ifname],
            capture_output=True,
            text=True,
            timeout=20,
        )
        # our XDP program is on the netdev: ip link says so, as iproute2 would
        assert re.match(
            rf"\d+: {star.dut[0].ifname}@if\d+: <[A-Z_,]*UP[A-Z_,]*> mtu \d+ xdp\w*/id:\d+ ",
            r.stdout,
        ), r.stdout
        r = subprocess.run(
            [CNECTL, "-s", path, "/metrics/port_stats"], capture_output=True, text=True, timeout=20
        )
        assert r.returncode == 0
        again = json.loads(r.stdout)
        assert set(again) == set(st) and all(again[k] >= st[k] for k in st)
        c.close()
        rc, out, err = fwd.stop(signal.SIGTERM)
    finally:
        for p in peers:
            p.close()
    assert rc == 0, err
    assert not os.path.exists(path), "telemetry socket left after SIGTERM"
    assert not os.path.exists(cli_sock), "CLI socket left after SIGTERM"
    t = totals(out)
    for nm in names:
        assert 0 <= t[nm]["rx"] - st[f"{nm}_n_rx_packets"] <= 10  # the final totals agree


def test_pause_and_resume_a_worker_through_the_socket(star, tmp_path):
    cfg, names = write_config(tmp_path, star)
    peers = open_peers(star)
    try:
        sock = str(tmp_path / "tm.sock")
        fwd = Fwd(star, ["-c", str(cfg), "--telemetry-socket", sock, "drop"])
        c = MetricsClient(sock)
        assert c.ask("/app/stop,fwd:0") == {"threads": [{"name": "fwd:0", "status": "paused"}]}
        wait_for(
            lambda: c.ask("/metrics/worker_stats")["workers"]["fwd:0"]["paused"] == 1,
            what="fwd:0 to pause",
        )
        time.sleep(0.3)
        before = c.ask("/metrics/port_stats")
        for i, p in enumerate(peers):
            p.send(peer_frames(star, i, 50))
        # the running worker counts its frames; the paused one leaves them in its RX ring
        wait_for(
            lambda: (
                c.ask(f"/metrics/port_stats,{names[1]}")[f"{names[1]}_n_rx_packets"]
                >= before[f"{names[1]}_n_rx_packets"] + 50
            ),
            what="fwd:1 to count its frames",
        )
        time.sleep(0.6)
        now = c.ask("/metrics/port_stats")
        assert now[f"{names[0]}_n_rx_packets"] == before[f"{names[0]}_n_rx_packets"]
        assert c.ask("/app/start,all")["threads"][0]["status"] == "running"
        wait_for(
            lambda: (
                c.ask(f"/metrics/port_stats,{names[0]}")[f"{names[0]}_n_rx_packets"]
                >= before[f"{names[0]}_n_rx_packets"] + 50
            ),
            what="fwd:0 to count the frames that waited",
        )
        assert c.ask("/metrics/worker_stats")["workers"]["fwd:0"]["paused"] == 0
        c.close()
        rc, _, err = fwd.stop()
    finally:
        for p in peers:
            p.close()
    assert rc == 0, err
    assert not os.path.exists(sock)


def test_log_level_from_config_and_socket_json_logs(star, tmp_path):
    cfg, _ = write_config(tmp_path, star)
    doc = json.loads(cfg.read_text().split("\n", 1)[1])
    doc["options"]["log-level"] = "info"
    cfg.write_text(json.dumps(doc))
    fwd = Fwd(star, ["-c", str(cfg), "--no-telemetry", "--cli-socket", str(tmp_path / "c"), "lb"])
    assert not os.path.exists(default_socket(fwd.proc.pid))  # --no-telemetry
    r = subprocess.run(
        [CNECTL, "-s", str(tmp_path / "c"), "loglevel"], capture_output=True, text=True, timeout=20
    )
    assert r.stdout == "log level: info\n"
    r = subprocess.run(
        [CNECTL, "-s", str(tmp_path / "c"), "loglevel", "debug"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert r.stdout == "log level: debug\n"
    rc, _, err = fwd.stop()
    assert rc == 0, err
    records = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    # stderr is a pipe, so logs are JSON lines; the level change was logged at info level
    assert any(r["msg"] == "log level set to debug" and r["app"] == "cndpfwd" for r in records)
    assert all({"time", "level", "logger", "msg", "pid"} <= set(r) for r in records)


def test_worker_death_removes_the_socket(star, tmp_path):
    cfg, _ = write_config(tmp_path, star)
    fwd = Fwd(star, ["-c", str(cfg), "drop"])
    path = default_socket(fwd.proc.pid)
    assert os.path.exists(path)
    os.kill(fwd.worker_pids()[0], signal.SIGKILL)
    fwd.proc.wait(20)
    rc, _, err = fwd.stop()
    assert rc != 0 and "SIGKILL" in err
    assert not os.path.exists(path)


def test_local_shell_quit_stops_the_app(star, tmp_path):
    """--shell with piped input: commands run in order, and quit stops cndpfwd cleanly."""
    cfg, names = write_config(tmp_path, star)
    proc = star.popen(
        [CNDPFWD, "-c", str(cfg), "--shell", "drop"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate("ports\nthreads\nquit\n", timeout=60)
    assert proc.returncode == 0, err
    assert f"  0 {names[0]}" in out and "fwd:1" in out and "running" in out
    assert not os.path.exists(default_socket(proc.pid))
    assert f"{names[0]}: rx " in out  # the final totals: the app stopped by itself
