"""cndp-exporter: metric names, labels and values against a running application (real
runtime and telemetry socket, stand-in lports), apps appearing and vanishing, CNDP's own
(C) applications, the HTTP endpoint, and the Grafana dashboard's metric names."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cndp.telemetry.app import (
    AppControl,
    PortInfo,
    ThreadInfo,
    port_stats_cndp,
    register_app_commands,
)
from cndp.telemetry.exporter import (
    PORT_COUNTERS,
    CndpCollector,
    ListenError,
    build_registry,
    metric_names,
    parse_listen,
)
from cndp.telemetry.registry import PORT_BLOCK, Registry
from cndp.telemetry.uds import CommandTable, Request, TelemetryServer
from cndp.xskdev.xskdev import STAT_KEYS

from ._telemetry_app import FakeApp, wait_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "cndp-dashboard.json"


def scrape(collector: CndpCollector) -> dict[str, list]:
    """name (as exposed) -> [(labels, value)]."""
    text = generate_latest(build_registry(collector)).decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def one(samples: dict, name: str, **labels) -> float:
    got = [v for lb, v in samples.get(name, []) if all(lb.get(k) == w for k, w in labels.items())]
    assert len(got) == 1, (name, labels, samples.get(name))
    return got[0]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    with FakeApp(str(d / "app_socket.4242"), name="fakeapp") as a:
        a.dir = str(d)
        yield a


def test_names_labels_and_values_follow_the_app(app):
    col = CndpCollector(app.dir)
    time.sleep(0.1)
    before = app.ctl.port_stats()
    s = scrape(col)
    after = app.ctl.port_stats()
    pid = str(app.ctl.app_info()["pid"])
    assert one(s, "cndp_up", app="fakeapp", pid=pid) == 1
    assert one(s, "cndp_ready", app="fakeapp") == 1
    assert one(s, "cndp_exporter_apps") == 1
    info = s["cndp_app_info"][0][0]
    assert info["mode"] == "drop" and info["api"] == "xskdev" and info["version"].startswith("CNDP")
    build = s["cndp_build_info"][0][0]
    assert build["python"] == ".".join(map(str, sys.version_info[:3])) and build["cndp"]
    for i, lport in enumerate(app.lports):
        labels = {"app": "fakeapp", "pid": pid, "port": lport, "queue": "0"}
        labels["netdev"] = ("ethA", "ethB")[i]
        for key in ("ipackets", "ibytes", "opackets", "obytes"):
            name = PORT_COUNTERS[key][0] + "_total"
            v = one(s, name, **labels)
            assert before[lport][key] <= v <= after[lport][key], (name, v)
        assert one(s, "cndp_port_receive_packets_total", **labels) > 0
        assert one(s, "cndp_port_admin_up", **labels) == 1
        assert one(s, "cndp_port_bound", **labels) == 1
        assert one(s, "cndp_port_xskmap", **labels) == 1
        assert 0 <= one(s, "cndp_port_publish_age_seconds", **labels) < 1
    for w in ("w0", "w1"):
        assert one(s, "cndp_worker_loops_total", worker=w) > 0
        assert one(s, "cndp_worker_paused", worker=w) == 0
        assert one(s, "cndp_worker_receive_packets_total", worker=w) > 0
        assert one(s, "cndp_worker_process_id", worker=w) > 0
    # rx_rcvd_count is ipackets again: not exported twice
    assert not any("rcvd" in n for n in s)


def test_every_exported_name_is_known_and_every_known_name_exported(app):
    s = scrape(CndpCollector(app.dir))
    assert set(s) <= metric_names()
    assert metric_names() <= set(s)


def test_admin_down_and_pause_show_in_the_metrics(app):
    col = CndpCollector(app.dir)
    app.ctl.set_admin("ethB:0", False)
    app.ctl.set_paused("w0", True)
    try:
        wait_for(lambda: one(scrape(col), "cndp_port_admin_up", port="ethB:0") == 0)
        s = wait_for(
            lambda: (x := scrape(col)) and one(x, "cndp_worker_paused", worker="w0") == 1 and x
        )
        assert one(s, "cndp_ready", app="fakeapp") == 0
        # counters stand still: ethB:0 is down, ethA:0's worker is paused
        time.sleep(0.4)
        a = scrape(col)
        time.sleep(0.5)
        b = scrape(col)
        for port in app.lports:
            name = "cndp_port_receive_packets_total"
            assert one(a, name, port=port) == one(b, name, port=port)
    finally:
        app.ctl.set_admin("ethB:0", True)
        app.ctl.set_paused("w0", False)
    wait_for(lambda: one(scrape(col), "cndp_ready", app="fakeapp") == 1)


def test_apps_appear_and_vanish(tmp_path):
    col = CndpCollector(str(tmp_path))
    s = scrape(col)
    assert one(s, "cndp_exporter_apps") == 0 and "cndp_up" not in s
    # a socket file nobody listens on (its app was SIGKILLed): up 0, pid from the name
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(tmp_path / "app_socket.777"))
    stale.close()
    (tmp_path / "app_socket.notasocket").write_text("x")  # not a socket: ignored
    s = scrape(col)
    assert one(s, "cndp_exporter_apps") == 1
    assert one(s, "cndp_up", pid="777") == 0
    with FakeApp(str(tmp_path / "app_socket.9999"), name="late", mode=False) as a:
        s = scrape(col)
        assert one(s, "cndp_up", app="late") == 1
        assert len(s["cndp_up"]) == 2
        assert one(s, "cndp_port_receive_packets_total", app="late", port="ethA:0") >= 0
        a.server.close()  # the app stops: its socket file goes
        a.server = None
    (tmp_path / "app_socket.777").unlink()
    s = scrape(col)
    assert "cndp_up" not in s and one(s, "cndp_exporter_apps") == 0
    assert "cndp_port_receive_packets_total" not in s


def _c_like_app(path: str, lports: dict[str, dict[str, int]]) -> TelemetryServer:
    """What CNDP's C cndpfwd registers: /app/appname, /app/ports, /metrics/port_stats."""
    t = CommandTable()
    t.register("/app/appname", lambda r: {"name": "cndpfwd-c"})
    t.register(
        "/app/ports",
        lambda r: {
            "ports": [
                {"id": i, "name": n, "netdev": n.split(":")[0], "qid": 0}
                for i, n in enumerate(lports)
            ]
        },
    )

    def port_stats(r: Request) -> dict:
        out: dict[str, int] = {}
        for n, stats in lports.items():
            out.update(port_stats_cndp(n, stats))
        return out

    t.register("/metrics/port_stats", port_stats)
    return TelemetryServer(path, table=t).start()


