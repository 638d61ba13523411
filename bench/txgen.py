#!/usr/bin/env python3
"""txgen rows for ``make bench``: transmit rate per engine against dpdk-testpmd txonly, and
rate accuracy (requested against achieved).

Setup: one veth pair. Namespace A transmits (txgen, or testpmd ``--forward-mode=txonly``
with the AF_XDP PMD, both pinned to the generator CPU); B's veth runs a counting XDP_DROP
program, which counts what arrives. Every row's ``pps`` is frames counted at B per second
over the window, so both senders are measured at the same place. Frames are 60 bytes (a
"64-byte packet" with FCS): testpmd gets ``--txpkts=60``, txgen ``size 64``.

Rows (``run() -> list[dict]``, like bench/micro.py):

  testpmd-txonly          baseline
  txgen-afxdp-tx          AF_XDP engine, stamps off (like testpmd)   goal >= 0.9x testpmd
  txgen-afxdp-tx-stamped  AF_XDP engine with the latency/loss stamp in every frame
  txgen-afpacket-tx       AF_PACKET engine (PACKET_MMAP TX ring)
  txgen-live-tx           XDP live-frames engine                     goal >= 4x testpmd
  txgen-rate-<engine>-<R> requested R pps; ``pps`` = frames at B over txgen's send span,
                          ratio = achieved / requested             goal within 2 %

    .venv/bin/python bench/txgen.py [--runs 3] [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness as H  # noqa: E402
import testpmd as T  # noqa: E402
from cndp.testing import netns  # noqa: E402

TXGEN = os.path.join(os.path.dirname(sys.executable), "txgen")
TX_ROWS = (
    "testpmd-txonly",
    "txgen-afxdp-tx",
    "txgen-afxdp-tx-stamped",
    "txgen-afpacket-tx",
    "txgen-live-tx",
)
GOALS = {"txgen-afxdp-tx": (0.9, ">= 0.9x testpmd"), "txgen-live-tx": (4.0, ">= 4x testpmd")}
RATES = (1_000, 10_000, 100_000, 1_000_000)
RATE_ENGINES = ("afxdp", "live")
RATE_TOLERANCE = 0.02


class TxOnlyPmd(T.TestPmd):
    """testpmd txonly with 60-byte frames (its default is 64 bytes of data)."""

    def command(self) -> list[str]:
        return [*super().command(), "--txpkts=60"]


def _config(host: netns.Host, path: str, *, pmd: str, cpu: int, section: dict) -> None:
    name = f"{host.ifname}:0"
    cfg = {
        "application": {"name": "txgen-bench"},
        "umems": {
            "umem0": {
                "bufcnt": 16,
                "bufsz": 2,
                "mtype": "4KB",
                "regions": [16],
                "rxdesc": 2,
                "txdesc": 2,
            }
        },
        "lports": {name: {"pmd": pmd, "qid": 0, "umem": "umem0", "region": 0}},
        "lcore-groups": {"initial": [cpu], "gen": [cpu]},
        "options": {"cli": False},
        "threads": {"rxtx:0": {"group": "gen", "lports": [name]}},
        "txgen": {name: section},
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pair: netns.VethPair | None = None
        self.sink: H.XdpCounterProg | None = None
        self.tmp = tempfile.mkdtemp(prefix="txgen-bench-")
        self.notes: dict[str, list[str]] = {}

    def note(self, row: str, text: str) -> None:
        lst = self.notes.setdefault(row, [])
        if text not in lst:
            lst.append(text)

    # --------------------------------------------------------------------- measurements
    def _window(self, alive) -> tuple[float, dict]:
        """Wait for traffic at B, warm up, count over ``--seconds``."""
        a = self.args
        sink = self.sink
        assert sink is not None
        deadline = time.monotonic() + 30
        start = sink.frames()
        while sink.frames() == start:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError("no frames arrived at B")
            time.sleep(0.02)
        time.sleep(a.warmup)
        q0 = H.process_cpu()
        t0, c0 = time.monotonic(), sink.frames()
        time.sleep(a.seconds)
        t1, c1 = time.monotonic(), sink.frames()
        q1 = H.process_cpu()
        if not alive():
            raise RuntimeError("the sender stopped before the window ended")
        foreign, top = H.foreign_cpu_pct(q0, q1, t1 - t0, os.getpid())
        return (c1 - c0) / (t1 - t0), {"foreign_cpu_pct": round(foreign, 1), "foreign_top": top}

    def testpmd(self) -> tuple[float, dict]:
        a = self.args
        assert self.pair is not None
        log = os.path.join(a.out_dir, "testpmd-txonly.log")
        tp = TxOnlyPmd(self.pair.a, "txonly", a.gen_cpu, log, file_prefix=f"{self.pair.prefix}-tx")
        try:
            tp.start()
            pps, extra = self._window(tp.alive)
            st = tp.show()
            extra["testpmd_own_tx_pps"] = st.tx_pps
            return pps, extra
        finally:
            tp.stop()
            H.force_detach(self.pair.a)

    def txgen_window(self, row: str, *, pmd: str, section: dict) -> tuple[float, dict]:
        """txgen sending flat out; counted at B over a window in the middle of its run."""
        a = self.args
        assert self.pair is not None
        cfg = os.path.join(self.tmp, f"{row}.jsonc")
        _config(self.pair.a, cfg, pmd=pmd, cpu=a.gen_cpu, section=section)
        # --duration counts from when the ports start; the window starts once frames arrive
        dur = a.warmup + a.seconds + 2
        out = open(os.path.join(a.out_dir, f"{row}.log"), "w")  # noqa: SIM115
        proc = self.pair.a.popen(
            [TXGEN, "-c", cfg, "--duration", str(dur), "--json", "--drain", "0.2"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            pps, extra = self._window(lambda: proc.poll() is None)
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            out.close()
        return pps, extra

    def txgen_rate(self, engine: str, rate: int) -> tuple[float, dict]:
        """txgen at ``rate`` pps for a count of frames: achieved = frames at B over the
        sender's first-to-last-burst span (txgen's report)."""
        a = self.args
        assert self.pair is not None and self.sink is not None
        row = f"txgen-rate-{engine}-{rate}"
        count = int(rate * a.rate_seconds)
        cfg = os.path.join(self.tmp, f"{row}.jsonc")
        sect = {
            "engine": "live" if engine == "live" else "port",
            "pps": rate,
            "count": count,
            "latency": False,
        }
        _config(self.pair.a, cfg, pmd="net_af_xdp", cpu=a.gen_cpu, section=sect)
        c0 = self.sink.frames()
        q0 = H.process_cpu()
        t0 = time.monotonic()
        r = self.pair.a.run(
            [
                TXGEN,
                "-c",
                cfg,
                "--duration",
                str(a.rate_seconds * 3 + 10),
                "--json",
                "--drain",
                "0.5",
            ],
            timeout=a.rate_seconds * 4 + 60,
        )
        t1 = time.monotonic()
        q1 = H.process_cpu()
        if r.returncode != 0:
            raise RuntimeError(f"txgen failed: {(r.stderr or r.stdout).strip()[-300:]}")
        rep = json.loads(r.stdout)
        p = next(iter(rep["ports"].values()))
        delivered = self.sink.frames() - c0
        span = p["tx"]["packets"] / p["tx"]["pps"] if p["tx"]["pps"] else rep["duration_s"]
        # txgen's own first-to-last-burst rate, scaled by the share of frames that arrived
        achieved = p["tx"]["pps"] * (delivered / p["tx"]["packets"]) if p["tx"]["packets"] else 0
        foreign, top = H.foreign_cpu_pct(q0, q1, t1 - t0, os.getpid())
        return achieved, {
            "requested_pps": rate,
            "sent": p["tx"]["packets"],
            "delivered": delivered,
            "sender_pps": p["tx"]["pps"],
            "span_s": round(span, 3),
            "foreign_cpu_pct": round(foreign, 1),
            "foreign_top": top,
        }

    # --------------------------------------------------------------------- rows
    def tx_sample(self, row: str) -> tuple[float, dict]:
        if row == "testpmd-txonly":
            return self.testpmd()
        if row == "txgen-afxdp-tx":
            return self.txgen_window(row, pmd="net_af_xdp", section={"latency": False})
        if row == "txgen-afxdp-tx-stamped":
            return self.txgen_window(row, pmd="net_af_xdp", section={"latency": True})
        if row == "txgen-afpacket-tx":
            return self.txgen_window(row, pmd="net_af_packet", section={"latency": False})
        if row == "txgen-live-tx":
            return self.txgen_window(row, pmd="net_af_xdp", section={"engine": "live"})
        raise ValueError(row)

    def run(self) -> list[dict]:
        a = self.args
        os.makedirs(a.out_dir, exist_ok=True)
        rows: list[dict] = []
        testpmd_why = ""
        if "testpmd-txonly" in a.rows:
            _p, testpmd_why = T.ensure_installed(REPO)
        self.pair = netns.make_veth_pair()
        try:
            self.sink = H.XdpCounterProg(self.pair.b, "txgen_sink")
            samples: dict[str, list[tuple[float, dict]]] = {r: [] for r in TX_ROWS}
            for i in range(a.runs):  # interleaved: run i of every row, then i + 1
                for row in TX_ROWS:
                    if row not in a.rows:
                        continue
                    if row == "testpmd-txonly" and testpmd_why:
                        self.note(row, f"not run: {testpmd_why}")
                        continue
                    try:
                        pps, extra = self.tx_sample(row)
                    except Exception as e:  # keep going with the other rows
                        msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                        print(f"{row} run {i + 1}: FAILED: {msg}", file=sys.stderr, flush=True)
                        self.note(row, f"failed: {msg[:120]}")
                        continue
                    samples[row].append((pps, extra))
                    print(
                        f"{row:24s} run {i + 1}/{a.runs}: {pps / 1e6:7.3f} Mpps "
                        f"(foreign CPU {extra['foreign_cpu_pct']:.0f}%)",
                        flush=True,
                    )
            base = _median(samples["testpmd-txonly"])
            for row in TX_ROWS:
                if row not in a.rows:
                    continue
                ss = samples[row]
                pps = _median(ss)
                r = {
                    "name": row,
                    "layout": "txgen",
                    "pps": round(pps) if pps is not None else None,
                    "baseline": None if row == "testpmd-txonly" else "testpmd-txonly",
                    "baseline_pps": None
                    if row == "testpmd-txonly" or base is None
                    else round(base),
                    "ratio": None if row == "testpmd-txonly" else _ratio(pps, base),
                    "runs": len(ss),
                    "run_pps": [round(p) for p, _ in ss],
                    "seconds": a.seconds,
                    "measured": "frames counted by an XDP_DROP program on the peer veth",
                    "frame_bytes": 60,
                    "notes": self.notes.get(row, []),
                }
                if row in GOALS:
                    g, text = GOALS[row]
                    r["goal"] = text
                    r["goal_met"] = None if r["ratio"] is None else r["ratio"] >= g
                if ss:
                    r["detail"] = sorted(ss, key=lambda s: s[0])[len(ss) // 2][1]
                rows.append(r)
            for engine in RATE_ENGINES:
                for rate in a.rates:
                    row = f"txgen-rate-{engine}-{rate}"
                    ss = []
                    for i in range(a.rate_runs):
                        try:
                            ss.append(self.txgen_rate(engine, rate))
                        except Exception as e:
                            msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                            print(f"{row} run {i + 1}: FAILED: {msg}", file=sys.stderr)
                            self.note(row, f"failed: {msg[:120]}")
                            continue
                        print(
                            f"{row:24s} run {i + 1}/{a.rate_runs}: "
                            f"{ss[-1][0]:12,.0f} pps of {rate:,}",
                            flush=True,
                        )
                    pps = _median(ss)
                    ratio = _ratio(pps, rate)
                    if ss and max(e["sender_pps"] for _, e in ss) < rate * (1 - RATE_TOLERANCE):
                        self.note(
                            row,
                            "the engine's ceiling on this machine is below the requested "
                            "rate (see its -tx row): not a pacing error",
                        )
                    rows.append(
                        {
                            "name": row,
                            "layout": "txgen",
                            "pps": round(pps, 1) if pps is not None else None,
                            "baseline": "requested",
                            "baseline_pps": rate,
                            "ratio": ratio,
                            "runs": len(ss),
                            "run_pps": [round(p, 1) for p, _ in ss],
                            "seconds": a.rate_seconds,
                            "measured": "frames counted at the peer over txgen's send span",
                            "frame_bytes": 60,
                            "goal": f"within {RATE_TOLERANCE:.0%} of the requested rate",
                            "goal_met": None if ratio is None else abs(ratio - 1) <= RATE_TOLERANCE,
                            "notes": self.notes.get(row, []),
                            **(
                                {"detail": sorted(ss, key=lambda s: s[0])[len(ss) // 2][1]}
                                if ss
                                else {}
                            ),
                        }
                    )
        finally:
            if self.sink is not None:
                self.sink.close()
            if self.pair is not None:
                self.pair.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return rows


def _median(ss) -> float | None:
    return statistics.median([p for p, _ in ss]) if ss else None


def _ratio(x: float | None, y: float | None) -> float | None:
    if x is None or not y:
        return None
    return round(x / y, 4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="txgen rows of make bench")
    ap.add_argument("--runs", type=int, default=3, help="runs per transmit row (median)")
    ap.add_argument("--seconds", type=float, default=5.0, help="counting window (s)")
    ap.add_argument("--warmup", type=float, default=1.0, help="traffic before the window (s)")
    ap.add_argument("--rate-runs", type=int, default=2, help="runs per rate row")
    ap.add_argument("--rate-seconds", type=float, default=3.0, help="length of a rate run (s)")
    ap.add_argument("--rates", default=",".join(map(str, RATES)), help="requested pps list")
    ap.add_argument("--rows", default=",".join(TX_ROWS), help="transmit rows to run")
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--quick", action="store_true", help="1 run x 2 s, rate runs of 1 s")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    args.rates = [int(float(x)) for x in args.rates.split(",") if x.strip()]
    if args.quick:
        args.runs, args.seconds, args.warmup = 1, 2.0, 0.5
        args.rate_runs, args.rate_seconds = 1, 1.0
    return args


def run(argv: list[str] | None = None) -> list[dict]:
    """The txgen rows (bench/run.py calls this; ``argv`` takes this script's options)."""
    return Bench(parse_args(argv if argv is not None else [])).run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = Bench(args).run()
    print()
    print(f"{'row':26s}{'pps':>14s}  {'vs':16s}{'ratio':>8s}  goal")
    for r in rows:
        pps = f"{r['pps']:14,.0f}" if r.get("pps") is not None else "             -"
        ratio = f"{r['ratio']:8.3f}" if r.get("ratio") is not None else "       -"
        goal = ""
        if "goal" in r:
            goal = f"{r['goal']}: " + {True: "met", False: "MISSED", None: "n/a"}[r["goal_met"]]
        notes = "; ".join(r.get("notes") or [])
        print(f"{r['name']:26s}{pps}  {r.get('baseline') or '-'!s:16s}{ratio}  {goal} {notes}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    with contextlib.suppress(Exception):
        print(f"leftovers: {netns.leftovers(netns.run_prefix()) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
