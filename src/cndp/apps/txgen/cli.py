"""txgen's command language (CNDP txgen / pktgen): parsing, dispatch, save and load.

:meth:`Cli.execute` takes one line and returns a :class:`Result`; it never raises for bad
input (an unknown command, a value out of range, an unreadable file all come back as a
result with ``ok=False`` and a message that says what is wrong and how to fix it). Settings
change through :class:`~.state.TxgenState`; what needs the running generator (start, stop,
clear, capture, pages) goes to an :class:`Actions` object.

Port lists are ``2,4,6-9,12`` or ``all``. Scripts (``load``/``save``, ``-f``) are lines of
commands; ``#`` starts a comment line.
"""

from __future__ import annotations

import ipaddress
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import CndpError
from ...net import build as nb
from .state import TxgenState, parse_portlist, set_type
from .stream import (
    ENGINES,
    FCS_LEN,
    FIELD_NAMES,
    MAX_SIZE,
    MIN_SIZE,
    PATTERNS,
    RANGE_FIELDS,
    PortSettings,
    Range,
    TxgenError,
    parse_ip,
    parse_mac,
)

PROMPT = "TXGen:/> "
MAX_LOAD_DEPTH = 8
MAX_LINE = 4096

HELP = """\
TXGen commands (<pl> = port list: 0, 0-1, 0,2 or all)
  start <pl> | stop <pl>              start/stop transmitting (str / stp = all ports)
  set <pl> count <n>                  packets to send per start (0 = until stopped)
  set <pl> size <n>                   packet size with FCS, 64..MTU (a 64-byte packet is 60 bytes)
  set <pl> rate <percent>             rate as % of the link speed
  set <pl> pps <n>                    rate in packets/s (k/m suffixes; 0 = use rate)
  set <pl> burst <n>                  packets per burst (1..256)
  set <pl> sport|dport <n>            UDP/TCP ports (ICMP: echo id/sequence)
  set <pl> ttl|tos <n>                IP TTL (hop limit) / TOS (traffic class)
  set <pl> type ipv4|ipv6             packet type
  set <pl> proto udp|tcp|icmp         L4 protocol
  set <pl> src|dst mac <mac>          00:11:22:33:44:55 or 0011:2233:4455
  set <pl> src ip <addr/len> | dst ip <addr>
  set <pl> vlan <id>|off | prio <0-7> 802.1Q tag
  set <pl> pattern abc|none|zero|user payload fill; set <pl> user pattern <text> (<=16)
  set <pl> latency on|off             txgen stamp (sequence, timestamp) in each frame
  set <pl> engine port|live           port: the lport's AF_XDP/AF_PACKET socket;
                                      live: the kernel's XDP live-frames mode
  set <pl> pcap <file>                pcap file to replay (then: enable <pl> pcap)
  range <pl> <field> start|min|max|inc <value>
  range <pl> <field> <start> <min> <max> <inc>
                                      fields: dst ip, src ip, dst mac, src mac, dst port,
                                      src port, ttl, tos, vlan, size
  enable|disable <pl> range|pcap|latency|capture [file]
  enable|disable screen | on | off    live screen (Enter leaves it)
  page main|stats|range|pcap|latency  show a page
  show [<pl>]                         settings of ports
  clear <pl> stats | clr              zero counters
  reset <pl> | rst                    settings back to defaults
  save <file> | load <file>           write / run a command script
  sleep <s> | delay <ms>              pause (in scripts)
  help | quit"""


@dataclass
class Result:
    ok: bool = True
    text: str = ""
    quit: bool = False


class Actions:
    """What commands need from the running generator. This base keeps only a running set
    (enough for scripts checked without ports); the application overrides every method."""

    def __init__(self) -> None:
        self.running: set[int] = set()

    def start(self, lpids: list[int]) -> str:
        self.running.update(lpids)
        return ""

    def stop(self, lpids: list[int]) -> str:
        self.running.difference_update(lpids)
        return ""

    def clear(self, lpids: list[int]) -> str:
        return ""

    def capture(self, lpids: list[int], path: str | None) -> str:
        """Start capturing to ``path`` ("" = a default name per port) or stop (None)."""
        return ""

    def page(self, name: str) -> str:
        return f"(page {name}: no statistics without a running generator)"

    def screen(self, on: bool) -> str:
        return ""