def test_cndp_c_applications_are_read_by_their_port_stats(tmp_path):
    lports = {
        "eth0:0": {k: i + 1 for i, k in enumerate(STAT_KEYS)},
        "eth0:1": dict.fromkeys(STAT_KEYS, 5),
    }
    srv = _c_like_app(str(tmp_path / "app_socket.55"), lports)
    try:
        s = scrape(CndpCollector(str(tmp_path)))
    finally:
        srv.close()
    assert one(s, "cndp_up", app="cndpfwd-c") == 1
    assert "cndp_ready" not in s and "cndp_port_admin_up" not in s
    a = lports["eth0:0"]
    for key, (name, _) in PORT_COUNTERS.items():
        if key in ("rx_ring_full", "rx_fill_ring_empty", "tx_ring_empty"):
            continue  # not among CNDP's 28 port_stats keys
        assert one(s, name + "_total", port="eth0:0", netdev="eth0", queue="0") == a[key], key
    assert one(s, "cndp_port_transmit_packets_total", port="eth0:1") == 5


def test_many_lports_are_read_one_request_each(tmp_path):
    names = [f"veth{i}:0" for i in range(40)]
    reg = Registry()
    block = reg.add_block(PORT_BLOCK, names, STAT_KEYS)
    for i, n in enumerate(names):
        block.publish(n, {"ipackets": 1000 + i, "obytes": 7})
    ctl = AppControl(
        name="big",
        threads=[ThreadInfo(0, "main", "g", "main")],
        ports=[PortInfo(i, n, n.split(":")[0], 0, "net_af_xdp", None) for i, n in enumerate(names)],
        registry=reg,
    )
    ctl.label_ports()
    t = CommandTable()
    register_app_commands(t, ctl)
    assert "too many lports" in t.call("/metrics/lport_stats")["error"]  # > 16384 bytes
    srv = TelemetryServer(str(tmp_path / "app_socket.1"), table=t).start()
    try:
        s = scrape(CndpCollector(str(tmp_path)))
    finally:
        srv.close()
    assert len(s["cndp_port_receive_packets_total"]) == 40
    for i, n in enumerate(names):
        assert one(s, "cndp_port_receive_packets_total", port=n) == 1000 + i
    assert "cndp_ready" in s and one(s, "cndp_ready") == 1  # no workers, nothing missing


def test_the_exporter_process_serves_metrics_over_http(app):
    p = subprocess.Popen(
        [sys.executable, "-m", "cndp.telemetry.exporter", "--dir", app.dir, "--listen", ":0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stderr.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)/metrics", line)
        assert m, line
        with urllib.request.urlopen(m.group(1) + "/metrics", timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["cndp_port_receive_packets"].type == "counter"
        assert fams["cndp_up"].samples[0].value == 1
    finally:
        p.terminate()
        assert p.wait(10) == 0
    once = subprocess.run(
        [sys.executable, "-m", "cndp.telemetry.exporter", "--dir", "", "--socket", app.path,
         "--once"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert once.returncode == 0 and 'cndp_up{app="fakeapp"' in once.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "cndp.telemetry.exporter", "--listen", "nonsense"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 1 and "is not HOST:PORT" in bad.stderr


def test_parse_listen():
    assert parse_listen("127.0.0.1:9470") == ("127.0.0.1", 9470)
    assert parse_listen(":0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("", "1.2.3.4", "h:99999", "h:-1", "h:x"):
        with pytest.raises(ListenError):
            parse_listen(bad)


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_fuzz_parse_listen(text):
    try:
        host, port = parse_listen(text)
    except ListenError as e:
        assert "fix" in str(e)
    else:
        assert 0 <= port <= 65535 and isinstance(host, str)


_METRIC_RE = re.compile(r"\bcndp_[a-z0-9_]+")


def test_grafana_dashboard_is_valid_and_uses_only_exported_metrics():
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "app", "port"} <= variables
    used: set[str] = set()
    titles = []
    for p in d["panels"]:
        assert p["type"] in ("timeseries", "stat")
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"][
            "w"
        ] <= 24
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["targets"]
        for t in p["targets"]:
            assert t["refId"] and t["expr"].count("(") == t["expr"].count(")")
            used |= set(_METRIC_RE.findall(t["expr"]))
        titles.append(p["title"].lower())
    for v in d["templating"]["list"]:
        used |= set(_METRIC_RE.findall(json.dumps(v.get("query", ""))))
    assert used and used <= metric_names(), used - metric_names()
    for want in ("rx packets/s", "tx packets/s", "rx bits/s", "tx bits/s", "drops", "loops",
                 "idle", "up"):  # fmt: skip
        assert any(want in t for t in titles), want
