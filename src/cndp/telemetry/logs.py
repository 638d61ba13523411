"""Structured logging: JSON lines when stderr is not a terminal, a readable line when it is.

    from cndp.telemetry import logs
    logs.setup("info", app="cndpfwd")          # once, in the main process, before forking
    logs.set_level("debug")                    # at run time (REST, telemetry socket, CLI)
    logs.get_level()                           # "debug"

JSON record (one object per line, keys in this order)::

    {"time": "2026-11-25T10:00:00.123Z", "level": "warning", "logger": "cndp.runtime",
     "msg": "...", "app": "cndpfwd", "process": "fwd:0", "pid": 1234, ...extra fields...,
     "exc": "Traceback ..."}

``extra={...}`` fields of a logging call are added to the record. Levels are Python's names
(debug, info, warning, error, critical) or CNDP's (1..8 and emerg, alert, crit, err, warning,
notice, info, debug; see :func:`parse_level`).

The level lives in one shared-memory cell as well as in the root logger: worker processes
forked after :func:`setup` call :func:`follow` (a single integer compare) when they publish
their counters, so a level set in the main process reaches them within a publish period.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from typing import IO, Any

from ..errors import CndpError

__all__ = [
    "JsonFormatter",
    "LogLevelError",
    "follow",
    "get_level",
    "level_names",
    "parse_level",
    "set_level",
    "setup",
]

# CNDP's levels (cne_log.h: 1 emerg .. 8 debug) mapped onto Python's
CNDP_LEVELS = {
    1: logging.CRITICAL,
    2: logging.CRITICAL,
    3: logging.CRITICAL,
    4: logging.ERROR,
    5: logging.WARNING,
    6: logging.INFO,
    7: logging.INFO,
    8: logging.DEBUG,
}
NAMES = {
    "emerg": 1,
    "emergency": 1,
    "alert": 2,
    "crit": 3,
    "critical": 3,
    "err": 4,
    "error": 4,
    "warning": 5,
    "warn": 5,
    "notice": 6,
    "info": 7,
    "debug": 8,
}
PY_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# attributes every LogRecord has: anything else came from extra={...}
_STD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class LogLevelError(CndpError):
    """A log level that is neither a CNDP level (1..8, emerg..debug) nor a Python one."""


def parse_level(level: str | int) -> int:
    """A Python logging level from CNDP's (1..8 or a name) or Python's level names."""
    if isinstance(level, bool):
        raise LogLevelError(f"log level {level!r} is not a level", fix=_FIX)
    if isinstance(level, int):
        if 1 <= level <= 8:
            return CNDP_LEVELS[level]
        raise LogLevelError(f"log level {level} is outside 1..8", fix=_FIX)
    if not isinstance(level, str):
        raise LogLevelError(f"log level {level!r} is not a string or a number", fix=_FIX)
    t = level.strip().lower()
    if t.isdigit() and t.isascii():
        return parse_level(int(t))
    if t in NAMES:
        return CNDP_LEVELS[NAMES[t]]
    raise LogLevelError(f"unknown log level {level[:40]!r}", fix=_FIX)


_FIX = "use 1..8 or emerg, alert, crit, err, warning, notice, info, debug"


def level_names() -> list[str]:
    return ["debug", "info", "warning", "error", "critical"]


def _name_of(level: int) -> str:
    return PY_NAMES.get(level, logging.getLevelName(level).lower())


class JsonFormatter(logging.Formatter):
    """One JSON object per record; never raises on odd values (they become strings)."""

    def __init__(self, app: str = ""):
        super().__init__()
        self.app = app

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": _name_of(record.levelno),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.app:
            out["app"] = self.app
        proc = record.processName
        if proc and proc != "MainProcess":
            out["process"] = proc
        out["pid"] = record.process
        for k, v in record.__dict__.items():
            if k not in _STD_ATTRS and not k.startswith("_") and k not in out:
                out[k] = v
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")


# --------------------------------------------------------------------------------------------
# level, shared with the workers

_lock = threading.Lock()
_shared: Any = None  # numpy uint64 cell in shared memory, created by setup()
_seen = 0
_handler: logging.Handler | None = None


def _cell():
    global _shared
    if _shared is None:
        from .registry import shared_zeros

        _shared = shared_zeros(1)
    return _shared


def setup(
    level: str | int = "warning",
    *,
    app: str = "",
    stream: IO[str] | None = None,
    json_lines: bool | None = None,
) -> logging.Handler:
    """Configure the root logger: one handler on ``stream`` (default stderr).

    ``json_lines`` None = JSON unless the stream is a terminal. Replaces a handler installed
    by an earlier call (so tests and re-runs do not stack handlers).
    """
    global _handler, _seen
    lvl = parse_level(level) if not _is_py_level(level) else int(level)
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        try:
            json_lines = not stream.isatty()
        except (AttributeError, ValueError):
            json_lines = True
    h = logging.StreamHandler(stream)
    h.setFormatter(JsonFormatter(app) if json_lines else TextFormatter())
    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(h)
        _handler = h
        root.setLevel(lvl)
        _cell()[0] = lvl
        _seen = lvl
    return h


def _is_py_level(level: object) -> bool:
    return isinstance(level, int) and not isinstance(level, bool) and level in PY_NAMES


def set_level(level: str | int) -> str:
    """Set the level of the whole application; returns its name. Raises LogLevelError."""
    global _seen
    lvl = int(level) if _is_py_level(level) else parse_level(level)
    with _lock:
        logging.getLogger().setLevel(lvl)
        _cell()[0] = lvl
        _seen = lvl
    logging.getLogger("cndp.logs").info("log level set to %s", _name_of(lvl))
    return _name_of(lvl)


def get_level() -> str:
    return _name_of(logging.getLogger().getEffectiveLevel())


def follow() -> None:
    """In a worker: take the level the main process set (cheap; call it periodically)."""
    global _seen
    cell = _shared
    if cell is None:
        return
    lvl = int(cell[0])
    if lvl != _seen and lvl:
        _seen = lvl
        logging.getLogger().setLevel(lvl)
