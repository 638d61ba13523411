"""Software-only microbenchmark of our ring verbs: no socket, no kernel.

The xskdev burst code runs over rings in ordinary memory (``XskDev.over_memory_rings``);
a ``RingPeer`` plays the kernel between bursts, outside the timed region. What is timed is
exactly what a forwarder pays in user space per burst of 64:
  rx-drop:  rx_burst (RX ring -> packet vector, fill-ring refill) + mempool put
  MAC-swap: rx_burst + mac_swap + tx_burst (TX ring write, completion reap; no kick syscall)
Goals from issue 2: under 40 ns/packet for rx-drop and 150 ns/packet for MAC-swap.
"""

from __future__ import annotations

import statistics
import sys
import time

from cndp.mem import PktVec, Umem, mac_swap
from cndp.xskdev.xskdev import XskConfig, XskDev

BURST = 64
GOALS_NS = {"micro-rx-drop": 40.0, "micro-macswap": 150.0}


def _one(kind: str, bursts: int) -> float:
    umem = Umem(8192)
    dev, peer = XskDev.over_memory_rings(XskConfig("sim0"), umem)
    pv = PktVec(BURST)
    pool = dev.pool
    data = umem.data
    rx_burst, tx_burst, put = dev.rx_burst, dev.tx_burst, pool.put_bulk
    clock = time.perf_counter_ns
    spent = 0
    pkts = 0
    try:
        for _ in range(bursts):
            peer.deliver(BURST)
            if kind == "micro-rx-drop":
                t0 = clock()
                k = rx_burst(pv, BURST)
                put(pv.addr[:k])
                spent += clock() - t0
            else:
                t0 = clock()
                k = rx_burst(pv, BURST)
                mac_swap(data, pv.addr[:k])
                s = tx_burst(pv, k)
                if s < k:
                    put(pv.addr[s:k])
                spent += clock() - t0
                peer.complete()
            pkts += k
    finally:
        dev.close()
        umem.close()
    return spent / pkts


def run(runs: int = 3, bursts: int = 20000) -> list[dict]:
    rows = []
    for name, goal in GOALS_NS.items():
        vals = [_one(name, bursts) for _ in range(runs)]
        ns = statistics.median(vals)
        rows.append(
            {
                "name": name,
                "layout": "software",
                "ns_per_pkt": round(ns, 1),
                "pps": round(1e9 / ns),
                "baseline": f"goal {goal:.0f} ns/pkt",
                "baseline_pps": round(1e9 / goal),
                "ratio": round(goal / ns, 3),
                "runs": runs,
                "burst": BURST,
            }
        )
    return rows


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(
            f"{r['name']:16s} {r['ns_per_pkt']:7.1f} ns/pkt  goal {r['baseline']:>16s}  "
            f"ratio {r['ratio']:.2f}"
        )
