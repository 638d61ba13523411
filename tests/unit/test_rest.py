"""The REST sidecar: its OpenAPI document, the request parsers (fuzzed), the HTTP server's
answers to bad requests, and every route against a running application (real runtime and
telemetry socket, stand-in lports); the app-side control commands and shared-memory cells
it relies on."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import multiprocessing
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from cndp.telemetry import control, logs
from cndp.telemetry.app import AppControl, PortInfo, ThreadInfo, register_app_commands
from cndp.telemetry.control import ControlError, ModeCell, PortControl, WorkerPorts
from cndp.telemetry.registry import PORT_BLOCK, Registry
from cndp.telemetry.rest import (
    MAX_BODY,
    ROUTES,
    AppLink,
    HttpError,
    RestServer,
    document,
    match_route,
    parse_body,
    parse_listen,
)
from cndp.telemetry.uds import MAX_OUTPUT_LEN, CommandTable
from cndp.xskdev.xskdev import STAT_KEYS

from ._telemetry_app import RATE, FakeApp, FakePort, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Client:
    def __init__(self, url: str):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)

    def raw(self, method: str, path: str, body: bytes | None = None, headers=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None), dict(r.getheaders())
        finally:
            c.close()

    def call(self, method: str, path: str, obj=None):
        body = None if obj is None else json.dumps(obj).encode()
        hdr = {"Content-Type": "application/json"} if body is not None else {}
        st_, data, _ = self.raw(method, path, body, hdr)
        return st_, data


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    with FakeApp(str(d / "app_socket.5151"), name="fakeapp") as a:
        a.dir = str(d)
        yield a


@pytest.fixture(scope="module")
def api(app):
    srv = RestServer(AppLink(app.dir), "127.0.0.1:0").start()
    yield Client(srv.urls[0])
    srv.close()


# ------------------------------------------------------------------------------ the document


def test_openapi_document_is_checked_in_and_served(api):
    doc = document()
    assert (ROOT / "docs" / "openapi.json").read_text() == json.dumps(doc, indent=2) + "\n", (
        "docs/openapi.json is stale: python -m cndp.telemetry.rest --openapi > docs/openapi.json"
    )
    st_, served = api.call("GET", "/openapi.json")
    assert st_ == 200 and served == doc


def test_every_route_is_documented_and_every_schema_valid():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    routes = {(r.template, r.method.lower()) for r in ROUTES}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    ops = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ops) == len(set(ops))
    schemas = doc["components"]["schemas"]
    for s in schemas.values():
        Draft202012Validator.check_schema(s)
    text = json.dumps(doc)
    for ref in set(__import__("re").findall(r'"#/components/schemas/([A-Za-z]+)"', text)):
        assert ref in schemas, ref
    for template, ops in doc["paths"].items():
        params = {seg[1:-1] for seg in template.split("/") if seg.startswith("{")}
        for op in ops.values():
            assert {p["name"] for p in op.get("parameters", [])} == params
            assert op["responses"] and all(c.isdigit() for c in op["responses"])


# ------------------------------------------------------------------------------ parsers


def test_match_route():
    r, p = match_route("GET", "/v1/ports/eth0%3A0")
    assert r.template == "/v1/ports/{lport}" and p == {"lport": "eth0:0"}
    r, p = match_route("PUT", "/v1/ports/eth0:0/admin/")
    assert r.template == "/v1/ports/{lport}/admin"
    assert match_route("HEAD", "/livez")[0].template == "/livez"
    assert match_route("GET", "/")[0].template == "/"
    cases = [
        ("GET", "/v2/nothing", 404, "no route"),
        ("DELETE", "/v1/stats", 405, "not allowed"),
        ("GET", "/v1/stats?x=1", 400, "query"),
        ("GET", "v1/stats", 400, "not a path"),
        ("GET", "/" + "a" * 3000, 414, "characters"),
        ("GET", "/v1/ports/a,b", 400, "without ','"),
        ("GET", "/v1/ports/" + "x" * 41, 400, "1..40"),
        ("GET", "/v1/ports/%ff", 400, "UTF-8"),
        ("GET", "/v1/ports/a%2Fb", 400, "'/'"),
        ("GET", "/v1/ports/a%00", 400, "control"),
    ]
    for method, target, status, words in cases:
        with pytest.raises(HttpError) as e:
            match_route(method, target)
        assert e.value.status == status and words in e.value.message, (target, e.value.message)
    with pytest.raises(HttpError) as e:
        match_route("POST", "/v1/mode")
    assert e.value.headers["Allow"] == "GET, HEAD, PUT"


def _route(template: str, method: str):
    return next(r for r in ROUTES if r.template == template and r.method == method)


def test_parse_body():
    admin = _route("/v1/ports/{lport}/admin", "PUT")
    clear = _route("/v1/stats/clear", "POST")
    get = _route("/v1/stats", "GET")
    level = _route("/v1/loglevel", "PUT")
    j = "application/json; charset=utf-8"
    assert parse_body(admin, j, b'{"state": "down"}') == {"state": "down"}
    assert parse_body(clear, None, b"") is None
    assert parse_body(clear, j, b'{"ports": ["a:0"]}') == {"ports": ["a:0"]}
    assert parse_body(level, j, b'{"level": 8}') == {"level": 8}
    assert parse_body(get, None, b"") is None
    cases = [
        (admin, j, b"", 400, "needs a JSON body"),
        (get, j, b"{}", 400, "takes no body"),
        (admin, "text/plain", b'{"state":"up"}', 415, "not application/json"),
        (admin, None, b'{"state":"up"}', 415, "untyped"),
        (admin, j, b"\xff", 400, "not UTF-8"),
        (admin, j, b'{"state":', 400, "not JSON"),
        (admin, j, b'{"state": NaN}', 400, "not JSON"),
        (admin, j, b"[1]", 400, "JSON object, not list"),
        (admin, j, b"{}", 400, "'state' is a required property"),
        (admin, j, b'{"state": "sideways"}', 400, "body state"),
        (admin, j, b'{"state": "up", "x": 1}', 400, "Additional properties"),
        (clear, j, b'{"ports": []}', 400, "ports"),
        (clear, j, b'{"ports": ["a,b"]}', 400, "without ','"),
        (level, j, b'{"level": 9}', 400, "level"),
        (level, j, b'{"level": true}', 400, "level"),
        (admin, j, b"[" * 100000 + b"]" * 100000, 400, "nests too deeply"),
    ]
    for route, ctype, data, status, words in cases:
        with pytest.raises(HttpError) as e:
            parse_body(route, ctype, data)
        assert e.value.status == status and words in e.value.message, (data[:40], e.value)


_targets = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda segs: "/" + "/".join(segs),
        st.lists(
            st.one_of(
                st.sampled_from(["v1", "ports", "admin", "threads", "state", "stats", "mode", "",
                                 "livez", "readyz", "clear", "%3A", "%2F", "%ff", "a,b", "?q"]),
                st.text(max_size=12),
            ),
            max_size=5,
        ),
    ),
)  # fmt: skip
_methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "X"])


@given(_methods, _targets)
@settings(max_examples=1500, deadline=None)
def test_fuzz_match_route(method, target):
    try:
        route, params = match_route(method, target)
    except HttpError as e:
        assert 400 <= e.status < 500 and e.message
        if e.status == 405:
            assert e.headers["Allow"]
        json.dumps(e.body())
    else:
        assert route.method == method or (method == "HEAD" and route.method == "GET")
        for v in params.values():
            assert 1 <= len(v) <= 40 and "," not in v and "/" not in v


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
_bodies = st.one_of(
    st.binary(max_size=64),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "state": st.sampled_from(["up", "down", "running", "paused", "x", 1]),
            "mode": st.text(max_size=40),
            "level": st.one_of(st.integers(-2, 12), st.text(max_size=20)),
            "ports": st.lists(st.text(max_size=45), max_size=4),
        },
    ).map(lambda v: json.dumps(v).encode()),
)
_ctypes = st.sampled_from([None, "application/json", "APPLICATION/JSON; x=y", "text/plain", ""])


@given(st.sampled_from(ROUTES), _ctypes, _bodies)
@settings(max_examples=1500, deadline=None)
def test_fuzz_parse_body(route, ctype, data):
    try:
        obj = parse_body(route, ctype, data)
    except HttpError as e:
        assert e.status in (400, 415) and e.message
    else:
        if obj is not None:
            Draft202012Validator(document()["components"]["schemas"][route.body]).validate(obj)
            assert ctype and ctype.split(";")[0].strip().lower() == "application/json"
        else:
            assert not data


def test_parse_listen():
    assert parse_listen("127.0.0.1:9471") == ("tcp", ("127.0.0.1", 9471))
    assert parse_listen("[::1]:0") == ("tcp", ("::1", 0))
    assert parse_listen("unix:/run/x.sock") == ("unix", "/run/x.sock")
    for bad in ("nope", "unix:", "h:70000", "unix:/" + "x" * 200):
        with pytest.raises(HttpError):
            parse_listen(bad)


# ------------------------------------------------------------------------------ HTTP layer


def test_http_errors_are_json(api):
    st_, e, hdr = api.raw("GET", "/nowhere")
    assert st_ == 404 and e["status"] == 404 and "no route" in e["error"] and e["fix"]
    assert hdr["Content-Type"] == "application/json"
    st_, e, hdr = api.raw("DELETE", "/v1/mode")
    assert st_ == 405 and hdr["Allow"] == "GET, HEAD, PUT"
    st_, e, _ = api.raw("PUT", "/v1/mode", b'{"mode":"x"}', {"Content-Type": "text/plain"})
    assert st_ == 415
    st_, e, _ = api.raw(
        "PUT", "/v1/mode", b"x" * (MAX_BODY + 1), {"Content-Type": "application/json"}
    )
    assert st_ == 413 and str(MAX_BODY) in e["error"]
    st_, e, _ = api.raw("GET", "/v1/app", None, {"Host": "evil.example:9471"})
    assert st_ == 403 and "DNS-rebinding" in e["error"]
    st_, data, hdr = api.raw("HEAD", "/livez")
    assert st_ == 200 and data is None and int(hdr["Content-Length"]) > 0


def _raw_exchange(port: int, data: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    out = b""
    try:
        # the server may answer (431, 414) and close before it read everything we send
        with contextlib.suppress(OSError):
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                out += chunk
        return out
    finally:
        s.close()


_request_lines = st.builds(
    lambda m, t, v, hdrs, body: f"{m} {t} {v}\r\n".encode() + hdrs + b"\r\n" + body,
    st.sampled_from(["GET", "PUT", "POST", "BREW", "", "G\x00T"]),
    st.sampled_from(["/livez", "/v1/mode", "/v1/ports/x/admin", "/%", "*", "", "/" + "a" * 70000]),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9.9", "", "HTTX"]),
    st.lists(
        st.sampled_from([b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
                         b"Content-Length: 99999999\r\n", b"Content-Type: application/json\r\n",
                         b"Transfer-Encoding: chunked\r\n", b"Host: localhost\r\n",
                         b"Host: example.org\r\n", b"X: " + b"y" * 70000 + b"\r\n"]),
        max_size=4,
    ).map(b"".join),
    st.binary(max_size=16),
)  # fmt: skip


@given(st.one_of(_request_lines, st.binary(max_size=200)))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_raw_http_requests_get_http_answers(api, data):
    out = _raw_exchange(api.port, data)
    if out and not out.startswith(b"HTTP/1."):  # "GET /x" alone: an HTTP/0.9 answer
        line = data.split(b"\r\n", 1)[0].split()
        assert len(line) == 2 and line[0] == b"GET", (data, out)
        assert json.loads(out)
    elif out:  # an empty request line may get no answer at all (http.server closes)
        head, _, body = out.partition(b"\r\n\r\n")
        first = head.split(b"\r\n", 1)[0]
        assert first.startswith(b"HTTP/1."), out[:80]
        status = int(first.split()[1])
        assert 200 <= status < 600
        lengths = [ln.split(b":", 1)[1] for ln in head.split(b"\r\n")[1:]
                   if ln.lower().startswith(b"content-length:")]  # fmt: skip
        assert len(lengths) == 1
        first_body = body[: int(lengths[0])]  # more answers may follow (keep-alive)
        if status >= 400:
            assert json.loads(first_body)["status"] == status
    assert api.call("GET", "/v1/loglevel")[0] == 200  # still serving


# ------------------------------------------------------------------------------ the routes


def test_health_and_reads(app, api):
    st_, live = api.call("GET", "/livez")
    assert st_ == 200 and live["status"] == "ok" and live["socket"] == app.path
    st_, r = api.call("GET", "/readyz")
    assert st_ == 200 and r["ready"] is True and r["reasons"] == []
    assert set(r["ports"]) == set(app.lports)
    st_, a = api.call("GET", "/v1/app")
    assert a["name"] == "fakeapp" and a["mode"] == "drop" and a["socket"] == app.path
    st_, conf = api.call("GET", "/v1/config")
    assert st_ == 200 and conf == app.ctl.config  # paged over several replies
    assert len(json.dumps(conf)) > 3 * 2048
    st_, th = api.call("GET", "/v1/threads")
    assert [(t["name"], t["status"]) for t in th["threads"]] == [
        ("main", "main"),
        ("w0", "running"),
        ("w1", "running"),
    ]
    st_, g = api.call("GET", "/v1/graph")
    assert {"from": "ethA:0-rx", "to": "w0"} in g["edges"] and g["mode"] == "drop"
    st_, ports = api.call("GET", "/v1/ports")
    assert [p["name"] for p in ports["ports"]] == app.lports
    assert all(p["bound"] and p["xskmap"] and p["admin"] == "up" for p in ports["ports"])
    st_, p = api.call("GET", "/v1/ports/ethB:0")
    assert p["port"]["name"] == "ethB:0" and p["stats"]["ipackets"] > 0
    assert api.call("GET", "/v1/ports/nope:0")[0] == 404
    st_, s = api.call("GET", "/v1/stats")
    assert set(s["ports"]) == set(app.lports) and set(s["netdevs"]) == {"ethA", "ethB"}
    assert set(s["workers"]) == {"w0", "w1"}
    st_, idx = api.call("GET", "/")
    assert "/v1/ports/{lport}/admin" in idx["paths"]


def _rx(api: Client, lport: str) -> int:
    return api.call("GET", f"/v1/ports/{lport}")[1]["stats"]["ipackets"]


def test_admin_down_stops_the_worker_and_readiness(app, api):
    st_, r = api.call("PUT", "/v1/ports/ethA:0/admin", {"state": "down"})
    try:
        assert st_ == 200 and r["pending"] is False
        assert r["ports"][0]["admin"] == "down" and r["ports"][0]["admin_up"] is False
        st_, rd = api.call("GET", "/readyz")
        assert st_ == 503 and rd["reasons"] == ["lport ethA:0 is admin down"]
        time.sleep(0.05)
        a = _rx(api, "ethA:0")
        time.sleep(0.3)
        assert _rx(api, "ethA:0") == a  # the worker no longer receives on it
        assert _rx(api, "ethB:0") > 0
    finally:
        st_, r = api.call("PUT", "/v1/ports/all/admin", {"state": "up"})
    assert st_ == 200 and [p["admin_up"] for p in r["ports"]] == [True, True]
    wait_for(lambda: api.call("GET", "/readyz")[0] == 200)
    b = _rx(api, "ethA:0")
    wait_for(lambda: _rx(api, "ethA:0") > b, what="rx on ethA:0 again")


def test_clear_zeroes_the_counters(app, api):
    wait_for(lambda: _rx(api, "ethB:0") > 100)
    st_, r = api.call("POST", "/v1/stats/clear", {"ports": ["ethB:0"]})
    t = time.monotonic()
    assert st_ == 200 and r == {"cleared": ["ethB:0"], "pending": False}
    # what the worker counted since the clear: at most RATE per second since then
    assert _rx(api, "ethB:0") <= RATE * (time.monotonic() - t + 0.3)
    assert _rx(api, "ethA:0") > 100  # only ethB:0 was cleared
    st_, r = api.call("POST", "/v1/stats/clear")
    assert st_ == 200 and sorted(r["cleared"]) == app.lports
    assert api.call("POST", "/v1/stats/clear", {"ports": ["zz:9"]})[0] == 404


def test_pause_resume_mode_and_loglevel(app, api):
    st_, r = api.call("PUT", "/v1/threads/w1/state", {"state": "paused"})
    assert st_ == 200 and r == {"threads": [{"name": "w1", "status": "paused"}]}
    try:
        wait_for(lambda: "worker w1 is paused" in api.call("GET", "/readyz")[1]["reasons"])
        st_, th = api.call("GET", "/v1/threads")
        assert {t["name"]: t["status"] for t in th["threads"]}["w1"] == "paused"
        assert api.call("PUT", "/v1/threads/nope/state", {"state": "paused"})[0] == 404
    finally:
        assert api.call("PUT", "/v1/threads/all/state", {"state": "running"})[0] == 200
    st_, m = api.call("PUT", "/v1/mode", {"mode": "loopback"})
    try:
        assert st_ == 200 and m["mode"] == "loopback" and m["pending"] is False
        assert m["active"] == {"w0": "loopback", "w1": "loopback"}
        st_, e = api.call("PUT", "/v1/mode", {"mode": "fwd"})
        assert st_ == 409 and "restart" in e["error"]
        st_, e = api.call("PUT", "/v1/mode", {"mode": "warp"})
        assert st_ == 400 and "unknown mode" in e["error"]
    finally:
        assert api.call("PUT", "/v1/mode", {"mode": "drop"})[0] == 200
    old = logs.get_level()
    try:
        assert api.call("PUT", "/v1/loglevel", {"level": "debug"}) == (200, {"level": "debug"})
        assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
        assert api.call("PUT", "/v1/loglevel", {"level": 4}) == (200, {"level": "error"})
        st_, e = api.call("PUT", "/v1/loglevel", {"level": "loud"})
        assert st_ == 400 and "unknown log level" in e["error"]
    finally:
        logs.set_level(old)


def test_readyz_while_the_workers_open_their_lports(tmp_path):
    """The app answers while its workers bind (as cndpfwd: socket after spawn, before
    wait_ready): alive, not ready, saying which workers and lports are missing; ready once
    they opened them."""
    gate = multiprocessing.get_context("fork").Event()
    a = FakeApp(str(tmp_path / "app_socket.7"), mode=False, start=False, gate=gate)
    srv = None
    try:
        a.start(wait=False)
        srv = RestServer(AppLink(str(tmp_path)), "127.0.0.1:0").start()
        c = Client(srv.urls[0])
        assert c.call("GET", "/livez")[0] == 200
        st_, r = c.call("GET", "/readyz")
        assert st_ == 503 and r["ready"] is False
        assert set(r["reasons"]) == {
            "worker w0 is starting (opening its lports)",
            "worker w1 is starting (opening its lports)",
            "lport ethA:0 is not open",
            "lport ethB:0 is not open",
        }
        assert c.call("GET", "/v1/ports")[1]["ports"][0]["bound"] is False
        gate.set()
        a.rt.wait_ready()
        st_, r = c.call("GET", "/readyz")
        assert st_ == 200 and r["reasons"] == []
        assert all(p["bound"] and p["xskmap"] for p in c.call("GET", "/v1/ports")[1]["ports"])
    finally:
        gate.set()
        if srv is not None:
            srv.close()
        a.close()


def test_an_app_without_mode_switching(tmp_path):
    with FakeApp(str(tmp_path / "app_socket.1"), mode=False) as a:
        srv = RestServer(AppLink(None, a.path), "127.0.0.1:0").start()
        try:
            c = Client(srv.urls[0])
            st_, m = c.call("GET", "/v1/mode")
            assert st_ == 200 and m["mode"] == "drop" and m["modes"] == []
            st_, e = c.call("PUT", "/v1/mode", {"mode": "loopback"})
            assert st_ == 409 and "cannot change its mode" in e["error"]
        finally:
            srv.close()


def test_discovery_and_restart(tmp_path):
    link = AppLink(str(tmp_path))
    with pytest.raises(HttpError) as e:
        link.client()
    assert e.value.status == 503 and "no live telemetry socket" in e.value.message
    with FakeApp(str(tmp_path / "app_socket.1"), name="one", mode=False):
        assert link.ask("/app/appname") == {"name": "one"}
        with FakeApp(str(tmp_path / "app_socket.2"), name="two", mode=False):
            both = AppLink(str(tmp_path))
            with pytest.raises(HttpError) as e:
                both.client()
            assert "2 applications" in e.value.message and "--app" in str(e.value)
            assert AppLink(str(tmp_path), app="two").ask("/app/appname") == {"name": "two"}
    # "one" restarted under a new pid: found again
    with FakeApp(str(tmp_path / "app_socket.3"), name="one", mode=False):
        assert link.ask("/app/appname") == {"name": "one"}
        assert link.client().path.endswith("app_socket.3")
    with pytest.raises(HttpError) as e:
        link.ask("/info")
    assert e.value.status == 503


def test_unix_socket_listener_and_probe_listener(app, tmp_path):
    path = str(tmp_path / "rest.sock")
    srv = RestServer(AppLink(app.dir), f"unix:{path}", probe_listen="127.0.0.1:0").start()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"GET /v1/loglevel HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        s.close()
        assert out.startswith(b"HTTP/1.1 200") and b'"level"' in out
        probe = Client(srv.urls[1])
        assert probe.call("GET", "/readyz")[0] == 200
        assert probe.call("GET", "/livez")[0] == 200
        assert probe.call("GET", "/v1/app")[0] == 404  # health only on the probe listener
    finally:
        srv.close()
    assert not Path(path).exists()


# ------------------------------------------------------------------------------ cells


def test_port_control_cells_and_state_bits():
    pc = PortControl(["a:0", "b:0"])
    ports = {"a:0": FakePort("a:0")}
    wp = WorkerPorts(pc, ports)
    wp.report()
    v = pc.view("a:0")
    assert v["open"] and v["bound"] and v["xsk"] and v["xskmap"] and v["admin_applied"]
    assert pc.view("b:0")["open"] is False  # no worker reported it
    pc.set_admin("a:0", False)
    assert pc.view("a:0")["admin_applied"] is False
    ports["a:0"].counters["ipackets"] = 9
    gen = pc.request_clear("a:0")
    assert pc.clear_pending("a:0")
    done = wp.service()
    assert wp.epoch == 1 and wp.admin_up["a:0"] is False and done == [(0, gen)]
    assert ports["a:0"].counters["ipackets"] == 0 and pc.clear_pending("a:0")
    wp.acknowledge(done)
    assert not pc.clear_pending("a:0") and pc.view("a:0")["admin_applied"]
    ports["a:0"].in_xskmap = False  # left the XSKMAP
    wp.service()
    assert pc.view("a:0")["xskmap"] is False
    wp.report(closed=True)
    assert pc.view("a:0")["closed"] and not pc.view("a:0")["open"]
    with pytest.raises(ControlError, match="no lport 'c:0'"):
        pc.set_admin("c:0", True)

    class Plain:  # a port with no socket (ring, null)
        def fileno(self):
            return None

    assert control.port_state(Plain(), True) == control.OPEN | control.BOUND | control.ADMIN_UP

    class DeadXsk:  # net_af_xdp whose device is gone
        pmd_name = "net_af_xdp"
        dev = None

    bits = control.port_state(DeadXsk(), True)
    assert bits & control.XSK and not bits & control.BOUND


def test_mode_cell():
    c = ModeCell(["drop", "fwd", "loopback"], "drop", 2, switchable={"loopback"},
                 aliases={"lb": "loopback"})  # fmt: skip
    assert c.switchable == ("drop", "loopback") and c.active() == [None, None]
    assert c.request("LB") == "loopback" and c.requested == "loopback"
    assert c.changed("drop") == "loopback" and c.changed("loopback") is None
    c.entered(1, "loopback")
    assert c.active() == [None, "loopback"]
    with pytest.raises(ControlError, match="restart"):
        c.request("fwd")
    with pytest.raises(ControlError, match="unknown mode"):
        c.request("x" * 100)
    with pytest.raises(ControlError):
        ModeCell(["drop"], "fwd", 1)


def _control_table() -> CommandTable:
    names = ["ethA:0", "ethB:0"]
    reg = Registry()
    reg.add_block(PORT_BLOCK, names, STAT_KEYS)
    ctl = AppControl(
        name="fuzz",
        threads=[ThreadInfo(0, "main", "g", "main"), ThreadInfo(1, "w0", "g", "fwd", tuple(names))],
        ports=[PortInfo(i, n, n[:4], 0, "net_af_xdp", "w0") for i, n in enumerate(names)],
        registry=reg,
        workers=["w0"],
        port_ctl=PortControl(names),
        mode=ModeCell(["drop", "loopback"], "drop", 1, switchable={"loopback"}),
        config={"a": "b" * 5000},
    )
    ctl.label_ports()
    t = CommandTable()
    register_app_commands(t, ctl)
    return t


_TABLE = _control_table()
_CMDS = ("/app/port_admin", "/app/port_state", "/metrics/clear", "/app/config", "/app/mode",
         "/metrics/lport_stats", "/app/ready", "/app/graph", "/app/info")  # fmt: skip


@given(st.sampled_from(_CMDS), st.text(max_size=60))
@settings(max_examples=800, deadline=None)
def test_fuzz_app_control_commands(cmd, text):
    """The app-side control commands answer a JSON object (an error naming the problem for
    bad parameters), never an exception, whatever the parameters."""
    reply = _TABLE.dispatch(f"{cmd},{text}".encode())
    assert reply is not None and len(reply) <= MAX_OUTPUT_LEN
    obj = json.loads(reply)
    assert isinstance(obj, dict) and obj
    assert " failed: " not in str(obj.get("error", ""))  # a Python exception in a command
