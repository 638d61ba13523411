"""The device-plugin UDS handshake: the request table of the AF_XDP device plugin's own test
suite (good and hostile messages) against the session and against the real socket server,
hypothesis on the parsers, the session and a hostile server, the client's conformance
checks (CNDP-INVENTORY §2.3), the pod validators, and the per-process connection registry.

Only AF_UNIX sockets: no privileges, except the few tests that need a real XSKMAP (they skip
without CAP_BPF, and run in the e2e file as well)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.errors import CndpError, ConfigError
from cndp.k8s import handshake as hs
from cndp.k8s import udsserver as us
from cndp.k8s.handshake import Kind
from cndp.sys import bpf as sysbpf
from cndp.sys import scm

FUZZ = settings(
    max_examples=150,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RES = "afxdp/testing"
ME = scm.PeerCred(os.getpid(), os.getuid(), os.getgid())
KNOWN_RESPONSES = {
    hs.RESP_HOST_OK,
    hs.RESP_HOST_NAK,
    hs.RESP_FD_ACK,
    hs.RESP_FD_NAK,
    hs.RESP_BUSY_POLL_ACK,
    hs.RESP_BUSY_POLL_NAK,
    hs.RESP_FIN_ACK,
    hs.RESP_NAK,
    hs.RESP_ERROR,
    hs.HANDSHAKE_VERSION,
}


def open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture
def pipes():
    """Stand-ins for XSKMAP fds (the session and raw sockets do not look at them)."""
    made: list[int] = []

    def make(n: int) -> list[int]:
        out = []
        for _ in range(n):
            r, w = os.pipe()
            made.extend((r, w))
            out.append(r)
        return out

    yield make
    scm.close_fds(made)


@pytest.fixture
def xskmap():
    # needs CAP_BPF: fails (does not skip) without it, as every test needing root
    fd = sysbpf.map_create(sysbpf.MAP_TYPE_XSKMAP, 4, 4, 4, name="t_xsks")
    yield fd
    sysbpf.close(fd)


def pod_lookup(pod: str, ns: str, resource: str, devices: list[str]):
    def lookup():
        return [
            us.PodResources("other-pod", "default", (us.ContainerDevices("c", {RES: ("x",)}),)),
            us.PodResources(pod, ns, (us.ContainerDevices("app", {resource: tuple(devices)}),)),
        ]

    return lookup


# ---------------------------------------------------------------------------------------------
# the device plugin's request table (internal/udsserver/udsserver_test.go), in our words
#
# (name, devices of the socket, devices the pod holds, pod's resource, requests, responses)
# A response list per request; [] = nothing (the session is over). Cases also check the
# literal two characters backslash-zero, as the DP's table does, and a real NUL.

GOOD = "/connect, podA"
FIN = "/fin"
H_OK, H_NAK, NAK = hs.RESP_HOST_OK, hs.RESP_HOST_NAK, hs.RESP_NAK
F_ACK, F_NAK, FIN_ACK = hs.RESP_FD_ACK, hs.RESP_FD_NAK, hs.RESP_FIN_ACK
AB = ["devA", "devB"]

TABLE: list[tuple[str, list[str], list[str], str, list[str], list[list[str]]]] = [
    # validate and disconnect
    ("one device", ["devA"], ["devA"], RES, [GOOD, FIN], [[H_OK], [FIN_ACK]]),
    ("two devices", AB, AB, RES, [GOOD, FIN], [[H_OK], [FIN_ACK]]),
    (
        "ten devices",
        [f"dev{c}" for c in "ABCDEFGHIJ"],
        [f"dev{c}" for c in "ABCDEFGHIJ"],
        RES,
        [GOOD, FIN],
        [[H_OK], [FIN_ACK]],
    ),
    ("no space after comma", AB, AB, RES, ["/connect,podA", FIN], [[H_OK], [FIN_ACK]]),
    # good fds
    (
        "fd, one device",
        ["devA"],
        ["devA"],
        RES,
        [GOOD, "/xsk_map_fd, devA", FIN],
        [[H_OK], [F_ACK], [FIN_ACK]],
    ),
    (
        "fds, three devices",
        ["devA", "devB", "devC"],
        ["devA", "devB", "devC"],
        RES,
        [GOOD, "/xsk_map_fd, devA", "/xsk_map_fd, devB", "/xsk_map_fd,devC", FIN],
        [[H_OK], [F_ACK], [F_ACK], [F_ACK], [FIN_ACK]],
    ),
    ("version", AB, AB, RES, [GOOD, "/version", FIN], [[H_OK], ["0.1"], [FIN_ACK]]),
    (
        "full handshake",
        ["devA", "devB", "devC"],
        ["devA", "devB", "devC"],
        RES,
        [GOOD, "/version", "/xsk_map_fd, devA", "/xsk_map_fd, devB", "/xsk_map_fd, devC", FIN],
        [[H_OK], ["0.1"], [F_ACK], [F_ACK], [F_ACK], [FIN_ACK]],
    ),
    # not validated: the session ends, /fin gets nothing
    ("no hostname", AB, AB, RES, ["/connect", FIN], [[H_NAK], []]),
    ("no hostname, comma", AB, AB, RES, ["/connect,", FIN], [[H_NAK], []]),
    ("two hostnames", AB, AB, RES, ["/connect, podA, podB", FIN], [[H_NAK], []]),
    ("many hostnames", AB, AB, RES, ["/connect, podA, podB, podC, podD, podE", FIN], [[H_NAK], []]),
    ("hostname before", AB, AB, RES, ["podA, /connect", FIN], [[H_NAK], []]),
    ("hostname before and after", AB, AB, RES, ["podA, /connect, podA", FIN], [[H_NAK], []]),
    ("backslash-zero before", AB, AB, RES, ["\\0/connect, podA", FIN], [[H_NAK], []]),
    ("NUL before", AB, AB, RES, ["\0/connect, podA", FIN], [[H_NAK], []]),
    ("garbage before", AB, AB, RES, ["dkjfhgkjdfs/connect, podA", FIN], [[H_NAK], []]),
    ("space before", AB, AB, RES, [" /connect, podA", FIN], [[H_NAK], []]),
    ("backslash before", AB, AB, RES, ["\\/connect, podA", FIN], [[H_NAK], []]),
    ("two backslashes before", AB, AB, RES, ["\\\\/connect, podA", FIN], [[H_NAK], []]),
    ("comma before", AB, AB, RES, [",/connect, podA", FIN], [[H_NAK], []]),
    ("backslash-zero after", AB, AB, RES, ["/connect, podA\\0", FIN], [[H_NAK], []]),
    ("garbage after", AB, AB, RES, ["/connect, podAdkjfhgkjdfs", FIN], [[H_NAK], []]),
    ("garbage argument after", AB, AB, RES, ["/connect, podA,dkjfhgkjdfs", FIN], [[H_NAK], []]),
    ("backslash after", AB, AB, RES, ["/connect, podA\\", FIN], [[H_NAK], []]),
    ("two backslashes after", AB, AB, RES, ["/connect, podA\\\\", FIN], [[H_NAK], []]),
    ("comma after", AB, AB, RES, ["/connect, podA,", FIN], [[H_NAK], []]),
    ("backslash-zero within", AB, AB, RES, ["/connect\\0, podA", FIN], [[H_NAK], []]),
    ("NUL within", AB, AB, RES, ["/connect\0, podA", FIN], [[H_NAK], []]),
    ("backslash-zero alone", AB, AB, RES, ["\\0", FIN], [[NAK], []]),
    ("garbage request", AB, AB, RES, ["asdfxc", FIN], [[NAK], []]),
    ("garbage request, comma", AB, AB, RES, ["asdfxc,", FIN], [[NAK], []]),
    ("garbage request, argument", AB, AB, RES, ["asdfxc, podA,", FIN], [[NAK], []]),
    ("backslash request", AB, AB, RES, ["\\", FIN], [[NAK], []]),
    ("two backslashes request", AB, AB, RES, ["\\\\", FIN], [[NAK], []]),
    ("star request", AB, AB, RES, ["*", FIN], [[NAK], []]),
    ("fin before connect", AB, AB, RES, [FIN, GOOD], [[NAK], []]),
    ("connect without slash", AB, AB, RES, ["connect", FIN], [[NAK], []]),
    ("connect/", AB, AB, RES, ["connect/", FIN], [[NAK], []]),
    ("/Connect", AB, AB, RES, ["/Connect", FIN], [[NAK], []]),
    ("/connect*", AB, AB, RES, ["/connect*", FIN], [[H_NAK], []]),
    ("\\/connect*", AB, AB, RES, ["\\/connect*", FIN], [[H_NAK], []]),
    ("*/connect*", AB, AB, RES, ["*/connect*", FIN], [[H_NAK], []]),
    ("unknown pod", AB, AB, RES, ["/connect, podX", FIN], [[H_NAK], []]),
    ("wrong devices", ["devX", "devY"], AB, RES, [GOOD, FIN], [[H_NAK], []]),
    (
        "one wrong device (last)",
        ["devA", "devB", "devC", "devX"],
        ["devA", "devB", "devC", "devD"],
        RES,
        [GOOD, FIN],
        [[H_NAK], []],
    ),
    (
        "one wrong device (first)",
        ["devX", "devB", "devC", "devD"],
        ["devA", "devB", "devC", "devD"],
        RES,
        [GOOD, FIN],
        [[H_NAK], []],
    ),
    (
        "one wrong device (middle)",
        ["devA", "devB", "devX", "devD"],
        ["devA", "devB", "devC", "devD"],
        RES,
        [GOOD, FIN],
        [[H_NAK], []],
    ),
    (
        "one extra device",
        ["devA", "devB", "devC", "devD", "devX"],
        ["devA", "devB", "devC", "devD"],
        RES,
        [GOOD, FIN],
        [[H_NAK], []],
    ),
    (
        "one missing device",
        ["devA", "devB", "devC"],
        ["devA", "devB", "devC", "devD"],
        RES,
        [GOOD, FIN],
        [[H_NAK], []],
    ),
    ("wrong resource type", AB, AB, "afxdp/badType", [GOOD, FIN], [[H_NAK], []]),
    # validated, fds for devices the pod does not have
    (
        "unknown device fd",
        ["devA"],
        ["devA"],
        RES,
        [GOOD, "/xsk_map_fd, devX", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    (
        "good, bad, good fds",
        ["devA", "devB", "devC"],
        ["devA", "devB", "devC"],
        RES,
        [GOOD, "/xsk_map_fd, devA", "/xsk_map_fd, devX", "/xsk_map_fd, devC", FIN],
        [[H_OK], [F_ACK], [F_NAK], [F_ACK], [FIN_ACK]],
    ),
    # validated, corrupt fd requests
    (
        "fd request, no device",
        ["devA"],
        ["devA"],
        RES,
        [GOOD, "/xsk_map_fd", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "fd request, empty device",
        ["devA"],
        ["devA"],
        RES,
        [GOOD, "/xsk_map_fd,", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    (
        "fd request, two devices",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devA, devB", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "device before fd request",
        AB,
        AB,
        RES,
        [GOOD, "devA, /xsk_map_fd", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "device around fd request",
        AB,
        AB,
        RES,
        [GOOD, "devA, /xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "backslash-zero before fd request",
        AB,
        AB,
        RES,
        [GOOD, "\\0/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "NUL before fd request",
        AB,
        AB,
        RES,
        [GOOD, "\0/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "garbage before fd request",
        AB,
        AB,
        RES,
        [GOOD, "dkjfhgkjdfs/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "space before fd request",
        AB,
        AB,
        RES,
        [GOOD, " /xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "backslash before fd request",
        AB,
        AB,
        RES,
        [GOOD, "\\/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "two backslashes before fd request",
        AB,
        AB,
        RES,
        [GOOD, "\\\\/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "comma before fd request",
        AB,
        AB,
        RES,
        [GOOD, ",/xsk_map_fd, devA", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "backslash-zero device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd,\\0", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    ("NUL device", AB, AB, RES, [GOOD, "/xsk_map_fd,\0", FIN], [[H_OK], [F_NAK], [FIN_ACK]]),
    (
        "garbage after device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devAdkjfhgkjdfs", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    (
        "garbage argument after device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devA,dkjfhgkjdfs", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    (
        "backslash after device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devA\\", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    (
        "two backslashes after device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devA\\\\", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    (
        "comma after device",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, devA,", FIN],
        [[H_OK], [NAK], [FIN_ACK]],
    ),
    # validated, garbage requests
    *[
        (f"garbage request {g!r}", AB, AB, RES, [GOOD, g, FIN], [[H_OK], [NAK], [FIN_ACK]])
        for g in [
            "\\0",
            " ",
            ",",
            "/",
            "\\",
            "dkjfhgkjdfs",
            "*",
            ";",
            "\n",
            "/version/fin",
            "/version /fin",
            "/version,/fin",
            "/version\n/fin",
            "/xsk_map_fd/fin",
            "/xsk_map_fd /fin",
            "/connect, podA",
            "/Version",
            "/fin,",
            "/config_busy_poll",
        ]
    ],
    (
        "fd request for /fin",
        AB,
        AB,
        RES,
        [GOOD, "/xsk_map_fd, /fin", FIN],
        [[H_OK], [F_NAK], [FIN_ACK]],
    ),
    ("nothing after fin", AB, AB, RES, [GOOD, FIN, "/version"], [[H_OK], [FIN_ACK], []]),
]
# An empty datagram: the DP's table expects /nak; on a SOCK_SEQPACKET socket it cannot be
# told from the end of the connection, so the session answers /nak and the socket closes.
SESSION_ONLY = [("empty request", AB, AB, RES, [GOOD, "", FIN], [[H_OK], [NAK], [FIN_ACK]])]


def _validator(pod_devices: list[str], resource: str) -> us.PodResourcesValidator:
    return us.PodResourcesValidator(
        pod_lookup("podA", "someOtherNamespace", resource, pod_devices),
        RES,
        check_hostname=False,
    )


@pytest.mark.parametrize(
    "name,server_devs,pod_devs,resource,requests,expected",
    TABLE + SESSION_ONLY,
    ids=[c[0] for c in TABLE + SESSION_ONLY],
)
def test_dp_table_on_the_session(pipes, name, server_devs, pod_devs, resource, requests, expected):
    fds = dict(zip(server_devs, pipes(len(server_devs)), strict=True))
    s = us.Session(fds, _validator(pod_devs, resource), ME)
    for req, want in zip(requests, expected, strict=True):
        got = s.handle(req.encode("latin-1"))
        assert [r.text for r in got] == want, (name, req)
        for r in got:
            # the XSKMAP fd goes with /fd_ack only, and it is the requested device's
            assert (r.fd is not None) == (r.text == F_ACK)
            if r.fd is not None:
                assert r.fd == fds[req.split(",")[1].strip()]
    assert s.closed == (expected[-1] in ([], [FIN_ACK]))


class RawPod:
    """A raw SOCK_SEQPACKET client, to send exactly the bytes of the table."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(3)
        self.sock.connect(path)

    def send(self, data: bytes, fds: list[int] | None = None) -> None:
        scm.send_fds(self.sock, data, fds or [])

    def recv(self) -> scm.Received:
        return scm.recv_fds(self.sock, 256, maxfds=4)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve(tmp_path):
    servers: list[us.UdsServer] = []

    def start(devices, validate, **kw) -> us.UdsServer:
        srv = us.UdsServer(
            str(tmp_path / f"s{len(servers)}" / "afxdp.sock"), devices, validate, **kw
        )
        servers.append(srv)
        return srv.start()

    yield start
    for s in servers:
        s.close()
    for s in servers:
        assert not os.path.exists(s.path), "the socket file outlived close()"