@dataclass
class _Ctx:
    depth: int = 0
    notes: list[str] = field(default_factory=list)


class Cli:
    def __init__(self, state: TxgenState, actions: Actions | None = None) -> None:
        self.state = state
        self.actions = actions or Actions()
        self._ctx = _Ctx()

    # ----------------------------------------------------------------------------- entry
    def execute(self, line: str) -> Result:
        """Run one command line. Never raises for bad input."""
        try:
            return self._execute(line)
        except TxgenError as e:
            return Result(False, f"error: {e}")
        except CndpError as e:
            return Result(False, f"error: {e}")
        except RecursionError:
            return Result(False, "error: scripts nest too deeply")

    def _execute(self, line: str) -> Result:
        if not isinstance(line, str):
            raise TxgenError("a command must be text")
        if len(line) > MAX_LINE:
            raise TxgenError(f"command longer than {MAX_LINE} characters")
        text = line.strip()
        if not text or text.startswith("#"):
            return Result()
        if "\0" in text:
            raise TxgenError("a command cannot contain NUL characters")
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise TxgenError(f"cannot split {text!r}: {e}", fix="balance the quotes") from None
        if not words:
            return Result()
        self._ctx.notes = []
        cmd, args = words[0].lower(), words[1:]
        fn = self._commands().get(cmd)
        if fn is None:
            raise TxgenError(f"unknown command {words[0]!r}", fix="type help for the commands")
        out = fn(args, text)
        if isinstance(out, Result):
            return out
        msg = "\n".join([m for m in [*self._ctx.notes, out or ""] if m])
        return Result(True, msg)

    def _commands(self) -> dict[str, Callable[[list[str], str], str | Result | None]]:
        return {
            "help": lambda a, t: HELP,
            "?": lambda a, t: HELP,
            "quit": lambda a, t: Result(True, "", quit=True),
            "exit": lambda a, t: Result(True, "", quit=True),
            "start": self._start,
            "stop": self._stop,
            "str": lambda a, t: self._start(["all", *a], t),
            "stp": lambda a, t: self._stop(["all", *a], t),
            "set": self._set,
            "range": self._range,
            "enable": lambda a, t: self._enable(a, True),
            "disable": lambda a, t: self._enable(a, False),
            "on": lambda a, t: self.actions.screen(True),
            "off": lambda a, t: self.actions.screen(False),
            "page": self._page,
            "show": self._show,
            "clear": self._clear,
            "clear.stats": lambda a, t: self._clear([*a[:1], "stats"] if a else [], t),
            "clr": lambda a, t: self._clear(["all", "stats"], t),
            "reset": self._reset,
            "rst": lambda a, t: self._reset(["all"], t),
            "save": self._save,
            "load": self._load,
            "sleep": lambda a, t: self._sleep(a, 1.0),
            "delay": lambda a, t: self._sleep(a, 0.001),
            "cls": lambda a, t: self.actions.page("main"),
            "redisplay": lambda a, t: self.actions.page("main"),
        }

    # ----------------------------------------------------------------------------- helpers
    def _pl(self, args: list[str], usage: str) -> list[int]:
        if not args:
            raise TxgenError(f"missing port list: {usage}")
        return parse_portlist(args[0], self.state.lpids)

    def _update(self, lpids: list[int], fn: Callable[[PortSettings], None]) -> None:
        self.state.update(lpids, fn)

    # ----------------------------------------------------------------------------- start/stop
    def _start(self, args: list[str], text: str) -> str | None:
        usage = "start <portlist> [latency]"
        lpids = self._pl(args, usage)
        if len(args) > 1:
            if args[1].lower() in ("lat", "latency", "latsampler") and len(args) == 2:
                self._update(lpids, lambda s: setattr(s, "latency", True))
                return "latency stamping on"
            raise TxgenError(f"unexpected {' '.join(args[1:])!r}: {usage}")
        return self.actions.start(lpids)

    def _stop(self, args: list[str], text: str) -> str | None:
        usage = "stop <portlist> [latency]"
        lpids = self._pl(args, usage)
        if len(args) > 1:
            if args[1].lower() in ("lat", "latency", "latsampler") and len(args) == 2:
                self._update(lpids, lambda s: setattr(s, "latency", False))
                return "latency stamping off"
            raise TxgenError(f"unexpected {' '.join(args[1:])!r}: {usage}")
        return self.actions.stop(lpids)

    # ----------------------------------------------------------------------------- set
    def _set(self, args: list[str], text: str) -> str | None:
        usage = "set <portlist> <what> <value> (type help)"
        if len(args) < 2:
            raise TxgenError(f"incomplete set command: {usage}")
        lpids = self._pl(args, usage)
        what = args[1].lower()
        rest = args[2:]

        def one(name: str) -> str:
            if len(rest) != 1:
                raise TxgenError(f"set <portlist> {name} needs one value")
            return rest[0]

        if what in ("count",):
            v = parse_int(one(what), what, 0, 2**63 - 1)
            self._update(lpids, lambda s: setattr(s, "count", v))
        elif what == "size":
            v = parse_int(one(what), what, MIN_SIZE, MAX_SIZE)
            self._update(lpids, lambda s: setattr(s, "size", v))
        elif what == "rate":
            v = parse_float(one(what).rstrip("%"), "rate", 0.0, 100.0)
            self._update(lpids, lambda s: (setattr(s, "rate", v), setattr(s, "pps", 0.0)))
        elif what == "pps":
            v = parse_float(one(what), "pps", 0.0, 1e9)
            self._update(lpids, lambda s: setattr(s, "pps", v))
        elif what == "burst":
            v = parse_int(one(what), what, 1, 256)
            self._update(lpids, lambda s: setattr(s, "burst", v))
        elif what in ("sport", "dport"):
            v = parse_int(one(what), what, 0, 0xFFFF)
            self._update(lpids, lambda s: setattr(s, what, v))
        elif what in ("ttl", "tos"):
            v = parse_int(one(what), what, 0, 255)
            self._update(lpids, lambda s: setattr(s, what, v))
        elif what == "prio":
            v = parse_int(one(what), what, 0, 7)
            self._update(lpids, lambda s: setattr(s, "vlan_prio", v))
        elif what in ("vlan", "vlanid"):
            val = one(what)
            if val.lower() in ("off", "none", "disable"):

                def novlan(s: PortSettings) -> None:
                    s.vlan = None
                    s.ranges.pop("vlan", None)

                self._update(lpids, novlan)
            else:
                v = parse_int(val, "vlan", 0, 4095)

                def setv(s: PortSettings) -> None:
                    s.vlan = v
                    if s.size < s.min_size():
                        self._ctx.notes.append(f"size raised to {s.min_size()}")
                        s.size = s.min_size()

                self._update(lpids, setv)
        elif what == "type":
            typ = one(what).lower()
            for lp in lpids:
                self._update([lp], lambda s, lp=lp: self._ctx.notes.extend(set_type(s, typ, lp)))
        elif what == "proto":
            p = one(what).lower()
            if p not in nb.PROTOS:
                raise TxgenError(f"proto {p!r}: expected udp, tcp or icmp")

            def setp(s: PortSettings) -> None:
                s.proto = p
                if s.size < s.min_size():
                    self._ctx.notes.append(f"size raised to {s.min_size()}")
                    s.size = s.min_size()

            self._update(lpids, setp)
        elif what in ("src", "dst"):
            self._set_addr(lpids, what, rest)
        elif what == "pattern":
            p = one(what).lower()
            if p not in PATTERNS:
                raise TxgenError(f"pattern {p!r}: expected one of {', '.join(PATTERNS)}")
            self._update(lpids, lambda s: setattr(s, "pattern", p))
        elif what == "user":
            if not rest or rest[0].lower() != "pattern":
                raise TxgenError("usage: set <portlist> user pattern <text>")
            raw = " ".join(rest[1:])
            if len(raw.encode()) > 16:
                raise TxgenError("user pattern: at most 16 characters (pktgen's limit)")
            self._update(lpids, lambda s: setattr(s, "user_pattern", raw))
        elif what in ("latency", "lat"):
            on = parse_onoff(one(what))
            self._update(lpids, lambda s: setattr(s, "latency", on))
        elif what == "engine":
            e = one(what).lower()
            if e not in ENGINES:
                raise TxgenError(f"engine {e!r}: expected one of {', '.join(ENGINES)}")
            self._update(lpids, lambda s: setattr(s, "engine", e))
        elif what == "pcap":
            path = one(what)
            check_pcap(path)
            self._update(lpids, lambda s: setattr(s, "pcap_file", path))
        else:
            raise TxgenError(f"set: unknown setting {args[1]!r}", fix="type help for the list")
        return None

    def _set_addr(self, lpids: list[int], side: str, rest: list[str]) -> None:
        if len(rest) != 2 or rest[0].lower() not in ("mac", "ip"):
            raise TxgenError(f"usage: set <portlist> {side} mac <mac> | {side} ip <address>")
        kind, val = rest[0].lower(), rest[1]
        if kind == "mac":
            mac = parse_mac(val)
            self._update(lpids, lambda s: setattr(s, f"{side}_mac", mac))
            return
        addr, plen = parse_ip(val)
        if side == "dst" and plen is not None:
            self._ctx.notes.append(f"dst ip: prefix /{plen} ignored")
            plen = None

        def seta(s: PortSettings) -> None:
            v = 6 if s.type == "ipv6" else 4
            if ipaddress.ip_address(addr).version != v:
                raise TxgenError(
                    f"{addr} is not an IPv{v} address and the packet type is {s.type}",
                    fix=f"set <portlist> type ipv{10 - v} first",
                )
            setattr(s, f"{side}_ip", addr)
            if plen is not None:
                s.src_prefix = plen

        self._update(lpids, seta)

    # ----------------------------------------------------------------------------- range
    def _range(self, args: list[str], text: str) -> str | None:
        usage = "range <portlist> <field> start|min|max|inc <value>"
        lpids = self._pl(args, usage)
        rest = args[1:]
        fld = None
        if len(rest) >= 2 and f"{rest[0]} {rest[1]}".lower() in RANGE_FIELDS:
            fld, rest = RANGE_FIELDS[f"{rest[0]} {rest[1]}".lower()], rest[2:]
        elif rest and rest[0].lower() in RANGE_FIELDS:
            fld, rest = RANGE_FIELDS[rest[0].lower()], rest[1:]
        elif rest and rest[0].lower() in ("sport", "dport"):
            fld, rest = rest[0].lower(), rest[1:]
        if fld is None:
            raise TxgenError(
                f"range: unknown field {' '.join(rest[:2])!r}",
                fix="use dst ip, src ip, dst mac, src mac, dst port, src port, ttl, tos, "
                "vlan or size",
            )
        name = FIELD_NAMES[fld]
        if len(rest) == 2 and rest[0].lower() in ("start", "min", "max", "inc", "increment"):
            part = "inc" if rest[0].lower() == "increment" else rest[0].lower()

            def one(s: PortSettings) -> None:
                r = s.range_or_default(fld)
                setattr(r, part, parse_range_value(s, fld, rest[1], part == "inc"))
                s.ranges[fld] = r

            self._update(lpids, one)
        elif len(rest) == 4:

            def four(s: PortSettings) -> None:
                vals = [
                    parse_range_value(s, fld, v, i == 3) for i, v in enumerate(rest)
                ]  # start min max inc
                s.ranges[fld] = Range(*vals)

            self._update(lpids, four)
        elif len(rest) == 1 and rest[0].lower() in ("off", "clear", "none"):
            self._update(lpids, lambda s: s.ranges.pop(fld, None))
        else:
            raise TxgenError(
                f"usage: range <portlist> {name} start|min|max|inc <value>, or "
                f"range <portlist> {name} <start> <min> <max> <inc>"
            )
        return None

    # ----------------------------------------------------------------------------- enable
    def _enable(self, args: list[str], on: bool) -> str | None:
        word = "enable" if on else "disable"
        if args and args[0].lower() == "screen" and len(args) == 1:
            return self.actions.screen(on)
        usage = f"{word} <portlist> range|pcap|latency|capture"
        if len(args) < 2:
            raise TxgenError(f"usage: {usage}")
        lpids = self._pl(args, usage)
        what = args[1].lower()
        if what == "range":
            self._update(lpids, lambda s: setattr(s, "range_mode", on))
        elif what == "pcap":
            if on:
                for lp in lpids:
                    f = self.state.get(lp).pcap_file
                    if not f:
                        raise TxgenError(
                            f"port {lp}: no pcap file set", fix="set <portlist> pcap <file>"
                        )
                    check_pcap(f)
            self._update(lpids, lambda s: setattr(s, "pcap_mode", on))
        elif what in ("latency", "lat"):
            self._update(lpids, lambda s: setattr(s, "latency", on))
        elif what == "capture":
            if len(args) > 3:
                raise TxgenError(f"usage: {word} <portlist> capture [file]")
            if not on:
                if len(args) > 2:
                    raise TxgenError("usage: disable <portlist> capture")
                return self.actions.capture(lpids, None)
            path = args[2] if len(args) == 3 else ""
            if path and len(lpids) > 1:
                raise TxgenError("one capture file per port: give a single port with a file")
            return self.actions.capture(lpids, path)
        elif what in ("chksum", "checksum"):
            if not on:
                raise TxgenError("txgen always sends valid checksums", fix="nothing to disable")
            return "checksums are always computed"
        else:
            raise TxgenError(f"{word}: unknown feature {args[1]!r}", fix=f"usage: {usage}")
        return None

    # ----------------------------------------------------------------------------- misc
    def _page(self, args: list[str], text: str) -> str:
        if len(args) != 1:
            raise TxgenError("usage: page main|stats|range|pcap|latency")
        name = args[0].lower()
        alias = {"0": "main", "lat": "latency", "seq": "main", "stat": "stats"}
        name = alias.get(name, name)
        if name.isdigit():
            name = "main"
        if name not in ("main", "stats", "range", "pcap", "latency"):
            raise TxgenError(
                f"unknown page {args[0]!r}", fix="use main, stats, range, pcap, latency"
            )
        return self.actions.page(name)

    def _show(self, args: list[str], text: str) -> str:
        lpids = parse_portlist(args[0], self.state.lpids) if args else self.state.lpids
        if len(args) > 1:
            raise TxgenError("usage: show [<portlist>]")
        return "\n".join(describe(self.state, lp) for lp in lpids)

    def _clear(self, args: list[str], text: str) -> str | None:
        if len(args) != 2 or args[1].lower() != "stats":
            raise TxgenError("usage: clear <portlist> stats")
        return self.actions.clear(self._pl(args, "clear <portlist> stats"))

    def _reset(self, args: list[str], text: str) -> str | None:
        if len(args) != 1:
            raise TxgenError("usage: reset <portlist>")
        lpids = self._pl(args, "reset <portlist>")
        self.actions.stop(lpids)
        self.state.reset(lpids)
        return None

    def _sleep(self, args: list[str], unit: float) -> None:
        if len(args) != 1:
            raise TxgenError("usage: sleep <seconds> | delay <milliseconds>")
        v = parse_float(args[0], "delay", 0.0, 3600.0 if unit == 1.0 else 3_600_000.0)
        time.sleep(v * unit)

    def _save(self, args: list[str], text: str) -> str:
        if len(args) != 1:
            raise TxgenError("usage: save <file>")
        path = args[0]
        script = save_script(self.state)
        try:
            Path(path).write_text(script)
        except OSError as e:
            raise TxgenError(f"cannot write {path!r}: {e.strerror or e}") from None
        return f"saved {len(self.state.lpids)} port(s) to {path}"

    def _load(self, args: list[str], text: str) -> Result:
        if len(args) != 1:
            raise TxgenError("usage: load <file>")
        return self.run_script_file(args[0])

    # ----------------------------------------------------------------------------- scripts
    def run_script_file(self, path: str) -> Result:
        try:
            with open(path, encoding="utf-8", errors="strict") as f:
                text = f.read(4 << 20)
        except (OSError, UnicodeDecodeError) as e:
            msg = getattr(e, "strerror", None) or str(e)
            return Result(False, f"error: cannot read script {path!r}: {msg}")
        return self.run_script(text, source=path)

    def run_script(self, text: str, source: str = "<script>") -> Result:
        """Run every line; errors are reported with their line number and do not stop the
        rest (the result is not ok if any line failed)."""
        if self._ctx.depth >= MAX_LOAD_DEPTH:
            return Result(False, f"error: {source}: scripts load each other too deeply")
        self._ctx.depth += 1
        out, ok = [], True
        try:
            for i, line in enumerate(text.splitlines(), 1):
                r = self.execute(line)
                if not r.ok:
                    ok = False
                    out.append(f"{source}:{i}: {r.text}")
                elif r.text:
                    out.append(r.text)
                if r.quit:
                    return Result(ok, "\n".join(out), quit=True)
        finally:
            self._ctx.depth -= 1
        return Result(ok, "\n".join(out))


