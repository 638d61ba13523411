"""The telemetry socket: CNDP's protocol (§2.2 conformance checks), the app and metrics
groups, robustness of the request parser under fuzzing."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.telemetry import logs
from cndp.telemetry.app import (
    CNDP_PORT_STATS,
    AppControl,
    PortInfo,
    ThreadInfo,
    port_stats_cndp,
    register_app_commands,
)
from cndp.telemetry.registry import WORKER_KEYS, Registry, shared_zeros
from cndp.telemetry.uds import (
    MAX_OUTPUT_LEN,
    NO_OUTPUT,
    CommandTable,
    TelemetryError,
    TelemetryServer,
    parse_request,
)
from cndp.xskdev.xskdev import STAT_KEYS


class MetricsClient:
    """Does what CNDP's tools/cndp-metrics.py does: /info read with 1 KiB, then replies read
    with max_output_len."""

    def __init__(self, path: str):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(path)
        self.s.send(b"/info")
        self.info = json.loads(self.s.recv(1024).decode())
        self.max = self.info["max_output_len"]

    def raw(self, cmd: bytes) -> bytes:
        self.s.send(cmd)
        return self.s.recv(self.max)

    def ask(self, cmd: str) -> dict:
        return json.loads(self.raw(cmd.encode()).decode())

    def close(self) -> None:
        self.s.close()


def make_app() -> tuple[AppControl, Registry]:
    reg = Registry()
    reg.add_block("lport", ["eth0:0", "eth1:0"], STAT_KEYS)
    reg.add_block("worker", ["fwd:0", "fwd:1"], WORKER_KEYS)
    reg.freeze()
    ctl = AppControl(
        "cndpfwd",
        [
            ThreadInfo(0, "main", "initial", "main"),
            ThreadInfo(1, "fwd:0", "g0", "fwd", ("eth0:0",)),
            ThreadInfo(2, "fwd:1", "g1", "fwd", ("eth1:0",)),
        ],
        [
            PortInfo(0, "eth0:0", "eth0", 11, "net_af_xdp", "fwd:0"),
            PortInfo(1, "eth1:0", "eth1", 0, "net_af_xdp", "fwd:1"),
        ],
        reg,
        ["fwd:0", "fwd:1"],
        shared_zeros(2),
    )
    ctl.label_ports()
    return ctl, reg


@pytest.fixture
def app_server(tmp_path):
    ctl, reg = make_app()
    table = CommandTable()
    register_app_commands(table, ctl)
    srv = TelemetryServer(str(tmp_path / "run" / f"app_socket.{os.getpid()}"), table=table)
    srv.start()
    try:
        yield srv, ctl, reg
    finally:
        srv.close()


def test_cndp_conformance_checks(app_server):
    srv, ctl, reg = app_server
    # 1. connects; nothing arrives before the first request
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    raw.connect(srv.path)
    raw.settimeout(0.2)
    with pytest.raises(TimeoutError):
        raw.recv(100)
    raw.close()
    c = MetricsClient(srv.path)
    # 2. /info
    assert set(c.info) == {"version", "pid", "max_output_len"}
    assert c.info["version"].startswith("CNDP ")
    assert c.info["pid"] == int(srv.path.rsplit(".", 1)[1]) == os.getpid()
    assert c.info["max_output_len"] == 16384
    # 3. / lists /, /info and every /group/cmd in registration order
    cmds = c.ask("/")["/"]
    assert cmds[:2] == ["/", "/info"]
    for want in ("/app/hostname", "/app/appname", "/app/threads", "/app/ports", "/app/stop"):
        assert want in cmds
    assert "/metrics/port_stats" in cmds
    # 4. case-insensitive
    assert c.ask("/APP/HOSTNAME") == {"hostname": socket.gethostname()}
    assert c.ask("/App/AppName") == {"name": "cndpfwd"}
    # 5. unknown commands
    assert c.raw(b"/nope") == b'{"error":"invalid cmd (/nope)"}'
    assert c.raw(b"/nope,x,y") == b'{"error":"invalid cmd (/nope,x)"}'
    assert c.ask("/app/nope") == {"error": "invalid cmd (/app/nope)"}
    assert c.ask("info") == {"error": "invalid cmd (info)"}
    # 6. stop/start
    assert c.ask("/app/stop") == {"error": "Command requires thread name (or 'all') as a parameter"}
    r = c.ask("/app/stop,all")
    assert r == {
        "threads": [{"name": "fwd:0", "status": "paused"}, {"name": "fwd:1", "status": "paused"}]
    }
    assert list(ctl.pause) == [1, 1]
    assert c.ask("/app/start,fwd:1") == {"threads": [{"name": "fwd:1", "status": "running"}]}
    assert list(ctl.pause) == [1, 0]
    assert c.ask("/app/start,all")["threads"][0]["status"] == "running"
    assert c.ask("/app/stop,main") == {"threads": []}
    assert c.ask("/app/stop,fwd:9") == {"error": "Thread 'fwd:9' not found"}
    # 7. port stats: 28 keys per lport, all integers, CNDP names, registry values
    reg.block("lport").publish("eth1:0", {"ipackets": 77, "ibytes": 4620, "tx_copied": 3})
    ps = c.ask("/metrics/port_stats")
    assert len(ps) == 2 * 28 and all(type(v) is int for v in ps.values())
    assert next(iter(ps)) == "eth0:0_n_rx_bytes" and list(ps)[28] == "eth1:0_n_rx_bytes"
    assert ps["eth1:0_n_rx_packets"] == 77 and ps["eth1:0_n_rx_bytes"] == 4620
    assert ps["eth1:0_tx_copied"] == 3 and ps["eth0:0_n_rx_packets"] == 0
    assert c.ask("/metrics/port_stats,eth1:0") == {k: v for k, v in ps.items() if "eth1" in k}
    # 8. a request longer than 56 bytes is cut, not refused
    assert c.ask("/info," + "x" * 200)["max_output_len"] == 16384
    assert c.ask("/app/appname\0garbage") == {"name": "cndpfwd"}
    c.close()


def test_app_group_shapes(app_server):
    srv, _ctl, reg = app_server
    c = MetricsClient(srv.path)
    assert c.ask("/app/threads") == {
        "threads": [
            {"id": 0, "name": "main", "group": "initial", "type": "main", "ports": []},
            {"id": 1, "name": "fwd:0", "group": "g0", "type": "fwd", "ports": ["eth0:0"]},
            {"id": 2, "name": "fwd:1", "group": "g1", "type": "fwd", "ports": ["eth1:0"]},
        ]
    }
    assert c.ask("/app/ports")["ports"][0] == {
        "id": 0,
        "name": "eth0:0",
        "netdev": "eth0",
        "qid": 11,
        "pmd_name": "net_af_xdp",
    }
    reg.block("worker").publish("fwd:1", {"loops": 512, "pid": 42})
    assert c.ask("/metrics/worker_stats")["workers"]["fwd:1"]["loops"] == 512
    reg.block("lport").publish("eth0:0", {"ipackets": 5})
    assert c.ask("/metrics/netdev_stats")["netdevs"]["eth0"]["ipackets"] == 5
    level = logs.get_level()
    try:
        assert c.ask("/app/loglevel,debug") == {"level": "debug"}
        assert c.ask("/app/loglevel") == {"level": "debug"}
        assert "unknown log level" in c.ask("/app/loglevel,loud")["error"]
    finally:
        logs.set_level(level)
    assert "pause a thread" in c.ask("/help")["/help"]["/app/stop"]
    assert c.ask("/help,/APP/STOP") == {"/app/stop": "pause a thread: /app/stop,<thread|all>"}
    c.close()


def test_port_stat_names_are_cndps():
    assert len(CNDP_PORT_STATS) == 28
    assert {k for k, _ in CNDP_PORT_STATS} <= set(STAT_KEYS)
    names = [n for _, n in CNDP_PORT_STATS]
    assert names[:4] == ["n_rx_bytes", "n_tx_bytes", "n_rx_packets", "n_tx_packets"]
    assert names[-4:] == ["tx_ring_full", "tx_copied", "cq_empty", "cq_buf_freed"]
    # counters an application adds come after the 28: ACL ones by CNDP's names
    out = port_stats_cndp("p", {"ipackets": 2, "acl_deny": 3, "hs_matched": 4})
    assert len(out) == 30 and out["p_n_rx_packets"] == 2
    assert list(out)[28:] == ["p_n_acl_deny_packets", "p_hs_matched"]


def test_registration_rules_and_callback_failures(tmp_path):
    t = CommandTable()
    with pytest.raises(TelemetryError, match="start with"):
        t.register("info", lambda r: {})
    with pytest.raises(TelemetryError, match="group name"):
        t.register("/bad-group/x", lambda r: {})
    with pytest.raises(TelemetryError, match="group name"):
        t.register("/" + "g" * 32 + "/x", lambda r: {})
    with pytest.raises(TelemetryError, match="at most 55"):
        t.register("/g/" + "x" * 60, lambda r: {})
    t.register("/g/ok", lambda r: {"params": list(r.params), "name": r.name, "group": r.group})
    with pytest.raises(TelemetryError, match="already registered"):
        t.register("/G/OK", lambda r: {})
    assert t.call("/g/ok, a ,,b") == {"params": ["a", "b"], "name": "/ok", "group": "g"}

    def boom(r):
        raise ValueError("kaput")

    t.register("/g/boom", boom)
    t.register("/g/list", lambda r: [1, 2])
    t.register("/g/big", lambda r: {"x": "y" * MAX_OUTPUT_LEN})
    t.register("/g/quiet", lambda r: NO_OUTPUT)
    srv = TelemetryServer(str(tmp_path / "s"), table=t).start()
    try:
        c = MetricsClient(srv.path)
        assert c.ask("/g/boom") == {"error": "/g/boom failed: ValueError: kaput"}
        assert c.ask("/g/list") == {"error": "/g/list returned no JSON object"}
        big = c.raw(b"/g/big")
        assert len(big) <= MAX_OUTPUT_LEN and "more than max_output_len" in json.loads(big)["error"]
        c.s.send(b"/g/quiet")
        c.s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            c.s.recv(100)
        c.s.settimeout(5)
        assert c.ask("/info")["pid"] == os.getpid()  # still serving after all that
        t.unregister("/g/ok")
        assert c.ask("/g/ok") == {"error": "invalid cmd (/g/ok)"}
        t.remove_group("g")
        assert "/g/boom" not in c.ask("/")["/"]
        c.close()
    finally:
        srv.close()


def test_socket_file_life_cycle(tmp_path):
    d = tmp_path / "a" / "b"
    path = str(d / "app_socket.1")
    srv = TelemetryServer(path).start()
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    with pytest.raises(TelemetryError, match="in use"):
        TelemetryServer(path).start()
    srv.close()
    assert not os.path.exists(path)
    # a stale socket file (its process died) is replaced
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(path)
    s.close()
    with TelemetryServer(path) as srv2:
        assert MetricsClient(path).info["pid"] == os.getpid()
    assert not os.path.exists(path)
    (d / "file").write_text("x")
    with pytest.raises(TelemetryError, match="not a socket"):
        TelemetryServer(str(d / "file")).start()
    with pytest.raises(TelemetryError, match="longer than"):
        TelemetryServer("/tmp/" + "x" * 120).start()
    del srv2


def test_many_clients_at_once(app_server):
    srv, _, _ = app_server
    errors = []

    def client():
        try:
            c = MetricsClient(srv.path)
            for _ in range(50):
                assert c.ask("/app/appname") == {"name": "cndpfwd"}
            c.close()
        except Exception as e:  # collected: a thread cannot fail the test by itself
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors and srv.requests >= 8 * 51


# --------------------------------------------------------------------------------------------
# fuzzing: any request gets one JSON object back, never a crash or a hang

_TOKENS = st.sampled_from(
    [
        "/",
        "/info",
        "/help",
        "/app/stop",
        "/app/start",
        "/APP/THREADS",
        "/metrics/port_stats",
        "/app/loglevel",
        "all",
        "fwd:0",
        "main",
        "eth0:0",
        ",",
        ",,",
        "/",
        "//",
        "\0",
        "\n",
        '"',
        "\\",
        "\udcff",
        "é",
    ]
)
REQUESTS = st.one_of(
    st.binary(max_size=120),
    st.lists(st.one_of(_TOKENS, st.text(max_size=10)), max_size=8).map(
        lambda xs: "".join(xs).encode("utf-8", "surrogatepass")
    ),
)


@settings(max_examples=400, deadline=None)
@given(REQUESTS)
def test_fuzz_dispatch_always_answers_one_json_object(data):
    ctl, _ = make_app()
    t = CommandTable()
    register_app_commands(t, ctl)
    level = logs.get_level()
    try:
        reply = t.dispatch(data)
    finally:
        logs.set_level(level)
    assert reply is not None and len(reply) <= MAX_OUTPUT_LEN
    obj = json.loads(reply.decode("ascii"))
    assert isinstance(obj, dict)
    req = parse_request(data)
    if req.cmd is None or not req.cmd.startswith("/"):
        assert "error" in obj


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(REQUESTS.filter(bool), min_size=1, max_size=5))
def test_fuzz_over_the_socket(app_server, batch):
    srv, ctl, _ = app_server
    c = MetricsClient(srv.path)
    level = logs.get_level()
    try:
        for data in batch:
            obj = json.loads(c.raw(data))
            assert isinstance(obj, dict)
        assert c.ask("/info")["pid"] == os.getpid()
    finally:
        c.close()
        logs.set_level(level)
        ctl.pause[:] = 0


def test_pause_flags_are_shared_memory():
    ctl, _ = make_app()
    assert isinstance(ctl.pause, np.ndarray)
    pid = os.fork()
    if pid == 0:
        ctl.set_paused("fwd:1", True)
        os._exit(0)
    os.waitpid(pid, 0)
    assert ctl.thread_status("fwd:1") == "paused" and ctl.thread_status("fwd:0") == "running"