@pytest.mark.parametrize(
    "name,server_devs,pod_devs,resource,requests,expected", TABLE, ids=[c[0] for c in TABLE]
)
def test_dp_table_on_the_socket(
    serve, pipes, name, server_devs, pod_devs, resource, requests, expected
):
    fds = dict(zip(server_devs, pipes(len(server_devs)), strict=True))
    srv = serve(fds, _validator(pod_devs, resource))
    pod = RawPod(srv.path)
    try:
        for req, want in zip(requests, expected, strict=True):
            if not want:  # the server ended the session: the connection is closed
                assert pod.recv().eof
                break
            pod.send(req.encode("latin-1"))
            for text in want:
                got = pod.recv()
                assert got.data == text.encode(), (name, req)
                assert len(got.fds) == (1 if text == F_ACK else 0)
                if got.fds:
                    # the same pipe as the device's: compare inodes
                    dev = req.split(",")[1].strip()
                    assert os.fstat(got.fds[0]).st_ino == os.fstat(fds[dev]).st_ino
                scm.close_fds(got.fds)
    finally:
        pod.close()


# ---------------------------------------------------------------------------------------------
# busy poll, on the session


def test_busy_poll_requests(pipes):
    calls = []

    def fake(fd, t, b):
        calls.append((os.fstat(fd).st_ino, t, b))
        if t == 99:
            raise OSError(1, "EPERM")

    (dev,) = pipes(1)
    s = us.Session({"devA": dev}, us.AllowPods(), ME, busy_poll=fake)
    assert [r.text for r in s.handle(b"/connect,podA")] == [H_OK]
    r1, w1 = os.pipe()
    ino = os.fstat(r1).st_ino
    cases = [
        (b"/config_busy_poll,20,64", [r1], hs.RESP_BUSY_POLL_ACK),
        (b"/config_busy_poll, 20, 64", [os.dup(r1)], hs.RESP_BUSY_POLL_ACK),
        (b"/config_busy_poll,20,64", [], hs.RESP_BUSY_POLL_NAK),  # no fd
        (b"/config_busy_poll,20,64", [os.dup(r1), os.dup(r1)], hs.RESP_BUSY_POLL_NAK),
        (b"/config_busy_poll,70000,64", [os.dup(r1)], hs.RESP_BUSY_POLL_NAK),
        (b"/config_busy_poll,99,64", [os.dup(r1)], hs.RESP_BUSY_POLL_NAK),  # setsockopt failed
        (b"/config_busy_poll,20", [os.dup(r1)], NAK),
        (b"/config_busy_poll,x,64", [os.dup(r1)], NAK),
        (b"/config_busy_poll,-1,64", [os.dup(r1)], NAK),
        (b"/config_busy_poll,20,64,1", [os.dup(r1)], NAK),
        (b"/version", [os.dup(r1)], "0.1"),  # an fd nobody asked for is closed
    ]
    for data, fds, want in cases:
        got = s.handle(data, fds)
        assert [r.text for r in got] == [want], data
        assert not any(is_open(fd) for fd in fds), "the session must close every received fd"
    assert calls == [(ino, 20, 64), (ino, 20, 64), (ino, 99, 64)]
    os.close(w1)