# --------------------------------------------------------------------------------------------
# values


_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}


def _number(text: str) -> float:
    t = text.strip().lower().replace("_", "")
    mult = 1.0
    if t and t[-1] in _SUFFIX:
        mult, t = _SUFFIX[t[-1]], t[:-1]
    v = float(t)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(text)
    return v * mult


def parse_int(text: str, name: str, lo: int, hi: int) -> int:
    try:
        f = _number(text)
    except (ValueError, OverflowError):
        raise TxgenError(
            f"{name}: {text!r} is not a number", fix=f"give an integer {lo}..{hi}"
        ) from None
    if f != int(f):
        raise TxgenError(f"{name}: {text!r} is not an integer")
    v = int(f)
    if not lo <= v <= hi:
        raise TxgenError(f"{name} {v} is out of range", fix=f"give an integer {lo}..{hi}")
    return v


def parse_float(text: str, name: str, lo: float, hi: float) -> float:
    try:
        v = _number(text)
    except (ValueError, OverflowError):
        raise TxgenError(
            f"{name}: {text!r} is not a number", fix=f"give a number {lo:g}..{hi:g}"
        ) from None
    if not lo <= v <= hi:
        raise TxgenError(f"{name} {v:g} is out of range", fix=f"give a number {lo:g}..{hi:g}")
    return v


