"""The txgen application (main process): configuration, workers, control, reports.

The main process loads the CNDP configuration, works out the ports and which worker owns
each, creates the UMEMs and attaches the XDP programs (before forking, as cndpfwd does),
starts one worker per txgen thread, and then either runs the interactive CLI or a timed
batch run that prints one JSON report. Settings live here (:class:`~.state.TxgenState`);
every committed change is sent to the owning worker over its control pipe and acknowledged.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ...app import config as cfgmod
from ...app.prefork import PreFork
from ...app.runtime import Runtime, WorkerSpec, online_cpus
from ...errors import CndpError, NetdevError
from ...mem.umem import XDP_PKT_HEADROOM
from ...net.frames import mac_str
from ...pktdev.port import stable_mac
from ...sys import netdev
from ...xskdev.xskdev import STAT_KEYS
from .board import LAT_MIN_INIT, PK, SK, Board, hist_labels
from .cli import Actions, Cli, Result
from .state import DEFAULT_LINK_BPS, PortDesc, TxgenState
from .stream import STAMP_LEN, PortSettings, TxgenError
from .worker import Shared, worker_main

log = logging.getLogger("cndp.txgen")

ROLES = {"rxtx": (True, True), "tx_only": (True, False), "rx_only": (False, True)}
MAIN_THREADS = ("cli", "stats", "main")
CALL_TIMEOUT = 10.0

SECTION = "txgen"


# --------------------------------------------------------------------------------------------
# the jsonc "txgen" section: per-lport settings, written as CLI commands


SETTING_KEYS = {
    "count": "count",
    "size": "size",
    "rate": "rate",
    "pps": "pps",
    "burst": "burst",
    "sport": "sport",
    "dport": "dport",
    "ttl": "ttl",
    "tos": "tos",
    "prio": "prio",
    "vlan": "vlan",
    "type": "type",
    "proto": "proto",
    "pattern": "pattern",
    "latency": "latency",
    "engine": "engine",
    "src_ip": "src ip",
    "dst_ip": "dst ip",
    "src_mac": "src mac",
    "dst_mac": "dst mac",
    "user_pattern": "user pattern",
}
SECTION_KEYS = (*SETTING_KEYS, "ranges", "range", "pcap", "capture", "commands")


def decode_section(value: Any, section: cfgmod.Section) -> dict:
    """Structure check of the ``txgen`` section: ``{lport: {key: value}}``. Values are
    checked later, as the commands they become."""
    if not isinstance(value, dict):
        raise section.error("expected an object of lport names")
    out = {}
    for lport, obj in value.items():
        if not isinstance(obj, dict):
            raise section.error("expected an object of settings", lport)
        for k, v in obj.items():
            if k not in SECTION_KEYS:
                raise section.error(f"unknown key {k!r} (known: {', '.join(SECTION_KEYS)})", lport)
            if k == "commands" and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise section.error("commands: expected an array of strings", lport, k)
            if k == "ranges" and not isinstance(v, dict):
                raise section.error("ranges: expected an object of fields", lport, k)
        out[lport] = obj
    return {"ports": out, "section": section}


def section_commands(lpid: int, obj: dict) -> list[tuple[str, str]]:
    """(key path, command) pairs for one lport's settings."""
    cmds: list[tuple[str, str]] = []
    for k, v in obj.items():
        if k in SETTING_KEYS:
            if isinstance(v, bool):
                v = "on" if v else "off"
            elif v is None:
                v = "off"
            val = v if isinstance(v, str) else repr(v)
            if k == "user_pattern":
                import shlex

                val = shlex.quote(str(v))
            cmds.append((k, f"set {lpid} {SETTING_KEYS[k]} {val}"))
    for fld, r in (obj.get("ranges") or {}).items():
        if isinstance(r, dict):
            parts = [r.get(x) for x in ("start", "min", "max", "inc")]
        elif isinstance(r, list):
            parts = list(r)
        else:
            parts = []
        name = fld.replace("_", " ")
        if len(parts) != 4 or any(p is None for p in parts):
            cmds.append((f"ranges.{fld}", f"range {lpid} {name} bad-range-entry"))
            continue
        cmds.append((f"ranges.{fld}", f"range {lpid} {name} " + " ".join(str(p) for p in parts)))
    if "ranges" in obj or "range" in obj:
        on = obj.get("range", True)
        cmds.append(("range", f"{'enable' if on else 'disable'} {lpid} range"))
    if obj.get("pcap"):
        import shlex

        cmds.append(("pcap", f"set {lpid} pcap {shlex.quote(str(obj['pcap']))}"))
        cmds.append(("pcap", f"enable {lpid} pcap"))
    for c in obj.get("commands", []):
        cmds.append(("commands", c))
    return cmds