def test_busy_poll_refuses_an_fd_that_is_not_af_xdp(pipes):
    (dev,) = pipes(1)
    s = us.Session({"devA": dev}, us.AllowPods(), ME)  # the real apply_busy_poll
    s.handle(b"/connect,podA")
    a, b = socket.socketpair()
    assert [r.text for r in s.handle(b"/config_busy_poll,20,64", [os.dup(a.fileno())])] == [
        hs.RESP_BUSY_POLL_NAK
    ]
    # the unix socket was left alone
    assert a.getsockopt(socket.SOL_SOCKET, 46) == 0  # SO_BUSY_POLL
    a.close()
    b.close()


def test_lookup_failure_answers_error_then_host_nak(pipes):
    def broken():
        raise RuntimeError("kubelet unreachable")

    (dev,) = pipes(1)
    v = us.PodResourcesValidator(broken, RES, check_hostname=False)
    s = us.Session({"devA": dev}, v, ME)
    assert [r.text for r in s.handle(b"/connect,podA")] == [hs.RESP_ERROR, H_NAK]
    assert s.closed


# ---------------------------------------------------------------------------------------------
# validators


def test_pod_resources_validator_checks_devices_uid_and_hostname():
    me = os.uname().nodename
    lookup = pod_lookup(me, "ns1", RES, ["devA", "devB"])
    devs = frozenset(AB)
    v = us.PodResourcesValidator(lookup, RES)
    assert v(me, ME, devs) and v.reason == ""
    assert not v(me, ME, frozenset(["devA"])) and "exactly" in v.reason
    assert not v("nosuchpod", ME, devs) and "not on this node" in v.reason
    # a pod name that is not the peer's hostname: refused (the peer lies about who it is)
    v2 = us.PodResourcesValidator(pod_lookup("other-pod-0", "ns1", RES, AB), RES)
    assert not v2("other-pod-0", ME, devs) and "hostname" in v2.reason
    v2.check_hostname = False
    assert v2("other-pod-0", ME, devs)
    # uid
    v3 = us.PodResourcesValidator(lookup, RES, uids=frozenset({ME.uid + 1}))
    assert not v3(me, ME, devs) and "uid" in v3.reason
    v3.uids = frozenset({ME.uid})
    assert v3(me, ME, devs)
    # the peer's pid not visible (another pid namespace)
    assert not v(me, scm.PeerCred(0, ME.uid, ME.gid), devs) and "pid" in v.reason
    # a pid that does not exist any more
    assert not v(me, scm.PeerCred(2**22 + 7, 0, 0), devs) and "hostname" in v.reason