def parse_onoff(text: str) -> bool:
    t = text.lower()
    if t in ("on", "enable", "enabled", "true", "1", "yes"):
        return True
    if t in ("off", "disable", "disabled", "false", "0", "no"):
        return False
    raise TxgenError(f"{text!r}: expected on or off")


def parse_range_value(s: PortSettings, fld: str, text: str, inc: bool) -> int:
    """A range value as an integer of the field (addresses and MACs in their own syntax;
    sizes with FCS; increments may be negative)."""
    t = text.strip()
    neg = inc and t.startswith("-")
    body = t[1:] if neg else t
    if fld in ("src_ip", "dst_ip") and ("." in body or ":" in body):
        addr, _ = parse_ip(body, s.ip_version)
        v = int(ipaddress.ip_address(addr))
        if s.ip_version == 6:
            if not inc:
                hi = nb.ip_int(getattr(s, fld)) >> 32
                if v >> 32 != hi:
                    raise TxgenError(
                        f"range {FIELD_NAMES[fld]}: {addr} differs from the port's "
                        f"{FIELD_NAMES[fld]} {getattr(s, fld)} above the last 32 bits",
                        fix=f"ranges vary the last 32 bits: set {FIELD_NAMES[fld]} first",
                    )
            v &= 0xFFFFFFFF
    elif fld in ("src_mac", "dst_mac") and (":" in body or "-" in body):
        v = int(parse_mac(body).replace(":", ""), 16)
    else:
        bits = nb.FIELD_BITS[fld]
        v = parse_int(body, f"range {FIELD_NAMES[fld]}", 0, (1 << bits) - 1 + FCS_LEN)
        if fld == "length" and not inc:
            if v < MIN_SIZE:
                raise TxgenError(f"range size {v} is below {MIN_SIZE}")
            v -= FCS_LEN
    return -v if neg else v