# --------------------------------------------------------------------------------------------
# control pipes


class Control:
    """The main process's side of the workers' control pipes."""

    def __init__(self, board: Board, workers: list[str]) -> None:
        ctx = mp.get_context("fork")
        self.board = board
        self.index = {w: i for i, w in enumerate(workers)}
        self.parent: dict[str, Any] = {}
        self.child: dict[str, Any] = {}
        for w in workers:
            a, b = ctx.Pipe(duplex=True)
            self.parent[w], self.child[w] = a, b
        self.mid = 0

    def call(self, worker: str, op: str, lpid: int, arg: Any = None) -> tuple[bool, str]:
        conn = self.parent[worker]
        self.mid += 1
        mid = self.mid
        try:
            conn.send((mid, op, lpid, arg))
        except (OSError, BrokenPipeError):
            return False, f"worker {worker!r} is gone"
        self.board.mailbox[self.index[worker]] += 1
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, f"worker {worker!r} did not answer within {CALL_TIMEOUT:g} s"
            try:
                if not conn.poll(min(left, 0.5)):
                    continue
                rmid, ok, text = conn.recv()
            except (EOFError, OSError):
                return False, f"worker {worker!r} is gone"
            if rmid == mid:
                return ok, text


# --------------------------------------------------------------------------------------------
# the application


def link_bps(ifname: str) -> float:
    """The netdev's link speed (ethtool), or 10 Gb/s when it reports none."""
    try:
        speed = netdev.link_speed_mbps(ifname)
    except (CndpError, OSError):
        return DEFAULT_LINK_BPS
    return DEFAULT_LINK_BPS if speed is None else speed * 1e6


@dataclass
class Options:
    duration: float | None = None
    json: bool = False
    any_address: bool = False
    ports: str | None = None  # portlist to start in batch mode
    scripts: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    no_cli: bool = False
    color: bool = True
    capture_limit: int = 1_000_000
    drain: float = 3.0  # at most this long waiting for frames in flight after a batch run