def test_allow_pods():
    assert us.AllowPods()("anything", ME, frozenset())
    assert us.AllowPods("a", "b")("b", ME, frozenset())
    assert not us.AllowPods("a")("b", ME, frozenset())


# ---------------------------------------------------------------------------------------------
# parsers and the session under hypothesis

TOKENS = [
    "/connect",
    "/xsk_map_fd",
    "/config_busy_poll",
    "/version",
    "/fin",
    ",",
    " ",
    "podA",
    "devA",
    "devB",
    "20",
    "64",
    "70000",
    "\0",
    "\\0",
    "\n",
    "*",
    "/",
    "-1",
    "x" * 60,
]
datagrams = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(TOKENS), max_size=8).map(lambda t: "".join(t).encode()),
)


@FUZZ
@given(datagrams, st.booleans())
def test_parse_request_never_raises(data, truncated):
    req = hs.parse_request(data, truncated=truncated)
    assert isinstance(req.kind, Kind)
    if req.kind is Kind.CONNECT and req.ok:
        assert hs.valid_pod_name(req.arg) and not truncated
    if req.kind is Kind.XSK_MAP_FD and req.ok:
        assert hs.valid_netdev_name(req.arg)
    if req.kind is Kind.BUSY_POLL and req.ok:
        assert 0 <= req.timeout <= 0xFFFF and 0 <= req.budget <= 0xFFFF
    if truncated:
        assert not req.ok


