"""The REST sidecar on a running cndpfwd: readiness follows the sockets, and every state
change made over HTTP is obeyed by the data path (frames counted, dropped or echoed)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

from .test_cndpfwd import Fwd, open_peers, peer_frames, star, write_config
from .test_exporter_prometheus import Proc
from .xsk_helpers import is_udp_to

__all__ = ["star"]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, ctype="application/json"):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
        if isinstance(data, str):
            data = data.encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None and ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def get(self, path: str):
        return self.call("GET", path)

    def put(self, path: str, body):
        return self.call("PUT", path, body)


def ipackets(api: Api, lport: str) -> int:
    st, r = api.get(f"/v1/ports/{lport}")
    assert st == 200, r
    return r["stats"]["ipackets"]


def settle(api: Api, lport: str, at_least: int = 0, timeout: float = 5.0) -> int:
    """The lport's rx counter once it stopped moving (two equal reads 0.6 s apart: more than
    two publish periods) and reached ``at_least``."""
    deadline = time.monotonic() + timeout
    last = ipackets(api, lport)
    while True:
        time.sleep(0.6)
        now = ipackets(api, lport)
        if now == last and now >= at_least:
            return now
        assert time.monotonic() < deadline, (lport, now, at_least)
        last = now


def test_readiness_and_state_changes_obeyed_by_the_data_path(star, tmp_path):
    rundir = tmp_path / "run"
    rundir.mkdir()
    cfg, names = write_config(tmp_path, star)
    rest = Proc(
        [sys.executable, "-m", "cndp.telemetry.rest", "--dir", str(rundir), "--listen",
         "127.0.0.1:0"],
        ready=r"listening on (http://127\.0\.0\.1:\d+)",
    )  # fmt: skip
    api = Api(rest.match.group(1))
    peers = open_peers(star)
    fwd = None
    seen: list[tuple[int, dict]] = []
    stop = threading.Event()

    def poll_ready():
        while not stop.is_set():
            seen.append(api.get("/readyz"))
            time.sleep(0.002)

    poller = threading.Thread(target=poll_ready, daemon=True)
    try:
        # no application yet: alive and ready both fail, saying why
        st, r = api.get("/livez")
        assert st == 503 and "no live telemetry socket" in r["error"]
        st, r = api.get("/readyz")
        assert st == 503 and r["ready"] is False and r["reasons"]
        poller.start()
        fwd = Fwd(star, ["-c", str(cfg), "--runtime-dir", str(rundir), "drop"])
        deadline = time.monotonic() + 10
        while not any(s == 200 for s, _ in seen):
            assert time.monotonic() < deadline, seen[-3:]
            time.sleep(0.01)
        stop.set()
        poller.join(5)
        first = next(i for i, (s, _) in enumerate(seen) if s == 200)
        assert first > 0 and all(s == 503 for s, _ in seen[:first])
        # the app answers while its workers bind (~100 ms here: 4-9 of our polls when the
        # machine is quiet, maybe none under load; tests/unit/test_rest.py holds that state
        # open deterministically): not ready then, because the lports were not open yet
        binding = [b for _, b in seen[:first] if any("starting" in x for x in b["reasons"])]
        print(f"{len(binding)} answers while binding")
        assert all(
            any(
                re.search(r"lport .* is not (open|bound)|not in the XSKMAP", x)
                for x in b["reasons"]
            )
            for b in binding
        ), binding[:2]
        for _, body in seen[:first]:  # what was missing: no socket yet, or workers binding
            assert all(
                re.search(r"no live telemetry socket|starting|not open|not bound|XSKMAP", x)
                for x in body["reasons"]
            ), body
        # ready now (the kernel here has no XDP socket diag to list them: the frames below
        # reaching both sockets are the proof that they are bound and in the XSKMAP)
        st, r = api.get("/readyz")
        assert st == 200 and r["ready"] is True
        assert all(p["bound"] and p["xskmap"] and p["admin"] == "up" for p in r["ports"].values())
        st, live = api.get("/livez")
        assert st == 200 and live["pid"] == fwd.proc.pid

        # read-only views
        st, app = api.get("/v1/app")
        assert st == 200 and app["name"] == "cndpfwd" and app["mode"] == "drop"
        st, conf = api.get("/v1/config")
        assert st == 200 and sorted(conf["lports"]) == sorted(names)
        st, g = api.get("/v1/graph")
        assert {"from": f"{names[0]}-rx", "to": "fwd:0"} in g["edges"]
        assert {"from": "fwd:0", "to": "drop"} in g["edges"]
        st, th = api.get("/v1/threads")
        assert {t["name"]: t["status"] for t in th["threads"]}["fwd:1"] == "running"

        # counting works: 200 frames on lport 0, 50 on lport 1
        base = settle(api, names[0])
        base1 = ipackets(api, names[1])
        peers[0].send(peer_frames(star, 0, 200))
        peers[1].send(peer_frames(star, 1, 50))
        n0 = settle(api, names[0], base + 200)
        assert n0 - base <= 210
        assert settle(api, names[1], base1 + 50) - base1 <= 60

        # admin down: the worker stops receiving; readiness says why
        st, r = api.put(f"/v1/ports/{names[0]}/admin", {"state": "down"})
        assert st == 200 and r["ports"][0]["admin"] == "down" and not r["ports"][0]["admin_up"]
        st, rd = api.get("/readyz")
        assert st == 503 and f"lport {names[0]} is admin down" in rd["reasons"]
        # the count once down (the Linux peer's own ND/RS frame may have landed just before)
        n0 = settle(api, names[0], n0)
        peers[0].send(peer_frames(star, 0, 300, base=1000))
        time.sleep(1.0)
        assert ipackets(api, names[0]) == n0  # nothing received while down
        st, r = api.put(f"/v1/ports/{names[0]}/admin", {"state": "up"})
        assert st == 200 and r["ports"][0]["admin_up"]
        assert api.get("/readyz")[0] == 200
        up_base = settle(api, names[0], n0 + 300)  # the 300 waited in the socket's RX ring
        assert up_base - n0 <= 310
        peers[0].send(peer_frames(star, 0, 100, base=2000))
        assert settle(api, names[0], up_base + 100) - up_base <= 110

        # clear: every lport's counters go to zero, and count again from there
        st, r = api.call("POST", "/v1/stats/clear", None)
        assert st == 200 and sorted(r["cleared"]) == sorted(names) and not r["pending"]
        st, s = api.get("/v1/stats")
        assert all(s["ports"][n]["ipackets"] <= 2 for n in names)  # (an ND frame may come)
        assert all(s["workers"][w]["rx_packets"] <= 2 for w in ("fwd:0", "fwd:1"))
        peers[1].send(peer_frames(star, 1, 150))
        assert 150 <= settle(api, names[1], 150) <= 160

        # mode: drop sends nothing back; loopback returns every frame; back to drop
        peers[0].send(peer_frames(star, 0, 20, base=3000))
        assert peers[0].recv_until(1, timeout=0.5, match=is_udp_to(9)) == []
        st, m = api.put("/v1/mode", {"mode": "lb"})
        assert st == 200 and m["mode"] == "loopback" and not m["pending"]
        assert set(m["active"].values()) == {"loopback"}
        peers[0].send(peer_frames(star, 0, 50, base=4000))
        assert len(peers[0].recv_until(50, timeout=5, match=is_udp_to(9))) == 50
        st, m = api.put("/v1/mode", {"mode": "drop"})
        assert st == 200 and set(m["active"].values()) == {"drop"}
        peers[0].send(peer_frames(star, 0, 20, base=5000))
        assert peers[0].recv_until(1, timeout=0.5, match=is_udp_to(9)) == []
        st, e = api.put("/v1/mode", {"mode": "fwd"})
        assert st == 409 and "restart" in e["error"]

        # pause a worker: not ready, nothing counted; resume: counted
        st, r = api.put("/v1/threads/fwd:1/state", {"state": "paused"})
        assert st == 200 and r["threads"] == [{"name": "fwd:1", "status": "paused"}]
        time.sleep(0.6)
        st, rd = api.get("/readyz")
        assert st == 503 and "worker fwd:1 is paused" in rd["reasons"]
        before = settle(api, names[1])
        peers[1].send(peer_frames(star, 1, 10, base=6000))
        time.sleep(0.8)
        assert ipackets(api, names[1]) == before
        assert api.put("/v1/threads/fwd:1/state", {"state": "running"})[0] == 200
        assert settle(api, names[1], before + 10) >= before + 10

        # log level: set over REST, the app logs the change (JSON lines on stderr)
        st, r = api.put("/v1/loglevel", {"level": "debug"})
        assert st == 200 and r == {"level": "debug"}
        assert api.get("/v1/loglevel")[1] == {"level": "debug"}
        # stderr is read by a thread of the test: the line may land a moment after the reply
        deadline = time.monotonic() + 5
        while not any('"log level set to debug"' in ln for ln in fwd.err_lines):
            assert time.monotonic() < deadline, fwd.err_lines[-3:]
            time.sleep(0.05)

        # errors name the problem
        st, e = api.put("/v1/ports/nope:0/admin", {"state": "down"})
        assert st == 404 and "nope:0" in e["error"]
        st, e = api.put(f"/v1/ports/{names[0]}/admin", {"state": "sideways"})
        assert st == 400 and "state" in e["error"]
        st, e = api.call("PUT", "/v1/loglevel", b"level=debug", ctype="text/plain")
        assert st == 415
        st, e = api.call("DELETE", "/v1/stats", None)
        assert st == 405

        # stopped: neither alive nor ready
        rc, _, err = fwd.stop()
        fwd = None
        assert rc == 0, err
        assert api.get("/readyz")[0] == 503 and api.get("/livez")[0] == 503
    finally:
        stop.set()
        if fwd is not None:
            fwd.stop()
        rest.close()
        for p in peers:
            p.close()
    assert rest.proc.returncode == 0, "".join(rest.lines)


def test_rest_on_a_unix_socket(star, tmp_path):
    """--listen unix:PATH: the API over a Unix socket (keep-alive: two requests, one
    connection)."""
    rundir = tmp_path / "run"
    cfg, _ = write_config(tmp_path, star)
    sock = tmp_path / "rest.sock"
    fwd = Fwd(star, ["-c", str(cfg), "--runtime-dir", str(rundir), "drop"])
    rest = Proc(
        [sys.executable, "-m", "cndp.telemetry.rest", "--dir", str(rundir), "--listen",
         f"unix:{sock}"],
        ready=r"listening on unix:",
    )  # fmt: skip
    try:
        conn = UnixHTTPConnection(str(sock))
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200 and body["ready"] is True
        conn.request("PUT", "/v1/loglevel", body=b'{"level": "info"}',
                     headers={"Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"level": "info"}
        conn.close()
    finally:
        rest.close()
        fwd.stop()
    assert not sock.exists()
