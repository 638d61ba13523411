#!/usr/bin/env python3
"""Paired A/B runs of receiver variants on one veth pair: the tool behind bench/README.md's
"paired A/B runs".

Each variant is measured ``--reps`` times, interleaved (A B C, A B C, ...), with the same
generator, sink and counters as ``bench/run.py``; the medians are printed at the end. A
variant is ``MODE[:key=value,...]``:

  MODE   rx-drop | macswap | testpmd-rxonly | testpmd-macswap
  keys   burst, rx_size, idle (empty polls before poll(); default 0 in the softirq layout,
         --idle-polls in the threaded one), and any XskConfig field (tx_qid, tx_skb_budget,
         busy_poll, ...); for testpmd only burst

  bench/ab.py --layout softirq testpmd-macswap macswap macswap:tx_qid=1,burst=256
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness as H  # noqa: E402
import run as R  # noqa: E402
from cndp.errors import CndpError  # noqa: E402
from cndp.net.frames import udp4_frame  # noqa: E402
from cndp.testing import netns  # noqa: E402
from cndp.xskdev.xskdev import XskConfig  # noqa: E402

MODES = ("rx-drop", "macswap", "testpmd-rxonly", "testpmd-macswap")
RECEIVER_KEYS = ("burst", "rx_size", "idle")
XSK_KEYS = {f.name for f in dataclasses.fields(XskConfig)} - {
    "ifname",
    "qid",
    "rx_size",
    "uds_path",
    "xsk_pin_path",
    "xsk_map_fd",
    "force",
}


@dataclasses.dataclass
class Variant:
    text: str
    mode: str
    opts: dict


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text, 0)
    except ValueError:
        msg = f"value {text!r} is not an integer or true/false"
        raise argparse.ArgumentTypeError(msg) from None


def parse_variant(text: str) -> Variant:
    mode, _, rest = text.partition(":")
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f"{text!r}: mode must be one of {', '.join(MODES)}")
    opts: dict = {}
    for item in filter(None, rest.split(",")):
        key, eq, val = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"{text!r}: {item!r} is not key=value")
        allowed = ("burst",) if mode.startswith("testpmd") else (*RECEIVER_KEYS, *XSK_KEYS)
        if key not in allowed:
            raise argparse.ArgumentTypeError(
                f"{text!r}: unknown key {key!r} for {mode} (have {', '.join(sorted(allowed))})"
            )
        opts[key] = _value(val)
    return Variant(text, mode, opts)


def run_variant(ctx: R.Ctx, layout: str, v: Variant) -> R.Sample:
    a = ctx.args
    if v.mode.startswith("testpmd"):
        a.testpmd_burst = v.opts.get("burst")
        return R.run_testpmd(ctx, layout, v.mode)
    opts = dict(v.opts)
    idle = opts.pop("idle", a.idle_polls if layout == "threaded" else 0)
    burst = opts.pop("burst", a.burst)
    rx_size = opts.pop("rx_size", 2048)
    rcv = H.OurReceiver(
        ctx.pair.b, v.mode, a.rx_cpu, idle_polls=idle, burst=burst, rx_size=rx_size, xsk=opts
    )
    try:
        rcv.start()
        napi = H.apply_layout(ctx.pair.b, layout, a.rx_cpu)
        assert rcv.proc is not None
        pids = {"app": [rcv.proc.pid], **({"napi": napi} if napi else {})}

        def read():
            if not rcv.alive():
                raise RuntimeError("the receiver died")
            return time.monotonic(), {"rx": rcv.rx(), "tx": rcv.tx()}

        row = "pycndp-rx-drop" if v.mode == "rx-drop" else "pycndp-macswap"
        return R.measure(ctx, layout, row, read, pids)
    finally:
        rcv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/ab.py", description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", type=parse_variant, metavar="VARIANT")
    ap.add_argument("--layout", choices=R.LAYOUTS, default="softirq")
    ap.add_argument("--reps", type=int, default=3, help="runs of each variant")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--idle-polls", type=int, default=1)
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--rx-cpu", type=int, default=1)
    ap.add_argument("--testpmd-vdev", default="busy_budget=0")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    args = ap.parse_args(argv)
    args.testpmd_burst = None
    if os.geteuid() != 0:
        print("bench/ab.py needs root (network namespaces, XDP, AF_XDP)", file=sys.stderr)
        return 2
    if args.reps < 1 or args.seconds <= 0:
        ap.error("--reps must be >= 1 and --seconds > 0")
    if any(v.mode.startswith("testpmd") for v in args.variants):
        import testpmd as T

        _path, why = T.ensure_installed(R.REPO)
        if why:
            print(f"bench/ab.py: testpmd unavailable: {why}", file=sys.stderr)
            return 1
    H.pin(args.gen_cpu)
    pair = netns.make_veth_pair(rxqueues=2, txqueues=2)
    park = gen = sink = None
    got: dict[str, list[float]] = {v.text: [] for v in args.variants}
    try:
        park = netns.make_veth_pair()
        a, b = pair.a, pair.b
        sink = H.XdpCounterProg(a, "bench_sink")
        gen = H.Generator(a, udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4), args.gen_cpu, park=park.b)
        gen.start()
        ctx = R.Ctx(args, pair, gen, sink)
        for rep in range(args.reps):
            for v in args.variants:
                s = run_variant(ctx, args.layout, v)
                got[v.text].append(s.pps)
                print(
                    f"{rep + 1}/{args.reps} {v.text:40s} {s.pps / 1e6:7.3f} Mpps  "
                    + ", ".join(R._fmt_extra(s.extra)),
                    flush=True,
                )
        print()
        for text, pps in got.items():
            runs = "/".join(f"{x / 1e6:.3f}" for x in pps)
            print(f"median {text:40s} {statistics.median(pps) / 1e6:7.3f} Mpps  ({runs})")
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130
    except (CndpError, RuntimeError) as e:  # a receiver or testpmd that failed: one line
        print(f"bench/ab.py: {e}", file=sys.stderr)
        return 1
    finally:
        if gen is not None:
            gen.stop()
        with contextlib.suppress(Exception):
            H.force_detach(pair.b)
        if sink is not None:
            sink.close()
        for p in (park, pair):
            if p is not None:
                p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