@FUZZ
@given(st.binary(max_size=200))
def test_parse_reply_never_raises(data):
    r = hs.parse_reply(data)
    assert isinstance(r.name, str) and "," not in r.name


@FUZZ
@given(st.lists(st.tuples(datagrams, st.integers(0, 2)), max_size=8))
def test_session_on_hostile_sequences(seq):
    r0, w0 = os.pipe()
    devices = {"devA": r0}
    s = us.Session(devices, us.AllowPods("podA"), ME, busy_poll=lambda *a: None)
    try:
        connected_by = None
        for i, (data, nfds) in enumerate(seq):
            fds = [os.dup(w0) for _ in range(nfds)]
            was = s.state
            got = s.handle(data, fds)
            assert not any(is_open(fd) for fd in fds)
            assert len(got) <= 2
            for r in got:
                assert r.text in KNOWN_RESPONSES
                assert (r.fd is not None) == (r.text == F_ACK)
                assert r.fd is None or r.fd == r0
            if was == "closed":
                assert got == []
            if was == "new":
                assert len(got) >= 1 and s.state in ("connected", "closed")
            if s.state == "connected" and connected_by is None:
                connected_by = i
                assert i == 0 and hs.parse_request(data).arg == "podA"
        assert is_open(r0)  # the device's fd stays the owner's
    finally:
        os.close(r0)
        os.close(w0)


# ---------------------------------------------------------------------------------------------
# the socket server


def test_server_socket_file_mode_owner_and_cleanup(tmp_path, pipes):
    (dev,) = pipes(1)
    path = tmp_path / "a" / "b" / "afxdp.sock"
    srv = us.UdsServer(str(path), {"devA": dev}, us.AllowPods(), uid=4242, gid=4343).start()
    try:
        st_ = path.stat()
        assert (st_.st_mode & 0o777) == 0o600
        assert (st_.st_uid, st_.st_gid) == (4242, 4343)
    finally:
        srv.close()
    assert not path.exists()
    assert not (tmp_path / "a").exists(), "directories the server created are removed"
    assert srv.done.is_set()


def test_server_replaces_a_stale_socket_and_refuses_a_live_one(tmp_path, pipes):
    (dev,) = pipes(1)
    path = tmp_path / "afxdp.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(path))
    stale.close()  # a crashed server's leftover
    with us.UdsServer(str(path), {"devA": dev}, us.AllowPods()) as srv:
        assert RawPod(srv.path)  # connects
        with pytest.raises(CndpError, match="already listens"):
            us.UdsServer(str(path), {"devA": dev}, us.AllowPods()).start()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CndpError, match="not a socket"):
        us.UdsServer(str(tmp_path / "file"), {"devA": dev}, us.AllowPods()).start()
    assert (tmp_path / "file").exists()


def test_server_rejects_bad_configuration(tmp_path):
    with pytest.raises(ConfigError):
        us.UdsServer(str(tmp_path / "s"), {"bad/name": 3}, us.AllowPods())
    with pytest.raises(ConfigError):
        us.UdsServer(str(tmp_path / "s"), {}, us.AllowPods(), idle_timeout=0)


def test_idle_connection_times_out_and_the_server_serves_the_next_one(serve, pipes):
    (dev,) = pipes(1)
    srv = serve({"devA": dev}, us.AllowPods(), idle_timeout=0.3)
    pod = RawPod(srv.path)
    pod.send(b"/connect,podA")
    assert pod.recv().data == b"/host_ok"
    t0 = time.monotonic()
    assert pod.recv().eof  # silent for idle_timeout: closed by the server
    assert 0.2 < time.monotonic() - t0 < 2.5
    pod.close()
    assert srv.stats.timeouts == 1
    pod2 = RawPod(srv.path)  # a restarted container connects again
    pod2.send(b"/connect,podA")
    assert pod2.recv().data == b"/host_ok"
    pod2.close()


