"""Install the ``afxdp`` CNI plugin on a node (the DaemonSet's ``cni`` container, or a host).

A container runtime runs a CNI plugin as a host executable found by its type name in
``/opt/cni/bin``. The plugin is Python (:mod:`cndp.k8s.cni`), and a node need not have
Python or pycndp, so the DaemonSet writes a small POSIX shell shim there instead::

    /opt/cni/bin/afxdp  ->  nsenter --target <pid> --mount -- <python> -m cndp.k8s.cni

It enters only the *mount* namespace of the DaemonSet's ``cni`` container (whose image has
Python, pycndp and ethtool); the network namespace stays the caller's, the host's, which is
where a CNI plugin must run. ``<pid>`` comes from a pid file the container writes (with the
process's start time, so a reused pid is never entered); while the container is not running
the shim answers the CNI error code 11, "try again later". Environment, stdin and stdout pass
through unchanged.

``--direct`` writes a plain wrapper instead (``exec <python> -m cndp.k8s.cni``) for a host
that has pycndp installed (a laptop, CI, a VM image).

    python -m cndp.k8s.cni_install --cni-bin-dir /opt/cni/bin \
        --pid-file /run/cndp/afxdp-cni.pid --wait            # DaemonSet: shim + holder
    python -m cndp.k8s.cni_install --cni-bin-dir /opt/cni/bin --direct   # pycndp on the host
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence

from ..errors import CndpError

PLUGIN_NAME = "afxdp"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_PID_FILE = "/run/cndp/afxdp-cni.pid"

_SHIM = """#!/bin/sh
# afxdp CNI plugin shim, written by cndp.k8s.cni_install (pycndp).
# Runs `{python} -m cndp.k8s.cni` in the mount namespace of the process named by
# {pid_file} (the cndp-afxdp DaemonSet's cni container), in the caller's network namespace.
PIDFILE={q_pid_file}
fail() {{
    printf '{{"cniVersion":"1.0.0","code":11,"msg":"%s","details":"the afxdp CNI plugin runs \
in the cndp-afxdp DaemonSet pod: wait until it is Running on this node"}}\\n' "$1"
    exit 1
}}
nth20() {{ shift 19; echo "$1"; }}
[ -r "$PIDFILE" ] || fail "afxdp CNI is not running on this node (no $PIDFILE)"
read -r pid start < "$PIDFILE" || fail "afxdp CNI pid file $PIDFILE is empty"
case "$pid$start" in ''|*[!0-9]*) fail "afxdp CNI pid file $PIDFILE is malformed" ;; esac
stat=$(cat "/proc/$pid/stat" 2>/dev/null) || fail "afxdp CNI process $pid is gone"
# the fields after "(comm) "; the start time is field 22 of the line, 20 of these
now=$(nth20 ${{stat##*) }})
[ "$now" = "$start" ] || fail "afxdp CNI process $pid is gone (its pid was reused)"
exec nsenter --target "$pid" --mount -- {q_python} -m cndp.k8s.cni "$@"
"""

_DIRECT = """#!/bin/sh
# afxdp CNI plugin, written by cndp.k8s.cni_install --direct (pycndp).
exec {q_python} -m cndp.k8s.cni "$@"
"""


class InstallError(CndpError):
    """The plugin cannot be installed where asked."""


def shim_text(python: str, pid_file: str) -> str:
    return _SHIM.format(
        python=python,
        pid_file=pid_file,
        q_python=shlex.quote(python),
        q_pid_file=shlex.quote(pid_file),
    )


def direct_text(python: str) -> str:
    return _DIRECT.format(q_python=shlex.quote(python))


def proc_starttime(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError as e:
        raise InstallError(f"no process {pid}: {e.strerror}", fix="give --pid a live pid") from None
    rest = stat.rsplit(") ", 1)[1].split()
    return int(rest[19])


def _write_atomic(path: str, text: str, mode: int) -> None:
    d = os.path.dirname(path) or "."
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{os.path.basename(path)}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)  # a runtime exec'ing the plugin never sees half a file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise InstallError(
            f"cannot write {path}: {e.strerror}",
            errno=e.errno,
            fix="mount the host directory writable into the container",
        ) from None


def install(
    bin_dir: str,
    *,
    python: str = sys.executable,
    pid_file: str | None = DEFAULT_PID_FILE,
    pid: int | None = None,
    direct: bool = False,
) -> str:
    """Write ``<bin_dir>/afxdp`` (and, for the shim, the pid file). Returns the plugin path."""
    target = os.path.join(bin_dir, PLUGIN_NAME)
    if direct:
        _write_atomic(target, direct_text(python), 0o755)
        return target
    if not pid_file:
        raise InstallError("the shim needs --pid-file", fix="or use --direct")
    pid = os.getpid() if pid is None else pid
    _write_atomic(pid_file, f"{pid} {proc_starttime(pid)}\n", 0o644)
    _write_atomic(target, shim_text(python, pid_file), 0o755)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="cndp-cni-install", description="install the afxdp CNI plugin (see docs/cni.md)"
    )
    ap.add_argument("--cni-bin-dir", default=DEFAULT_BIN_DIR, help="default %(default)s")
    ap.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    ap.add_argument("--pid-file", default=DEFAULT_PID_FILE, help="default %(default)s")
    ap.add_argument("--pid", type=int, help="process whose mount namespace the shim enters")
    ap.add_argument("--direct", action="store_true", help="no shim: this host has pycndp")
    ap.add_argument(
        "--wait", action="store_true", help="stay running (the shim's target); SIGTERM ends it"
    )
    args = ap.parse_args(argv)
    try:
        path = install(
            args.cni_bin_dir,
            python=args.python,
            pid_file=args.pid_file,
            pid=args.pid,
            direct=args.direct,
        )
    except InstallError as e:
        print(f"cndp-cni-install: {e}", file=sys.stderr)
        return 1
    print(f"cndp-cni-install: wrote {path}", flush=True)
    if not args.wait:
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    if not args.direct:
        # the shim now answers "try again later" instead of entering a dying container
        with contextlib.suppress(OSError):
            os.unlink(args.pid_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
