"""``cndp-rest``: the REST control sidecar of a CNDP application.

A separate process that speaks HTTP/JSON on one side and the application's telemetry socket
on the other (see docs/rest.md for why a sidecar and not a server inside the application).
It serves one application: the one whose socket it is given (``--socket``), or the only live
``app_socket.*`` of ``--dir`` (``--app NAME`` picks among several), found again when the
application restarts.

    cndp-rest [--dir /var/run/cndp] [--socket PATH] [--app NAME]
              [--listen 127.0.0.1:9471 | --listen unix:/run/cndp/rest.sock]
              [--probe-listen 0.0.0.0:8086]

Routes (``/openapi.json`` is the contract): ``/livez``, ``/readyz``, ``/v1/app``,
``/v1/config``, ``/v1/threads``, ``/v1/ports``, ``/v1/stats``, ``/v1/graph``, ``/v1/mode``,
``/v1/loglevel`` and the state changes under them. Parsing is pure functions
(:func:`match_route`, :func:`parse_body`) that raise :class:`HttpError`; the HTTP handler only
moves bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import socketserver
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import CndpError
from . import openapi
from .client import AppClient, AppUnreachable, RequestTooLong, discover

log = logging.getLogger("cndp.rest")

__all__ = [
    "MAX_BODY",
    "ROUTES",
    "AppLink",
    "HttpError",
    "RestServer",
    "Route",
    "document",
    "main",
    "match_route",
    "parse_body",
    "parse_listen",
]

DEFAULT_DIR = "/var/run/cndp"
DEFAULT_LISTEN = "127.0.0.1:9471"
MAX_BODY = 64 * 1024
MAX_PATH = 2048
APPLY_TIMEOUT = 2.0  # seconds to wait for the workers to apply a change (one publish: 0.25)
_BAD_NAME_CHARS = frozenset(",/\\") | {chr(c) for c in range(32)} | {"\x7f"}


class HttpError(CndpError):
    """An HTTP error answer: ``status`` and a message naming the problem."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        fix: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.status = int(status)
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message, fix=fix)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.fix:
            out["fix"] = self.fix
        return out


# ------------------------------------------------------------------------------------ routes


Handler = Callable[["Ctx", dict[str, str], dict | None], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    op: str
    summary: str
    tag: str
    responses: dict[int, tuple[str, str]]  # status -> (description, schema name)
    body: str | None = None  # schema name in openapi.BODIES
    body_required: bool = True
    errors: tuple[int, ...] = (400, 404, 405, 503)
    description: str = ""
    probe: bool = False  # also served on --probe-listen
    segments: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.strip("/").split("/")))


@dataclass
class Ctx:
    """What a handler gets: the application link and the server's settings."""

    link: AppLink
    apply_timeout: float = APPLY_TIMEOUT


def _app_error(r: dict, *, not_found: tuple[str, ...] = ("no lport", "not found")) -> None:
    """Turn an ``{"error": ...}`` reply of the application into an HttpError."""
    err = r.get("error")
    if err is None:
        return
    msg = str(err)
    status = 404 if any(s in msg for s in not_found) else 400
    if msg.startswith("cannot switch") or "cannot change its mode" in msg:
        status = 409
    raise HttpError(status, msg)