def test_second_concurrent_connection_is_closed_at_once(serve, pipes):
    (dev,) = pipes(1)
    srv = serve({"devA": dev}, us.AllowPods())
    a = RawPod(srv.path)
    a.send(b"/connect,podA")
    assert a.recv().data == b"/host_ok"
    b = RawPod(srv.path)
    assert b.recv().eof
    a.send(b"/version")
    assert a.recv().data == b"0.1"  # the first session is unaffected
    a.close()
    b.close()
    assert srv.stats.refused == 1


def test_once_server_stops_after_the_first_session(serve, pipes):
    (dev,) = pipes(1)
    srv = serve({"devA": dev}, us.AllowPods(), once=True)
    a = RawPod(srv.path)
    a.send(b"/connect,podA")
    a.recv()
    a.send(b"/fin")
    assert a.recv().data == b"/fin_ack"
    assert srv.done.wait(3)
    assert not os.path.exists(srv.path)
    assert srv.stats.fins == 1


def test_accept_timeout_removes_the_socket(serve, pipes):
    (dev,) = pipes(1)
    srv = serve({"devA": dev}, us.AllowPods(), accept_timeout=0.2)
    assert srv.done.wait(3)
    assert not os.path.exists(srv.path)


def test_server_closes_received_fds_and_survives_floods(serve, pipes):
    (dev,) = pipes(1)
    srv = serve({"devA": dev}, us.AllowPods())
    pod = RawPod(srv.path)
    pod.send(b"/connect,podA")
    pod.recv()
    r, w = os.pipe()
    before = open_fds()  # the server thread is up and the session open
    for i in range(50):
        # requests with fds (one, or more than the server takes), and oversized ones
        pod.send(b"/version", [r] * (1 + i % 3))
        assert pod.recv().data == b"0.1"
        pod.send(b"/xsk_map_fd," + b"x" * 300)
        assert pod.recv().data == NAK.encode()
    assert not open_fds() - before, "the server leaked received fds"
    pod.send(b"/fin")
    assert pod.recv().data == b"/fin_ack"
    pod.close()
    os.close(r)
    os.close(w)


# ---------------------------------------------------------------------------------------------
# the client against a scripted device plugin


class FakeDP:
    """Accepts one connection and runs ``script(conn, received)`` in a thread; ``received``
    collects every datagram the client sent (with its fds' inodes)."""

    def __init__(self, path: Path, script: Callable):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.received: list[tuple[bytes, list[int]]] = []
        self.error: BaseException | None = None
        self.script = script
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(5)
            with conn:
                self.script(conn, self)
                # then drain until the client hangs up, to see anything it sends later
                with contextlib.suppress(OSError):
                    while True:
                        if not self.recv(conn):
                            break
        except BaseException as e:  # surfaced by close()
            self.error = e

    def recv(self, conn) -> bytes | None:
        got = scm.recv_fds(conn, 256, maxfds=4)
        if got.eof:
            return None
        self.received.append((got.data, [os.fstat(fd).st_ino for fd in got.fds]))
        scm.close_fds(got.fds)
        return got.data

    def close(self):
        self.thread.join(5)
        self.sock.close()
        if self.error:
            raise self.error


def test_client_first_datagram_is_connect_hostname_and_it_never_answers(tmp_path):
    def script(conn, dp):
        dp.recv(conn)
        for junk in (b"/bogus", b"0.1", b"{}", b"", b"/error"):
            if junk:
                conn.send(junk)
        conn.send(b"/host_ok\0")  # xskmap_load_send's raw form, with the NUL
        conn.send(b"{}")

    dp = FakeDP(tmp_path / "dp.sock", script)
    c = hs.HandshakeClient(dp.path, timeout=3)
    c.connect()
    assert c.alive
    time.sleep(0.1)
    c.detach()  # hang up without /fin
    dp.close()
    assert dp.received == [(f"/connect,{socket.gethostname()}".encode(), [])]


def test_client_fd_ack_forms_busy_poll_and_fin(tmp_path, xskmap):
    inode = os.fstat(xskmap).st_ino

    def script(conn, dp):
        assert dp.recv(conn) == b"/connect,cndp-0-0"
        conn.send(b"/host_ok")
        assert dp.recv(conn) == b"/xsk_map_fd,ens1"
        scm.send_fds(conn, b"/fd_ack,7", [xskmap])  # xskmap_load_send puts the fd in the text
        assert dp.recv(conn) == b"/config_busy_poll,20,64"
        conn.send(b"/config_busy_poll_ack")
        assert dp.recv(conn) == b"/xsk_map_fd,ens2"
        scm.send_fds(conn, b"/fd_ack", [xskmap])
        assert dp.recv(conn) == b"/fin"
        conn.send(b"/fin_ack")

    dp = FakeDP(tmp_path / "dp.sock", script)
    r, w = os.pipe()
    with hs.HandshakeClient(dp.path, pod="cndp-0-0", timeout=3) as c:
        fd = c.xsk_map_fd("ens1")
        assert os.fstat(fd).st_ino == inode and fd != xskmap
        assert c.xsk_map_fd("ens1") == fd  # cached: asked once
        c.config_busy_poll(r, 20, 64)
        c.xsk_map_fd("ens2")
        fds = list(c.map_fds.values())
    assert not any(is_open(f) for f in fds), "close() closes the received map fds"
    dp.close()
    # the busy-poll request carried exactly our fd
    (bp,) = [x for x in dp.received if x[0].startswith(b"/config_busy_poll")]
    assert bp[1] == [os.fstat(r).st_ino]
    os.close(r)
    os.close(w)


