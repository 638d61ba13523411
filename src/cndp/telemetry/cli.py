"""The CLI shell: CNDP's ``CNDP-cli:/>`` on a local terminal or over a Unix socket.

A tree of directories, commands and files, like CNDP's ``cli`` library: commands are found in
the current directory, then in the bin directories (``/sbin``: the shell's own commands;
``/bin``: the application's). Built in: ``ls [-l] [-r] [dir]``, ``cd``, ``pwd``,
``help``/``chelp``/``?`` ``[-a] [cmd]``, ``history``, ``!N``, ``echo``, ``version``,
``sleep``, ``more``, ``clear``/``scrn.clear``, ``path``, ``quit``/``q``. Any command
followed by ``-?`` prints its usage. The application commands (``stats``, ``ports``,
``threads``, ``start``/``stop``, ``ip link``/``ip addr``, ``loglevel``, ``telemetry``) come
from :func:`add_app_commands`.

Two ends:

- :class:`CliServer`: an AF_UNIX **SOCK_STREAM** socket carrying raw terminal bytes both
  ways (CNDP's csock + cnectl): the client switches its terminal to non-canonical, no-echo
  mode and relays keystrokes; the server edits the line (echo, backspace, Ctrl-U, Ctrl-C,
  Up/Down history, Tab completion) and runs it. A session that starts with ``silent\\n``
  (cnectl's batch mode: ``silent\\n<cmd>\\nquit\\n``) gets no banner, no prompt and no echo.
- :class:`LocalShell`: the same line editor on this process's terminal (or on piped stdin).

Every line is parsed with shell quoting rules; a bad line prints one ``**`` message, never a
traceback, and the session goes on.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import select
import shlex
import socket
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import CndpError
from .uds import VERSION, _Listener

log = logging.getLogger("cndp.telemetry.cli")

__all__ = [
    "PROMPT",
    "CliServer",
    "CliSession",
    "CliTree",
    "LineEditor",
    "LocalShell",
    "Node",
    "add_app_commands",
]

PROMPT = "CNDP-cli"
MAX_LINE = 1024
MAX_HISTORY = 128
MAX_ARGS = 64
MAX_SESSIONS = 16
BANNER = f"\n** Version: {VERSION}, Command Line Interface\n"

CmdFn = Callable[["CliSession", list[str]], "int | None"]


class CliError(CndpError):
    """A path that does not exist, a name that cannot be added to the tree."""


@dataclass(eq=False)
class Node:
    name: str
    kind: str  # "dir" | "cmd" | "file" | "alias"
    parent: Node | None = None
    children: dict[str, Node] = field(default_factory=dict)
    fn: CmdFn | None = None
    help: str = ""
    usage: str = ""
    text: str | Callable[[], str] = ""  # file contents, or the line an alias runs

    def path(self) -> str:
        parts = []
        n: Node | None = self
        while n is not None and n.parent is not None:
            parts.append(n.name)
            n = n.parent
        return "/" + "/".join(reversed(parts))

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


class CliTree:
    """The directory tree; shared by every session (sessions keep their own cwd)."""

    def __init__(self, *, builtins: bool = True):
        self.root = Node("", "dir")
        self.bins: list[str] = []
        self._lock = threading.Lock()
        if builtins:
            _add_builtins(self)

    # ------------------------------------------------------------------ lookup
    def find(self, path: str, cwd: Node | None = None) -> Node | None:
        node = self.root if path.startswith("/") or cwd is None else cwd
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                node = node.parent or node
                continue
            if not node.is_dir:
                return None
            nxt = node.children.get(part)
            if nxt is None:
                return None
            node = nxt
        return node

    def resolve_cmd(self, name: str, cwd: Node) -> Node | None:
        """A command by path, else in the current directory, else in the bin directories."""
        if "/" in name:
            n = self.find(name, cwd)
            return n if n is not None and not n.is_dir else None
        n = cwd.children.get(name)
        if n is not None and n.kind in ("cmd", "alias"):
            return n
        for b in self.bins:
            d = self.find(b)
            n = d.children.get(name) if d is not None else None
            if n is not None and n.kind in ("cmd", "alias"):
                return n
        return None

    # ------------------------------------------------------------------ building
    def _add(self, path: str, node: Node) -> Node:
        parent_path, _, name = path.rstrip("/").rpartition("/")
        if not name or name in (".", "..") or any(c.isspace() for c in name):
            raise CliError(f"bad CLI node name {name!r} in {path!r}")
        with self._lock:
            parent = self.mkdir(parent_path or "/")
            if name in parent.children:
                raise CliError(f"{path} already exists in the CLI tree")
            node.name, node.parent = name, parent
            parent.children[name] = node
        return node

    def mkdir(self, path: str) -> Node:
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            nxt = node.children.get(part)
            if nxt is None:
                nxt = Node(part, "dir", node)
                node.children[part] = nxt
            elif not nxt.is_dir:
                raise CliError(f"{nxt.path()} is not a directory")
            node = nxt
        return node

    def add_dir(self, path: str, *, bin: bool = False) -> Node:
        d = self.mkdir(path)
        if bin and d.path() not in self.bins:
            self.bins.append(d.path())
        return d

    def add_cmd(self, path: str, fn: CmdFn, help: str = "", usage: str = "") -> Node:
        return self._add(path, Node("", "cmd", fn=fn, help=help, usage=usage))

    def add_file(self, path: str, text: str | Callable[[], str]) -> Node:
        return self._add(path, Node("", "file", text=text))

    def add_alias(self, path: str, line: str, help: str = "") -> Node:
        return self._add(path, Node("", "alias", text=line, help=help or f"alias: {line}"))

    def names(self) -> list[str]:
        """Every command name in the bin directories (for completion)."""
        out = []
        for b in self.bins:
            d = self.find(b)
            if d is not None:
                out += [n for n, c in d.children.items() if c.kind in ("cmd", "alias")]
        return out


class QuitSession(Exception):
    """Raised by ``quit`` to end the session."""


class CliSession:
    """One shell session: cwd, history, silent flag; runs lines and writes text."""

    def __init__(
        self,
        tree: CliTree,
        write: Callable[[str], None],
        *,
        ctx: dict | None = None,
        prompt: str = PROMPT,
        on_quit: Callable[[], None] | None = None,
        max_sleep: float = 60.0,
    ):
        self.tree = tree
        self._write = write
        self.cwd = tree.root
        self.history: list[str] = []
        self.hist_base = 1  # number of history[0]
        self.silent = False
        self.ctx = ctx if ctx is not None else {}
        self.prompt_name = prompt
        self.on_quit = on_quit
        self.max_sleep = max_sleep
        self.done = False

    # ------------------------------------------------------------------ output
    def write(self, text: str) -> None:
        self._write(text)

    def print(self, *lines: str) -> None:
        self._write("".join(f"{line}\n" for line in lines))

    def prompt(self) -> str:
        return f"{self.prompt_name}:{self.cwd.path()}> "

    # ------------------------------------------------------------------ history
    def _remember(self, line: str) -> None:
        if self.history and self.history[-1] == line:
            return
        self.history.append(line)
        if len(self.history) > MAX_HISTORY:
            drop = len(self.history) - MAX_HISTORY
            del self.history[:drop]
            self.hist_base += drop

    def _from_history(self, ref: str) -> str | None:
        if ref == "!":
            return self.history[-1] if self.history else None
        if not ref.isdigit() or not ref.isascii():
            return None
        i = int(ref) - self.hist_base
        return self.history[i] if 0 <= i < len(self.history) else None

    # ------------------------------------------------------------------ running
    def execute(self, line: str, *, depth: int = 0) -> bool:
        """Run one line; False when the session should end. Never raises."""
        try:
            self._execute(line, depth)
        except QuitSession:
            self.done = True
            if self.on_quit is not None:
                self.on_quit()
        except CndpError as e:
            self.print(f"** {e}")
        except Exception as e:  # a bug in a command: report it, keep the session
            log.exception("CLI command failed: %r", line[:200])
            self.print(f"** internal error: {type(e).__name__}: {e}")
        return not self.done

    def _execute(self, line: str, depth: int) -> None:
        line = line.strip()
        if not line or line.startswith("#"):
            return
        if line.startswith("!"):
            ref = line[1:].strip()
            found = self._from_history(ref)
            if found is None:
                self.print(f"** no history line {ref!r} (see 'history')")
                return
            self.print(found)
            line = found
            self._remember(line)
        elif depth == 0:
            self._remember(line)
        try:
            argv = shlex.split(line)
        except ValueError as e:
            self.print(f"** cannot parse the line: {e}")
            return
        if not argv:
            return
        if len(argv) > MAX_ARGS:
            self.print(f"** too many arguments ({len(argv)} > {MAX_ARGS})")
            return
        node = self.tree.resolve_cmd(argv[0], self.cwd)
        if node is None:
            d = self.tree.find(argv[0], self.cwd)
            if d is not None and d.is_dir:
                self.print(f"** {argv[0]} is a directory: use 'cd {argv[0]}'")
            else:
                self.print(f"** command not found: {argv[0]} (try 'help')")
            return
        if node.kind == "alias":
            if depth > 8:
                self.print(f"** alias {argv[0]} expands too deeply")
                return
            self._execute(f"{node.text} {shlex.join(argv[1:])}".strip(), depth + 1)
            return
        if "-?" in argv[1:]:
            self.print(node.usage or f"{node.name}: {node.help}")
            return
        assert node.fn is not None
        node.fn(self, argv)


# --------------------------------------------------------------------------------------------
# built-in commands (/sbin)


def _ls(sess: CliSession, argv: list[str]) -> None:
    long = recurse = False
    target = None
    for a in argv[1:]:
        if a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "l":
                    long = True
                elif ch == "r":
                    recurse = True
                else:
                    sess.print(f"** ls: unknown option -{ch}", "usage: ls [-l] [-r] [dir]")
                    return
        else:
            target = a
    node = sess.cwd if target is None else sess.tree.find(target, sess.cwd)
    if node is None:
        sess.print(f"Invalid directory ({target})!!")
        return
    if not node.is_dir:
        sess.print(node.name)
        return
    out: list[str] = []
    _list_dir(node, long, recurse, 0, out)
    sess.write("".join(out) + ("\n" if out and not out[-1].endswith("\n") else ""))


def _list_dir(node: Node, long: bool, recurse: bool, indent: int, out: list[str]) -> None:
    col = 0
    for child in node.children.values():
        if long:
            desc = {"cmd": child.help, "alias": child.text, "file": "", "dir": ""}[child.kind]
            kind = {"cmd": "command", "alias": "alias", "file": "file", "dir": "dir"}[child.kind]
            tail = f" : {desc}" if desc else ""
            out.append(f"  {'':{indent}}{child.name:<16} {kind:<8}{tail}".rstrip())
            out.append("\n")
        else:
            name = child.name + ("/" if child.is_dir else "")
            out.append(f"{name:<16}")
            col += 1
            if col % 5 == 0:
                out.append("\n")
        if recurse and child.is_dir:
            if not long and col % 5:
                out.append("\n")
                col = 0
            if not long:
                out.append(f"{child.path()}:\n")
            _list_dir(child, long, recurse, indent + 2, out)
            if not long and out and not out[-1].endswith("\n"):
                out.append("\n")
    if not long and col % 5:
        out.append("\n")


def _cd(sess: CliSession, argv: list[str]) -> None:
    if len(argv) < 2:
        sess.cwd = sess.tree.root
        return
    node = sess.tree.find(argv[1], sess.cwd)
    if node is None or not node.is_dir:
        sess.print(f"** Invalid directory: {argv[1]}")
        return
    sess.cwd = node


def _pwd(sess: CliSession, argv: list[str]) -> None:
    sess.print(sess.cwd.path())


def _help(sess: CliSession, argv: list[str]) -> None:
    args = [a for a in argv[1:] if a != "-a"]
    if args:
        node = sess.tree.resolve_cmd(args[0], sess.cwd)
        if node is None:
            sess.print(f"** no command {args[0]}")
            return
        sess.print(node.usage or f"  {node.name:<16} {node.help}")
        return
    sess.print(
        "*** CLI Help ***",
        "  Use <command> -? to show usage for a command",
        "  Use !<NN> to execute a history line",
        "  Use Up/Down arrows to access history commands",
        "  Use 'help <command>' for the usage of one command",
    )
    dirs = [sess.cwd] + [d for b in sess.tree.bins if (d := sess.tree.find(b)) is not None]
    seen = set()
    for d in dirs:
        if id(d) in seen:
            continue
        seen.add(id(d))
        cmds = [c for c in d.children.values() if c.kind in ("cmd", "alias")]
        if not cmds:
            continue
        sess.print(f"{d.path()}:")
        for c in cmds:
            sess.print(f"  {c.name:<16} {c.help}")


def _history(sess: CliSession, argv: list[str]) -> None:
    for i, line in enumerate(sess.history):
        sess.print(f"{i + sess.hist_base:4d}: {line}")


def _quit(sess: CliSession, argv: list[str]) -> None:
    raise QuitSession


def _echo(sess: CliSession, argv: list[str]) -> None:
    sess.print(" ".join(argv[1:]))


def _version(sess: CliSession, argv: list[str]) -> None:
    sess.print(VERSION)


def _sleep(sess: CliSession, argv: list[str]) -> None:
    try:
        secs = float(argv[1]) if len(argv) > 1 else -1.0
    except ValueError:
        secs = -1.0
    if not 0 <= secs <= sess.max_sleep:
        sess.print(f"** sleep expects seconds 0..{sess.max_sleep:g}")
        return
    time.sleep(secs)


def _clear(sess: CliSession, argv: list[str]) -> None:
    sess.write("\x1b[2J\x1b[H")


def _more(sess: CliSession, argv: list[str]) -> None:
    if len(argv) < 2:
        sess.print("usage: more <file>...")
    for name in argv[1:]:
        node = sess.tree.find(name, sess.cwd)
        if node is None or node.kind != "file":
            sess.print(f"** ({name}) is not a file")
            continue
        text = node.text() if callable(node.text) else node.text
        sess.write(text if text.endswith("\n") else text + "\n")


def _path(sess: CliSession, argv: list[str]) -> None:
    sess.print("  Path = .:" + ":".join(sess.tree.bins))


def _silent(sess: CliSession, argv: list[str]) -> None:
    sess.silent = True


def _add_builtins(tree: CliTree) -> None:
    tree.add_dir("/sbin", bin=True)
    tree.add_dir("/bin", bin=True)
    add = tree.add_cmd
    add("/sbin/ls", _ls, "list a directory", "usage: ls [-l] [-r] [dir]")
    add("/sbin/cd", _cd, "change directory", "usage: cd [dir]")
    add("/sbin/pwd", _pwd, "print the current directory")
    add("/sbin/help", _help, "list commands, or the usage of one", "usage: help [-a] [cmd]")
    tree.add_alias("/sbin/chelp", "help", "same as help")
    tree.add_alias("/sbin/?", "help", "same as help")
    add("/sbin/history", _history, "list the history (run line N with !N)")
    add("/sbin/quit", _quit, "leave the shell")
    tree.add_alias("/sbin/q", "quit", "same as quit")
    add("/sbin/echo", _echo, "print the arguments")
    add("/sbin/version", _version, "print the version")
    add("/sbin/sleep", _sleep, "wait N seconds", "usage: sleep <seconds>")
    add("/sbin/clear", _clear, "clear the screen")
    tree.add_alias("/sbin/scrn.clear", "clear", "same as clear")
    add("/sbin/more", _more, "print a file", "usage: more <file>...")
    add("/sbin/path", _path, "print the command search path")
    add("/sbin/silent", _silent, "no prompt, echo or banner (cnectl batch mode)")
    tree.add_file("/cndp-version", VERSION)


# --------------------------------------------------------------------------------------------
# application commands (/bin)


def _fmt(n: int) -> str:
    return f"{n:,}"


def add_app_commands(tree: CliTree, ctl, table=None, *, bin_dir: str = "/bin") -> None:
    """``stats``, ``ports``, ``threads``, ``start``/``stop``, ``ip``, ``loglevel`` and, with a
    telemetry command table, ``telemetry <cmd>``; ``ctl`` is an :class:`~.app.AppControl`."""
    from . import logs

    def stats(sess: CliSession, argv: list[str]) -> None:
        what = argv[1] if len(argv) > 1 else ""
        if what in ("workers", "worker"):
            ws = ctl.worker_stats()
            sess.print(
                f"{'worker':<12} {'pid':>8} {'loops':>14} {'RX packets':>14} "
                f"{'TX packets':>14} {'idle waits':>10} {'state':>8}"
            )
            for name, w in ws.items():
                state = "paused" if w.get("paused") else "running"
                sess.print(
                    f"{name:<12} {w['pid']:>8} {_fmt(w['loops']):>14} "
                    f"{_fmt(w['rx_packets']):>14} {_fmt(w['tx_packets']):>14} "
                    f"{_fmt(w['called_epoll']):>10} {state:>8}"
                )
            return
        if what in ("netdev", "netdevs", "ports"):
            rows = ctl.netdev_stats()
        elif what:
            st = ctl.port_stats()
            if what not in st:
                sess.print(f"** no lport {what} (lports: {', '.join(st) or 'none'})")
                return
            width = max(len(k) for k in st[what])
            sess.print(f"lport {what}:")
            for k, v in st[what].items():
                sess.print(f"  {k:<{width}} {_fmt(v):>18}")
            return
        else:
            rows = ctl.port_stats()
        sess.print(
            f"{'name':<14} {'RX packets':>14} {'RX bytes':>16} {'TX packets':>14} "
            f"{'TX bytes':>16} {'missed':>10} {'errors':>8}"
        )
        for name, s in rows.items():
            sess.print(
                f"{name:<14} {_fmt(s['ipackets']):>14} {_fmt(s['ibytes']):>16} "
                f"{_fmt(s['opackets']):>14} {_fmt(s['obytes']):>16} {_fmt(s['imissed']):>10} "
                f"{_fmt(s['ierrors'] + s['oerrors']):>8}"
            )

    def ports(sess: CliSession, argv: list[str]) -> None:
        sess.print(f"{'id':>3} {'lport':<14} {'netdev':<12} {'qid':>4} {'pmd':<14} thread")
        for p in ctl.ports:
            sess.print(
                f"{p.id:>3} {p.name:<14} {p.netdev:<12} {p.qid:>4} {p.pmd_name:<14} "
                f"{p.thread or '-'}"
            )

    def threads(sess: CliSession, argv: list[str]) -> None:
        sess.print(f"{'id':>3} {'thread':<12} {'type':<8} {'group':<10} {'state':<8} lports")
        for t in ctl.threads:
            state = "-" if t.type.lower() == "main" else ctl.thread_status(t.name)
            sess.print(
                f"{t.id:>3} {t.name:<12} {t.type:<8} {t.group:<10} {state:<8} " + ",".join(t.ports)
            )

    def pause_cmd(paused: bool):
        def run(sess: CliSession, argv: list[str]) -> None:
            if len(argv) < 2:
                sess.print(f"usage: {argv[0]} <thread|all>")
                return
            for t in ctl.set_paused(argv[1], paused):
                sess.print(f"{t['name']}: {t['status']}")

        return run

    def ip(sess: CliSession, argv: list[str]) -> None:
        obj = argv[1] if len(argv) > 1 else ""
        rest = argv[2:]
        if rest and rest[0] == "show":
            rest = rest[1:]
        dev = rest[0] if rest else None
        if obj in ("link", "l"):
            sess.write(_ip_link(dev))
        elif obj in ("addr", "address", "a"):
            sess.write(_ip_addr(dev))
        else:
            sess.print("usage: ip link [show [DEV]] | ip addr [show [DEV]]")

    def loglevel(sess: CliSession, argv: list[str]) -> None:
        if len(argv) > 1:
            logs.set_level(argv[1])
        sess.print(f"log level: {logs.get_level()}")

    def telemetry(sess: CliSession, argv: list[str]) -> None:
        if len(argv) < 2:
            sess.print("usage: telemetry </cmd[,param]>   e.g. telemetry /metrics/port_stats")
            return
        reply = table.dispatch(" ".join(argv[1:]).encode())
        sess.print(reply.decode() if reply is not None else "(no output)")

    add = tree.add_cmd
    add(
        f"{bin_dir}/stats",
        stats,
        "port statistics",
        "usage: stats                 lport totals\n"
        "       stats <lport>         every counter of one lport\n"
        "       stats netdev          lports summed per netdev\n"
        "       stats workers         per-worker counters",
    )
    add(f"{bin_dir}/ports", ports, "lports of the configuration")
    add(f"{bin_dir}/threads", threads, "threads and their state")
    add(f"{bin_dir}/stop", pause_cmd(True), "pause a thread", "usage: stop <thread|all>")
    add(f"{bin_dir}/start", pause_cmd(False), "resume a thread", "usage: start <thread|all>")
    add(
        f"{bin_dir}/ip",
        ip,
        "network devices of the namespace",
        "usage: ip link [show [DEV]]\n       ip addr [show [DEV]]",
    )
    add(f"{bin_dir}/loglevel", loglevel, "show or set the log level", "usage: loglevel [level]")
    if table is not None:
        add(
            f"{bin_dir}/telemetry",
            telemetry,
            "run a telemetry socket command",
            "usage: telemetry </group/cmd[,param]>",
        )


_IFF = (
    (0x1, "UP"),
    (0x2, "BROADCAST"),
    (0x8, "LOOPBACK"),
    (0x10, "POINTOPOINT"),
    (0x80, "NOARP"),
    (0x100, "PROMISC"),
    (0x1000, "MULTICAST"),
    (0x10000, "LOWER_UP"),
)
_ORDER = ("LOOPBACK", "BROADCAST", "POINTOPOINT", "MULTICAST", "NOARP", "PROMISC", "UP")


def _flags(v: int) -> str:
    names = {n for bit, n in _IFF if v & bit}
    shown = [n for n in _ORDER if n in names] + (["LOWER_UP"] if "LOWER_UP" in names else [])
    return "<" + ",".join(shown) + ">"


def _links(dev: str | None):
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links = list(ipr.get_links())
        addrs = list(ipr.get_addr())
    if dev is not None:
        links = [lk for lk in links if lk.get("IFLA_IFNAME") == dev]
        if not links:
            raise CndpError(f'Device "{dev}" does not exist.')
    return links, addrs


def _link_lines(lk) -> list[str]:
    name = lk.get("IFLA_IFNAME")
    peer = lk.get("IFLA_LINK")
    other_ns = lk.get("IFLA_LINK_NETNSID") is not None
    shown = f"{name}@if{peer}" if peer and (peer != lk["index"] or other_ns) else name
    xdp = lk.get("IFLA_XDP")
    prog = xdp.get("IFLA_XDP_PROG_ID") if xdp is not None else None
    mode = xdp.get("IFLA_XDP_ATTACHED") if xdp is not None else None
    if isinstance(mode, int):  # pyroute2 names the modes; older versions give the number
        mode = {1: "xdp", 2: "xdpgeneric", 3: "xdpoffload", 4: "xdpmulti"}.get(mode, "xdp")
    extra = f" {mode or 'xdp'}/id:{prog}" if prog else ""
    kind = "loopback" if lk["flags"] & 0x8 else "ether"
    return [
        f"{lk['index']}: {shown}: {_flags(lk['flags'])} mtu {lk.get('IFLA_MTU')}{extra} "
        f"qdisc {lk.get('IFLA_QDISC') or 'noop'} state {lk.get('IFLA_OPERSTATE') or 'UNKNOWN'}",
        f"    link/{kind} {lk.get('IFLA_ADDRESS') or '00:00:00:00:00:00'}",
    ]


def _ip_link(dev: str | None) -> str:
    links, _ = _links(dev)
    return "".join(f"{line}\n" for lk in links for line in _link_lines(lk))


def _ip_addr(dev: str | None) -> str:
    links, addrs = _links(dev)
    out = []
    for lk in links:
        out += _link_lines(lk)
        for a in addrs:
            if a["index"] != lk["index"]:
                continue
            fam = "inet" if a["family"] == socket.AF_INET else "inet6"
            scope = {0: "global", 253: "link", 254: "host"}.get(a["scope"], str(a["scope"]))
            out.append(f"    {fam} {a.get('IFA_ADDRESS')}/{a['prefixlen']} scope {scope}")
    return "".join(f"{line}\n" for line in out)


# --------------------------------------------------------------------------------------------
# the line editor (raw terminal bytes in, echo and command output out)


class LineEditor:
    """Turns raw keystrokes into lines for a session. Per-byte Python: interactive input."""

    def __init__(self, sess: CliSession, raw_write: Callable[[str], None]):
        self.sess = sess
        self.raw = raw_write
        self.buf: list[str] = []
        self.esc: bytearray | None = None
        self.cr = False
        self.hist_pos: int | None = None
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _echo(self, text: str) -> None:
        if not self.sess.silent:
            self.raw(text)

    def show_prompt(self) -> None:
        if not self.sess.silent and not self.sess.done:
            self.raw(self.sess.prompt())

    def _redraw(self) -> None:
        self._echo("\r\x1b[K" + self.sess.prompt() + "".join(self.buf))

    def feed(self, data: bytes) -> bool:
        """Process input bytes; False once the session has ended."""
        i = 0
        n = len(data)
        while i < n and not self.sess.done:
            if not self.buf and self.esc is None and data.startswith(b"silent", i):
                end = i + 6
                if end < n and data[end] in b"\r\n":
                    # cnectl batch mode: be silent before echoing anything
                    self.sess.silent = True
                    i = end + 1
                    self.cr = data[end] == 0x0D
                    continue
            self._byte(data[i])
            i += 1
        return not self.sess.done

    def _byte(self, b: int) -> None:
        if self.esc is not None:
            self.esc.append(b)
            if len(self.esc) == 2 and b not in (0x5B, 0x4F):  # not ESC [ / ESC O
                self.esc = None
            elif len(self.esc) > 2 and 0x40 <= b <= 0x7E:
                seq, self.esc = bytes(self.esc), None
                if seq[-1:] == b"A":
                    self._history(-1)
                elif seq[-1:] == b"B":
                    self._history(1)
            elif len(self.esc) > 16:
                self.esc = None
            return
        cr, self.cr = self.cr, False
        if b == 0x1B:
            self.esc = bytearray(b"\x1b")
        elif b == 0x0D:
            self.cr = True
            self._enter()
        elif b == 0x0A:
            if not cr:
                self._enter()
        elif b in (0x7F, 0x08):
            if self.buf:
                self.buf.pop()
                self._echo("\b \b")
        elif b == 0x03:  # Ctrl-C: drop the line
            self.buf = []
            self._echo("^C\n")
            self.show_prompt()
        elif b == 0x04:  # Ctrl-D on an empty line: leave
            if not self.buf:
                self._echo("\n")
                self.sess.done = True
        elif b == 0x15:  # Ctrl-U: erase the line
            self.buf = []
            self._redraw()
        elif b == 0x0C:  # Ctrl-L
            self._echo("\x1b[2J\x1b[H")
            self._redraw()
        elif b == 0x09:
            self._complete()
        elif b < 0x20:
            return
        else:
            text = self._dec.decode(bytes((b,)))
            if not text:
                return
            if len(self.buf) + len(text) > MAX_LINE:
                self._echo("\a")
                return
            self.buf.extend(text)
            self._echo(text)

    def _enter(self) -> None:
        line = "".join(self.buf)
        self.buf = []
        self.hist_pos = None
        self._dec.reset()
        self._echo("\n")
        self.sess.execute(line)
        self.show_prompt()

    def _history(self, step: int) -> None:
        hist = self.sess.history
        if not hist:
            return
        pos = len(hist) if self.hist_pos is None else self.hist_pos
        pos = min(max(pos + step, 0), len(hist))
        self.hist_pos = pos
        self.buf = list(hist[pos]) if pos < len(hist) else []
        self._redraw()

    def _complete(self) -> None:
        text = "".join(self.buf)
        head, _, word = text.rpartition(" ")
        if not head.strip():
            cands = set(self.sess.tree.names())
            cands |= {
                n + ("/" if c.is_dir else "")
                for n, c in self.sess.cwd.children.items()
                if c.kind in ("cmd", "alias", "dir")
            }
            base = ""
            matches = sorted(c for c in cands if c.startswith(word))
        else:
            dpart, _, prefix = word.rpartition("/")
            d = self.sess.tree.find(dpart or ("/" if word.startswith("/") else "."), self.sess.cwd)
            if d is None or not d.is_dir:
                return
            base = dpart + "/" if "/" in word else ""
            matches = sorted(
                n + ("/" if c.is_dir else "") for n, c in d.children.items() if n.startswith(prefix)
            )
            word = prefix
        if not matches:
            self._echo("\a")
            return
        common = os.path.commonprefix(matches)  # noqa: RUF071 (strings, not paths)
        if len(matches) == 1 and not common.endswith("/"):
            common += " "
        if len(common) > len(word):
            add = common[len(word) :]
            self.buf.extend(add)
            self._echo(add)
            return
        if len(matches) > 1:
            self._echo("\n" + "  ".join(base + m for m in matches) + "\n")
            self._redraw()


# --------------------------------------------------------------------------------------------
# servers


class CliServer:
    """The CLI on an AF_UNIX SOCK_STREAM socket; one thread per session."""

    def __init__(
        self,
        path: str,
        tree: CliTree,
        *,
        ctx: dict | None = None,
        max_sessions: int = MAX_SESSIONS,
    ):
        self.path = path
        self.tree = tree
        self.ctx = ctx or {}
        self.max_sessions = max_sessions
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.sessions = 0

    def start(self) -> CliServer:
        if self._thread is not None:
            return self
        self._listener = _Listener(self.path, socket.SOCK_STREAM)
        self._listener.sock.settimeout(0.5)
        self._thread = threading.Thread(target=self._accept_loop, name="cndp-cli", daemon=True)
        self._thread.start()
        log.info("CLI socket %s", self.path)
        return self

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread.is_alive():
            # wake the accept() at once: connect to ourselves
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as w:
                w.settimeout(0.2)
                w.connect(self.path)
        if self._thread is not None:
            self._thread.join(2)
        if self._listener is not None:
            self._listener.remove()
            self._listener = None

    def __enter__(self) -> CliServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        lsock = self._listener.sock
        while not self._stop.is_set():
            try:
                c, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)
                continue
            if self._stop.is_set():
                c.close()
                return
            with self._lock:
                if len(self._conns) >= self.max_sessions:
                    c.close()
                    log.warning("CLI: more than %d sessions, refusing one", self.max_sessions)
                    continue
                self._conns.add(c)
            self.sessions += 1
            threading.Thread(
                target=self._session, args=(c,), name="cndp-cli-session", daemon=True
            ).start()

    def _session(self, c: socket.socket) -> None:
        try:
            run_stream(c, self.tree, ctx=self.ctx, stop=self._stop)
        except OSError:
            pass
        except Exception:
            log.exception("CLI session failed")
        finally:
            with self._lock:
                self._conns.discard(c)
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


def run_stream(
    c: socket.socket,
    tree: CliTree,
    *,
    ctx: dict | None = None,
    stop: threading.Event | None = None,
    first_wait: float = 0.15,
) -> None:
    """Serve one session on a connected stream socket until quit, EOF or ``stop``."""
    c.settimeout(None)

    def send(text: str) -> None:
        c.sendall(text.encode("utf-8", errors="replace"))

    sess = CliSession(tree, send, ctx=ctx)
    ed = LineEditor(sess, send)
    first = b""
    # cnectl's batch mode sends "silent\n..." at once: look at it before printing a banner
    r, _, _ = select.select([c], [], [], first_wait)
    if r:
        first = c.recv(4096)
        if not first:
            return
    if not first.startswith(b"silent"):
        send(BANNER)
        ed.show_prompt()
    if first and not ed.feed(first):
        return
    while stop is None or not stop.is_set():
        r, _, _ = select.select([c], [], [], 0.5)
        if not r:
            continue
        data = c.recv(4096)
        if not data or not ed.feed(data):
            return


class LocalShell:
    """The CLI on this process's terminal (raw keystrokes) or on piped stdin (lines).

    Runs in a thread; ``quit`` calls ``on_quit`` (the application stops). End of input ends
    the shell only. :meth:`close` restores the terminal.
    """

    def __init__(
        self,
        tree: CliTree,
        *,
        ctx: dict | None = None,
        on_quit: Callable[[], None] | None = None,
        infd: int = 0,
        outfd: int = 1,
    ):
        self.tree = tree
        self.ctx = ctx or {}
        self.on_quit = on_quit
        self.infd, self.outfd = infd, outfd
        self._saved = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", errors="replace")
        while data:
            try:
                k = os.write(self.outfd, data)
            except InterruptedError:
                continue
            data = data[k:]

    def start(self) -> LocalShell:
        if os.isatty(self.infd):
            self._saved = termios.tcgetattr(self.infd)
            mode = termios.tcgetattr(self.infd)
            # as cnectl does: no echo, no line buffering, no extended processing; keep ISIG so
            # Ctrl-C still stops the application and OPOST so "\n" ends lines
            mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
            mode[6][termios.VMIN] = 1
            mode[6][termios.VTIME] = 0
            termios.tcsetattr(self.infd, termios.TCSAFLUSH, mode)
        self._thread = threading.Thread(target=self._run, name="cndp-shell", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sess = CliSession(self.tree, self._write, ctx=self.ctx, on_quit=self.on_quit)
        ed = LineEditor(sess, self._write)
        if self._saved is None:
            sess.silent = True  # piped input: no echo, no prompt
        else:
            self._write(BANNER)
            ed.show_prompt()
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([self.infd], [], [], 0.5)
                if not r:
                    continue
                data = os.read(self.infd, 4096)
                if not data:
                    if ed.buf:
                        ed.feed(b"\n")
                    return
                if not ed.feed(data):
                    return
        except OSError as e:
            log.warning("local CLI stopped: %s", e)
        finally:
            self.restore()

    def restore(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.infd, termios.TCSAFLUSH, self._saved)
            self._saved = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1)
        self.restore()
