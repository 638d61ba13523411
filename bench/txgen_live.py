"""txgen live-frames engine vs ``dpdk-testpmd --forward-mode=txonly`` on one veth (issue 4).

    .venv/bin/python bench/txgen_live.py              # 3 runs x 5 s per row (~1.5 min)
    .venv/bin/python bench/txgen_live.py --quick      # 1 run x 2 s

Namespace A sends from CPU ``--cpu`` (testpmd's lcores, or our engine's process); B's veth
runs a counting XDP_DROP program that is the measure for every row (frames that really crossed
the veth, over our monotonic clock). 60-byte frames (64 with FCS): testpmd ``--txpkts=60``,
ours a UDP/IPv4 frame of 60 bytes. Rows:

* ``testpmd-txonly``: DPDK's AF_XDP PMD transmitting (the baseline).
* ``live``, ``live-4ranges``: :class:`cndp.apps.txgen.engine_live.LiveEngine` at full speed,
  without ranges and with src/dst IP and src/dst port ranges. Goal: >= 4x testpmd.
* ``rate-<pps>``: the engine paced at 1k, 10k, 100k, 1M pps with the four ranges; ``pps`` is
  what B counted over the engine's own run time; goal: within 2% of the request.

Results are printed and written to ``bench/out/txgen-live.json`` (the rows have the fields
of ``bench/run.py``'s rows, so run.py can merge them with :func:`bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import testpmd as T
from cndp.apps.txgen.engine_live import LiveEngine, LiveRange
from cndp.bpf import asm, progs, xdp
from cndp.errors import CndpError
from cndp.net.frames import udp4_frame
from cndp.testing import netns

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "bench", "out")
FRAME_BYTES = 60
RATES = (1_000, 10_000, 100_000, 1_000_000)


def four_ranges() -> list[LiveRange]:
    # 198.18.0.1-254 -> 198.18.1.0-255, ports 1024-65535 / 9-1033 (offsets of udp4_frame)
    return [
        LiveRange(29, 1, 1, 1, 254, 1),
        LiveRange(32, 2, 0x0100, 0x0100, 0x01FF, 1),
        LiveRange(34, 2, 1024, 1024, 65535, 1),
        LiveRange(36, 2, 9, 9, 1033, 1),
    ]


class TxOnly(T.TestPmd):
    def command(self) -> list[str]:
        return [*super().command(), f"--txpkts={FRAME_BYTES}"]


def _engine_child(host, frame, ranges, rate, seconds, cpu, q) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})
    try:
        with host.enter(), LiveEngine(host.ifname, frame, ranges, rate_pps=rate) as eng:
            eng.send(20_000 if rate is None else max(1, int(rate * 0.05)))  # warm-up
            q.put(("ready", 0, 0.0, 0))
            time.sleep(0.2)  # the parent samples the counter now
            n = eng.run_for(seconds)
            q.put(("done", n, eng.last_seconds, eng.forgiven))
    except CndpError as e:
        q.put(("error", str(e), 0.0, 0))


def run_engine(pair, sink, ranges, rate, seconds, cpu) -> dict:
    frame = udp4_frame(pair.a.mac, pair.b.mac, pair.a.ipv4, pair.b.ipv4, size=FRAME_BYTES)
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(
        target=_engine_child, args=(pair.a, frame, ranges, rate, seconds, cpu, q), daemon=True
    )
    p.start()
    try:
        what, _n, _, _ = q.get(timeout=30)
        if what == "error":
            raise RuntimeError(_n)
        c0 = sink.read()[0]
        what, n, secs, forgiven = q.get(timeout=seconds + 30)
        if what == "error":
            raise RuntimeError(n)
        time.sleep(0.05)
        rx = sink.read()[0] - c0
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
    return {"pps": rx / secs, "sent": n, "rx": rx, "seconds": secs, "forgiven": forgiven}


def run_testpmd(pair, sink, seconds, cpu, log) -> dict:
    tp = TxOnly(pair.a, "txonly", cpu, log, file_prefix=f"{pair.prefix}-tx")
    try:
        tp.start()
        time.sleep(1.0)
        s0, c0 = tp.show(), sink.read()[0]
        t0 = time.monotonic()
        time.sleep(seconds)
        s1, c1 = tp.show(), sink.read()[0]
        dt = time.monotonic() - t0
    finally:
        tp.stop()
    return {"pps": (c1 - c0) / dt, "tx_pps": (s1.tx - s0.tx) / (s1.t - s0.t), "seconds": dt}


def bench(seconds: float = 5.0, runs: int = 3, cpu: int = 0, only: str | None = None) -> list[dict]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.makedirs(OUT, exist_ok=True)
    path, why = T.ensure_installed(REPO)
    pair = netns.make_veth_pair()
    samples: dict[str, list[dict]] = {}
    try:
        with pair.b.enter():
            sink = progs.Counter()
            fd = progs.load("bench_sink", progs.counting(asm.XDP_DROP, sink.fd))
            xdp.attach(pair.b.ifname, fd, xdp.XdpMode.DRV)
        plan = []
        if path:
            plan.append(("testpmd-txonly", None))
        plan += [("live", ([], None)), ("live-4ranges", (four_ranges(), None))]
        plan += [(f"rate-{r}", (four_ranges(), r)) for r in RATES]
        if only:
            plan = [x for x in plan if x[0].startswith(only)]
        for i in range(runs):
            for name, spec in plan:
                if name == "testpmd-txonly":
                    log = os.path.join(OUT, "testpmd-txonly.log")
                    s = run_testpmd(pair, sink, seconds, cpu, log)
                else:
                    ranges, rate = spec
                    s = run_engine(pair, sink, ranges, rate, seconds, cpu)
                samples.setdefault(name, []).append(s)
                print(f"run {i + 1} {name:16s} {s['pps'] / 1e6:8.3f} Mpps", flush=True)
    finally:
        with contextlib.suppress(Exception), pair.b.enter():
            xdp.detach(pair.b.ifname)
        with contextlib.suppress(Exception):
            os.close(fd)
            sink.close()
        pair.close()
        left = netns.leftovers(pair.prefix)
        if left:
            print("left behind: " + "; ".join(left), file=sys.stderr)

    rows = []
    tp = samples.get("testpmd-txonly")
    base = statistics.median(s["pps"] for s in tp) if tp else None
    for name, ss in samples.items():
        pps = statistics.median(s["pps"] for s in ss)
        row = {
            "name": name,
            "layout": "txgen",
            "pps": round(pps),
            "runs": len(ss),
            "run_pps": [round(s["pps"]) for s in ss],
            "seconds": seconds,
            "frame_bytes": FRAME_BYTES,
            "date": stamp,
            "notes": [],
            "detail": dict(ss[len(ss) // 2]),
            "samples": ss,
        }
        if name.startswith("live"):
            row.update(baseline="testpmd-txonly", baseline_pps=base and round(base))
            row["ratio"] = round(pps / base, 2) if base else None
            row["goal"] = ">= 4.0x testpmd-txonly"
            row["goal_met"] = bool(base) and pps >= 4 * base
            if not path:
                row["notes"].append(f"testpmd not run: {why}")
            elif not base:
                row["notes"].append("testpmd-txonly not in this run")
        elif name.startswith("rate-"):
            want = int(name.split("-")[1])
            errs = [s["pps"] / want - 1 for s in ss]
            row.update(baseline=f"requested {want} pps", baseline_pps=want)
            row["ratio"] = round(pps / want, 4)
            row["goal"] = "within 2% of the requested rate"
            row["goal_met"] = all(abs(e) <= 0.02 for e in errs)
            row["detail"]["errors_pct"] = [round(100 * e, 3) for e in errs]
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0, help="CPU of the sender (testpmd or ours)")
    ap.add_argument("--quick", action="store_true", help="1 run x 2 s")
    ap.add_argument("--only", help="run only the rows whose name starts with this")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.runs = 2.0, 1
    if os.geteuid() != 0:
        print("needs root (namespaces, XDP)", file=sys.stderr)
        return 1
    rows = bench(args.seconds, args.runs, args.cpu, args.only)
    print(f"\n{'row':16s} {'Mpps':>9s}  {'vs':22s} {'ratio':>7s}  goal")
    for r in rows:
        goal = "" if "goal" not in r else ("met" if r["goal_met"] else "MISSED")
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.4g}"
        print(
            f"{r['name']:16s} {r['pps'] / 1e6:9.4f}  {r.get('baseline') or '-':22s} "
            f"{ratio:>7s}  {goal}"
        )
    out = os.path.join(OUT, "txgen-live.json")
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(f"\nwrote {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