@pytest.mark.parametrize(
    "answer,fds,match",
    [
        (b"/host_nak", 0, "refused pod"),
        (b"/error", 0, "could not look the pod up"),  # then /host_nak
        (b"/nak", 0, r"did not understand"),
        (None, 0, "closed the connection"),
        (b"x" * 300, 0, "longer than"),
    ],
)
def test_client_connect_failures(tmp_path, answer, fds, match):
    def script(conn, dp):
        dp.recv(conn)
        if answer is None:
            conn.shutdown(socket.SHUT_RDWR)  # the DP hangs up
            return
        conn.send(answer)
        if answer == b"/error":
            conn.send(b"/host_nak")

    dp = FakeDP(tmp_path / "dp.sock", script)
    c = hs.HandshakeClient(dp.path, pod="podA", timeout=3)
    with pytest.raises(hs.HandshakeError, match=match):
        c.connect()
    assert not c.alive and c.sock is None
    dp.close()


@pytest.mark.parametrize(
    "nfds,text,match",
    [
        (0, b"/fd_ack", "came with 0 file descriptors"),
        (2, b"/fd_ack", "came with 2 file descriptors"),
        (1, b"/fd_ack", "not an XSKMAP"),  # a pipe, not a BPF map
        (0, b"/fd_nak", "no XSKMAP for netdev"),
        (1, b"/fd_nak", "no XSKMAP for netdev"),  # an fd nobody asked for is closed
    ],
)
def test_client_refuses_bad_fd_answers_and_leaks_nothing(tmp_path, nfds, text, match):
    r, w = os.pipe()

    def script(conn, dp):
        dp.recv(conn)
        conn.send(b"/host_ok")
        dp.recv(conn)
        scm.send_fds(conn, text, [r] * nfds)

    dp = FakeDP(tmp_path / "dp.sock", script)
    c = hs.HandshakeClient(dp.path, pod="podA", timeout=3)
    c.connect()
    before = open_fds()
    with pytest.raises(hs.HandshakeError, match=match):
        c.xsk_map_fd("ens1")
    assert open_fds() <= before, "fds from a refused answer must be closed"
    c.detach()
    dp.close()
    os.close(r)
    os.close(w)


def test_client_busy_poll_nak_and_range(tmp_path):
    def script(conn, dp):
        dp.recv(conn)
        conn.send(b"/host_ok")
        dp.recv(conn)
        conn.send(b"/config_busy_poll_nak")

    dp = FakeDP(tmp_path / "dp.sock", script)
    c = hs.HandshakeClient(dp.path, pod="podA", timeout=3)
    c.connect()
    with pytest.raises(ConfigError):
        c.config_busy_poll(0, 70000, 64)
    with pytest.raises(hs.HandshakeError, match="refused to configure busy polling"):
        c.config_busy_poll(0, 20, 64)
    c.detach()
    dp.close()


def test_client_times_out_on_a_silent_server(tmp_path):
    def script(conn, dp):
        dp.recv(conn)  # and never answer

    dp = FakeDP(tmp_path / "dp.sock", script)
    c = hs.HandshakeClient(dp.path, pod="podA", timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(hs.HandshakeError, match="no answer"):
        c.connect()
    assert time.monotonic() - t0 < 2
    dp.close()


def test_client_connect_errors_name_the_problem(tmp_path, caplog):
    with pytest.raises(hs.HandshakeError, match="no device-plugin socket"):
        hs.HandshakeClient(str(tmp_path / "missing.sock")).connect()
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(str(tmp_path / "stream.sock"))
    stream.listen(1)
    with pytest.raises(hs.HandshakeError, match="not a SOCK_SEQPACKET"):
        hs.HandshakeClient(str(tmp_path / "stream.sock")).connect()
    stream.close()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dead.bind(str(tmp_path / "dead.sock"))
    dead.close()
    with pytest.raises(hs.HandshakeError, match="nobody is listening"):
        hs.HandshakeClient(str(tmp_path / "dead.sock")).connect()
    with pytest.raises(hs.HandshakeError, match="cannot be sent"):
        hs.HandshakeClient(str(tmp_path / "dead.sock"), pod="bad name!").connect()
    # a pod name the Go DP cannot read in full: warned, still sent (our server reads it)
    long = "p" * 60
    with us.UdsServer(str(tmp_path / "ok.sock"), {}, us.AllowPods(long)) as srv:
        with caplog.at_level(logging.WARNING, "cndp.k8s.handshake"):
            with hs.HandshakeClient(srv.path, pod=long, timeout=3) as c:
                assert c.version() == "0.1"
        assert "reads only 64" in caplog.text


HOSTILE_REPLIES = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                [
                    b"/host_ok",
                    b"/host_nak",
                    b"/nak",
                    b"/error",
                    b"{}",
                    b"0.1",
                    b"/fd_ack",
                    b"/host_ok\0",
                    b"/fin_ack",
                    b"\0",
                    b" ",
                ]
            ),
            st.binary(max_size=40),
        ),
        st.integers(0, 2),
    ),
    max_size=6,
)