def _wait(ctx: Ctx, check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + ctx.apply_timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# -------------------------------------------------------------------------- handlers


def h_livez(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    try:
        c = ctx.link.client()
        c.ask("/info")
    except HttpError as e:
        return 503, {"status": "fail", "error": e.message}
    return 200, {
        "status": "ok",
        "pid": c.pid,
        "version": str(c.info.get("version", "")),
        "socket": c.path,
    }


def h_readyz(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    try:
        r = ctx.link.ask("/app/ready")
    except HttpError as e:
        return 503, {"ready": False, "reasons": [e.message]}
    if "error" in r or not isinstance(r.get("ready"), bool):
        return 503, {"ready": False, "reasons": [f"the app has no readiness: {r.get('error')}"]}
    return (200 if r["ready"] else 503), r


def h_app(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    r = ctx.link.ask("/app/info")
    _app_error(r)
    r["socket"] = ctx.link.client().path
    return 200, r


def h_config(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    parts: list[str] = []
    off = 0
    while True:
        r = ctx.link.ask(f"/app/config,{off}")
        _app_error(r)
        data, total = r.get("data"), r.get("total")
        if not isinstance(data, str) or not isinstance(total, int):
            raise HttpError(502, "the application's /app/config reply has no data")
        parts.append(data)
        off += len(data)
        if off >= total or not data:
            break
    try:
        return 200, json.loads("".join(parts))
    except ValueError:
        raise HttpError(502, "the configuration changed while it was read: try again") from None


def h_threads(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    r = ctx.link.ask("/app/threads")
    _app_error(r)
    ready = ctx.link.ask("/app/ready")
    workers = ready.get("workers") if isinstance(ready.get("workers"), dict) else {}
    for t in r.get("threads", []):
        w = workers.get(t.get("name"))
        if isinstance(w, dict):
            t["status"] = "paused" if w.get("paused") else "running"
        else:
            t["status"] = "main" if t.get("type") == "main" else "running"
    return 200, r


def h_thread_state(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    assert body is not None
    verb = "/app/stop" if body["state"] == "paused" else "/app/start"
    r = ctx.link.ask(f"{verb},{p['thread']}")
    _app_error(r)
    return 200, r


def _port_states(ctx: Ctx, lport: str | None = None) -> list[dict]:
    r = ctx.link.ask("/app/port_state" + (f",{lport}" if lport else ""))
    if lport is None and "more than max_output_len" in str(r.get("error", "")):
        out = []
        for q in ctx.link.ask("/app/ports").get("ports", []):
            out.extend(_port_states(ctx, q["name"]))
        return out
    _app_error(r)
    ports = r.get("ports")
    if not isinstance(ports, list):
        raise HttpError(502, "the application's /app/port_state reply has no ports")
    return ports


def h_ports(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    return 200, {"ports": _port_states(ctx)}


def h_port(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    lport = p["lport"]
    state = _port_states(ctx, lport)
    r = ctx.link.ask(f"/metrics/lport_stats,{lport}")
    _app_error(r)
    stats = r.get("lports", {}).get(lport, {}).get("stats", {})
    return 200, {"port": state[0] if state else {}, "stats": stats}


def h_port_admin(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    assert body is not None
    lport, want = p["lport"], body["state"]
    r = ctx.link.ask(f"/app/port_admin,{lport},{want}")
    _app_error(r)
    names = [x["name"] for x in r.get("ports", [])]
    states: list[dict] = []

    def applied() -> bool:
        nonlocal states
        states = [s for s in _port_states(ctx) if s.get("name") in names]
        return all(s.get("admin_applied") for s in states)

    done = _wait(ctx, applied)
    return (200 if done else 202), {"ports": states, "pending": not done}


def _lport_stats(ctx: Ctx) -> dict[str, dict]:
    r = ctx.link.ask("/metrics/lport_stats")
    if "lports" in r:
        return {k: v.get("stats", {}) for k, v in r["lports"].items()}
    out = {}
    for q in ctx.link.ask("/app/ports").get("ports", []):
        one = ctx.link.ask(f"/metrics/lport_stats,{q['name']}")
        _app_error(one)
        out.update({k: v.get("stats", {}) for k, v in one.get("lports", {}).items()})
    return out


def h_stats(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    ports = _lport_stats(ctx)
    nd = ctx.link.ask("/metrics/netdev_stats")
    _app_error(nd)
    ws = ctx.link.ask("/metrics/worker_stats")
    _app_error(ws)
    return 200, {"ports": ports, "netdevs": nd.get("netdevs", {}), "workers": ws.get("workers", {})}


def h_clear(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    targets = (body or {}).get("ports") or ["all"]
    cleared: list[str] = []
    for t in targets:
        r = ctx.link.ask(f"/metrics/clear,{t}")
        _app_error(r)
        cleared.extend(r.get("cleared", []))

    def done() -> bool:
        st = [s for s in _port_states(ctx) if s.get("name") in cleared]
        return not any(s.get("clear_pending") for s in st)

    ok = _wait(ctx, done)
    return (200 if ok else 202), {"cleared": cleared, "pending": not ok}


def h_graph(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    r = ctx.link.ask("/app/graph")
    _app_error(r)
    return 200, r.get("graph", {})


def h_mode(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    r = ctx.link.ask("/app/mode")
    _app_error(r)
    return 200, r


def h_set_mode(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    assert body is not None
    r = ctx.link.ask(f"/app/mode,{body['mode']}")
    _app_error(r)
    state = r

    def switched() -> bool:
        nonlocal state
        state = ctx.link.ask("/app/mode")
        active = state.get("active") or {}
        return bool(active) and all(m == state.get("mode") for m in active.values())

    ok = _wait(ctx, switched)
    return (200 if ok else 202), {**state, "pending": not ok}


def h_loglevel(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    r = ctx.link.ask("/app/loglevel")
    _app_error(r)
    return 200, r


def h_set_loglevel(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    assert body is not None
    r = ctx.link.ask(f"/app/loglevel,{body['level']}")
    _app_error(r)
    return 200, r


def h_openapi(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    return 200, document()


def h_index(ctx: Ctx, p: dict, body: dict | None) -> tuple[int, Any]:
    return 200, {"openapi": "/openapi.json", "paths": sorted({r.template for r in ROUTES})}


_E = (400, 404, 405, 503)
_EB = (400, 404, 405, 411, 413, 415, 503)
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", h_index, "index", "the routes and where the OpenAPI document is", "meta",
          {200: ("routes", "Index")}, errors=(404, 405)),
    Route("GET", "/openapi.json", h_openapi, "openapi", "this API's OpenAPI 3.1 document", "meta",
          {200: ("the document", "OpenApi")}, errors=(404, 405)),
    Route("GET", "/livez", h_livez, "livez", "alive: the app's telemetry socket answers",
          "health", {200: ("alive", "Live"), 503: ("not answering", "Live")}, errors=(405,),
          probe=True),
    Route("GET", "/readyz", h_readyz, "readyz",
          "ready: workers running, lports bound, in the XSKMAP and admin up", "health",
          {200: ("ready", "Ready"), 503: ("not ready, with the reasons", "Ready")},
          errors=(405,), probe=True),
    Route("GET", "/v1/app", h_app, "getApp", "name, pid, version, mode, start time", "app",
          {200: ("the application", "App")}),
    Route("GET", "/v1/config", h_config, "getConfig", "the resolved configuration", "app",
          {200: ("the configuration", "Config")}, errors=(*_E, 502)),
    Route("GET", "/v1/threads", h_threads, "getThreads", "threads and whether they run", "threads",
          {200: ("threads", "Threads")}),
    Route("PUT", "/v1/threads/{thread}/state", h_thread_state, "setThreadState",
          "pause or resume a worker thread ('all': every worker)", "threads",
          {200: ("the threads changed", "ThreadStates")}, body="ThreadState", errors=_EB),
    Route("GET", "/v1/ports", h_ports, "getPorts",
          "lports: admin state, bound, in the XSKMAP", "ports", {200: ("lports", "Ports")},
          errors=(*_E, 502)),
    Route("GET", "/v1/ports/{lport}", h_port, "getPort", "one lport: state and counters",
          "ports", {200: ("the lport", "Port")}, errors=(*_E, 502)),
    Route("PUT", "/v1/ports/{lport}/admin", h_port_admin, "setPortAdmin",
          "admin up/down of an lport ('all': every lport); the worker stops or resumes "
          "rx/tx", "ports",
          {200: ("applied by the workers", "PortsChanged"),
           202: ("requested; not applied within 2 s", "PortsChanged")},
          body="AdminState", errors=(*_EB, 502)),
    Route("GET", "/v1/stats", h_stats, "getStats", "counters per lport, netdev and worker",
          "stats", {200: ("counters", "Stats")}),
    Route("POST", "/v1/stats/clear", h_clear, "clearStats",
          "zero lport counters (all, or the listed lports)", "stats",
          {200: ("zeroed by the workers", "Cleared"),
           202: ("requested; not applied within 2 s", "Cleared")},
          body="ClearStats", body_required=False, errors=(*_EB, 502)),
    Route("GET", "/v1/graph", h_graph, "getGraph", "the app's graph of nodes and edges",
          "app", {200: ("the graph", "Graph")}),
    Route("GET", "/v1/mode", h_mode, "getMode",
          "the forwarding mode, per worker, and the modes it can switch to", "app",
          {200: ("the mode", "ModeState")}),
    Route("PUT", "/v1/mode", h_set_mode, "setMode", "switch the forwarding mode (cndpfwd)",
          "app", {200: ("every worker runs it", "ModeState"),
                  202: ("requested; not every worker switched within 2 s", "ModeState")},
          body="Mode", errors=(*_EB, 409)),
    Route("GET", "/v1/loglevel", h_loglevel, "getLogLevel", "the log level", "app",
          {200: ("the level", "LogLevelState")}),
    Route("PUT", "/v1/loglevel", h_set_loglevel, "setLogLevel",
          "set the log level (workers follow within 0.25 s)", "app",
          {200: ("the level now", "LogLevelState")}, body="LogLevel", errors=_EB),
)  # fmt: skip

_VALIDATORS = {name: openapi.body_validator(name) for name in openapi.BODIES}
_DOC: dict[str, Any] | None = None


def document() -> dict[str, Any]:
    global _DOC
    if _DOC is None:
        _DOC = openapi.build(ROUTES)
    return _DOC


# ------------------------------------------------------------------------------------ parsing


def _decode_segment(seg: str) -> str:
    try:
        return urllib.parse.unquote(seg, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise HttpError(400, f"path segment {seg[:60]!r} is not UTF-8 when decoded") from None


def _check_name(what: str, name: str) -> str:
    if not 1 <= len(name) <= openapi.NAME_MAX or any(ch in _BAD_NAME_CHARS for ch in name):
        raise HttpError(
            400,
            f"{what} name {name[:60]!r} must be 1..{openapi.NAME_MAX} characters without ',', "
            "'/', '\\' or control characters",
            fix=f"use the {what} names of GET /v1/{what}s",
        )
    return name


def match_route(
    method: str, target: str, routes: tuple[Route, ...] = ROUTES
) -> tuple[Route, dict[str, str]]:
    """The route and path parameters for a request line's method and target."""
    if len(target) > MAX_PATH:
        raise HttpError(414, f"the request target is {len(target)} characters (at most {MAX_PATH})")
    if not target.startswith("/"):
        raise HttpError(400, f"the request target {target[:60]!r} is not a path")
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    if query:
        raise HttpError(400, f"query parameters are not supported ({query[:60]!r})")
    raw = path.strip("/").split("/")  # a trailing slash names the same resource
    segs = tuple(_decode_segment(s) for s in raw)
    allowed: list[str] = []
    for r in routes:
        if len(r.segments) != len(segs):
            continue
        params: dict[str, str] = {}
        for want, got in zip(r.segments, segs, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            if r.method != method and not (method == "HEAD" and r.method == "GET"):
                allowed.append(r.method)
                continue
            what = {"lport": "port", "thread": "thread"}
            for k, v in params.items():
                _check_name(what.get(k, k), v)
            return r, params
    if allowed:
        allow = ", ".join(sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set())))
        raise HttpError(
            405, f"{method[:16]} is not allowed on {path[:80]}", headers={"Allow": allow}
        )
    raise HttpError(404, f"no route {path[:80]!r}", fix="GET /openapi.json lists every route")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(route: Route, content_type: str | None, data: bytes) -> dict | None:
    """A request body -> the validated object (None when the route takes none and none
    was sent). Raises HttpError 400/415 naming what is wrong."""
    if not data:
        if route.body and route.body_required:
            raise HttpError(
                400, f"{route.method} {route.template} needs a JSON body ({route.body})"
            )
        return None
    if not route.body:
        raise HttpError(400, f"{route.method} {route.template} takes no body")
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise HttpError(
            415,
            f"the body is {ctype or 'untyped'}, not application/json",
            fix="send Content-Type: application/json",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HttpError(400, f"the body is not UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise HttpError(400, "the body nests too deeply") from None
    except ValueError as e:
        raise HttpError(400, f"the body is not JSON: {str(e)[:120]}") from None
    if not isinstance(obj, dict):
        raise HttpError(400, f"the body must be a JSON object, not {type(obj).__name__}")
    v = _VALIDATORS[route.body]
    errs = sorted(v.iter_errors(obj), key=lambda e: list(e.path))
    if errs:
        e = errs[0]
        where = "/".join(str(x) for x in e.path) or "(body)"
        raise HttpError(400, f"body {where}: {str(e.message)[:160]}", fix=f"see {route.body}")
    if route.body == "ClearStats":
        for name in obj.get("ports", []):
            _check_name("port", name)
    return obj


# ------------------------------------------------------------------------------------ the app


class AppLink:
    """The application this sidecar serves: a fixed socket, or the only live one in a
    directory (optionally of a given app name), found again after a restart."""

    def __init__(
        self,
        directory: str | None = DEFAULT_DIR,
        socket_path: str | None = None,
        app: str | None = None,
        *,
        timeout: float = 2.0,
    ):
        self.directory = directory
        self.socket_path = socket_path
        self.app = app
        self.timeout = timeout
        self._chosen: AppClient | None = None
        self._lock = threading.Lock()

    def _resolve(self) -> AppClient:
        if self.socket_path:
            return AppClient(self.socket_path, timeout=self.timeout)
        found = discover(self.directory) if self.directory else []
        live: list[tuple[AppClient, str]] = []
        for path in found:
            c = AppClient(path, timeout=self.timeout)
            try:
                name = str(c.ask("/app/appname").get("name", ""))
            except (AppUnreachable, RequestTooLong):
                c.close()
                continue
            if self.app is None or name == self.app:
                live.append((c, name))
            else:
                c.close()
        if len(live) == 1:
            return live[0][0]
        for c, _ in live:
            c.close()
        if not live:
            what = f"of app {self.app!r} " if self.app else ""
            raise HttpError(
                503,
                f"no live telemetry socket {what}in {self.directory}",
                fix="is the application running with its telemetry socket in this directory?",
            )
        names = ", ".join(f"{n} ({c.path})" for c, n in live)
        raise HttpError(
            503,
            f"{len(live)} applications in {self.directory}: {names}",
            fix="choose one with --app NAME or --socket PATH",
        )

    def client(self) -> AppClient:
        with self._lock:
            if self._chosen is None:
                self._chosen = self._resolve()
            return self._chosen

    def ask(self, cmd: str) -> dict:
        for attempt in (0, 1):
            c = self.client()
            try:
                return c.ask(cmd)
            except RequestTooLong as e:
                raise HttpError(400, str(e)) from None
            except AppUnreachable as e:
                with self._lock:
                    if self._chosen is c:
                        self._chosen = None  # the app may have restarted: look again
                c.close()
                if attempt or self.socket_path:
                    raise HttpError(503, str(e)) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._chosen is not None:
                self._chosen.close()
                self._chosen = None


# ------------------------------------------------------------------------------------ HTTP

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _host_name(host: str) -> str:
    """``Host`` header -> host part (``[::1]:80`` -> ``::1``, ``a:80`` -> ``a``)."""
    h = host.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class _RequestHandler(BaseHTTPRequestHandler):
    server_version = "cndp-rest"
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stops sending does not hold a thread forever
    wbufsize = -1  # head and body leave in one send (else Nagle + delayed ACK: 40 ms each)

    # the server sets these
    routes: tuple[Route, ...] = ROUTES
    ctx: Ctx
    check_host = False

    def setup(self) -> None:
        super().setup()
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            # big replies leave in several sends: no Nagle wait between them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def address_string(self) -> str:
        return self.client_address[0] if isinstance(self.client_address, tuple) else "unix"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        # http.server's own errors (bad request line, 414, 431, 501): JSON as well, after a
        # status line even when the request line was unparsable (taken for HTTP/0.9)
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self._reply(code, HttpError(code, message or HTTPStatus(code).phrase).body())

    def _reply(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(obj, indent=None, separators=(",", ":")).encode() + b"\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise HttpError(411, "chunked bodies are not supported", fix="send Content-Length")
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        if not cl.strip().isdigit() or not cl.strip().isascii():
            self.close_connection = True
            raise HttpError(400, f"Content-Length {cl[:20]!r} is not a number")
        n = int(cl)
        if n > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection is unusable
            raise HttpError(413, f"the body is {n} bytes; at most {MAX_BODY}")
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        try:
            if self.check_host:
                host = self.headers.get("Host")
                if host is not None and _host_name(host) not in _LOOPBACK_NAMES:
                    raise HttpError(
                        403,
                        f"Host {host[:60]!r} is not a loopback name (DNS-rebinding guard)",
                        fix="call the API as 127.0.0.1, [::1] or localhost",
                    )
            data = self._read_body()
            route, params = match_route(self.command, self.path, self.routes)
            body = parse_body(route, self.headers.get("Content-Type"), data)
            status, obj = route.handler(self.ctx, params, body)
            self._reply(status, obj)
        except HttpError as e:
            self._reply(e.status, e.body(), e.headers)
        except Exception as e:  # a bug: answer, log, keep serving
            log.exception("%s %s failed", self.command, self.path[:80])
            self._reply(500, {"error": f"{type(e).__name__}: {e}", "status": 500})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle


class _UnixHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        path = self.server_address
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)  # stale
                else:
                    raise OSError(98, f"{path} is in use")
                finally:
                    probe.close()
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = 0


class _TCPServer(ThreadingHTTPServer):
    def __init__(self, addr: tuple[str, int], handler: type, v6: bool):
        self.address_family = socket.AF_INET6 if v6 else socket.AF_INET
        super().__init__(addr, handler)


def parse_listen(text: str) -> tuple[str, Any]:
    """``unix:/path`` -> ("unix", path); ``HOST:PORT`` / ``[V6]:PORT`` -> ("tcp", (h, p))."""
    t = text.strip()
    if t.startswith("unix:"):
        path = t[5:]
        if not path or len(os.fsencode(path)) >= 108:
            raise HttpError(400, f"unix socket path {path[:80]!r} is empty or too long")
        return "unix", path
    host, sep, port = t.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii() or int(port) > 65535:
        raise HttpError(
            400,
            f"listen address {text[:80]!r} is not HOST:PORT or unix:PATH",
            fix="e.g. 127.0.0.1:9471 or unix:/var/run/cndp/rest.sock",
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return "tcp", (host or "127.0.0.1", int(port))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RestServer:
    """The HTTP server(s): the API on ``listen``, health only on ``probe_listen``."""

    def __init__(
        self,
        link: AppLink,
        listen: str = DEFAULT_LISTEN,
        *,
        probe_listen: str | None = None,
        apply_timeout: float = APPLY_TIMEOUT,
    ):
        self.link = link
        self.ctx = Ctx(link, apply_timeout)
        self.servers: list[ThreadingHTTPServer] = []
        self.urls: list[str] = []
        self._threads: list[threading.Thread] = []
        self._unix_paths: list[str] = []
        try:
            self._open(listen, ROUTES)
            if probe_listen:
                self._open(probe_listen, tuple(r for r in ROUTES if r.probe))
        except BaseException:
            self.close()
            raise

    def _open(self, listen: str, routes: tuple[Route, ...]) -> None:
        kind, addr = parse_listen(listen)
        attrs = {"routes": routes, "ctx": self.ctx}
        if kind == "tcp":
            attrs["check_host"] = _is_loopback(addr[0])
        handler = type("BoundHandler", (_RequestHandler,), attrs)
        try:
            if kind == "unix":
                srv: ThreadingHTTPServer = _UnixHTTPServer(addr, handler)
                self._unix_paths.append(addr)
                url = f"unix:{addr}"
            else:
                srv = _TCPServer(addr, handler, ":" in addr[0])
                h, p = srv.server_address[:2]
                url = f"http://{'[' + h + ']' if ':' in h else h}:{p}"
        except OSError as e:
            raise HttpError(
                500,
                f"cannot listen on {listen}: {e.strerror or e}",
                fix="choose another address, port or path",
            ) from None
        srv.daemon_threads = True
        self.servers.append(srv)
        self.urls.append(url)

    def start(self) -> RestServer:
        for srv in self.servers:
            t = threading.Thread(target=srv.serve_forever, name="cndp-rest", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        for srv in self.servers:
            if self._threads:
                srv.shutdown()
            srv.server_close()
        for p in self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(p)
        self.servers, self._threads, self._unix_paths = [], [], []
        self.link.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="cndp-rest",
        description="REST control sidecar of a CNDP application (through its telemetry socket).",
    )
    ap.add_argument("--dir", default=DEFAULT_DIR, help=f"where app_socket.* are ({DEFAULT_DIR})")
    ap.add_argument("--socket", metavar="PATH", help="this telemetry socket (no discovery)")
    ap.add_argument("--app", metavar="NAME", help="the app of this name among several")
    ap.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT or unix:PATH for the API (default {DEFAULT_LISTEN})",
    )
    ap.add_argument(
        "--probe-listen",
        metavar="ADDR",
        help="also serve /livez and /readyz (only) here, e.g. 0.0.0.0:8086 for kubelet probes",
    )
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds per telemetry request")
    ap.add_argument("--openapi", action="store_true", help="print the OpenAPI document, exit")
    ap.add_argument("-L", dest="level", default="warning", help="log level")
    args = ap.parse_args(argv)
    if args.openapi:
        sys.stdout.write(json.dumps(document(), indent=2) + "\n")
        return 0
    from . import logs

    try:
        logs.setup(args.level, app="cndp-rest")
        link = AppLink(args.dir or None, args.socket, args.app, timeout=args.timeout)
        srv = RestServer(link, args.listen, probe_listen=args.probe_listen).start()
    except CndpError as e:
        msg = e.message if isinstance(e, HttpError) else str(e)
        print(f"cndp-rest: {msg}", file=sys.stderr)
        return 1
    print(f"cndp-rest: listening on {' and '.join(srv.urls)}", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
