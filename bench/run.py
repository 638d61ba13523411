#!/usr/bin/env python3
"""``make bench``: pycndp's AF_XDP loops against dpdk-testpmd and the kernel's XDP_DROP.

One veth pair joins namespace A (the live-frames generator, 60-byte UDP frames, plus a
counting XDP_DROP sink for frames that come back) and namespace B (the receiver under test).
Rows, measured in each layout:

  kernel-xdp-drop   a counting XDP_DROP program on B's veth: the path's ceiling
  testpmd-rxonly    dpdk-testpmd --forward-mode=rxonly on B (AF_XDP PMD, copy mode)
  testpmd-macswap   dpdk-testpmd --forward-mode=macswap on B
  pycndp-rx-drop    cndp.apps.loops.rx_drop on an XskDev on B (threaded layout: burst and RX
                    ring --threaded-burst / --threaded-rx-size)
  pycndp-macswap    cndp.apps.loops.mac_swap_loop on an XskDev on B, transmitting through
                    its tx_qid socket (queue 1), burst --fwd-burst
  pycndp-macswap-1q the same loop transmitting on the receiving socket itself, burst --burst

Layouts: ``softirq`` (generator on CPU 0, receiver on CPU 1, threaded NAPI off: B's XDP and
the copy into the UMEM run in the softirq of the generator's CPU) and ``threaded`` (threaded
NAPI on for B's veth, its NAPI thread pinned to the receiver's CPU; our receiver sleeps in
poll() when its rings are empty). Each row's value is the median of ``--runs`` runs of
``--seconds`` seconds; each run starts its receiver afresh. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness as H  # noqa: E402
import testpmd as T  # noqa: E402
from cndp.errors import CndpError  # noqa: E402
from cndp.net.frames import udp4_frame  # noqa: E402
from cndp.testing import netns  # noqa: E402

ROWS = (
    "kernel-xdp-drop",
    "testpmd-rxonly",
    "testpmd-macswap",
    "pycndp-rx-drop",
    "pycndp-macswap",
    "pycndp-macswap-1q",
    "cndpfwd-drop-1w",
    "cndpfwd-lb-1w",
    "cndpfwd-drop-2w",
    "cndpfwd-lb-2w",
    "cndpfwd-l3fwd-1w",
    "l3fwd-graph-1w",
)
# cndpfwd rows with two workers need both CPUs for workers; they run in the softirq layout
SOFTIRQ_ONLY = {"cndpfwd-drop-2w", "cndpfwd-lb-2w"}
LAYOUTS = ("softirq", "threaded")
CEILING = "kernel-xdp-drop"
# the row each row's `ratio` is taken against (all rows also get a ceiling_ratio)
BASELINE = {
    "kernel-xdp-drop": None,
    "testpmd-rxonly": CEILING,
    "testpmd-macswap": CEILING,
    "pycndp-rx-drop": "testpmd-rxonly",
    "pycndp-macswap": "testpmd-macswap",
    "pycndp-macswap-1q": "testpmd-macswap",
    "cndpfwd-drop-1w": "testpmd-rxonly",
    "cndpfwd-lb-1w": "testpmd-macswap",
    "cndpfwd-drop-2w": "testpmd-rxonly",
    "cndpfwd-lb-2w": "testpmd-macswap",
    "cndpfwd-l3fwd-1w": "testpmd-macswap",
    "l3fwd-graph-1w": "testpmd-macswap",
}
# what `pps` counts, per row
MEASURED = {
    "kernel-xdp-drop": "frames counted by the XDP_DROP program on B",
    "testpmd-rxonly": "frames testpmd received (port RX-packets)",
    "testpmd-macswap": "frames back at A (counting XDP sink on A)",
    "pycndp-rx-drop": "frames our loop received",
    "pycndp-macswap": "frames back at A (counting XDP sink on A)",
    "pycndp-macswap-1q": "frames back at A (counting XDP sink on A)",
    "cndpfwd-drop-1w": "frames B's veth redirected into cndpfwd's socket(s)",
    "cndpfwd-lb-1w": "frames back at A (counting XDP sink on A)",
    "cndpfwd-drop-2w": "frames B's veth redirected into cndpfwd's socket(s)",
    "cndpfwd-lb-2w": "frames back at A (counting XDP sink on A)",
    "cndpfwd-l3fwd-1w": "frames routed back to A (counting XDP sink on A)",
    "l3fwd-graph-1w": "frames routed back to A (counting XDP sink on A)",
}
# goals from issue 2: (layout, row) -> (field, minimum, text)
GOALS = {
    ("softirq", "pycndp-rx-drop"): ("ratio", 1.0, ">= 1.0x testpmd"),
    ("softirq", "pycndp-macswap"): ("ratio", 1.0, ">= 1.0x testpmd"),
    ("threaded", "pycndp-rx-drop"): ("ceiling_ratio", 0.6, ">= 0.6x ceiling"),
}
# a busy-spinning testpmd next to the NAPI thread collapses: stop after one run below this
HOPELESS = 0.25  # fraction of the layout's ceiling


@dataclass
class Sample:
    pps: float
    gen_pps: float
    extra: dict = field(default_factory=dict)
    run: int = 0  # index of the run (rows are interleaved: run i of every row, then i + 1)


@dataclass
class Ctx:
    args: argparse.Namespace
    pair: netns.VethPair
    gen: H.Generator
    sink: H.XdpCounterProg
    notes: dict = field(default_factory=dict)  # (layout, row) -> list of notes
    retry_left: float = 0.0  # seconds still allowed for repeating disturbed runs

    def note(self, layout: str, row: str, text: str) -> None:
        self.notes.setdefault((layout, row), [])
        if text not in self.notes[(layout, row)]:
            self.notes[(layout, row)].append(text)


# --------------------------------------------------------------------------------------------
# one measurement window


def measure(
    ctx: Ctx,
    layout: str,
    row: str,
    read: Callable[[], tuple[float, dict]],
    pids: dict[str, list[int]] | None = None,
) -> Sample:
    """Run the generator, warm up, and take the counter differences over ``--seconds``.

    ``read()`` returns (our monotonic time of the reading, {counter: value}); the row's own
    counters come first so their timestamp is the one used. The sink on A and B's veth
    statistics are read in every window, for every row. ``pids``: named groups of processes
    (our receiver, the NAPI threads) whose CPU use over the window goes into ``cpu_pct``.
    """
    args = ctx.args
    b = ctx.pair.b
    ctx.gen.run()
    try:
        time.sleep(args.warmup)
        t0, c0 = read()
        g0, k0, v0, p0 = ctx.gen.sample(), ctx.sink.frames(), H.veth_stats(b), H.cpu_times()
        q0 = H.process_cpu()
        time.sleep(args.seconds)
        t1, c1 = read()
        g1, k1, v1, p1 = ctx.gen.sample(), ctx.sink.frames(), H.veth_stats(b), H.cpu_times()
        q1 = H.process_cpu()
    finally:
        ctx.gen.pause()
    dt = t1 - t0
    rates = {k: (c1[k] - c0[k]) / dt for k in c1}
    rates["back_at_a"] = (k1 - k0) / dt
    veth = {k: v / dt for k, v in H.stats_delta(v0, v1).items()}
    gen_pps = H.Generator.rate(g0, g1)
    key = {
        "kernel-xdp-drop": "dropped",
        "testpmd-rxonly": "rx",
        "testpmd-macswap": "back_at_a",
        "pycndp-rx-drop": "rx",
        "pycndp-macswap": "back_at_a",
        "pycndp-macswap-1q": "back_at_a",
        "cndpfwd-drop-1w": "rx",
        "cndpfwd-lb-1w": "back_at_a",
        "cndpfwd-drop-2w": "rx",
        "cndpfwd-lb-2w": "back_at_a",
        "cndpfwd-l3fwd-1w": "back_at_a",
        "l3fwd-graph-1w": "back_at_a",
    }[row]
    extra = {f"{k}_pps": round(v) for k, v in rates.items() if k != key}
    extra["seconds"] = round(dt, 3)
    extra["veth_b"] = {k: round(v) for k, v in veth.items() if v}
    # time the hypervisor took from our two CPUs (a hint when runs disagree)
    extra["steal_pct"] = {
        cpu: H.steal_pct(p0.get(cpu), p1.get(cpu)) for cpu in (args.gen_cpu, args.rx_cpu)
    }
    # Where the receiver CPU's time went: our loop, the NAPI thread(s) (threaded layout),
    # softirq and idle. Tells whether the user-space loop or the kernel limits a row.
    if pids:
        hz = os.sysconf("SC_CLK_TCK")
        zero = (0, 0, 0, 0)
        cpu = {
            name: round(100 * sum(q1.get(p, zero)[1] - q0.get(p, zero)[1] for p in ps) / hz / dt, 1)
            for name, ps in pids.items()
        }
        c0, c1 = p0.get(args.rx_cpu), p1.get(args.rx_cpu)
        if c0 and c1 and len(c0) >= 7:
            tot = sum(c1[:8]) - sum(c0[:8]) or 1
            cpu["idle"] = round(100 * (c1[3] - c0[3]) / tot, 1)
            cpu["softirq"] = round(100 * (c1[6] - c0[6]) / tot, 1)
        extra["cpu_pct"] = cpu
    # CPU that other people's processes used meanwhile (this machine is shared)
    foreign, top = H.foreign_cpu_pct(q0, q1, dt, os.getpid())
    extra["foreign_cpu_pct"] = round(foreign, 1)
    if top:
        extra["foreign_top"] = top
    # Did the receiver keep up with everything it was offered? Then the row's rate is the
    # rate at which the sending side could deliver (softirq layout: the generator's CPU also
    # runs B's XDP and the copy into the UMEM), not the receiver's limit. Frames can also be
    # lost before B's XDP sees them (veth's 256-frame ring full while B's NAPI thread waits
    # for the CPU, threaded layout): then the receiving CPU is the limit too.
    seen = veth.get("rx_queue_0_xdp_packets", 0.0)
    failed = veth.get("rx_queue_0_drops", 0.0)  # redirects the socket could not take
    if row != CEILING and seen > 0:
        extra["saturated"] = failed / seen >= 0.01 or seen < 0.99 * gen_pps
        if not extra["saturated"]:
            ctx.note(layout, row, "receiver kept up with all frames: sender-bound")
    # cross-check: frames the veth's XDP redirected to an AF_XDP socket == frames the app got
    redirect = veth.get("rx_queue_0_xdp_redirect", 0.0)
    if row != CEILING and redirect > 0 and not row.startswith(("cndpfwd", "l3fwd-graph")):
        got = rates["rx"]
        extra["rx_vs_veth_redirect"] = round(got / redirect, 4)
        if abs(got / redirect - 1) > 0.02:
            ctx.note(layout, row, f"app rx {got / redirect:.3f}x veth redirect")
    return Sample(rates[key], gen_pps, extra)


# --------------------------------------------------------------------------------------------
# rows


def run_ceiling(ctx: Ctx, layout: str, row: str) -> Sample:
    prog = H.XdpCounterProg(ctx.pair.b, "bench_ceil")
    try:
        napi = H.apply_layout(ctx.pair.b, layout, ctx.args.rx_cpu)
        return measure(
            ctx,
            layout,
            row,
            lambda: (time.monotonic(), {"dropped": prog.frames()}),
            {"napi": napi} if napi else None,
        )
    finally:
        prog.close()


def run_ours(ctx: Ctx, layout: str, row: str) -> Sample:
    a = ctx.args
    mode = "rx-drop" if row == "pycndp-rx-drop" else "macswap"
    idle = a.idle_polls if layout == "threaded" else 0
    xsk: dict = {}
    burst, rx_size = a.burst, 2048
    if layout == "threaded" and row == "pycndp-rx-drop":
        # the NAPI thread fills the ring while our loop waits for the CPU: a bigger ring loses
        # fewer frames to "ring full" (in the softirq layout it only costs cache: 4.6 -> 3.9)
        burst, rx_size = a.threaded_burst, a.threaded_rx_size
    if row == "pycndp-macswap":
        burst = a.fwd_burst
        if a.tx_qid > 0:
            xsk["tx_qid"] = a.tx_qid
    rcv = H.OurReceiver(
        ctx.pair.b, mode, a.rx_cpu, idle_polls=idle, burst=burst, rx_size=rx_size, xsk=xsk
    )
    try:
        rcv.start()
        napi = H.apply_layout(ctx.pair.b, layout, a.rx_cpu)
        assert rcv.proc is not None
        pids = {"app": [rcv.proc.pid], "napi": napi} if napi else {"app": [rcv.proc.pid]}

        def read():
            if not rcv.alive():
                raise RuntimeError("our receiver died")
            return time.monotonic(), {"rx": rcv.rx(), "tx": rcv.tx()}

        s = measure(ctx, layout, row, read, pids)
    finally:
        rcv.stop()
    st = rcv.stats
    if st:
        s.extra["xsk"] = {
            k: st[k]
            for k in ("imissed", "rx_ring_full", "rx_fill_ring_empty", "tx_ring_full", "tx_kicks")
            if st.get(k)
        }
    return s


def run_testpmd(ctx: Ctx, layout: str, row: str) -> Sample:
    a = ctx.args
    mode = "rxonly" if row == "testpmd-rxonly" else "macswap"
    os.makedirs(a.out_dir, exist_ok=True)
    log = os.path.join(a.out_dir, f"testpmd-{layout}-{mode}.log")
    b = ctx.pair.b
    left = H.force_detach(b)
    if left:
        ctx.note(layout, row, f"detached {left} before testpmd")
    tp = T.TestPmd(
        b,
        mode,
        a.rx_cpu,
        log,
        burst=a.testpmd_burst,
        vdev_args=a.testpmd_vdev,
        file_prefix=f"{ctx.pair.prefix}-tp",
    )
    try:
        tp.start()
        if not H.wait_for(lambda: H.xdp_attached(b) is not None, 10):
            why = tp.error_line() or "no error in its log"
            raise T.TestPmdError(f"testpmd's XDP program did not appear on the veth ({why})")
        H.apply_layout(b, layout, a.rx_cpu)

        shows: list[T.PortStats] = []

        def read():
            st = tp.show()
            shows.append(st)
            return st.t, {"rx": st.rx, "tx": st.tx}

        s = measure(ctx, layout, row, read)
        # testpmd's own rates over exactly the interval between its two `show`s (its TSC):
        # the show commands reach testpmd's main lcore, which shares the CPU with the
        # spinning forwarding lcore, a few ms late; over a 10 s window that is a few tenths
        # of a per cent, more on short windows.
        s.extra["testpmd_own_rx_pps"] = shows[-1].rx_pps
        s.extra["testpmd_own_tx_pps"] = shows[-1].tx_pps
        if row == "testpmd-rxonly" and shows[-1].rx_pps:
            s.extra["rx_pps_our_clock"] = round(s.pps)
            s.pps = float(shows[-1].rx_pps)
    finally:
        rc = tp.stop()
        left = H.force_detach(b)
        if left:
            ctx.note(layout, row, f"testpmd left {left} attached (detached)")
    if rc not in (0, None):
        ctx.note(layout, row, f"testpmd exit {rc}")
    return s


def run_cndpfwd(ctx: Ctx, layout: str, row: str) -> Sample:
    """cndpfwd (config file, runtime, worker processes) on B's veth, drop, lb or l3fwd.

    l3fwd: one route, B's address /32 -> lport 0 with A's MAC, so every frame is looked up in
    the FIB, gets TTL - 1 and its MACs rewritten, and goes back to A (the MAC-swap path plus
    the l3fwd work; its baseline is testpmd macswap, as the issue asks). l3fwd-graph-1w: the
    same route through l3fwd-graph (pktdev lport, the graph with its node counters on).

    1w: one fwd thread on the receiver CPU, lport qid 0. 2w: a second fwd thread on the
    generator's CPU with lport qid 1, and the generator alternates its chunks between the two
    CPUs (veth picks the peer's rx queue by the sending CPU), so both queues get traffic and
    each CPU takes turns generating and forwarding: on this 2-CPU machine the row shows the
    runtime working with two workers, not scaling.
    """
    a = ctx.args
    b = ctx.pair.b
    mode = "drop" if "-drop-" in row else "l3fwd" if "l3fwd" in row else "lb"
    prog = "l3fwd-graph" if row.startswith("l3fwd-graph") else "cndpfwd"
    two = row.endswith("-2w")
    lports = {
        f"{b.ifname}:{q}": {"pmd": "net_af_xdp", "qid": q, "umem": "umem0", "region": q}
        for q in ((0, 1) if two else (0,))
    }
    if not two and mode != "drop" and a.tx_qid > 0:
        # one worker that transmits: through a TX socket of its own, as pycndp-macswap
        lports[f"{b.ifname}:0"]["tx_qid"] = a.tx_qid
    names = list(lports)
    idle = 1 if layout == "threaded" else 0
    threads = {
        "main": {"group": "initial"},
        "fwd:0": {"group": "rx", "lports": [names[0]], "idle_timeout": idle, "intr_timeout": 10},
    }
    if two:
        threads["fwd:1"] = {"group": "gen", "lports": [names[1]]}
    cfg = {
        "application": {"name": "bench"},
        "umems": {
            "umem0": {
                "bufcnt": 8 * len(names),
                "bufsz": 2,
                "mtype": "4KB",
                "regions": [8] * len(names),
                "rxdesc": 2,
                "txdesc": 2,
            }
        },
        "lports": lports,
        "lcore-groups": {"initial": [a.gen_cpu], "rx": [a.rx_cpu], "gen": [a.gen_cpu]},
        "options": {
            "pkt_api": "pktdev" if prog == "l3fwd-graph" else "xskdev",
            "mode": mode,
            "l3fwd-fib-rules": [f"{ctx.pair.b.ipv4}/32,{ctx.pair.a.mac},0"],
        },
        "threads": threads,
    }
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, f"{prog}-{layout}-{row}.jsonc")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    exe = os.path.join(os.path.dirname(sys.executable), "cndpfwd")
    cmd = [exe, "-c", path, "-b", str(a.burst), mode]
    if prog == "l3fwd-graph":
        cmd = [sys.executable, "-m", "cndp.apps.l3fwd_graph", "-c", path, "-b", str(a.burst)]
    log_path = os.path.join(a.out_dir, f"{prog}-{layout}-{row}.log")
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    proc = b.popen(cmd, stdout=log, stderr=log)
    try:

        def running() -> bool:
            with open(log_path) as f:
                return f"{prog}: running" in f.read()

        if not H.wait_for(lambda: running() or proc.poll() is not None, 30) or not running():
            raise RuntimeError(f"{prog} did not start (see {log_path})")
        H.apply_layout(b, layout, a.rx_cpu)
        if two:
            ctx.gen.alternate(a.rx_cpu)

        def read():
            if proc.poll() is not None:
                raise RuntimeError(f"{prog} exited with {proc.returncode} (see {log_path})")
            v = H.veth_stats(b)
            got = sum(n for k, n in v.items() if k.endswith("_xdp_redirect"))
            return time.monotonic(), {"rx": got}

        return measure(ctx, layout, row, read)
    finally:
        if two:
            ctx.gen.alternate(None)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
        if proc.returncode not in (0, None):
            ctx.note(layout, row, f"{prog} exit {proc.returncode}")


RUNNERS = {
    "cndpfwd-drop-1w": run_cndpfwd,
    "cndpfwd-lb-1w": run_cndpfwd,
    "cndpfwd-drop-2w": run_cndpfwd,
    "cndpfwd-lb-2w": run_cndpfwd,
    "cndpfwd-l3fwd-1w": run_cndpfwd,
    "l3fwd-graph-1w": run_cndpfwd,
    "kernel-xdp-drop": run_ceiling,
    "testpmd-rxonly": run_testpmd,
    "testpmd-macswap": run_testpmd,
    "pycndp-rx-drop": run_ours,
    "pycndp-macswap": run_ours,
    "pycndp-macswap-1q": run_ours,
}


# --------------------------------------------------------------------------------------------
# the bench


def one_run(ctx: Ctx, layout: str, row: str, label: str) -> Sample | None:
    """One run of one row. A run during which other processes on this (shared) machine used
    more than ``--busy-pct`` of a CPU is repeated up to ``--retries`` times; the least
    disturbed attempt is kept. None when the row failed (the reason goes to the notes)."""
    a = ctx.args
    best: Sample | None = None
    for attempt in range(1 + a.retries):
        t_start = time.monotonic()
        try:
            s = RUNNERS[row](ctx, layout, row)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # record the failure, go on with the other rows
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"{label}: FAILED: {e}", file=sys.stderr)
            if a.verbose:
                traceback.print_exc()
            ctx.note(layout, row, f"failed: {msg[:120]}")
            return best
        if best is None or s.extra["foreign_cpu_pct"] < best.extra["foreign_cpu_pct"]:
            best = s
        if s.extra["foreign_cpu_pct"] <= a.busy_pct:
            break
        if attempt > 0:
            ctx.retry_left -= time.monotonic() - t_start
        retry = attempt < a.retries and ctx.retry_left > a.seconds + a.warmup
        more = "retrying" if retry else "keeping the least disturbed run"
        print(
            f"{label}: {s.pps / 1e6:7.3f} Mpps but other processes used "
            f"{s.extra['foreign_cpu_pct']:.0f}% CPU meanwhile "
            f"({', '.join(s.extra.get('foreign_top', []))}): {more}",
            flush=True,
        )
        if not retry:
            break
    if best is not None and best.extra["foreign_cpu_pct"] > a.busy_pct:
        ctx.note(
            layout,
            row,
            f"disturbed: other processes used up to {best.extra['foreign_cpu_pct']:.0f}% CPU",
        )
    return best


def bench_layout(ctx: Ctx, layout: str, rows: list[str], testpmd_ok: str) -> dict:
    """All runs of all rows in one layout, interleaved (run 1 of every row, then run 2...) so
    slow drifts of the machine spread over the rows. Returns row -> list of Samples."""
    a = ctx.args
    samples: dict[str, list[Sample]] = {r: [] for r in rows}
    hopeless: set[str] = set()
    for i in range(a.runs):
        for row in rows:
            if row in hopeless or (row in SOFTIRQ_ONLY and layout != "softirq"):
                continue
            if row.startswith("testpmd") and testpmd_ok:
                if i == 0:
                    ctx.note(layout, row, testpmd_ok)
                continue
            label = f"{layout:8s} {row:16s} run {i + 1}/{a.runs}"
            s = one_run(ctx, layout, row, label)
            if s is None:
                continue
            s.run = i
            samples[row].append(s)
            print(
                f"{label}: {s.pps / 1e6:7.3f} Mpps   (generator {s.gen_pps / 1e6:.3f} Mpps; "
                + ", ".join(_fmt_extra(s.extra))
                + ")",
                flush=True,
            )
            if row.startswith("testpmd") and layout == "threaded" and CEILING in samples:
                ceil = [x.pps for x in samples[CEILING]]
                if ceil and s.pps < HOPELESS * statistics.median(ceil) and a.runs > 1:
                    hopeless.add(row)
                    ctx.note(
                        layout,
                        row,
                        "busy-spins next to the NAPI thread and collapses: 1 run only",
                    )
    return samples


def _fmt_extra(extra: dict) -> list[str]:
    out = []
    for k in ("rx_pps", "tx_pps", "back_at_a_pps"):
        if k in extra:
            out.append(f"{k[:-4]} {extra[k] / 1e6:.3f}")
    v = extra.get("veth_b", {})
    if "rx_queue_0_xdp_redirect" in v:
        out.append(f"veth redirect {v['rx_queue_0_xdp_redirect'] / 1e6:.3f}")
    drops = v.get("rx_queue_0_drops", 0)
    if drops:
        out.append(f"veth drops {drops / 1e6:.3f}")
    cpu = extra.get("cpu_pct")
    if cpu:
        out.append("rx CPU " + " ".join(f"{k} {v:.0f}%" for k, v in cpu.items()))
    return out


def summarise(ctx: Ctx, layout: str, samples: dict[str, list[Sample]], stamp: str) -> list[dict]:
    med = {r: statistics.median([s.pps for s in ss]) if ss else None for r, ss in samples.items()}
    out = []
    for row, ss in samples.items():
        if row in SOFTIRQ_ONLY and layout != "softirq":
            continue
        pps = med[row]
        base = BASELINE[row]
        base_pps = med.get(base) if base else None
        ceil_pps = med.get(CEILING)
        r = {
            "name": row,
            "layout": layout,
            "pps": round(pps) if pps is not None else None,
            "baseline": base,
            "baseline_pps": round(base_pps) if base_pps is not None else None,
            "ratio": _ratio(pps, base_pps),
            "paired_ratio": _paired(ss, samples.get(base, [])) if base else None,
            "ceiling": CEILING if row != CEILING else None,
            "ceiling_pps": round(ceil_pps) if ceil_pps is not None and row != CEILING else None,
            "ceiling_ratio": _ratio(pps, ceil_pps) if row != CEILING else None,
            "runs": len(ss),
            "run_pps": [round(s.pps) for s in ss],
            "seconds": ctx.args.seconds,
            "gen_pps": round(statistics.median([s.gen_pps for s in ss])) if ss else None,
            "measured": MEASURED[row],
            "frame_bytes": 60,
            "notes": ctx.notes.get((layout, row), []),
            "date": stamp,
        }
        goal = GOALS.get((layout, row))
        if goal:
            fld, minimum, text = goal
            r["goal"] = text
            r["goal_met"] = None if r[fld] is None else r[fld] >= minimum
        if ss:
            mid = sorted(ss, key=lambda s: s.pps)[len(ss) // 2]
            r["detail"] = mid.extra  # the counters of the median run
            cpu = mid.extra.get("cpu_pct") or {}
            if "napi" in cpu and "app" in cpu:
                # the NAPI thread's share bounds the row: a loop that cost nothing could
                # at best give the NAPI thread the whole CPU
                bound = pps / (cpu["napi"] / 100) if cpu["napi"] and pps else None
                r["napi_bound_pps"] = round(bound) if bound else None
                r["notes"] = [
                    *r["notes"],
                    f"rx CPU: NAPI thread {cpu['napi']:.0f}%, our loop {cpu['app']:.0f}%"
                    + (f"; a free loop: <= {bound / 1e6:.2f} Mpps" if bound else ""),
                ]
        out.append(r)
    return out


def _paired(ss: list[Sample], base: list[Sample]) -> float | None:
    """Median of run-by-run ratios (run i of the row over run i of its baseline, measured
    seconds apart): less sensitive to the machine's slow drifts than the ratio of medians."""
    by_run = {s.run: s.pps for s in base}
    vals = [s.pps / by_run[s.run] for s in ss if by_run.get(s.run)]
    return round(statistics.median(vals), 3) if vals else None


def _ratio(x: float | None, y: float | None) -> float | None:
    if x is None or not y:
        return None
    return round(x / y, 3)


def print_table(rows: list[dict]) -> None:
    hdr = (
        f"{'layout':9s}{'row':18s}{'Mpps':>7s}   {'vs':16s}{'ratio':>6s}  {'paired':>6s}  "
        f"{'x ceil':>6s}  {'runs':>4s}  {'gen Mpps':>8s}  notes"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        mpps = f"{r['pps'] / 1e6:7.3f}" if r.get("pps") is not None else "      -"
        ratio = f"{r['ratio']:6.2f}" if r.get("ratio") is not None else "     -"
        cr = r.get("ceiling_ratio")
        cr = f"{cr:6.2f}" if cr is not None else "     -"
        pr = r.get("paired_ratio")
        pr = f"{pr:6.2f}" if pr is not None else "     -"
        gen = f"{r['gen_pps'] / 1e6:8.3f}" if r.get("gen_pps") else "       -"
        notes = r.get("notes") or []
        notes = [notes] if isinstance(notes, str) else list(notes)  # a bench module's one note
        if "goal" in r:
            met = {True: "met", False: "MISSED", None: "n/a"}[r["goal_met"]]
            notes.insert(0, f"goal {r['goal']}: {met}")
        if "ns_per_pkt" in r:
            notes.insert(0, f"{r['ns_per_pkt']} ns/pkt")
        print(
            f"{r['layout']:9s}{r['name']:18s}{mpps}   {r.get('baseline') or '-'!s:16s}"
            f"{ratio}  {pr}  {cr}  {r.get('runs', 0):4d}  {gen}  {'; '.join(notes)}"
        )


# Benchmarks in their own modules: (module, what, call). Software rows need no network; the
# txgen rows build their own veth pair (run after ours, so the two never overlap).
EXTRA_BENCHES = (
    ("micro", "ring-verb micro rows", lambda m, a: m.run()),
    ("lib_fib", "FIB/LPM rows", lambda m, a: m.run()),
    ("lib_acl", "ACL rows", lambda m, a: m.run()),
    ("lib_hash", "hash/flow-table/meter rows", lambda m, a: m.run()),
    ("txgen", "txgen rows", lambda m, a: m.run(["--quick"] if a.quick else [])),
)


def run_extra(args, names: tuple[str, ...]) -> list[dict]:
    """Rows of the bench modules beside this file; a module that fails is reported and
    skipped, so one broken bench never hides the others."""
    rows: list[dict] = []
    for name, what, call in EXTRA_BENCHES:
        if name not in names or not os.path.exists(os.path.join(HERE, f"{name}.py")):
            continue
        try:
            mod = importlib.import_module(name)
            got = list(call(mod, args))
        except Exception as e:
            print(f"bench/{name}.py failed: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        for r in got:
            r.setdefault("layout", "software")
        print(f"{what} done", flush=True)
        rows += got
    return rows


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    py = platform.python_version()
    return f"{os.cpu_count()} x {cpu}, Linux {platform.release()}, Python {py}"


def run(args) -> int:
    layouts = list(LAYOUTS) if args.layout == "all" else [args.layout]
    rows = [r for r in ROWS if r in args.rows]
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"pycndp bench {stamp} on {machine()}")
    print(
        f"layouts {', '.join(layouts)}; {args.runs} run(s) x {args.seconds:g} s per row; "
        f"generator CPU {args.gen_cpu}, receiver CPU {args.rx_cpu}; 60-byte frames",
        flush=True,
    )
    results: list[dict] = []
    micro_rows = run_extra(args, ("micro", "lib_fib", "lib_acl", "lib_hash")) if args.micro else []

    testpmd_why = ""
    if any(r.startswith("testpmd") for r in rows):
        _path, testpmd_why = T.ensure_installed(REPO)
        if testpmd_why:
            print(f"testpmd rows skipped: {testpmd_why}", file=sys.stderr)
            testpmd_why = f"not run: {testpmd_why}"

    # two queues: the two-worker cndpfwd rows bind one lport to each (every other row uses
    # queue 0, where all frames from a generator on one CPU arrive)
    pair = netns.make_veth_pair(rxqueues=2, txqueues=2)
    a, b = pair.a, pair.b
    print(f"veth pair {a.ifname} ({a.ns}) <-> {b.ifname} ({b.ns})", flush=True)
    park = None
    gen = None
    sink = None
    try:
        # an idle second pair whose only job is to hold the generator's program in the XDP
        # dispatcher (see harness.Generator); no frame ever crosses it
        park = netns.make_veth_pair()
        sink = H.XdpCounterProg(a, "bench_sink")
        frame = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
        gen = H.Generator(a, frame, args.gen_cpu, park=park.b)
        gen.start()
        print(
            f"generator: BPF_PROG_RUN live frames, {gen.chunk:,}-frame calls, program "
            + ("parked in the XDP dispatcher" if gen.parked else "NOT parked (slower)"),
            flush=True,
        )
        ctx = Ctx(args, pair, gen, sink, retry_left=args.retry_budget)
        for layout in layouts:
            samples = bench_layout(ctx, layout, rows, testpmd_why)
            results += summarise(ctx, layout, samples, stamp)
    finally:
        if gen is not None:
            gen.stop()
        with contextlib.suppress(Exception):
            H.force_detach(b)
        if sink is not None:
            sink.close()
        left = []
        for p in (park, pair):
            if p is None:
                continue
            try:
                p.close()
            except CndpError as e:
                print(f"teardown: {e}", file=sys.stderr)
            left += netns.leftovers(p.prefix)
        if os.path.isdir(f"/var/run/dpdk/{pair.prefix}-tp"):
            left.append(f"/var/run/dpdk/{pair.prefix}-tp")
        if left:
            print("bench left behind: " + "; ".join(left), file=sys.stderr)

    results += micro_rows
    if args.txgen:
        results += run_extra(args, ("txgen",))
    print()
    print_table(results)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(f"\nwrote {os.path.relpath(args.output)}")
    return 0


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window per run")
    ap.add_argument("--runs", type=int, default=3, help="runs per row (the median is kept)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 s x 1 run")
    ap.add_argument("--warmup", type=float, default=None, help="seconds before each window")
    ap.add_argument("--layout", choices=(*LAYOUTS, "all"), default="all")
    ap.add_argument(
        "--rows",
        default=",".join(ROWS),
        help="comma-separated rows (default: all): " + ", ".join(ROWS),
    )
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--rx-cpu", type=int, default=1)
    ap.add_argument(
        "--idle-polls",
        type=int,
        default=1,
        help="threaded layout: empty polls before our loop sleeps in poll()",
    )
    ap.add_argument("--burst", type=int, default=64, help="our loops' burst size")
    ap.add_argument("--fwd-burst", type=int, default=256, help="burst of the pycndp-macswap row")
    ap.add_argument(
        "--threaded-burst", type=int, default=256, help="burst of threaded pycndp-rx-drop"
    )
    ap.add_argument(
        "--threaded-rx-size",
        type=int,
        default=8192,
        help="RX ring of threaded pycndp-rx-drop (the fill ring is twice that)",
    )
    ap.add_argument(
        "--tx-qid",
        type=int,
        default=1,
        help="pycndp-macswap transmits through an XskDev tx_qid socket on this queue of B's "
        "veth (-1: on the receiving socket, like pycndp-macswap-1q)",
    )
    ap.add_argument("--testpmd-burst", type=int, default=None, help="testpmd --burst")
    ap.add_argument(
        "--testpmd-vdev",
        default="busy_budget=0",
        help="extra net_af_xdp vdev arguments (default busy_budget=0: no preferred busy "
        "polling, like our loops; '' for the PMD's defaults)",
    )
    ap.add_argument(
        "--busy-pct",
        type=float,
        default=10.0,
        help="a run during which other processes used more CPU than this (per cent of one "
        "CPU) counts as disturbed and is repeated",
    )
    ap.add_argument("--retries", type=int, default=2, help="repeats of a disturbed run")
    ap.add_argument(
        "--retry-budget",
        type=float,
        default=150.0,
        help="seconds the whole bench may spend repeating disturbed runs",
    )
    ap.add_argument(
        "--no-micro",
        dest="micro",
        action="store_false",
        help="skip the software rows (bench/micro.py and the lib_*.py library rows)",
    )
    ap.add_argument("--no-txgen", dest="txgen", action="store_false", help="skip bench/txgen.py")
    ap.add_argument("--output", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"), help="logs (testpmd)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.runs = 2.0, 1
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 2.0
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in wanted if r not in ROWS]
    if bad:
        ap.error(f"unknown row(s) {', '.join(bad)}; rows are {', '.join(ROWS)}")
    args.rows = wanted
    if args.runs < 1 or args.seconds <= 0:
        ap.error("--runs must be >= 1 and --seconds > 0")
    cpus = sorted(os.sched_getaffinity(0))
    for c in (args.gen_cpu, args.rx_cpu):
        if c not in cpus:
            ap.error(f"CPU {c} is not available (have {cpus})")
    if args.tx_qid == 0:
        ap.error("--tx-qid 0 is the receiving queue: give 1 (the default) or -1 for none")
    if args.gen_cpu == args.rx_cpu:
        ap.error("--gen-cpu and --rx-cpu must differ")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run.py needs root (network namespaces, XDP, AF_XDP)", file=sys.stderr)
        return 2
    # keep this process (and the tools it starts: ip, ethtool) off the receiver's CPU
    H.pin(args.gen_cpu)
    main_pid = os.getpid()

    def on_term(*_):
        if os.getpid() != main_pid:  # a helper forked by a library (pyroute2): just go
            os._exit(143)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