def check_pcap(path: str) -> None:
    """Fail early (with the reader's message) for a pcap file that cannot be replayed."""
    from ...net.pcap import PcapError, PcapReader

    try:
        with PcapReader(path) as r:
            for _ in r:
                break
    except PcapError as e:
        raise TxgenError(str(e)) from None


# --------------------------------------------------------------------------------------------
# save / describe


def save_lines(state: TxgenState, lpid: int) -> list[str]:
    """The commands that rebuild a port's settings (CNDP's xdp.cfg order, then ours)."""
    s = state.get(lpid)
    n = lpid
    lines = [
        f"set {n} count {s.count}",
        f"set {n} size {s.size}",
        f"set {n} rate {_num(s.rate)}",
        f"set {n} burst {s.burst}",
        f"set {n} sport {s.sport}",
        f"set {n} dport {s.dport}",
        f"set {n} type {s.type}",
        f"set {n} proto {s.proto}",
        f"set {n} dst ip {s.dst_ip}",
        f"set {n} src ip {s.src_ip}/{s.src_prefix}",
        f"set {n} dst mac {s.dst_mac}",
        f"set {n} src mac {s.src_mac}",
        f"set {n} pattern {s.pattern}",
        "# pycndp txgen settings",
        f"set {n} user pattern {shlex.quote(s.user_pattern)}",
        f"set {n} pps {_num(s.pps)}",
        f"set {n} ttl {s.ttl}",
        f"set {n} tos {s.tos}",
        f"set {n} prio {s.vlan_prio}",
        f"set {n} vlan {'off' if s.vlan is None else s.vlan}",
        f"set {n} latency {'on' if s.latency else 'off'}",
        f"set {n} engine {s.engine}",
    ]
    for fld, r in s.ranges.items():
        vals = [s.format_value(fld, v) for v in (r.start, r.min, r.max)]
        lines.append(f"range {n} {FIELD_NAMES[fld]} {' '.join(vals)} {r.inc}")
    lines.append(f"{'enable' if s.range_mode else 'disable'} {n} range")
    if s.pcap_file:
        lines.append(f"set {n} pcap {shlex.quote(s.pcap_file)}")
        lines.append(f"{'enable' if s.pcap_mode else 'disable'} {n} pcap")
    return lines


