"""cndpfwd: CNDP's reference forwarder, in Python.

    cndpfwd -c fwd.jsonc [-a xskdev|pktdev] [-b burst] [-M dst-mac] [-L level] [--no-color]
            [-C] [--duration S] <mode>

Modes: drop | rx-only, lb | loopback, tx-only, tx-only-rx, fwd. One worker process per
``fwd:*`` thread of the configuration, pinned to its lcore group, owning its lports; the main
process prints a live port-stats screen when ``options.cli`` is true, and stops everything
on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

import numpy as np

from ..app import config as cfgmod
from ..app.idle import IdleManager
from ..app.prefork import PreFork
from ..app.runtime import Runtime, WorkerSpec, install_stop_signals
from ..app.xfer import AddrRing, DescRing
from ..app.xfer_pool import RegionRouter, RoutedPool
from ..errors import CndpError, ConfigError
from ..net.frames import mac_bytes
from ..telemetry import logs
from ..telemetry import service as telemetry
from ..telemetry.control import ModeCell
from ..xskdev.xskdev import STAT_KEYS, XskDev
from . import fwd_steer
from .fwd_modes import IO, Loop, ModeChange

log = logging.getLogger("cndp.cndpfwd")

MAX_BURST = 256  # CNDP MAX_BURST_SIZE
MODES = {
    "drop": "drop",
    "rx-only": "drop",
    "lb": "loopback",
    "loopback": "loopback",
    "tx-only": "tx-only",
    "tx-only-rx": "tx-only-rx",
    "fwd": "fwd",
    "hyperscan": "hyperscan",
    "hs": "hyperscan",
    "l3fwd": "l3fwd",
    "acl-strict": "acl-strict",
    "acl-permissive": "acl-permissive",
}
# per-lport counters a steered mode adds to the lport block (and the telemetry's port stats)
STEER_COUNTERS = {
    "hyperscan": fwd_steer.HyperscanSteer.NAMES,
    "l3fwd": fwd_steer.L3fwdSteer.NAMES,
    "acl-strict": fwd_steer.AclSteer.NAMES,
    "acl-permissive": fwd_steer.AclSteer.NAMES,
}
# modes that steer packets between lports (cross-worker rings, region-routed pools)
STEERED = frozenset({"fwd", "hyperscan", "l3fwd", "acl-strict", "acl-permissive"})


class UsageError(CndpError):
    pass


def add_app_args(ap: argparse.ArgumentParser, *, burst_help: str, debug_help: str) -> None:
    """The flags every CNDP-style app of ours shares (cndpfwd, l3fwd-graph)."""
    ap.add_argument("-b", dest="burst", type=int, help=burst_help)
    ap.add_argument("-c", dest="config", help="jsonc configuration file ('-' = stdin)")
    ap.add_argument(
        "-C",
        dest="config_socket",
        action="store_true",
        help="wait for the configuration on the Unix socket <runtime-dir>/config.<pid>",
    )
    ap.add_argument(
        "--runtime-dir",
        help="directory of the -C config socket and the telemetry socket (default /var/run/cndp)",
    )
    ap.add_argument(
        "-L",
        dest="level",
        help="log level 1..8 or name (emerg..debug); default options.log-level, else warning",
    )
    ap.add_argument("--no-color", action="store_true", help="no colours on the stats screen")
    ap.add_argument(
        "-d", "-D", "-V", "-P", dest="debug", action="count", default=0, help=debug_help
    )
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    telemetry.add_arguments(ap)


def check_app_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.config is None and not args.config_socket:
        ap.error("a configuration is needed: -c FILE or -C")
    if args.burst is not None and not 1 <= args.burst <= MAX_BURST:
        ap.error(f"-b {args.burst}: burst must be 1..{MAX_BURST}")
    if args.duration is not None and not args.duration >= 0:
        ap.error(f"--duration {args.duration}: must be >= 0")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="cndpfwd",
        description="CNDP forwarder (Python): AF_XDP packet forwarding modes.",
        epilog="modes: drop|rx-only, lb|loopback, tx-only, tx-only-rx, fwd, l3fwd, acl-strict, "
        "acl-permissive, hyperscan|hs (fwd: destination lport = last octet of the destination "
        "MAC)",
    )
    ap.add_argument(
        "-a",
        dest="api",
        choices=["xskdev", "pktdev"],
        help="packet API (default: options.pkt_api, else xskdev)",
    )
    add_app_args(
        ap,
        burst_help=f"burst size, 1..{MAX_BURST} (default {MAX_BURST})",
        debug_help="more logging (CNDP's decode/verbose/parse debug flags)",
    )
    ap.add_argument(
        "-M", dest="dst_mac", help="destination MAC for tx-only frames (default ff:ff:ff:ff:ff:ff)"
    )
    ap.add_argument("mode", nargs="?", help="forwarding mode (default: options.mode)")
    args = ap.parse_args(argv)
    check_app_args(ap, args)
    return args


def _log_level(text: str) -> int:
    """-L: CNDP's 1..8 or a level name (the same table the telemetry's /app/loglevel uses)."""
    try:
        return logs.parse_level(text)
    except CndpError as e:
        raise UsageError(f"-L {text}: {e}") from None


class App:
    # what a subclass (another app on the same machinery, e.g. l3fwd-graph) may change
    PROG = "cndpfwd"
    MODES: dict[str, str] = MODES
    THREAD_TYPES: tuple[str, ...] = ("fwd",)  # threads that become worker processes
    SKIP_THREADS: tuple[str, ...] = ("main",)  # threads the main process stands for

    def __init__(self, cfg: cfgmod.Config, args: argparse.Namespace):
        self.cfg = cfg
        self.args = args
        mode = args.mode or cfg.option("mode")
        if not mode:
            raise UsageError("no mode given", fix="pass <mode> or set options.mode")
        mode = str(mode).lower()
        if mode not in self.MODES:
            raise UsageError(f"unknown mode {mode!r}", fix="use one of " + ", ".join(self.MODES))
        self.mode = self.MODES[mode]
        if self.mode != "fwd":
            self.make_steer()  # check the mode's options now, before anything is set up
        self._steers: dict[str, object] = {}  # a worker's steering functions, by mode
        api = args.api or cfg.option("pkt_api") or "xskdev"
        if api not in ("xskdev", "pktdev"):
            raise UsageError(f"options.pkt_api {api!r}: expected xskdev or pktdev")
        self.api = api
        self.burst = args.burst or int(cfg.option("burst-size", MAX_BURST) or MAX_BURST)
        self.dst_mac = None
        if args.dst_mac:
            try:
                mac_bytes(args.dst_mac)
            except ValueError as e:
                raise UsageError(f"-M {args.dst_mac}: {e}") from None
            self.dst_mac = args.dst_mac
        self.cli = bool(cfg.option("cli", False))
        self.color = not (args.no_color or cfg.option("no-color", False))
        self._check_threads()
        self.prefork = PreFork()
        self.route: dict = {}
        self.mode_cell: ModeCell | None = None  # /app/mode (created in run, before fork)

    # ------------------------------------------------------------ configuration checks
    def _check_threads(self) -> None:
        cfg = self.cfg
        self.fwd_threads = []
        owner: dict[str, str] = {}
        for t in cfg.threads.values():
            if t.type in self.SKIP_THREADS:
                continue
            if t.type not in self.THREAD_TYPES:
                known = " and ".join((*self.SKIP_THREADS, *self.THREAD_TYPES))
                raise UsageError(
                    f"thread {t.name!r}: unknown thread type {t.type!r} for {self.PROG}",
                    fix=f"{self.PROG} knows thread types {known}",
                )
            if not t.lports:
                raise UsageError(f"thread {t.name!r} has no lports")
            for lp in t.lports:
                if lp in owner:
                    raise UsageError(
                        f"lport {lp!r} is listed by threads {owner[lp]!r} and {t.name!r}",
                        fix="give each lport to one fwd thread",
                    )
                owner[lp] = t.name
            self.fwd_threads.append(t)
        if not self.fwd_threads:
            raise UsageError(
                "the configuration has no fwd thread",
                fix='add a thread such as "fwd:0" with lports',
            )
        self.owner = owner
        regions: dict[tuple[str, int], str] = {}
        for name, th in owner.items():
            lp = cfg.lport(name)
            if self.api == "xskdev" and lp.pmd != "net_af_xdp":
                raise UsageError(
                    f"lport {name!r} uses {lp.pmd}: the xskdev API drives only net_af_xdp lports",
                    fix="run with -a pktdev",
                )
            key = (lp.umem, lp.region)
            other = regions.setdefault(key, th)
            if other != th:
                raise UsageError(
                    f"umem {lp.umem!r} region {lp.region} is used by lports of threads "
                    f"{other!r} and {th!r}: a region's mempool belongs to one worker process",
                    fix="give each lport its own region (regions: [...] in the umem)",
                )

    # ------------------------------------------------------------ main-process setup
    def setup(self) -> None:
        # UMEMs, and one XDP program per netdev (or the device plugin's XSKMAPs), before fork
        self.prefork.setup(self.cfg, self.owner)
        if self.mode in STEERED:
            self._setup_fwd()

    def _setup_fwd(self) -> None:
        cfg = self.cfg
        table = np.full(256, -1, dtype=np.int16)
        for lp in cfg.lports.values():
            if lp.lpid < 256 and lp.name in self.owner:
                table[lp.lpid] = lp.lpid
        umem_of_worker: dict[str, set] = {}
        for name, th in self.owner.items():
            umem_of_worker.setdefault(th, set()).add(cfg.lport(name).umem)
        # descriptor rings: (sending worker, lport owned by another worker)
        xfer: dict[tuple[str, str], DescRing] = {}
        for t in self.fwd_threads:
            for name, th in self.owner.items():
                if th == t.name:
                    continue
                if cfg.lport(name).umem not in umem_of_worker[t.name]:
                    continue  # cannot hand over frames of another UMEM: those go back out
                xfer[(t.name, name)] = DescRing(4096)
        # return rings: (worker returning frames, (umem, region) owned by another worker)
        region_owner = {
            (cfg.lport(n).umem, cfg.lport(n).region): th for n, th in self.owner.items()
        }
        ret: dict[tuple[str, tuple[str, int]], AddrRing] = {}
        for t in self.fwd_threads:
            for key, th in region_owner.items():
                if th != t.name and key[0] in umem_of_worker[t.name]:
                    ret[(t.name, key)] = AddrRing(8192)
        self.route = {"table": table, "xfer": xfer, "ret": ret, "region_owner": region_owner}

    def make_steer(self, mode: str | None = None):
        """The steering function of a steered mode (None: CNDP's fwd by MAC index); ``mode``
        is the one a worker switches to (/app/mode), default the start mode."""
        mode = mode or self.mode
        if mode == "hyperscan":
            from .fwd_steer import HyperscanSteer

            lpids = {lp.lpid for lp in self.cfg.lports.values()}
            return HyperscanSteer(self.cfg.option("hs-patterns"), lpids)
        if mode == "l3fwd":
            from .fwd_steer import L3fwdSteer

            macs = {lp.lpid: self._lport_mac(lp) for lp in self.cfg.lports.values()}
            return L3fwdSteer(self.cfg.option("l3fwd-fib-rules"), macs)
        if mode in ("acl-strict", "acl-permissive"):
            from .fwd_steer import AclSteer, parse_acl_rules

            table = (getattr(self, "route", None) or {}).get("table")
            if table is None:
                table = np.full(256, -1, dtype=np.int16)
            shared = getattr(self, "acl_shared", None)
            if shared is not None:
                return AclSteer(mode, table, shared=shared)
            rules = self.cfg.option("acl-rules")
            return AclSteer(mode, table, None if rules is None else parse_acl_rules(rules))
        return None

    def _lport_mac(self, lp) -> bytes | None:
        """The MAC an lport sends from (its netdev's), or None when it has no netdev."""
        if lp.pmd not in ("net_af_xdp", "net_af_packet", "net_tap") or not lp.netdev:
            return None
        from ..sys import netdev

        try:
            return netdev.get_mac(lp.netdev)
        except CndpError:
            return None

    def teardown(self) -> None:
        self.prefork.teardown()

    # ------------------------------------------------------------ worker side
    def routed_pools(self) -> bool:
        """Whether lports get region-routed pools (frames move between lports)."""
        return self.mode in STEERED

    def _pool_for(self, worker: str, lp) -> RoutedPool | None:
        if not self.routed_pools():
            return None
        routers = self._routers
        umem = self.prefork.umems[lp.umem]
        if lp.umem not in routers:
            regs = self.cfg.umem_regions(lp.umem)
            remote = {
                r.index: ring
                for (w, (un, r_i)), ring in self.route["ret"].items()
                for r in regs
                if w == worker and un == lp.umem and r.index == r_i
            }
            inbound = [
                ring
                for (w, (un, r_i)), ring in self.route["ret"].items()
                if w != worker and un == lp.umem and self.route["region_owner"][(un, r_i)] == worker
            ]
            routers[lp.umem] = RegionRouter([r.offset for r in regs], remote, inbound)
        reg = umem.region(lp.region)
        return RoutedPool(
            umem.frame_addrs(lp.region),
            bufsz=umem.bufsz,
            name=f"{lp.umem}.r{lp.region}",
            router=routers[lp.umem],
            region=lp.region,
            lo=reg.offset,
            hi=reg.offset + reg.size,
        )

    def open_port(self, name: str, umems: dict) -> object:
        lp = self.cfg.lport(name)
        umem = umems[lp.umem]
        worker = self.owner[name]
        pool = self._pool_for(worker, lp)
        if self.api == "xskdev":
            return XskDev(
                self.cfg.lport_xsk_config(lp), umem, region=lp.region, pool=pool, lport=lp.lpid
            )
        from ..pktdev.port import port_setup

        return port_setup(self.cfg.lport_port_config(lp, umem, pool=pool))

    def worker(self, ctx) -> None:
        spec = ctx.spec
        ios = []
        for name in spec.lports:
            port = ctx.ports[name]
            lp = self.cfg.lport(name)
            mac = getattr(port, "mac", None)
            if not isinstance(mac, bytes | bytearray):
                mac = _netdev_mac(lp)
            ios.append(IO(name, lp.lpid, port, ctx.umems[lp.umem], bytes(mac)))
        fds = [io.port.fileno() for io in ios]
        idle = IdleManager(
            [fd for fd in fds if fd is not None],
            spec.idle_timeout,
            spec.intr_timeout,
            name=spec.name,
        )
        route = {}
        if self.mode in STEERED:
            xfer = self.route["xfer"]
            local = {io.lpid: io for io in ios}
            remote = {
                self.cfg.lport(n).lpid: ring for (w, n), ring in xfer.items() if w == spec.name
            }
            for io in ios:
                io.xfer_in = [ring for (w, n), ring in xfer.items() if n == io.name]
            route = {
                "table": self.route["table"],
                "local": local,
                "remote": remote,
                "routers": list(self._routers.values()),
            }
        cell = self.mode_cell
        loop = Loop(ctx, ios, self.burst, idle, dst_mac=self.dst_mac, route=route, mode_cell=cell)
        try:
            mode = cell.wanted() if cell is not None else self.mode
            while True:
                loop.mode = mode
                if cell is not None:
                    cell.entered(ctx.index, mode)
                try:
                    self._run_mode(loop, mode)
                    break
                except ModeChange as m:  # /app/mode: reap what is in flight, run the new one
                    log.info("worker %s: mode %s -> %s", spec.name, mode, m.mode)
                    for io in ios:
                        with contextlib.suppress(Exception):
                            io.port.flush(0.5)
                    mode = m.mode
        finally:
            for io in ios:
                with contextlib.suppress(Exception):
                    io.port.flush(0.5)
            loop.publish(force=True)
            idle.close()

    def _run_mode(self, loop: Loop, mode: str) -> None:
        if mode == "drop":
            loop.drop()
        elif mode == "loopback":
            loop.loopback()
        elif mode == "tx-only":
            loop.tx_only()
        elif mode == "tx-only-rx":
            loop.tx_only(with_rx=True)
        else:
            steer = self._steers.get(mode)
            if steer is None:  # kept across /app/mode switches: its counters only grow
                steer = self._steers[mode] = self.make_steer(mode)
            loop.ctx.port_extra = getattr(steer, "snapshot", None)
            loop.fwd(steer)

    def _mode_cell(self, nworkers: int) -> ModeCell:
        """Modes /app/mode may switch to: those needing no other setup than the start mode's
        (steered modes need cross-worker rings and region-routed pools set up before fork;
        hyperscan also its patterns, checked only when it is the start mode)."""
        if self.mode in STEERED:
            switchable = {"fwd", self.mode}
        else:
            switchable = {"drop", "loopback", "tx-only", "tx-only-rx"}
        return ModeCell(
            sorted(set(MODES.values())), self.mode, nworkers, switchable=switchable, aliases=MODES
        )

    # ------------------------------------------------------------ run
    def run(self) -> int:
        cfg = self.cfg
        self._routers: dict[str, RegionRouter] = {}
        workers = [
            WorkerSpec(
                t.name,
                t.type,
                t.index,
                cfg.thread_cpus(t.name),
                list(t.lports),
                t.idle_timeout,
                t.intr_timeout,
            )
            for t in self.fwd_threads
        ]
        lport_names = sorted(cfg.lports, key=lambda n: cfg.lports[n].lpid)
        self.mode_cell = self._mode_cell(len(workers))  # shared memory: before the fork
        stat_keys = STAT_KEYS
        if self.mode in ("acl-strict", "acl-permissive"):
            from ..lib.acl import CNDPFWD_RULES
            from .fwd_steer import AclShared, parse_acl_rules

            rules = cfg.option("acl-rules")
            self.acl_shared = AclShared(
                list(CNDPFWD_RULES) if rules is None else parse_acl_rules(rules)
            )
        steer_cls = STEER_COUNTERS.get(self.mode)
        if steer_cls:
            stat_keys = STAT_KEYS + tuple(k for k in steer_cls if k not in STAT_KEYS)
        rt = None
        tel = None
        try:
            self.setup()  # inside the try: a failure half-way still detaches what it attached
            rt = Runtime(
                workers,
                umems=self.prefork.umems,
                lport_names=lport_names,
                open_port=self.open_port,
                worker_fn=self.worker,
                stat_keys=stat_keys,
            )
            install_stop_signals(rt)
            main = cfg.threads.get("main")
            if main is not None:
                with contextlib.suppress(OSError, ValueError, ConfigError):
                    os.sched_setaffinity(
                        0,
                        set(cfg.thread_cpus("main")) & set(os.sched_getaffinity(0))
                        or os.sched_getaffinity(0),
                    )
            rt.spawn()
            # the socket answers while the workers bind: /app/ready says what they still miss
            tel = telemetry.start(cfg, self.args, rt, name=self.PROG, mode=self.mode, api=self.api)
            tel.control.mode = self.mode_cell
            if getattr(self, "acl_shared", None) is not None:
                from .fwd_steer import register_acl_commands

                register_acl_commands(tel.table, self.acl_shared)
            self.telemetry_started(tel)
            rt.wait_ready()
            print(
                f"{self.PROG}: running {self.describe()} with {len(workers)} worker(s): "
                + ", ".join(f"{w.name} on CPUs {list(w.cpus)}" for w in workers),
                file=sys.stderr,
                flush=True,
            )
            return self.main_loop(rt, tel, [n for n in lport_names if n in self.owner])
        finally:
            if tel is not None:
                tel.close()  # the socket files go, also after SIGTERM or a worker's death
            if rt is not None and rt.procs:
                rt.stop()
            self.teardown()

    # ------------------------------------------------------------ hooks of run()
    def telemetry_started(self, tel: telemetry.AppTelemetry) -> None:
        """More commands on the telemetry socket (before the workers are ready)."""

    def describe(self) -> str:
        """What the "running" line says the app runs."""
        return f"{self.mode} ({self.api})"

    def main_loop(self, rt: Runtime, tel: telemetry.AppTelemetry, lports: list[str]) -> int:
        """The main process while the workers run: the stats screen, until stopped."""
        screen = StatsScreen(
            rt.stats,
            lports,
            color=self.color,
            mode=self.mode,
            api=self.api,
            dst_mac=self.dst_mac,
        )
        return self.run_screen(rt, tel, screen)

    def run_screen(self, rt: Runtime, tel: telemetry.AppTelemetry, screen: StatsScreen) -> int:
        """Show ``screen`` (live unless the CLI shell owns the terminal) until the workers
        stop or the duration ends; then stop them and print the final screen."""
        status = rt.wait(
            tick=screen.tick if self.cli and tel.shell is None else screen.sample,
            period=1.0,
            duration=self.args.duration,
        )
        status = max(status, rt.stop())
        screen.final()
        return status


def _netdev_mac(lp) -> bytes:
    from ..sys import netdev

    try:
        return netdev.get_mac(lp.netdev)
    except CndpError as e:
        log.warning(
            "lport %s: cannot read the MAC of %s (%s): tx-only frames use 02:00:00:00:00:00",
            lp.name,
            lp.netdev,
            e,
        )
        return b"\x02\x00\x00\x00\x00\x00"


class StatsScreen:
    """The port-stats screen (options.cli): pps, Mbps and totals per lport, every second."""

    def __init__(
        self, stats, lports: list[str], *, color: bool, mode: str, api: str, dst_mac: str | None
    ):
        self.stats = stats
        self.lports = lports
        self.color = color and sys.stdout.isatty()
        self.header = f"cndpfwd (Python)  mode {mode}  api {api}" + (
            f"  dst-mac {dst_mac}" if dst_mac else ""
        )
        self.prev: dict[str, dict] = {}
        self.t_prev = time.monotonic()

    def _rates(self):
        now = time.monotonic()
        dt = max(now - self.t_prev, 1e-6)
        rows = []
        for name in self.lports:
            cur = self.stats.read(self.stats.lports.index(name))
            p = self.prev.get(name, dict.fromkeys(cur, 0))
            rows.append(
                (
                    name,
                    cur,
                    {
                        "rx_pps": (cur["ipackets"] - p["ipackets"]) / dt,
                        "tx_pps": (cur["opackets"] - p["opackets"]) / dt,
                        "rx_mbps": (cur["ibytes"] - p["ibytes"]) * 8 / dt / 1e6,
                        "tx_mbps": (cur["obytes"] - p["obytes"]) * 8 / dt / 1e6,
                    },
                )
            )
            self.prev[name] = cur
        self.t_prev = now
        return rows

    def sample(self) -> None:
        self._rates()

    def tick(self) -> None:
        rows = self._rates()
        out = []
        if self.color:
            out.append("\x1b[H\x1b[2J")
        out.append(self.header)
        out.append(
            f"{'lport':<12} {'RX pps':>12} {'RX Mbps':>10} {'TX pps':>12} "
            f"{'TX Mbps':>10} {'RX total':>14} {'TX total':>14} {'missed':>10}"
        )
        for name, cur, r in rows:
            out.append(
                f"{name:<12} {r['rx_pps']:12,.0f} {r['rx_mbps']:10,.1f} "
                f"{r['tx_pps']:12,.0f} {r['tx_mbps']:10,.1f} {cur['ipackets']:14,} "
                f"{cur['opackets']:14,} {cur['imissed']:10,}"
            )
        print("\n".join(out), flush=True)

    def final(self) -> None:
        for name in self.lports:
            cur = self.stats.read(self.stats.lports.index(name))
            print(
                f"{name}: rx {cur['ipackets']} packets {cur['ibytes']} bytes, "
                f"tx {cur['opackets']} packets {cur['obytes']} bytes, "
                f"missed {cur['imissed']}",
                flush=True,
            )


def run_app(args: argparse.Namespace, app_cls: type[App]) -> int:
    """Logging, the configuration (file or -C socket), then ``app_cls(cfg, args).run()``;
    a CndpError is one line on stderr and exit status 1."""
    prog = app_cls.PROG
    try:
        level = _log_level(args.level or "warning")
        if args.debug:
            level = logging.DEBUG if args.debug > 1 else logging.INFO
        logs.setup(level, app=prog)  # JSON lines unless stderr is a terminal
        if args.config_socket:
            cfg = cfgmod.load_socket(
                args.runtime_dir,
                on_ready=lambda p: print(f"waiting for the configuration on {p}", file=sys.stderr),
            )
        else:
            cfg = cfgmod.load(args.config)
        if args.level is None and not args.debug and cfg.option("log-level") is not None:
            logs.set_level(cfg.option("log-level"))  # our option; -L and -d win over it
        for w in cfg.warnings:
            log.warning("%s", w)
        return app_cls(cfg, args).run()
    except CndpError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    return run_app(parse_args(argv), App)


if __name__ == "__main__":
    sys.exit(main())
