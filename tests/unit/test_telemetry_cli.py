"""The CNDP-cli shell: commands, line editing, the socket server, cnectl, and fuzzing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.telemetry import logs
from cndp.telemetry.app import register_app_commands
from cndp.telemetry.cli import BANNER, CliServer, CliSession, CliTree, LineEditor, add_app_commands
from cndp.telemetry.uds import CommandTable, TelemetryServer

from .test_telemetry_uds import make_app

CNECTL = str(Path(sys.executable).with_name("cnectl"))


def app_tree():
    ctl, reg = make_app()
    table = CommandTable()
    register_app_commands(table, ctl)
    tree = CliTree()
    add_app_commands(tree, ctl, table)
    return tree, ctl, reg, table


class Out:
    def __init__(self):
        self.parts: list[str] = []

    def __call__(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        s = "".join(self.parts)
        self.parts.clear()
        return s


def session(tree=None, **kw):
    out = Out()
    return CliSession(tree or app_tree()[0], out, **kw), out


def test_navigation_and_listing():
    s, out = session()
    assert s.prompt() == "CNDP-cli:/> "
    s.execute("ls")
    assert out.take().split() == ["sbin/", "bin/", "cndp-version"]
    s.execute("cd /sbin")
    assert s.prompt() == "CNDP-cli:/sbin> "
    s.execute("pwd")
    assert out.take() == "/sbin\n"
    s.execute("cd ..")
    s.execute("pwd")
    assert out.take() == "/\n"
    s.execute("cd nowhere")
    assert out.take() == "** Invalid directory: nowhere\n"
    s.execute("ls -l /bin")
    listing = out.take()
    assert "  stats            command  : port statistics" in listing
    s.execute("ls -x")
    assert "unknown option" in out.take()
    s.execute("more /cndp-version")
    assert out.take().startswith("CNDP ")
    s.execute("sbin")
    assert "is a directory" in out.take()


def test_help_history_and_errors():
    s, out = session()
    s.execute("help")
    text = out.take()
    assert "/sbin:" in text and "/bin:" in text and "  ip " in text
    s.execute("help ip")
    assert "ip link" in out.take()
    s.execute("ip -?")
    assert out.take().startswith("usage: ip link")
    s.execute("? ls")
    assert "usage: ls" in out.take()
    s.execute("echo one two")
    s.execute("echo 'three four'")
    assert out.take() == "one two\nthree four\n"
    s.execute("history")
    assert out.take().splitlines()[-3:] == [
        "   5: echo one two",
        "   6: echo 'three four'",
        "   7: history",
    ]
    s.execute("!5")
    assert out.take() == "echo one two\none two\n"
    s.execute("!99")
    assert "no history line" in out.take()
    s.execute("nosuchcmd")
    assert out.take() == "** command not found: nosuchcmd (try 'help')\n"
    s.execute("echo 'unbalanced")
    assert out.take().startswith("** cannot parse the line")
    s.execute("# a comment")
    assert out.take() == ""
    assert s.execute("quit") is False and s.done


def test_app_commands(monkeypatch):
    tree, ctl, reg, _ = app_tree()
    s, out = session(tree)
    reg.block("lport").publish("eth1:0", {"ipackets": 1234567, "ibytes": 99, "imissed": 3})
    s.execute("stats")
    lines = out.take().splitlines()
    assert lines[0].split()[:3] == ["name", "RX", "packets"]
    assert lines[2].split()[:3] == ["eth1:0", "1,234,567", "99"]
    s.execute("stats eth1:0")
    assert "  imissed" in out.take()
    s.execute("stats netdev")
    assert out.take().splitlines()[2].split()[:2] == ["eth1", "1,234,567"]
    reg.block("worker").publish("fwd:0", {"pid": 7, "loops": 2560})
    s.execute("stats workers")
    assert out.take().splitlines()[1].split()[:3] == ["fwd:0", "7", "2,560"]
    s.execute("stats nope")
    assert "no lport nope" in out.take()
    s.execute("stop fwd:0")
    assert out.take() == "fwd:0: paused\n" and list(ctl.pause) == [1, 0]
    s.execute("threads")
    assert "fwd:0        fwd      g0         paused" in out.take()
    s.execute("start all")
    assert list(ctl.pause) == [0, 0]
    out.take()
    s.execute("stop nobody")
    assert out.take() == "** Thread 'nobody' not found\n"
    s.execute("ports")
    assert "eth0:0         eth0           11 net_af_xdp     fwd:0" in out.take()
    s.execute("telemetry /app/appname")
    assert json.loads(out.take()) == {"name": "cndpfwd"}
    s.execute("ip link show lo")
    assert out.take().startswith("1: lo: <LOOPBACK")
    s.execute("ip addr lo")
    assert "inet 127.0.0.1/8" in out.take()
    s.execute("ip link show nosuchdev0")
    assert out.take() == '** Device "nosuchdev0" does not exist.\n'
    level = logs.get_level()
    try:
        s.execute("loglevel debug")
        assert out.take() == "log level: debug\n" and logs.get_level() == "debug"
        s.execute("loglevel 99")
        assert "outside 1..8" in out.take()
    finally:
        logs.set_level(level)


def test_line_editor_keys():
    s, out = session()
    ed = LineEditor(s, out)
    ed.feed(b"ecko\x7f\x7fho hi\r\n")  # backspaces; CRLF is one Enter
    assert out.take() == "ecko\b \b\b \bho hi\nhi\nCNDP-cli:/> "
    ed.feed(b"garbage\x15echo again\n")  # Ctrl-U erases the line
    assert out.take().endswith("again\nCNDP-cli:/> ")
    ed.feed(b"\x1b[A")  # Up: the last line comes back
    assert ed.buf == list("echo again")
    ed.feed(b"\x1b[A\x1b[B\x1b[B")  # up, down, down past the end: empty line
    assert ed.buf == []
    out.take()
    ed.feed(b"hist\t")  # completes the command
    assert ed.buf == list("history ")
    ed.feed(b"\x03")  # Ctrl-C drops it
    assert ed.buf == [] and out.take().endswith("^C\nCNDP-cli:/> ")
    ed.feed(b"ls /sb\t")
    assert "".join(ed.buf) == "ls /sbin/"
    ed.feed(b"\x15\xc3\xa9\n")  # UTF-8 input
    assert "** command not found: é" in out.take()
    assert ed.feed(b"\x04") is False  # Ctrl-D on an empty line ends the session


def test_silent_mode_prints_only_output():
    s, out = session()
    ed = LineEditor(s, out)
    assert ed.feed(b"silent\necho batch\nquit\n") is False
    assert out.take() == "batch\n"


def _serve(tmp_path):
    tree, ctl, reg, table = app_tree()
    return CliServer(str(tmp_path / "cli.sock"), tree).start(), ctl, reg, table


def test_socket_session_and_cnectl_batch(tmp_path):
    srv, ctl, reg, _ = _serve(tmp_path)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(srv.path)
        c.settimeout(5)
        got = b""
        while not got.endswith(b"CNDP-cli:/> "):
            got += c.recv(4096)
        assert got == (BANNER + "CNDP-cli:/> ").encode()
        c.sendall(b"pwd\r")
        got = b""
        while not got.endswith(b"> "):
            got += c.recv(4096)
        assert got == b"pwd\n/\nCNDP-cli:/> "
        c.sendall(b"quit\n")
        rest = b""
        while chunk := c.recv(4096):
            rest += chunk
        assert rest == b"quit\n"  # then EOF: the server closed the session
        c.close()
        reg.block("lport").publish("eth0:0", {"ipackets": 42})
        t0 = time.monotonic()
        r = subprocess.run(
            [CNECTL, "-s", srv.path, "stats"], capture_output=True, text=True, timeout=20
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0].startswith("name") and "CNDP-cli" not in r.stdout
        assert r.stdout.splitlines()[1].split()[:2] == ["eth0:0", "42"]
        assert time.monotonic() - t0 < 10
        r = subprocess.run(
            [CNECTL, "-s", srv.path, "stop", "fwd:1"], capture_output=True, text=True, timeout=20
        )
        assert r.stdout == "fwd:1: paused\n" and list(ctl.pause) == [0, 1]
    finally:
        srv.close()
    assert not os.path.exists(srv.path)


def test_cnectl_telemetry_mode_and_errors(tmp_path):
    _, _ctl, _, table = app_tree()
    srv = TelemetryServer(str(tmp_path / "app_socket.1"), table=table).start()
    try:
        r = subprocess.run(
            [CNECTL, "-s", srv.path, "/info", "/app/appname"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert lines[0]["pid"] == os.getpid() and lines[1] == {"name": "cndpfwd"}
        r = subprocess.run(
            [CNECTL, "-s", srv.path, "/nope"], capture_output=True, text=True, timeout=20
        )
        assert r.returncode == 1 and json.loads(r.stdout) == {"error": "invalid cmd (/nope)"}
        # interactive prompt, fed from a pipe
        r = subprocess.run(
            [CNECTL, "-s", srv.path],
            input="/app/appname\nquit\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert r.returncode == 0 and '{"name": "cndpfwd"}' in r.stdout
    finally:
        srv.close()
    r = subprocess.run(
        [CNECTL, "-s", str(tmp_path / "gone"), "ls"], capture_output=True, text=True, timeout=20
    )
    assert r.returncode == 1 and r.stderr.startswith("cnectl: cannot connect")
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------------------------
# fuzzing: any line, any keystrokes: a message or a result, never a crash or a hang

WORDS = st.sampled_from(
    [
        "ls",
        "ls -l",
        "ls -r",
        "cd",
        "cd /bin",
        "cd ..",
        "pwd",
        "help",
        "?",
        "chelp",
        "history",
        "!1",
        "!!",
        "!",
        "echo",
        "version",
        "sleep",
        "sleep 0",
        "sleep 1e9",
        "more",
        "clear",
        "path",
        "stats",
        "stats workers",
        "stats netdev",
        "stats eth0:0",
        "ports",
        "threads",
        "stop",
        "start",
        "stop all",
        "start fwd:0",
        "ip",
        "ip link",
        "ip addr show lo",
        "loglevel",
        "loglevel 9",
        "telemetry",
        "telemetry /",
        "telemetry /app/stop,all",
        "-?",
        "'",
        '"',
        "\\",
        "#",
        "..",
        "/",
        "/sbin/ls",
        "/bin/",
        "$(x)",
        "\x00",
        "\t",
    ]
)
LINES = st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=5))
def test_fuzz_cli_lines_never_crash(lines):
    tree, _ctl, _, _ = app_tree()
    s, out = session(tree, max_sleep=0.01)
    level = logs.get_level()
    try:
        for line in lines:
            t0 = time.monotonic()
            keep_going = s.execute(line)
            assert time.monotonic() - t0 < 5
            if not keep_going:
                break
    finally:
        logs.set_level(level)
    assert "Traceback" not in out.take()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_fuzz_raw_keystrokes_never_crash(data, silent):
    tree, _, _, _ = app_tree()
    s, out = session(tree, max_sleep=0.01)
    s.silent = silent
    ed = LineEditor(s, out)
    level = logs.get_level()
    try:
        ed.feed(data)
    finally:
        logs.set_level(level)
    assert len(ed.buf) <= 1024
    assert "internal error" not in out.take()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(min_size=1, max_size=300))
def test_fuzz_the_socket_server(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("cli")
    srv, _, _, _ = _serve(tmp)
    level = logs.get_level()
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(srv.path)
        c.settimeout(5)
        data = data.replace(b"\x04", b"")  # Ctrl-D would end the session on purpose
        c.sendall(data + b"\x15\nsilent\necho alive\n")
        got = b""
        while b"alive\n" not in got:
            chunk = c.recv(4096)
            if not chunk:  # only "quit"/"q" may end it
                assert b"q" in data, f"session closed early: {got[-200:]!r}"
                break
            got += chunk
        c.close()
    finally:
        srv.close()
        logs.set_level(level)


@pytest.mark.parametrize("line", ["quit", "q"])
def test_quit_calls_on_quit(line):
    called = []
    s, _ = session(on_quit=lambda: called.append(1))
    assert s.execute(line) is False and called == [1]


def test_local_shell_on_a_terminal_restores_it():
    import termios

    from cndp.telemetry.cli import LocalShell

    master, slave = os.openpty()
    quit_called = []
    before = termios.tcgetattr(slave)
    shell = LocalShell(
        app_tree()[0], infd=slave, outfd=slave, on_quit=lambda: quit_called.append(1)
    ).start()
    try:
        raw = termios.tcgetattr(slave)
        assert not raw[3] & (termios.ECHO | termios.ICANON) and raw[3] & termios.ISIG
        os.write(master, b"echo hi\r")
        got = b""
        deadline = time.monotonic() + 5
        while b"hi\r\nCNDP-cli:/> " not in got and time.monotonic() < deadline:
            got += os.read(master, 4096)
        assert got.startswith(BANNER.replace("\n", "\r\n").encode()), got
        assert b"echo hi\r\nhi\r\nCNDP-cli:/> " in got
        os.write(master, b"quit\r")
        deadline = time.monotonic() + 5
        while not quit_called and time.monotonic() < deadline:
            time.sleep(0.01)
        assert quit_called == [1]
    finally:
        shell.close()
        after = termios.tcgetattr(slave)
        os.close(master)
        os.close(slave)
    assert after == before