class TxgenApp(Actions):
    def __init__(self, cfg: cfgmod.Config, opts: Options) -> None:
        super().__init__()
        self.cfg = cfg
        self.opts = opts
        self.notes: list[str] = []
        self._threads()
        self.descs = self._ports()
        self.state = TxgenState(
            [self.descs[lp] for lp in sorted(self.descs)], any_address=opts.any_address
        )
        self.cli = Cli(self.state, self)
        self.board = Board(len(cfg.lports), len(self.workers))
        self.control: Control | None = None
        self.rt: Runtime | None = None
        self.prefork = PreFork()
        self.t_start = 0.0
        self.sampler = None

    # ----------------------------------------------------------------------------- setup
    def _threads(self) -> None:
        cfg = self.cfg
        self.workers: list[WorkerSpec] = []
        self.roles: dict[str, tuple[bool, bool]] = {}
        self.owner: dict[str, str] = {}
        online = online_cpus()
        for t in cfg.threads.values():
            if t.type in MAIN_THREADS:
                continue
            if t.type not in ROLES:
                raise TxgenError(
                    f"thread {t.name!r}: unknown thread type {t.type!r} for txgen",
                    fix="txgen knows thread types cli, stats, rxtx, tx_only and rx_only",
                )
            if not t.lports:
                raise TxgenError(f"thread {t.name!r} has no lports")
            for lp in t.lports:
                if lp in self.owner:
                    raise TxgenError(
                        f"lport {lp!r} is listed by threads {self.owner[lp]!r} and {t.name!r}",
                        fix="give each lport to one thread",
                    )
                self.owner[lp] = t.name
            self.workers.append(
                self._spec(
                    t.name,
                    t.type,
                    t.index,
                    cfg.thread_cpus(t.name),
                    list(t.lports),
                    t.idle_timeout,
                    t.intr_timeout,
                    online,
                )
            )
            self.roles[t.name] = ROLES[t.type]
        if not self.workers:
            # no txgen threads: one rxtx worker per lport
            for i, name in enumerate(sorted(cfg.lports, key=lambda n: cfg.lports[n].lpid)):
                w = f"rxtx:{i}"
                self.workers.append(self._spec(w, "rxtx", i, (), [name], 0, 0, online))
                self.roles[w] = ROLES["rxtx"]
                self.owner[name] = w
            self.notes.append(
                "the configuration has no rxtx/tx_only/rx_only threads: one rxtx worker per lport"
            )
        regions: dict[tuple[str, int], str] = {}
        for name, th in self.owner.items():
            lp = cfg.lport(name)
            if lp.uds_path:
                raise TxgenError(
                    f"lport {name!r}: uds_path (the device-plugin handshake) is not supported "
                    "by txgen yet",
                    fix="use xsk_pin_path, or run privileged without either",
                )
            other = regions.setdefault((lp.umem, lp.region), th)
            if other != th:
                raise TxgenError(
                    f"umem {lp.umem!r} region {lp.region} is used by lports of threads "
                    f"{other!r} and {th!r}: a region's mempool belongs to one worker",
                    fix="give each lport its own region (regions: [...] in the umem)",
                )

    def _spec(self, name, typ, index, cpus, lports, idle, intr, online) -> WorkerSpec:
        use = tuple(c for c in cpus if c in online)
        if not use:
            use = tuple(sorted(online))
            if cpus:
                self.notes.append(
                    f"thread {name!r}: CPUs {list(cpus)} are not on this machine; "
                    f"it runs on CPUs {list(use)}"
                )
        elif len(use) < len(cpus):
            self.notes.append(f"thread {name!r}: runs on CPUs {list(use)} of {list(cpus)}")
        return WorkerSpec(name, typ, index, use, lports, idle, intr)

    def _ports(self) -> dict[int, PortDesc]:
        cfg = self.cfg
        descs = {}
        for name, lp in cfg.lports.items():
            if name not in self.owner:
                continue
            pmd = lp.pmd
            on_netdev = pmd in ("net_af_xdp", "net_af_packet")
            mtu = None
            speed = DEFAULT_LINK_BPS
            if on_netdev:
                try:
                    mac = mac_str(netdev.get_mac(lp.netdev))
                    mtu = netdev.get_mtu(lp.netdev)
                except NetdevError as e:
                    raise TxgenError(
                        f"lport {name!r}: {e}",
                        fix="create the netdev, or run txgen in its network namespace",
                    ) from None
                speed = link_bps(lp.netdev)
            else:
                mac = mac_str(stable_mac(lp.netdev or name))
            tx, rx = self.roles[self.owner[name]]
            bufsz = cfg.umem(lp.umem).bufsz
            descs[lp.lpid] = PortDesc(
                lpid=lp.lpid,
                name=name,
                netdev=lp.netdev if on_netdev else "",
                pmd=pmd,
                mac=mac,
                mtu=mtu,
                link_bps=speed,
                can_tx=tx,
                can_rx=rx,
                thread=self.owner[name],
                max_frame=bufsz - XDP_PKT_HEADROOM,
            )
        return descs

    def lpid_of(self, name: str) -> int:
        return self.cfg.lport(name).lpid

    def apply_initial(self) -> list[str]:
        """Settings from the jsonc section, pcap options, -f scripts and -s commands, in that
        order. Returns error messages (empty when all applied)."""
        errors: list[str] = []
        sect = self.cfg.users.get(SECTION)
        captures: list[tuple[int, str]] = []
        if sect:
            section = sect["section"]
            for lname, obj in sect["ports"].items():
                if lname not in self.cfg.lports:
                    errors.append(str(section.error(f"lport {lname!r} not found", lname)))
                    continue
                lpid = self.lpid_of(lname)
                if lpid not in self.descs:
                    errors.append(
                        str(section.error(f"lport {lname!r} is not on a txgen thread", lname))
                    )
                    continue
                for key, cmd in section_commands(lpid, obj):
                    r = self.cli.execute(cmd)
                    if not r.ok:
                        path = [lname, *key.split(".")]
                        errors.append(str(section.error(r.text.removeprefix("error: "), *path)))
                cap = obj.get("capture")
                if cap:
                    captures.append((lpid, "" if cap is True else str(cap)))
        errors += self._pcap_options()
        for path in self.opts.scripts:
            r = self.cli.run_script_file(path)
            if not r.ok:
                errors.append(r.text)
        for c in self.opts.commands:
            r = self.cli.execute(c)
            if not r.ok:
                errors.append(f"-s {c!r}: {r.text}")
        self._initial_captures = captures
        return errors

    def _pcap_options(self) -> list[str]:
        lports = self.cfg.option("pcap_lports")
        files = self.cfg.option("pcap_files")
        if lports is None and files is None:
            return []
        if not isinstance(lports, list) or not isinstance(files, list) or not files:
            return ["options.pcap_lports and options.pcap_files must both be non-empty arrays"]
        if lports == ["all"]:
            targets = sorted(self.descs)
        else:
            targets = []
            for n in lports:
                if n not in self.cfg.lports or self.lpid_of(n) not in self.descs:
                    return [f"options.pcap_lports: lport {n!r} is not a txgen lport"]
                targets.append(self.lpid_of(n))
        if len(files) not in (1, len(targets)):
            return [
                f"options.pcap_files has {len(files)} files for {len(targets)} lports: "
                "give one file, or one per lport"
            ]
        errs = []
        for i, lpid in enumerate(targets):
            f = files[0] if len(files) == 1 else files[i]
            for cmd in (f"set {lpid} pcap {f}", f"enable {lpid} pcap"):
                r = self.cli.execute(cmd)
                if not r.ok:
                    errs.append(f"options.pcap_files: {r.text}")
                    break
        return errs

    # ----------------------------------------------------------------------------- runtime
    def _open_port(self, name: str, umems: dict) -> Any:
        from ...pktdev.port import port_setup

        lp = self.cfg.lport(name)
        # txgen talks to no device plugin (see _setup)
        return port_setup(self.cfg.lport_port_config(lp, umems[lp.umem], uds=False))

    def _setup(self) -> None:
        # txgen talks to no device plugin: its lports load our program (or use a pin)
        self.prefork.setup(self.cfg, self.owner, uds=False)

    def _teardown(self) -> None:
        self.prefork.teardown()

    def start_runtime(self) -> None:
        names = [w.name for w in self.workers]
        self.control = Control(self.board, names)
        shared = Shared(
            board=self.board,
            conns=self.control.child,
            mailbox_index=self.control.index,
            descs=self.descs,
            settings={lp: self.state.get(lp).to_dict() for lp in self.descs},
            roles=self.roles,
            capture_limit=self.opts.capture_limit,
            capture_dir=os.getcwd(),
        )
        lport_names = sorted(self.cfg.lports, key=lambda n: self.cfg.lports[n].lpid)
        self._setup()
        self.rt = Runtime(
            self.workers,
            umems=self.prefork.umems,
            lport_names=lport_names,
            open_port=self._open_port,
            worker_fn=worker_main,
            stat_keys=STAT_KEYS,
            extra={"txgen": shared},
        )
        self.rt.start()
        self.state.listeners.append(self._push_settings)
        self.t_start = time.monotonic()
        for lpid, path in getattr(self, "_initial_captures", []):
            msg = self.capture([lpid], path)
            if msg:
                print(msg, file=sys.stderr)

    def stop_runtime(self) -> int:
        status = 0
        if self.rt is not None:
            if self.rt.procs:
                status = self.rt.stop()
            self.rt = None
        self._teardown()
        return status

    def alive(self) -> bool:
        return self.rt is not None and all(p.is_alive() for p in self.rt.procs)

    def _push_settings(self, lpid: int, s: PortSettings) -> None:
        ok, text = self._call(lpid, "settings", s.to_dict())
        if not ok:
            raise TxgenError(text)

    def _call(self, lpid: int, op: str, arg: Any = None) -> tuple[bool, str]:
        if self.control is None:
            return True, ""
        return self.control.call(self.descs[lpid].thread, op, lpid, arg)

    # ----------------------------------------------------------------------------- actions
    def _each(self, lpids: list[int], op: str, arg: Any = None) -> str:
        out, errs = [], []
        for lp in lpids:
            ok, text = self._call(lp, op, arg)
            if not ok:
                errs.append(f"port {lp}: {text}" if not text.startswith("port ") else text)
            elif text:
                out.append(text)
        if errs:
            raise TxgenError("; ".join(errs))
        return "\n".join(out)

    def start(self, lpids: list[int]) -> str:
        quiet = [lp for lp in lpids if not self.descs[lp].can_tx]
        lpids = [lp for lp in lpids if self.descs[lp].can_tx]
        out = self._each(lpids, "start")
        self.running.update(lpids)
        if quiet:
            out = "\n".join(
                [out, f"port(s) {','.join(map(str, quiet))} only receive (rx_only thread)"]
            ).strip()
        return out

    def stop(self, lpids: list[int]) -> str:
        lpids = [lp for lp in lpids if self.descs[lp].can_tx]
        self.running.difference_update(lpids)
        return self._each(lpids, "stop")

    def clear(self, lpids: list[int]) -> str:
        out = self._each(lpids, "clear")
        if self.sampler is not None:
            self.sampler.forget(lpids)
        return out

    def capture(self, lpids: list[int], path: str | None) -> str:
        return self._each(lpids, "capture", path)

    def publish(self) -> None:
        for w in self.workers:
            if self.control is not None:
                self.control.call(w.name, "publish", -1)

    def page(self, name: str) -> str:
        from .screen import render_page

        return render_page(self, name, color=self.opts.color)

    def screen(self, on: bool) -> str:
        from .screen import live_screen

        if not on:
            return "screen updates are off (the screen is shown on demand: on, page)"
        return live_screen(self)

    # ----------------------------------------------------------------------------- numbers
    def port_counters(self, lpid: int) -> dict[str, int]:
        return self.board.port(lpid)

    def stream_totals(self, stream: int) -> dict[str, Any]:
        """What all receivers saw of one stream (the frames port ``stream`` sent)."""
        b = self.board
        st = b.streams[:, stream, :]
        n = int(st[:, SK["pkts"]].sum())
        lat_n = int(st[:, SK["lat_n"]].sum())
        res: dict[str, Any] = {
            "received": n,
            "reordered": int(st[:, SK["reorder"]].sum()),
            "latency_ns": None,
        }
        if lat_n:
            lsum = int(st[:, SK["lat_sum"]].sum())
            mn = int(st[:, SK["lat_min"]].min())
            mx = int(st[:, SK["lat_max"]].max())
            avg = lsum / lat_n
            var = max(float(b.sumsq[:, stream].sum()) / lat_n - avg * avg, 0.0)
            hist = b.hist[:, stream, :].sum(axis=0)
            res["latency_ns"] = {
                "samples": lat_n,
                "min": mn if mn != LAT_MIN_INIT else None,
                "avg": round(avg, 1),
                "max": mx,
                "stddev": round(math.sqrt(var), 1),
                "histogram": {
                    lab: int(c) for lab, c in zip(hist_labels(), hist.tolist(), strict=True) if c
                },
            }
        return res

    def stream_is_stamped(self, lpid: int) -> bool:
        s = self.state.get(lpid)
        if s.pcap_mode or not s.latency:
            return False
        try:
            from ...net.build import layout_of

            lay = layout_of(s.template())
        except CndpError:
            return False
        smallest = s.size - 4
        if s.range_mode and "length" in s.ranges:
            smallest = s.ranges["length"].min
        return smallest - lay.payload >= STAMP_LEN

    def report(self, seconds: float) -> dict[str, Any]:
        """The batch run's JSON object."""
        ports: dict[str, Any] = {}
        tot = {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0}
        for lpid in sorted(self.descs):
            d = self.descs[lpid]
            c = self.port_counters(lpid)
            s = self.state.get(lpid)
            tx_p, rx_p = c["tx_pkts"], c["rx_pkts"]
            span = (c["tx_last_ns"] - c["tx_first_ns"]) / 1e9
            # frames after the first burst over the time from the first to the last burst
            after = tx_p - c["tx_first_k"]
            pps = after / span if span > 0 and after > 0 else (tx_p / seconds if seconds else 0)
            st = self.stream_totals(lpid)
            entry: dict[str, Any] = {
                "lport": lpid,
                "netdev": d.netdev,
                "pmd": d.pmd,
                "engine": s.engine,
                "mode": "pcap" if s.pcap_mode else ("range" if s.range_mode else "single"),
                "tx": {
                    "packets": tx_p,
                    "bytes": c["tx_bytes"],
                    "errors": c["tx_errors"],
                    "pps": round(pps, 1),
                    "mbps": round(c["tx_bytes"] * 8 / span / 1e6, 3) if span > 0 else 0.0,
                    "requested_pps": c["tx_pps_target"] or None,
                },
                "rx": {
                    "packets": rx_p,
                    "bytes": c["rx_bytes"],
                    "errors": c["rx_errors"],
                    "missed": c["rx_missed"],
                    "pps": round(rx_p / seconds, 1) if seconds else 0.0,
                    "stamped": c["rx_stamped"],
                    "other": c["rx_foreign"],
                },
                "loss": None,
                "latency_ns": st["latency_ns"],
                "reordered": st["reordered"],
            }
            if self.stream_is_stamped(lpid) and tx_p:
                lost = tx_p - st["received"]
                entry["loss"] = {
                    "sent": tx_p,
                    "received": st["received"],
                    "lost": lost,
                    "ratio": round(lost / tx_p, 6) if tx_p else 0.0,
                }
            streams = {}
            for src in sorted(self.descs):
                row = self.board.streams[lpid, src]
                if row[SK["pkts"]]:
                    streams[self.descs[src].name] = int(row[SK["pkts"]])
            entry["rx"]["from"] = streams
            if self.rt is not None:
                ps = self.rt.stats.read(lpid)
                entry["port_stats"] = {k: v for k, v in ps.items() if v}
            if c["capture_on"] or c["capture_pkts"]:
                entry["rx"]["captured"] = c["capture_pkts"]
            ports[d.name] = entry
            tot["tx_packets"] += tx_p
            tot["tx_bytes"] += c["tx_bytes"]
            tot["rx_packets"] += rx_p
            tot["rx_bytes"] += c["rx_bytes"]
        return {
            "txgen": "pycndp",
            "config": self.cfg.source,
            "duration_s": round(seconds, 3),
            "ports": ports,
            "total": tot,
        }

    # ----------------------------------------------------------------------------- batch
    def run_batch(self) -> dict[str, Any]:
        """Start the selected ports, run for the duration (or until their counts are sent),
        stop, wait for frames in flight, and return the report."""
        from .state import parse_portlist

        lpids = [lp for lp in sorted(self.descs) if self.descs[lp].can_tx]
        if self.opts.ports:
            lpids = [
                lp for lp in parse_portlist(self.opts.ports, sorted(self.descs)) if lp in lpids
            ]
        forever = [lp for lp in lpids if self.state.get(lp).count == 0]
        if forever and self.opts.duration is None:
            raise TxgenError(
                f"port(s) {','.join(map(str, forever))} send until stopped (count 0)",
                fix="give --duration SECONDS, or set a count",
            )
        self.clear(sorted(self.descs))
        t0 = time.monotonic()
        self.start(lpids)
        deadline = None if self.opts.duration is None else t0 + self.opts.duration
        while True:
            time.sleep(0.02)
            if not self.alive():
                raise TxgenError("a worker stopped during the run (see the message above)")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if not forever and all(self.board.ports[lp][PK["tx_done"]] for lp in lpids):
                break
        self.stop(lpids)
        t1 = time.monotonic()
        self._drain()
        # close the capture files now, so that the report counts exactly what they hold (a
        # frame of the Linux peer's own could otherwise land between report and exit)
        self.publish()
        capturing = [lp for lp in sorted(self.descs) if self.board.ports[lp][PK["capture_on"]]]
        if capturing:
            self.capture(capturing, None)
            self.publish()
        return self.report(t1 - t0)

    def _drain(self) -> None:
        """Wait until receive counters stop moving (frames in flight, delays)."""
        end = time.monotonic() + self.opts.drain
        last = None
        stable_since = time.monotonic()
        while time.monotonic() < end:
            cur = tuple(int(self.board.ports[lp][PK["rx_pkts"]]) for lp in self.descs)
            now = time.monotonic()
            if cur != last:
                last, stable_since = cur, now
            elif now - stable_since >= 0.3:
                return
            time.sleep(0.05)

    # ----------------------------------------------------------------------------- CLI
    def execute(self, line: str) -> Result:
        return self.cli.execute(line)