def _num(v: float) -> str:
    """A number as a script writes it: integral values without a fraction, others exact."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def save_script(state: TxgenState) -> str:
    out = [
        "# TX-Gen (pycndp) configuration script",
        "# load it with `load <file>` at the TXGen prompt or `txgen -f <file>`",
        "",
    ]
    for lp in state.lpids:
        s = state.get(lp)
        p = state.ports[lp]
        count = "Forever" if s.count == 0 else str(s.count)
        rate = f"{s.pps:g} pps" if s.pps else f"{s.rate:g}%"
        out += [
            f"######################### Port {lp:2d} ##################################",
            "#",
            f"# Port: {lp:2d} ({p.name}), Burst: {s.burst}, Rate: {rate}, TX Count: {count}",
            "#",
            *save_lines(state, lp),
            "",
        ]
    out.append("################################ Done #################################")
    return "\n".join(out) + "\n"


def describe(state: TxgenState, lpid: int) -> str:
    s = state.get(lpid)
    p = state.ports[lpid]
    rate = f"{s.pps:g} pps" if s.pps else f"{s.rate:g}% of {p.link_bps / 1e9:g} Gb/s"
    mode = "pcap " + s.pcap_file if s.pcap_mode else ("range" if s.range_mode else "single")
    lines = [
        f"port {lpid} {p.name} ({p.pmd}, engine {s.engine}): {mode}",
        f"  count {s.count or 'forever'}, size {s.size}, rate {rate}, burst {s.burst}",
        f"  {s.type}/{s.proto} {s.src_ip}/{s.src_prefix}:{s.sport} -> {s.dst_ip}:{s.dport}"
        f", ttl {s.ttl}, tos {s.tos}"
        + (f", vlan {s.vlan} prio {s.vlan_prio}" if s.vlan is not None else ""),
        f"  mac {s.src_mac} -> {s.dst_mac}, pattern {s.pattern}"
        + (f" {s.user_pattern!r}" if s.pattern == "user" else "")
        + f", latency {'on' if s.latency else 'off'}",
    ]
    for fld, r in s.ranges.items():
        f = s.format_value
        lines.append(
            f"  range {FIELD_NAMES[fld]}: start {f(fld, r.start)} min {f(fld, r.min)} "
            f"max {f(fld, r.max)} inc {r.inc}" + ("" if s.range_mode else " (range mode off)")
        )
    return "\n".join(lines)
