"""Structured logs: JSON lines off a terminal, text on one, level at run time (workers too)."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cndp.telemetry import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    if logs._handler is not None:
        root.removeHandler(logs._handler)
        logs._handler = None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_when_not_a_terminal():
    buf = io.StringIO()
    logs.setup("info", app="cndpfwd", stream=buf)
    log = logging.getLogger("cndp.test")
    log.debug("hidden")
    log.info("hello %s", "world", extra={"lport": "eth0:0", "obj": object()})
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("it failed")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert list(first)[:4] == ["time", "level", "logger", "msg"]
    assert first["msg"] == "hello world" and first["level"] == "info"
    assert first["logger"] == "cndp.test" and first["app"] == "cndpfwd"
    assert first["pid"] == os.getpid() and first["lport"] == "eth0:0"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert first["obj"].startswith("<object")
    second = json.loads(lines[1])
    assert second["level"] == "error" and "ValueError: bad" in second["exc"]


def test_text_on_a_terminal():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            logs.setup("warning", stream=tty)
            logging.getLogger("cndp.x").warning("careful")
            tty.flush()
        got = os.read(master, 1000).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert got.strip() == "WARNING cndp.x: careful"


def test_setup_twice_does_not_stack_handlers():
    buf = io.StringIO()
    logs.setup("info", stream=buf)
    logs.setup("info", stream=buf)
    logging.getLogger("cndp.y").info("once")
    assert len(buf.getvalue().splitlines()) == 1


def test_levels_cndp_and_python_names():
    assert logs.parse_level(8) == logging.DEBUG
    assert logs.parse_level("6") == logging.INFO
    assert logs.parse_level(" NOTICE ") == logging.INFO
    assert logs.parse_level("err") == logging.ERROR
    assert logs.parse_level("critical") == logging.CRITICAL
    for bad in (0, 9, "loud", "", True, None, 1.5, "٣"):
        with pytest.raises(logs.LogLevelError):
            logs.parse_level(bad)
    logs.setup("warning", stream=io.StringIO())
    assert logs.set_level("debug") == "debug" and logs.get_level() == "debug"
    assert logs.set_level(4) == "error"


def test_a_forked_worker_follows_the_level_of_the_main_process():
    logs.setup("warning", stream=io.StringIO())
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.read(go_r, 1)  # wait until the parent changed the level
        before = logging.getLogger().level
        logs.follow()
        os.write(w, f"{before} {logging.getLogger().level}".encode())
        os._exit(0)
    os.close(w)
    logs.set_level("debug")
    os.write(go_w, b"x")
    got = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    for fd in (r, go_r, go_w):
        os.close(fd)
    assert got == f"{logging.WARNING} {logging.DEBUG}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(-5, 100)))
def test_fuzz_parse_level(value):
    try:
        lvl = logs.parse_level(value)
    except logs.LogLevelError as e:
        assert "fix:" in str(e)
    else:
        assert lvl in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, 50)
