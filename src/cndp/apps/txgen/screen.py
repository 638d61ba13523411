"""txgen's screens: rates per port (sampled once a second) rendered with rich.

``render_page(app, name)`` returns a page as text (``page main|stats|range|pcap|latency``);
``live_screen(app)`` shows the main page refreshing every second until Enter is pressed.
"""

from __future__ import annotations

import io
import select
import sys
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .board import PK, hist_labels
from .stream import FIELD_NAMES


class Sampler:
    """Per-port rates from the shared counters, sampled every ``period`` seconds."""

    KEYS = ("tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes")

    def __init__(self, app: Any, period: float = 1.0) -> None:
        self.app = app
        self.period = period
        self.rates: dict[int, dict[str, float]] = {}
        self._prev: dict[int, tuple[float, list[int]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def sample(self) -> None:
        now = time.monotonic()
        with self._lock:
            for lpid in self.app.descs:
                row = self.app.board.ports[lpid]
                cur = [int(row[PK[k]]) for k in self.KEYS]
                prev = self._prev.get(lpid)
                self._prev[lpid] = (now, cur)
                if prev is None:
                    continue
                dt = max(now - prev[0], 1e-6)
                d = [max(c - p, 0) for c, p in zip(cur, prev[1], strict=True)]
                self.rates[lpid] = {
                    "tx_pps": d[0] / dt,
                    # wire rate: each frame also carries FCS, preamble and gap (24 bytes)
                    "tx_mbps": (d[1] + 24 * d[0]) * 8 / dt / 1e6,
                    "rx_pps": d[2] / dt,
                    "rx_mbps": (d[3] + 24 * d[2]) * 8 / dt / 1e6,
                }

    def forget(self, lpids) -> None:
        with self._lock:
            for lp in lpids:
                self._prev.pop(lp, None)
                self.rates.pop(lp, None)

    def get(self, lpid: int) -> dict[str, float]:
        with self._lock:
            return dict(self.rates.get(lpid, {}))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.period):
                self.sample()

        self.sample()
        self._t = threading.Thread(target=loop, name="txgen-sampler", daemon=True)
        self._t.start()

    def stop(self) -> None:
        self._stop.set()


def _fmt_int(v: float) -> str:
    return f"{int(v):,}"


def _lat(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:,.1f}"


def main_table(app: Any) -> Table:
    lpids = sorted(app.descs)
    t = Table(title="TXGen (pycndp)", title_justify="left", expand=False)
    t.add_column("", style="bold cyan", no_wrap=True)
    for lp in lpids:
        t.add_column(f"{lp}: {app.descs[lp].name}", justify="right", no_wrap=True)
    sampler = app.sampler
    rows: dict[str, list[str]] = {}

    def add(label: str, vals: list[str]) -> None:
        rows[label] = vals

    c = {lp: app.port_counters(lp) for lp in lpids}
    s = {lp: app.state.get(lp) for lp in lpids}
    r = {lp: (sampler.get(lp) if sampler else {}) for lp in lpids}
    st = {lp: app.stream_totals(lp) for lp in lpids}

    def state(lp: int) -> str:
        if c[lp]["tx_running"]:
            return "[green]sending[/]"
        if c[lp]["tx_done"]:
            return "done"
        return "stopped" if app.descs[lp].can_tx else "rx only"

    add("State", [state(lp) for lp in lpids])
    add("Pkts/s RX", [_fmt_int(r[lp].get("rx_pps", 0)) for lp in lpids])
    add("Pkts/s TX", [_fmt_int(r[lp].get("tx_pps", 0)) for lp in lpids])
    add("Mbit/s RX", [f"{r[lp].get('rx_mbps', 0):,.1f}" for lp in lpids])
    add("Mbit/s TX", [f"{r[lp].get('tx_mbps', 0):,.1f}" for lp in lpids])
    add("Total RX pkts", [_fmt_int(c[lp]["rx_pkts"]) for lp in lpids])
    add("Total TX pkts", [_fmt_int(c[lp]["tx_pkts"]) for lp in lpids])
    add("Errors RX/TX", [f"{c[lp]['rx_errors']}/{c[lp]['tx_errors']}" for lp in lpids])
    add("Missed RX", [_fmt_int(c[lp]["rx_missed"]) for lp in lpids])

    def lost(lp: int) -> str:
        # only once some of the stream came back to a txgen port (a looped cable or a
        # reflector): frames sent to another host are not "lost"
        if not app.stream_is_stamped(lp) or not st[lp]["received"]:
            return "-"
        return _fmt_int(max(c[lp]["tx_pkts"] - st[lp]["received"], 0))

    add("Lost (stream)", [lost(lp) for lp in lpids])
    for key, label in (("min", "Lat min us"), ("avg", "Lat avg us"), ("max", "Lat max us")):
        add(label, [_lat((st[lp]["latency_ns"] or {}).get(key)) for lp in lpids])
    add("Size", [str(s[lp].size) for lp in lpids])
    add(
        "Rate",
        [f"{s[lp].pps:g} pps" if s[lp].pps else f"{s[lp].rate:g}%" for lp in lpids],
    )
    add("Count/Burst", [f"{s[lp].count or 'forever'}/{s[lp].burst}" for lp in lpids])
    add("Type/Proto", [f"{s[lp].type}/{s[lp].proto}" for lp in lpids])
    add("Src IP", [f"{s[lp].src_ip}/{s[lp].src_prefix}" for lp in lpids])
    add("Dst IP", [s[lp].dst_ip for lp in lpids])
    add("Ports", [f"{s[lp].sport}/{s[lp].dport}" for lp in lpids])
    add("Src MAC", [s[lp].src_mac for lp in lpids])
    add("Dst MAC", [s[lp].dst_mac for lp in lpids])
    add(
        "VLAN/TTL/TOS",
        [
            f"{s[lp].vlan if s[lp].vlan is not None else '-'}/{s[lp].ttl}/{s[lp].tos}"
            for lp in lpids
        ],
    )
    add(
        "Mode/Engine",
        [
            ("pcap" if s[lp].pcap_mode else "range" if s[lp].range_mode else "single")
            + f"/{s[lp].engine}"
            for lp in lpids
        ],
    )
    add(
        "Capture",
        [_fmt_int(c[lp]["capture_pkts"]) if c[lp]["capture_on"] else "off" for lp in lpids],
    )
    for label, vals in rows.items():
        t.add_row(label, *vals)
    return t


def range_table(app: Any) -> Table:
    t = Table(title="Ranges", title_justify="left")
    for col in ("port", "field", "start", "min", "max", "inc", "mode"):
        t.add_column(col)
    for lp in sorted(app.descs):
        s = app.state.get(lp)
        if not s.ranges:
            t.add_row(str(lp), "-", "", "", "", "", "range" if s.range_mode else "off")
        for fld, r in s.ranges.items():
            f = s.format_value
            t.add_row(
                str(lp),
                FIELD_NAMES[fld],
                f(fld, r.start),
                f(fld, r.min),
                f(fld, r.max),
                str(r.inc),
                "on" if s.range_mode else "off",
            )
    return t


def pcap_table(app: Any) -> Table:
    t = Table(title="PCAP replay", title_justify="left")
    for col in ("port", "file", "mode", "rate", "count"):
        t.add_column(col)
    for lp in sorted(app.descs):
        s = app.state.get(lp)
        t.add_row(
            str(lp),
            s.pcap_file or "-",
            "replaying" if s.pcap_mode else "off",
            f"{s.pps:g} pps" if s.pps else f"{s.rate:g}%",
            str(s.count or "loop"),
        )
    return t


def latency_table(app: Any) -> Table:
    t = Table(title="Latency per stream (sending port), microseconds", title_justify="left")
    for col in ("stream", "samples", "min", "avg", "max", "stddev", "reordered", "histogram"):
        t.add_column(col)
    labels = hist_labels()
    for lp in sorted(app.descs):
        stt = app.stream_totals(lp)
        lat = stt["latency_ns"]
        if lat is None:
            t.add_row(f"{lp}: {app.descs[lp].name}", "0", "-", "-", "-", "-", "-", "")
            continue
        hist = " ".join(f"{k}:{v}" for k, v in lat["histogram"].items() if k in labels)
        t.add_row(
            f"{lp}: {app.descs[lp].name}",
            _fmt_int(lat["samples"]),
            _lat(lat["min"]),
            _lat(lat["avg"]),
            _lat(lat["max"]),
            _lat(lat["stddev"]),
            _fmt_int(stt["reordered"]),
            hist,
        )
    return t


PAGES = {
    "main": main_table,
    "stats": main_table,
    "range": range_table,
    "pcap": pcap_table,
    "latency": latency_table,
}


def render_page(app: Any, name: str, *, color: bool = True, width: int | None = None) -> str:
    table = PAGES[name](app)
    buf = io.StringIO()
    tty = color and sys.stdout.isatty()
    con = Console(
        file=buf, force_terminal=tty, color_system="auto" if tty else None, width=width or 160
    )
    con.print(table)
    return buf.getvalue().rstrip("\n")


def live_screen(app: Any) -> str:
    """The main page, refreshed every second, until Enter (stdin must be a terminal)."""
    if not sys.stdin.isatty():
        return render_page(app, "main")
    hint = Text("press Enter to return to the TXGen prompt", style="dim")
    with Live(Group(main_table(app), hint), refresh_per_second=2, screen=False) as live:
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
            if ready:
                sys.stdin.readline()
                break
            if not app.alive():
                break
            live.update(Group(main_table(app), hint))
    return ""