@settings(
    max_examples=60,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(HOSTILE_REPLIES)
def test_client_against_a_hostile_server(tmp_path_factory, replies):
    """Whatever the server sends: connected, or a HandshakeError; no other exception, no
    hang, no fd left open that the client does not own."""
    path = tmp_path_factory.mktemp("h") / "dp.sock"
    r, w = os.pipe()

    def script(conn, dp):
        dp.recv(conn)
        for data, nfds in replies:
            with contextlib.suppress(OSError):
                scm.send_fds(conn, data, [r] * nfds)
        conn.shutdown(socket.SHUT_WR)  # then EOF: the client must not wait for ever

    dp = FakeDP(path, script)
    before = open_fds()
    c = hs.HandshakeClient(str(path), pod="podA", timeout=2)
    try:
        c.connect()
    except hs.HandshakeError:
        assert not c.alive
    else:
        first = next(
            hs.parse_reply(d)
            for d, _ in replies
            if not hs.parse_reply(d).ignorable
            and hs.parse_reply(d).name in (hs.RESP_HOST_OK, hs.RESP_HOST_NAK, NAK)
        )
        assert first.name == hs.RESP_HOST_OK
    c.detach()
    dp.close()  # the fake server's end of the connection is in this process too
    assert open_fds() <= before
    os.close(r)
    os.close(w)


# ---------------------------------------------------------------------------------------------
# one connection per socket per process


def test_acquire_shares_one_connection_per_socket_and_the_last_release_sends_fin(tmp_path):
    me = socket.gethostname()
    with us.UdsServer(str(tmp_path / "dp" / "afxdp.sock"), {}, us.AllowPods(me)) as srv:
        # the device plugin mounts the same socket at one path per netdev: same inode
        other = tmp_path / "afxdp_dp" / "ens2" / "afxdp.sock"
        other.parent.mkdir(parents=True)
        os.link(srv.path, other)
        c1 = hs.acquire(srv.path)
        c2 = hs.acquire(str(other))
        assert c1 is c2 and hs.shared_clients() == [c1]
        assert srv.stats.connections == 1
        hs.release(c1)
        assert c1.alive and srv.stats.fins == 0
        # a forked worker uses the inherited connection (serialised) and never sends /fin
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                c = hs.acquire(srv.path)
                code = 0 if c is c1 and c.version() == "0.1" else 3
                hs.release(c)
                hs.release(c)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c1.alive and c1.version() == "0.1" and srv.stats.fins == 0
        hs.release(c2)
        assert not c1.alive and hs.shared_clients() == []
        deadline = time.monotonic() + 2
        while srv.stats.fins == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.stats.fins == 1
        os.unlink(other)
    with pytest.raises(hs.HandshakeError, match="no device-plugin socket"):
        hs.acquire(str(tmp_path / "nothing"))
    (tmp_path / "plain").write_text("")
    with pytest.raises(hs.HandshakeError, match="not a Unix socket"):
        hs.acquire(str(tmp_path / "plain"))


def test_client_and_server_end_to_end_over_the_socket(tmp_path, xskmap):
    me = socket.gethostname()
    v = us.PodResourcesValidator(pod_lookup(me, "default", RES, ["ens1"]), RES)
    with us.UdsServer(str(tmp_path / "afxdp.sock"), {"ens1": xskmap}, v) as srv:
        with hs.HandshakeClient(srv.path, timeout=3) as c:
            assert c.version() == hs.HANDSHAKE_VERSION
            fd = c.xsk_map_fd("ens1")
            assert sysbpf.map_info(fd).id == sysbpf.map_info(xskmap).id
            with pytest.raises(hs.HandshakeError, match="/fd_nak"):
                c.xsk_map_fd("ens2")
        assert [t[0] for t in srv.transcript] == [
            f"/connect,{me}",
            "/version",
            "/xsk_map_fd,ens1",
            "/xsk_map_fd,ens2",
            "/fin",
        ]
        assert srv.stats.sessions_ok == 1


# ---------------------------------------------------------------------------------------------
# xskdev's uds_path, up to the socket (no AF_XDP needed: these fail before it)


def test_xskdev_uds_path_errors_come_before_any_socket(tmp_path):
    from cndp.mem import Umem
    from cndp.xskdev.xskdev import XskConfig, XskDev

    with Umem(4096) as umem:
        with pytest.raises(ConfigError, match="two ways to get"):
            XskDev(XskConfig("lo", uds_path="/x.sock", xsk_pin_path="/y"), umem)
        with pytest.raises(hs.HandshakeError, match="no device-plugin socket"):
            XskDev(XskConfig("lo", uds_path=str(tmp_path / "none.sock")), umem)
        # refused by the device plugin: the error names the pod, nothing stays connected
        with us.UdsServer(str(tmp_path / "dp.sock"), {"lo": 0}, us.AllowPods("someone")) as srv:
            with pytest.raises(hs.HandshakeError, match="refused pod"):
                XskDev(XskConfig("lo", uds_path=srv.path), umem)
        assert hs.shared_clients() == []


def test_close_after_the_dp_dropped_an_idle_connection_is_quiet(tmp_path, caplog):
    with us.UdsServer(str(tmp_path / "dp.sock"), {}, us.AllowPods(), idle_timeout=0.2) as srv:
        c = hs.HandshakeClient(srv.path, pod="podA", timeout=3)
        c.connect()
        deadline = time.monotonic() + 3
        while srv.stats.timeouts == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        with caplog.at_level(logging.DEBUG, "cndp.k8s.handshake"):
            c.close()
        assert "already closed" in caplog.text and "no clean /fin" not in caplog.text
        assert [e.request for e in c.transcript] == ["/connect,podA"]  # no /fin sent
